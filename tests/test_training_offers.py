"""Offer uplift on simulated data: randomised groups, every learner and the rules chosen on
validation R-loss gain and gated on the held-out test, agreement with the true uplift."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from features.batch import point_in_time
from features.contract import OfferKind
from features.dataset import RetailDataset
from nba.actions import Action
from nba.channels import Channel
from nba.context import CustomerContext
from nba.profile import CustomerProfile
from nba.scoring import RuleBasedScorer
from nba.screening import ActionCandidate, ChannelSlot
from nba.timing import SendTime
from simulator import Campaign, SimulatorConfig, simulate
from training.api import train_offers
from training.examples import ContactExamples
from training.model_scorer import ModelScorer
from training.offer_selection import BASELINES, OfferSelection, select_offers
from training.offers import (
    METHODS,
    RULE_METHOD,
    OfferConfig,
    OfferSpec,
    OfferUpliftModel,
    offer_costs,
    offer_examples,
    offer_sends,
    treatment_shares,
)
from training.registry import ModelRegistry
from training.selection import CHAMPION_ROW
from training.truth import SimulatorTruth
from training.uplift_learners import BoostingConfig

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
def selection(
    examples: ContactExamples, world: tuple[RetailDataset, SimulatorTruth]
) -> OfferSelection:
    return select_offers(examples, world[0].offers, truth=world[1].uplift)


@pytest.fixture(scope="module", params=METHODS)
def fitted(
    request: pytest.FixtureRequest,
    examples: ContactExamples,
    world: tuple[RetailDataset, SimulatorTruth],
) -> OfferUpliftModel:
    return OfferUpliftModel(OfferConfig(method=request.param)).fit(examples, world[0].offers)


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


def test_every_method_and_the_rules_are_measured_and_the_best_on_validation_is_chosen(
    selection: OfferSelection,
) -> None:
    for table in (selection.validation, selection.test):
        assert set(METHODS) | {"value_share", "random"} <= set(table.qini)
        assert set(METHODS) | {"value_share", "no_effect"} <= set(table.r_gain)
        assert all(np.isfinite(q) for q in table.qini.values())
        assert all(np.isfinite(g) for g in table.r_gain.values())
        assert table.r_gain["no_effect"] == 0.0
        assert table.n_test > 300
    assert selection.validation.cut < selection.test.cut
    gains = {m: selection.validation.r_gain[m] for m in METHODS}
    assert selection.chosen.method == max(gains, key=gains.__getitem__)
    # the gate: allowed exactly when no baseline row of the test table beats the chosen one
    mine = selection.test.r_gain[selection.chosen.method]
    beaten = any(g > mine for name, g in selection.test.r_gain.items() if name in BASELINES)
    assert selection.promotion.allowed == (not beaten)
    assert "R-loss gain" in selection.promotion.reason
    text = selection.markdown()
    assert "Chosen by validation" in text and "Promotion:" in text and "R-loss gain" in text


def test_the_learned_ranking_agrees_with_the_true_uplift(selection: OfferSelection) -> None:
    rho, top = selection.test.truth_spearman, selection.test.truth_top30
    # the proportional learner ranks the true uplift far better than random targeting, and
    # the customers it targets first have a larger true uplift than everyone's average
    assert rho["proportional_lgbm"] > rho["random"] + 0.2
    assert top["proportional_lgbm"] > top["everyone"]
    assert top["proportional_lgbm"] > top["random"]
    # among sends whose offer has a cost (here every send): the relative-lift learner too
    valued_top, valued_rho = selection.test.truth_top30_valued, selection.test.truth_spearman_valued
    assert valued_rho["relative_lift_lgbm"] > valued_rho["random"] + 0.2
    assert valued_top["relative_lift_lgbm"] > valued_top["everyone"]
    assert valued_top["truth"] >= max(v for k, v in valued_top.items() if k != "truth")
    assert "offers with a cost" in selection.test.markdown()


def test_each_method_predicts_per_customer_as_in_batch(
    fitted: OfferUpliftModel,
    examples: ContactExamples,
    world: tuple[RetailDataset, SimulatorTruth],
) -> None:
    """A live profile (built one at a time) scores as its training example's columns do."""
    assert fitted.fitted
    batch = fitted.uplift_examples(offer_costs(examples, fitted))
    assert np.isfinite(batch).all()
    if not fitted.is_rule:  # the rule is a score (promotion sensitivity x value share)
        assert np.abs(batch).max() <= 1.0
    assert batch.std() > 0
    profiles = point_in_time(world[0], examples.rows.iloc[[3, 7, 11]])
    for i, profile in zip((3, 7, 11), profiles, strict=True):
        spec = fitted.offers[examples.rows["offer_id"].iloc[i]]
        p, u = fitted.predict(profile, [Channel(examples.rows["channel"].iloc[i])], [spec])
        assert u[0] == pytest.approx(batch[i])
        if not fitted.is_rule:
            assert 0.0 <= p[0] <= 1.0


def test_treatment_shares_are_the_groups_randomisation(examples: ContactExamples) -> None:
    rows = examples.rows
    shares = treatment_shares(rows)
    assert ((shares > 0) & (shares < 1)).all()
    assert abs(float(np.mean(shares)) - float(rows["treated"].mean())) < 0.05
    without = treatment_shares(rows.drop(columns="treatment_share"))
    assert np.allclose(without, rows["treated"].mean())


def test_bad_inputs_raise_clear_errors(
    world: tuple[RetailDataset, SimulatorTruth],
    examples: ContactExamples,
) -> None:
    data, _ = world
    no_offers = data.events.assign(offer_id=None)
    with pytest.raises(ValueError, match="no message_sent event carries an offer_id"):
        offer_sends(no_offers, data.offers)
    with pytest.raises(ValueError, match="not in the offers table"):
        offer_sends(data.events, data.offers.iloc[:0])
    model = OfferUpliftModel().fit(examples, data.offers)
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
            ContactExamples.of_profiles(
                only_treated, [CustomerProfile("C1")], np.zeros(1, dtype=int)
            ),
            data.offers,
        )
    with pytest.raises(ValueError, match="unknown uplift method"):
        select_offers(examples, data.offers, methods=["magic"])
    with pytest.raises(ValueError, match="validation_fraction must be in"):
        select_offers(examples, data.offers, validation_fraction=0.7)


def test_gated_promotion_keeps_the_champion_unless_forced(
    world: tuple[RetailDataset, SimulatorTruth], examples: ContactExamples, tmp_path: Path
) -> None:
    data, _ = world
    registry = ModelRegistry(f"sqlite:///{tmp_path / 'mlflow.db'}", tmp_path / "artifacts")
    every_other = examples.take(np.arange(len(examples)) % 2 == 0)
    options = {
        "registry": registry,
        "model_name": "offers-gated",
        "examples": every_other,
        "config": OfferConfig(boosting=BoostingConfig(n_estimators=20)),  # fast, not good
        "methods": ("t_learner_lgbm", "proportional_lgbm", RULE_METHOD),
    }
    first = train_offers(data, promote=True, force=True, **options)  # type: ignore[arg-type]
    assert first.promoted and first.version is not None
    assert registry.champion("offers-gated") == first.version.version
    second = train_offers(data, promote=True, **options)  # type: ignore[arg-type]
    assert second.evaluation is not None and second.version is not None
    # the champion's recipe was refitted and measured on the same held-out sends
    assert CHAMPION_ROW in second.evaluation.test.qini
    assert CHAMPION_ROW in second.evaluation.test.r_gain
    assert second.promoted == second.evaluation.promotion.allowed
    expected = second.version.version if second.promoted else first.version.version
    assert registry.champion("offers-gated") == expected
    assert isinstance(registry.load_model("offers-gated"), OfferUpliftModel)


def test_a_rule_champion_serves_the_rule_based_uplift(
    world: tuple[RetailDataset, SimulatorTruth], examples: ContactExamples
) -> None:
    data, _ = world
    rule = OfferUpliftModel(OfferConfig(method=RULE_METHOD)).fit(examples, data.offers)
    action = Action.model_validate(
        {
            "id": "ten_percent",
            "type": "offer",
            "channels": ["email", "sms"],
            "value": 8.0,
            "offer": {"id": "ten", "kind": "percent_discount", "value": 10, "cost": 6.0},
        }
    )
    [profile] = point_in_time(data, examples.rows.iloc[[5]])
    assert profile.as_of is not None
    context = CustomerContext(profile, profile.as_of)
    slots = tuple(
        ChannelSlot(c, SendTime(context.now, context.now, "test"))
        for c in (Channel.EMAIL, Channel.SMS)
    )
    candidate = ActionCandidate(action, 8.0, None, slots)
    [served] = ModelScorer(uplift=rule).score(context, [candidate])
    [plain] = RuleBasedScorer().score(context, [candidate])
    assert served.uplift == plain.uplift
    learned = OfferUpliftModel(OfferConfig(method="proportional_lgbm")).fit(examples, data.offers)
    [scored] = ModelScorer(uplift=learned).score(context, [candidate])
    _, expected = learned.predict(
        profile, [Channel.EMAIL], [OfferSpec(OfferKind.PERCENT_DISCOUNT, 6.0)]
    )
    assert scored.uplift is not None
    assert scored.uplift[Channel.EMAIL] == pytest.approx(float(expected[0]))
