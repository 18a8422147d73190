"""The weighing of a replacement, once, for the API and the closed loop.

:func:`nba.supersession.supersede` is the rule (pure). What it is given comes from the
contact state: a decision made *as if* the customer's scheduled messages had not been
decided (their actions' history and their budgets given back:
:func:`unscheduled_history`, :func:`nba.budgets.given_back`), the scheduled messages its
first contact's channel would refuse (each counted alone in the customer's contacts,
:func:`~features.online.contact_state.with_own_contacts`, against the contact policy) and
what each of those is worth now (:meth:`~nba.policy.DecisionPolicy.worth_now`).
:func:`weigh_replacement` does that; ``serving/decisions.py`` and
``simulator/closed_loop/runner.py`` call it, each with the state it reads (Redis or the
loop's memory), so that the API and the loop decide the same.

>>> import datetime as dt
>>> at = dt.datetime(2026, 3, 2, 9, tzinfo=dt.UTC)
>>> before = at - dt.timedelta(days=9)
>>> scheduled = [("picks", None), ("welcome", before)]  # each action's send before
>>> history = unscheduled_history({"picks": at, "welcome": at}, scheduled)
>>> list(history), history["welcome"] == before
(['welcome'], True)
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from features.online.contact_state import (
    CancelledSend,
    OwnContact,
    ScheduledDecision,
    with_own_contacts,
)
from nba.arbitration import Posterior
from nba.budgets import Consumption, UsageCounts
from nba.channels import Channel
from nba.consent import consent_reason
from nba.contact_policy import ContactPolicy
from nba.context import CustomerContext
from nba.decision import RoutedDecision
from nba.pipeline import Decider, DecisionPipeline
from nba.policy import DecisionPolicy
from nba.profile import CustomerProfile
from nba.screening import Restriction
from nba.supersession import (
    NewContact,
    Pending,
    Supersession,
    supersede,
    withdraw_passed,
    withdraw_unsendable,
)

__all__ = [
    "Replacement",
    "supersedes",
    "unscheduled_history",
    "unsendable_sends",
    "weigh_replacement",
    "withdrawable",
]


@dataclass(frozen=True)
class Replacement:
    """A decision made as if the scheduled messages had not been, and the scheduled
    messages it replaces (:class:`~nba.supersession.Supersession`: ids and reason)."""

    routed: RoutedDecision
    verdict: Supersession


def unscheduled_history(
    history: Mapping[str, dt.datetime], before: Iterable[tuple[str, dt.datetime | None]]
) -> dict[str, dt.datetime]:
    """``history`` as if the scheduled messages had not been decided: each of their
    actions set back to its send before them (``None``: never sent; cool-downs and
    sequences count only messages that went)."""
    out = dict(history)
    for action, at in before:
        if at is None:
            out.pop(action, None)
        else:
            out[action] = at
    return out


def withdrawable(pending: Sequence[Pending], now: dt.datetime, lead: dt.timedelta) -> bool:
    """Whether any of ``pending`` is still at least ``lead`` from its send time (else none
    can be withdrawn in time, and the rule keeps them all: no need to decide again)."""
    return any(p.send_at - now >= lead for p in pending)


def weigh_replacement(
    policy: Decider,
    contact_policy: ContactPolicy,
    context: CustomerContext,
    pending: Sequence[Pending],
    *,
    usage: UsageCounts,
    stats: Mapping[str, Posterior] | None = None,
    seed: int | str = 0,
    restriction: Restriction | None = None,
) -> Replacement | None:
    """The decision that replaces some of ``pending``, or ``None`` (decide as usual).

    ``context`` and ``usage`` are the customer's as if ``pending`` had not been scheduled
    (their contacts not counted, their history and budgets given back). Off
    (``supersede_lead_minutes`` unset), for a policy that does not supersede (the rules,
    random, an experiment's router), or when every pending message is within the lead of
    its send time, nothing is decided. Else the decision is made, and its first contact
    weighed against the pending messages its channel would refuse, each worth what it is
    worth now (0 when it could no longer go: bought since, its trigger passed).
    """
    minutes = contact_policy.supersede_lead_minutes
    if minutes is None or not pending or not supersedes(policy):
        return None
    lead = dt.timedelta(minutes=minutes)
    now = context.now
    if not withdrawable(pending, now, lead):
        return None
    routed = policy.route(context, usage=usage, stats=stats, seed=seed, restriction=restriction)
    decider, seen = _decider(policy, context)
    why = {}  # the pending messages whose reason has passed: withdrawn whatever is decided
    for p in pending:
        if p.send_at - now >= lead:
            passed = decider.why_not_now(seen, p.action_id, p.channel, usage)
            if passed is not None:
                why[p.decision_id] = passed
    withdrawn = withdraw_passed(pending, why, now, lead=lead)
    if withdrawn is not None and len(withdrawn.replaces) == len(pending):
        # every scheduled message is withdrawn: the decision made as if none had been
        # scheduled is the customer's, whatever it sends (nothing, maybe)
        return Replacement(routed, withdrawn)
    contacts = routed.decision.contacts
    if not contacts or contacts[0].channel is None:
        return None
    first = contacts[0]
    new_channel = first.channel
    assert new_channel is not None
    blocking = set()  # the scheduled messages the new one's channel would refuse
    for p in pending:
        counted = with_own_contacts(
            context.profile, [OwnContact(p.decision_id, p.channel, p.send_at)], now
        )
        with_it = dataclasses.replace(context, profile=counted)
        if contact_policy.channel_reason(with_it, new_channel) is not None:
            blocking.add(p.decision_id)
    worth = {}
    if blocking:
        for p in pending:
            if p.decision_id in blocking:
                now_worth = decider.worth_now(seen, p.action_id, p.channel, usage)
                worth[p.decision_id] = 0.0 if now_worth is None else now_worth
    verdict = supersede(
        pending,
        NewContact(first.action_id, new_channel, first.priority),
        now,
        worth,
        blocking=blocking,
        lead=lead,
        margin=contact_policy.supersede_margin,
    )
    if verdict is None:
        return None
    if withdrawn is not None:  # those whose reason has passed go with those replaced
        more = [d for d in withdrawn.replaces if d not in verdict.replaces]
        if more:
            verdict = Supersession(
                verdict.replaces + tuple(more), f"{verdict.reason}; {withdrawn.reason}"
            )
    return Replacement(routed, verdict)


def supersedes(policy: Decider) -> bool:
    """Whether ``policy`` (or a pipeline's decider) replaces its scheduled messages
    (:attr:`~nba.policy.DecisionPolicy.supersedes`); an experiment's router does not."""
    if isinstance(policy, DecisionPipeline):
        policy = policy.decider
    return isinstance(policy, DecisionPolicy) and policy.supersedes


def _decider(policy: Decider, context: CustomerContext) -> tuple[DecisionPolicy, CustomerContext]:
    """The policy that weighs (a pipeline's decider) and the context as it sees it."""
    if isinstance(policy, DecisionPipeline):
        context, policy = policy.prepare(context), policy.decider
    assert isinstance(policy, DecisionPolicy)
    return policy, context


def unsendable_sends(
    profile: CustomerProfile,
    contacts: Sequence[OwnContact],
    now: dt.datetime,
    day: dt.date,
    scheduled: Mapping[str, ScheduledDecision] | None = None,
    policy: ContactPolicy | None = None,
) -> tuple[Supersession, tuple[CancelledSend, ...]] | None:
    """The customer's messages decided and due after ``now`` that may no longer go as
    scheduled, with their withdrawal, or ``None`` (:func:`nba.supersession.withdraw_unsendable`):
    those on a channel whose consent ``profile`` (read now) no longer gives, and with
    ``policy`` those whose send time now falls outside their channel's hours in the
    customer's time zone (a customer whose ``identify`` moved them to New York after a
    message was set for 07:00 in Paris: 01:00 there). Withdrawn however close their send
    and whether or not supersession is on (its lead is for trade-offs; consent and quiet
    hours are none). The withdrawal takes their contacts out of the caps. When a
    decision's ``scheduled`` record (kept with supersession on) says what it changed and
    every one of its channels is withdrawn, all of it is given back
    (:meth:`ScheduledDecision.cancelled`: history, budgets, exposure), so the message may
    go now on a channel still consented, or later at an allowed hour; else its actions'
    history stays as decided, so a withdrawn message is not sent again on another
    channel within its cool-down (the safe side), and nothing consumed is given back
    (``day``: the budget day of ``now``)."""
    due = [c for c in contacts if c.at > now]
    unconsented: dict[Channel, str] = {}
    for channel in {c.channel for c in due}:
        reason = consent_reason(profile, channel)
        if reason is not None:
            unconsented[channel] = reason.message
    why: dict[tuple[str, Channel], str] = {}
    zone = ZoneInfo(profile.timezone)
    for c in due:
        if c.channel in unconsented:
            why[c.decision_id, c.channel] = (
                f"consent is gone since it was decided: {unconsented[c.channel]}"
            )
            continue
        if policy is None:
            continue
        rules = policy.rules(c.channel)
        local = c.at.astimezone(zone)
        if not rules.allowed_times.allows(local):
            why[c.decision_id, c.channel] = (
                f"it would reach the customer at {local:%a %H:%M} in their time zone "
                f"({profile.timezone}) now, outside {c.channel.value}'s hours "
                f"({rules.describe_hours()})"
            )
    verdict = withdraw_unsendable([(c.decision_id, c.channel, c.at) for c in due], why, now)
    if verdict is None:
        return None
    channels: dict[str, list[Channel]] = {}
    for c in due:
        if (c.decision_id, c.channel) in why:
            channels.setdefault(c.decision_id, []).append(c.channel)
    records = scheduled or {}
    cancels = []
    for d in verdict.replaces:
        gone = tuple(dict.fromkeys(channels[d]))
        record = records.get(d)
        if record is not None and {ch for _, ch, _ in record.contacts} <= set(gone):
            cancels.append(record.cancelled())
        else:  # their exposures leave the response statistics, read by decision id
            cancels.append(CancelledSend(d, gone, {}, day, Consumption(), counted_exposure=True))
    return verdict, tuple(cancels)
