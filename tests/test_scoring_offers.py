"""The rule-based scorer's offer terms: a discount's uplift grows with what it saves the
customer (its depth) and with their promotion sensitivity, and is nothing without either."""

from __future__ import annotations

import datetime as dt

import pytest

from nba.actions import Action, Offer
from nba.channels import Channel
from nba.context import CustomerContext
from nba.profile import CustomerProfile
from nba.scoring import REFERENCE_OFFER_DEPTH, ActionScore, RuleBasedScorer, offer_depth
from nba.screening import ActionCandidate, ChannelSlot
from nba.timing import SendTime

NOW = dt.datetime(2026, 3, 4, 9, tzinfo=dt.UTC)


def _score(offer: Offer | None, **profile: object) -> ActionScore:
    profile.setdefault("days_since_last_visit", 60.0)
    context = CustomerContext(CustomerProfile("C1", **profile), NOW)  # type: ignore[arg-type]
    action = Action(
        id="win_back",
        type="reactivation",
        channels=["email"],
        value=20,
        offer=None if offer is None else offer.model_dump(),
    )
    slot = ChannelSlot(Channel.EMAIL, SendTime(NOW, NOW, ""))
    [score] = RuleBasedScorer().score(context, [ActionCandidate(action, 20.0, None, (slot,))])
    return score


def _percent(value: float) -> Offer:
    return Offer(id=f"pct{value:g}", kind="percent_discount", value=value, cost=value / 2)


def _uplift(score: ActionScore) -> float:
    assert score.uplift is not None
    return score.uplift[Channel.EMAIL]


def test_a_deeper_discount_moves_the_same_customer_more_in_proportion() -> None:
    """5, 10, 15 and 30 % off for one customer: the uplift is proportional to the depth
    (below the propensity cap), the plain message's response unchanged underneath."""
    plain = _score(None, promo_sensitivity=0.4, average_basket=60.0).propensity[Channel.EMAIL]
    uplifts = [_uplift(_score(_percent(v), promo_sensitivity=0.4)) for v in (5, 10, 15, 30)]
    assert uplifts == sorted(uplifts) and len(set(uplifts)) == 4
    assert uplifts[0] * 2 == pytest.approx(uplifts[1])
    assert uplifts[0] * 3 == pytest.approx(uplifts[2])
    assert uplifts[0] * 6 == pytest.approx(uplifts[3])
    # a 10 % discount (the reference depth) adds offer_boost x promotion sensitivity
    assert uplifts[1] == pytest.approx(plain * RuleBasedScorer().offer_boost * 0.4)
    for v in (5, 10, 15, 30):
        score = _score(_percent(v), promo_sensitivity=0.4)
        assert score.propensity[Channel.EMAIL] - _uplift(score) == pytest.approx(plain)


def test_the_uplift_grows_with_promotion_sensitivity_and_is_nothing_without_it() -> None:
    offer = _percent(15)
    uplifts = [_uplift(_score(offer, promo_sensitivity=p)) for p in (0.0, 0.1, 0.3, 0.6)]
    assert uplifts[0] == 0.0
    assert uplifts == sorted(uplifts) and len(set(uplifts)) == 4


def test_a_fixed_discount_and_free_shipping_count_what_they_save_on_the_customers_basket() -> None:
    """10 off a 100 basket saves what 10 % off does; on a 40 basket, 2.5 times that. Free
    shipping with no fee given counts its cost (the fee waived); points lower no price: no
    uplift, their cost is the message's gift."""
    ten_off = Offer(id="ten", kind="fixed_discount", value=10, cost=10)
    tenth = _uplift(_score(_percent(10), promo_sensitivity=0.3, average_basket=100.0))
    assert _uplift(_score(ten_off, promo_sensitivity=0.3, average_basket=100.0)) == pytest.approx(
        tenth
    )
    assert _uplift(_score(ten_off, promo_sensitivity=0.3, average_basket=40.0)) == pytest.approx(
        2.5 * tenth
    )
    shipping = Offer(id="ship", kind="free_shipping", value=0, cost=5)
    assert _uplift(_score(shipping, promo_sensitivity=0.3, average_basket=100.0)) == pytest.approx(
        tenth / 2
    )
    points = Offer(id="pts", kind="loyalty_points", value=500, cost=2.5)
    assert _score(points, promo_sensitivity=0.9).uplift is None


def test_offer_depth_without_a_basket_uses_the_reference_order() -> None:
    """A prospect has no basket yet: the scorer reads a fixed discount on the reference
    order (50), and a depth never exceeds the whole order."""
    assert offer_depth(Offer(id="f", kind="fixed_discount", value=80), 50.0) == 1.0
    assert offer_depth(Offer(id="p", kind="percent_discount", value=20), 0.0) == 0.2
    prospect = _score(Offer(id="f", kind="fixed_discount", value=5), promo_sensitivity=0.3)
    reference = _score(
        Offer(id="f", kind="fixed_discount", value=5), promo_sensitivity=0.3, average_basket=50.0
    )
    assert _uplift(prospect) == pytest.approx(_uplift(reference))
    assert REFERENCE_OFFER_DEPTH == 0.10
