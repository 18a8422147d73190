"""A cart reminder's response fades with the cart's age (SaleCycle's 6.33 % at 1 h against
1.74 % at 24 h): the rule-based scorer rates the same reminder lower for an older cart,
by the published power law, and leaves every other action as it was."""

from __future__ import annotations

import datetime as dt

import pytest

from nba.actions import Action
from nba.channels import Channel
from nba.context import CustomerContext
from nba.profile import CustomerProfile
from nba.scoring import CART_DECAY_EXPONENT, RuleBasedScorer, cart_age_factor
from nba.screening import ActionCandidate, ChannelSlot
from nba.timing import SendTime

NOW = dt.datetime(2026, 3, 4, 9, tzinfo=dt.UTC)


def _propensity(action_type: str, cart_age_hours: float | None) -> float:
    profile = CustomerProfile(
        "C1",
        cart_items=("P1",),
        cart_value=80.0,
        cart_age_hours=cart_age_hours,
        days_since_last_visit=0.5,
    )
    action = Action(id="a", type=action_type, channels=["email"], value=20)
    slot = ChannelSlot(Channel.EMAIL, SendTime(NOW, NOW, ""))
    context = CustomerContext(profile, NOW)
    [score] = RuleBasedScorer().score(context, [ActionCandidate(action, 20.0, None, (slot,))])
    return score.propensity[Channel.EMAIL]


def test_a_day_old_cart_answers_a_reminder_at_the_published_share_of_an_hour_old_one() -> None:
    fresh, day_old = _propensity("cart_reminder", 1.0), _propensity("cart_reminder", 24.0)
    assert day_old / fresh == pytest.approx(1.74 / 6.33, rel=1e-9)
    published = 1.74 / 6.33
    assert published == pytest.approx(24.0**-CART_DECAY_EXPONENT)


def test_older_carts_rate_lower_flat_below_an_hour_and_unknown_ages_at_the_reference() -> None:
    ages = [0.2, 1.0, 3.0, 12.0, 48.0, 90.0]
    rates = [_propensity("cart_reminder", a) for a in ages]
    assert rates[0] == rates[1]  # flat below an hour
    assert rates[1:] == sorted(rates[1:], reverse=True) and len(set(rates[1:])) == 5
    assert cart_age_factor(None) == 1.0


def test_other_actions_do_not_read_the_cart_s_age() -> None:
    for action_type in ("cross_sell", "product_recommendation", "browse_reminder"):
        assert _propensity(action_type, 1.0) == _propensity(action_type, 90.0)
