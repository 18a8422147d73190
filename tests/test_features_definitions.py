"""Feature definitions: the per-event path for small online batches equals the vectorised one."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

from features import definitions
from features.batch import build_profiles
from features.contract import EventRecord
from features.dataset import RetailDataset
from features.definitions import _local_parts_small, local_parts
from features.finalise import CustomerStatic
from features.online import profiles as profiles_module
from features.online.profiles import OnlineProfiles
from features.online.store import MemoryOnlineStore
from nba.channels import Channel
from simulator import SimulatorConfig, simulate
from tests.helpers import START, events_frame, with_events

ZONES = ["UTC", "Europe/Paris", "America/New_York", "Asia/Kolkata", "Australia/Lord_Howe"]


def test_small_batch_local_parts_equal_the_vectorised_ones() -> None:
    rng = np.random.default_rng(3)
    # around DST changes of 2026 and plain days, in zones with odd offsets
    seconds = rng.integers(1_767_225_600, 1_798_761_600, size=5_000)
    zones = rng.choice(ZONES, size=5_000)
    assert len(seconds) > definitions.SMALL_BATCH  # so local_parts takes the pandas path
    how, month = local_parts(seconds, zones)
    small_how, small_month = _local_parts_small(seconds, zones)
    np.testing.assert_array_equal(small_how, how)
    np.testing.assert_array_equal(small_month, month)
    assert set(np.unique(how)) <= set(range(168)) and len(np.unique(how)) > 150


def test_event_by_event_ops_equal_the_vectorised_ones_on_a_simulated_retailer(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    sim = simulate(SimulatorConfig(n_customers=150, days=30, seed=11, n_products=80))
    events = sim.events.sample(n=4_000, random_state=1).reset_index(drop=True)
    tiers = events["event_type"] == "loyalty_tier_reached"
    views = events.index[events["event_type"] == "product_view"][:20]
    events.loc[views[:10], "properties"] = '{"dwell_seconds": 95}'
    events.loc[views[10:], "properties"] = '{"dwell_seconds": "forever"}'
    # bounces, hard (the address is closed: a consent register op) and soft
    mailed = events.index[(events["event_type"] == "message_sent") & (events["channel"] == "email")]
    events.loc[mailed[:12], "event_type"] = "message_bounced"
    for rows, kind in ((mailed[:4], '"hard"'), (mailed[4:8], '"soft"'), (mailed[8:10], "1")):
        events.loc[rows, "properties"] = f'{{"bounce_type": {kind}}}'
    events.loc[mailed[10:12], "properties"] = '{"permanent": true}'
    # returns and cancellations: of a product or of the latest order, whole or refunded
    bought = events.index[events["event_type"] == "purchase"][:16]
    events.loc[bought[:8], "event_type"] = "order_returned"
    events.loc[bought[8:], "event_type"] = "order_cancelled"
    events.loc[bought[::4], "product_id"] = None
    events.loc[bought[::2], "revenue"] = None
    events.loc[bought[1::4], "revenue"] = 0.0  # nothing refunded: the whole
    assert set(events["event_type"]) >= {"purchase", "product_view", "message_sent", "add_to_cart"}
    online = OnlineProfiles(MemoryOnlineStore(), sim.products)
    for cid, tz in zip(sim.customers["customer_id"], sim.customers["timezone"], strict=True):
        online.register_customer(str(cid), CustomerStatic(timezone=str(tz)))
    monkeypatch.setattr(profiles_module, "SMALL_BATCH", 0)
    vectorised = online.to_event_ops(events)
    one_by_one = online._event_ops_one_by_one(events)
    assert len(one_by_one) == len(vectorised) == len(events)
    for fast, slow in zip(one_by_one, vectorised, strict=True):
        assert (fast.customer_id, fast.event_id, fast.ts) == (
            slow.customer_id,
            slow.event_id,
            slow.ts,
        )
        assert sorted(f for f, _ in fast.ops) == sorted(f for f, _ in slow.ops), fast.event_id
        for (field, a), (_, b) in zip(sorted(fast.ops), sorted(slow.ops), strict=True):
            assert math.isclose(a, b, rel_tol=1e-12), (fast.event_id, field, a, b)
    assert tiers.sum() == 0 or any(f == "lt" for e in one_by_one for f, _ in e.ops)
    undo = {
        f.partition(":")[0] for e in one_by_one for f, _ in e.ops if f[:2] in ("rt", "rw", "ra")
    }
    assert undo == {"rt", "rw", "ra"}
    assert any(f == "rt:*" for e in one_by_one for f, _ in e.ops)
    closed = {e.event_id for e in one_by_one if any(f == "g:email" for f, _ in e.ops)}
    bounced = set(events.loc[mailed[:12], "event_id"])
    assert closed & bounced == set(events.loc[[*mailed[:4], *mailed[10:12]], "event_id"])


def test_api_records_make_the_same_ops_as_the_contract_frame() -> None:
    sim = simulate(SimulatorConfig(n_customers=60, days=20, seed=4, n_products=50))
    events = sim.events.sample(n=600, random_state=2).reset_index(drop=True)
    events.loc[events["event_type"] == "product_view", "properties"] = '{"dwell_seconds": 30}'
    online = OnlineProfiles(MemoryOnlineStore(), sim.products)
    for cid, tz in zip(sim.customers["customer_id"], sim.customers["timezone"], strict=True):
        online.register_customer(str(cid), CustomerStatic(timezone=str(tz)))
    records = []
    for row in events.to_dict("records"):
        clean = {k: (None if pd.isna(v) else v) for k, v in row.items()}
        clean["properties"] = (
            None if clean["properties"] is None else json.loads(clean["properties"])
        )
        records.append(EventRecord.model_validate(clean))
    from_records = online.record_ops(records)
    from_frame = online.to_event_ops(events)
    assert len(from_records) == len(from_frame) == 600
    for a, b in zip(from_records, from_frame, strict=True):
        assert (a.customer_id, a.event_id, a.ts) == (b.customer_id, b.event_id, b.ts)
        assert [f for f, _ in sorted(a.ops)] == [f for f, _ in sorted(b.ops)], a.event_id
        for (field, x), (_, y) in zip(sorted(a.ops), sorted(b.ops), strict=True):
            assert math.isclose(x, y, rel_tol=1e-12), (a.event_id, field, x, y)


@pytest.mark.parametrize(("hours_ago", "in_last_day"), [(2, 1), (23, 1), (26, 0), (43, 0)])
def test_contact_caps_count_a_rolling_day_not_a_calendar_day(
    base: RetailDataset, hours_ago: int, in_last_day: int
) -> None:
    """An e-mail sent 26 h ago no longer counts against "one a day" (it used to, up to 48 h,
    because contacts were counted per UTC calendar day); batch and online agree."""
    now = START + pd.Timedelta(days=3, hours=10)
    sent_at = (now - pd.Timedelta(hours=hours_ago) - START).total_seconds()
    events = events_frame([("C1", int(sent_at), ("email", "message_sent"), None, None)])
    batch = build_profiles(with_events(base, events), as_of=now.to_pydatetime(), workers=1)
    [profile] = [p for p in batch.profiles if p.customer_id == "C1"]
    assert profile.contacts.contacts_1d.get(Channel.EMAIL, 0) == in_last_day
    assert profile.contacts.contacts_7d.get(Channel.EMAIL, 0) == 1
    online = OnlineProfiles(MemoryOnlineStore(), base.products)
    online.ingest(events)
    live = online.profile("C1", now.to_pydatetime())
    assert live is not None and live.contacts.contacts_1d.get(Channel.EMAIL, 0) == in_last_day
