"""One definition of how a reminder's worth fades while it waits (:mod:`nba.ageing`).

Every place that values a delay reads it: the send-time search (:class:`nba.timing.Fading`
from :func:`nba.ageing.fading_of`), the engine's late slot
(:func:`nba.reserve.delay_factor`), the reserve's reminders still to come
(:attr:`nba.reserve.ReminderValue.fading`) and deferral's leader that waits
(:func:`nba.deferral.credit_closing_rivals`). The share a wait leaves depends on the
trigger's age: a day's wait leaves a cart an hour old SaleCycle's 1.74 / 6.33 of its
worth, a cart a day old 0.75 (the fixed 12.3-hour half-life these used gave both 0.26).
"""

from __future__ import annotations

import dataclasses
import datetime as dt

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import nba.deferral
import nba.engine
import nba.reserve
from nba.actions import Action, ActionType
from nba.ageing import cart_age_factor, fading_at, fading_of
from nba.arbitration import ChannelAssessment, PriorityTerms
from nba.channels import Channel
from nba.contact_policy import ContactPolicy
from nba.context import CustomerContext
from nba.deferral import credit_closing_rivals
from nba.profile import CustomerProfile
from nba.reserve import ReminderValue, delay_factor
from nba.screening import ActionCandidate, ChannelSlot
from nba.timing import SendTime

NOW = dt.datetime(2026, 3, 4, 9, 0, tzinfo=dt.UTC)  # Wednesday 10:00 in Paris
HOUR = dt.timedelta(hours=1)
CART = ActionType.CART_REMINDER


def _ratio(age: float, wait: float) -> float:
    """The power law's share left, written out: the response at the older age over now."""
    return cart_age_factor(age + wait) / cart_age_factor(age)


@settings(max_examples=60, deadline=None)
@given(
    age=st.floats(min_value=0.0, max_value=120.0),
    due=st.floats(min_value=0.0, max_value=48.0),
    wait=st.floats(min_value=0.0, max_value=72.0),
)
def test_every_delay_is_valued_by_the_carts_age(age: float, due: float, wait: float) -> None:
    """For a cart ``age`` hours old: the engine's late slot ``wait`` hours on, the send-time
    search's worth left, and the reserve's reminder due in ``due`` hours going ``wait``
    hours late, each keep the scorer's cart-age factor at the older age over the younger."""
    profile = CustomerProfile("C1", cart_age_hours=age, cart_items=("P1",))
    context = CustomerContext(profile, NOW)
    fading = fading_of(CART, profile)
    assert fading is not None
    slot = ChannelSlot(Channel.EMAIL, SendTime(NOW + wait * HOUR, NOW, ""))
    assert delay_factor(context, slot, fading) == pytest.approx(_ratio(age, wait), rel=1e-6)
    assert fading.left(wait) == pytest.approx(_ratio(age, wait), rel=1e-9)
    due_fading = fading_of(CART, profile, later_hours=due)
    reminder = ReminderValue("cart", 1000.0, {Channel.EMAIL: 0.8}, fading=due_fading)
    assert reminder.worth(Channel.EMAIL, wait) == pytest.approx(
        0.8 * _ratio(age + due, wait), rel=1e-9
    )


def test_a_days_wait_costs_a_fresh_cart_more_than_a_day_old_one() -> None:
    """SaleCycle's figures themselves: an hour-old cart's reminder a day later keeps
    1.74 / 6.33 of its worth; a day-old cart's keeps 2 ** -0.41 over the next day."""
    fresh, day_old = fading_at(CART, 1.0), fading_at(CART, 24.0)
    assert fresh is not None and day_old is not None
    assert fresh.left(23.0) == pytest.approx(1.74 / 6.33, rel=1e-3)
    assert day_old.left(24.0) == pytest.approx(0.754, abs=1e-3)
    # a cart a session will leave is fresh: flat in its first hour
    assert fading_at(CART, 0.0).left(1.0) == 1.0  # type: ignore[union-attr]
    # nothing else fades, and a cart of unknown age is not guessed at
    assert fading_at(ActionType.BROWSE_REMINDER, 3.0) is None
    assert fading_of(CART, CustomerProfile("C1")) is None


def test_there_is_no_second_definition() -> None:
    """The fixed half-life is gone from the reserve, and no module that values a delay
    keeps one of its own."""
    for module in (nba.reserve, nba.deferral, nba.engine):
        assert not hasattr(module, "DELAY_HALF_LIFE_HOURS"), module.__name__
    assert "half_life_hours" not in {f.name for f in dataclasses.fields(ReminderValue)}


def _assessed(
    action: Action, priority: float, send_in: float = 0.0
) -> tuple[ActionCandidate, list[ChannelAssessment]]:
    slot = ChannelSlot(Channel.EMAIL, SendTime(NOW + send_in * HOUR, NOW, ""))
    terms = PriorityTerms(propensity=priority / 10.0, value=10.0)
    return ActionCandidate(action, 10.0, None, (slot,)), [
        ChannelAssessment(Channel.EMAIL, terms.priority(), terms)
    ]


@pytest.mark.parametrize(
    ("cart_age", "minimum", "send_in"), [(1.5, 1, 0.0), (24.0, 20, 0.0), (1.5, 1, 6.0)]
)
def test_deferral_values_the_waiting_cart_reminder_by_its_carts_age(
    cart_age: float, minimum: int, send_in: float
) -> None:
    """A cart reminder leads (priority 0.9) and a content message whose window closes
    within the hour is worth sending (0.5): e-mail only, one a day, so the reminder
    waits a day if the other goes first. The credit is what the reminder keeps after that
    day (with one more contact's fatigue): by its cart's age, a fresh cart's little, a
    day-old cart's more than twice as much. A leader whose own slot is later (its priority
    valued there already, at the engine's late factor) fades only over the rest of the wait."""
    policy = ContactPolicy()
    profile = CustomerProfile(
        "C1",
        cart_items=("P1",),
        cart_age_hours=cart_age,
        days_since_sign_up=1.98,
        consents={Channel.EMAIL: True},
    )
    context = CustomerContext(profile, NOW)
    leader = Action(
        id="cart_reminder",
        type="cart_reminder",
        channels=["email"],
        eligibility=f"cart_size > 0 and cart_age_hours >= {minimum} and cart_age_hours <= 96",
    )
    rival = Action(
        id="closing", type="content", channels=["email"], eligibility="days_since_sign_up <= 2"
    )
    (lead, lead_a), (other, other_a) = _assessed(leader, 0.9, send_in), _assessed(rival, 0.5)
    assessments = [lead_a, other_a]
    credit_closing_rivals(context, policy, [lead, other], assessments, {"closing"})
    terms = assessments[1][0].terms
    assert terms is not None and terms.deferral is not None
    wait = (terms.deferral.waits_until - NOW) / HOUR
    assert 23.9 <= wait <= 24.1
    tired = lead_a[0].terms
    assert tired is not None
    later = dataclasses.replace(tired, fatigue=1.0 / (1.0 + policy.fatigue_weight)).priority()
    left = _ratio(cart_age + send_in, wait - send_in)
    assert terms.deferral_credit == pytest.approx(later * left, rel=1e-6)
    assert assessments[1][0].priority == pytest.approx(0.5 + terms.deferral_credit)
