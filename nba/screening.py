"""Screening: from the catalog to the candidates that may compete.

For each action: validity dates, eligibility rule (and the offer's), wording
variant, per-customer cool-down, offer budget and daily volume. Then for each
of its channels: consent (hard), contact policy (session, refusal cool-down,
caps, fatigue) and a send time within the action's time-to-live (quiet hours
push the send later; only when no moment is left is the channel dropped).
Everything dropped is recorded as a :class:`~nba.reasons.Rejection` with its
reason code and message; nothing is scored here.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from nba.actions import INCENTIVE_KINDS, Action, Variant
from nba.ageing import fading_of
from nba.budgets import UsageCounts, budget_reason
from nba.catalog import Catalog
from nba.channels import Channel
from nba.consent import consent_reason
from nba.contact_policy import ROLLING_CAP_CODES, ContactPolicy
from nba.context import ContextScope, CustomerContext, scope_of
from nba.frozen import IdentityMemo, computed_once, fast_init
from nba.lead_time import LeadTime
from nba.reasons import Reason, ReasonCode, Rejection, WrittenWhenRead
from nba.rules import Rule
from nba.rules.closures import Evaluate
from nba.timing import SendTime, minute_text


@fast_init
@dataclass(frozen=True, slots=True)
class ChannelSlot:
    """A channel that may deliver an action, when it would send it and, on a channel with
    a lead time (a letter), when it would reach the customer (``None``: at the send)."""

    channel: Channel
    send: SendTime
    arrives: dt.datetime | None = None


@fast_init
@dataclass(frozen=True)
class ActionCandidate:
    """An eligible action with the channels that passed consent and contact policy.

    ``value`` is the action's value evaluated for this customer; ``slots`` is
    empty for ``do_nothing`` only.
    """

    action: Action
    value: float
    variant: Variant | None
    slots: tuple[ChannelSlot, ...]

    @computed_once
    def channels(self) -> tuple[Channel, ...]:
        """Its slots' channels (read by the scorer and the engine several times)."""
        return tuple([s.channel for s in self.slots])


@dataclass(frozen=True)
class Restriction:
    """What the caller allows: some action ids, some channels (``None``: all).

    A journey tool assembling an e-mail asks for ``channels={Channel.EMAIL}``; a
    placement that can show only two banners passes their ids. ``do_nothing`` is
    always allowed.

    >>> r = Restriction(action_ids=frozenset({"welcome"}), channels=frozenset({Channel.EMAIL}))
    >>> r.allows_action("welcome"), r.allows_action("offer_10"), r.allows_channel(Channel.SMS)
    (True, False, False)
    """

    action_ids: frozenset[str] | None = None
    channels: frozenset[Channel] | None = None

    def allows_action(self, action_id: str) -> bool:
        return self.action_ids is None or action_id in self.action_ids

    def allows_channel(self, channel: Channel) -> bool:
        return self.channels is None or channel in self.channels


@fast_init
@dataclass(frozen=True)
class Screening:
    """The candidates that may compete and every rejection on the way."""

    candidates: tuple[ActionCandidate, ...]
    rejections: tuple[Rejection, ...]


def screen(
    catalog: Catalog,
    policy: ContactPolicy,
    context: CustomerContext,
    usage: UsageCounts,
    restriction: Restriction | None = None,
) -> Screening:
    """Apply eligibility, consent and contact policy to every action of ``catalog``
    (only to those ``restriction`` allows; the others are rejected as not requested)."""
    scope = scope_of(context)
    send_times: dict[tuple[object, ...], SendTime | Reason] = {}  # actions share channels and TTLs
    gates: dict[Channel, _Gate] = {}  # and each channel's consent and contact-policy verdict
    plans = _plans(catalog)
    sends = context.action_history
    if sends:
        skip = _placement_only(catalog, plans, policy)
        sends = {a: at for a, at in sends.items() if a not in skip}
    last_message_at = policy.last_message_at(context, sends)
    now = context.now_utc
    candidates: list[ActionCandidate] = []
    rejections: list[Rejection] = []
    for plan in plans:
        action = plan.action
        if not (restriction is None or plan.do_nothing or restriction.allows_action(plan.id)):
            rejections.append(Rejection(plan.id, None, ReasonCode.NOT_REQUESTED, _NOT_ASKED))
            continue
        rejection = plan.rejection(now, context, scope, usage)
        if rejection is not None:
            rejections.append(rejection)
            continue
        variant = _variant(action, scope)
        if action.variants and variant is None:
            message = "no wording variant matches this customer"
            rejections.append(Rejection(action.id, None, ReasonCode.NOT_ELIGIBLE, message))
            continue
        value = max(0.0, action.value.number(scope) or 0.0)
        if action.is_do_nothing:
            candidates.append(ActionCandidate(action, value, variant, ()))
            continue
        slots: list[ChannelSlot] = []
        window: tuple[dt.datetime, dt.datetime] | None = None  # the same on every channel
        for channel in plan.channels:
            if restriction is not None and not restriction.allows_channel(channel):
                message = f"the request asked for {_names(restriction.channels)} only"
                rejections.append(Rejection(action.id, channel, ReasonCode.NOT_REQUESTED, message))
                continue
            gate = gates.get(channel)
            if gate is None:
                gate = gates[channel] = _gate(channel, policy, context, None)
            if gate[0] is not None and not gate[1]:  # no consent, or the policy says no
                rejections.append(Rejection.of(action.id, channel, gate[0]))
                continue
            if window is None:
                window = plan.send_window(now, context)
            slot = _slot(
                action, channel, policy, context, send_times, last_message_at, gate, window
            )
            if isinstance(slot, Reason):
                rejections.append(Rejection.of(action.id, channel, slot))
            else:
                slots.append(slot)
        if slots:
            candidates.append(ActionCandidate(action, value, variant, tuple(slots)))
    return Screening(tuple(candidates), tuple(rejections))


_NOT_ASKED = "not among the actions the request allows"
#: Why a launch is not given when none of its products can be shown: a launch e-mail
#: without the collection is no launch (the weekly picks show the best sellers).
_NOTHING_TO_SHOW = (
    "nothing to show: no new arrival the customer can buy (none launched lately is in "
    "stock and not already theirs)"
)


def _outside_validity(starts: Sequence[dt.datetime], ends: Sequence[dt.datetime]) -> Reason:
    """The reason of an action asked outside its (and its offer's) validity, naming the
    dates as the catalog gives them."""
    window = []
    if starts:
        window.append(f"from {max(starts).isoformat()}")
    if ends:
        window.append(f"until {min(ends).isoformat()}")
    return Reason(
        ReasonCode.OUTSIDE_VALIDITY,
        f"outside the action's and offer's validity dates (valid {' '.join(window)})",
    )


@dataclass(frozen=True, slots=True)
class _ActionPlan:
    """What screening reads of one action, gathered once per catalog: the validity
    bounds that are set, the eligibility rules as closures with the rejections they
    give (one immutable record per rule and verdict, shared by every decision), the
    deliverable channels. :meth:`rejection` checks validity, eligibility, cool-down
    and budget in that order."""

    action: Action
    id: str
    do_nothing: bool
    starts: tuple[dt.datetime, ...]
    ends: tuple[dt.datetime, ...]
    #: (name, rule, evaluate) per rule: a rule that does not hold is explained by its
    #: failing clause and the customer's values (:meth:`nba.rules.Rule.why_not`)
    rules: tuple[tuple[str, Rule, Evaluate], ...]
    cooldown_hours: float | None
    #: For an incentive: the catalog's other incentives with a time limit, as (action id,
    #: offer id, hours valid): while the customer holds one, no second one goes
    held_offers: tuple[tuple[str, str, float], ...]
    budgeted: bool
    channels: tuple[Channel, ...]
    outside_validity: Rejection
    #: for a launch (``shows: new_arrivals``): its rejection when no new arrival is left
    #: to show (``None`` for the other actions)
    nothing_to_show: Rejection | None
    #: the last send window computed, with its moment, when it is the same for every
    #: customer (no ``send_by`` deadline): the customers of a batch share it
    last_window: list[tuple[dt.datetime, tuple[dt.datetime, dt.datetime]]] = field(
        default_factory=list, compare=False, hash=False, repr=False
    )

    @classmethod
    def of(cls, action: Action, limited: Sequence[Action] = ()) -> _ActionPlan:
        """The plan of ``action``; ``limited``: the catalog's incentives with a time limit."""
        offer = action.offer
        bounds = [(action.valid_from, action.valid_to)]
        if offer is not None:
            bounds.append((offer.valid_from, offer.valid_to))
        named = [("eligibility", action.eligibility)]
        named.append(("offer eligibility", None if offer is None else offer.eligibility))
        starts = tuple(start for start, _ in bounds if start is not None)
        ends = tuple(end for _, end in bounds if end is not None)
        return cls(
            action=action,
            id=action.id,
            do_nothing=action.is_do_nothing,
            starts=starts,
            ends=ends,
            rules=tuple((name, rule, rule.evaluator) for name, rule in named if rule is not None),
            cooldown_hours=action.cooldown_hours,
            held_offers=tuple(
                (other.id, other.offer.id, other.offer.expires_after_hours)
                for other in limited
                if other.id != action.id
                and other.offer is not None
                and other.offer.expires_after_hours is not None
            )
            if _is_incentive(action)
            else (),
            budgeted=(offer is not None and offer.daily_budget is not None)
            or action.daily_volume is not None,
            channels=action.deliverable_channels,
            outside_validity=Rejection.of(action.id, None, _outside_validity(starts, ends)),
            nothing_to_show=Rejection(action.id, None, ReasonCode.NOT_ELIGIBLE, _NOTHING_TO_SHOW)
            if action.shows == "new_arrivals"
            else None,
        )

    def send_window(
        self, now: dt.datetime, context: CustomerContext
    ) -> tuple[dt.datetime, dt.datetime]:
        """:func:`_send_window` of the action at ``now`` (``context.now_utc``)."""
        if self.action.send_by is not None:  # a deadline of the customer's own
            return _send_window(self.action, context)
        held = self.last_window
        last = held[-1] if held else None  # one read: threads may replace it meanwhile
        if last is not None and last[0] == now:
            return last[1]
        window = _send_window(self.action, context)
        held[:] = [(now, window)]
        return window

    def rejection(
        self, now: dt.datetime, context: CustomerContext, scope: ContextScope, usage: UsageCounts
    ) -> Rejection | None:
        """Why the action may not be given at all (``None``: it may)."""
        for start in self.starts:  # mostly none: a loop, not any() and its generator
            if now < start:
                return self.outside_validity
        for end in self.ends:
            if now > end:
                return self.outside_validity
        for name, rule, evaluate in self.rules:
            if evaluate(scope) is not True:
                return WrittenWhenRead(
                    self.id, None, ReasonCode.NOT_ELIGIBLE, _why_not, name, rule, scope
                )
        if self.nothing_to_show is not None and context.has_new_arrivals is False:
            return self.nothing_to_show
        cooldown = self.cooldown_hours
        if cooldown is not None:
            hours = context.hours_since_sent(self.id)
            if (
                hours is not None
                and hours < cooldown
                and not (self.action.cooldown_per_cart and context.cart_added_since_sent(self.id))
            ):
                message = f"{_sent(hours)}; the cool-down is {cooldown:g} hours"
                if self.action.cooldown_per_cart:
                    message += " for the same cart (nothing added to it since)"
                return Rejection(self.id, None, ReasonCode.ACTION_COOLDOWN, message)
        for other, offer_id, valid_hours in self.held_offers:  # one live incentive at a time
            hours = context.hours_since_sent(other)
            if hours is not None and hours < valid_hours:
                return Rejection(
                    self.id,
                    None,
                    ReasonCode.OFFER_HELD,
                    f"the customer holds {offer_id} ({other}, {_sent(hours)}, "
                    f"valid {valid_hours:g} hours): one live incentive at a time",
                )
        reason = budget_reason(self.action, usage) if self.budgeted else None
        return None if reason is None else Rejection.of(self.id, None, reason)


def _sent(hours: float) -> str:
    """When a message went, in words: one decided for later has not gone yet."""
    if hours < 0:
        return f"scheduled to go in {-hours:.1f} hours"
    return f"sent {hours:.0f} hours ago"


def _is_incentive(action: Action) -> bool:
    return action.offer is not None and action.offer.kind in INCENTIVE_KINDS


@functools.lru_cache(maxsize=32)
def _plans(catalog: Catalog) -> tuple[_ActionPlan, ...]:
    """The plans of ``catalog``'s actions in its order (a catalog and its actions are
    immutable; the cache holds the catalog, so its identity is not reused)."""
    limited = [
        a
        for a in catalog
        if _is_incentive(a) and a.offer is not None and a.offer.expires_after_hours is not None
    ]
    return tuple(_ActionPlan.of(action, limited) for action in catalog)


_PLACEMENT_ONLY: IdentityMemo[frozenset[str]] = IdentityMemo()


def _placement_only(
    catalog: Catalog, plans: tuple[_ActionPlan, ...], policy: ContactPolicy
) -> frozenset[str]:
    """The actions of ``catalog`` whose channels are all placements under ``policy``: their
    sends are not messages (not counted toward the caps). An action the catalog no longer
    knows counts, to be safe. Built once per (catalog, policy)."""
    return _PLACEMENT_ONLY.get((catalog, policy), _placement_ids, plans, policy)


def _placement_ids(plans: tuple[_ActionPlan, ...], policy: ContactPolicy) -> frozenset[str]:
    return frozenset(
        plan.id
        for plan in plans
        if not any(policy.rules(c).counts_toward_total for c in plan.channels)
    )


def _names(channels: frozenset[Channel] | None) -> str:
    return ", ".join(sorted(c.value for c in channels or ()))


def channel_slot(
    action: Action,
    channel: Channel,
    policy: ContactPolicy,
    context: CustomerContext,
    pending: Mapping[Channel, int] | None = None,
    *,
    send_times: dict[tuple[object, ...], SendTime | Reason] | None = None,
    last_message_at: dt.datetime | None = None,
) -> ChannelSlot | Reason:
    """The slot to deliver ``action`` on ``channel``, or why the channel cannot.

    ``send_times`` memoises send-time searches within one decision;
    ``last_message_at`` is the customer's last message on any channel
    (:meth:`~nba.contact_policy.ContactPolicy.last_message_at`).
    """
    gate = _gate(channel, policy, context, pending)
    window = _send_window(action, context)
    return _slot(action, channel, policy, context, send_times, last_message_at, gate, window)


#: A channel's verdict for one customer, whatever the action: the reason it cannot be
#: used (consent or contact policy), and when that reason is a rolling cap reached by
#: past contacts, when the caps free up and the reason left once they do.
_Gate = tuple[Reason | None, bool, dt.datetime | None, Reason | None]


def _gate(
    channel: Channel,
    policy: ContactPolicy,
    context: CustomerContext,
    pending: Mapping[Channel, int] | None,
) -> _Gate:
    reason = consent_reason(context.profile, channel) or policy.channel_reason(
        context, channel, pending
    )
    if reason is not None and reason.code in ROLLING_CAP_CODES and not pending:
        frees = policy.caps_free_at(context, channel)
        if frees is None:
            return reason, True, None, None
        return reason, True, frees, policy.channel_reason(context, channel, pending, caps=False)
    return reason, False, None, None


def _send_window(action: Action, context: CustomerContext) -> tuple[dt.datetime, dt.datetime]:
    """The earliest and latest moments to send ``action`` (the same on every channel)."""
    now = context.now_utc
    return now + dt.timedelta(hours=action.send_delay_hours), action.latest_send(now, context)


def _slot(
    action: Action,
    channel: Channel,
    policy: ContactPolicy,
    context: CustomerContext,
    send_times: dict[tuple[object, ...], SendTime | Reason] | None,
    last_message_at: dt.datetime | None,
    gate: _Gate,
    window: tuple[dt.datetime, dt.datetime],
) -> ChannelSlot | Reason:
    """:func:`channel_slot` with the channel's verdict (:func:`_gate`: it does not depend
    on the action, so screening takes it once per channel) and the action's window given."""
    reason, rolling, frees, uncapped = gate
    if reason is not None and not rolling:  # consent or the contact policy says no
        return reason
    earliest, latest = window
    lead = policy.rules(channel).lead_time
    if lead.days:  # it takes days to arrive: sent early enough to land by the deadline
        landed = _latest_to_arrive(action, channel, context, lead, earliest, latest)
        if isinstance(landed, Reason):
            return landed
        latest = landed
    capped: Reason | None = None
    if rolling:
        # a rolling cap reached by past contacts: send once it frees, if the action lasts
        if frees is None:
            return reason  # type: ignore[return-value]
        if frees > latest:
            assert reason is not None
            message = f"{reason.message}; the caps free up at {minute_text(frees)} UTC, "
            return Reason(reason.code, message + "after the action expires")
        capped, earliest = reason, max(earliest, frees)
        reason = uncapped
    if reason is not None:
        return reason
    best_hour = action.timing == "best_hour"
    declared = not action.time_critical  # its moment before the customer's preferred hours
    # a message whose worth fades as it waits (a cart reminder) weighs each hour against it
    fading = fading_of(action.type, context.profile) if best_hour else None
    key = (channel, earliest, latest, action.local_hours, best_hour, declared, fading)
    send = None if send_times is None else send_times.get(key)
    if send is None:
        send = policy.send_time(
            context,
            channel,
            earliest=earliest,
            latest=latest,
            local_hours=action.local_hours,
            best_hour=best_hour,
            declared_hours=declared,
            last_message_at=last_message_at,
            fading=fading,
        )
        if send_times is not None:
            send_times[key] = send
    if isinstance(send, Reason):
        return send
    if capped is not None:
        basis = f"{send.basis}, once the rolling cap frees ({capped.message})"
        send = SendTime(send.at, send.local, basis)
    if lead.days:
        arrives = lead.arrival(send.at, context.zone)
        basis = (
            f"{send.basis}; arrives {arrives.astimezone(context.zone):%a %Y-%m-%d} local "
            f"({lead.describe()} later)"
        )
        return ChannelSlot(channel, SendTime(send.at, send.local, basis), arrives)
    return ChannelSlot(channel, send)


def _latest_to_arrive(
    action: Action,
    channel: Channel,
    context: CustomerContext,
    lead: LeadTime,
    earliest: dt.datetime,
    latest: dt.datetime,
) -> dt.datetime | Reason:
    """The latest send on a ``channel`` that takes ``lead`` to arrive, for the message to
    land by the action's deadline (:meth:`~nba.actions.Action.arrive_by`), or why it
    cannot."""
    deadline = action.arrive_by(context.now_utc, context)
    if deadline is None:
        return latest
    last_post = lead.latest_send(deadline, context.zone, earliest)
    if last_post is None:
        return Reason(
            ReasonCode.NO_SEND_SLOT,
            f"a {channel.value} message takes {lead.describe()} to arrive (the channel's "
            f"lead time) and this one must arrive by {minute_text(deadline)} UTC (the end of "
            "its validity or its send_by deadline): sent now, it would arrive too late",
        )
    return min(latest, last_post)


def _why_not(name: str, rule: Rule, scope: ContextScope) -> str:
    """Why ``rule`` (the action's ``name``) does not hold: its failing clause and values."""
    return f"{name}: {rule.why_not(scope)}"


def _variant(action: Action, scope: ContextScope) -> Variant | None:
    for variant in action.variants:
        if variant.when is None or variant.when.holds(scope):
            return variant
    return None
