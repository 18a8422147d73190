"""An action that can wait gives way to one whose window closes, built from raw events.

A welcome goes out within two days of sign-up (``days_since_first_seen <= 2``); a
birthday message any day of the week before the day. The seed policy allows one e-mail
a rolling day and twelve hours between messages, so the e-mail one of them spends now
is the other's until tomorrow. When the welcome's window closes before then, the
birthday e-mail now loses it, while the welcome now leaves the birthday for tomorrow.
The welcome's response is a first order, worth more than the birthday's: when the
birthday's window closes first, the engine sends the birthday first by its deferral
credit and says why (:mod:`nba.deferral`); when the welcome's closes first, or both have
a day to spare, the welcome keeps its place. Profiles come from contract events through the real feature code; decisions
from the example catalog and contact policy with exploration off
(:mod:`tests.test_scenarios`).
"""

from __future__ import annotations

import datetime as dt

from features.dataset import RetailDataset
from nba.channels import Channel
from nba.decision import Decision
from nba.profile import CustomerProfile
from nba.reasons import ReasonCode
from tests.test_scenarios import UTC, customer, decide, events, profile_at

NOW = dt.datetime(2026, 3, 4, 9, 0, tzinfo=UTC)  # Wednesday 10:00 in Paris


def _stamp(at: dt.datetime) -> str:
    return at.strftime("%Y-%m-%dT%H:%M:%SZ")


def _signed_up(
    base: RetailDataset,
    hours_ago: float,
    birthday: str,
    now: dt.datetime = NOW,
    *sent: tuple[object, ...],
) -> CustomerProfile:
    """Signed up ``hours_ago`` before ``NOW`` (one product view then), e-mail only."""
    signed_up = _stamp(NOW - dt.timedelta(hours=hours_ago))
    row = customer(base, consents=("email",), birth_date=birthday, created_at=signed_up)
    return profile_at(base, row, events((signed_up, "web", "product_view", "P1"), *sent), now)


def _lost(decision: Decision, action_id: str) -> str:
    [lost] = [
        r
        for r in decision.rejections
        if r.action_id == action_id and r.code is ReasonCode.LOST_ARBITRATION
    ]
    return lost.message


def test_the_welcome_closing_today_goes_before_the_birthday_that_can_wait(
    base: RetailDataset,
) -> None:
    """Signed up 28 hours ago: the welcome's window closes in 20 hours, before the e-mail
    frees again; the birthday is in 5 days. The welcome's response is a first order (the
    catalog values it as welcome_3 does), worth more than the birthday's: it goes on its
    own priority, with no credit needed, and the birthday, which can wait, is not given
    one either. Tomorrow, the birthday goes. (At the welcome's old flat value, 6, the
    birthday's priority was three times the welcome's and the welcome went by the
    deferral credit: the next test has that case the other way round.)"""
    profile = _signed_up(base, 28, "1990-03-09")
    assert profile.days_to_birthday == 5
    decision = decide(profile, NOW)
    assert {"welcome_1", "birthday"} <= set(decision.eligible_action_ids)
    [chosen] = decision.actions
    assert (chosen.action_id, chosen.channel) == ("welcome_1", Channel.EMAIL)
    assert chosen.terms is not None and chosen.terms.deferral is None
    assert _lost(decision, "birthday").startswith("welcome_1 was picked")
    assert "can wait" not in _lost(decision, "birthday")

    # the next day's call, once the e-mail has freed: the birthday
    later = NOW + dt.timedelta(hours=24, minutes=5)
    sent = (_stamp(NOW), "email", "message_sent", None)
    profile = _signed_up(base, 28, "1990-03-09", later, sent)
    [chosen] = decide(profile, later, history={"welcome_1": NOW}).actions
    assert (chosen.action_id, chosen.channel) == ("birthday", Channel.EMAIL)


def test_the_birthday_closing_today_goes_before_the_welcome_that_can_wait(
    base: RetailDataset,
) -> None:
    """The opposite case: the birthday is today (its window closes tonight) and the
    welcome has just opened (signed up an hour ago, two days to go). The welcome's
    priority is above the birthday's, but sent now it loses the birthday, while the
    birthday now leaves the welcome for tomorrow: the birthday goes, by its deferral
    credit, and the reasons say so. The next day the welcome, still in its window, goes."""
    profile = _signed_up(base, 1, "1990-03-04")
    assert profile.days_to_birthday == 0
    decision = decide(profile, NOW)
    [chosen] = decision.actions
    assert chosen.action_id == "birthday"
    terms = chosen.terms
    assert terms is not None and terms.deferral is not None
    assert terms.deferral.waits == "welcome_1"
    # its own priority is below the welcome's: the credit is what the welcome keeps
    own = chosen.priority - terms.deferral_credit
    welcome_now = terms.deferral.waits_priority
    assert own < welcome_now < chosen.priority
    assert 0.8 * welcome_now < terms.deferral_credit < welcome_now
    message = _lost(decision, "welcome_1")
    assert "birthday first: its window closes in" in message
    assert "welcome_1 can wait until Thu 2026-03-05" in message
    assert any(f.name == "deferral" for f in decision.explanation.chosen[0].factors)

    later = NOW + dt.timedelta(hours=24, minutes=5)
    sent = (_stamp(NOW), "email", "message_sent", None)
    profile = _signed_up(base, 1, "1990-03-04", later, sent)
    [chosen] = decide(profile, later, history={"birthday": NOW}).actions
    assert chosen.action_id == "welcome_1"


def test_a_birthday_with_days_to_spare_waits_for_the_welcome(base: RetailDataset) -> None:
    """Signed up 4 hours ago, birthday in 5 days: both are still in their windows when the
    e-mail frees tomorrow, so neither gets a credit; the welcome, worth more, goes first."""
    decision = decide(_signed_up(base, 4, "1990-03-09"), NOW)
    [chosen] = decision.actions
    assert chosen.action_id == "welcome_1"
    assert all(o.terms is None or o.terms.deferral is None for o in decision.actions)
    assert "can wait" not in _lost(decision, "birthday")
