"""Channel propensity on simulated data: beats the per-channel rate, calibrated, tracks the truth."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from features.batch import point_in_time
from features.dataset import RetailDataset
from nba.channels import Channel
from nba.profile import CustomerProfile
from simulator import SimulatorConfig, simulate
from training.examples import (
    ContactExamples,
    contact_examples,
    message_sends,
    reference_moment,
    sample_rows,
)
from training.propensity import ChannelEvaluation, ChannelPropensityModel, evaluate_channels
from training.truth import SimulatorTruth


@pytest.fixture(scope="module")
def world() -> tuple[RetailDataset, SimulatorTruth]:
    sim = simulate(SimulatorConfig(n_customers=800, days=45, seed=5, n_products=300))
    data = RetailDataset(sim.customers, sim.products, sim.offers, sim.events)
    return data, SimulatorTruth.from_simulation(sim)


@pytest.fixture(scope="module")
def examples(world: tuple[RetailDataset, SimulatorTruth]) -> ContactExamples:
    data, _ = world
    return contact_examples(data, sample_rows(message_sends(data.events), 6000, 0))


@pytest.fixture(scope="module")
def evaluated(
    examples: ContactExamples, world: tuple[RetailDataset, SimulatorTruth]
) -> tuple[ChannelEvaluation, ChannelPropensityModel]:
    return evaluate_channels(examples, truth=world[1].engagement)


def test_engagement_labels_follow_opens_and_clicks_within_the_window() -> None:
    t0 = pd.Timestamp("2026-03-02T10:00:00Z")
    events = pd.DataFrame(
        {
            "customer_id": ["C1", "C1", "C1", "C2", "C2", "C3", "C3"],
            "timestamp": [
                t0,
                t0 + pd.Timedelta(hours=2),  # opened: engaged
                t0 + pd.Timedelta(days=1),  # a second send, never opened
                t0,
                t0 + pd.Timedelta(days=5),  # opened too late
                t0,
                t0 + pd.Timedelta(hours=1),  # a click on another channel
            ],
            "channel": ["email", "email", "email", "email", "email", "sms", "email"],
            "event_type": [
                "message_sent",
                "message_opened",
                "message_sent",
                "message_sent",
                "message_opened",
                "message_sent",
                "message_clicked",
            ],
            "offer_id": [None] * 7,
        }
    )
    sends = message_sends(events)
    keys = list(zip(sends["customer_id"], sends["timestamp"], strict=True))
    got = dict(zip(keys, sends["engaged"], strict=True))
    assert got[("C1", t0)] and not got[("C1", t0 + pd.Timedelta(days=1))]
    assert not got[("C2", t0)] and not got[("C3", t0)]


def test_beats_the_channel_rate_baseline_on_held_out_sends(
    evaluated: tuple[ChannelEvaluation, ChannelPropensityModel],
) -> None:
    evaluation, _ = evaluated
    model, rate = evaluation.results["propensity"], evaluation.results["channel_rate"]
    assert model.n > 500
    assert model.auc > rate.auc + 0.05
    assert model.auc > 0.6
    # closer to the simulator's true open probability than the channel rate
    corr = evaluation.truth_correlation
    assert corr["propensity"] > corr["channel_rate"] + 0.1
    assert corr["propensity"] > 0.4


def test_probabilities_are_calibrated(
    evaluated: tuple[ChannelEvaluation, ChannelPropensityModel],
) -> None:
    evaluation, _ = evaluated
    p = evaluation.predictions["propensity"]
    assert ((p >= 0) & (p <= 1)).all()
    assert evaluation.results["propensity"].ece < 0.06
    assert abs(p.mean() - evaluation.y_true.mean()) < 0.05


def test_channels_without_engagement_are_left_out_with_a_reason(
    examples: ContactExamples,
) -> None:
    assert (examples.rows["channel"] == "postal").any()
    model = ChannelPropensityModel().fit(examples)
    assert Channel.EMAIL in model.channels
    assert Channel.POSTAL not in model.channels  # postal mail reports no opens or clicks
    assert "postal" in model.skipped and "not observed" in model.skipped["postal"]


def test_one_customer_scoring_matches_batch_scoring(
    evaluated: tuple[ChannelEvaluation, ChannelPropensityModel],
    examples: ContactExamples,
    world: tuple[RetailDataset, SimulatorTruth],
) -> None:
    """A live profile (built one at a time) scores as its training example's columns do."""
    _, model = evaluated
    known = examples.take(
        examples.rows["channel"].isin([c.value for c in model.channels]).to_numpy()
    )
    batch = model.predict_examples(known)
    picked = list(range(0, len(known), max(1, len(known) // 25)))
    profiles = point_in_time(world[0], known.rows.iloc[picked])
    for i, profile in zip(picked, profiles, strict=True):
        moment = reference_moment(int(known.hour_of_week[i]))
        one = model.predict(profile, [Channel(known.rows["channel"].iloc[i])], [moment])
        assert one[0] == pytest.approx(batch[i], abs=1e-12)


def test_unknown_channel_and_missing_events_raise_clear_errors(
    evaluated: tuple[ChannelEvaluation, ChannelPropensityModel],
) -> None:
    _, model = evaluated
    profile = CustomerProfile("C1")
    with pytest.raises(ValueError, match=r"postal.*unknown to the propensity model"):
        model.predict(profile, [Channel.POSTAL], [dt.datetime(2026, 3, 2, 12)])
    no_sends = ContactExamples.of_profiles(
        pd.DataFrame(columns=["customer_id", "timestamp", "channel", "offer_id", "engaged"]),
        [],
        np.zeros(0, dtype=int),
    )
    with pytest.raises(ValueError, match="no message_sent events"):
        ChannelPropensityModel().fit(no_sends)
    never_opened = ContactExamples.of_profiles(
        pd.DataFrame(
            {
                "customer_id": ["C1", "C2"],
                "timestamp": pd.to_datetime(["2026-03-02", "2026-03-03"], utc=True),
                "channel": ["sms", "sms"],
                "offer_id": [None, None],
                "engaged": [False, False],
            }
        ),
        [CustomerProfile("C1"), CustomerProfile("C2")],
        np.array([10, 11]),
    )
    with pytest.raises(ValueError, match="no channel records engagement"):
        ChannelPropensityModel().fit(never_opened)
    with pytest.raises(RuntimeError, match="not fitted"):
        ChannelPropensityModel().predict(profile, [Channel.EMAIL])
