"""Contact state: what a decision reads and writes besides the profile.

A decision needs, besides the customer's profile (:class:`~features.online.store.OnlineStore`):

* the **action history**: when each action was last sent to the customer
  (cool-downs and sequences; content shown on a web or in-app placement is no send:
  it holds back no message, and shows again at the next visit);
* the **usage counters** of the day: offers given and actions sent, by id
  (offer budgets and action volumes, :class:`~nba.budgets.UsageCounts`);
* the **contacts it decided** (decision, channel, send time) that no ``message_sent``
  naming their decision has reported yet: they count toward the rolling caps of the
  next decisions (:func:`with_own_contacts`), so the caps hold across calls whether or
  not the journey tool reports its sends, and a reported send is counted once;
* the **answer** already given to a request with the same idempotency key (a
  retried request gets the same decision);

and, for fallbacks, the **popularity** of products. :class:`ContactState` is the
interface; :class:`RedisContactState` the production implementation (one Redis,
a managed Redis or a Redis Cluster) and :class:`MemoryContactState` an
in-process one (the closed loop, single-process runs). The same contract tests
(``tests/test_contact_state.py``) run against both.

:meth:`ContactState.read_for_decision` returns everything one decision needs,
the stored profile included, in one round trip on Redis;
:meth:`ContactState.record` writes what a decision changed (history, usage,
answer) in one more.

>>> import datetime as dt
>>> from features.online.store import MemoryOnlineStore
>>> from nba.budgets import Consumption
>>> contacts = MemoryContactState(MemoryOnlineStore())
>>> now = dt.datetime(2026, 3, 6, 9, tzinfo=dt.UTC)
>>> contacts.record_sent("C1", {"cart_reminder": now})
>>> contacts.count_usage(now.date(), Consumption({"o10": 1}, {"cart_reminder": 1}))
>>> read = contacts.read_for_decision("C1", now)
>>> read.history["cart_reminder"] == now, dict(read.usage.offers_given), read.stored
(True, {'o10': 1}, None)
"""

from __future__ import annotations

import abc
import copy
import dataclasses
import datetime as dt
import hashlib
import json
import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from features.online.redis_store import RedisOnlineStore, decode_customer
from features.online.response_stats import (
    DEFAULT_HALF_LIFE_DAYS,
    DEFAULT_WINDOW_HOURS,
    Exposure,
    MemoryResponseStats,
    RedisResponseStats,
    ResponseStats,
    ResponseTable,
)
from features.online.store import OnlineStore, StoredCustomer
from nba.budgets import Consumption, UsageCounts, budget_day
from nba.channels import PLACEMENT_CHANNELS, Channel
from nba.decision import Decision
from nba.profile import ContactHistory, CustomerProfile

#: How long usage counters are kept (a day's counters are read during that day only).
USAGE_SECONDS = 3 * 86_400
#: How long an idempotent answer is kept unless the caller says otherwise.
DEFAULT_ANSWER_SECONDS = 24 * 3_600
#: The scope of the API's decision answers in the idempotency key's digest.
ANSWER_SCOPE = "decide"
#: How long a decided contact counts (the longest rolling cap, 30 days, and the hour
#: contacts are counted by).
CONTACT_SECONDS = 30 * 86_400 + 3_600
#: How far ahead a decided contact may be scheduled and still be kept its whole count.
SCHEDULED_SECONDS = 7 * 86_400
#: The rolling windows of :class:`~nba.profile.ContactHistory`: 1, 7 and 30 days.
_WINDOWS = ((86_400, "contacts_1d"), (7 * 86_400, "contacts_7d"), (30 * 86_400, "contacts_30d"))


@dataclass(frozen=True, slots=True)
class OwnContact:
    """A contact a decision chose: the decision, the channel and when it goes out."""

    decision_id: str
    channel: Channel
    at: dt.datetime


@dataclass(frozen=True)
class DecisionState:
    """Everything one decision reads.

    ``answer`` is the answer already given to the same idempotency key (then
    nothing else is read: the caller returns it); ``history`` when each action
    was last sent (UTC, whole seconds); ``usage`` the day's counters; ``stored``
    the customer as the online store holds them (``None`` when unknown, or when
    the contact state was built without a profile store); ``stats`` the response
    statistics (``None`` without them); ``contacts`` the contacts decided for the
    customer that no ``message_sent`` has reported yet.
    """

    answer: str | None = None
    history: Mapping[str, dt.datetime] = field(default_factory=dict)
    usage: UsageCounts = field(default_factory=UsageCounts)
    stored: StoredCustomer | None = None
    stats: ResponseTable | None = None
    #: the contacts decided and not yet reported sent (see :meth:`ContactState.own_contacts`)
    contacts: tuple[OwnContact, ...] = ()
    #: what their decisions left to weigh and withdraw them, by decision id (read only
    #: when the contact state :attr:`~ContactState.keeps_scheduled`; a contact decided
    #: before, or with it off, has none: it is never withdrawn)
    scheduled: Mapping[str, ScheduledDecision] = field(default_factory=dict)


@dataclass(frozen=True)
class CancelledSend:
    """A scheduled message withdrawn before it went (:mod:`nba.supersession`): its
    decision and channels (their decided contacts count no more), each of its actions'
    last send before it (``None``: never sent; cool-downs and sequences count only
    messages that went), what it consumed of its ``day``'s budgets (given back) and its
    ``exposure`` in the response statistics (withdrawn: a message that never went is no
    exposure without response; ``None`` when none was counted). ``counted_exposure``:
    the exposure is not carried (no scheduled record was kept), so the statistics take
    back what they counted for the decision, read by its id
    (:meth:`~features.online.response_stats.ResponseStats.counted_exposures`)."""

    decision_id: str
    channels: tuple[Channel, ...]
    history: Mapping[str, dt.datetime | None]
    day: dt.date
    consumed: Consumption
    exposure: Exposure | None = None
    counted_exposure: bool = False


@dataclass(frozen=True)
class ScheduledDecision:
    """What a decision that scheduled contacts left to weigh and withdraw them later
    (:mod:`nba.supersession`): each contact's action, channel and decided priority, each
    action's last send before it (``None``: never sent), its budget ``day``, what it
    consumed and the exposure the response statistics counted for it (``None``: none).
    Kept beside the decided contacts only when the contact state keeps them
    (:attr:`ContactState.keeps_scheduled`)."""

    decision_id: str
    contacts: tuple[tuple[str, Channel, float], ...]
    history_before: Mapping[str, dt.datetime | None]
    day: dt.date
    consumed: Consumption
    exposure: Exposure | None = None

    @classmethod
    def of(
        cls,
        decision: Decision,
        history: Mapping[str, dt.datetime],
        day: dt.date,
        segment: str | None = None,
    ) -> ScheduledDecision | None:
        """What ``decision`` (read ``history`` before it, counts toward ``day``; its
        exposure counted in ``segment``, none without one) leaves to weigh its messages
        later; ``None`` when it sends none."""
        contacts = tuple(
            (a.action_id, a.channel, float(a.priority))
            for a in decision.contacts
            if a.channel is not None and a.channel not in PLACEMENT_CHANNELS
        )
        if not contacts:
            return None
        before = {action: history.get(action) for action, _, _ in contacts}
        exposure = None if segment is None else Exposure.of(decision, segment)
        return cls(decision.decision_id, contacts, before, day, decision.consumed, exposure)

    def cancelled(self) -> CancelledSend:
        """Its withdrawal: its contacts, history, budgets and exposure given back."""
        channels = tuple(dict.fromkeys(channel for _, channel, _ in self.contacts))
        return CancelledSend(
            self.decision_id,
            channels,
            self.history_before,
            self.day,
            self.consumed,
            self.exposure,
        )

    def encode(self) -> str:
        """The JSON kept in Redis (times as epoch seconds; the exposure's send time to the
        microsecond, as the statistics weighed it)."""
        data: dict[str, Any] = {
            "c": [[a, ch.value, p] for a, ch, p in self.contacts],
            "h": {
                a: None if at is None else int(at.timestamp())
                for a, at in self.history_before.items()
            },
            "d": self.day.isoformat(),
            "o": self.consumed.offers_given,
            "a": self.consumed.actions_sent,
        }
        e = self.exposure
        if e is not None:
            data["e"] = [
                e.sent_at.timestamp(),
                e.action_id,
                e.channel,
                e.segment,
                e.expected,
                e.value,
            ]
        return json.dumps(data, separators=(",", ":"))

    @classmethod
    def decode(cls, decision_id: str, raw: str | bytes, customer_id: str = "") -> ScheduledDecision:
        """Read back :meth:`encode`'s output (of ``customer_id``'s decision)."""
        data = json.loads(raw)
        exposure = None
        if "e" in data:  # written with the response statistics on
            sent, action, channel, segment, expected, value = data["e"]
            exposure = Exposure(
                decision_id,
                customer_id,
                dt.datetime.fromtimestamp(float(sent), dt.UTC),
                str(action),
                str(channel),
                str(segment),
                float(expected),
                float(value),
            )
        return cls(
            decision_id,
            tuple((str(a), Channel(ch), float(p)) for a, ch, p in data["c"]),
            {
                str(a): None if t is None else dt.datetime.fromtimestamp(int(t), dt.UTC)
                for a, t in data["h"].items()
            },
            dt.date.fromisoformat(data["d"]),
            Consumption(dict(data["o"]), dict(data["a"])),
            exposure,
        )


class DecisionRead(NamedTuple):
    """One decision's read, for :meth:`ContactState.read_for_decisions`."""

    customer_id: str
    now: dt.datetime
    idempotency_key: str | None = None
    with_stats: bool = True


class DecisionRecord(NamedTuple):
    """One decision's write, for :meth:`ContactState.record_all` (see
    :meth:`ContactState.record`)."""

    decision: Decision
    idempotency_key: str | None = None
    answer: str | None = None
    segment: str | None = None
    #: kept beside its contacts when the contact state :attr:`~ContactState.keeps_scheduled`
    scheduled: ScheduledDecision | None = None
    #: the scheduled sends it replaces, withdrawn in the same write
    cancels: tuple[CancelledSend, ...] = ()


def sends_of(decision: Decision) -> dict[str, dt.datetime]:
    """When each message of ``decision`` goes out (its send time, else the decision's);
    content placed on a page or in the app is not one (an in-app "picks for you" used to
    hold the cart reminder's e-mail back 12 hours, and itself back a week)."""
    return {
        a.action_id: a.send_at or decision.decided_at
        for a in decision.contacts
        if a.channel not in PLACEMENT_CHANNELS
    }


def contacts_of(decision: Decision) -> tuple[OwnContact, ...]:
    """The contacts ``decision`` chose, each on its channel at its send time."""
    return tuple(
        OwnContact(decision.decision_id, a.channel, a.send_at or decision.decided_at)
        for a in decision.contacts
        if a.channel is not None
    )


def with_own_contacts(
    profile: CustomerProfile, contacts: Sequence[OwnContact], now: dt.datetime
) -> CustomerProfile:
    """``profile`` with ``contacts`` (decided, not reported sent) counted in its contact
    history as ``message_sent`` events are (:func:`features.finalise.build_profile`:
    each contact's time, to the second, counted in the rolling windows it lies in), and
    scheduled ones too: a contact due tonight already holds its place under the caps,
    so a decision now does not add one the caps would refuse then.

    >>> at = dt.datetime(2026, 3, 2, 7, 0, tzinfo=dt.UTC)
    >>> sent = [OwnContact("d-1", Channel.EMAIL, at)]
    >>> later = with_own_contacts(CustomerProfile("C1"), sent, at + dt.timedelta(hours=13))
    >>> later.contacts.contacts_1d, later.contacts.last_contact_at[Channel.EMAIL] == at
    ({<Channel.EMAIL: 'email'>: 1}, True)
    >>> week = with_own_contacts(CustomerProfile("C1"), sent, at + dt.timedelta(days=8))
    >>> week.contacts.contacts_7d, week.contacts.contacts_30d
    ({}, {<Channel.EMAIL: 'email'>: 1})
    """
    if not contacts:
        return profile
    history = profile.contacts
    counts = {name: dict(getattr(history, name)) for _, name in _WINDOWS}
    last = dict(history.last_contact_at)
    times = {c: list(t) for c, t in history.contact_times.items()}
    moment = now.timestamp()
    for contact in contacts:
        second = math.floor(contact.at.timestamp())
        for seconds, name in _WINDOWS:
            if second + 1 > moment - seconds:
                counts[name][contact.channel] = counts[name].get(contact.channel, 0) + 1
        if second + 1 > moment - _WINDOWS[-1][0]:
            times.setdefault(contact.channel, []).append(dt.datetime.fromtimestamp(second, dt.UTC))
        seen = last.get(contact.channel)
        if seen is None or contact.at > seen:
            last[contact.channel] = contact.at
    merged = dataclasses.replace(
        history,
        last_contact_at=last,
        contact_times={c: tuple(sorted(t)) for c, t in times.items()},
        **counts,
    )
    return _with_contacts(profile, merged)


def _with_contacts(profile: CustomerProfile, contacts: ContactHistory) -> CustomerProfile:
    """``dataclasses.replace(profile, contacts=contacts)`` without re-running the
    constructor over the profile's ~45 fields (3 µs instead of 22 µs per decision of a
    customer with contacts of their own); the same object, field for field. A profile
    type that validates in ``__post_init__`` goes through ``replace``."""
    if hasattr(profile, "__post_init__"):
        return dataclasses.replace(profile, contacts=contacts)
    new = copy.copy(profile)
    object.__setattr__(new, "contacts", contacts)
    return new


def _whole_seconds(at: dt.datetime) -> dt.datetime:
    return dt.datetime.fromtimestamp(int(at.timestamp()), dt.UTC)


#: Customers per pipeline when batch mode reads histories.
HISTORY_CHUNK = 1_000


class ContactState(abc.ABC):
    """Where contact state lives. Implementations must pass ``tests/test_contact_state.py``.

    Times are stored to the second (UTC); usage counters per day of the retailer
    (:attr:`budget_zone`, its contact policy's time zone: budgets reset at its midnight).
    """

    #: The retailer's time zone, whose days the usage counters count (budgets, volumes).
    budget_zone: dt.tzinfo = dt.UTC
    #: The profile store :meth:`read_for_decision` reads the customer's state from.
    store: OnlineStore | None = None
    #: The response statistics :meth:`read_for_decision` reads and :meth:`record` counts.
    stats: ResponseStats | None = None
    #: Whether decisions keep what they scheduled (:class:`ScheduledDecision`) and reads
    #: return it (supersession on: one more command in each read and write, no more
    #: round trips; off, nothing is read or written for it).
    keeps_scheduled: bool = False

    @abc.abstractmethod
    def read_for_decision(
        self,
        customer_id: str,
        now: dt.datetime,
        idempotency_key: str | None = None,
        *,
        with_stats: bool = True,
    ) -> DecisionState:
        """The stored answer for ``idempotency_key`` if there is one; else the customer's
        history, the usage of ``now``'s day, the stored profile state and (unless not
        ``with_stats``, e.g. when the caller holds a fresh table) the response statistics."""

    def read_for_decisions(self, reads: Sequence[DecisionRead]) -> list[DecisionState]:
        """:meth:`read_for_decision` for each of ``reads``, in order (on Redis: all in one
        round trip)."""
        return [
            self.read_for_decision(r.customer_id, r.now, r.idempotency_key, with_stats=r.with_stats)
            for r in reads
        ]

    def record_all(self, records: Sequence[DecisionRecord]) -> None:
        """:meth:`record` for each of ``records``, in order (on Redis: in one round trip)."""
        for r in records:
            if r.cancels:
                self.cancel(r.decision.customer_id, r.cancels)
            if r.scheduled is not None and self.keeps_scheduled:
                self.keep_scheduled(r.decision.customer_id, r.scheduled)
            self.record(
                r.decision, idempotency_key=r.idempotency_key, answer=r.answer, segment=r.segment
            )

    def record(
        self,
        decision: Decision,
        *,
        idempotency_key: str | None = None,
        answer: str | None = None,
        segment: str | None = None,
    ) -> None:
        """Record a decision once made: its contacts in the history, what it consumed in
        the usage of its day, ``answer`` for ``idempotency_key`` (the first answer
        stored for a key is kept) and, with a ``segment``, its exposure in the response
        statistics."""
        self.record_sent(decision.customer_id, sends_of(decision))
        self.record_contacts(decision.customer_id, contacts_of(decision))
        self.count_usage(self.budget_day(decision.decided_at), decision.consumed)
        if idempotency_key is not None and answer is not None:
            self.keep_answer(decision.customer_id, idempotency_key, answer)
        if self.stats is not None and segment is not None:
            self.stats.record_decision(decision, segment)

    @abc.abstractmethod
    def record_sent(self, customer_id: str, sends: Mapping[str, dt.datetime]) -> None:
        """Set when each action of ``sends`` was last sent to the customer."""

    @abc.abstractmethod
    def record_contacts(self, customer_id: str, contacts: Sequence[OwnContact]) -> None:
        """Keep the contacts decided for the customer until reported sent (or older than
        :data:`CONTACT_SECONDS`)."""

    @abc.abstractmethod
    def own_contacts(self, customer_id: str, now: dt.datetime) -> tuple[OwnContact, ...]:
        """The contacts decided for the customer that count at ``now`` and that no
        ``message_sent`` has reported (:meth:`reported`), oldest first."""

    @abc.abstractmethod
    def reported(self, sends: Sequence[tuple[str, str, Channel]]) -> None:
        """``(customer, decision id, channel)`` sends reported by ``message_sent`` events:
        the profile counts them now, so the decided contacts they report count no more."""

    @abc.abstractmethod
    def count_usage(self, day: dt.date, consumption: Consumption, sign: int = 1) -> None:
        """Add ``consumption`` to ``day``'s counters (``sign=-1`` takes it back)."""

    @abc.abstractmethod
    def keep_answer(self, customer_id: str, idempotency_key: str, answer: str) -> None:
        """Store ``answer`` for the key unless one is stored already (kept for a while)."""

    @abc.abstractmethod
    def cancel(self, customer_id: str, cancelled: Sequence[CancelledSend]) -> None:
        """Release the customer's ``cancelled`` sends (on Redis: in one round trip, as
        :meth:`record_all`): their decided contacts, their history (set back) and usage."""

    @abc.abstractmethod
    def keep_scheduled(self, customer_id: str, scheduled: ScheduledDecision) -> None:
        """Keep what ``scheduled``'s decision left to weigh and withdraw its contacts
        (as long as its contacts are kept)."""

    @abc.abstractmethod
    def history(self, customer_id: str) -> dict[str, dt.datetime]:
        """When each action was last sent to the customer."""

    def histories(self, customer_ids: Sequence[str]) -> dict[str, dict[str, dt.datetime]]:
        """:meth:`history` of many customers (batch mode), those with none left out."""
        found = {cid: self.history(cid) for cid in customer_ids}
        return {cid: sent for cid, sent in found.items() if sent}

    def own_contacts_of(
        self, customer_ids: Sequence[str], now: dt.datetime
    ) -> dict[str, tuple[OwnContact, ...]]:
        """:meth:`own_contacts` of many customers (batch mode), those with none left out."""
        found = {cid: self.own_contacts(cid, now) for cid in customer_ids}
        return {cid: contacts for cid, contacts in found.items() if contacts}

    @abc.abstractmethod
    def usage(self, day: dt.date) -> UsageCounts:
        """The counters of ``day`` (a copy)."""

    def budget_day(self, moment: dt.datetime) -> dt.date:
        """The retailer's day ``moment`` counts toward (:func:`nba.budgets.budget_day`)."""
        return budget_day(moment, self.budget_zone)

    @abc.abstractmethod
    def add_popularity(self, points: Mapping[str, float]) -> None:
        """Add popularity points to products."""

    @abc.abstractmethod
    def top_products(self, k: int) -> list[str]:
        """The ``k`` most popular products, most popular first (ties: higher id first)."""


class MemoryContactState(ContactState):
    """An in-process contact state with the same semantics as Redis, for simulations
    and single-process runs. ``store`` supplies the profile state of
    :meth:`read_for_decision` (none is read without it)."""

    def __init__(
        self,
        store: OnlineStore | None = None,
        *,
        answer_seconds: float = DEFAULT_ANSWER_SECONDS,
        clock: Callable[[], float] = time.monotonic,
        stats: MemoryResponseStats | None = None,
        budget_zone: dt.tzinfo = dt.UTC,
        keeps_scheduled: bool = False,
    ) -> None:
        self.store = store
        self.stats = stats
        self.budget_zone = budget_zone
        self.keeps_scheduled = keeps_scheduled
        self.answer_seconds = answer_seconds
        self.clock = clock
        self._scheduled: dict[str, dict[str, ScheduledDecision]] = {}
        self._history: dict[str, dict[str, dt.datetime]] = {}
        self._contacts: dict[str, dict[tuple[str, Channel], dt.datetime]] = {}
        self._usage: dict[dt.date, tuple[dict[str, int], dict[str, int]]] = {}
        self._answers: dict[tuple[str, str], tuple[str, float]] = {}
        self._popularity: dict[str, float] = {}

    def read_for_decision(
        self,
        customer_id: str,
        now: dt.datetime,
        idempotency_key: str | None = None,
        *,
        with_stats: bool = True,
    ) -> DecisionState:
        if idempotency_key is not None:
            kept = self._answers.get((customer_id, idempotency_key))
            if kept is not None and kept[1] > self.clock():
                return DecisionState(answer=kept[0])
        stored = None if self.store is None else self.store.read([customer_id])[0]
        return DecisionState(
            None,
            self.history(customer_id),
            self.usage(self.budget_day(now)),
            stored,
            None if self.stats is None or not with_stats else self.stats.table(now),
            self.own_contacts(customer_id, now),
            dict(self._scheduled.get(customer_id, {})) if self.keeps_scheduled else {},
        )

    def keep_scheduled(self, customer_id: str, scheduled: ScheduledDecision) -> None:
        self._scheduled.setdefault(customer_id, {})[scheduled.decision_id] = scheduled

    def record_contacts(self, customer_id: str, contacts: Sequence[OwnContact]) -> None:
        if contacts:
            mine = self._contacts.setdefault(customer_id, {})
            horizon = min(c.at for c in contacts) - dt.timedelta(seconds=CONTACT_SECONDS)
            for key in [k for k, at in mine.items() if at < horizon]:
                del mine[key]  # as the Redis set is trimmed
            mine.update({(c.decision_id, c.channel): _whole_seconds(c.at) for c in contacts})

    def own_contacts(self, customer_id: str, now: dt.datetime) -> tuple[OwnContact, ...]:
        since = now - dt.timedelta(seconds=CONTACT_SECONDS)
        found = self._contacts.get(customer_id, {})
        return tuple(
            sorted(
                (OwnContact(d, ch, at) for (d, ch), at in found.items() if at >= since),
                key=lambda c: (c.at, c.decision_id),
            )
        )

    def reported(self, sends: Sequence[tuple[str, str, Channel]]) -> None:
        for customer_id, decision_id, channel in sends:
            self._contacts.get(customer_id, {}).pop((decision_id, channel), None)

    def record_sent(self, customer_id: str, sends: Mapping[str, dt.datetime]) -> None:
        if sends:
            mine = self._history.setdefault(customer_id, {})
            mine.update({a: _whole_seconds(at) for a, at in sends.items()})

    def count_usage(self, day: dt.date, consumption: Consumption, sign: int = 1) -> None:
        if not (consumption.offers_given or consumption.actions_sent):
            return
        if day not in self._usage:
            horizon = day - dt.timedelta(seconds=USAGE_SECONDS)
            for old in [d for d in self._usage if d < horizon]:
                del self._usage[old]  # as the counters expire on Redis
        offers, actions = self._usage.setdefault(day, ({}, {}))
        for key, n in consumption.offers_given.items():
            offers[key] = offers.get(key, 0) + sign * n
        for key, n in consumption.actions_sent.items():
            actions[key] = actions.get(key, 0) + sign * n

    def cancel(self, customer_id: str, cancelled: Sequence[CancelledSend]) -> None:
        mine = self._contacts.get(customer_id, {})
        history = self._history.get(customer_id, {})
        kept = self._scheduled.get(customer_id, {})
        for send in cancelled:
            kept.pop(send.decision_id, None)
            for channel in send.channels:
                mine.pop((send.decision_id, channel), None)
            for action, before in send.history.items():
                if before is None:
                    history.pop(action, None)
                else:
                    history[action] = _whole_seconds(before)
            self.count_usage(send.day, send.consumed, sign=-1)
        if self.stats is not None:
            exposures = [s.exposure for s in cancelled if s.exposure is not None]
            looked_up = [s.decision_id for s in cancelled if s.counted_exposure]
            if looked_up:
                exposures += self.stats.counted_exposures(customer_id, looked_up)
            self.stats.withdraw(exposures)

    def keep_answer(self, customer_id: str, idempotency_key: str, answer: str) -> None:
        now = self.clock()
        kept = self._answers.get((customer_id, idempotency_key))
        if kept is None or kept[1] <= now:
            self._answers[(customer_id, idempotency_key)] = (answer, now + self.answer_seconds)

    def history(self, customer_id: str) -> dict[str, dt.datetime]:
        return dict(self._history.get(customer_id, {}))

    def usage(self, day: dt.date) -> UsageCounts:
        offers, actions = self._usage.get(day, ({}, {}))
        return UsageCounts(dict(offers), dict(actions))

    def add_popularity(self, points: Mapping[str, float]) -> None:
        for product, value in points.items():
            self._popularity[product] = self._popularity.get(product, 0.0) + float(value)

    def top_products(self, k: int) -> list[str]:
        ranked = sorted(self._popularity.items(), key=lambda kv: (kv[1], kv[0]), reverse=True)
        return [product for product, _ in ranked[: max(0, k)]]


class RedisContactState(ContactState):
    """Contact state on Redis or Redis Cluster, beside the profiles of ``store``
    (same client and key prefix). Keys (``{...}`` is the customer's hash tag, the
    slot of their profile, so that one customer's keys live on one node):

    * ``<prefix>:h:{<customer>}``: hash action id -> epoch seconds of the last send;
    * ``<prefix>:i:{<customer>}:<digest>``: an idempotent answer, expiring after
      ``answer_seconds``;
    * ``<prefix>:c:{<customer>}``: sorted set of the contacts decided and not yet
      reported sent (``<decision id>|<channel>`` scored by the send's epoch seconds),
      trimmed to :data:`CONTACT_SECONDS`; the member has kept this form since before
      supersession, so that ``message_sent`` (which names the decision and channel, not
      the action) can remove it;
    * ``<prefix>:cd:{<customer>}``: hash decision id -> what it scheduled
      (:meth:`ScheduledDecision.encode`: actions, channels, decided priorities, the
      history before it, its budgets), written and read only with
      :attr:`keeps_scheduled`; a contact without an entry (decided before, or with it
      off) reads as before and is never withdrawn; an entry without a contact left is
      ignored and expires with the key;
    * ``<prefix>:u:<YYYY-MM-DD>``: hash of the day's usage (``o:<offer>``,
      ``a:<action>``), expiring after :data:`USAGE_SECONDS`;
    * ``<prefix>:pop``: sorted set of product popularity.

    Reads and writes are pipelined: one round trip per call.
    """

    def __init__(
        self,
        store: RedisOnlineStore,
        *,
        answer_seconds: int = DEFAULT_ANSWER_SECONDS,
        stats: RedisResponseStats | None = None,
        budget_zone: dt.tzinfo = dt.UTC,
        keeps_scheduled: bool = False,
    ) -> None:
        self.keeps_scheduled = keeps_scheduled
        self.store: RedisOnlineStore = store
        self.client: Any = store.client
        self.prefix = store.prefix
        self.answer_seconds = answer_seconds
        self.stats: RedisResponseStats | None = stats
        self.budget_zone = budget_zone

    # keys ---------------------------------------------------------------
    def history_key(self, customer_id: str) -> str:
        return f"{self.prefix}:h:{{{customer_id}}}"

    def answer_key(self, customer_id: str, idempotency_key: str) -> str:
        digest = hashlib.sha256(f"{ANSWER_SCOPE}|{idempotency_key}".encode()).hexdigest()[:32]
        return f"{self.prefix}:i:{{{customer_id}}}:{digest}"

    def usage_key(self, day: dt.date) -> str:
        return f"{self.prefix}:u:{day.isoformat()}"

    def contacts_key(self, customer_id: str) -> str:
        return f"{self.prefix}:c:{{{customer_id}}}"

    def scheduled_key(self, customer_id: str) -> str:
        return f"{self.prefix}:cd:{{{customer_id}}}"

    @property
    def popularity_key(self) -> str:
        return f"{self.prefix}:pop"

    # reads --------------------------------------------------------------
    def read_for_decision(
        self,
        customer_id: str,
        now: dt.datetime,
        idempotency_key: str | None = None,
        *,
        with_stats: bool = True,
    ) -> DecisionState:
        return self.read_for_decisions(
            [DecisionRead(customer_id, now, idempotency_key, with_stats)]
        )[0]

    def read_for_decisions(self, reads: Sequence[DecisionRead]) -> list[DecisionState]:
        pipe = self.client.pipeline(transaction=False)
        # the first read of a process also checks the store's layout, in the same round trip
        settling = not self.store.layout_settled
        if settling:
            self.store.queue_layout(pipe)
        stats = self.stats
        scheduled = self.keeps_scheduled
        base = 6 if scheduled else 5
        sizes = []
        for read in reads:
            size = base + 1 if read.idempotency_key is not None else base
            if read.idempotency_key is not None:
                pipe.get(self.answer_key(read.customer_id, read.idempotency_key))
            pipe.hgetall(self.history_key(read.customer_id))
            pipe.hgetall(self.usage_key(self.budget_day(read.now)))
            pipe.get(self.store.state_key(read.customer_id))
            pipe.get(self.store.verdict_key(read.customer_id))
            self._queue_contacts(pipe, read.customer_id, read.now)
            if scheduled:
                pipe.hgetall(self.scheduled_key(read.customer_id))
            if stats is not None and read.with_stats:
                size += stats.queue_table(pipe, read.now)
            sizes.append(size)
        replies = pipe.execute()
        if settling and self.store.settle_layout(replies.pop(0), replies.pop(0)):
            # an old layout was just migrated: the profile reads above predate it
            return self.read_for_decisions(reads)
        out = []
        at = 0
        for read, size in zip(reads, sizes, strict=True):
            own = replies[at : at + size]
            at += size
            answer = own.pop(0) if read.idempotency_key is not None else None
            if answer:
                out.append(DecisionState(answer=answer.decode()))
                continue
            history, usage, state, verdict, contacts = own[:5]
            out.append(
                DecisionState(
                    None,
                    decode_history(history),
                    decode_usage(usage),
                    decode_customer(read.customer_id, state, verdict),
                    None
                    if stats is None or not read.with_stats
                    else stats.table_from(own[base:], read.now),
                    decode_contacts(contacts),
                    decode_scheduled(own[5], read.customer_id) if scheduled else {},
                )
            )
        return out

    def own_contacts(self, customer_id: str, now: dt.datetime) -> tuple[OwnContact, ...]:
        pipe = self.client.pipeline(transaction=False)
        self._queue_contacts(pipe, customer_id, now)
        return decode_contacts(pipe.execute()[0])

    def _queue_contacts(self, pipe: Any, customer_id: str, now: dt.datetime) -> None:
        since = int(now.timestamp()) - CONTACT_SECONDS
        pipe.zrangebyscore(self.contacts_key(customer_id), since, "+inf", withscores=True)

    def history(self, customer_id: str) -> dict[str, dt.datetime]:
        return decode_history(self.client.hgetall(self.history_key(customer_id)))

    def histories(self, customer_ids: Sequence[str]) -> dict[str, dict[str, dt.datetime]]:
        out: dict[str, dict[str, dt.datetime]] = {}
        for start in range(0, len(customer_ids), HISTORY_CHUNK):
            chunk = customer_ids[start : start + HISTORY_CHUNK]
            pipe = self.client.pipeline(transaction=False)
            for cid in chunk:
                pipe.hgetall(self.history_key(cid))
            for cid, raw in zip(chunk, pipe.execute(), strict=True):
                if raw:
                    out[cid] = decode_history(raw)
        return out

    def own_contacts_of(
        self, customer_ids: Sequence[str], now: dt.datetime
    ) -> dict[str, tuple[OwnContact, ...]]:
        out: dict[str, tuple[OwnContact, ...]] = {}
        for start in range(0, len(customer_ids), HISTORY_CHUNK):
            chunk = customer_ids[start : start + HISTORY_CHUNK]
            pipe = self.client.pipeline(transaction=False)
            for cid in chunk:
                self._queue_contacts(pipe, cid, now)
            for cid, raw in zip(chunk, pipe.execute(), strict=True):
                if raw:
                    out[cid] = decode_contacts(raw)
        return out

    def usage(self, day: dt.date) -> UsageCounts:
        return decode_usage(self.client.hgetall(self.usage_key(day)))

    def top_products(self, k: int) -> list[str]:
        if k <= 0:
            return []
        return [p.decode() for p in self.client.zrevrange(self.popularity_key, 0, k - 1)]

    # writes -------------------------------------------------------------
    def record(
        self,
        decision: Decision,
        *,
        idempotency_key: str | None = None,
        answer: str | None = None,
        segment: str | None = None,
    ) -> None:
        self.record_all([DecisionRecord(decision, idempotency_key, answer, segment)])

    def record_all(self, records: Sequence[DecisionRecord]) -> None:
        if self.stats is not None and any(s.counted_exposure for r in records for s in r.cancels):
            records = [
                r._replace(cancels=self._with_exposures(r.decision.customer_id, r.cancels))
                for r in records
            ]
        pipe = self.client.pipeline(transaction=False)
        for decision, idempotency_key, answer, segment, scheduled, cancels in records:
            if cancels:
                self._cancel(pipe, decision.customer_id, cancels)
            if scheduled is not None and self.keeps_scheduled:
                self._scheduled(pipe, decision.customer_id, scheduled)
            self._sent(pipe, decision.customer_id, sends_of(decision))
            self._contacts(pipe, decision.customer_id, contacts_of(decision))
            self._count(pipe, self.budget_day(decision.decided_at), decision.consumed, 1)
            if idempotency_key is not None and answer is not None:
                self._answer(pipe, decision.customer_id, idempotency_key, answer)
            if self.stats is not None and segment is not None:
                exposure = Exposure.of(decision, segment)
                if exposure is not None:
                    self.stats.queue_exposure(pipe, exposure)
        pipe.execute()

    def record_sent(self, customer_id: str, sends: Mapping[str, dt.datetime]) -> None:
        if sends:
            pipe = self.client.pipeline(transaction=False)
            self._sent(pipe, customer_id, sends)
            pipe.execute()

    def record_contacts(self, customer_id: str, contacts: Sequence[OwnContact]) -> None:
        if contacts:
            pipe = self.client.pipeline(transaction=False)
            self._contacts(pipe, customer_id, contacts)
            pipe.execute()

    def reported(self, sends: Sequence[tuple[str, str, Channel]]) -> None:
        if sends:
            pipe = self.client.pipeline(transaction=False)
            for customer_id, decision_id, channel in sends:
                pipe.zrem(self.contacts_key(customer_id), f"{decision_id}|{channel.value}")
            pipe.execute()

    def count_usage(self, day: dt.date, consumption: Consumption, sign: int = 1) -> None:
        if consumption.offers_given or consumption.actions_sent:
            pipe = self.client.pipeline(transaction=False)
            self._count(pipe, day, consumption, sign)
            pipe.execute()

    def cancel(self, customer_id: str, cancelled: Sequence[CancelledSend]) -> None:
        if cancelled:
            cancelled = self._with_exposures(customer_id, cancelled)
            pipe = self.client.pipeline(transaction=False)
            self._cancel(pipe, customer_id, cancelled)
            pipe.execute()

    def _with_exposures(
        self, customer_id: str, cancelled: Sequence[CancelledSend]
    ) -> tuple[CancelledSend, ...]:
        """``cancelled`` with the exposures the statistics counted for those that do not
        carry theirs (one read, only then: a consent withdrawn under a scheduled message)."""
        looked_up = [s.decision_id for s in cancelled if s.counted_exposure]
        if self.stats is None or not looked_up:
            return tuple(cancelled)
        counted = {e.decision_id: e for e in self.stats.counted_exposures(customer_id, looked_up)}
        return tuple(
            dataclasses.replace(s, exposure=counted.get(s.decision_id), counted_exposure=False)
            if s.counted_exposure
            else s
            for s in cancelled
        )

    def keep_scheduled(self, customer_id: str, scheduled: ScheduledDecision) -> None:
        pipe = self.client.pipeline(transaction=False)
        self._scheduled(pipe, customer_id, scheduled)
        pipe.execute()

    def _scheduled(self, pipe: Any, customer_id: str, scheduled: ScheduledDecision) -> None:
        key = self.scheduled_key(customer_id)
        pipe.hset(key, scheduled.decision_id, scheduled.encode())
        pipe.expire(key, CONTACT_SECONDS + SCHEDULED_SECONDS)

    def _cancel(self, pipe: Any, customer_id: str, cancelled: Sequence[CancelledSend]) -> None:
        pipe.hdel(self.scheduled_key(customer_id), *(send.decision_id for send in cancelled))
        for send in cancelled:
            for channel in send.channels:
                pipe.zrem(self.contacts_key(customer_id), f"{send.decision_id}|{channel.value}")
            back = {a: at for a, at in send.history.items() if at is not None}
            self._sent(pipe, customer_id, back)
            never = [a for a, at in send.history.items() if at is None]
            if never:
                pipe.hdel(self.history_key(customer_id), *never)
            self._count(pipe, send.day, send.consumed, -1)
            if self.stats is not None and send.exposure is not None:
                self.stats.queue_withdrawal(pipe, send.exposure)

    def keep_answer(self, customer_id: str, idempotency_key: str, answer: str) -> None:
        pipe = self.client.pipeline(transaction=False)
        self._answer(pipe, customer_id, idempotency_key, answer)
        pipe.execute()

    def add_popularity(self, points: Mapping[str, float]) -> None:
        if points:
            pipe = self.client.pipeline(transaction=False)
            for product, value in points.items():
                pipe.zincrby(self.popularity_key, float(value), product)
            pipe.execute()

    def _sent(self, pipe: Any, customer_id: str, sends: Mapping[str, dt.datetime]) -> None:
        if sends:
            mapping = {a: str(int(at.timestamp())) for a, at in sends.items()}
            pipe.hset(self.history_key(customer_id), mapping=mapping)

    def _contacts(self, pipe: Any, customer_id: str, contacts: Sequence[OwnContact]) -> None:
        if not contacts:
            return
        key = self.contacts_key(customer_id)
        moments = [int(c.at.timestamp()) for c in contacts]
        pipe.zadd(
            key,
            {
                f"{c.decision_id}|{c.channel.value}": t
                for c, t in zip(contacts, moments, strict=True)
            },
        )
        pipe.zremrangebyscore(key, "-inf", f"({min(moments) - CONTACT_SECONDS}")
        # kept while its latest contact counts (a send may be scheduled days ahead)
        pipe.expire(key, CONTACT_SECONDS + SCHEDULED_SECONDS)

    def _count(self, pipe: Any, day: dt.date, consumption: Consumption, sign: int) -> None:
        key = self.usage_key(day)
        for offer, n in consumption.offers_given.items():
            pipe.hincrby(key, f"o:{offer}", sign * n)
        for action, n in consumption.actions_sent.items():
            pipe.hincrby(key, f"a:{action}", sign * n)
        if consumption.offers_given or consumption.actions_sent:
            pipe.expire(key, USAGE_SECONDS)

    def _answer(self, pipe: Any, customer_id: str, idempotency_key: str, answer: str) -> None:
        key = self.answer_key(customer_id, idempotency_key)
        pipe.set(key, answer, ex=self.answer_seconds, nx=True)


def contact_state_for(
    store: OnlineStore,
    *,
    answer_seconds: int = DEFAULT_ANSWER_SECONDS,
    response_stats: bool = False,
    half_life_days: float | None = None,
    window_hours: float | None = None,
    keeps_scheduled: bool = False,
) -> ContactState:
    """The contact state that lives beside ``store``: on the same Redis (same client and
    key prefix) for a :class:`RedisOnlineStore`, in memory otherwise; with
    ``response_stats``, response statistics beside it (``half_life_days`` their
    half-life, ``window_hours`` the attribution window; the defaults when omitted); with
    ``keeps_scheduled``, what each decision scheduled is kept and read
    (:class:`ScheduledDecision`)."""
    half_life = DEFAULT_HALF_LIFE_DAYS if half_life_days is None else half_life_days
    window = DEFAULT_WINDOW_HOURS if window_hours is None else window_hours
    if isinstance(store, RedisOnlineStore):
        stats = (
            RedisResponseStats(
                store.client, store.prefix, half_life_days=half_life, window_hours=window
            )
            if response_stats
            else None
        )
        return RedisContactState(
            store, answer_seconds=answer_seconds, stats=stats, keeps_scheduled=keeps_scheduled
        )
    memory = (
        MemoryResponseStats(half_life_days=half_life, window_hours=window)
        if response_stats
        else None
    )
    return MemoryContactState(
        store, answer_seconds=answer_seconds, stats=memory, keeps_scheduled=keeps_scheduled
    )


def decode_history(raw: Mapping[bytes, bytes] | None) -> dict[str, dt.datetime]:
    """When each action was last sent, from the ``HGETALL`` of a history key."""
    return {k.decode(): dt.datetime.fromtimestamp(int(v), dt.UTC) for k, v in (raw or {}).items()}


def decode_contacts(raw: Sequence[tuple[bytes, float]] | None) -> tuple[OwnContact, ...]:
    """The decided contacts, from the ``ZRANGEBYSCORE ... WITHSCORES`` of a contacts key."""
    out = []
    for member, score in raw or ():
        decision_id, _, channel = member.decode().rpartition("|")
        out.append(
            OwnContact(decision_id, Channel(channel), dt.datetime.fromtimestamp(int(score), dt.UTC))
        )
    return tuple(out)


def decode_scheduled(
    raw: Mapping[bytes, bytes] | None, customer_id: str = ""
) -> dict[str, ScheduledDecision]:
    """What ``customer_id``'s decisions scheduled, from the ``HGETALL`` of their scheduled
    key."""
    return {
        k.decode(): ScheduledDecision.decode(k.decode(), v, customer_id)
        for k, v in (raw or {}).items()
    }


def decode_usage(raw: Mapping[bytes, bytes] | None) -> UsageCounts:
    """A day's counters, from the ``HGETALL`` of a usage key."""
    offers: dict[str, int] = {}
    actions: dict[str, int] = {}
    for k, v in (raw or {}).items():
        kind, _, name = k.decode().partition(":")
        (offers if kind == "o" else actions)[name] = int(v)
    return UsageCounts(offers_given=offers, actions_sent=actions)


__all__ = [
    "ContactState",
    "DecisionRead",
    "DecisionRecord",
    "DecisionState",
    "MemoryContactState",
    "OwnContact",
    "RedisContactState",
    "ScheduledDecision",
    "contact_state_for",
    "decode_history",
    "with_own_contacts",
]
