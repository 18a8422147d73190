"""Keeping a channel free: what a send costs the next time-critical reminder, and a
journey's next step.

A message spends contact rules: the hours between two messages on any channel
(``message_gap_hours``), the channel's own minimum gap and, when it fills a rolling cap,
the channel (or every channel) until that cap frees: a send due at ``t`` counts in every
window the contact policy counts from now on, as a sent or scheduled contact does
(:func:`after_send`). A time-critical reminder
(the same evening's browse reminder, a fresh cart's: that moment or never) whose
trigger comes while its channels are blocked is lost, goes late (a cart reminder is
worth less the older its cart: :mod:`nba.ageing`) or goes on a worse channel. So a
send is worth, besides its own priority, less what the unit it spends is expected to
be worth to such a reminder: its *opportunity cost*,

    sum over the stretches of time after the decision of
        P(the reminder's next trigger falls in the stretch)
        x (the reminder's best worth on the channels it could still use then without
           this send - the same with it)

estimated **per customer**, from the customer's own history:

* a trigger that **already happened** is certain: a cart left ten minutes ago whose
  reminder waits for the cart to be an hour old, products viewed this morning whose
  reminder waits for the afternoon (:func:`pending_due` finds when it becomes eligible
  with no new event); the cost is what the send takes from it at that moment;
* otherwise triggers come as a Poisson process at the customer's own rate: the days in
  the last 30 whose sessions left a cart (``cart_left_days_30d``: an add-to-cart and no
  purchase that day) for a cart reminder, and those that left products behind
  (``browse_left_days_30d``: two minutes or more of product views, neither an
  add-to-cart nor a purchase: browse abandonment) for a browse reminder, shrunk toward
  the store's rate (``*_left_rate``: empirical Bayes, the feature build's
  :func:`features.finalise.trigger_prior`; a customer with three such days in 30 mostly
  has fewer the next month, one with none is not certain to have none), neither while
  a cart is open (that customer is in the open cart's journey); spread over the local hours of
  the day as the customer's own activity is (``activity_by_hour``, add-one smoothed),
  and counted only at the hours at which the reminder's rule can hold and from which it
  can still go out in its local send window within its validity (:func:`trigger_hours`:
  the seed catalog's evening browse reminder, for local hours 12-22, sent 18:00-22:00
  and valid 10 hours, counts sessions from 12:00 to 22:00; a cart reminder every hour).

A reminder triggered at ``s`` may go on a channel that is free by ``s + ttl`` (it waits
for a cap within its validity); its priority on each channel is the scorer's, for this
customer, now (``P(response) x value x lever x fatigue - channel cost``). Going ``w``
hours after it is due, a reminder whose worth fades keeps the share of its response that
:mod:`nba.ageing` gives for its trigger's age then (:attr:`ReminderValue.fading`), and
still costs what sending it costs (:attr:`ReminderValue.costs`): a cart a session will
leave is fresh when its reminder is due (a day's wait keeps 0.27 of its response), a cart
already a day old when its second reminder comes due keeps 0.75 over the same wait. Reminders
eligible now compete now and are left out; so are those in their cool-down.

A journey's next step whose trigger already happened is a certain claim as well, whatever
its type: the cart's second reminder once the cart is 20 hours old, a welcome series'
next message, a review a day after the delivery, any action the catalog's sequences and
cool-downs make due with no new event (:func:`step_due`). It counts at its due time, for
as long as its rules keep holding plus its validity (a step that can still go later is
not lost by a block that ends before), at its priority for this customer as they will be
then (:func:`aged`); the alternatives of one catalog group (the plain and the discounted
second reminder) count their largest loss, not their sum.

It binds where it should: for a customer who rarely leaves products behind it is a few
thousandths (below any message worth sending); for one whose evening reminder would go
by the e-mail a morning message spends, it is a sizeable share of that reminder's
priority, more than a low-value e-mail's; for a cart left minutes ago it is most of the
cart reminder's priority.

>>> import datetime as dt
>>> hour = dt.timedelta(hours=1)
>>> now = dt.datetime(2026, 3, 4, 8, tzinfo=dt.UTC)
>>> often = TriggerRate.constant(2.0 / 168)  # two triggers a week, at any hour
>>> browse = ReminderValue("browse_reminder_evening", 10.0, {Channel.EMAIL: 0.5}, often)
>>> blocked = {Channel.EMAIL: now + 24 * hour}  # a morning e-mail, the last of its day
>>> kept = opportunity_cost(now, [browse], {Channel.EMAIL: now}, blocked)
>>> round(kept.cost, 3), kept.action_id  # P(a trigger within 14 h) 0.154 x 0.5
(0.077, 'browse_reminder_evening')
>>> rare = dataclasses.replace(browse, rate=TriggerRate.constant(0.1 / 168))
>>> round(opportunity_cost(now, [rare], {Channel.EMAIL: now}, blocked).cost, 4)
0.0041
>>> certain = dataclasses.replace(browse, rate=None, due_hours=3.0)  # already triggered
>>> certain_cost = opportunity_cost(now, [certain], {Channel.EMAIL: now}, blocked)
>>> certain_cost.cost, certain_cost.due_hours
(0.5, 3.0)
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import itertools
import math
from collections.abc import Container, Mapping, Sequence
from dataclasses import dataclass

from nba.actions import Action, ActionType
from nba.channels import Channel
from nba.contact_policy import ContactPolicy
from nba.context import ContextScope, CustomerContext, scope_of
from nba.frozen import IdentityMemo, fast_init
from nba.profile import CustomerProfile
from nba.rules import Value
from nba.rules.closures import Evaluate, closure
from nba.rules.functions import Call
from nba.rules.tree import Arithmetic, Compare, FieldRef, Literal, Negate, Node, Not
from nba.screening import ChannelSlot
from nba.timing import Fading

#: Action types a browsing session triggers (a cart left, or products viewed and left).
SESSION_TRIGGERED = frozenset({ActionType.CART_REMINDER, ActionType.BROWSE_REMINDER})
#: How far ahead a trigger that already happened is followed to its reminder's moment.
PENDING_HORIZON_HOURS = 24.0
_HOUR = dt.timedelta(hours=1)
#: Profile fields that count time since something (hours, days): they grow as time goes.
_AGEING_HOURS = (
    "cart_age_hours",
    "hours_since_last_browse",
    "hours_since_last_purchase",
    "hours_since_last_delivery",
    "hours_since_click_collect_order",
    "hours_since_last_return",
)
_AGEING_DAYS = (
    "days_since_first_seen",
    "days_since_sign_up",
    "days_since_last_purchase",
    "days_since_last_visit",
    "days_since_loyalty_tier",
)


@fast_init
@dataclass(frozen=True, slots=True)
class ReminderValue:
    """A time-critical reminder a session may trigger: its validity and its priority on
    each channel the customer could get it on."""

    action_id: str
    ttl_hours: float
    priority: Mapping[Channel, float]
    #: How often the customer's sessions trigger it (:func:`trigger_rates`); ``None``: never.
    rate: TriggerRate | None = None
    #: Hours from now at which it becomes due without any new event, when its trigger
    #: already happened (:func:`pending_due`): then it is certain, not a session's chance.
    due_hours: float | None = None
    #: How its worth fades when it goes late, from its trigger's age when it is due
    #: (:func:`nba.ageing.fading_at`); ``None``: it keeps its worth within its validity.
    fading: Fading | None = None
    #: The catalog's group of mutually exclusive actions it belongs to (the plain and the
    #: discounted second cart reminder): a send takes from one of them at most, so
    #: :func:`opportunity_cost` counts the group's largest loss, not their sum.
    group: str | None = None
    #: The part of its priority on each channel that does not fade with its worth
    #: (:attr:`~nba.arbitration.PriorityTerms.fixed_cost`: the channel's cost, the offer's
    #: on orders placed anyway); ``None``: none (the whole priority fades).
    costs: Mapping[Channel, float] | None = None

    def worth(self, channel: Channel, late_hours: float) -> float:
        """Its priority on ``channel`` when it goes ``late_hours`` after its trigger (its
        response faded, its costs paid in full; never below 0: it would not be sent);
        nothing past its validity.

        >>> late = ReminderValue("cart", 24.0, {Channel.SMS: 1.0}, None, 0.0,
        ...                      Fading(0.0, lambda age: 0.5 ** (age / 12.0), "age"),
        ...                      costs={Channel.SMS: 0.5})
        >>> late.worth(Channel.SMS, 12.0)  # (1.0 + 0.5) x 0.5 - 0.5, not 1.0 x 0.5
        0.25
        """
        if late_hours > self.ttl_hours:
            return 0.0
        value = self.priority[channel]
        if self.fading is None or late_hours <= 0.0 or value <= 0.0:
            return max(0.0, value)
        cost = 0.0 if self.costs is None else self.costs.get(channel, 0.0)
        return max(0.0, (value + cost) * self.fading.left(late_hours) - cost)


@fast_init
@dataclass(frozen=True, slots=True)
class KeptFree:
    """The opportunity cost of a send, and in words what it keeps free for whom."""

    cost: float
    action_id: str
    chance: float  # P(a trigger while the send blocks its best channel)
    lost: float  # its priority lost then, on average
    channel: Channel | None = None  # the channel the send would use
    due_hours: float | None = None  # its trigger already happened: due in that many hours
    others: int = 0  # the other reminders whose losses ``cost`` adds to this one's

    def describe(self) -> str:
        """In words, naming the reminder that loses most; the cost adds the others'
        losses, which the words count, so that its figures add up.

        >>> words = KeptFree(9.03, "cart_reminder_1", 1.0, 7.89, Channel.EMAIL, 0.0, 1).describe()
        >>> words.split("; ")[-2:]
        ['its priority lost 7.89', "opportunity cost 9.03 with 1 other reminder's loss (1.14)"]
        """
        channel = "the channels" if self.channel is None else self.channel.value
        if self.due_hours == 0.0:
            why = f"eligible now, its own send would be blocked; its priority lost {self.lost:.3g}"
        elif self.due_hours is not None:
            why = (
                f"already triggered, due in {self.due_hours:.1f} h; its priority lost "
                f"{self.lost:.3g}"
            )
        else:
            why = (
                f"P(the customer's sessions trigger it while this send blocks it) "
                f"{self.chance:.3f} x its priority lost {self.lost:.3g}"
            )
        total = f"opportunity cost {self.cost:.3g}"
        if self.others:
            rest = self.cost - self.chance * self.lost
            losses = "reminder's loss" if self.others == 1 else "reminders' losses"
            total += f" with {self.others} other {losses} ({rest:.3g})"
        return f"kept {channel} free for {self.action_id}: {why}; {total}"


def delay_factor(context: CustomerContext, slot: ChannelSlot, fading: Fading) -> float:
    """The share of a fading reminder's worth left when ``slot`` sends it: its
    ``fading`` (:func:`nba.ageing.fading_of`, from its trigger's age now) over the hours
    between now and the slot's send time. An e-mail held by a spent daily cap until
    tomorrow morning is worth less than an SMS at 08:00, the more so the fresher the cart.

    >>> import datetime as dt
    >>> from nba.ageing import fading_at
    >>> from nba.timing import SendTime
    >>> now = dt.datetime(2026, 3, 4, 22, tzinfo=dt.UTC)
    >>> context = CustomerContext(CustomerProfile("C1"), now)
    >>> tomorrow = ChannelSlot(Channel.EMAIL, SendTime(now + dt.timedelta(hours=21), now, ""))
    >>> cart = ActionType.CART_REMINDER
    >>> fresh, old = fading_at(cart, 1.5), fading_at(cart, 24.0)  # cart ages
    >>> [round(delay_factor(context, tomorrow, f), 2) for f in (fresh, old)]
    [0.33, 0.77]
    """
    hours = _hours(slot.send.at - context.now_utc)
    return 1.0 if hours <= 0.0 else fading.left(hours)


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
    for channel in dict.fromkeys(channels):  # reminders share channels: each one once
        rules = policy.rules(channel)
        frees = policy.caps_free_at(context, channel) or now
        if policy.message_gap_hours is not None and rules.counts_toward_total and last:
            frees = max(frees, last + policy.message_gap_hours * _HOUR)
        here = context.contacts.last_contact_at.get(channel)
        if rules.min_gap_hours is not None and here is not None:
            frees = max(frees, here + rules.min_gap_hours * _HOUR)
        out[channel] = frees
    return out


def blocks_channels(policy: ContactPolicy, channel: Channel) -> bool:
    """Whether a send on ``channel`` may block any channel (:func:`after_send`): it counts
    toward the total, or the channel has a rolling cap or a minimum gap of its own."""
    rules = policy.rules(channel)
    return (
        rules.counts_toward_total
        or rules.cap_1d is not None
        or rules.cap_7d is not None
        or rules.cap_30d is not None
        or rules.min_gap_hours is not None
    )


def after_send(
    context: CustomerContext,
    policy: ContactPolicy,
    before: Mapping[Channel, dt.datetime],
    channel: Channel,
    at: dt.datetime,
) -> dict[Channel, dt.datetime]:
    """``before`` once a message on ``channel`` is due ``at``: the message gap on every
    channel that counts, the channel's own gap, and every rolling cap the send fills, on
    the channel (a day, a week, 30 days) or on all channels that count (a day, a week).

    A send due ``at`` counts in the rolling windows the contact policy counts from now
    on, as a past contact does (:meth:`ContactPolicy.caps_free_at`, which counts the
    contacts scheduled as well as those sent): a cap of ``n`` it fills frees when the
    ``n``-th newest contact of the window, the send among them, leaves it. So a message
    scheduled for Friday 15:00 keeps a one-a-day e-mail from Thursday's reminders until
    Saturday 15:00, and one that is the week's fourth e-mail keeps the e-mail until the
    oldest of the four is a week old. A channel known by its counts only (no contact
    times) frees a window after the send once the send fills its cap."""
    caps = _policy_caps(policy)
    counted = caps.counted
    counts = counted.get(channel, True)
    gap = policy.message_gap_hours
    own = _caps_filled(context, (channel,), at, caps.of_channel(channel))
    every = None
    if counts and caps.total:
        history = context.contacts
        seen = history.contact_times.keys() | history.last_contact_at.keys()
        every = _caps_filled(context, [c for c in seen if counted.get(c, True)], at, caps.total)
    min_gap = caps.min_gap.get(channel)
    out = dict(before)
    for k, frees in before.items():
        k_counts = counted.get(k, True)
        if counts and k_counts and gap is not None:
            frees = max(frees, at + gap * _HOUR)
        if k == channel:
            if own is not None:
                frees = max(frees, own)
            if min_gap is not None:
                frees = max(frees, at + min_gap * _HOUR)
        if every is not None and k_counts:
            frees = max(frees, every)
        out[k] = frees
    return out


#: A contact stamped ``t`` (whole seconds) leaves a window a second after it ends, as
#: the contact policy counts it.
_STAMP = dt.timedelta(seconds=1)
#: A rolling cap: at most ``cap`` contacts in ``days`` days, counted by the profile's
#: ``contacts_<n>d`` when it has no contact times.
_Cap = tuple[int, str, dt.timedelta]


@dataclass(frozen=True, slots=True)
class _PolicyCaps:
    """The contact policy's rolling caps and gaps as :func:`after_send` reads them, read
    once per policy (:func:`_policy_caps`)."""

    channels: Mapping[Channel, tuple[_Cap, ...]]
    total: tuple[_Cap, ...]
    counted: Mapping[Channel, bool]
    min_gap: Mapping[Channel, float]

    @classmethod
    def of(cls, policy: ContactPolicy) -> _PolicyCaps:
        def caps(*rows: tuple[int | None, str, int]) -> tuple[_Cap, ...]:
            # a closed channel (cap 0) is not free before the send either
            return tuple((n, name, dt.timedelta(days=d)) for n, name, d in rows if n)

        channels = {
            c: caps(
                (r.cap_1d, "contacts_1d", 1),
                (r.cap_7d, "contacts_7d", 7),
                (r.cap_30d, "contacts_30d", 30),
            )
            for c in Channel
            if (r := policy.rules(c))
        }
        return cls(
            channels,
            caps((policy.cap_1d, "contacts_1d", 1), (policy.cap_7d, "contacts_7d", 7)),
            {c: policy.rules(c).counts_toward_total for c in Channel},
            {c: gap for c in Channel if (gap := policy.rules(c).min_gap_hours) is not None},
        )

    def of_channel(self, channel: Channel) -> tuple[_Cap, ...]:
        return self.channels.get(channel, ())


_POLICY_CAPS: IdentityMemo[_PolicyCaps] = IdentityMemo()


def _policy_caps(policy: ContactPolicy) -> _PolicyCaps:
    """:class:`_PolicyCaps` of ``policy``, read once per policy (a frozen model: its caps
    do not change)."""
    return _POLICY_CAPS.get((policy,), _PolicyCaps.of, policy)


def _caps_filled(
    context: CustomerContext,
    channels: Sequence[Channel],
    at: dt.datetime,
    caps: Sequence[_Cap],
) -> dt.datetime | None:
    """When the rolling ``caps`` over the contacts on ``channels`` stop blocking once a
    send due ``at`` is counted among them (``None``: none of them is filled)."""
    history = context.contacts
    now = context.now_utc
    frees: dt.datetime | None = None
    for cap, name, window in caps:
        since = now - window - _STAMP
        moments = [at]
        known = True
        for c in channels:
            times = history.contact_times.get(c)
            if times is not None:
                moments += [t for t in times if t > since]
                continue
            last = history.last_contact_at.get(c)
            if last is not None and last <= since:
                continue
            used = getattr(history, name).get(c, 0)
            if used:  # counts only: a window after the send once the send fills the cap
                known = False
                moments += [since] * used
        if len(moments) < cap:
            continue
        if known:
            moments.sort()
            ends = moments[len(moments) - cap] + window + _STAMP
        else:
            ends = at + window
        frees = ends if frees is None or ends > frees else frees
    return frees


def opportunity_cost(
    now: dt.datetime,
    reminders: Sequence[ReminderValue],
    before: Mapping[Channel, dt.datetime],
    after: Mapping[Channel, dt.datetime],
) -> KeptFree | None:
    """The reminders' expected loss, each at the customer's own rate of triggers (see the
    module docstring), or for certain at its due time when its trigger already happened
    (the largest of a group's, :attr:`ReminderValue.group`); named after the one that
    loses most; ``None`` when nothing is lost. ``before`` / ``after``: when each channel
    frees without / with the send."""
    worst: KeptFree | None = None
    total = 0.0
    losing = 0  # the losses ungrouped or a group's largest, added into ``total``
    grouped: dict[str, float] = {}  # each group's largest loss
    for reminder in reminders:
        # hours from now at which each of its channels frees without / with the send
        frees = {
            k: (_hours(before[k] - now), _hours(after[k] - now))
            for k in reminder.priority
            if k in before and k in after
        }
        due = reminder.due_hours
        if due is not None:
            cost = _lost(reminder, frees, due)
            chance = 1.0 if cost > 0.0 else 0.0
        elif reminder.rate is not None:
            cost, chance = _expected_loss(reminder, frees, reminder.rate)
        else:
            continue
        group = reminder.group
        if group is None:
            total += cost
            losing += cost > 0.0
        elif cost > grouped.get(group, 0.0):  # alternatives: it takes one of them at most
            grouped[group] = cost
        if cost > 0.0 and (worst is None or cost > worst.cost):
            worst = KeptFree(cost, reminder.action_id, chance, cost / chance, due_hours=due)
    total += sum(grouped.values())
    if worst is None:
        return None
    return dataclasses.replace(worst, cost=total, others=losing + len(grouped) - 1)


def combined(first: KeptFree | None, second: KeptFree | None) -> KeptFree | None:
    """Two opportunity costs of one send added, named after the larger."""
    if first is None or second is None:
        return first or second
    worst = first if first.cost >= second.cost else second
    return dataclasses.replace(
        worst,
        cost=first.cost + second.cost,
        channel=first.channel,
        others=first.others + second.others + 1,
    )


def _lost(
    reminder: ReminderValue, frees: Mapping[Channel, tuple[float, float]], at: float
) -> float:
    """What the send takes from ``reminder`` triggered ``at`` hours from now: its best
    worth on the channels free in time without the send, less the same with it."""
    free = max((reminder.worth(k, b - at) for k, (b, _) in frees.items()), default=0.0)
    kept = max((reminder.worth(k, a - at) for k, (_, a) in frees.items()), default=0.0)
    return max(0.0, free - kept)


def _expected_loss(
    reminder: ReminderValue,
    frees: Mapping[Channel, tuple[float, float]],
    rate: TriggerRate,
) -> tuple[float, float]:
    """(expected loss, P(a trigger while the send takes from it)) over the stretches
    between the moments a channel frees, or stops being in time, for a trigger at that
    moment: P(the next trigger falls in a stretch) = exp(-L(start)) - exp(-L(end)), with
    L the triggers expected from now (:meth:`TriggerRate.survival`: the slots of a
    decision share most cuts)."""
    ttl = reminder.ttl_hours
    edges = {x - ttl for pair in frees.values() for x in pair}
    if reminder.fading is not None:  # its worth also changes as the wait shrinks
        edges |= {x for pair in frees.values() for x in pair}
    cuts = sorted({max(0.0, x) for x in edges} | {0.0})
    cost = chance = 0.0
    survival: float | None = None  # exp(-L(start)) of the stretch, when computed
    for start, end in itertools.pairwise(cuts):
        lost = _lost(reminder, frees, (start + end) / 2)
        if lost <= 0.0:
            survival = None
            continue
        if survival is None:
            survival = rate.survival(start)
        later = rate.survival(end)
        p = survival - later
        survival = later
        cost += p * lost
        chance += p
    return cost, chance


class TriggerRate:
    """Expected triggers per hour at each local hour of the customer's day, seen from a
    moment: :meth:`expected` integrates them from that moment on.

    >>> evenings = TriggerRate([0.0] * 18 + [0.25] * 4 + [0.0] * 2, local_hour=17.5)
    >>> evenings.expected(1.0), evenings.expected(24.0)  # to 18:30; a whole day
    (0.125, 1.0)
    """

    __slots__ = ("_at", "_day", "_hour", "_per_hour", "_prefix", "_survival")

    def __init__(self, per_hour: Sequence[float], local_hour: float) -> None:
        if len(per_hour) != 24 or min(per_hour) < 0.0 or not all(map(math.isfinite, per_hour)):
            raise ValueError("per_hour: 24 finite rates >= 0, one per local hour")
        self._per_hour = tuple(map(float, per_hour))
        self._prefix = tuple(itertools.accumulate(self._per_hour, initial=0.0))
        self._day = self._prefix[-1]
        self._hour = local_hour % 24.0
        self._at = self._cumulative(self._hour)
        self._survival: dict[float, float] = {}

    @classmethod
    def constant(cls, per_hour: float) -> TriggerRate:
        """The same rate at every hour."""
        return cls([per_hour] * 24, 0.0)

    @property
    def per_day(self) -> float:
        return self._day

    def _cumulative(self, hours: float) -> float:
        days, within = divmod(hours, 24.0)
        hour = min(int(within), 23)
        return days * self._day + self._prefix[hour] + self._per_hour[hour] * (within - hour)

    def expected(self, hours: float) -> float:
        """Triggers expected in the ``hours`` after the moment."""
        return self._cumulative(self._hour + hours) - self._at

    def survival(self, hours: float) -> float:
        """P(no trigger in the ``hours`` after the moment): ``exp(-expected(hours))``,
        kept by ``hours`` (a decision's slots ask again for the moments its channels free).
        """
        held = self._survival.get(hours)
        if held is None:
            held = self._survival[hours] = math.exp(-self.expected(hours))
        return held


def _per_day(days: int, rate: float | None) -> float:
    return days / 30.0 if rate is None else rate


#: How often the customer's sessions trigger each kind of reminder, per day (see the
#: module docstring): the days in the last 30 that left a cart or products behind, shrunk
#: toward the store's rate when the feature build estimated it (``*_left_rate``). While a
#: cart is open, no new one starts (an item added joins it, and the cart is as old as its
#: first item) nor does browse abandonment: the open cart's reminders are the customer's,
#: when it is due (:func:`pending_due`).
_TRIGGER_PER_DAY = {
    ActionType.CART_REMINDER: lambda p: (
        0.0 if p.cart_items else _per_day(p.cart_left_days_30d, p.cart_left_rate)
    ),
    ActionType.BROWSE_REMINDER: lambda p: (
        0.0 if p.cart_items else _per_day(p.browse_left_days_30d, p.browse_left_rate)
    ),
}


def trigger_per_day(profile: CustomerProfile, action: Action) -> float:
    """How many times a day ``action``'s trigger is expected for this customer."""
    per_day = _TRIGGER_PER_DAY.get(action.type)
    return 0.0 if per_day is None else float(per_day(profile))


def trigger_hours(action: Action) -> tuple[bool, ...]:
    """For each local hour of the day, whether a trigger then makes ``action`` eligible:
    its eligibility is not false at that local hour whatever else is true (the rule
    language's unknowns: ``local_hour >= 12 and ...`` is false at 11 and unknown at 12),
    and it can still be sent within its validity (``ttl_hours``) in its local send window
    (``local_hours``, tried every 15 minutes; every hour when it has none)."""
    rule = action.eligibility
    windows = action.local_hours
    steps = range(0, int(action.ttl_hours * 60) + 1, 15)
    return tuple(
        (rule is None or rule.evaluator(_LocalHourScope(hour)) is not False)
        and (
            not windows
            or any(w.contains_minute((hour * 60 + m) % 1440) for w in windows for m in steps)
        )
        for hour in range(24)
    )


class _LocalHourScope:
    """Rule fields where only the local hour is known (every other field unknown)."""

    def __init__(self, hour: int) -> None:
        self.hour = hour

    def field(self, name: str) -> Value:
        return self.hour if name == "local_hour" else None

    def hours_since_sent(self, action_id: str) -> float | None:
        return None

    def affinity(self, kind: str, key: str) -> float:
        return 0.0


def hour_of_day_shares(profile: CustomerProfile) -> tuple[float, ...]:
    """The share of the customer's activity at each local hour of the day, from
    ``activity_by_hour`` (the week folded onto the day), add-one smoothed over the
    ``events_seen`` it comes from; even when nothing is known."""
    activity = profile.activity_by_hour
    if len(activity) != 24 * 7:
        return (1.0 / 24,) * 24
    n = max(0, profile.events_seen)
    days = [activity[start : start + 24] for start in range(0, 24 * 7, 24)]
    folded = map(sum, zip(*days, strict=True))  # each hour summed over the days in order
    return tuple((n * share + 1.0) / (n + 24.0) for share in folded)


def trigger_rates(
    context: CustomerContext,
    actions: Sequence[Action],
    hours: Mapping[str, tuple[bool, ...]],
) -> list[TriggerRate | None]:
    """Each action's :class:`TriggerRate` for this customer now (``None`` when none is
    expected, :func:`trigger_per_day`): its triggers per day spread over the
    customer's hours of the day, at the hours from which it can still go out
    (``hours``, by action id, from :func:`trigger_hours`)."""
    shares: tuple[float, ...] | None = None
    local = context.local_now
    local_hour = local.hour + local.minute / 60.0 + local.second / 3600.0
    out: list[TriggerRate | None] = []
    made: dict[tuple[float, tuple[bool, ...]], TriggerRate] = {}  # cart reminders share one
    for action in actions:
        per_day = trigger_per_day(context.profile, action)
        if per_day <= 0.0:
            out.append(None)
            continue
        shares = shares or hour_of_day_shares(context.profile)
        mask = hours.get(action.id) or trigger_hours(action)
        rate = made.get((per_day, mask))
        if rate is None:
            per_hour = [per_day * s if on else 0.0 for s, on in zip(shares, mask, strict=True)]
            rate = made[per_day, mask] = TriggerRate(per_hour, local_hour)
        out.append(rate)
    return out


class LaterScope(ContextScope):
    """Rule fields ``hours`` from now if nothing happens meanwhile: the moment's fields
    (local time, hours since an action was sent) at that time, the profile's times since
    something grown by ``hours``, the birthday's countdown and the sign-up's local day
    moved on by the local days passed, the rest as they are, and no live session."""

    __slots__ = ("_hours", "_now")

    def __init__(self, context: CustomerContext, hours: float) -> None:
        super().__init__(context.later(hours))
        self._hours = hours
        self._now = context

    def field(self, name: str) -> Value:
        value = super().field(name)
        if name == "days_to_birthday" and isinstance(value, int):
            days = (self.context.local_now.date() - self._now.local_now.date()).days
            if days:
                value -= days
                return value if value >= 0 else value + 365  # past the day: next year's
            return value
        if name == "sign_up_day" and isinstance(value, int):
            return value + (self.context.local_now.date() - self._now.local_now.date()).days
        per_hour = AGEING.get(name)
        if per_hour is None or not isinstance(value, int | float):
            return value
        return value + per_hour * self._hours


#: The profile fields that grow as time passes with no new event, and by how much an hour
#: (hours since something: 1; days since something: 1/24): :class:`LaterScope` ages them.
AGEING: dict[str, float] = {
    **dict.fromkeys(_AGEING_HOURS, 1.0),
    **dict.fromkeys(_AGEING_DAYS, 1.0 / 24.0),
}

#: What the profile shows when a reminder's trigger already happened, within the
#: horizon: a cart started, or products viewed. Only then is its moment looked for
#: (:func:`pending_due`).
_TRIGGERED = {
    ActionType.CART_REMINDER: lambda p: (
        bool(p.cart_items)
        and p.cart_age_hours is not None
        and p.cart_age_hours < PENDING_HORIZON_HOURS
    ),
    ActionType.BROWSE_REMINDER: lambda p: (
        bool(p.browsed_products)
        and p.hours_since_last_browse is not None
        and p.hours_since_last_browse < PENDING_HORIZON_HOURS
    ),
}


def pending_due(context: CustomerContext, action: Action) -> float | None:
    """Hours from now at which ``action``, not eligible now, becomes eligible with no new
    event (a cart that reaches its reminder's minimum age, products viewed this morning
    whose reminder waits for the afternoon), within :data:`PENDING_HORIZON_HOURS`; ``None``
    when its trigger has not happened or it does not become eligible in that time.

    Probed every quarter of an hour for two hours, then at each local hour's start
    (rules read the local hour); the eligibility's own thresholds between probes are
    met at the next probe, at most 15 minutes late in the first two hours.
    """
    triggered = _TRIGGERED.get(action.type)
    profile: CustomerProfile = context.profile
    if triggered is None or not triggered(profile):
        return None
    rules = [action.eligibility]
    if action.offer is not None:
        rules.append(action.offer.eligibility)
    evaluators = [rule.evaluator for rule in rules if rule is not None]
    if not evaluators:
        return None
    local = context.local_now
    to_next_hour = 1.0 - (local.minute * 60 + local.second) / 3600.0
    probes = [0.25 * i for i in range(1, 9)]
    probes += [to_next_hour + i for i in range(2, int(PENDING_HORIZON_HOURS) + 1)]
    ends = action.valid_to
    for hours in probes:
        if hours > PENDING_HORIZON_HOURS:
            break
        if ends is not None and context.now_utc + hours * _HOUR > ends:
            break
        scope = LaterScope(context, hours)
        if all(evaluate(scope) is True for evaluate in evaluators):
            return hours
    return None


def _hours(delta: dt.timedelta) -> float:
    return delta.total_seconds() / 3600.0


#: How far ahead a journey's next step is looked for (:func:`step_due`): a message decided
#: now goes within a day of its first allowed moment (the seed policy's
#: ``best_hour_within_hours``) and fills its channel's daily cap for the day after it, so
#: the steps it can take from come due within two days.
STEP_HORIZON_HOURS = 48.0
#: How far past its due time a step's eligibility is followed to its end (its window: a
#: step still eligible later can go later, and is lost only past its window's end and its
#: validity); the longest rolling window a send fills here is a week.
STEP_WINDOW_HOURS = 168.0
#: A comparison that time alone moves is probed this long after it flips (a threshold
#: met exactly, in floating point, is met a moment later).
_PAST_FLIP_HOURS = 1.0 / 60.0
#: Rule fields that move with the local calendar, not at a steady rate: a rule that reads
#: them is probed at every local hour between the moment its clocks first flip and a day on.
_CALENDAR_FIELDS = frozenset(
    {
        "local_hour",
        "local_weekday",
        "local_day",
        "local_month",
        "next_month",
        "days_to_birthday",
        "sign_up_day",
    }
)


@dataclass(frozen=True, slots=True)
class _Clock:
    """A comparison of a rule that time alone moves: ``left - right`` grows by ``slope``
    an hour when no new event comes (``cart_age_hours >= 20``: 1;
    ``hours_since_sent('welcome_1') >= 72``: 1; ``days_since_sign_up <= 14``: 1/24)."""

    left: Evaluate
    right: Evaluate
    slope: float
    #: Whether its flip can make the rule hold (``cart_age_hours >= 20``), or only stop it
    #: holding (``cart_age_hours <= 96``), as it stands in the rule (under a ``not``, the
    #: other way round)
    opens: bool
    #: The profile fields and the ``hours_since_sent`` actions it reads that time moves
    fields: tuple[str, ...]
    sent: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class StepPlan:
    """What :func:`step_due` needs of an action, read once from the catalog: the
    comparisons of its rules that time alone moves (those that can make it hold, those
    that can only end it), its rules, whether they read the local calendar, and what the
    opening ones read (a customer with none of it known has no such step coming)."""

    action: Action
    opening: tuple[_Clock, ...]
    closing: tuple[_Clock, ...]
    rules: tuple[Evaluate, ...]
    calendar: bool
    fields: frozenset[str]
    sent: frozenset[str]

    @property
    def clocks(self) -> tuple[_Clock, ...]:
        return self.opening + self.closing


def step_plan(action: Action) -> StepPlan | None:
    """The :class:`StepPlan` of ``action``; ``None`` when time alone never makes it due:
    doing nothing, or rules that read no time since something and no cool-down."""
    if action.is_do_nothing:
        return None
    rules = [r for r in (action.eligibility, action.offer and action.offer.eligibility) if r]
    clocks = [clock for rule in rules for clock in _clocks(rule.tree)]
    opening = tuple(c for c in clocks if c.opens)
    if not opening and not action.cooldown_hours:
        return None
    return StepPlan(
        action,
        opening,
        tuple(c for c in clocks if not c.opens),
        tuple(rule.evaluator for rule in rules),
        any(rule.fields & _CALENDAR_FIELDS for rule in rules),
        frozenset(f for c in opening for f in c.fields),
        frozenset(a for c in opening for a in c.sent),
    )


def step_due(
    context: CustomerContext, plan: StepPlan, horizon: float = STEP_HORIZON_HOURS
) -> tuple[float, float] | None:
    """When a journey's next step, not eligible now, becomes due with no new event, and
    how long it can still go from then: ``(hours from now, validity in hours)``, or
    ``None`` when it does not come due within ``horizon`` hours.

    Its sequence and its cool-down say when: a comparison of its rules that time alone
    moves flips at a moment known now (``cart_age_hours >= 20`` for a cart 3 hours old:
    in 17 hours; ``hours_since_sent('welcome_1') >= 72``; ``hours_since_last_delivery
    >= 24``), and its cool-down ends at one; the rules are asked at those moments only
    (and, when they read the local calendar, at each local hour of the day after the
    first). Once due, it stays claimable until its rules stop holding (``cart_age_hours
    <= 96``) or its validity ends, within :data:`STEP_WINDOW_HOURS`; the validity
    returned is that stretch plus the action's own ``ttl_hours``: a step that can still go
    later is not lost by a block that ends before.

    A welcome's day-2 message, a day after the first and within 12 hours, valid 12 hours,
    asked 3 hours after the first went: due in 21 hours, claimable for 12 + 12 hours.

    >>> from nba.catalog import parse_catalog
    >>> catalog = parse_catalog('''
    ... actions:
    ...   - {id: day_1, type: welcome, channels: [email], value: 1,
    ...      eligibility: "days_since_sign_up <= 1"}
    ...   - {id: day_2, type: welcome, channels: [email], value: 1, ttl_hours: 12,
    ...      eligibility: "hours_since_sent('day_1') >= 24 and hours_since_sent('day_1') <= 36"}
    ... ''')
    >>> now = dt.datetime(2026, 3, 2, 13, tzinfo=dt.UTC)
    >>> first = {"day_1": now - 3 * _HOUR}
    >>> context = CustomerContext(CustomerProfile("C1"), now, action_history=first)
    >>> plan = step_plan(catalog["day_2"])
    >>> due, validity = step_due(context, plan)
    >>> round(due, 2), round(validity, 2)
    (21.02, 24.0)
    >>> step_plan(catalog["day_1"]) is None  # time alone only ends it
    True
    """
    history = context.action_history
    cooldown = plan.action.cooldown_hours if plan.action.id in history else None
    if not cooldown:  # its opening clocks read something known, or nothing opens it
        profile = context.profile
        if not any(a in history for a in plan.sent) and all(
            getattr(profile, f) is None for f in plan.fields
        ):
            return None
    return _due(context, plan, horizon, cooldown)


class JourneySteps:
    """The catalog's :class:`StepPlan` s, and :meth:`due`: those of them that come due for
    a customer (:func:`step_due`), looked at only where an opening clock reads something
    known about the customer or the action's cool-down runs (most customers have none)."""

    __slots__ = ("_by_field", "_by_sent", "plans")

    def __init__(self, actions: Sequence[Action]) -> None:
        self.plans = tuple(plan for a in actions if (plan := step_plan(a)) is not None)
        by_field: dict[str, list[int]] = {}
        by_sent: dict[str, list[int]] = {}  # a sequence's earlier step, or its own send
        for i, plan in enumerate(self.plans):
            for name in plan.fields:
                by_field.setdefault(name, []).append(i)
            for action_id in plan.sent:
                by_sent.setdefault(action_id, []).append(i)
            if plan.action.cooldown_hours:
                by_sent.setdefault(plan.action.id, []).append(i)
        self._by_field = tuple((name, tuple(ids)) for name, ids in by_field.items())
        self._by_sent = {action_id: tuple(ids) for action_id, ids in by_sent.items()}

    def due(
        self,
        context: CustomerContext,
        skip: Container[str] = (),
        horizon: float = STEP_HORIZON_HOURS,
    ) -> list[tuple[Action, float, float]]:
        """Each step not in ``skip`` that comes due within ``horizon`` hours, with the
        hours until then and its validity from then (:func:`step_due`)."""
        history = context.action_history
        profile = context.profile
        looked: set[int] = set()
        for name, ids in self._by_field:
            if getattr(profile, name) is not None:
                looked.update(ids)
        by_sent = self._by_sent
        for action_id in history:
            sent = by_sent.get(action_id)
            if sent is not None:
                looked.update(sent)
        out: list[tuple[Action, float, float]] = []
        for i in sorted(looked):
            plan = self.plans[i]
            action = plan.action
            if action.id in skip:
                continue
            cooldown = action.cooldown_hours if action.id in history else None
            step = _due(context, plan, horizon, cooldown)
            if step is not None:
                out.append((action, *step))
        return out


def _due(
    context: CustomerContext, plan: StepPlan, horizon: float, cooldown: float | None
) -> tuple[float, float] | None:
    """:func:`step_due` once its customer may have the step coming (``cooldown``: the
    action's cool-down when it was sent)."""
    action = plan.action
    scope = scope_of(context)
    flips = _flips(plan.opening, scope)
    cooling = 0.0  # hours left of its cool-down
    if cooldown:
        since = context.hours_since_sent(action.id)
        if (
            since is not None
            and since < cooldown
            and not (action.cooldown_per_cart and context.cart_added_since_sent(action.id))
        ):
            cooling = cooldown - since
            flips.append(cooling)
    first = min(flips, default=None)
    if first is None or first > horizon:
        return None
    flips += _flips(plan.closing, scope)
    if plan.calendar:
        local = context.local_now
        to_next_hour = 1.0 - (local.minute * 60 + local.second) / 3600.0
        flips += (h for i in range(25) if (h := to_next_hour + i) > first and h <= first + 24.0)
    ends = action.valid_to
    due: float | None = None
    for hours in sorted(set(flips)):
        if ends is not None and context.now_utc + hours * _HOUR > ends:
            break
        later = LaterScope(context, hours)
        holds = hours >= cooling and all(rule(later) is True for rule in plan.rules)
        if due is None:
            if holds:
                if hours > horizon:
                    return None
                due = hours
        elif not holds:
            return due, hours - due + action.ttl_hours
    if due is None:
        return None
    if ends is not None:
        return due, _hours(ends - context.now_utc) - due + action.ttl_hours
    return due, math.inf


def aged(context: CustomerContext, hours: float) -> CustomerContext:
    """The customer ``hours`` from now if nothing happens meanwhile, as a scorer reads
    them: the profile's times since something grown (:data:`AGEING`: a cart 3 hours old
    is 20 hours old when its second reminder comes due), no live session. A step is
    valued as it will be when it comes due (:func:`step_due`), not as it would be now."""
    profile = context.profile
    grown: dict[str, object] = {}
    for name, per_hour in AGEING.items():
        value = getattr(profile, name)
        if _is_number(value):
            grown[name] = value + per_hour * hours
    if profile.as_of is not None:
        grown["as_of"] = profile.as_of + hours * _HOUR
    later = dataclasses.replace(profile, **grown)  # type: ignore[arg-type]
    return CustomerContext(
        later,
        context.now_utc + hours * _HOUR,
        None,
        context.action_history,
        context.has_new_arrivals,
    )


def _flips(clocks: Sequence[_Clock], scope: ContextScope) -> list[float]:
    """The hours from now at which ``clocks`` flip, within :data:`STEP_WINDOW_HOURS` (a
    moment past each, :data:`_PAST_FLIP_HOURS`)."""
    out: list[float] = []
    for clock in clocks:
        left, right = clock.left(scope), clock.right(scope)
        if not _is_number(left) or not _is_number(right):
            continue
        hours = (right - left) / clock.slope  # type: ignore[operator]
        if 0.0 < hours <= STEP_WINDOW_HOURS:
            out.append(hours + _PAST_FLIP_HOURS)
    return out


def _is_number(value: Value) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _clocks(node: Node) -> list[_Clock]:
    """The ordering comparisons under ``node`` whose sides time alone moves apart, each
    with whether its flip can make the rule hold (a ``not`` above it reverses that)."""
    out: list[_Clock] = []
    stack: list[tuple[Node, bool]] = [(node, True)]
    while stack:
        item, positive = stack.pop()
        if isinstance(item, Compare) and item.op in ("<", "<=", ">", ">="):
            left, right = _growth(item.left), _growth(item.right)
            if left is not None and right is not None and left != right:
                slope = left - right
                grows_true = (slope > 0.0) == (item.op in (">", ">="))
                fields, sent = _time_inputs(item)
                out.append(
                    _Clock(
                        closure(item.left),
                        closure(item.right),
                        slope,
                        grows_true == positive,
                        fields,
                        sent,
                    )
                )
            continue
        negated = isinstance(item, Not)
        stack.extend((child, positive != negated) for child in item.children())
    return out


def _time_inputs(node: Node) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The profile fields that time moves (:data:`AGEING`) and the actions of the
    ``hours_since_sent`` calls under ``node``."""
    fields: list[str] = []
    sent: list[str] = []
    stack = [node]
    while stack:
        item = stack.pop()
        if isinstance(item, FieldRef) and item.name in AGEING:
            fields.append(item.name)
        elif isinstance(item, Call) and item.name == "hours_since_sent":
            sent += (str(a.value) for a in item.args if isinstance(a, Literal))
        stack.extend(item.children())
    return tuple(fields), tuple(sent)


def _growth(node: Node) -> float | None:
    """How much a numeric expression grows an hour with no new event (fields counting
    time since something grow, :data:`AGEING`; ``hours_since_sent`` by 1; other fields
    stay), or ``None`` when it does not grow steadily (the local calendar, a product of
    two growing terms)."""
    if isinstance(node, Literal):
        return 0.0
    if isinstance(node, FieldRef):
        if node.name in _CALENDAR_FIELDS:
            return None
        return AGEING.get(node.name, 0.0)
    if isinstance(node, Call):
        if node.name == "hours_since_sent":
            return 1.0
        parts = [_growth(arg) for arg in node.args]
        return 0.0 if all(part == 0.0 for part in parts) else None
    if isinstance(node, Negate):
        inner = _growth(node.operand)
        return None if inner is None else -inner
    if isinstance(node, Arithmetic):
        left, right = _growth(node.left), _growth(node.right)
        if left is None or right is None:
            return None
        if node.op in ("+", "-"):
            return left + right if node.op == "+" else left - right
        if left == 0.0 and right == 0.0:
            return 0.0
        constant = _constant(node.right)
        if node.op == "*" and right == 0.0 and (constant is not None):
            return left * constant
        if node.op == "*" and left == 0.0 and (factor := _constant(node.left)) is not None:
            return right * factor
        if node.op == "/" and right == 0.0 and constant:
            return left / constant
        return None
    return None


def _constant(node: Node) -> float | None:
    if isinstance(node, Literal) and _is_number(node.value):
        return float(node.value)  # type: ignore[arg-type]
    if isinstance(node, Negate) and (inner := _constant(node.operand)) is not None:
        return -inner
    return None
