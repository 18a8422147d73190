"""Seasonal buyers: the Bayesian test against a simulated truth, and its state online.

The detector (:mod:`features.seasonality`) is checked where its answer is known: on a
simulated retailer whose seasonal customers are drawn by the simulator, on shopping
histories built to fool a threshold rule, and through the online store, which folds
old shopping days into months (:func:`features.state.fold_shopping_days`) and must read
the same seasons from them as the batch build reads from the days.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
import uuid
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from features import seasonality
from features.batch import ProfileBuild, build_profiles
from features.dataset import RetailDataset
from features.finalise import CustomerStatic, FeaturePriors
from features.online import codec
from features.online.profiles import OnlineProfiles
from features.online.redis_store import RedisOnlineStore
from features.online.store import EventOps, priors_from_json, priors_to_json
from features.seasonality import (
    SEASON_SETS,
    estimate_season_prior,
    flat_season_prior,
    season_log_likelihoods,
    season_probabilities,
    seasonal_months,
    shopping_months,
)
from features.state import fold_shopping_days, trim_state
from nba.catalog import parse_catalog
from nba.contact_policy import parse_contact_policy
from nba.context import CustomerContext
from nba.pipeline import build_pipeline
from simulator import SimulatorConfig, simulate
from tests.api_support import redis_client
from tests.test_online_store import (  # noqa: F401 - fixtures
    NewStore,
    embedded_redis,
    new_redis_store,
    system_redis,
)
from tests.test_scenarios import customer, seasonal_shopper

EXAMPLES = Path(__file__).resolve().parents[1] / "nba" / "examples"
DAY = 86_400
_EPOCH = dt.date(1970, 1, 1)
FLAT_YEAR = (1.0,) * 12


def _month_date(index: int) -> dt.date:
    """The first day of calendar month ``index`` (months since January 1970)."""
    return dt.date(1970 + index // 12, index % 12 + 1, 1)


def day_number(date: dt.date) -> int:
    return (date - _EPOCH).days


def seconds(date: dt.date) -> float:
    return float(day_number(date) * DAY)


def days_where(start: dt.date, end: dt.date, per_month: dict[tuple[int, int], int]) -> dict:
    """``ad`` fields: the first ``per_month[(year, month)]`` days of each month."""
    out = {}
    day = start
    while day < end:
        if day.day <= per_month.get((day.year, day.month), 0):
            out[str(day_number(day))] = 1.0
        day += dt.timedelta(days=1)
    return out


# ---------------------------------------------------------------- against the simulator


@pytest.fixture(scope="module")
def two_years() -> tuple[ProfileBuild, pd.DataFrame]:
    """A 500-customer retailer over 730 days, built with its own priors (as a store is)."""
    sim = simulate(SimulatorConfig(n_customers=500, days=730, seed=3))
    data = RetailDataset(sim.customers, sim.products, sim.offers, sim.events)
    return build_profiles(data, workers=1), sim.truth.customers


def true_pairs(truth: pd.DataFrame) -> set[tuple[str, int]]:
    return {
        (cid, int(m))
        for cid, first, second in truth[
            ["customer_id", "season_month_1", "season_month_2"]
        ].itertuples(index=False)
        for m in (first, second)
        if not pd.isna(m)
    }


def test_simulated_seasonal_buyers_are_found_with_their_months(
    two_years: tuple[ProfileBuild, pd.DataFrame],
) -> None:
    """On two years of a simulated retailer, the claimed (customer, month) pairs are mostly
    true and find most of the true ones (BENCHMARKS.md has the 5,000-customer numbers)."""
    build, truth = two_years
    want = true_pairs(truth)
    claimed = {(p.customer_id, m) for p in build.profiles for m in p.seasonal_months}
    hit = len(want & claimed)
    assert hit / len(claimed) >= 0.8
    assert hit / len(want) >= 0.7
    # the store's prior learnt its customers' seasons: two months six apart, spring first
    prior = build.priors.season_prior
    top = sorted(range(len(SEASON_SETS)), key=lambda i: -prior[i + 1])[:3]
    assert all(len(SEASON_SETS[i]) == 2 and SEASON_SETS[i][1] - SEASON_SETS[i][0] == 6 for i in top)
    assert 0.6 <= prior[0] <= 0.95  # most customers have no season


def test_three_months_of_history_claim_no_season() -> None:
    sim = simulate(SimulatorConfig(n_customers=150, days=90, seed=3))
    data = RetailDataset(sim.customers, sim.products, sim.offers, sim.events)
    assert not any(p.seasonal_months for p in build_profiles(data, workers=1).profiles)


def test_seasonal_anticipation_reaches_detected_customers_a_month_ahead(
    two_years: tuple[ProfileBuild, pd.DataFrame],
) -> None:
    """Decided at the end of the simulated history (4 January), the customers whose
    detected months hold February are eligible for the seasonal preview unless they
    bought in the last 20 days or consent to none of its channels, and nobody else is."""
    build, _ = two_years
    catalog = parse_catalog((EXAMPLES / "retailer_catalog.yaml").read_text())
    policy = parse_contact_policy((EXAMPLES / "contact_policy.yaml").read_text())
    pipeline = build_pipeline(catalog, policy)
    now = build.as_of
    upcoming = now.month % 12 + 1
    channels = catalog["seasonal_anticipation"].channels
    expected = eligible = 0
    for profile in build.profiles:
        decision = pipeline.route(CustomerContext(profile, now), seed=profile.customer_id).decision
        reached = "seasonal_anticipation" in decision.eligible_action_ids
        recent = (profile.days_since_last_purchase or math.inf) < 20
        should = (
            upcoming in profile.seasonal_months
            and not recent
            and any(profile.consented(c) for c in channels)
        )
        assert reached == should, profile.customer_id
        expected += should
        eligible += reached
    assert expected >= 5  # the world has customers of a February season to reach


# ---------------------------------------------------------------- the test itself


def test_customers_who_lapse_are_not_taken_for_seasonal_ones(
    two_years: tuple[ProfileBuild, pd.DataFrame], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The simulator's lapsing customers go quiet on a day of their own: the months of
    the year seen before it twice look busy against a constant rate. The change of rate
    the model allows explains them; without it (the store's prior refitted the same
    way) many more of those without a season would be claimed."""
    build, truth = two_years
    lapsing = set(truth.loc[truth["persona"] == "lapsing", "customer_id"])
    seasonal = {c for c, _ in true_pairs(truth)}
    now, store = build.as_of.timestamp(), build.priors.month_activity
    customers = [
        (cid, seasonality.state_months(build.states[cid]), build.states[cid].get("t0"))
        for cid in sorted(lapsing - seasonal)
        if cid in build.states
    ]

    def flagged(prior: tuple[float, ...]) -> int:
        return sum(
            max(season_probabilities(months, first, now, store, prior)) >= seasonality.THRESHOLD
            for _, months, first in customers
        )

    with_change = flagged(build.priors.season_prior)
    monkeypatch.setattr(seasonality, "CHANGE_PROBABILITY", 0.0)  # a constant rate
    refitted = seasonality.store_season_prior(
        ((c, seasonality.state_months(s), s.get("t0")) for c, s in build.states.items()),
        now,
        store,
    )
    without_change = flagged(refitted)
    assert len(customers) >= 20
    assert with_change <= 0.1 * len(customers)
    assert without_change >= 2 * max(with_change, 1)


def test_the_store_prior_lets_the_seasons_it_shares_need_less_evidence() -> None:
    """A population where a quarter of the customers shop 5x more in April and October:
    the fitted prior puts its seasonal mass on that pair and finds more of them than the
    flat prior, for fewer errors in all (a prior that expects the pair claims it on
    less evidence, for the others too: precision falls, less than recall rises)."""
    rng = np.random.default_rng(5)
    start, end = dt.date(2024, 1, 1), dt.date(2026, 1, 1)
    months = [(y, m) for y in (2024, 2025) for m in range(1, 13)]
    population = []
    for i in range(400):
        seasonal = i % 4 == 0
        rate = rng.gamma(2.0, 1.0)  # shopping days per month, out of season
        lift = {(y, m): (5.0 if seasonal and m in (4, 10) else 1.0) for y, m in months}
        per_month = {k: min(int(rng.poisson(rate * lift[k] * 0.6)), 28) for k in months}
        population.append((seasonal, shopping_months(days_where(start, end, per_month), {})))
    as_of = seconds(end)
    liks = [season_log_likelihoods(m, seconds(start), as_of, FLAT_YEAR) for _, m in population]
    prior = estimate_season_prior(liks)
    april_october = 1 + SEASON_SETS.index((3, 9))
    assert prior[april_october] == max(prior[1:])
    assert prior[april_october] > 0.5 * (1.0 - prior[0])

    def found(with_prior: tuple[float, ...]) -> tuple[int, int]:
        hits = false = 0
        for seasonal, m in population:
            days = {str(day_number(_month_date(i))): n for i, n in m.items()}
            claimed = set(seasonal_months({}, seconds(start), as_of, FLAT_YEAR, with_prior, days))
            hits += seasonal and claimed == {4, 10}
            false += not seasonal and bool(claimed)
        return hits, false

    flat_hits, flat_false = found(flat_season_prior())
    store_hits, store_false = found(prior)
    assert store_hits > flat_hits
    # more found than falsely claimed, and fewer errors (misses + false claims) in all
    assert store_hits - flat_hits > store_false - flat_false
    assert store_hits / (store_hits + store_false) >= 0.75


def test_the_store_prior_survives_the_online_priors() -> None:
    priors = FeaturePriors(season_prior=tuple(np.linspace(1, 2, 1 + len(SEASON_SETS)).tolist()))
    assert priors_from_json(priors_to_json(priors)).season_prior == priors.season_prior
    older = priors_to_json(FeaturePriors()).replace('"season_prior"', '"ignored"')
    assert priors_from_json(older).season_prior == flat_season_prior()


# ---------------------------------------------------------------- folded online


SHOPPING_DAYS = st.sets(st.integers(0, 760), min_size=1, max_size=120)


@settings(max_examples=60, deadline=None)
@given(offsets=SHOPPING_DAYS, fold_at=st.integers(0, 800), first_seen=st.integers(-30, 400))
def test_seasons_read_from_folded_months_are_the_seasons_read_from_days(
    offsets: set[int], fold_at: int, first_seen: int
) -> None:
    """Folding any prefix of the days into months changes no posterior (the detector
    reads months), whatever the days and the first-seen date."""
    day0 = day_number(dt.date(2024, 1, 1))
    state = {f"ad:{day0 + d}": 1.0 for d in offsets}
    as_of = float((day0 + 800) * DAY)
    folded = fold_shopping_days(state, float((day0 + fold_at) * DAY))
    assert sum(folded.values()) == len(state)
    seen = float((day0 + first_seen) * DAY)

    def read(s: dict[str, float]) -> tuple[float, ...]:
        return season_probabilities(seasonality.state_months(s), seen, as_of, FLAT_YEAR)

    assert read(folded) == read(state)


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    offsets=st.sets(st.integers(-850, 0), min_size=1, max_size=60),
    at_day=st.integers(700, 85_000),  # 1971 to 2202: leap years and centuries
    window_days=st.integers(1, 40),
)
def test_the_scripts_fold_days_as_the_reference_does(
    new_redis_store: NewStore,  # noqa: F811 - the fixture above
    offsets: set[int],
    at_day: int,
    window_days: int,
) -> None:
    """An event applied to a customer with shopping days compacts and folds them in Lua
    exactly as :func:`~features.state.trim_state` and :func:`fold_shopping_days` do."""
    store = new_redis_store()
    assert isinstance(store, RedisOnlineStore)
    store.replay_window_seconds = window_days * DAY
    state = {f"ad:{at_day + d}": 1.0 for d in offsets}
    before_all = dt.datetime(1900, 1, 1, tzinfo=dt.UTC)  # no fold at materialise
    store.materialise({"C1": state}, {"C1": CustomerStatic()}, before_all)
    [before] = store.read(["C1"])
    assert before is not None and before.state == state
    at = at_day * DAY + 4321
    result = store.apply([EventOps("C1", "e1", at, ((f"ad:{at_day}", 1.0),))])
    assert result.applied == 1
    [after] = store.read(["C1"])
    assert after is not None
    with_event = {**state, f"ad:{at_day}": 1.0}
    want = fold_shopping_days(trim_state(with_event, at), at - window_days * DAY)
    assert after.state == want


def test_online_profiles_keep_months_not_days_and_read_the_same_seasons(
    base: RetailDataset, tmp_path: Path
) -> None:
    """Two years of a seasonal shopper ingested as they happen: the Redis state keeps the
    last week's days and one count per older month, is smaller than the days it replaces,
    and gives the seasonal months the batch build gives."""
    now = dt.datetime(2026, 3, 5, 9, 0, tzinfo=dt.UTC)
    people = customer(base, created_at="2024-01-10T09:00:00Z", consents=("email",))
    raw = seasonal_shopper()
    flat = FeaturePriors()
    batch = build_profiles(dataclasses.replace(base, customers=people, events=raw), now, flat)
    store = RedisOnlineStore(redis_client(tmp_path), prefix=f"fold{uuid.uuid4().hex[:8]}")
    online = OnlineProfiles(store, base.products)
    start = dt.datetime(2024, 1, 10, 10, 0, tzinfo=dt.UTC)
    empty = dataclasses.replace(base, customers=people, events=raw.iloc[0:0])
    online.materialise(build_profiles(empty, as_of=start, priors=flat))
    ordered = raw.sort_values("timestamp").reset_index(drop=True)
    for i in range(0, len(ordered), 3):
        online.ingest(ordered.iloc[i : i + 3].reset_index(drop=True))
    [stored] = store.read(["C1"])
    assert stored is not None
    state = dict(stored.state)
    days = [f for f in state if f.startswith("ad:")]
    months = [f for f in state if f.startswith("am:")]
    assert len(days) <= 8 and len(months) >= 12
    assert sum(state[f] for f in months) + len(days) == len(
        [f for f in batch.states["C1"] if f.startswith("ad:")]
    )

    def seasons_bytes(s: dict[str, float]) -> int:
        return len(codec.pack({f: v for f, v in s.items() if f[:3] in ("ad:", "am:")}, {}))

    assert seasons_bytes(state) < seasons_bytes(batch.states["C1"]) / 2
    got = online.profile("C1", now)
    [want] = batch.profiles
    assert got is not None and got.seasonal_months == want.seasonal_months == (4, 10)
