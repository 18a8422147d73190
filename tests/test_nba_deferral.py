"""Deferral (:mod:`nba.deferral`): which windows close with time, eligibility later, and
the credit's place in arbitration (exact propensities, do-nothing's bar untouched)."""

from __future__ import annotations

import datetime as dt
import random

import pytest

from nba.actions import Action
from nba.arbitration import (
    ChannelAssessment,
    Option,
    PriorityTerms,
    greedy_pick,
    thompson_pick,
    thompson_probabilities,
)
from nba.channels import Channel
from nba.context import CustomerContext
from nba.deferral import Deferral, closes_with_time, eligible_at, window_closes
from nba.profile import CustomerProfile
from nba.screening import ActionCandidate, ChannelSlot
from nba.timing import SendTime

NOW = dt.datetime(2026, 3, 4, 18, 0, tzinfo=dt.UTC)  # 19:00 in Paris


def _action(eligibility: str | None, **extra: object) -> Action:
    return Action(id="a", type="content", channels=["email"], eligibility=eligibility, **extra)


def test_only_windows_that_time_alone_can_close_are_looked_at() -> None:
    assert closes_with_time(_action("days_since_first_seen <= 2"))
    assert closes_with_time(_action("days_to_birthday <= 7"))
    assert closes_with_time(_action("local_hour < 22"))
    assert closes_with_time(_action("hours_since_sent('x') >= 72"))
    assert closes_with_time(_action(None, valid_to=NOW + dt.timedelta(days=3)))
    assert not closes_with_time(_action("average_basket >= 80 and loyalty_tier != 'none'"))
    assert not closes_with_time(_action(None))


def test_eligibility_later_ages_the_profile_and_moves_the_local_date() -> None:
    """Signed up 1.5 days ago: eligible for 12 more hours. A birthday today (Paris): still
    eligible at 23:00, not after midnight local (the countdown follows the local date)."""
    profile = CustomerProfile(
        "C1", timezone="Europe/Paris", days_since_first_seen=1.5, days_to_birthday=0
    )
    context = CustomerContext(profile, NOW)
    welcome = _action("days_since_first_seen <= 2")
    assert eligible_at(context, welcome, 11.5) and not eligible_at(context, welcome, 12.5)
    assert 11.75 <= window_closes(context, welcome, 24.0) <= 12.0
    birthday = _action("days_to_birthday >= 0 and days_to_birthday <= 7")
    assert eligible_at(context, birthday, 3.5)  # 22:30 in Paris
    assert not eligible_at(context, birthday, 5.5)  # 00:30 the next day
    in_five = CustomerContext(
        CustomerProfile("C1", timezone="Europe/Paris", days_to_birthday=5), NOW
    )
    assert eligible_at(in_five, birthday, 24.0 * 5) and not eligible_at(in_five, birthday, 24 * 6)
    ends = _action(None, valid_to=NOW + dt.timedelta(hours=2))
    assert eligible_at(context, ends, 1.0) and not eligible_at(context, ends, 3.0)


def _option(action_id: str, propensity: float, credit: float = 0.0) -> Option:
    action = Action(id=action_id, type="content", channels=["email"], value=10)
    slot = ChannelSlot(Channel.EMAIL, SendTime(NOW, NOW, ""))
    why = None
    if credit:
        why = Deferral(action_id, credit, "other", 1.0, NOW + dt.timedelta(days=1), 5.0)
    terms = PriorityTerms(propensity, 10.0, deferral_credit=credit, deferral=why)
    candidate = ActionCandidate(action, 10.0, None, (slot,))
    return Option(candidate, slot, ChannelAssessment(Channel.EMAIL, terms.priority(), terms))


def _nothing(value: float) -> Option:
    action = Action(id="nothing", type="do_nothing", value=value)
    return Option(ActionCandidate(action, value, None, ()), None, ChannelAssessment(None, value))


def test_the_credit_lifts_every_draw_and_the_propensities_stay_exact() -> None:
    """The credit is a constant of the option: each of its equally likely values moves up
    by it; the logged probabilities are those of the draw."""
    plain, credited = _option("w", 0.05), _option("w", 0.05, credit=0.4)
    assert credited.priority == pytest.approx(plain.priority + 0.4)
    assert credited.assessment.terms is not None
    assert credited.assessment.terms.priority(1.7) == pytest.approx(
        plain.assessment.terms.priority(1.7) + 0.4  # type: ignore[union-attr]
    )
    with pytest.raises(ValueError, match="deferral_credit"):
        PriorityTerms(0.1, 10.0, deferral_credit=-0.1)
    rival = _option("b", 0.07)
    before = thompson_probabilities([plain, rival, _nothing(0.01)], {})
    after = thompson_probabilities([credited, rival, _nothing(0.01)], {})
    assert after[0] > before[0] and sum(after) == pytest.approx(1.0)
    options = [credited, rival, _nothing(0.01)]
    for seed in range(50):
        pick = thompson_pick(options, {}, random.Random(seed))
        assert pick.propensity == after[pick.index]
    assert greedy_pick(options).index == 0


def test_the_credit_is_not_weighed_against_doing_nothing() -> None:
    """Below do-nothing's bar on its own (0.3 against 0.5), a credit of 2 does not make
    the option worth a gamble: it is never drawn."""
    low = _option("w", 0.03, credit=2.0)
    options = [low, _option("b", 0.2), _nothing(0.5)]
    chances = thompson_probabilities(options, {})
    assert chances[0] == 0.0 and sum(chances) == pytest.approx(1.0)


def test_a_leading_option_that_cannot_wait_is_not_explored_away() -> None:
    """When the credited option leads, the options that can wait are explored at their
    next chance, as behind a time-critical lead: here only it takes part in the draw."""
    options = [_option("w", 0.05, credit=0.6), _option("b", 0.08), _nothing(0.01)]
    pick = thompson_pick(options, {}, random.Random(3))
    assert pick.index == 0 and pick.propensity == 1.0
    assert "closes before its next chance" in pick.basis
