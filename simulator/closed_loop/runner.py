"""Run one decision policy in closed loop with the simulated customers.

Time advances in ticks of ``trigger_every_hours`` from the cut. At each tick:

1. customers who signed up since the previous tick join the audience (their
   static attributes registered, as the API's sign-up does); events up to now
   are ingested into the policy's own online profiles
   (:class:`~features.online.profiles.OnlineProfiles` on a
   :class:`~features.online.store.MemoryOnlineStore`): the shared background
   and the outcomes of the policy's earlier messages;
2. the customers who were active since the previous tick (and everyone at the
   daily decision hour) get a decision, unless a message of theirs is still
   in flight (when the contact policy lets a scheduled message be replaced,
   :attr:`~nba.contact_policy.ContactPolicy.supersede_lead_minutes`, an active
   customer whose message is decided but not sent is decided again as if it had
   not been scheduled, and the new contact replaces it when
   :func:`~nba.supersession.supersede` says so: the replaced message is dropped
   before its send time, with its outcomes, and its history, budgets and
   fatigue are given back); the decision reads, as the API's does, the profile, the actions
   already sent (for cool-downs and sequences) and today's budgets from the
   run's :class:`~features.online.contact_state.MemoryContactState` and, for
   exploring policies, the response statistics of the customer's segment so far
   (:mod:`features.online.response_stats`, as the API reads them);
3. each chosen contact is answered by
   :meth:`~simulator.ResponseModel.sample` with a generator seeded
   by (run seed, customer, tick, rank): two policies that contact the same
   customer at the same tick draw the same random numbers (common random
   numbers), which makes their comparison sharper. Its outcomes become
   contract events (``message_sent``, ``message_delivered``,
   ``message_opened`` on channels that track opens, ``message_clicked``,
   ``unsubscribe``, ``purchase`` through the message and its
   ``order_delivered``), released when their time comes; its true
   incremental value (:class:`~simulator.closed_loop.truth.TrueValue`) is
   recorded for the metrics.

Every decision that contacts someone is an exposure in the response
statistics (taken back when its message is replaced before it goes), and the
loop's outcome events are joined to their decisions as they are released (as
the API's ingest joins them): a purchase through the message is a response.
``learn=False`` runs the same engine without statistics (every option keeps its
prior: exploration never settles).
"""

from __future__ import annotations

import bisect
import datetime as dt
import functools
import hashlib
import heapq
import itertools
import pickle
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import numpy as np
import pandas as pd

from features.batch import paused_gc
from features.contract import EVENTS
from features.definitions import SMALL_BATCH
from features.forked import Forked
from features.online.contact_state import CancelledSend, ContactState, MemoryContactState
from features.online.profiles import OnlineProfiles
from features.online.response_stats import (
    DEFAULT_HALF_LIFE_DAYS,
    Exposure,
    MemoryResponseStats,
    Outcome,
    margin_rates,
    response_segment,
)
from features.online.store import EventOps, MemoryOnlineStore
from features.online.supersession import supersedes as policy_supersedes
from features.online.supersession import unscheduled_history, weigh_replacement
from nba.actions import OfferKind
from nba.budgets import Consumption, UsageCounts, given_back
from nba.channels import Channel
from nba.context import CustomerContext
from nba.decision import ChosenAction, Decision, RoutedDecision
from nba.events import EventType
from nba.pipeline import Decider, DecisionPipeline
from nba.profile import CustomerProfile
from nba.supersession import Pending, Supersession
from simulator.closed_loop.mapping import Message, require_simulated
from simulator.closed_loop.truth import as_ns
from simulator.closed_loop.world import ClosedLoopWorld
from simulator.config import CHANNEL_RESPONSE

Progress = Callable[[int, int], None]

_MINUTE = dt.timedelta(minutes=1)
#: Delays of a message's immediate outcomes after its send.
OUTCOME_DELAYS: dict[EventType, dt.timedelta] = {
    EventType.MESSAGE_SENT: dt.timedelta(0),
    EventType.MESSAGE_DELIVERED: _MINUTE,
    EventType.MESSAGE_OPENED: 10 * _MINUTE,
    EventType.UNSUBSCRIBE: 11 * _MINUTE,
    EventType.MESSAGE_CLICKED: 12 * _MINUTE,
}
_EVENT_COLUMNS = tuple(EVENTS.names)
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_MICROSECOND = dt.timedelta(microseconds=1)
_SECOND = dt.timedelta(seconds=1)
#: Decisions read, and prepared (:class:`TickPrepared`), together within a tick.
PREPARED_DECISIONS = 256


@dataclass(frozen=True, eq=False)
class PolicyRun:
    """What one policy did in the closed loop.

    ``decisions`` has one row per decision; ``contacts`` one row per message
    sent, with its sampled outcomes and its true incremental ``revenue`` and
    ``margin`` (expected, within the attribution window); ``withdrawals`` the
    first unsubscribe per customer and channel; ``refused_events`` the events
    the online store did not apply (expected 0). ``seconds`` is the run's wall time,
    ``cpu_seconds`` the CPU time its process spent on it.
    """

    policy: str
    decisions: pd.DataFrame
    contacts: pd.DataFrame
    withdrawals: dict[tuple[str, Channel], dt.datetime]
    events: int
    refused_events: int
    seconds: float
    cpu_seconds: float = 0.0


@dataclass
class _Scheduled:
    """A message decided and not sent yet (kept when scheduled messages may be replaced),
    with what its scheduling changed, to give back if it is cancelled: its action's last
    send before it, the customer's in-flight time before it, its unsubscribe (if drawn),
    its events (how many), its decision's budgets and its exposure in the response
    statistics (once per decision)."""

    pending: Pending
    history_before: dt.datetime | None
    in_flight_before: dt.datetime | None
    unsubscribed_at: dt.datetime | None
    events: int
    day: dt.date
    consumed: Consumption
    exposure: Exposure | None = None


@dataclass
class _State:
    """Mutable bookkeeping of one run (the contact state a decision reads is in
    ``contacts``; ``recent`` are the sends the simulated customers react to;
    ``scheduled`` the messages not sent yet, kept when they may be replaced;
    ``cancelled`` the decisions whose messages were replaced, their events dropped)."""

    contacts: ContactState

    outbox: list[tuple[dt.datetime, int, dict[str, Any]]] = field(default_factory=list)
    in_flight: dict[str, dt.datetime] = field(default_factory=dict)
    recent: dict[str, list[dt.datetime]] = field(default_factory=dict)
    withdrawals: dict[tuple[str, Channel], dt.datetime] = field(default_factory=dict)
    sequence: int = 0
    emitted: int = 0
    refused: int = 0  # events the online store did not apply (duplicate, stale, late)
    keep_scheduled: bool = False
    scheduled: dict[str, list[_Scheduled]] = field(default_factory=dict)
    cancelled: set[str] = field(default_factory=set)

    def push(self, at: dt.datetime, event: dict[str, Any]) -> None:
        self.sequence += 1
        self.emitted += 1
        heapq.heappush(self.outbox, (at, self.sequence, event))

    def release(self, now: dt.datetime) -> list[dict[str, Any]]:
        out = []
        while self.outbox and self.outbox[0][0] <= now:
            event = heapq.heappop(self.outbox)[2]
            if self.cancelled and event["decision_id"] in self.cancelled:
                continue  # its message was withdrawn before it went
            out.append(event)
        return out

    def pending(self, customer_id: str, now: dt.datetime) -> list[_Scheduled]:
        """The customer's messages decided and still to go after ``now``."""
        kept = [s for s in self.scheduled.get(customer_id, []) if s.pending.send_at > now]
        if kept:
            self.scheduled[customer_id] = kept
        else:
            self.scheduled.pop(customer_id, None)
        return kept

    def cancel(self, customer_id: str, decision_ids: Sequence[str]) -> None:
        """Withdraw the customer's scheduled messages of ``decision_ids`` (not sent yet):
        their events are dropped, and the history, budgets, fatigue, unsubscribe and
        in-flight time they took are given back."""
        mine = self.scheduled.get(customer_id, [])
        gone = [s for s in mine if s.pending.decision_id in decision_ids]
        self.scheduled[customer_id] = [s for s in mine if s.pending.decision_id not in decision_ids]
        released: dict[str, CancelledSend] = {}
        for s in sorted(gone, key=lambda s: s.pending.send_at, reverse=True):
            p = s.pending
            self.cancelled.add(p.decision_id)
            self.emitted -= s.events
            sends = self.recent.get(customer_id, [])
            at = bisect.bisect_left(sends, p.send_at)
            if at < len(sends) and sends[at] == p.send_at:
                del sends[at]
            key = (customer_id, p.channel)
            if s.unsubscribed_at is not None and self.withdrawals.get(key) == s.unsubscribed_at:
                del self.withdrawals[key]
            if s.in_flight_before is None:
                self.in_flight.pop(customer_id, None)
            else:
                self.in_flight[customer_id] = s.in_flight_before
            before = released.get(p.decision_id)
            released[p.decision_id] = CancelledSend(
                p.decision_id,
                (*(before.channels if before else ()), p.channel),
                {**(before.history if before else {}), p.action_id: s.history_before},
                s.day,
                s.consumed,
                s.exposure or (before.exposure if before else None),
            )
        self.contacts.cancel(customer_id, list(released.values()))

    def learn(self, released: list[dict[str, Any]]) -> None:
        """Join the released outcome events to their decisions in the statistics."""
        stats = self.contacts.stats
        if stats is None:
            return
        outcomes = []
        for event in released:
            outcomes += Outcome.of_event(
                event["event_id"],
                event["customer_id"],
                event["timestamp"],
                EventType(event["event_type"]),
                event["decision_id"],
                stats.margin(event.get("product_id"), event.get("revenue")),
            )
        if outcomes:
            stats.attribute(outcomes)

    def recent_contacts(self, customer_id: str, at: dt.datetime) -> int:
        sends = self.recent.get(customer_id, [])
        return len(sends) - bisect.bisect_right(sends, at - dt.timedelta(days=7))


class MessageStreams:
    """The random source of one batched :meth:`~simulator.ResponseModel.sample`
    call, with one stream per message.

    ``sample`` draws its uniforms as ``rng.random((k, n))``, one column per
    message; this source fills column ``j`` from message ``j``'s own generator,
    seeded by ``seeds[j]``, so a message's outcome does not depend on which
    other messages share the call (common random numbers, tested against one
    call per message). ``streams[j]`` goes on to serve the message's other draws.
    """

    def __init__(self, seeds: list[list[int]]) -> None:
        self.streams = [np.random.default_rng(seed) for seed in seeds]

    def random(self, size: tuple[int, int]) -> np.ndarray:
        rows, columns = size
        if columns != len(self.streams):
            raise ValueError(f"expected draws for {len(self.streams)} messages, got {columns}")
        return np.stack([stream.random(rows) for stream in self.streams], axis=1)


class _ProductPicker:
    """The product a message's purchase is for: the message's own, else one drawn by
    popularity in its category (or the customer's favourite, or any)."""

    def __init__(self, world: ClosedLoopWorld) -> None:
        products = world.sim.products.merge(
            world.sim.truth.products[["product_id", "popularity"]], on="product_id"
        )
        products = products[products["stock"].fillna(1) > 0]
        self.price = dict(
            zip(world.sim.products["product_id"], world.sim.products["price"], strict=True)
        )
        self.by_category: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        for category, part in products.groupby("category"):
            weights = part["popularity"].to_numpy(dtype=float)
            self.by_category[str(category)] = (
                part["product_id"].to_numpy(dtype=object),
                weights / weights.sum(),
            )
        weights = products["popularity"].to_numpy(dtype=float)
        self.any = (products["product_id"].to_numpy(dtype=object), weights / weights.sum())

    def pick(
        self, rng: np.random.Generator, message: Message, profile: CustomerProfile
    ) -> tuple[str, float]:
        if message.product is not None:
            return message.product, float(self.price[message.product])
        ids, weights = self.by_category.get(
            message.category or profile.top_category or "", self.any
        )
        product = str(ids[rng.choice(ids.size, p=weights)])
        return product, float(self.price[product])


@dataclass(frozen=True, eq=False)
class LoopStart:
    """What every policy's run starts from: the online profiles at the cut (the batch
    build materialised in a memory store) and each customer's sends of the last 30 days
    before the cut, in time order (what the simulated customers' fatigue counts).

    Built once per world by :func:`loop_start` and inherited by forked runs, instead of
    once per policy; a run changes it, so each run needs its own (or its own process).
    """

    online: OnlineProfiles
    recent: dict[str, list[dt.datetime]]
    ticks: list[PackedTick]


@dataclass(frozen=True, eq=False)
class TickEvents:
    """The background events a tick shows (those since the previous tick), the same for
    every policy: the online store's ops of each, their times (UTC nanoseconds, in time
    order) and the customers they are about."""

    ops: list[EventOps]
    stamps: list[int]
    active: frozenset[str]

    def merged(self, online: OnlineProfiles, released: list[dict[str, Any]]) -> list[EventOps]:
        """These ops and those of the loop's ``released`` events (converted by ``online``),
        in time order, the background's first at equal times (as one stable sort of the
        background followed by the loop's events)."""
        if not released:
            return self.ops
        if len(released) <= SMALL_BATCH:  # as to_event_ops converts them, without a frame
            loop = online.row_ops(_loop_rows(released))
        else:
            loop = online.to_event_ops(_loop_frame(released))
        stamps = [(e["timestamp"] - _EPOCH) // _MICROSECOND * 1000 for e in released]
        return [
            ops
            for _, ops in heapq.merge(
                zip(self.stamps, self.ops, strict=True),
                zip(stamps, loop, strict=True),
                key=lambda pair: pair[0],
            )
        ]


@dataclass(frozen=True, eq=False)
class PackedTick:
    """A tick's :class:`TickEvents`, pickled: one bytes object (~260 bytes an event)
    instead of ~1.8 KB of Python objects an event (ops, their tuples and floats).

    Forked runs share the parent's memory until they write to it, and reading a Python
    object writes its reference count: each policy process going through the ticks
    copied the pages of every tick's objects (~1.6 KB an event; at 100,000 customers x 30
    days ~2.4 GB per process). A bytes object's pages are read without being written;
    each run unpacks a tick when it comes to it (~10 µs an event)."""

    data: bytes

    @classmethod
    def of(cls, tick: TickEvents) -> PackedTick:
        return cls(pickle.dumps(tick, protocol=pickle.HIGHEST_PROTOCOL))

    def unpack(self) -> TickEvents:
        tick: TickEvents = pickle.loads(self.data)
        return tick


def background_ticks(world: ClosedLoopWorld, *, workers: int = 1) -> list[PackedTick]:
    """The background events of each tick as :class:`TickEvents` (packed), converted to
    ops once for all policies. A customer's time zone (their local hours and days in the
    ops) is known once they are registered: at the cut, or at the tick they sign up, as in
    a run. With ``workers`` > 1, consecutive spans of the horizon are converted in forked
    processes at once, each tick as by one process."""
    config = world.config
    n_ticks = config.days * 24 // config.trigger_every_hours
    workers = max(1, min(workers, n_ticks))
    bounds = [n_ticks * k // workers for k in range(workers + 1)]
    spans = list(itertools.pairwise(bounds))
    others = [Forked(functools.partial(_background_span, world, *span)) for span in spans[1:]]
    ticks = _background_span(world, *spans[0])
    for other in others:
        ticks += other.result()
    return ticks


def _background_span(world: ClosedLoopWorld, first: int, end: int) -> list[PackedTick]:
    """:func:`background_ticks` of the ticks ``first`` to ``end`` (excluded)."""
    scratch = OnlineProfiles(MemoryOnlineStore(), world.sim.products)
    for cid, static in world.build.statics.items():
        scratch.store.upsert_static(cid, static)
    arrivals = list(world.arrivals.items())
    joined = 0
    background = world.background
    stamps = background["timestamp"].to_numpy(dtype="datetime64[ns]").astype(np.int64)
    step = dt.timedelta(hours=world.config.trigger_every_hours)

    def shown_until(now: dt.datetime) -> int:
        return int(np.searchsorted(stamps, (now - _EPOCH) // _MICROSECOND * 1000, "right"))

    position = 0 if first == 0 else shown_until(world.cut + (first - 1) * step)
    ticks = []
    for tick in range(first, end):
        now = world.cut + tick * step
        while joined < len(arrivals) and arrivals[joined][1] <= now:
            cid = arrivals[joined][0]
            scratch.register_customer(cid, world.arrival_statics[cid])
            joined += 1
        until = shown_until(now)
        shown = background.iloc[position:until]
        ticks.append(
            PackedTick.of(
                TickEvents(
                    scratch.to_event_ops(shown[list(_EVENT_COLUMNS)]),
                    stamps[position:until].tolist(),
                    frozenset(shown["customer_id"].astype(str)),
                )
            )
        )
        position = until
    return ticks


def loop_start(world: ClosedLoopWorld, *, workers: int = 1) -> LoopStart:
    """The start of a run over ``world`` (see :class:`LoopStart`); ``workers`` processes
    convert the background (:func:`background_ticks`)."""
    online = OnlineProfiles(MemoryOnlineStore(), world.sim.products)
    online.materialise(world.build)
    history = world.history_contacts
    sent = pd.to_datetime(pd.Series(history["sent_at"]), utc=True).dt.floor("us")
    sends = pd.DataFrame({"customer_id": history["customer_id"].to_numpy(), "sent_at": sent})
    sends = sends.sort_values(["customer_id", "sent_at"], kind="stable")
    recent: dict[str, list[dt.datetime]] = {}
    moments = sends["sent_at"].array.to_pydatetime()
    for cid, moment in zip(sends["customer_id"], moments, strict=True):
        recent.setdefault(cid, []).append(moment)
    return LoopStart(online, recent, background_ticks(world, workers=workers))


def run_policy(
    world: ClosedLoopWorld,
    policy: Decider,
    *,
    name: str | None = None,
    contact_limits: Mapping[int, int] | None = None,
    keep_at_random: bool = False,
    progress: Progress | None = None,
    on_decision: Callable[[RoutedDecision], None] | None = None,
    learn: bool | MemoryResponseStats = True,
    half_life_days: float | None = None,
    start: LoopStart | None = None,
    on_tick: Callable[[int, int], None] | None = None,
) -> PolicyRun:
    """Run ``policy`` (a policy, a pipeline or an experiment's router: a
    :class:`~nba.pipeline.Decider`) over the world's days; see the module doc for the loop.

    With ``contact_limits`` (tick -> number of contacts), at most that many of a
    tick's decisions that contact someone are kept, those of highest priority;
    the others are held back (no contact, nothing consumed); with ``keep_at_random``
    the kept ones are a uniformly drawn subset instead (for a random policy, whose
    priorities mean nothing). It serves to compare policies at the same contact volume.

    ``on_decision`` is called with every decision and its arm, as made (e.g. to log it).
    ``learn`` keeps response statistics (``half_life_days`` their half-life, the default
    when omitted; or in the statistics given) and decides with them; without, every
    option keeps its prior.

    ``start`` is the state the run begins from (:func:`loop_start`; built here when
    omitted); the run changes it, so a start serves one run (or one forked process).
    ``on_tick(tick, contacts)`` is called as each tick ends, with the number of contacts
    decided at it (what a policy matched to this one is limited to at that tick).
    """
    started, cpu_started = time.perf_counter(), time.process_time()
    config = world.config
    name = name or policy.name
    start = start or loop_start(world)
    online = start.online
    audience = [p.customer_id for p in world.build.profiles]
    seat = {cid: i for i, cid in enumerate(audience)}  # a customer's place in the audience
    arrivals = list(world.arrivals.items())  # in order of sign-up
    joined = 0
    rows = {cid: i for i, cid in enumerate(world.response.customer_ids)}
    picker = _ProductPicker(world)
    stats = learn if isinstance(learn, MemoryResponseStats) else None
    if learn is True:
        stats = MemoryResponseStats(
            half_life_days=half_life_days or DEFAULT_HALF_LIFE_DAYS,
            margin_rates=margin_rates(world.sim.products),
        )
    contact_state = MemoryContactState(
        online.store, stats=stats, budget_zone=world.contact_policy.zone
    )
    lead = world.contact_policy.supersede_lead_minutes
    supersedes = lead is not None and policy_supersedes(policy)
    state = _State(contact_state, recent=start.recent, keep_scheduled=supersedes)
    replaced: dict[str, Supersession] = {}  # the decisions that replace scheduled ones

    prepare = tick_preparation(policy)
    step = dt.timedelta(hours=config.trigger_every_hours)
    n_ticks = config.days * 24 // config.trigger_every_hours
    decisions = _Table()  # its columns: those of the first row
    contacts = _Table(CONTACT_COLUMNS)

    def decide_again(
        tick: int, now: dt.datetime, today: dt.date, again: list[str]
    ) -> list[tuple[CustomerProfile, Decision]]:
        """The decisions of ``again`` (active customers with a message scheduled and not
        sent) that replace a scheduled message
        (:func:`~features.online.supersession.weigh_replacement`)."""
        made = []
        for cid in again:
            scheduled = state.pending(cid, now)
            if not scheduled:
                continue
            read = state.contacts.read_for_decision(cid, now)
            profile = online.from_stored(cid, read.stored, now)
            if profile is None:
                continue
            # as if the scheduled messages had not been decided: their actions' history
            # and their budgets given back
            history = unscheduled_history(
                read.history, [(s.pending.action_id, s.history_before) for s in scheduled]
            )
            usage = given_back(
                state.contacts.usage(today),
                [s.consumed for s in scheduled if s.day == today],
            )
            context = CustomerContext(profile, now, action_history=history)
            known = read.stats
            posteriors = None if known is None else known.posteriors(response_segment(profile))
            replacement = weigh_replacement(
                policy,
                world.contact_policy,
                context,
                [s.pending for s in scheduled],
                usage=usage,
                stats=posteriors,
                seed=f"{config.seed}:{cid}:{tick}",
            )
            if replacement is None:
                continue
            routed, verdict = replacement.routed, replacement.verdict
            decision = routed.decision
            replaced[decision.decision_id] = verdict
            if on_decision is not None:
                on_decision(routed)
            state.contacts.count_usage(today, decision.consumed)
            made.append((profile, decision))
        return made

    def decide_tick(
        tick: int,
        now: dt.datetime,
        today: dt.date,
        who: list[str],
        daily: bool,
        again: list[str] = [],  # noqa: B006 (read only)
    ) -> int:
        """Decide for ``who`` at ``now`` (``today``: the retailer's day, its budgets'),
        and for ``again`` where a new contact replaces a scheduled one; deliver the
        contacts; the number of contacts."""
        made: list[tuple[CustomerProfile, Decision]] = []
        for begin in range(0, len(who), PREPARED_DECISIONS):
            # nothing a decision reads changes within a tick but the day's budgets
            # (``usage``, read again before each decision): the chunk is read at once
            reads = []
            for cid in who[begin : begin + PREPARED_DECISIONS]:
                read = state.contacts.read_for_decision(cid, now)
                profile = online.from_stored(cid, read.stored, now)
                if profile is not None:
                    reads.append(
                        (CustomerContext(profile, now, action_history=dict(read.history)), read)
                    )
            if prepare is not None:
                prepare([(context, read.usage) for context, read in reads])
            for context, read in reads:
                profile, cid = context.profile, context.customer_id
                known = read.stats
                posteriors = None if known is None else known.posteriors(response_segment(profile))
                routed = policy.route(
                    context,
                    usage=state.contacts.usage(today),
                    stats=posteriors,
                    seed=f"{config.seed}:{cid}:{tick}",
                )
                if on_decision is not None:
                    on_decision(routed)
                decision = routed.decision
                # counted at once, so that the tick's next decisions see the budgets it used
                state.contacts.count_usage(today, decision.consumed)
                made.append((profile, decision))
        if again:
            made += decide_again(tick, now, today, again)
        held: set[str] = set()
        if contact_limits is not None:
            draw = f"{config.seed}:{tick}" if keep_at_random else None
            held = _held_back(made, contact_limits.get(tick, 0), draw)
            for _, decision in made:
                if decision.decision_id in held:
                    state.contacts.count_usage(today, decision.consumed, sign=-1)
        chosen: list[tuple[CustomerProfile, Decision, ChosenAction, int]] = []
        for profile, decision in made:
            cid = profile.customer_id
            first = decision.actions[0] if decision.actions else None
            verdict = replaced.pop(decision.decision_id, None)
            if verdict is not None and decision.decision_id not in held:
                state.cancel(cid, verdict.replaces)
            row = {
                "decision_id": decision.decision_id,
                "customer_id": cid,
                "decided_at": now,
                "trigger": "daily" if daily and verdict is None else "activity",
                "action_id": None if first is None else first.action_id,
                "channel": None if first is None or first.channel is None else first.channel.value,
                "propensity": decision.propensity,
                "explored": bool(first is not None and first.explored),
                "eligible": len(decision.eligible_action_ids),
                "held_back": decision.decision_id in held,
            }
            if supersedes:  # the scheduled messages it replaced, and why (in words)
                row["replaces"] = "" if verdict is None else ",".join(verdict.replaces)
                row["replaces_why"] = "" if verdict is None else verdict.reason
            decisions.add(row)
            if decision.decision_id in held:
                continue
            if state.contacts.stats is not None:
                state.contacts.stats.record_decision(decision, response_segment(profile))
            for rank, action in enumerate(decision.contacts):
                chosen.append((profile, decision, action, rank))
        for contact in _deliver(world, state, picker, rows, tick, chosen):
            contacts.add(contact)
        return len(chosen)

    for tick in range(n_ticks):
        now = world.cut + tick * step
        today = state.contacts.budget_day(now)  # the retailer's day: its budgets' day
        shown = start.ticks[tick].unpack()
        while joined < len(arrivals) and arrivals[joined][1] <= now:
            cid = arrivals[joined][0]  # signs up: known from now on, events follow
            online.register_customer(cid, world.arrival_statics[cid])
            seat[cid] = len(audience)
            audience.append(cid)
            joined += 1
        released = state.release(now)
        state.learn(released)
        if shown.ops or released:
            applied = online.store.apply(shown.merged(online, released))
            state.refused += applied.duplicate + applied.stale + applied.late
        daily = (tick * config.trigger_every_hours) % 24 == config.decision_hour_utc
        if daily:
            candidates = audience
        else:  # the active customers who joined, in audience order
            candidates = sorted((c for c in shown.active if c in seat), key=seat.__getitem__)
        who = [cid for cid in candidates if state.in_flight.get(cid, now) <= now]
        again = []
        if supersedes:  # active customers whose message is scheduled, not sent
            again = sorted(
                (c for c in shown.active if c in state.scheduled and c in seat),
                key=seat.__getitem__,
            )
        # a decision leaves no reference cycle (tests/test_batch_decisions.py): the cycle
        # collector, which would walk the tick's young objects again and again, waits;
        # it resumes once the tick's decisions are gone (``decide_tick``'s locals), so
        # that its first pass does not walk them either (at 2,000 x 5 days it walked
        # ~100,000 objects of decisions still held after each daily tick)
        with paused_gc():
            sent = decide_tick(tick, now, today, who, daily, again)
        if on_tick is not None:
            on_tick(tick, sent)
        if progress is not None:
            progress(tick + 1, n_ticks)
    sent_contacts = contacts.frame()
    if state.cancelled:  # the withdrawn messages did not go
        gone = sent_contacts["decision_id"].isin(state.cancelled)
        sent_contacts = sent_contacts[~gone].reset_index(drop=True)
    return PolicyRun(
        policy=name,
        decisions=decisions.frame(),
        contacts=sent_contacts,
        withdrawals=dict(state.withdrawals),
        events=state.emitted,
        refused_events=state.refused,
        seconds=time.perf_counter() - started,
        cpu_seconds=time.process_time() - cpu_started,
    )


@runtime_checkable
class TickPrepared(Protocol):
    """A decider that prepares the decisions of a tick before they are made, e.g. values
    all their options in one call (:class:`~simulator.closed_loop.oracle.OraclePolicy`)."""

    def prepare_tick(self, decisions: Sequence[tuple[CustomerContext, UsageCounts]]) -> None:
        """Called with the contexts of the next decisions (as the decider will see them)
        and the day's budgets used so far; the decisions follow in that order, each with
        the budgets used by then. Preparing must not change what they decide."""


Prepare = Callable[[Sequence[tuple[CustomerContext, UsageCounts]]], None]


def tick_preparation(policy: Decider) -> Prepare | None:
    """``policy``'s :meth:`TickPrepared.prepare_tick`, also through a pipeline (given the
    contexts the pipeline prepares for its decider); ``None`` when it has none."""
    if isinstance(policy, TickPrepared):
        return policy.prepare_tick
    if isinstance(policy, DecisionPipeline) and isinstance(policy.decider, TickPrepared):
        pipeline, hook = policy, policy.decider.prepare_tick
        return lambda decisions: hook([(pipeline.prepare(c), u) for c, u in decisions])
    return None


def _held_back(
    made: list[tuple[CustomerProfile, Decision]], limit: int, draw: str | None = None
) -> set[str]:
    """Ids of the contacting decisions beyond the ``limit`` of highest priority, or,
    with a ``draw`` seed, beyond ``limit`` drawn uniformly (reproducibly)."""
    contacting = [(p.customer_id, d) for p, d in made if d.contacts]
    if draw is None:
        contacting.sort(key=lambda c: -c[1].contacts[0].priority)
    else:
        contacting.sort(key=lambda c: hashlib.blake2b(f"{draw}:{c[0]}".encode()).digest())
    return {d.decision_id for _, d in contacting[max(0, limit) :]}


CONTACT_COLUMNS = (
    "decision_id",
    "customer_id",
    "action_id",
    "action_type",
    "channel",
    "decided_at",
    "sent_at",
    "offer_id",
    "kind",
    "category",
    "product",
    "recent_contacts",
    "delivered",
    "opened",
    "clicked",
    "converted",
    "unsubscribed",
    "revenue",
    "margin",
    "purchase_lift",
    "order_value",
)


class _Table:
    """A run's rows kept as one list per column: a dict per row costs about twice the
    memory (40 against 21 MB per 100,000 decisions): ~0.4 GB per policy process for the
    decisions alone at 100,000 customers x 30 days."""

    def __init__(self, columns: tuple[str, ...] = ()) -> None:
        self.columns: dict[str, list[Any]] = {name: [] for name in columns}

    def add(self, row: Mapping[str, Any]) -> None:
        if not self.columns:
            self.columns = {name: [] for name in row}
        for name, values in self.columns.items():
            values.append(row[name])

    def frame(self) -> pd.DataFrame:
        return pd.DataFrame(self.columns)


@dataclass(frozen=True)
class _Send:
    """One chosen contact of a tick, with its message and the customer's recent contacts."""

    profile: CustomerProfile
    decision: Decision
    action: ChosenAction
    rank: int
    message: Message
    recent: int

    @property
    def channel(self) -> Channel:
        assert self.action.channel is not None
        return self.action.channel

    @property
    def send_at(self) -> dt.datetime:
        assert self.action.send_at is not None
        return self.action.send_at


def _deliver(
    world: ClosedLoopWorld,
    state: _State,
    picker: _ProductPicker,
    rows: dict[str, int],
    tick: int,
    chosen: list[tuple[CustomerProfile, Decision, ChosenAction, int]],
) -> list[dict[str, Any]]:
    """Answer the tick's contacts, schedule their outcome events, value them."""
    if not chosen:
        return []
    config = world.config
    sends = []
    for profile, decision, action, rank in chosen:
        if action.channel is None or action.send_at is None:
            raise ValueError(f"contact {action.action_id!r} has no channel or send time")
        require_simulated(action.channel)
        message = world.mapping.message(world.catalog[action.action_id], profile)
        recent = state.recent_contacts(profile.customer_id, action.send_at)
        sends.append(_Send(profile, decision, action, rank, message, recent))
    customers = [s.profile.customer_id for s in sends]
    channels = [s.channel for s in sends]
    times = [s.send_at for s in sends]
    messages = [s.message for s in sends]
    recents = [s.recent for s in sends]
    value = world.truth.incremental(customers, channels, times, messages, recents)
    streams = MessageStreams(
        [[config.seed, rows[s.profile.customer_id], tick, s.rank] for s in sends]
    )
    outcome = world.response.sample(
        streams,  # type: ignore[arg-type]
        np.array(customers, dtype=object),
        np.array([c.value for c in channels], dtype=object),
        as_ns(times),
        kind=np.array([m.kind for m in messages], dtype=object),
        category=np.array([m.category for m in messages], dtype=object),
        product=np.array([m.product for m in messages], dtype=object),
        offer=np.array([m.offer for m in messages], dtype=object),
        recent_contacts=np.array(recents, dtype=float),
    )
    out = []
    for k, send in enumerate(sends):
        converted = bool(outcome.converted[k])
        unsubscribed = bool(outcome.unsubscribed[k])
        order_value = _schedule_outcomes(
            world,
            state,
            picker,
            send,
            streams.streams[k],
            delivered=bool(outcome.delivered[k]),
            opened=bool(outcome.opened[k]),
            clicked=bool(outcome.clicked[k]),
            converted=converted,
            unsubscribed=unsubscribed,
        )
        out.append(
            {
                "decision_id": send.decision.decision_id,
                "customer_id": send.profile.customer_id,
                "action_id": send.action.action_id,
                "action_type": send.action.action_type.value,
                "channel": send.channel.value,
                "decided_at": send.decision.decided_at,
                "sent_at": send.send_at,
                "offer_id": send.action.offer_id,
                "kind": send.message.kind,
                "category": send.message.category,
                "product": send.message.product,
                "recent_contacts": send.recent,
                "delivered": bool(outcome.delivered[k]),
                "opened": bool(outcome.opened[k]),
                "clicked": bool(outcome.clicked[k]),
                "converted": converted,
                "unsubscribed": unsubscribed,
                "revenue": float(value.revenue[k]),
                "margin": float(value.margin[k]),
                "purchase_lift": float(value.purchase[k]),
                "order_value": order_value,
            }
        )
    return out


def _schedule_outcomes(
    world: ClosedLoopWorld,
    state: _State,
    picker: _ProductPicker,
    send: _Send,
    rng: np.random.Generator,
    *,
    delivered: bool,
    opened: bool,
    clicked: bool,
    converted: bool,
    unsubscribed: bool,
) -> float:
    """Queue the contact's events and bookkeeping; return the value of its order (0 if none)."""
    config = world.config
    cid, channel, send_at = send.profile.customer_id, send.channel, send.send_at
    base: dict[str, Any] = {
        "customer_id": cid,
        "channel": channel.value,
        "decision_id": send.decision.decision_id,
        "offer_id": send.action.offer_id,
    }

    def emit(kind: EventType, at: dt.datetime, fields: dict[str, Any] = base, **extra: Any) -> None:
        event_id = f"{fields['decision_id']}:{kind.value}"
        state.push(
            at, {**fields, "event_id": event_id, "timestamp": at, "event_type": kind.value, **extra}
        )

    emitted = state.emitted
    emit(EventType.MESSAGE_SENT, send_at)
    if delivered:
        emit(EventType.MESSAGE_DELIVERED, send_at + OUTCOME_DELAYS[EventType.MESSAGE_DELIVERED])
    if opened and CHANNEL_RESPONSE[channel].tracks_opens:
        emit(EventType.MESSAGE_OPENED, send_at + OUTCOME_DELAYS[EventType.MESSAGE_OPENED])
    if clicked:
        emit(EventType.MESSAGE_CLICKED, send_at + OUTCOME_DELAYS[EventType.MESSAGE_CLICKED])
    unsubscribed_at = None
    if unsubscribed:
        unsubscribed_at = send_at + OUTCOME_DELAYS[EventType.UNSUBSCRIBE]
        emit(EventType.UNSUBSCRIBE, unsubscribed_at)
        state.withdrawals.setdefault((cid, channel), unsubscribed_at)
    order_value = 0.0
    if converted:
        product, price = picker.pick(rng, send.message, send.profile)
        order_value = _after_offer(price, world.catalog[send.action.action_id].offer)
        bought = send_at + dt.timedelta(hours=config.purchase_delay_hours)
        web = {**base, "channel": Channel.WEB.value}
        emit(EventType.PURCHASE, bought, web, product_id=product, quantity=1, revenue=order_value)
        delivered_at = bought + dt.timedelta(days=config.delivery_days)
        emit(EventType.ORDER_DELIVERED, delivered_at, {**web, "offer_id": None}, product_id=product)
    done = send_at + dt.timedelta(hours=config.outcome_hours)
    if state.keep_scheduled and send_at > send.decision.decided_at:
        decision = send.decision
        mine = state.scheduled.get(cid, [])  # those gone by now are forgotten
        mine = state.scheduled[cid] = [s for s in mine if s.pending.send_at > decision.decided_at]
        mine.append(
            _Scheduled(
                Pending(
                    decision.decision_id,
                    send.action.action_id,
                    channel,
                    send_at,
                    send.action.priority,
                ),
                state.contacts.history(cid).get(send.action.action_id),
                state.in_flight.get(cid),
                unsubscribed_at,
                state.emitted - emitted,
                state.contacts.budget_day(decision.decided_at),
                decision.consumed if send.rank == 0 else Consumption(),
                # the exposure the statistics counted for the decision (its first contact)
                Exposure.of(decision, response_segment(send.profile))
                if send.rank == 0 and state.contacts.stats is not None
                else None,
            )
        )
    state.in_flight[cid] = max(done, state.in_flight.get(cid, done))
    state.contacts.record_sent(cid, {send.action.action_id: send_at})
    bisect.insort(state.recent.setdefault(cid, []), send_at)
    return order_value


def _after_offer(price: float, offer: Any) -> float:
    """What the customer pays for ``price`` with the action's offer redeemed."""
    if offer is None:
        return price
    if offer.kind == OfferKind.PERCENT_DISCOUNT:
        return price * (1.0 - offer.value / 100.0)
    if offer.kind == OfferKind.FIXED_DISCOUNT:
        return max(0.0, price - offer.value)
    return price


def _loop_rows(released: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    """The loop's released events as :meth:`~features.online.profiles.OnlineProfiles.row_ops`
    rows (in release order: time order); the loop's events carry no properties."""
    return [
        (
            e["customer_id"],
            e["event_id"],
            (e["timestamp"] - _EPOCH) // _SECOND,
            e["event_type"],
            e["channel"],
            e.get("product_id"),
            e["offer_id"],
            e.get("revenue"),
            None,
        )
        for e in released
    ]


def _loop_frame(released: list[dict[str, Any]]) -> pd.DataFrame:
    """The loop's released events as a contract events frame (in release order: time order)."""
    loop = pd.DataFrame(released, columns=list(_EVENT_COLUMNS))
    loop["timestamp"] = pd.to_datetime(loop["timestamp"], utc=True).astype("datetime64[ns, UTC]")
    loop["quantity"] = loop["quantity"].astype("Int64")
    loop["revenue"] = loop["revenue"].astype(float)
    return loop
