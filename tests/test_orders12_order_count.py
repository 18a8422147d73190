"""An order is an order, not a line (issue 12, orders12).

The contract has one ``purchase`` event per order line, every line at its order's second
(a Segment ``Order Completed`` becomes one per product). The profile counted lines where
it meant orders: the usual gap between orders (``(last - first) / (purchases - 1)``), the
average basket (revenue per line) and the orders per day a redemption's cost is charged
on. The state now keeps each order's lines by its second (``ol``), folded past the return
window (``lx``); ``orders_total`` and ``orders_90d`` count orders, ``purchases_*`` still
count lines. Every situation is built from raw contract events through the real feature
code: the batch build, the online store (memory and real Redis), the point-in-time cut.
"""

from __future__ import annotations

from typing import Any

import pandas as pd
import pytest

from features.batch import build_profiles, point_in_time
from features.dataset import RetailDataset
from features.finalise import build_profile
from features.online.store import EventOps, OnlineStore
from features.point_in_time import point_in_time_columns
from features.state import fold_orders, stored_state, trim_state
from nba.profile import CustomerProfile, LifecycleState
from nba.redemption import orders_per_day
from tests.helpers import PRIORS, START, assert_profiles_equal, events_frame, with_events
from tests.test_online_store import (  # noqa: F401 - fixtures
    embedded_redis,
    fresh_online,
    new_redis_store,
    new_store,
    store,
    system_redis,
)

DAY = 86_400
LINE = 42.5  # tests.helpers.events_frame: every purchase line's revenue
#: C1: an order of three lines, then an order of one line a month later; C2 the same
#: orders as one line each.
ORDERS = [
    ("C1", 600, ("app", "purchase"), "P1", None),
    ("C1", 600, ("app", "purchase"), "P2", None),
    ("C1", 600, ("app", "purchase"), "P3", None),
    ("C1", 600 + 30 * DAY, ("app", "purchase"), "P4", None),
    ("C2", 600, ("app", "purchase"), "P1", None),
    ("C2", 600 + 30 * DAY, ("app", "purchase"), "P4", None),
]


def _at(days: float) -> Any:
    return (START + pd.Timedelta(days=days)).to_pydatetime()


def _batch(base: RetailDataset, raw: list[Any], days: float) -> dict[str, CustomerProfile]:
    data = with_events(base, events_frame(raw))
    return {p.customer_id: p for p in build_profiles(data, as_of=_at(days), priors=PRIORS).profiles}


def test_three_lines_then_one_line_a_month_later_are_two_orders_thirty_days_apart(
    store: OnlineStore,  # noqa: F811 - the fixture
    base: RetailDataset,
) -> None:
    """Two orders, 30 days apart: orders 2 (lines 4), the basket the two orders' mean,
    the usual gap 30 days: active 40 days after the second order (1.5 gaps is 45 days),
    where a gap per line (30 / 3 = 10, floored at 14) had them lapsed (3 x 14 = 42 days
    is before 70); the same as the customer who bought the same orders as one line each.
    Online (the memory store and Redis) reads what the batch build reads."""
    at = 70
    batch = _batch(base, ORDERS, at)
    c1, c2 = batch["C1"], batch["C2"]
    assert (c1.orders_total, c1.orders_90d, c1.purchases_total) == (2, 2, 4)
    assert c1.average_basket == pytest.approx((3 * LINE + LINE) / 2)
    assert c1.lifecycle_state is c2.lifecycle_state is LifecycleState.ACTIVE
    assert orders_per_day(c1) == pytest.approx(orders_per_day(c2))
    online = fresh_online(store, base)
    online.ingest(events_frame(ORDERS))
    for cid, got in zip(["C1", "C2"], online.profiles(["C1", "C2"], _at(at)), strict=True):
        assert got is not None
        assert_profiles_equal(got, batch[cid])
    # 50 days after the second order: 1.5 gaps of 30 days passed, at risk
    assert _batch(base, ORDERS, 30 + 50)["C1"].lifecycle_state is LifecycleState.AT_RISK


def test_the_point_in_time_cut_counts_the_orders_known_then(base: RetailDataset) -> None:
    """Cut before the second order, the customer has one order of three lines; after it,
    two orders: the columns and the profiles of the cut agree with the batch build."""
    data = with_events(base, events_frame(ORDERS))
    rows = pd.DataFrame(
        {"customer_id": ["C1", "C1"], "timestamp": [START + pd.Timedelta(days=d) for d in (10, 70)]}
    )
    before, after = point_in_time(data, rows, priors=PRIORS, workers=1)
    assert (before.orders_total, before.purchases_total) == (1, 3)
    assert before.average_basket == pytest.approx(3 * LINE)
    assert (after.orders_total, after.purchases_total) == (2, 4)
    assert_profiles_equal(after, _batch(base, ORDERS, 70)["C1"])
    columns = point_in_time_columns(data, rows, priors=PRIORS)
    assert columns.average_basket.tolist() == pytest.approx([3 * LINE, 2 * LINE])
    assert columns.lifecycle.tolist() == [
        _lifecycle_code(before.lifecycle_state),
        _lifecycle_code(after.lifecycle_state),
    ]


def _lifecycle_code(state: LifecycleState) -> int:
    from features.point_in_time import _LIFECYCLE_CODE

    return _LIFECYCLE_CODE[state]


def test_a_return_of_one_line_of_three_keeps_the_order_a_return_of_the_order_removes_it(
    store: OnlineStore,  # noqa: F811 - the fixture
    base: RetailDataset,
) -> None:
    """Two days after the three-line order: a return of P2 (one line, no amount: whole)
    leaves the order (orders 2, lines 3); an ``order_returned`` naming no product undoes
    the latest order before it, its three lines, and the order with them (orders 1,
    lines 1: the later order). Online reads the same."""
    returned_at = 600 + 2 * DAY
    one_line = [*ORDERS, ("C1", returned_at, ("web", "order_returned"), "P2", None)]
    whole = [*ORDERS, ("C1", returned_at, ("web", "order_returned"), None, None)]
    for raw, orders, lines in ((one_line, 2, 3), (whole, 1, 1)):
        batch = _batch(base, raw, 40)
        c1 = batch["C1"]
        assert (c1.orders_total, c1.orders_90d, c1.purchases_total) == (orders, orders, lines)
        assert c1.average_basket == pytest.approx(lines * LINE / orders)
        online = fresh_online(store, base)
        # in time order: the store refuses an event older than its replay window before
        # its newest (the return two days after the first order, after the second)
        online.ingest(events_frame(raw).sort_values("timestamp", kind="stable"))
        [got] = online.profiles(["C1"], _at(40))
        assert got is not None
        assert_profiles_equal(got, c1)


def test_orders_past_the_return_window_fold_and_count_the_same(
    store: OnlineStore,  # noqa: F811 - the fixture
    base: RetailDataset,
) -> None:
    """Materialised 200 days on, the orders no return can undo any more are folded into
    the lines beyond their first (one field for all); the profile reads the same counts
    as the batch build's unfolded state."""
    data = with_events(base, events_frame(ORDERS))
    build = build_profiles(data, as_of=_at(200), priors=PRIORS)
    state = build.states["C1"]
    assert sorted(k for k in state if k.startswith("ol:")) == [
        f"ol:{int(START.timestamp()) + 600}",
        f"ol:{int(START.timestamp()) + 600 + 30 * DAY}",
    ]
    kept = stored_state(dict(state), _at(200).timestamp())
    assert not [k for k in kept if k.startswith("ol:")] and kept["lx"] == 2.0
    want = build_profile("C1", state, _at(200), priors=PRIORS)
    got = build_profile("C1", kept, _at(200), priors=PRIORS)
    assert (got.orders_total, got.average_basket) == (2, pytest.approx(2 * LINE))
    assert_profiles_equal(got, want)


def test_a_state_written_before_orders_were_kept_counts_each_line(base: RetailDataset) -> None:
    """A stored state without ``ol`` or ``lx`` (earlier versions) counts each line as an
    order, as every reader did; its later orders count as orders."""
    data = with_events(base, events_frame(ORDERS))
    state = dict(build_profiles(data, as_of=_at(40), priors=PRIORS).states["C1"])
    old = {k: v for k, v in state.items() if not k.startswith(("ol:", "lx"))}
    assert build_profile("C1", old, _at(40), priors=PRIORS).orders_total == 4
    newer = {**old, f"ol:{int(START.timestamp()) + 40 * DAY}": 2.0, "np": old["np"] + 2}
    assert build_profile("C1", newer, _at(41), priors=PRIORS).orders_total == 5


def test_the_scripts_fold_orders_as_the_reference_does(new_redis_store: Any) -> None:  # noqa: F811
    """Orders by second, some past the return window, folded by the Redis script exactly
    as :func:`features.state.fold_orders` folds them."""
    from features.finalise import CustomerStatic
    from features.online.redis_store import RedisOnlineStore

    redis_store = new_redis_store()
    assert isinstance(redis_store, RedisOnlineStore)
    at_day, window_days = 20_300, 7
    redis_store.replay_window_seconds = window_days * DAY
    seconds = [(at_day - d) * DAY + 3_600 for d in (200, 120, 98, 97, 96, 90, 10, 0)]
    state = {"np": 20.0, "lx": 1.0, **{f"ol:{s}": float(1 + i % 3) for i, s in enumerate(seconds)}}
    before_all = pd.Timestamp("1900-01-01", tz="UTC").to_pydatetime()  # no fold at materialise
    redis_store.materialise({"C1": state}, {"C1": CustomerStatic()}, before_all)
    at = at_day * DAY + 4_321
    assert redis_store.apply([EventOps("C1", "e1", at, (("n", 1.0),))]).applied == 1
    [after] = redis_store.read(["C1"])
    assert after is not None
    want = fold_orders(trim_state({**state, "n": 1.0}, at), at - window_days * DAY)
    assert dict(after.state) == want
    assert want["lx"] > 1.0 and any(k.startswith("ol:") for k in want)


def test_a_profile_table_written_before_orders_were_counted_reads_its_lines(
    base: RetailDataset,
) -> None:
    """A profile table without the order columns (written before them) reads each line as
    an order, as every reader did, not as no order at all (a first-order offer to every
    buyer, no cost on orders placed anyway); a table with them reads them."""
    from features.profile_table import (
        profile_to_row,
        profiles_frame,
        profiles_from_frame,
        row_to_profile,
    )

    profile = _batch(base, ORDERS, 40)["C1"]
    frame = profiles_frame([profile])
    old = frame.drop(columns=["orders_total", "orders_90d"])
    assert profiles_from_frame(old)[0].orders_total == 4
    assert profiles_from_frame(frame)[0].orders_total == 2
    row = {k: v for k, v in profile_to_row(profile).items() if not k.startswith("orders_")}
    assert row_to_profile(row).orders_90d == 4
