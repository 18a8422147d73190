"""Keeping a channel free: what a send costs the next time-critical reminder.

A message spends contact rules: the hours between two messages on any channel
(``message_gap_hours``), the channel's own minimum gap and, when it is the last one a
daily cap allows, the channel (or every channel) for a day. A time-critical reminder
(the same evening's browse reminder, a fresh cart's: that moment or never) whose
trigger comes while its channels are blocked is lost, or goes on a worse channel. So a
send is worth, besides its own priority, less what the unit it spends is expected to
be worth to such a reminder: its *opportunity cost*,

    sum over the stretches of time after the decision of
        P(the customer's next browsing session falls in the stretch)
        x (the reminder's best priority on the channels it could still use then without
           this send - the same with it)

estimated **per customer**: browsing sessions come at the customer's own rate (the days
with product views in the last 30, ``browse_days_30d``, as a Poisson process: a frequent
browser's next session is hours away, a rare one's weeks); a reminder triggered at ``s``
may go on a channel that is free by ``s + ttl`` (it waits for a cap within its validity,
so a cart reminder valid 24 hours hardly ever loses to a day's cap); its priority on
each channel is the scorer's, for this customer, now (``P(response) x value x lever x
fatigue - channel cost``). A session leaves a cart or not, so one reminder follows it:
the catalog's time-critical cart reminders count for the share of sessions that leave
a cart (:data:`TRIGGER_SHARE`: about 7 % of sessions add to cart, 70 % of carts are
abandoned), its browse reminders for those that view two products or more and leave
no cart (45 %). Reminders eligible now compete now and
are left out; so are those in their cool-down.

It binds where it should: for a rare browser it is a few thousandths (below any
message worth sending); for a frequent browser whose evening reminder would go by the
e-mail a morning message spends, it is a sizeable share of that reminder's priority,
more than a low-value e-mail's.

>>> import datetime as dt
>>> hour = dt.timedelta(hours=1)
>>> now = dt.datetime(2026, 3, 4, 8, tzinfo=dt.UTC)
>>> browse = ReminderValue("browse_reminder_evening", 10.0, {Channel.EMAIL: 0.5}, 1.0)
>>> blocked = {Channel.EMAIL: now + 24 * hour}  # a morning e-mail, the last of its day
>>> kept = opportunity_cost(now, 2.0 / 168, [browse], {Channel.EMAIL: now}, blocked)
>>> round(kept.cost, 3), kept.action_id  # P(a session within 14 h) 0.154 x 0.5
(0.077, 'browse_reminder_evening')
>>> rare = opportunity_cost(now, 0.1 / 168, [browse], {Channel.EMAIL: now}, blocked)
>>> round(rare.cost, 4)
0.0041
"""

from __future__ import annotations

import datetime as dt
import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from nba.actions import Action, ActionType
from nba.channels import Channel
from nba.contact_policy import ContactPolicy
from nba.context import CustomerContext

#: The share of browsing sessions that trigger each kind of time-critical reminder. A
#: cart is added to in 6.4-7.9 % of e-commerce sessions (Dynamic Yield's benchmarks,
#: 2024-2025) and 70.2 % of carts are abandoned (Baymard Institute, average of 49
#: studies, 2023): about 5 % of sessions leave a cart. Half of the sessions end after
#: their first page (Contentsquare's Digital Experience Benchmarks: 47-50 % bounce,
#: e-commerce median 47 % in 2024), short of the browse reminder's two product views:
#: 45 % leave viewed products behind.
TRIGGER_SHARE: Mapping[ActionType, float] = {
    ActionType.CART_REMINDER: 0.05,
    ActionType.BROWSE_REMINDER: 0.45,
}
#: Action types a browsing session triggers (a cart left, or products viewed and left).
SESSION_TRIGGERED = frozenset(TRIGGER_SHARE)
_HOUR = dt.timedelta(hours=1)


@dataclass(frozen=True, slots=True)
class ReminderValue:
    """A time-critical reminder a session may trigger: its validity and its priority on
    each channel the customer could get it on."""

    action_id: str
    ttl_hours: float
    priority: Mapping[Channel, float]
    #: The share of sessions that trigger it (:data:`TRIGGER_SHARE`).
    share: float = 1.0


@dataclass(frozen=True, slots=True)
class KeptFree:
    """The opportunity cost of a send, and in words what it keeps free for whom."""

    cost: float
    action_id: str
    chance: float  # P(a session that triggers it while the send blocks its best channel)
    lost: float  # its priority lost then, on average
    channel: Channel | None = None  # the channel the send would use

    def describe(self) -> str:
        channel = "the channels" if self.channel is None else self.channel.value
        return (
            f"kept {channel} free for {self.action_id}: P(a browsing session that "
            f"triggers it while this send blocks it) {self.chance:.3f} x its priority lost "
            f"{self.lost:.3g}; opportunity cost {self.cost:.3g}"
        )


def session_reminders(catalog_actions: Sequence[Action]) -> tuple[Action, ...]:
    """The catalog's time-critical actions that a browsing session triggers."""
    return tuple(a for a in catalog_actions if a.time_critical and a.type in SESSION_TRIGGERED)


def free_at(
    context: CustomerContext, policy: ContactPolicy, channels: Sequence[Channel]
) -> dict[Channel, dt.datetime]:
    """When each channel may next send, as things stand (caps reached, the message gap
    since the last message sent or due, the channel's own gap)."""
    now = context.now_utc
    sent = {k: v for k, v in context.action_history.items() if v > now}
    last = policy.last_message_at(context, sent)
    out: dict[Channel, dt.datetime] = {}
    for channel in channels:
        rules = policy.rules(channel)
        frees = policy.caps_free_at(context, channel) or now
        if policy.message_gap_hours is not None and rules.counts_toward_total and last:
            frees = max(frees, last + policy.message_gap_hours * _HOUR)
        here = context.contacts.last_contact_at.get(channel)
        if rules.min_gap_hours is not None and here is not None:
            frees = max(frees, here + rules.min_gap_hours * _HOUR)
        out[channel] = frees
    return out


def after_send(
    context: CustomerContext,
    policy: ContactPolicy,
    before: Mapping[Channel, dt.datetime],
    channel: Channel,
    at: dt.datetime,
) -> dict[Channel, dt.datetime]:
    """``before`` once a message on ``channel`` is due ``at``: the message gap on every
    channel that counts, the channel's own gap, and a day on the channel (or on all)
    when the send is the last one its daily cap allows. Weekly and 30-day caps are not
    counted (their last unit frees when the oldest contact of the window ages out,
    which the profile does not keep)."""
    rules = policy.rules(channel)
    contacts = context.contacts
    counts = rules.counts_toward_total
    day_end = at + dt.timedelta(days=1)
    channel_full = rules.cap_1d is not None and contacts.contacts_1d.get(channel, 0) + 1 >= (
        rules.cap_1d
    )
    total = sum(n for c, n in contacts.contacts_1d.items() if policy.rules(c).counts_toward_total)
    all_full = counts and policy.cap_1d is not None and total + 1 >= policy.cap_1d
    out = dict(before)
    for k, frees in before.items():
        k_counts = policy.rules(k).counts_toward_total
        if counts and k_counts and policy.message_gap_hours is not None:
            frees = max(frees, at + policy.message_gap_hours * _HOUR)
        if (k == channel and channel_full) or (all_full and k_counts):
            frees = max(frees, day_end)
        if k == channel and rules.min_gap_hours is not None:
            frees = max(frees, at + rules.min_gap_hours * _HOUR)
        out[k] = frees
    return out


def opportunity_cost(
    now: dt.datetime,
    sessions_per_hour: float,
    reminders: Sequence[ReminderValue],
    before: Mapping[Channel, dt.datetime],
    after: Mapping[Channel, dt.datetime],
) -> KeptFree | None:
    """The reminders' expected loss, each weighted by its share of sessions (see the
    module docstring), named after the one that loses most; ``None`` when nothing is
    lost. ``before`` / ``after``: when each channel frees without / with the send."""
    if sessions_per_hour <= 0.0:
        return None
    worst: KeptFree | None = None
    total = 0.0
    for reminder in reminders:
        ttl = reminder.ttl_hours
        # a session at ``s`` (hours from now) may use channel k when it frees by s + ttl
        opens = {
            k: (
                _hours(before[k] - now) - ttl,
                _hours(after[k] - now) - ttl,
            )
            for k in reminder.priority
            if k in before and k in after
        }
        cuts = sorted({max(0.0, x) for pair in opens.values() for x in pair} | {0.0})
        cost = chance = 0.0
        for start, end in itertools.pairwise(cuts):
            middle = (start + end) / 2
            priority = reminder.priority
            free = max((priority[k] for k, (b, _) in opens.items() if b <= middle), default=0.0)
            kept = max((priority[k] for k, (_, a) in opens.items() if a <= middle), default=0.0)
            lost = max(0.0, free) - max(0.0, kept)
            if lost <= 0.0:
                continue
            p = math.exp(-sessions_per_hour * start) - math.exp(-sessions_per_hour * end)
            p *= reminder.share
            cost += p * lost
            chance += p
        total += cost
        if cost > 0.0 and (worst is None or cost > worst.cost):
            worst = KeptFree(cost, reminder.action_id, chance, cost / chance)
    if worst is None:
        return None
    return KeptFree(total, worst.action_id, worst.chance, worst.lost)


def _hours(delta: dt.timedelta) -> float:
    return delta.total_seconds() / 3600.0
