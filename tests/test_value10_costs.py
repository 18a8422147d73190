"""A message that goes late loses response, not the cost of sending it (issue 12, value10).

The reserve (a journey step's claim on tomorrow's room) and deferral (the leader's worth
once a rival's send has gone first) valued a reminder that waits as ``priority x left``,
the priority taken *after* the channel's cost and the offer's cost on orders placed
anyway were subtracted: a wait that left a quarter of the response also refunded three
quarters of the cost of sending. Now the fading scales the gross value and the costs are
paid in full: ``(priority + fixed_cost) x left - fixed_cost``
(:attr:`nba.arbitration.PriorityTerms.fixed_cost`).
"""

from __future__ import annotations

import dataclasses
import datetime as dt

import pytest

from nba.actions import Action, ActionType
from nba.ageing import cart_age_factor, fading_at
from nba.arbitration import ChannelAssessment, PriorityTerms
from nba.channels import Channel
from nba.contact_policy import ContactPolicy
from nba.context import CustomerContext
from nba.deferral import credit_closing_rivals
from nba.profile import CustomerProfile
from nba.reserve import ReminderValue, opportunity_cost
from nba.screening import ActionCandidate, ChannelSlot
from nba.timing import SendTime

NOW = dt.datetime(2026, 3, 4, 9, 0, tzinfo=dt.UTC)  # Wednesday 10:00 in Paris
HOUR = dt.timedelta(hours=1)
CART = ActionType.CART_REMINDER


def test_fixed_cost_is_what_a_faded_response_still_pays() -> None:
    """P 0.2, value 30, an SMS at 0.06, a 6.00 offer redeemed anyway with P 0.1:
    priority = 0.2 x 30 - 0.06 - (0.2 + 0.1) x 6 = 4.14; the costs that do not fade are
    0.06 + 0.1 x 6 = 0.66; at half the response 0.1 x 30 - 0.06 - (0.1 + 0.1) x 6 = 1.74
    = 0.5 x (4.14 + 0.66) - 0.66."""
    terms = PriorityTerms(
        propensity=0.2, value=30.0, channel_cost=0.06, offer_cost=6.0, redeemed_anyway=0.1
    )
    assert terms.priority() == pytest.approx(4.14)
    assert terms.fixed_cost == pytest.approx(0.66)
    assert terms.priority(0.5) == pytest.approx(1.74)
    assert terms.priority(0.5) == pytest.approx(0.5 * (4.14 + 0.66) - 0.66)


def test_a_late_reminder_keeps_its_faded_response_less_its_full_cost() -> None:
    """A cart reminder due an hour after its cart was left, priority 0.9 on SMS of which
    0.3 is the cost of sending (gross 1.2), goes 23 hours late: SaleCycle's 1.74 / 6.33 =
    0.2749 of its response is left, so it is worth 1.2 x 0.2749 - 0.3 = 0.0299, not
    0.9 x 0.2749 = 0.247 (the cost refunded with the response)."""
    left = cart_age_factor(24.0) / cart_age_factor(1.0)
    assert left == pytest.approx(1.74 / 6.33, rel=1e-3)
    reminder = ReminderValue(
        "cart", 24.0, {Channel.SMS: 0.9}, None, 0.0, fading_at(CART, 1.0), None, {Channel.SMS: 0.3}
    )
    assert reminder.worth(Channel.SMS, 23.0) == pytest.approx(1.2 * left - 0.3, rel=1e-9)
    assert reminder.worth(Channel.SMS, 0.0) == 0.9  # on time: its priority itself
    # a wait that leaves less than the cost is worth nothing, never a negative worth
    assert reminder.worth(Channel.SMS, 23.9) >= 0.0
    more = dataclasses.replace(reminder, costs={Channel.SMS: 0.9 * 5})
    assert more.worth(Channel.SMS, 23.0) == 0.0
    # the opportunity cost of a send that pushes it from now to 23 hours late: all of
    # its on-time worth but what the late send keeps
    now = NOW
    blocked = opportunity_cost(now, [reminder], {Channel.SMS: now}, {Channel.SMS: now + 23 * HOUR})
    assert blocked is not None
    assert blocked.cost == pytest.approx(0.9 - (1.2 * left - 0.3), rel=1e-9)


def test_deferral_credits_the_waiting_leaders_faded_response_less_its_full_cost() -> None:
    """A day-old cart's reminder leads on e-mail (P 0.09, value 10, cost 0.3: priority
    0.6) and a content message whose window closes within the hour is worth 0.5: one
    e-mail a day, so the reminder waits a day if the other goes first. Its credit is its
    priority a day later with one more contact's fatigue (1 / 1.05), the response x
    cart_age_factor(48) / cart_age_factor(24) = 0.754 and the 0.3 paid in full:
    0.09 x 0.754 x 10 / 1.05 - 0.3 = 0.346, where scaling the net priority gave
    (0.9 / 1.05 - 0.3) x 0.754 = 0.420."""
    policy = ContactPolicy()
    profile = CustomerProfile(
        "C1",
        cart_items=("P1",),
        cart_age_hours=24.0,
        days_since_sign_up=1.98,
        consents={Channel.EMAIL: True},
    )
    context = CustomerContext(profile, NOW)
    leader = Action(
        id="cart_reminder",
        type="cart_reminder",
        channels=["email"],
        eligibility="cart_size > 0 and cart_age_hours >= 20 and cart_age_hours <= 96",
    )
    rival = Action(
        id="closing", type="content", channels=["email"], eligibility="days_since_sign_up <= 2"
    )
    slot = ChannelSlot(Channel.EMAIL, SendTime(NOW, NOW, ""))
    lead_terms = PriorityTerms(propensity=0.09, value=10.0, channel_cost=0.3)
    other_terms = PriorityTerms(propensity=0.05, value=10.0)
    lead = ActionCandidate(leader, 10.0, None, (slot,))
    other = ActionCandidate(rival, 10.0, None, (slot,))
    assessments = [
        [ChannelAssessment(Channel.EMAIL, lead_terms.priority(), lead_terms)],
        [ChannelAssessment(Channel.EMAIL, other_terms.priority(), other_terms)],
    ]
    assert lead_terms.priority() == pytest.approx(0.6)
    credit_closing_rivals(context, policy, [lead, other], assessments, {"closing"})
    terms = assessments[1][0].terms
    assert terms is not None and terms.deferral is not None
    wait = (terms.deferral.waits_until - NOW) / HOUR
    assert 23.9 <= wait <= 24.1
    left = cart_age_factor(24.0 + wait) / cart_age_factor(24.0)
    fatigue = 1.0 / (1.0 + policy.fatigue_weight)
    expected = 0.09 * left * 10.0 * fatigue - 0.3
    assert terms.deferral_credit == pytest.approx(expected, rel=1e-6)
    assert terms.deferral_credit == pytest.approx(0.346, abs=2e-3)
    assert assessments[1][0].priority == pytest.approx(0.5 + expected)
