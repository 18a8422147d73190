"""Send time on simulated data: closer to the true peak than the best global hour, quiet hours
respected, thin histories shrunk toward the segment."""

from __future__ import annotations

import dataclasses
import datetime as dt

import numpy as np
import pytest

from features.dataset import RetailDataset
from nba.channels import Channel
from nba.contact_policy import ContactPolicy, parse_contact_policy
from nba.profile import CustomerProfile
from simulator import SimulatedRetailer, SimulatorConfig, simulate
from training.send_time import (
    SendTimeConfig,
    SendTimeModel,
    allowed_hours,
    evaluate_send_time,
    fit_concentration,
    hour_distance,
)


@pytest.fixture(scope="module")
def sim() -> SimulatedRetailer:
    return simulate(SimulatorConfig(n_customers=1000, days=45, seed=5, n_products=300))


@pytest.fixture(scope="module")
def data(sim: SimulatedRetailer) -> RetailDataset:
    return RetailDataset(sim.customers, sim.products, sim.offers, sim.events)


@pytest.fixture(scope="module")
def model(data: RetailDataset) -> SendTimeModel:
    return SendTimeModel().fit(data)


def test_chosen_hour_beats_the_best_global_hour(
    model: SendTimeModel, sim: SimulatedRetailer
) -> None:
    evaluation = evaluate_send_time(model, sim.truth.customers)
    share = evaluation.within_one_hour
    for channel in ("email", "sms", "push"):
        assert share["model"][channel] > share["global"][channel] + 0.05
        assert share["model"][channel] > share["segment"][channel]
        assert share["model"][channel] <= share["oracle"][channel]
    # the more history, the better the own estimate
    history = evaluation.by_history["model"]
    assert history["10+ events"] > history["1-9 events"]


def test_chosen_hours_respect_each_channels_quiet_hours(model: SendTimeModel) -> None:
    ids = list(model.customer_ids[:200])
    policy = ContactPolicy()
    for channel in (Channel.SMS, Channel.EMAIL, Channel.CALL_CENTRE):
        rules = policy.rules(channel).allowed_times
        for weekday in range(7):
            hours = model.best_hours(ids, channel, weekday=weekday)
            day_open = allowed_hours(policy, channel)[weekday * 24 : (weekday + 1) * 24].any()
            if not day_open:
                assert (hours == -1).all()  # SMS on Sunday, calls at the weekend
                continue
            for h in np.unique(hours):
                assert rules.allows(dt.datetime(2026, 1, 5 + weekday, int(h)))
        week = model.best_hours(ids, channel)
        assert all(rules.allows(dt.datetime(2026, 1, 5) + dt.timedelta(hours=int(h))) for h in week)


def test_a_stricter_policy_moves_the_chosen_hours(data: RetailDataset) -> None:
    policy = parse_contact_policy("channels: {email: {hours: ['09:00-12:00']}}")
    strict = SendTimeModel().fit(data, policy)
    hours = strict.best_hours(list(strict.customer_ids), Channel.EMAIL, weekday=1)
    assert set(np.unique(hours)) <= {9, 10, 11}


def test_thin_histories_are_shrunk_toward_the_segment(
    model: SendTimeModel, data: RetailDataset
) -> None:
    assert 0 < model.alpha < 1000
    rows = np.flatnonzero(model.events == 0)
    assert rows.size > 0
    for r in rows[:20]:
        segment = model.segments[r]
        pattern = model.posterior[r]
        prior = model.pattern("nobody-with-this-id", segment=segment)
        np.testing.assert_allclose(pattern, prior, rtol=1e-5)
    busy = int(np.argmax(model.events))
    assert model.events[busy] >= 20
    # a busy customer's own pattern is far from their segment's
    own = model.posterior[busy]
    segment = model.pattern("nobody-with-this-id", segment=model.segments[busy])
    assert np.abs(own - segment).sum() > 0.3


def test_concentration_is_estimated_from_the_data() -> None:
    rng = np.random.default_rng(0)
    prior = np.full((400, 168), 1 / 168)
    # customers each concentrated on their own hour: little pooling is right
    own = np.zeros((400, 168))
    own[np.arange(400), rng.integers(0, 168, 400)] = 12
    # customers drawn from the common pattern: pooling is right
    common = rng.multinomial(12, np.full(168, 1 / 168), size=400).astype(float)
    assert fit_concentration(own, prior) < fit_concentration(common, prior)


def test_personalised_profiles_carry_the_learned_pattern(model: SendTimeModel) -> None:
    cid = str(model.customer_ids[0])
    profile = model.personalise(CustomerProfile(cid))
    assert len(profile.activity_by_hour) == 168
    assert sum(profile.activity_by_hour) == pytest.approx(1.0)
    assert int(np.argmax(profile.activity_by_hour)) == int(np.argmax(model.posterior[0]))
    stranger = model.personalise(CustomerProfile("unknown"))
    np.testing.assert_allclose(
        stranger.activity_by_hour, model.global_pattern / model.global_pattern.sum()
    )
    assert dataclasses.replace(profile, activity_by_hour=()).customer_id == cid


def test_distance_to_the_peak_uses_the_right_kind_of_day() -> None:
    weekday, weekend = np.array([19.5]), np.array([15.0])
    assert hour_distance(np.array([19]), weekday, weekend)[0] == pytest.approx(0.5)
    assert hour_distance(np.array([5 * 24 + 19]), weekday, weekend)[0] == pytest.approx(4.0)
    assert hour_distance(np.array([23]), np.array([0.5]), weekend)[0] == pytest.approx(1.5)


def test_bad_inputs_raise_clear_errors(
    model: SendTimeModel, data: RetailDataset, sim: SimulatedRetailer
) -> None:
    with pytest.raises(ValueError, match="channel 'web' has no send-time model"):
        model.best_hours(["C000001"], Channel.WEB)
    with pytest.raises(ValueError, match="weekday must be 0"):
        model.best_hours(["C000001"], Channel.EMAIL, weekday=7)
    no_activity = dataclasses.replace(data, events=data.events.iloc[:0])
    with pytest.raises(ValueError, match="no activity events"):
        SendTimeModel().fit(no_activity)
    with pytest.raises(ValueError, match="no column 'region'"):
        SendTimeModel(SendTimeConfig(segment_column="region")).fit(data)
    with pytest.raises(ValueError, match="missing column"):
        evaluate_send_time(model, sim.truth.customers.drop(columns=["peak_hour_weekend"]))
