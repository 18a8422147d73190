"""A birthday on its last day is not passed over for doing nothing by exploration (bday11).

The engine explores by Thompson sampling: each option's priority is drawn from its
response's posterior, and the highest draw goes. Doing nothing has a fixed priority, so a
low draw of the birthday's response sends nothing. Where the birthday has a next chance
(tomorrow's decision), that costs a day; on the birthday itself (``send_by:
days_to_birthday``: the wishes arrive on or before the day) it costs the message for the
year, and teaches nothing (doing nothing has no posterior to learn). In the closed loop at
3,000 customers such draws were the larger half of the birthday cell's gap to the rules
(BENCHMARKS.md, issue 12, bday11). The engine now marks a leading action whose message
must arrive by a deadline of its own (``send_by``, an end of validity) before the
customer's next decision (``NEXT_CHANCE_HOURS``, the daily run), and which is not
eligible then, as now or never, as it marks a rival whose window closes before the leader frees its channel
(:mod:`nba.deferral`): exploration then draws only among the options that cannot wait.

Profiles come from contract events through the real feature code
(:mod:`tests.test_scenarios`); decisions from the example catalog and contact policy with
exploration on and no response statistics (the uninformative prior, a run's first day).
"""

from __future__ import annotations

import datetime as dt

import pytest

from features.dataset import RetailDataset
from nba.channels import Channel
from nba.context import CustomerContext
from nba.decision import Decision
from nba.deferral import DO_NOTHING, NEXT_CHANCE_HOURS
from nba.engine import NextBestActionPolicy
from nba.pipeline import build_pipeline
from nba.profile import CustomerProfile
from tests.test_scenarios import (
    UTC,
    customer,
    events,
    profile_at,
    retailer,
    retailer_policy,
)

NOW = dt.datetime(2026, 3, 4, 9, 0, tzinfo=UTC)  # Wednesday 10:00 in Paris


def _buyer(base: RetailDataset, birthday: str) -> CustomerProfile:
    """A past buyer (two orders), e-mail only, born on ``birthday`` (Paris)."""
    row = customer(base, consents=("email",), birth_date=birthday)
    raw = events(
        ("2026-01-12T18:00:00Z", "web", "purchase", "P1"),
        ("2026-02-10T18:00:00Z", "web", "purchase", "P2"),
    )
    return profile_at(base, row, raw, NOW)


def _weekly_sms_buyer(base: RetailDataset, birthday: str) -> CustomerProfile:
    """Twelve weekly orders (the last 4 days ago), SMS only, born on ``birthday``."""
    row = customer(base, consents=("sms",), birth_date=birthday)
    orders = [
        (
            (NOW - dt.timedelta(days=4 + 7 * week)).strftime("%Y-%m-%dT18:00:00Z"),
            "web",
            "purchase",
            "P1",
        )
        for week in range(12)
    ]
    return profile_at(base, row, events(*orders), NOW)


def _decide(profile: CustomerProfile, seed: int) -> Decision:
    catalog, policy = retailer(), retailer_policy()
    engine = NextBestActionPolicy(catalog, policy, exploration=True)
    pipeline = build_pipeline(catalog, policy, policy=engine)
    context = CustomerContext(profile, NOW)
    return pipeline.route(context, seed=seed).decision


def _probability(decision: Decision, action_id: str) -> float:
    return sum(o.probability or 0.0 for o in decision.options if o.action_id == action_id)


def test_on_the_day_itself_exploration_never_draws_doing_nothing(base: RetailDataset) -> None:
    """Born on 4 March: on the day (days_to_birthday 0) the birthday is eligible until
    midnight in Paris, 14 hours from now, and not at tomorrow's decision. Its only rivals
    are doing nothing and messages that can wait, so the draw is among the birthday's own
    options: doing nothing's logged probability is 0, and over 40 decision seeds the
    birthday goes every time. Three days before the day, with chances left, exploration
    is as before: the birthday is drawn, not certain. On main, doing nothing had a logged
    probability of 0.001 on the day itself for this buyer, whose birthday is worth much
    more than a send costs, and 0.3125 for a weekly buyer reached by SMS (priority 0.90)."""
    today = _buyer(base, "1990-03-04")
    assert today.days_to_birthday == 0
    first = _decide(today, 0)
    assert "birthday" in first.eligible_action_ids
    assert _probability(first, "do_nothing") == 0.0
    assert _probability(first, "birthday") == pytest.approx(1.0)
    assert all(_decide(today, seed).action_id == "birthday" for seed in range(40))

    # a weekly buyer reached by SMS, whose points are often redeemed on orders placed
    # anyway (P 0.55 x 2.5): priority 0.90, where main drew doing nothing 0.3125 of the time
    weekly = _decide(_weekly_sms_buyer(base, "1990-03-04"), 0)
    assert weekly.action_id == "birthday"
    assert weekly.actions[0].channel is Channel.SMS
    assert weekly.actions[0].terms is not None
    assert weekly.actions[0].terms.redeemed_anyway > 0.5
    assert _probability(weekly, "do_nothing") == 0.0

    ahead = _buyer(base, "1990-03-07")
    assert ahead.days_to_birthday == 3
    early = _decide(ahead, 0)
    assert "birthday" in early.eligible_action_ids
    assert 0.0 < _probability(early, "birthday") < 1.0


def test_the_last_chance_is_marked_only_when_no_decision_tomorrow_finds_it(
    base: RetailDataset,
) -> None:
    """The mark itself, by hand. At 09:00 UTC (10:00 in Paris) on 4 March, a birthday on
    4 March closes at midnight Paris time, 23:00 UTC: 14 hours from now, found by
    bisection to the quarter hour below (13.75 to 14 h), before ``NEXT_CHANCE_HOURS`` (24).
    Its deferral names doing nothing, with no credit (its priority is its own), and doing
    nothing's priority as what waits. Born on 5 March, the birthday is still eligible at
    tomorrow's decision (days_to_birthday 0 then): no mark."""
    catalog, policy = retailer(), retailer_policy()
    for born, marked in (("1990-03-04", True), ("1990-03-05", False)):
        engine = NextBestActionPolicy(catalog, policy, exploration=False)
        pipeline = build_pipeline(catalog, policy, policy=engine)
        decision = pipeline.route(CustomerContext(_buyer(base, born), NOW), seed=1).decision
        [chosen] = decision.actions
        assert chosen.action_id == "birthday"
        assert chosen.terms is not None and chosen.terms.deferral_credit == 0.0
        deferral = chosen.terms.deferral
        if not marked:
            assert deferral is None
            continue
        assert deferral is not None
        assert (deferral.action_id, deferral.waits, deferral.credit) == (
            "birthday",
            DO_NOTHING,
            0.0,
        )
        assert 0.0 < deferral.waits_priority < chosen.priority
        assert 13.75 <= deferral.closes_hours <= 14.0 < NEXT_CHANCE_HOURS
