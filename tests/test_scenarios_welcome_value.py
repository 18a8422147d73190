"""A new customer's first-day reminder does not take the welcome's place, built from raw
events through the real feature code.

A welcome message's response is a first order, worth what the example catalog's third
welcome says one is worth (its margin and the customer it makes); a browse reminder's is
one order of the customer's usual basket. The welcome's window is two days and the seed
policy's gap between messages is twelve hours: at a flat value of 6, the first-day
browsing's evening reminder won, and the welcome often closed before the channel freed.
In the closed loop's truth those welcome e-mails were worth 0.19-0.35 and the reminders
that won 0.001-0.12 (BENCHMARKS.md, issue 12 items 1-2, "where the engine leaves value").
Decisions from the example catalog and contact policy, exploration off
(:mod:`tests.test_scenarios`).
"""

from __future__ import annotations

import datetime as dt

import pytest

from features.dataset import RetailDataset
from nba.channels import Channel
from nba.reasons import ReasonCode
from tests.test_scenarios import UTC, customer, decide, events, profile_at

#: Tuesday 18:30 in Paris.
NOW = dt.datetime(2026, 3, 10, 17, 30, tzinfo=UTC)


def test_a_first_day_browser_gets_the_welcome_before_the_browse_reminder(
    base: RetailDataset,
) -> None:
    """Signed up yesterday morning, looked at a product for ten minutes at 17:00 today,
    bought nothing: both the welcome and the evening's browse reminder are eligible on
    e-mail, and each closes before the e-mail frees after the other (the welcome's two
    days end tomorrow at 10:00). The welcome goes: it is worth more than the reminder
    (a first order against one usual basket) even with the reminder's loss counted
    against it, and the reasons say the reminder lost to it. Once the welcome is out, the
    reminder of a later browsing session is what goes. (When the welcome still has a day
    to spare, the reminder goes first and the welcome the next day: :mod:`nba.deferral`.)"""
    people = customer(base, consents=("email",), created_at="2026-03-09T09:00:00Z")
    dwell = {"properties": {"dwell_seconds": 300}}
    raw = events(
        ("2026-03-10T16:00:00Z", "web", "product_view", "P1", dwell),
        ("2026-03-10T16:05:00Z", "web", "product_view", "P1", dwell),
    )
    profile = profile_at(base, people, raw, NOW)
    assert profile.browse_minutes_24h == pytest.approx(10.0)
    assert profile.purchases_total == 0
    decision = decide(profile, NOW)
    assert {"welcome_1", "browse_reminder_evening"} <= set(decision.eligible_action_ids)
    [chosen] = decision.actions
    assert (chosen.action_id, chosen.channel) == ("welcome_1", Channel.EMAIL)
    assert chosen.terms is not None and chosen.terms.value == pytest.approx(50.0)
    assert chosen.terms.kept_free is not None
    assert chosen.terms.kept_free.action_id == "browse_reminder_evening"
    [lost] = [
        r
        for r in decision.rejections
        if r.action_id == "browse_reminder_evening" and r.code is ReasonCode.LOST_ARBITRATION
    ]
    assert lost.message.startswith("welcome_1 was picked")

    # two days later, welcome sent, a new evening's browsing: the reminder goes
    later = NOW + dt.timedelta(days=2)
    raw = events(
        ("2026-03-12T16:00:00Z", "web", "product_view", "P1", dwell),
        ("2026-03-12T16:05:00Z", "web", "product_view", "P1", dwell),
        ("2026-03-10T17:30:00Z", "email", "message_sent", None),
    )
    after = decide(profile_at(base, people, raw, later), later, history={"welcome_1": NOW})
    assert after.actions[0].action_id == "browse_reminder_evening"
