"""The lines of one order are one order to the lifecycle (issue 12: public data).

The contract has one ``purchase`` event per order line (a Segment ``Order Completed``
becomes one per product), at the order's second. The lifecycle read a customer's usual
gap between orders as ``(last - first) / (purchases - 1)``: one order of two lines gave
the 14-day floor, so its buyer was at risk three weeks later and lapsed in six (a
reactivation "we miss you" to a customer who bought once, a month ago), never ``new``
and in the ``loyalty`` phase, where the same order as one line kept them ``active``
for the usual 45-day gap. A repeat buyer is one who bought at two moments or more, in
the profile's one definition, the online store, the columnar reader and the
point-in-time columns alike.
"""

from __future__ import annotations

import pandas as pd

from features.batch import build_profiles, point_in_time
from features.dataset import RetailDataset
from features.online.store import OnlineStore
from features.point_in_time import ProfileColumns, point_in_time_columns
from nba.profile import JourneyPhase, LifecycleState
from tests.helpers import PRIORS, START, assert_profiles_equal, events_frame, with_events
from tests.test_online_store import (  # noqa: F401 - fixtures
    embedded_redis,
    fresh_online,
    new_store,
    store,
    system_redis,
)

DAY = 86_400
#: C1 buys two products in one order (two lines, one second); C2 the same as one line.
ONE_ORDER = [
    ("C1", 600, ("app", "purchase"), "P1", None),
    ("C1", 600, ("app", "purchase"), "P2", None),
    ("C2", 600, ("app", "purchase"), "P1", None),
]


def test_one_order_of_two_lines_is_not_a_repeat_buyer_lapsing_in_six_weeks(
    store: OnlineStore,  # noqa: F811 - the fixture
    base: RetailDataset,
) -> None:
    events = events_frame(ONE_ORDER)
    for days, state in ((25, LifecycleState.ACTIVE), (45, LifecycleState.ACTIVE)):
        at = (START + pd.Timedelta(days=days)).to_pydatetime()
        batch = {
            p.customer_id: p
            for p in build_profiles(with_events(base, events), as_of=at, priors=PRIORS).profiles
        }
        two_lines, one_line = batch["C1"], batch["C2"]
        assert two_lines.purchases_total == 2 and one_line.purchases_total == 1
        assert two_lines.lifecycle_state is one_line.lifecycle_state is state, days
        assert two_lines.journey_phase is not JourneyPhase.LOYALTY
        assert two_lines.journey_phase is one_line.journey_phase
        online = fresh_online(store, base)
        online.ingest(events)
        for cid, got in zip(["C1", "C2"], online.profiles(["C1", "C2"], at), strict=True):
            assert got is not None
            assert_profiles_equal(got, batch[cid])


def test_a_second_order_at_another_moment_makes_a_repeat_buyer(base: RetailDataset) -> None:
    events = events_frame([*ONE_ORDER, ("C1", 600 + 20 * DAY, ("app", "purchase"), "P3", None)])
    at = (START + pd.Timedelta(days=100)).to_pydatetime()
    [c1] = [
        p
        for p in build_profiles(with_events(base, events), as_of=at, priors=PRIORS).profiles
        if p.customer_id == "C1"
    ]
    assert c1.lifecycle_state is LifecycleState.LAPSED  # 80 days quiet after a 14-day rhythm


def test_the_point_in_time_columns_read_one_order_as_the_profiles_do(base: RetailDataset) -> None:
    data = with_events(base, events_frame(ONE_ORDER))
    rows = pd.DataFrame(
        {
            "customer_id": ["C1", "C2", "C1", "C2"],
            "timestamp": [START + pd.Timedelta(days=d) for d in (10, 10, 45, 45)],
        }
    )
    columns = point_in_time_columns(data, rows, priors=PRIORS)
    profiles = point_in_time(data, rows, priors=PRIORS, workers=1)
    assert columns.lifecycle.tolist() == ProfileColumns.of_profiles(profiles).lifecycle.tolist()
    assert [p.lifecycle_state for p in profiles] == [LifecycleState.ACTIVE] * 4
