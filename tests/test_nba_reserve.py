"""The opportunity cost of a send for the next time-critical reminder (nba.reserve)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import math

import pytest

from nba.channels import Channel
from nba.contact_policy import ContactPolicy
from nba.context import CustomerContext
from nba.profile import ContactHistory, CustomerProfile
from nba.reserve import ReminderValue, after_send, free_at, opportunity_cost

NOW = dt.datetime(2026, 3, 4, 7, tzinfo=dt.UTC)
HOUR = dt.timedelta(hours=1)
BROWSE = ReminderValue("browse", 10.0, {Channel.EMAIL: 0.6, Channel.PUSH: 0.4}, 1.0)
CART = ReminderValue("cart", 24.0, {Channel.EMAIL: 0.6}, 1.0)


def _context(**contacts: dict[Channel, int]) -> CustomerContext:
    return CustomerContext(CustomerProfile("C1", contacts=ContactHistory(**contacts)), NOW)


def test_the_last_email_of_the_day_blocks_it_for_a_day_and_every_channel_for_the_gap() -> None:
    policy = ContactPolicy()  # e-mail 1 a day, 12 hours between messages
    context = _context()
    before = free_at(context, policy, [Channel.EMAIL, Channel.PUSH])
    assert before == {Channel.EMAIL: NOW, Channel.PUSH: NOW}
    after = after_send(context, policy, before, Channel.EMAIL, NOW + 2 * HOUR)
    assert after[Channel.EMAIL] == NOW + 26 * HOUR
    assert after[Channel.PUSH] == NOW + 14 * HOUR
    # a push (2 a day) spends no cap's last unit: only the gap
    pushed = after_send(context, policy, before, Channel.PUSH, NOW)
    assert pushed == {Channel.EMAIL: NOW + 12 * HOUR, Channel.PUSH: NOW + 12 * HOUR}


def test_the_cost_grows_with_the_customers_browsing_and_counts_the_channel_left() -> None:
    policy = ContactPolicy()
    context = _context()
    before = free_at(context, policy, [Channel.EMAIL, Channel.PUSH])
    after = after_send(context, policy, before, Channel.EMAIL, NOW)
    rare = opportunity_cost(NOW, 1 / 720, [BROWSE], before, after)
    often = opportunity_cost(NOW, 15 / 720, [BROWSE], before, after)
    assert rare is not None and often is not None
    assert 0 < rare.cost < often.cost
    # a session in the first 2 hours loses the reminder on both channels (the gap, past
    # its 10-hour validity); from 2 to 14 hours it still goes by push: 0.6 - 0.4 lost
    rate = 15 / 720
    expected = (1 - math.exp(-rate * 2)) * 0.6 + (math.exp(-rate * 2) - math.exp(-rate * 14)) * 0.2
    assert often.cost == pytest.approx(expected)
    assert often.action_id == "browse"
    assert (
        "kept email free for browse" in dataclasses.replace(often, channel=Channel.EMAIL).describe()
    )
    # no browsing, or a reminder that can wait out the block within its validity: no cost
    assert opportunity_cost(NOW, 0.0, [BROWSE], before, after) is None
    email_only = {Channel.EMAIL: before[Channel.EMAIL]}
    cart_after = {Channel.EMAIL: NOW + 24 * HOUR}
    assert opportunity_cost(NOW, rate, [CART], email_only, cart_after) is None


def test_a_channel_already_blocked_costs_only_what_the_send_adds() -> None:
    policy = ContactPolicy()
    context = _context(contacts_1d={Channel.EMAIL: 1}, last_contact_at={Channel.EMAIL: NOW - HOUR})
    before = free_at(context, policy, [Channel.EMAIL])
    assert before[Channel.EMAIL] >= NOW + 11 * HOUR
    unchanged = opportunity_cost(NOW, 0.1, [BROWSE], before, dict(before))
    assert unchanged is None
