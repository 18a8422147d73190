"""The opportunity cost of a send for the next time-critical reminder (nba.reserve)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import math

import pytest

from nba.actions import ActionType
from nba.ageing import CART_DECAY_EXPONENT, fading_at
from nba.channels import Channel
from nba.contact_policy import ContactPolicy
from nba.context import CustomerContext
from nba.profile import ContactHistory, CustomerProfile
from nba.reserve import (
    KeptFree,
    ReminderValue,
    TriggerRate,
    after_send,
    combined,
    delay_factor,
    free_at,
    opportunity_cost,
    trigger_hours,
    trigger_rates,
)
from nba.screening import ChannelSlot
from nba.timing import Fading, SendTime
from tests.test_scenarios import retailer, retailer_policy

NOW = dt.datetime(2026, 3, 4, 7, tzinfo=dt.UTC)
HOUR = dt.timedelta(hours=1)
BROWSE = ReminderValue("browse", 10.0, {Channel.EMAIL: 0.6, Channel.PUSH: 0.4})
CART = ReminderValue("cart", 24.0, {Channel.EMAIL: 0.6})


def _cart_fading(age_hours: float) -> Fading:
    fading = fading_at(ActionType.CART_REMINDER, age_hours)
    assert fading is not None
    return fading


#: A cart reminder's worth fades with its cart's age (nba.ageing): from a cart an hour old
#: when it is due, and from one a day old.
FRESH, DAY_OLD = _cart_fading(1.0), _cart_fading(24.0)


def _at(reminder: ReminderValue, per_hour: float) -> ReminderValue:
    return dataclasses.replace(reminder, rate=TriggerRate.constant(per_hour))


def _context(**contacts: dict[Channel, int]) -> CustomerContext:
    return CustomerContext(CustomerProfile("C1", contacts=ContactHistory(**contacts)), NOW)


def test_the_last_email_of_the_day_blocks_it_for_a_day_and_every_channel_for_the_gap() -> None:
    policy = ContactPolicy()  # e-mail 1 a day, 12 hours between messages
    context = _context()
    before = free_at(context, policy, [Channel.EMAIL, Channel.PUSH])
    assert before == {Channel.EMAIL: NOW, Channel.PUSH: NOW}
    after = after_send(context, policy, before, Channel.EMAIL, NOW + 2 * HOUR)
    # a day after the send, and the second a contact stamped to the second is counted
    assert after[Channel.EMAIL] == NOW + 26 * HOUR + dt.timedelta(seconds=1)
    assert after[Channel.PUSH] == NOW + 14 * HOUR
    # a push (2 a day) spends no cap's last unit: only the gap
    pushed = after_send(context, policy, before, Channel.PUSH, NOW)
    assert pushed == {Channel.EMAIL: NOW + 12 * HOUR, Channel.PUSH: NOW + 12 * HOUR}


def test_the_cost_grows_with_the_customers_browsing_and_counts_the_channel_left() -> None:
    policy = ContactPolicy()
    context = _context()
    before = free_at(context, policy, [Channel.EMAIL, Channel.PUSH])
    after = after_send(context, policy, before, Channel.EMAIL, NOW)
    rare = opportunity_cost(NOW, [_at(BROWSE, 1 / 720)], before, after)
    often = opportunity_cost(NOW, [_at(BROWSE, 15 / 720)], before, after)
    assert rare is not None and often is not None
    assert 0 < rare.cost < often.cost
    # a session in the first 2 hours loses the reminder on both channels (the gap, past
    # its 10-hour validity); from 2 to 14 hours it still goes by push: 0.6 - 0.4 lost
    rate = 15 / 720
    expected = (1 - math.exp(-rate * 2)) * 0.6 + (math.exp(-rate * 2) - math.exp(-rate * 14)) * 0.2
    assert often.cost == pytest.approx(expected, rel=1e-4)  # the cap's second of stamp
    assert often.action_id == "browse"
    assert (
        "kept email free for browse" in dataclasses.replace(often, channel=Channel.EMAIL).describe()
    )
    # no browsing, or a reminder that can wait out the block within its validity: no cost
    assert opportunity_cost(NOW, [BROWSE], before, after) is None
    email_only = {Channel.EMAIL: before[Channel.EMAIL]}
    cart_after = {Channel.EMAIL: NOW + 24 * HOUR}
    assert opportunity_cost(NOW, [_at(CART, rate)], email_only, cart_after) is None


def test_a_channel_already_blocked_costs_only_what_the_send_adds() -> None:
    policy = ContactPolicy()
    context = _context(contacts_1d={Channel.EMAIL: 1}, last_contact_at={Channel.EMAIL: NOW - HOUR})
    before = free_at(context, policy, [Channel.EMAIL])
    assert before[Channel.EMAIL] >= NOW + 11 * HOUR
    unchanged = opportunity_cost(NOW, [_at(BROWSE, 0.1)], before, dict(before))
    assert unchanged is None


def test_a_cart_reminder_that_waits_loses_worth_with_the_carts_age() -> None:
    """A cart reminder due in an hour, its cart an hour old then, whose only channel a
    send would block for a day: it still goes within its validity, 23 hours late, when
    the cart is 24 hours old, at 1.74 / 6.33 of its worth (SaleCycle's conversions after
    1 h and 24 h); the send costs the rest, for certain. The second reminder of a cart a
    day old loses less over the same wait (its cart goes from 24 to 47 hours)."""
    email_only = {Channel.EMAIL: NOW}
    blocked = {Channel.EMAIL: NOW + 24 * HOUR}
    due = dataclasses.replace(CART, due_hours=1.0, fading=FRESH)
    kept = opportunity_cost(NOW, [due], email_only, blocked)
    assert kept is not None and kept.due_hours == 1.0 and kept.chance == 1.0
    assert kept.cost == pytest.approx(0.6 * (1 - 1.74 / 6.33), rel=1e-3)
    assert "already triggered, due in 1.0 h" in kept.describe()
    second = opportunity_cost(NOW, [dataclasses.replace(due, fading=DAY_OLD)], email_only, blocked)
    assert second is not None
    assert second.cost == pytest.approx(0.6 * (1 - (47 / 24) ** -CART_DECAY_EXPONENT))
    assert second.cost < 0.5 * kept.cost
    # blocked only past its moment: nothing lost
    assert opportunity_cost(NOW, [due], email_only, {Channel.EMAIL: NOW + HOUR / 2}) is None
    # a trigger not yet happened, at a constant rate, now also loses the wait's worth
    fresh = dataclasses.replace(CART, fading=_cart_fading(0.0))
    chance = opportunity_cost(NOW, [_at(fresh, 0.01)], email_only, blocked)
    assert chance is not None and 0 < chance.cost < 0.6 * (1 - math.exp(-0.01 * 24))


def test_triggers_count_only_at_the_hours_the_reminder_can_still_go_out() -> None:
    """An evening reminder (eligible 12:00-22:00, sent 18:00-22:00, valid 10 hours) counts
    sessions from 12:00 to 22:00, local time; a cart reminder every hour. The customer's
    own activity spreads the trigger days over the day; with a cart open, neither a new
    cart nor browse abandonment triggers (the open cart's own reminders do, when due)."""
    catalog = retailer()
    browse = catalog["browse_reminder_evening"]
    cart = catalog["cart_reminder_1"]
    hours = trigger_hours(browse)
    assert [h for h in range(24) if hours[h]] == list(range(12, 22))
    assert all(trigger_hours(cart))
    # active only in the evening (Paris), 12 days a month with products left behind
    evening = [0.0] * 168
    for day in range(7):
        evening[day * 24 + 19] = 1.0 / 7
    profile = CustomerProfile(
        "C1",
        timezone="Europe/Paris",
        activity_by_hour=tuple(evening),
        events_seen=400,
        browse_left_days_30d=12,
        cart_left_days_30d=2,
    )
    morning = CustomerContext(profile, NOW)  # 08:00 in Paris
    rate_browse, rate_cart = trigger_rates(morning, [browse, cart], {})
    assert rate_browse is not None and rate_cart is not None
    assert rate_browse.per_day < 12 / 30 and rate_browse.per_day > 0.9 * 12 / 30
    assert rate_cart.per_day == pytest.approx(2 / 30)
    # nearly all of a day's browse triggers come at 19:00, 11 hours from now
    assert rate_browse.expected(10.0) < 0.1 * rate_browse.expected(12.0)
    nothing = CustomerContext(CustomerProfile("C2", browse_days_30d=20), NOW)
    assert trigger_rates(nothing, [browse, cart], {}) == [None, None]
    carted = dataclasses.replace(profile, cart_items=("P1",))
    in_cart = trigger_rates(CustomerContext(carted, NOW), [browse, cart], {})
    assert in_cart == [None, None]


def test_a_fading_reminder_keeps_what_its_carts_age_leaves_at_its_slot() -> None:
    """Valued at its slot's send time (an e-mail held by a spent cap until tomorrow):
    nothing lost when it goes now; 23 hours on, a cart an hour old keeps SaleCycle's
    1.74 / 6.33 of its worth, a cart a day old over a day's wait 2 ** -0.41 (0.75), not
    the quarter a fixed half-life through the same figures gave both."""
    context = _context()

    def slot(hours: float) -> ChannelSlot:
        return ChannelSlot(Channel.EMAIL, SendTime(NOW + hours * HOUR, NOW, ""))

    assert delay_factor(context, slot(0.0), FRESH) == 1.0
    assert delay_factor(context, slot(23.0), FRESH) == pytest.approx(1.74 / 6.33, rel=1e-3)
    assert delay_factor(context, slot(24.0), DAY_OLD) == pytest.approx(0.754, abs=1e-3)


def test_a_reminder_eligible_now_is_lost_when_another_send_blocks_its_own_slot() -> None:
    """A cart reminder eligible now (due 0, its cart an hour old) whose e-mail slot is 14
    hours on: a send at 18 hours on the same e-mail (its day's last) blocks that slot;
    the reminder's worth there (0.6 x (15 / 1) ** -0.41) is what the send costs, for
    certain."""
    cart = dataclasses.replace(CART, due_hours=0.0, fading=FRESH)
    own = {Channel.EMAIL: NOW + 14 * HOUR}
    after = after_send(_context(), retailer_policy(), own, Channel.EMAIL, NOW + 18 * HOUR)
    kept = opportunity_cost(NOW, [cart], own, after)
    assert kept is not None and kept.due_hours == 0.0
    assert kept.cost == pytest.approx(0.6 * 15.0**-CART_DECAY_EXPONENT)
    assert "eligible now" in kept.describe()


def test_the_words_of_a_cost_made_of_several_losses_add_up_to_it() -> None:
    """A send that blocks the e-mail a due cart reminder and a browse reminder would both
    use costs both their losses; its words name the larger and count the other, with its
    part, so that the figures a marketer reads add up to the opportunity cost."""
    email_only = {Channel.EMAIL: NOW}
    blocked = {Channel.EMAIL: NOW + 24 * HOUR}
    due = dataclasses.replace(CART, due_hours=1.0, fading=FRESH)
    browse = _at(BROWSE, 0.05)
    alone = opportunity_cost(NOW, [due], email_only, blocked)
    both = opportunity_cost(NOW, [due, browse], email_only, blocked)
    assert alone is not None and both is not None
    assert (both.action_id, both.others) == ("cart", 1) and both.cost > alone.cost
    words = both.describe()
    assert f"its priority lost {alone.cost:.3g}" in words
    assert words.endswith(
        f"opportunity cost {both.cost:.3g} with 1 other reminder's loss "
        f"({both.cost - alone.cost:.3g})"
    )
    assert "other" not in alone.describe()
    # alternatives of one group count once: the group's larger loss, no other reminder
    grouped = [dataclasses.replace(due, group="cart"), dataclasses.replace(due, group="cart")]
    one = opportunity_cost(NOW, grouped, email_only, blocked)
    assert one is not None and one.others == 0 and one.cost == pytest.approx(alone.cost)
    # two costs of one send combined count each other's reminders
    twice = combined(both, alone)
    assert twice is not None and twice.others == 2
    assert "with 2 other reminders' losses" in twice.describe()


def test_two_opportunity_costs_of_one_send_add_up_named_after_the_larger() -> None:
    small = KeptFree(0.1, "browse", 0.2, 0.5, Channel.EMAIL)
    large = KeptFree(0.4, "cart", 1.0, 0.4, None, due_hours=0.0)
    both = combined(small, large)
    assert both is not None
    assert (both.cost, both.action_id, both.channel) == (pytest.approx(0.5), "cart", Channel.EMAIL)
    assert combined(None, small) is small and combined(small, None) is small
