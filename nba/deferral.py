"""Deferral: an action that can wait gives way to one whose window closes.

Arbitration ranks by this moment's priority. That is right when the others can go
later, but a send spends contact rules (the hours between messages, a channel's daily
cap), and an action whose window closes before the rules let it go has no second
chance: a welcome valid two days after sign-up, seen on its second day, against a
birthday message valid all week. Sending the birthday now loses the welcome; sending
the welcome now leaves the birthday for its next opportunity. So for the leading
action ``L`` (the highest priority) and each rival ``X`` worth sending whose window
closes before its next opportunity after ``L``'s send, the engine weighs two plans::

    L now, X lost:                priority(L)
    X now, L at its next chance:  priority(X) + d x priority(L)

``d`` is what ``L`` is still worth then, as a share of its priority now: 0 when it is
no longer eligible at the moment its channels free again after ``X``'s send (with no
new event: the profile's ages grown, the local date moved on, :func:`eligible_at`);
else its priority with the fatigue one more contact brings (the contact policy's
``fatigue_weight``), its response scaled by the share of its worth the wait leaves (the
cost of sending it is paid in full) for the types whose worth fades with their trigger's
age (:func:`nba.ageing.fading_of`: a cart reminder keeps 0.27 of its response over a
day's wait when its cart is an hour old, 0.75 when a day old),
counted from its own slot's send time, at which its priority is valued already.
``d x priority(L)`` is ``X``'s *deferral credit*, added to ``X``'s priority on that channel
(:attr:`~nba.arbitration.PriorityTerms.deferral_credit`): a constant per option, so the
exploration's logged probabilities stay exact; it is never counted against doing
nothing (an option's own priority must clear do-nothing's bar, as before).

It is only looked at where it can change something: a rival above doing nothing whose
eligibility can change with time alone (:func:`closes_with_time`: it reads an age, the
local time, a birthday's countdown or a send's age, or has an end date), and a
leader's send that blocks a channel. When both windows close, or both can wait,
nothing changes.

>>> from nba.actions import Action
>>> welcome = Action(id="welcome_1", type="welcome", channels=["email"],
...                  eligibility="days_since_first_seen <= 2")
>>> tier = Action(id="vip", type="content", channels=["email"],
...               eligibility="loyalty_tier == 'gold'")
>>> closes_with_time(welcome), closes_with_time(tier)
(True, False)
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Collection, Sequence

from nba.actions import Action
from nba.ageing import fading_of
from nba.arbitration import ChannelAssessment, Deferral, PriorityTerms
from nba.channels import Channel
from nba.contact_policy import ContactPolicy
from nba.context import CONTEXT_FIELDS, CustomerContext
from nba.reserve import (
    AGEING,
    LaterScope,
    after_send,
    blocks_channels,
    free_at,
)
from nba.screening import ActionCandidate, ChannelSlot

_HOUR = dt.timedelta(hours=1)
#: Rule fields whose values change as time passes with no new event.
TIME_FIELDS: frozenset[str] = frozenset(
    {*AGEING, "days_to_birthday", "sign_up_day", *CONTEXT_FIELDS}
)
#: When a customer is decided for again at the latest, with nothing sent meanwhile (hours):
#: the daily audience run. An action not eligible by then has no next chance.
NEXT_CHANCE_HOURS = 24.0
#: The name doing nothing goes by in a last chance's :class:`~nba.arbitration.Deferral`.
DO_NOTHING = "doing nothing"
#: How close :func:`window_closes` finds the end of a window (hours).
_WINDOW_PRECISION_HOURS = 0.25


def closes_with_time(action: Action) -> bool:
    """Whether ``action``'s eligibility may end with time alone: it has an end date, or
    its rules read a field that changes as time passes (:data:`TIME_FIELDS`) or the age
    of a send (``hours_since_sent``)."""
    offer = action.offer
    if action.valid_to is not None or (offer is not None and offer.valid_to is not None):
        return True
    rules = (action.eligibility, None if offer is None else offer.eligibility)
    return any(r is not None and (r.sent_actions or r.fields & TIME_FIELDS) for r in rules)


def eligible_at(context: CustomerContext, action: Action, hours: float) -> bool:
    """Whether ``action`` is eligible ``hours`` from now if nothing happens meanwhile
    (its rules known to be true then, within its and its offer's end dates)."""
    at = context.now_utc + hours * _HOUR
    offer = action.offer
    for ends in (action.valid_to, None if offer is None else offer.valid_to):
        if ends is not None and at > ends:
            return False
    scope = LaterScope(context, hours)
    rules = (action.eligibility, None if offer is None else offer.eligibility)
    return all(rule.evaluator(scope) is True for rule in rules if rule is not None)


def window_closes(context: CustomerContext, action: Action, within: float) -> float:
    """The last moment (hours from now, to a quarter of an hour) at which ``action``,
    eligible now and no longer ``within`` hours from now, is still seen eligible: never
    later than it is."""
    low, high = 0.0, within
    while high - low > _WINDOW_PRECISION_HOURS:
        middle = (low + high) / 2
        if eligible_at(context, action, middle):
            low = middle
        else:
            high = middle
    return low


def credit_closing_rivals(
    context: CustomerContext,
    policy: ContactPolicy,
    candidates: Sequence[ActionCandidate],
    assessments: list[list[ChannelAssessment]],
    closing: Collection[str],
) -> None:
    """Give each rival of the leader whose window closes before its next opportunity its
    deferral credit on each channel (the module docstring), replacing its assessments in
    ``assessments`` (one list per candidate, in slot order); ``closing``: the ids of the
    actions whose eligibility may end with time alone (:func:`closes_with_time`)."""
    bar = 0.0
    best: list[tuple[float, int, ChannelSlot]] = []  # each action's best open channel
    for i, (candidate, per_channel) in enumerate(zip(candidates, assessments, strict=True)):
        if candidate.action.is_do_nothing:
            bar = max(bar, per_channel[0].priority)
        elif kept := _open(candidate, per_channel):
            top = max(kept, key=lambda item: item[2].priority)
            best.append((top[2].priority, i, top[1]))
    worth = [b for b in best if b[0] > bar]
    if not worth:
        return
    lead_priority, lead, lead_slot = max(worth, key=lambda b: b[0])
    if candidates[lead].action.id in closing:
        _mark_last_chance(context, candidates, assessments, lead, bar)
    if len(worth) < 2:
        return
    if not blocks_channels(policy, lead_slot.channel):
        return  # its send leaves every channel as free as it is
    rivals = [i for _, i, _ in worth if i != lead and candidates[i].action.id in closing]
    if not rivals:
        return
    leader = candidates[lead].action
    lead_open = _open(candidates[lead], assessments[lead])
    # the leader's priority on each channel is valued at its slot's send time already
    # (the engine's late factor): a longer wait fades it from there on
    fading = {
        m: fading_of(leader.type, context.profile, max(0.0, _hours_until(context, k.send.at)))
        for m, k, _ in lead_open
    }
    rivals_open = {i: _open(candidates[i], assessments[i]) for i in rivals}
    channels = {s.channel for _, s, _ in lead_open}
    channels |= {s.channel for kept in rivals_open.values() for _, s, _ in kept}
    before = free_at(context, policy, sorted(channels))
    after_lead = after_send(context, policy, before, lead_slot.channel, lead_slot.send.at)
    for i, kept in rivals_open.items():
        rival = candidates[i].action
        next_chance = _hours_until(context, min(after_lead[s.channel] for _, s, _ in kept))
        if next_chance <= 0.0 or eligible_at(context, rival, next_chance):
            continue  # it can go after the leader
        closes: float | None = None
        for j, slot, own in kept:
            after = after_send(context, policy, before, slot.channel, slot.send.at)
            later, waits_until = 0.0, context.now_utc
            for m, k, lead_own in lead_open:  # the leader's best worth when a channel frees
                wait = max(0.0, _hours_until(context, after[k.channel]))
                if lead_own.terms is None or not eligible_at(context, leader, wait):
                    continue
                faded = fading[m]
                left = 1.0 if faded is None else faded.left(wait - _hours_until(context, k.send.at))
                value = _worth_later(policy, lead_own.terms, k.channel, slot.channel, left)
                if value > later:
                    later, waits_until = value, max(after[k.channel], context.now_utc)
            if later <= 0.0 or own.terms is None:
                continue
            if closes is None:
                closes = window_closes(context, rival, next_chance)
            why = Deferral(rival.id, later, leader.id, lead_priority, waits_until, closes)
            assessments[i][j] = dataclasses.replace(
                own,
                priority=own.priority + later,
                terms=dataclasses.replace(own.terms, deferral_credit=later, deferral=why),
            )


def _mark_last_chance(
    context: CustomerContext,
    candidates: Sequence[ActionCandidate],
    assessments: list[list[ChannelAssessment]],
    lead: int,
    bar: float,
) -> None:
    """Mark the leader's open channels as now or never (a deferral of no credit against
    doing nothing) when its message must arrive by a deadline (``send_by``, an end of
    validity) that falls before the customer's next decision (:data:`NEXT_CHANCE_HOURS`)
    and it is not eligible then: exploration does not draw doing nothing, or an
    action that can wait, in its place (:func:`nba.arbitration.thompson_pick`). Doing
    nothing teaches nothing, and a birthday passed over on its last day is lost for the
    year (BENCHMARKS.md, issue 12, bday11)."""
    action = candidates[lead].action
    deadline = action.arrive_by(context.now_utc, context)
    if deadline is None or deadline > context.now_utc + NEXT_CHANCE_HOURS * _HOUR:
        return  # no deadline of its own (a window of eligibility: its journey's flags rule)
    if eligible_at(context, action, NEXT_CHANCE_HOURS):
        return
    closes = window_closes(context, action, NEXT_CHANCE_HOURS)
    for j, own in enumerate(assessments[lead]):
        if own.reason is None and own.terms is not None and own.terms.deferral is None:
            why = Deferral(action.id, 0.0, DO_NOTHING, bar, context.now_utc, closes)
            assessments[lead][j] = dataclasses.replace(
                own, terms=dataclasses.replace(own.terms, deferral=why)
            )


def _open(
    candidate: ActionCandidate, per_channel: Sequence[ChannelAssessment]
) -> list[tuple[int, ChannelSlot, ChannelAssessment]]:
    """The candidate's channels that no reason filters out: (position, slot, assessment)."""
    pairs = zip(candidate.slots, per_channel, strict=True)
    return [(j, slot, a) for j, (slot, a) in enumerate(pairs) if a.reason is None]


def _hours_until(context: CustomerContext, at: dt.datetime) -> float:
    return (at - context.now_utc).total_seconds() / 3600.0


def _worth_later(
    policy: ContactPolicy,
    terms: PriorityTerms,
    channel: Channel,
    spent: Channel,
    left: float,
) -> float:
    """The waiting action's priority on ``channel`` after a send on ``spent``: with the
    fatigue of one more contact, its response scaled by ``left``, the share of its worth the
    wait leaves (:func:`nba.ageing.fading_of`; 1 for an action whose worth does not fade):
    the costs of sending it are paid in full whenever it goes."""
    fatigue = terms.fatigue
    if policy.rules(channel).counts_toward_total and policy.rules(spent).counts_toward_total:
        # fatigue f = 1 / (1 + w n): one more contact gives 1 / (1 / f + w)
        fatigue = 1.0 / (1.0 / fatigue + policy.fatigue_weight) if fatigue > 0.0 else 0.0
    later = dataclasses.replace(terms, fatigue=fatigue, deferral_credit=0.0, deferral=None)
    return later.priority(left)  # its response fades, not the cost of sending it
