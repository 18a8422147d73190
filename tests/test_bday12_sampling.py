"""An option above doing nothing is not left out of the draw on its posterior's mean alone
(issue 12, bday12, cause C).

Thompson sampling draws each option's priority from its response's posterior and leaves
out, before the draw, the options expected to lose to doing nothing (their optimistic draws
sent letters and calls whose expected margin was negative). The expectation was the mean of
the draws only. For a pair without evidence of its own, the posterior is centred on the
segment's pooled calibration: in a run's first hours that counts the responses the scorer
expected of every message sent and only the responses arrived so far, 0.57 on the closed
loop's first day (seed 0). A birthday of priority 0.23 by SMS then had a draws' mean of
-0.07, below doing nothing's 0.01, and doing nothing was chosen with probability 1 on the
birthday's last chance. An option is now left out only when both its priority and its
draws' mean are below doing nothing; where they disagree the draw weighs its posterior
(its draws below doing nothing's priority lose to it), with exact logged probabilities.

Profiles come from contract events through the real feature code
(:mod:`tests.test_scenarios`); the statistics are the real in-memory response statistics
(:class:`~features.online.response_stats.MemoryResponseStats`).
"""

from __future__ import annotations

import datetime as dt
import random

import pytest

from features.dataset import RetailDataset
from features.online.response_stats import (
    Exposure,
    MemoryResponseStats,
    Outcome,
    response_segment,
)
from nba.actions import Action
from nba.arbitration import (
    ChannelAssessment,
    Option,
    PriorityTerms,
    ResponsePosterior,
    thompson_pick,
    thompson_probabilities,
)
from nba.channels import Channel
from nba.context import CustomerContext
from nba.decision import Decision
from nba.engine import NextBestActionPolicy
from nba.events import EventType
from nba.pipeline import build_pipeline
from nba.profile import CustomerProfile
from nba.screening import ActionCandidate, ChannelSlot
from nba.timing import SendTime
from tests.test_scenarios import UTC, customer, events, profile_at, retailer, retailer_policy

NOW = dt.datetime(2026, 3, 4, 9, 0, tzinfo=UTC)  # Wednesday 10:00 in Paris


def _weekly_sms_buyer(base: RetailDataset, birthday: str) -> CustomerProfile:
    """Twelve weekly orders (the last 4 days ago), SMS only, born on ``birthday``."""
    row = customer(base, consents=("sms",), birth_date=birthday)
    days = [(NOW - dt.timedelta(days=4 + 7 * week)).strftime("%Y-%m-%d") for week in range(12)]
    orders = [(f"{day}T18:00:00Z", "web", "purchase", "P1") for day in days]
    return profile_at(base, row, events(*orders), NOW)


def _first_hours(segment: str, answered: int) -> MemoryResponseStats:
    """The segment's statistics three hours into a run: 400 weekly e-mails sent, each
    expected to be answered 1 time in 10, and ``answered`` clicks arrived so far."""
    stats = MemoryResponseStats()
    sent = NOW - dt.timedelta(hours=3)
    for k in range(400):
        stats.expose(
            Exposure(f"d{k}", f"X{k}", sent, "recommendations_weekly", "email", segment, 0.1)
        )
    for k in range(answered):
        click = Outcome.of_event(
            f"e{k}", f"X{k}", NOW - dt.timedelta(hours=1), EventType.MESSAGE_CLICKED, f"d{k}"
        )
        stats.attribute(click)
    return stats


def _decide(profile: CustomerProfile, stats: MemoryResponseStats, seed: int) -> Decision:
    catalog, policy = retailer(), retailer_policy()
    engine = NextBestActionPolicy(catalog, policy, exploration=True)
    pipeline = build_pipeline(catalog, policy, policy=engine)
    posteriors = stats.table(NOW).posteriors(response_segment(profile))
    return pipeline.route(CustomerContext(profile, NOW), seed=seed, stats=posteriors).decision


def _probability(decision: Decision, action_id: str) -> float:
    return sum(o.probability or 0.0 for o in decision.options if o.action_id == action_id)


def test_a_birthday_above_doing_nothing_is_drawn_though_its_segments_first_hours_say_less(
    base: RetailDataset,
) -> None:
    """A weekly SMS buyer on their birthday (its last chance), priority 0.90. Three hours
    into a run, 20 of the 40 clicks expected from the segment's e-mails have arrived: the
    birthday's pair, unseen, gets a posterior of mean 0.52, and its draws' mean falls below
    doing nothing. On main doing nothing had probability 1; now the birthday is drawn about
    a third of the time, the logged probabilities exact (each pick's propensity is its
    option's probability, and they sum to 1)."""
    profile = _weekly_sms_buyer(base, "1990-03-04")
    assert profile.days_to_birthday == 0
    stats = _first_hours(response_segment(profile), answered=20)
    posterior = stats.table(NOW).posteriors(response_segment(profile)).get("birthday@sms")
    assert posterior is not None and posterior.mean == pytest.approx(
        22 / 42, rel=1e-3
    )  # decayed 3 h

    first = _decide(profile, stats, 0)
    birthday = [a for a in first.actions if a.action_id == "birthday"] or [
        r for r in first.explanation.every_rejected if r.action_id == "birthday"
    ]
    assert birthday and birthday[0].priority is not None and birthday[0].priority > 0.5
    chance = _probability(first, "birthday")
    assert 0.2 < chance < 0.5  # main: 0.0
    assert chance + _probability(first, "do_nothing") == pytest.approx(1.0)
    picks = [_decide(profile, stats, seed) for seed in range(64)]
    sent = sum(d.action_id == "birthday" for d in picks)
    assert 0.1 < sent / len(picks) < 0.6
    for decision in picks:
        chosen = decision.actions[0] if decision.actions else None
        assert chosen is not None
        assert chosen.propensity == pytest.approx(_probability(decision, chosen.action_id))

    # with the responses all in (40 of 40) the pair is trusted as the scorer says: the
    # last chance is marked, and the birthday goes for sure, as before
    settled = _decide(profile, _first_hours(response_segment(profile), answered=40), 0)
    assert _probability(settled, "birthday") == pytest.approx(1.0)


def _option(action_id: str, terms: PriorityTerms, *, do_nothing: bool = False) -> Option:
    if do_nothing:
        nothing = Action(id=action_id, type="do_nothing")
        candidate = ActionCandidate(nothing, 0.0, None, ())
        return Option(candidate, None, ChannelAssessment(None, terms.priority(), None))
    slot = ChannelSlot(Channel.SMS, SendTime(NOW, NOW, ""))
    action = Action(id=action_id, type="milestone", channels=["sms"], value=terms.value)
    candidate = ActionCandidate(action, terms.value, None, (slot,))
    return Option(candidate, slot, ChannelAssessment(Channel.SMS, terms.priority(), terms))


def test_only_an_option_below_doing_nothing_by_both_measures_is_left_out() -> None:
    """The rule alone. Three SMS options of the same response (0.05) and gain (20), with
    costs that put their priority at 0.23, 0.60 and -0.05; each drawn from Gamma(1.14, 2)
    (mean 0.57: an unseen pair in a segment whose calibration is 0.57). Doing nothing is at
    0.01. The first's draws' mean is below doing nothing, its priority above: it takes
    part (main left it out, and doing nothing had all the rest). The third is below by
    both: left out. The probabilities are exact: every pick's propensity is its
    probability, and the picks' frequencies follow them."""
    early = ResponsePosterior(1.14, 2.0)
    disputed = PriorityTerms(0.05, 20.0, channel_cost=0.77)  # 1.0 - 0.77 = 0.23
    sure = PriorityTerms(0.05, 20.0, channel_cost=0.40)  # 0.60, draws' mean 0.17
    below = PriorityTerms(0.05, 20.0, channel_cost=1.05)  # -0.05
    nothing = PriorityTerms(0.0, 0.0, channel_cost=0.0)
    options = [
        _option("birthday", disputed),
        _option("points", sure),
        _option("letter", below),
        _option("do_nothing", nothing, do_nothing=True),
    ]
    options[3] = Option(
        options[3].candidate, None, ChannelAssessment(None, 0.01, None)
    )  # doing nothing's fixed priority
    stats = {"birthday@sms": early, "points@sms": early, "letter@sms": early}
    chances = thompson_probabilities(options, stats)
    assert sum(chances) == pytest.approx(1.0)
    assert chances[0] > 0.0  # main: 0.0
    assert chances[1] > chances[0]
    assert chances[2] == 0.0
    counts = [0] * len(options)
    runs = 3000
    for seed in range(runs):
        pick = thompson_pick(options, stats, random.Random(seed))
        assert pick.propensity == pytest.approx(chances[pick.index])
        counts[pick.index] += 1
    for count, chance in zip(counts, chances, strict=True):
        assert abs(count / runs - chance) < 0.03
