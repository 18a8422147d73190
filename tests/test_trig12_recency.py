"""The browse reminder's trigger rate by recency cell (trig12): a customer's browse-left
days per day read from their 30-day count *and* their days since the last visit, the
cells' rates learned in the feature build from what followed each cell a week before.

The reserve (nba.reserve) holds sends for the evening browse reminder at this rate; at
zero own days the store's prior alone used to speak, so a customer quiet for months got
the store's average (trig11: 2-5x too high for lapsed customers and prospects).
"""

from __future__ import annotations

import collections
import dataclasses
import datetime as dt
import random

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from features.batch import build_profiles, recency_sums
from features.dataset import RetailDataset
from features.finalise import (
    OWN_DAY_CLASSES,
    RECENCY_CELLS,
    RECENCY_CLASSES,
    RECENCY_LEARNING_DAYS,
    CustomerStatic,
    FeaturePriors,
    build_profile,
    left_days_between,
    recency_cell,
    split_state,
    trigger_rate,
)
from features.online.profiles import OnlineProfiles
from features.online.store import priors_from_json, priors_to_json
from features.profile_columns import left_days_between_columns, read_profiles, recency_cells
from tests.helpers import START, assert_profiles_equal, events_frame, with_events
from tests.test_features_profile_columns import AS_OF, NOW, TODAY, columns_of
from tests.test_online_store import (  # the stores' fixtures, by name
    RAW_SPREAD,
    SHUFFLES,
    NewStore,
    embedded_redis,  # noqa: F401
    make_store,
    system_redis,  # noqa: F401
)

DAY = 86_400
#: Every cell its own rate, so that a wrong cell shows.
CELL_PRIORS = FeaturePriors(
    promo_share=0.3,
    new_product_share=0.1,
    browse_left_rate=0.04,
    browse_left_weight=20.0,
    browse_left_cells=tuple(0.001 * (i + 1) for i in range(RECENCY_CELLS)),
)

# states with the families the rate reads: views (seconds per UTC day), carts and
# purchases per day, the last visit and the first seen, around AS_OF
view_days = st.dictionaries(
    st.integers(TODAY - 40, TODAY + 1).map(lambda d: f"wm:{d}"),
    st.sampled_from([0.0, 60.0, 119.0, 120.0, 600.0]),
    max_size=25,
)
cart_days = st.dictionaries(
    st.integers(TODAY - 40, TODAY + 1).map(lambda d: f"wc:{d}"), st.just(1.0), max_size=5
)
purchase_days = st.dictionaries(
    st.integers(TODAY - 40, TODAY + 1).map(lambda d: f"pd:{d}"),
    st.sampled_from([0.0, 1.0, 2.0]),
    max_size=5,
)
times = st.integers(NOW - 400 * DAY, NOW + DAY).map(float)
scalars = st.fixed_dictionaries({}, optional={"tv": times, "t0": times})


@st.composite
def browse_states(draw: st.DrawFn) -> dict[str, float]:
    state: dict[str, float] = {}
    for part in (scalars, view_days, cart_days, purchase_days):
        state.update(draw(part))
    return state


@settings(max_examples=60, deadline=None)
@given(
    flat=st.lists(browse_states(), min_size=1, max_size=6),
    back=st.lists(st.integers(-3 * DAY, 0), min_size=6, max_size=6),
)
def test_the_columnar_rate_reads_the_cell_the_definition_reads(
    flat: list[dict[str, float]], back: list[int]
) -> None:
    ids = [f"C{i}" for i in range(len(flat))]
    statics = [CustomerStatic()] * len(flat)
    at = [AS_OF + dt.timedelta(seconds=s) for s in back[: len(flat)]]
    got = read_profiles(*columns_of(flat), ids, statics, at, CELL_PRIORS)
    for cid, state, moment, profile in zip(ids, flat, at, got, strict=True):
        expected = build_profile(cid, state, moment, CustomerStatic(), CELL_PRIORS)
        cell = recency_cell(
            expected.browse_left_days_30d,
            expected.hours_since_last_browse,
            expected.browse_days_30d,
            expected.days_since_last_visit,
        )
        assert expected.browse_left_rate == CELL_PRIORS.browse_left_cells[cell]
        assert profile == expected


@settings(max_examples=60, deadline=None)
@given(
    flat=st.lists(browse_states(), min_size=1, max_size=6),
    start=st.integers(NOW - 10 * DAY, NOW),
    length=st.integers(0, 9 * DAY),
)
def test_the_learning_outcome_in_columns_is_the_definitions(
    flat: list[dict[str, float]], start: int, length: int
) -> None:
    got = left_days_between_columns(
        *columns_of(flat), len(flat), float(start), float(start + length)
    ).tolist()
    want = [left_days_between(split_state(s)[1], start, start + length) for s in flat]
    assert got == want


def test_the_cells_are_read_as_their_classes_say() -> None:
    rows = [
        # own days, hours since browse, browse days, days since visit
        (0, 2.0, 1, 0.1),
        (0, 24.0, 1, 0.1),
        (0, 24.5, 2, 1.0),
        (0, 168.0, 2, 7.0),
        (0, None, 3, 9.0),  # browsed 8-30 days ago
        (0, None, 0, 2.0),  # no browse in 30 days, a visit (an open) two days ago
        (0, None, 0, 30.5),
        (0, None, 0, 90.5),
        (0, None, 0, None),
        (1, 3.0, 1, 0.1),
        (5, 3.0, 5, 0.1),
        (6, 3.0, 9, 0.1),
        (40, None, 20, 8.0),
    ]
    want = [recency_cell(*row) for row in rows]
    nan = float("nan")
    got = recency_cells(
        np.array([r[0] for r in rows], dtype=float),
        np.array([nan if r[1] is None else r[1] for r in rows]),
        np.array([r[2] for r in rows], dtype=float),
        np.array([nan if r[3] is None else r[3] for r in rows]),
    )
    assert got.tolist() == want
    w = RECENCY_CLASSES
    assert want == [0, 0, 1, 2, 3, 4, 5, 6, 6, w, 4 * w, 5 * w, 5 * w + 3]
    assert (len(OWN_DAY_CLASSES) + 1) * w == RECENCY_CELLS


def test_priors_keep_their_cells_through_the_online_store() -> None:
    assert priors_from_json(priors_to_json(CELL_PRIORS)) == CELL_PRIORS
    # priors stored before the cells: none learned, the 30-day count's rate stands in
    older = priors_from_json(priors_to_json(dataclasses.replace(CELL_PRIORS, browse_left_cells=())))
    assert older.browse_left_cells == ()
    profile = build_profile("C1", {"wm:1": 600.0}, AS_OF, CustomerStatic(), older)
    assert profile.browse_left_rate == trigger_rate(0, 0.04, 20.0)


@pytest.fixture(params=["memory", "embedded_redis", "system_redis"])
def new_store(request: pytest.FixtureRequest) -> NewStore:
    return lambda: make_store(request.param, request)


@settings(
    max_examples=10, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(raw=RAW_SPREAD, seed=SHUFFLES, later_hours=st.integers(1, 100 * 24))
def test_online_rate_equals_batch_at_any_later_moment(
    new_store: NewStore,
    base: RetailDataset,
    raw: list[tuple[object, ...]],
    seed: random.Random,
    later_hours: int,
) -> None:
    """The online store's profile reads the same cell as the batch build's, with the
    store's cells (not the 30-day count's prior) stored beside the profiles."""
    events = events_frame(raw)
    at = (events["timestamp"].max() + pd.Timedelta(hours=later_hours)).to_pydatetime()
    want = {
        p.customer_id: p
        for p in build_profiles(with_events(base, events), as_of=at, priors=CELL_PRIORS).profiles
    }
    online = OnlineProfiles(new_store(), base.products)
    empty = with_events(base, events_frame([]).iloc[0:0])
    online.materialise(build_profiles(empty, as_of=START.to_pydatetime(), priors=CELL_PRIORS))
    events = events.sort_values("timestamp", kind="stable").reset_index(drop=True)
    position = 0
    while position < len(events):
        size = seed.randint(1, 6)
        online.ingest(events.iloc[position : position + size])
        position += size
    for cid, got in zip(["C1", "C2"], online.profiles(["C1", "C2"], at), strict=True):
        assert got is not None
        assert_profiles_equal(got, want[cid])


def _session(cid: str, day: int, hour: int, leaves: bool) -> list[tuple[object, ...]]:
    """A web session ``day`` days after START: two product views (two minutes: products
    left behind), and an add-to-cart when it does not leave them."""
    at = day * DAY + hour * 3_600
    rows: list[tuple[object, ...]] = [
        (cid, at, ("web", "product_view"), "P1", None),
        (cid, at + 60, ("web", "product_view"), "P2", None),
    ]
    if not leaves:
        rows.append((cid, at + 120, ("web", "add_to_cart"), "P1", None))
    return rows


def test_a_customer_quiet_for_months_is_not_given_the_stores_average(
    base: RetailDataset,
) -> None:
    """A store from raw events: regulars who browse and leave products every few days,
    and customers whose last visit was months ago and who never come back. At zero own
    days both a lapsed customer and a regular between bursts used to get the store's
    shrunk average; the cells tell them apart, from what followed each a week before."""
    rng = random.Random(7)
    raw: list[tuple[object, ...]] = []
    regulars = [f"R{i}" for i in range(40)]
    lapsed = [f"L{i}" for i in range(40)]
    for cid in regulars:
        raw += [
            row for day in range(0, 150, 3) for row in _session(cid, day, 19, rng.random() < 0.5)
        ]
    for cid in lapsed:
        raw += [row for day in range(0, 20, 4) for row in _session(cid, day, 19, True)]
    events = events_frame(raw)
    customers = pd.concat(
        [base.customers.iloc[[0]].assign(customer_id=cid) for cid in regulars + lapsed],
        ignore_index=True,
    )
    data = dataclasses.replace(with_events(base, events), customers=customers)
    at = (START + pd.Timedelta(days=150)).to_pydatetime()
    build = build_profiles(data, as_of=at)
    priors = build.priors
    assert len(priors.browse_left_cells) == RECENCY_CELLS
    by_id = {p.customer_id: p for p in build.profiles}
    quiet = by_id["L0"]
    assert quiet.browse_left_days_30d == 0 and quiet.browse_days_30d == 0
    assert quiet.days_since_last_visit is not None and quiet.days_since_last_visit > 90
    store_zero = trigger_rate(0, priors.browse_left_rate, priors.browse_left_weight)
    # nobody quiet for months came back in the week learned from: their cell's rate
    # is below the store's zero-count rate by the weight of the evidence
    assert quiet.browse_left_rate < store_zero / 2
    # a regular's rate is what regulars in their cell did the week after
    regular = by_id["R0"]
    assert regular.browse_left_rate > store_zero


def test_recency_sums_count_each_customer_a_week_before(base: RetailDataset) -> None:
    """The learning counts each customer once, in their profile's cell a week before
    the build, with the whole days since as exposure and their browse-left days as
    events (the definition's own functions, not the columns')."""
    raw: list[tuple[object, ...]] = []
    for day in (1, 2, 10, 20, 24, 25, 27):
        raw += _session("C1", day, 12, True)
    for day in (3, 26):
        raw += _session("C2", day, 12, day == 26)
    events = events_frame(raw)
    data = with_events(base, events)
    at = (START + pd.Timedelta(days=28, hours=6)).to_pydatetime()
    cut = at - dt.timedelta(days=RECENCY_LEARNING_DAYS)
    now = {
        p.customer_id: p for p in build_profiles(data, as_of=at, priors=FeaturePriors()).profiles
    }
    before = build_profiles(data, as_of=cut, priors=FeaturePriors())
    states = build_profiles(data, as_of=at, priors=FeaturePriors()).states
    left = {
        cid: left_days_between(split_state(dict(states[cid]))[1], cut.timestamp(), at.timestamp())
        for cid in now
    }
    exposure, events_per_cell = recency_sums(data, at, left)
    want_exposure = collections.Counter[int]()
    want_events = collections.Counter[int]()
    for p in before.profiles:
        cell = recency_cell(
            p.browse_left_days_30d,
            p.hours_since_last_browse,
            p.browse_days_30d,
            p.days_since_last_visit,
        )
        want_exposure[cell] += 6  # 22 Mar 06:00 to 29 Mar 06:00: six whole days
        want_events[cell] += left.get(p.customer_id, 0)
    assert exposure == [float(want_exposure[i]) for i in range(RECENCY_CELLS)]
    assert events_per_cell == [float(want_events[i]) for i in range(RECENCY_CELLS)]
    assert left["C1"] == 3 and left["C2"] == 1  # days 24, 25, 27; day 26
