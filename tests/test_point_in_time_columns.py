"""The columnar point-in-time reader gives, value for value, what the per-profile path gives.

Training reads the profiles of its examples as columns
(:func:`features.point_in_time.point_in_time_columns`) and computes features
over them (:func:`training.contact_features.profile_matrix`...); serving builds
one live profile and computes its features in scalar arithmetic
(:func:`~training.contact_features.profile_features`...). These tests compare
every column (bit for bit) and every feature of the two paths over thousands of
simulated sends and other moments.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest

from features.batch import point_in_time
from features.dataset import RetailDataset
from features.finalise import ChannelPrior, FeaturePriors
from features.point_in_time import CHANNELS, ProfileColumns, point_in_time_columns
from nba.profile import CustomerProfile
from simulator import SimulatorConfig, simulate
from training.contact_features import (
    CHANNEL_FEATURES,
    PROFILE_FEATURES,
    channel_features,
    channel_matrix,
    profile_features,
    profile_matrix,
)
from training.examples import message_sends, reference_moment, sample_rows

#: Tier-specific priors, so that the smoothed rates depend on the tier read from the cut.
PRIORS = FeaturePriors(
    channels={
        "gold": {"email": ChannelPrior(0.4, 0.07, 0.2)},
        "*": {"email": ChannelPrior(0.25, 0.04, 0.1), "sms": ChannelPrior(0.5, 0.1, 0.1)},
    },
    promo_share=0.3,
    new_product_share=0.05,
)


@pytest.fixture(scope="module")
def world() -> tuple[RetailDataset, pd.DataFrame]:
    sim = simulate(SimulatorConfig(n_customers=400, days=45, seed=5, n_products=150))
    data = RetailDataset(sim.customers, sim.products, sim.offers, sim.events)
    sends = sample_rows(message_sends(data.events), 2500, 1)
    # moments that are not sends: a purchase's own second, and arbitrary times of day
    others = data.events.sample(500, random_state=2)[["customer_id", "timestamp"]]
    others = others.assign(timestamp=others["timestamp"] + pd.Timedelta(minutes=37, seconds=13))
    rows = pd.concat([sends[["customer_id", "timestamp"]], others], ignore_index=True)
    return data, rows


@pytest.fixture(scope="module")
def both(world: tuple[RetailDataset, pd.DataFrame]) -> tuple[ProfileColumns, ProfileColumns]:
    data, rows = world
    profiles = point_in_time(data, rows, priors=PRIORS, workers=1)
    return point_in_time_columns(data, rows, priors=PRIORS), ProfileColumns.of_profiles(profiles)


def test_every_column_equals_the_profiles(both: tuple[ProfileColumns, ProfileColumns]) -> None:
    columnar, profiles = both
    assert len(columnar) == len(profiles) == 3000
    for f in dataclasses.fields(ProfileColumns):
        got, want = getattr(columnar, f.name), getattr(profiles, f.name)
        assert got.shape == want.shape, f.name
        if got.dtype == object:
            assert got.tolist() == want.tolist(), f.name
        else:
            np.testing.assert_array_equal(got, want, err_msg=f.name)


def test_the_data_exercises_every_column(both: tuple[ProfileColumns, ProfileColumns]) -> None:
    """Not a vacuous comparison: the simulated rows vary in every column."""
    columnar, _ = both
    for f in dataclasses.fields(ProfileColumns):
        if f.name == "has_engagement":  # every consent channel, by construction
            continue
        values = getattr(columnar, f.name)
        flat = values.reshape(len(values), -1)
        assert len({tuple(map(str, r)) for r in flat.tolist()}) > 1, f.name
    assert columnar.has_cart.any() and not columnar.has_cart.all()
    assert len(np.unique(columnar.lifecycle)) >= 3


def test_every_feature_equals_the_per_profile_features(
    world: tuple[RetailDataset, pd.DataFrame], both: tuple[ProfileColumns, ProfileColumns]
) -> None:
    data, rows = world
    columnar, _ = both
    profiles = point_in_time(data, rows.iloc[:600], priors=PRIORS, workers=1)
    rng = np.random.default_rng(0)
    channel = rng.integers(0, len(CHANNELS), len(profiles))
    hours = rng.integers(-1, 168, len(profiles))
    base = profile_matrix(columnar.take(np.arange(len(profiles))))
    per = channel_matrix(columnar.take(np.arange(len(profiles))), channel, hours % 24)
    per_unknown_hour = np.where(hours < 0)[0]
    per[per_unknown_hour] = channel_matrix(
        columnar.take(per_unknown_hour), channel[per_unknown_hour], hours[per_unknown_hour]
    )
    assert base.shape == (len(profiles), len(PROFILE_FEATURES))
    assert per.shape == (len(profiles), len(CHANNEL_FEATURES))
    # the online path computes in Python floats (math.log), the columnar one with numpy
    # (np.log): they may differ in the last bit of a logarithm, nowhere else
    for i, p in enumerate(profiles):
        np.testing.assert_allclose(base[i], profile_features(p), rtol=1e-14, atol=1e-14)
        local = None if hours[i] < 0 else reference_moment(int(hours[i]))
        one = channel_features(p, CHANNELS[channel[i]], local)
        np.testing.assert_allclose(per[i], one, rtol=1e-14, atol=1e-14)


def test_profiles_without_history_or_engagement() -> None:
    cols = ProfileColumns.of_profiles([CustomerProfile("C1")])
    row = profile_matrix(cols)[0]
    assert row[PROFILE_FEATURES.index("never_visited")] == 1.0
    assert row[PROFILE_FEATURES.index("best_open_rate")] == 0.0
    fit = channel_matrix(cols, np.array([0]), np.array([18]))[0]
    assert fit[CHANNEL_FEATURES.index("hour_fit")] == 1.0  # no activity known: average hour
    assert fit[CHANNEL_FEATURES.index("log_sent")] == 0.0


def test_no_rows_gives_empty_columns(world: tuple[RetailDataset, pd.DataFrame]) -> None:
    data, rows = world
    cols = point_in_time_columns(data, rows.iloc[:0])
    assert len(cols) == 0
    assert profile_matrix(cols).shape == (0, len(PROFILE_FEATURES))


def test_activity_spread_in_blocks_equals_one_block(
    world: tuple[RetailDataset, pd.DataFrame],
    both: tuple[ProfileColumns, ProfileColumns],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Memory is bounded by spreading activity a block of rows at a time; blocks that
    split the rows anywhere give the same values."""
    data, rows = world
    monkeypatch.setattr("features.point_in_time._ACTIVITY_BLOCK", 701)
    blocked = point_in_time_columns(data, rows, priors=PRIORS)
    np.testing.assert_array_equal(blocked.day_activity, both[0].day_activity)
