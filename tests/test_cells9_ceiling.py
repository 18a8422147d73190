"""Exploration draws no message answered more often than it is opened (issue 12, cells9).

The scorer caps a message's response at the customer's open rate on channels that report
opens (cells7); Thompson sampling then scaled that capped response by its posterior's draws,
up to three times a push's taps for a pair without evidence, and explored pushed
cross-sells where the e-mail earns twice as much (seeds 0-9 of the closed loop: 16 such
pushes, -0.98 per 1,000 customers per seed against the rules' e-mails). The draws now stop
at the channel's ceiling; the statistics' evidence (their mean) can still lift a pair above
it.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Sequence

import pytest

from features.dataset import RetailDataset
from nba.actions import Action
from nba.arbitration import (
    BetaPosterior,
    ChannelAssessment,
    Option,
    PriorityTerms,
    ResponsePosterior,
    thompson_probabilities,
)
from nba.channels import Channel
from nba.context import CustomerContext
from nba.engine import NextBestActionPolicy
from nba.pipeline import build_pipeline
from nba.scoring import ActionScore, RuleBasedScorer
from nba.screening import ActionCandidate, ChannelSlot, Restriction
from nba.timing import SendTime
from tests.test_scenarios import UTC, customer, events, profile_at, retailer, retailer_policy

NOW = dt.datetime(2026, 3, 4, 10, 0, tzinfo=UTC)  # Wednesday 11:00 in Paris


def _option(action: Action, channel: Channel, terms: PriorityTerms) -> Option:
    slot = ChannelSlot(channel, SendTime(NOW, NOW, ""))
    candidate = ActionCandidate(action, action.value or 0.0, None, (slot,))
    return Option(candidate, slot, ChannelAssessment(channel, terms.priority(), terms, None))


def _two_channels(push_ceiling: float, push_posterior: object) -> tuple[list[Option], dict]:  # type: ignore[type-arg]
    action = Action(id="cross", type="cross_sell", channels=["email", "push"], value=10)
    email = PriorityTerms(propensity=0.060, value=10.0, channel_cost=0.001, ceiling=0.40)
    push = PriorityTerms(propensity=0.050, value=10.0, channel_cost=0.0005, ceiling=push_ceiling)
    options = [_option(action, Channel.EMAIL, email), _option(action, Channel.PUSH, push)]
    return options, {"cross@email": ResponsePosterior(), "cross@push": push_posterior}


def test_a_push_at_its_tap_rate_is_explored_less_than_one_allowed_three_times_its_taps() -> None:
    capped, stats = _two_channels(0.050, ResponsePosterior())
    free, _ = _two_channels(1.0, ResponsePosterior())
    with_ceiling = thompson_probabilities(capped, stats)
    without = thompson_probabilities(free, stats)
    assert without[1] > 0.25  # a draw of 1.2x the e-mail's response beats it
    assert with_ceiling[1] < 0.85 * without[1]  # its draws stop at 0.05 x 10 - cost
    assert sum(with_ceiling) == pytest.approx(1.0)


def test_evidence_lifts_a_pair_above_its_ceiling() -> None:
    """Pushed cross-sells answered twice as often as the scorer said: the posterior's mean
    (2.0) takes the push above its tap rate, and it is explored as before or more."""
    answered = ResponsePosterior.from_counts(responses=40, expected=20.0)
    capped, stats = _two_channels(0.050, answered)
    free, _ = _two_channels(1.0, answered)
    assert thompson_probabilities(capped, stats)[1] > 0.5
    assert thompson_probabilities(capped, stats)[1] == pytest.approx(
        thompson_probabilities(free, stats)[1], abs=0.25
    )


def test_a_spread_only_posterior_stops_at_the_ceiling_too() -> None:
    capped, stats = _two_channels(0.050, BetaPosterior(1.0, 1.0))
    assert thompson_probabilities(capped, stats)[1] < 0.5


class _Unceiled(RuleBasedScorer):
    """The same scorer, its ceilings dropped (the draws before this change)."""

    def score(
        self, context: CustomerContext, candidates: Sequence[ActionCandidate]
    ) -> list[ActionScore]:
        return [dataclasses.replace(s, ceiling=None) for s in super().score(context, candidates)]


def _messages(channel: str, sent: int, opened: int) -> list[tuple[object, ...]]:
    rows: list[tuple[object, ...]] = []
    for k in range(sent):
        at = dt.datetime(2026, 1, 5, 10, tzinfo=UTC) + dt.timedelta(days=2 * k)
        rows.append((at, channel, "message_sent", None))
        if k < opened:
            rows.append((at + dt.timedelta(minutes=20), channel, "message_opened", None))
            rows.append((at + dt.timedelta(minutes=21), channel, "message_clicked", None))
    return rows


def _push_probability(profile: object, scorer: RuleBasedScorer) -> tuple[float, float]:
    catalog, policy = retailer(), retailer_policy()
    engine = NextBestActionPolicy(catalog, policy, scorer=scorer)
    pipeline = build_pipeline(catalog, policy, policy=engine)
    context = CustomerContext(profile, NOW)  # type: ignore[arg-type]
    only = Restriction(action_ids=frozenset({"cross_sell_after_purchase"}))
    decision = pipeline.route(context, seed=1, restriction=only).decision
    by_channel = {
        o.channel: o.probability
        for o in decision.options
        if o.action_id == "cross_sell_after_purchase"
    }
    return by_channel[Channel.PUSH], by_channel[Channel.EMAIL]


def test_a_cross_sell_is_seldom_explored_by_push_where_its_email_earns_more(
    base: RetailDataset,
) -> None:
    """Bought three days ago; opens 14 of 25 e-mails, taps 4 of 25 pushes. The cross-sell's
    push is rated at its taps (the cap), its e-mail a little above: the e-mail is drawn more
    often than the push (56 % against 44 %). Before, with draws up to three times the taps,
    the push was drawn more often than the e-mail (57 %)."""
    people = customer(base, consents=("email", "push"))
    raw = events(
        ("2025-11-20T18:00:00Z", "web", "purchase", "P2"),
        (NOW - dt.timedelta(days=3), "web", "purchase", "P1"),
        *_messages("email", 25, 14),
        *_messages("push", 25, 4),
    )
    profile = profile_at(base, people, raw, NOW)
    push_now, email_now = _push_probability(profile, RuleBasedScorer())
    push_before, email_before = _push_probability(profile, _Unceiled())
    assert email_now > push_now
    assert push_before > email_before  # the draws above the taps made the push the favourite
