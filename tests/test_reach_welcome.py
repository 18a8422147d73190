"""The first-order offer of the welcome series goes to a brand-new customer built from
raw events: the seed catalog no longer gates it on an uplift no prospect can show."""

from __future__ import annotations

import datetime as dt

import pytest

from features.dataset import RetailDataset
from features.finalise import FeaturePriors
from nba.catalog import Catalog, parse_catalog
from nba.channels import Channel
from nba.profile import CustomerProfile
from nba.reasons import ReasonCode
from nba.scoring import REFERENCE_BASKET, REFERENCE_OFFER_DEPTH
from tests.test_scenarios import EXAMPLES, UTC, customer, decide, events, profile_at, retailer

NOW = dt.datetime(2026, 3, 12, 9, 0, tzinfo=UTC)  # a Thursday
HISTORY = {
    "welcome_1": dt.datetime(2026, 3, 4, 9, 0, tzinfo=UTC),
    "welcome_2": dt.datetime(2026, 3, 7, 9, 0, tzinfo=UTC),
}


def _prospect(base: RetailDataset, promo_share: float) -> CustomerProfile:
    """Signed up on 3 March, looked at two products, opened the first welcome, bought
    nothing; profiled at a store whose share of purchases on offer is ``promo_share``."""
    people = customer(base, consents=("email",), created_at="2026-03-03T12:00:00Z")
    raw = events(
        ("2026-03-03T12:05:00Z", "web", "product_view", "P1"),
        ("2026-03-04T09:00:00Z", "email", "message_sent", None),
        ("2026-03-04T12:00:00Z", "email", "message_opened", None),
        ("2026-03-07T09:00:00Z", "email", "message_sent", None),
        ("2026-03-09T19:00:00Z", "web", "product_view", "P2"),
    )
    return profile_at(base, people, raw, NOW, priors=FeaturePriors(promo_share=promo_share))


def _seed_gate_and_value() -> Catalog:
    """The retailer's catalog with the welcome offer as it was: value 8, min_uplift 0.02."""
    text = (EXAMPLES / "retailer_catalog.yaml").read_text()
    old = "    value: max(average_basket, 50) * 0.5 * 2\n"
    assert old in text
    return parse_catalog(text.replace(old, "    value: 8\n    min_uplift: 0.02\n"))


@pytest.mark.parametrize("promo_share", [0.125, 0.15, 0.2])  # 400 d, 90 d, no purchases
def test_a_prospect_gets_the_first_order_offer_when_the_welcome_series_reaches_it(
    base: RetailDataset, promo_share: float
) -> None:
    profile = _prospect(base, promo_share)
    assert profile.purchases_total == 0
    # a prospect's promotion sensitivity is the store's share: no evidence of their own
    assert profile.promo_sensitivity == pytest.approx(promo_share)
    decision = decide(profile, NOW, history=HISTORY)
    [chosen] = decision.actions
    assert (chosen.action_id, chosen.channel) == ("welcome_3_first_order", Channel.EMAIL)
    assert chosen.offer_id == "welcome_free_shipping"
    assert chosen.terms is not None and chosen.terms.offer_uplift is not None
    # what the scorer gives a prospect: the offer's own effect, the store's share of the
    # response to the same message without it, times the free shipping's depth (its fee,
    # 4.5, on the reference order of a prospect, 50) against a 10 % discount's
    lift = promo_share * (4.5 / REFERENCE_BASKET) / REFERENCE_OFFER_DEPTH
    without = chosen.terms.propensity / (1 + lift)
    assert chosen.terms.offer_uplift == pytest.approx(without * lift)
    # the offer pays: uplift x value exceeds the free shipping paid per response
    assert chosen.terms.offer_uplift * chosen.terms.value > chosen.terms.propensity * 4.5
    # once sent, it is not sent again
    again = decide(profile, NOW, history={**HISTORY, "welcome_3_first_order": NOW})
    assert ReasonCode.NOT_ELIGIBLE in again.reasons("welcome_3_first_order")


def test_the_old_gate_and_value_never_sent_it(base: RetailDataset) -> None:
    """With value 8 and min_uplift 0.02 the same prospect never got it: below the gate at
    the simulated store's share, and at a loss (8 x 0.2 < 4.5) above it."""
    old = _seed_gate_and_value()
    for promo_share, reason in ((0.15, ReasonCode.UPLIFT_TOO_LOW), (0.2, None)):
        decision = decide(_prospect(base, promo_share), NOW, history=HISTORY, catalog=old)
        assert decision.actions[0].action_id != "welcome_3_first_order"
        if reason is not None:
            assert reason in decision.reasons("welcome_3_first_order")
    assert retailer()["welcome_3_first_order"].min_uplift is None
