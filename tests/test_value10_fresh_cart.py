"""A cart a next session will leave is valued as a fresh cart (issue 12, value10).

The reserve values the cart reminder a customer's next session may trigger (a claim on
tomorrow's room). It was scored on the profile as it is, with no cart: the scorer's
cart-age factor is 1 without a known age, the response of a cart 6 hours old (the
reference age), where the reminder goes when the cart is an hour old and answers
``cart_age_factor(1) = (1 / 6) ** -0.41 = 2.07`` times as often. Now it is scored on the
profile with the cart as old as it will be when the reminder first goes
(:func:`nba.reserve.trigger_age`, from the reminder's own rule; :func:`nba.ageing.
as_triggered`), through the same ageing definition.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

import pytest

from nba.actions import ActionType
from nba.ageing import CART_DECAY_EXPONENT, as_triggered, cart_age_factor
from nba.budgets import UsageCounts
from nba.channels import Channel
from nba.context import CustomerContext
from nba.engine import NextBestActionPolicy
from nba.profile import CustomerProfile
from nba.reserve import trigger_age
from nba.scoring import ActionScore, RuleBasedScorer
from nba.screening import ActionCandidate, screen
from tests.test_scenarios import retailer, retailer_policy

NOW = dt.datetime(2026, 3, 4, 9, 0, tzinfo=dt.UTC)  # Wednesday 10:00 in Paris


class _Recording(RuleBasedScorer):
    """The rule-based scorer, noting the cart age each action was scored at."""

    def __init__(self) -> None:
        super().__init__()
        object.__setattr__(self, "seen", [])

    def score(
        self, context: CustomerContext, candidates: Sequence[ActionCandidate]
    ) -> list[ActionScore]:
        scores = super().score(context, candidates)
        for c, s in zip(candidates, scores, strict=True):
            self.seen.append((c.action.id, context.profile.cart_age_hours, s))  # type: ignore[attr-defined]
        return scores


def test_the_seed_catalogs_cart_reminders_first_go_an_hour_into_the_cart() -> None:
    """``cart_age_hours >= 1`` in the first reminder's rule, ``>= 20`` in the second's;
    a browse reminder does not fade with an age (None)."""
    catalog = retailer()
    assert trigger_age(catalog["cart_reminder_1"]) == 1.0
    assert trigger_age(catalog["cart_reminder_2"]) == 20.0
    assert trigger_age(catalog["browse_reminder_evening"]) is None


def test_as_triggered_sets_the_triggers_age_and_nothing_else() -> None:
    """An hour-old cart answers 6 ** 0.41 = 2.07 times the reference 6-hour cart."""
    profile = CustomerProfile("C1", cart_left_days_30d=9)
    fresh = as_triggered(profile, ActionType.CART_REMINDER, 1.0)
    assert fresh.cart_age_hours == 1.0
    assert fresh.cart_left_days_30d == 9
    assert cart_age_factor(fresh.cart_age_hours) == pytest.approx(6.0**CART_DECAY_EXPONENT)
    assert round(cart_age_factor(1.0), 2) == 2.07
    assert as_triggered(profile, ActionType.BROWSE_REMINDER, 1.0) is profile


def test_the_reserve_scores_a_cart_still_to_come_at_its_reminders_age() -> None:
    """A customer who left a cart on 12 of the last 30 days and has none open, e-mail
    only (one a day): the weekly picks' e-mail now would take tomorrow's room from the
    cart reminder a next session may trigger. The engine scores that reminder on the
    customer with a cart an hour old (its rule's first age): its response is 2.07 times
    the one scored on the customer as they are (no cart, the 6-hour reference)."""
    profile = CustomerProfile(
        "C1",
        timezone="Europe/Paris",
        cart_left_days_30d=12,
        days_since_last_visit=1.0,
        consents={Channel.EMAIL: True},
    )
    context = CustomerContext(profile, NOW)
    scorer = _Recording()
    engine = NextBestActionPolicy(retailer(), retailer_policy(), scorer=scorer)
    screening = screen(engine.catalog, engine.contact_policy, context, UsageCounts())
    engine._assess(context, list(screening.candidates))
    reminder = [(age, s) for a, age, s in scorer.seen if a == "cart_reminder_1"]  # type: ignore[attr-defined]
    assert [age for age, _ in reminder] == [1.0]
    [(_, fresh)] = reminder
    [now_score] = RuleBasedScorer().score(
        context,
        [c for c in _reminder_candidates(engine, context) if c.action.id == "cart_reminder_1"],
    )
    assert fresh.propensity[Channel.EMAIL] == pytest.approx(
        now_score.propensity[Channel.EMAIL] * 6.0**CART_DECAY_EXPONENT, rel=1e-9
    )


def _reminder_candidates(
    engine: NextBestActionPolicy, context: CustomerContext
) -> list[ActionCandidate]:
    candidates, _, _ = engine._reminder_candidates(context, [])
    return candidates
