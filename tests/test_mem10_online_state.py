"""A customer in one Redis value: the recent event ids inside the state, coded families.

Layout 3 of the online store keeps the hashes of a customer's recent event ids in the
state map itself (``_e``) instead of a sorted set of its own, and spells families and
reserved entries as one-byte codes (:mod:`features.online.codec`). These tests build
customers from raw contract events through the real feature code and a real Redis, and
check what must still hold: a replayed batch is refused, an event past the replay
window is refused as late, and a prefix written by layout 2 is read and converted with
its replays still duplicates.
"""

from __future__ import annotations

import datetime as dt
import os
import uuid
from collections.abc import Iterator
from typing import Any

import msgpack
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from features.batch import build_profiles
from features.dataset import RetailDataset
from features.online import codec
from features.online.connect import connect_redis
from features.online.profiles import OnlineProfiles
from features.online.redis_store import LAYOUT, RedisOnlineStore
from tests.helpers import END, PRIORS, START, assert_profiles_equal, events_frame, with_events

#: A week of a customer's life on two channels: views, a cart, a purchase, a message.
RAW = [
    ("C1", 60, ("web", "product_view"), "P1", None),
    ("C1", 90, ("web", "add_to_cart"), "P1", None),
    ("C1", 3_600, ("email", "message_sent"), None, None),
    ("C1", 86_400, ("web", "purchase"), "P1", None),
    ("C2", 120, ("app", "product_view"), "P2", None),
    ("C2", 7_200, ("app", "add_to_cart"), "P2", None),
    ("C1", 2 * 86_400, ("web", "product_view"), "P2", None),
]


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """The system Redis when ``NBA_TEST_REDIS_URL`` is set (CI), else the embedded one."""
    url = os.environ.get("NBA_TEST_REDIS_URL")
    yield connect_redis(url) if url else connect_redis(None, tmp_path_factory.mktemp("redis"))


def new_store(client: Any) -> RedisOnlineStore:
    return RedisOnlineStore(client, prefix=f"m{uuid.uuid4().hex[:8]}")


def fresh_online(store: RedisOnlineStore, base: RetailDataset) -> OnlineProfiles:
    online = OnlineProfiles(store, base.products)
    empty = with_events(base, events_frame([]).iloc[0:0])
    online.materialise(build_profiles(empty, as_of=START.to_pydatetime(), priors=PRIORS))
    return online


def stored(store: RedisOnlineStore, customer_id: str) -> dict[Any, Any]:
    return codec.unpack(store.client.get(store.state_key(customer_id)))


def recent_hashes(store: RedisOnlineStore, customer_id: str) -> set[int]:
    return set(codec.reserved_entry(stored(store, customer_id), "_e") or {})


def as_layout_2(new: dict[Any, Any]) -> dict[str, Any]:
    """A stored map as layout 2 spelt it: families and entries by name, the birth date as
    ISO text, no recent event ids (layout 2 kept them in a sorted set)."""
    names = {code: name for name, code in {**codec.FAMILY_CODES, **codec.RESERVED_CODES}.items()}
    old = {names[code]: value for code, value in new.items() if names[code] != "_e"}
    if "_bd" in old:
        old["_bd"] = (dt.date(1970, 1, 1) + dt.timedelta(days=old["_bd"])).isoformat()
    return old


def test_a_replayed_batch_is_refused_with_the_ids_in_the_state(
    client: Any, base: RetailDataset
) -> None:
    store = new_store(client)
    online = fresh_online(store, base)
    events = events_frame(RAW, prefix="r")
    assert online.ingest(events).applied == len(RAW)
    before = online.profiles(["C1", "C2"], END.to_pydatetime())

    again = online.ingest(events)  # the client retries the whole batch
    assert (again.applied, again.duplicate) == (0, len(RAW))
    after = online.profiles(["C1", "C2"], END.to_pydatetime())
    for a, b in zip(after, before, strict=True):
        assert_profiles_equal(a, b)
    # one key per customer: no sorted set of event ids beside the state
    assert not list(client.scan_iter(match=f"{store.prefix}:e:*"))
    c1_ids = events.loc[events["customer_id"] == "C1", "event_id"]
    assert recent_hashes(store, "C1") == {codec.event_hash(e) for e in c1_ids}


def test_ids_past_the_replay_window_are_forgotten_and_their_events_refused_as_late(
    client: Any, base: RetailDataset
) -> None:
    store = new_store(client)
    online = fresh_online(store, base)
    window_days = store.replay_window_seconds // 86_400
    early = events_frame([("C1", 60, ("web", "product_view"), "P1", None)], prefix="early")
    late = events_frame(
        [("C1", (window_days + 1) * 86_400, ("web", "product_view"), "P2", None)], prefix="late"
    )
    assert online.ingest(early).applied == 1
    assert online.ingest(late).applied == 1
    assert recent_hashes(store, "C1") == {codec.event_hash("late0")}
    replay = online.ingest(early)
    assert (replay.applied, replay.duplicate, replay.late) == (0, 0, 1)
    assert replay.late_event_ids == ["early0"]


def test_a_layout_2_prefix_is_read_then_converted_and_its_replays_stay_duplicates(
    client: Any, base: RetailDataset
) -> None:
    writer = new_store(client)
    online = fresh_online(writer, base)
    events = events_frame(RAW, prefix="v2")
    online.ingest(events)
    before = online.profiles(["C1", "C2"], END.to_pydatetime())
    # rewrite the prefix as layout 2 kept it
    for cid in ("C1", "C2"):
        old = as_layout_2(stored(writer, cid))
        client.set(writer.state_key(cid), msgpack.packb(old))
        own = events[events["customer_id"] == cid]
        times = own["timestamp"].map(lambda t: pd.Timestamp(t).timestamp())
        ids = dict(zip(own["event_id"], times, strict=True))
        client.zadd(writer.seen_key(cid), ids)
        # a reader in the middle of the conversion decodes either spelling alike
        assert codec.state_of(old) == codec.state_of(stored(writer, cid))
    client.set(writer.layout_key, "2")

    reader = RedisOnlineStore(client, prefix=writer.prefix)
    again = OnlineProfiles(reader, base.products)
    after = again.profiles(["C1", "C2"], END.to_pydatetime())  # converts on first use
    for a, b in zip(after, before, strict=True):
        assert a is not None
        assert_profiles_equal(a, b)
    assert client.get(reader.layout_key) == LAYOUT.encode()
    assert not list(client.scan_iter(match=f"{reader.prefix}:e:*"))
    assert all(isinstance(code, int) for code in stored(reader, "C1"))
    replay = again.ingest(events)
    assert (replay.applied, replay.duplicate) == (0, len(RAW))
    assert reader.migrate() == 0  # converting twice changes nothing


@pytest.mark.parametrize("first", ["apply", "compact", "upsert_static"])
def test_a_layout_2_map_the_first_use_did_not_convert_is_converted_by_the_script_touching_it(
    client: Any, base: RetailDataset, first: str
) -> None:
    """A prefix the API filled without ``nba features materialise`` has neither priors nor
    a layout key, so nothing converts it on first use: each script that loads a map
    converts a layout-2 one itself, ids included, before it changes it."""
    writer = new_store(client)
    online = fresh_online(writer, base)
    events = events_frame(RAW, prefix="api")
    online.ingest(events)
    [expected] = writer.read(["C1"])
    assert expected is not None
    client.set(writer.state_key("C1"), msgpack.packb(as_layout_2(stored(writer, "C1"))))
    own = events[events["customer_id"] == "C1"]
    times = own["timestamp"].map(lambda t: pd.Timestamp(t).timestamp())
    client.zadd(writer.seen_key("C1"), dict(zip(own["event_id"], times, strict=True)))
    client.delete(writer.layout_key, writer.priors_key)

    reader = RedisOnlineStore(client, prefix=writer.prefix)
    if first == "apply":
        replay = OnlineProfiles(reader, base.products).ingest(events)
        assert (replay.applied, replay.duplicate) == (0, len(RAW))
    elif first == "compact":
        reader.compact("C1")
    else:
        reader.upsert_static("C1", expected.static)
    assert all(isinstance(code, int) for code in stored(reader, "C1"))
    assert not client.exists(reader.seen_key("C1"))
    assert recent_hashes(reader, "C1") == {codec.event_hash(e) for e in own["event_id"]}
    [after] = reader.read(["C1"])
    assert after is not None and after.static == expected.static
    if first != "compact":  # compaction may drop expired fields; tested elsewhere
        assert dict(after.state) == dict(expected.state)
    again = OnlineProfiles(reader, base.products).ingest(events)
    assert (again.applied, again.duplicate) == (0, len(RAW))


def test_the_decision_lanes_first_read_of_a_layout_2_prefix_converts_it(
    client: Any, base: RetailDataset
) -> None:
    """The API reads a customer for a decision in one pipeline that also checks the
    layout (``ContactState.read_for_decisions``): on a layout-2 prefix that read converts
    it and answers with the customer as they were, never an error."""
    from features.online.contact_state import DecisionRead, contact_state_for

    writer = new_store(client)
    online = fresh_online(writer, base)
    online.ingest(events_frame(RAW, prefix="lane"))
    [expected] = writer.read(["C1"])
    client.set(writer.state_key("C1"), msgpack.packb(as_layout_2(stored(writer, "C1"))))
    client.set(writer.layout_key, "2")

    lane = contact_state_for(RedisOnlineStore(client, prefix=writer.prefix))
    [state] = lane.read_for_decisions([DecisionRead("C1", END.to_pydatetime())])
    assert state.stored is not None and expected is not None
    assert dict(state.stored.state) == dict(expected.state)
    assert state.stored.static == expected.static
    assert client.get(writer.layout_key) == LAYOUT.encode()
    assert all(isinstance(code, int) for code in stored(writer, "C1"))


@settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(ids=st.lists(st.text(min_size=1, max_size=40), min_size=1, max_size=20, unique=True))
def test_the_scripts_hash_an_event_id_as_python_does(client: Any, ids: list[str]) -> None:
    """The conversion hashes layout 2's ids in Lua (``redis.sha1hex``), the apply path in
    Python (:func:`~features.online.codec.event_hash`): any id, the same hash."""
    store = new_store(client)
    client.set(store.state_key("C1"), msgpack.packb({"n": 1, "_mx": 1_700_000_000}))
    client.zadd(store.seen_key("C1"), {e: 1_700_000_000 for e in ids})
    client.set(store.layout_key, "2")
    store.migrate()
    assert recent_hashes(store, "C1") == {codec.event_hash(e) for e in ids}
    assert codec.state_of(stored(store, "C1")) == {"n": 1.0}


def test_every_family_and_entry_has_its_own_one_byte_code() -> None:
    """A family added without a code would fail on its first event; the codes fit
    MessagePack's one-byte integers (0..127 for families, -32..-1 for the entries)."""
    from features.definitions import FAMILIES

    assert set(codec.FAMILY_CODES) == set(FAMILIES)
    assert len(set(codec.FAMILY_CODES.values())) == len(codec.FAMILY_CODES)
    assert all(0 <= code <= 127 for code in codec.FAMILY_CODES.values())
    assert len(set(codec.RESERVED_CODES.values())) == len(codec.RESERVED_CODES)
    assert all(-32 <= code <= -1 for code in codec.RESERVED_CODES.values())


@pytest.mark.parametrize("zone", ["Europe/Paris", "America/Regina", None])
def test_a_customers_zone_and_birth_date_come_back_coded_or_not(
    client: Any, base: RetailDataset, zone: str | None
) -> None:
    """A common zone is stored as its code, any other as its name; either reads back as
    the zone, through the store as the decision lane reads it."""
    from features.finalise import CustomerStatic

    store = new_store(client)
    static = CustomerStatic(
        timezone=zone or "UTC", birth_date=dt.date(1972, 7, 1), zone_known=zone is not None
    )
    store.upsert_static("C1", static)
    [read] = store.read(["C1"])
    assert read is not None and read.static == static
    assert store.timezones(["C1"]) == ({"C1": zone} if zone else {})
    stored_zone = codec.reserved_entry(stored(store, "C1"), "_tz")
    assert stored_zone == (None if zone is None else codec.ZONE_CODES.get(zone, zone))


def test_every_coded_zone_is_a_time_zone() -> None:
    from zoneinfo import ZoneInfo

    for name in codec.ZONE_CODES:
        ZoneInfo(name)
    assert sorted(codec.ZONE_CODES.values()) == list(range(1, len(codec.ZONE_CODES) + 1))
    assert max(codec.ZONE_CODES.values()) <= 127  # one byte
