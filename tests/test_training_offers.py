"""Offer uplift on simulated data: randomised groups, held-out Qini, agreement with the true uplift."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from features.contract import OfferKind
from features.dataset import RetailDataset
from nba.channels import Channel
from nba.profile import CustomerProfile
from simulator import Campaign, SimulatorConfig, simulate
from training.examples import ContactExamples
from training.offers import (
    OfferConfig,
    OfferSpec,
    OfferUpliftModel,
    UpliftEvaluation,
    evaluate_offers,
    offer_examples,
    offer_sends,
)
from training.truth import SimulatorTruth

#: A retailer that tests its offers twice a week on e-mail and weekly on SMS (half of
#: each campaign's recipients get the offer), so that a small world has enough sends.
CAMPAIGNS = (
    Campaign(
        "newsletter",
        Channel.EMAIL,
        "promo",
        local_hours=(10, 12, 18, 20),
        days_of_week=(1, 4),
        offer_kinds=(OfferKind.PERCENT_DISCOUNT, OfferKind.FIXED_DISCOUNT),
        offer_rate=1.0,
    ),
    Campaign(
        "sms_promo",
        Channel.SMS,
        "promo",
        local_hours=(11, 17),
        days_of_week=(2,),
        offer_kinds=(OfferKind.PERCENT_DISCOUNT,),
        offer_rate=1.0,
    ),
)


@pytest.fixture(scope="module")
def world() -> tuple[RetailDataset, SimulatorTruth]:
    config = SimulatorConfig(n_customers=800, days=42, seed=2, n_products=300, campaigns=CAMPAIGNS)
    sim = simulate(config)
    data = RetailDataset(sim.customers, sim.products, sim.offers, sim.events)
    return data, SimulatorTruth.from_simulation(sim)


@pytest.fixture(scope="module")
def examples(world: tuple[RetailDataset, SimulatorTruth]) -> ContactExamples:
    return offer_examples(world[0], max_examples=5000)


@pytest.fixture(scope="module")
def evaluated(
    examples: ContactExamples, world: tuple[RetailDataset, SimulatorTruth]
) -> tuple[UpliftEvaluation, OfferUpliftModel]:
    return evaluate_offers(examples, world[0].offers, truth=world[1].uplift)


def test_groups_pair_treated_sends_with_same_day_controls(
    world: tuple[RetailDataset, SimulatorTruth],
) -> None:
    data, _ = world
    rows = offer_sends(data.events, data.offers)
    assert rows["treated"].any() and (~rows["treated"]).any()
    # a control is given the offer its group carried: one offer per channel and day
    day = rows["timestamp"].dt.floor("D")
    assert (rows.groupby([rows["channel"], day])["offer_id"].nunique() == 1).mean() > 0.9
    # treatment was randomised: about half of each group got the offer
    assert 0.35 < rows["treated"].mean() < 0.65
    # the outcome is a purchase within the window after the send
    assert 0.02 < rows["purchased"].mean() < 0.6


def test_uplift_ranking_agrees_with_the_true_uplift(
    evaluated: tuple[UpliftEvaluation, OfferUpliftModel],
) -> None:
    evaluation, _ = evaluated
    rho = evaluation.truth_spearman
    assert evaluation.n_test > 500
    assert rho["t_learner"] > 0.15
    assert rho["t_learner"] > rho["random"] + 0.1
    top = evaluation.truth_top30
    # the customers it targets first have a larger true uplift than a random 30 %
    assert top["t_learner"] > top["everyone"]
    assert top["t_learner"] > top["random"]
    assert np.isfinite(evaluation.qini["t_learner"]) and np.isfinite(evaluation.qini["random"])


def test_probabilities_are_in_range_and_uplift_is_their_difference(
    evaluated: tuple[UpliftEvaluation, OfferUpliftModel], examples: ContactExamples
) -> None:
    _, model = evaluated
    with_offer, without = model.predict_examples(examples)
    assert ((with_offer >= 0) & (with_offer <= 1)).all()
    assert ((without >= 0) & (without <= 1)).all()
    uplift = model.uplift_examples(examples)
    np.testing.assert_allclose(uplift, with_offer - without)
    # one customer, all pairs at once, equals the batch
    i = 7
    profile = examples.profiles[i]
    spec = model.offers[examples.rows["offer_id"].iloc[i]]
    p, u = model.predict(profile, [Channel(examples.rows["channel"].iloc[i])], [spec])
    assert p[0] == pytest.approx(with_offer[i]) and u[0] == pytest.approx(uplift[i])


def test_bad_inputs_raise_clear_errors(
    world: tuple[RetailDataset, SimulatorTruth],
    evaluated: tuple[UpliftEvaluation, OfferUpliftModel],
) -> None:
    data, _ = world
    no_offers = data.events.assign(offer_id=None)
    with pytest.raises(ValueError, match="no message_sent event carries an offer_id"):
        offer_sends(no_offers, data.offers)
    with pytest.raises(ValueError, match="not in the offers table"):
        offer_sends(data.events, data.offers.iloc[:0])
    _, model = evaluated
    spec = OfferSpec(OfferKind.PERCENT_DISCOUNT, 5.0)
    with pytest.raises(ValueError, match="channel 'postal' unknown to the uplift model"):
        model.predict(CustomerProfile("C1"), [Channel.POSTAL], [spec])
    with pytest.raises(ValueError, match="method must be"):
        OfferConfig(method="magic")
    with pytest.raises(RuntimeError, match="not fitted"):
        OfferUpliftModel().predict(CustomerProfile("C1"), [Channel.EMAIL], [spec])
    only_treated = pd.DataFrame({"treated": [True], "purchased": [False], "offer_id": ["O001"]})
    with pytest.raises(ValueError, match="both treated sends and controls"):
        OfferUpliftModel().fit(
            ContactExamples(only_treated, [CustomerProfile("C1")], np.zeros(1, dtype=int)),
            data.offers,
        )
