"""Decisions for the API: profile from the online store, policy from :mod:`nba`, products.

One request reads the customer's profile, action history, the contacts it decided
that no ``message_sent`` has reported yet (they count toward the rolling caps as
reported ones do), today's usage and the response statistics (per action, channel
and segment) in one round trip
(:class:`~features.online.contact_state.ContactState`), decides with the
champion models (rules when none is registered), attaches products to the
chosen actions (never one out of stock, :class:`~features.online.stock.StockLevels`:
the engine sees the cart and browsed products that can be bought), records what
was sent and counts it as an exposure in the statistics (one more round trip), and
logs the decision. The engine explores with the statistics of the customer's
segment: the more evidence, the less it explores. The fallbacks never break consent:

- Redis unreachable: the customer is treated as unknown, so consent cannot be
  shown and no outbound contact is chosen; on-site and in-app placements still
  get content, with products from popularity. The answer is ``degraded``.
- unknown customer: a cold-start decision (same safety: no consent known).
- no model registered: rule-based scores (``model_version`` is ``rules``).

An ``Idempotency-Key`` seeds the policy's draws and stores the answer for
``idempotency_hours``, scoped to the API key that sent it and fingerprinted: a
retried request returns the same decision; the same key with another request is a
422 naming the key; another API key's same key is another request.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import hashlib
import logging
import random
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import orjson

from features.online.contact_state import (
    CancelledSend,
    ContactState,
    DecisionRead,
    DecisionRecord,
    DecisionState,
    RedisContactState,
    ScheduledDecision,
    with_own_contacts,
)
from features.online.erasure import RedisErasure
from features.online.profiles import OnlineProfiles
from features.online.response_stats import ResponseTable, SegmentPosteriors, response_segment
from features.online.stock import StockLevels
from features.online.supersession import (
    supersedes,
    unscheduled_history,
    unsendable_sends,
    weigh_replacement,
    withdrawable,
)
from nba.budgets import UsageCounts, given_back
from nba.catalog import Catalog
from nba.channels import Channel
from nba.contact_policy import ContactPolicy
from nba.context import CustomerContext, Session
from nba.decision import ChosenAction, Decision, LoggedDecision, RoutedDecision
from nba.experiment import ArmKind, ExperimentConfig
from nba.frozen import fast_init
from nba.pipeline import DecisionPipeline, build_pipeline
from nba.profile import CustomerProfile
from nba.screening import Restriction
from nba.supersession import Pending, Supersession
from serving.errors import ErrorDetail, InvalidRequestError
from serving.metrics import ApiMetrics
from serving.models import ModelManager, ModelSet
from serving.products import (
    POPULAR_KEPT,
    RECOMMENDED,
    PopularProducts,
    products_for,
    recommendations,
)
from serving.redis_gate import RedisDownError, RedisGate
from serving.schemas import DecisionContext

log = logging.getLogger("nba.api")

#: Popularity points per event type (views count little, purchases most).
POPULARITY_POINTS = {"product_view": 1.0, "add_to_cart": 3.0, "purchase": 5.0}


#: A worker's statistics table serves decisions for moments within this share of the
#: evidence's half-life of its own (see ``DecisionService._fresh_stats``).
MOMENT_SHARE = 1_000.0
#: orjson options of a decision's JSON: UTC times end in ``Z``, as pydantic writes them.
JSON = orjson.OPT_UTC_Z


@fast_init
@dataclass(frozen=True)
class Answer:
    """A decision as the API answers it: the JSON body, and the record to log before
    answering (``None`` when the answer is a replay, logged when it was first made)."""

    body: bytes
    logged: LoggedDecision | None


@fast_init
@dataclass(frozen=True)
class Asked:
    """One ``POST /v1/decisions`` request as the service takes it (see
    :meth:`DecisionService.answer`)."""

    customer_id: str
    context: DecisionContext
    idempotency_key: str | None = None
    caller: str = "anonymous"


@fast_init
@dataclass(frozen=True)
class _Prepared:
    asked: Asked
    restriction: Restriction | None
    now: dt.datetime
    stored_key: str | None
    fingerprint: str
    table: ResponseTable | None
    read: DecisionRead


@fast_init
@dataclass(frozen=True)
class _Decided:
    record: DecisionRecord
    response: dict[str, Any]
    arm: str | None


@dataclass(frozen=True)
class _Replacing:
    """A decision made as if the customer's scheduled messages had not been, that
    replaces some of them (:func:`~nba.supersession.supersede`)."""

    routed: RoutedDecision
    context: CustomerContext
    usage: UsageCounts
    verdict: Supersession
    cancels: tuple[CancelledSend, ...]


class DecisionSink(Protocol):
    """Where decisions are logged (the experiments' decision log)."""

    def append(self, decisions: Sequence[LoggedDecision]) -> None: ...


class DecisionService:
    """Answers ``/v1/decisions`` (wired by :func:`serving.app.create_app`)."""

    def __init__(
        self,
        *,
        profiles: OnlineProfiles,
        contacts: ContactState,
        gate: RedisGate,
        catalog: Catalog,
        contact_policy: ContactPolicy,
        models: ModelManager,
        metrics: ApiMetrics,
        popular: PopularProducts,
        stock: StockLevels | None = None,
        sink: DecisionSink | None = None,
        experiment: ExperimentConfig | None = None,
        clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
        stats_refresh_seconds: float = 1.0,
    ) -> None:
        self.profiles = profiles
        self.contacts = contacts
        self.gate = gate
        self.catalog = catalog
        self._action_ids = frozenset(catalog.ids)
        self.contact_policy = contact_policy
        self.models = models
        self.metrics = metrics
        self.popular = popular
        #: what can be sold: a product out of stock is never recommended nor in a message
        self.stock = stock or StockLevels(None, "")
        self.sink = sink
        self.experiment = experiment
        if experiment is not None:
            check_servable(experiment)
        self.clock = clock
        self.stats_refresh_seconds = stats_refresh_seconds
        self._stats: tuple[float, ResponseTable] | None = None  # (fetched, monotonic; table)
        self._stats_refreshing = False  # a request is reading the next table
        self._policies: dict[tuple[int, int], DecisionPipeline] = {}
        self._lock = threading.Lock()
        self._decision_counters: dict[tuple[str, Channel | None], Any] = {}

    # ------------------------------------------------------------------ policy
    def policy(self, models: ModelSet, max_actions: int) -> DecisionPipeline:
        """The decision pipeline for this model set: the engine, behind the experiment's
        router when one runs (built once per model set and size, then reused)."""
        key = (id(models), max_actions)
        policy = self._policies.get(key)
        if policy is None:
            with self._lock:
                if len(self._policies) > 64:
                    self._policies.clear()
                policy = self._build_policy(models, max_actions)
                self._policies[key] = policy
        return policy

    def _build_policy(self, models: ModelSet, max_actions: int) -> DecisionPipeline:
        return build_pipeline(
            self.catalog,
            self.contact_policy,
            scorer=models.scorer,
            experiment=self.experiment,
            max_actions=max_actions,
        )

    def restriction(self, context: DecisionContext) -> Restriction | None:
        ids = None
        if context.actions is not None:
            unknown = sorted(set(context.actions) - self._action_ids)
            if unknown:
                raise InvalidRequestError(
                    f"context.actions: unknown action ids {unknown} (the catalog has "
                    f"{len(self._action_ids)} actions; GET /docs lists none of them by design)"
                )
            ids = frozenset(context.actions)
        channels = None if context.channel is None else frozenset({context.channel})
        if ids is None and channels is None:
            return None
        return Restriction(action_ids=ids, channels=channels)

    # ------------------------------------------------------------------ decide
    def answer_logged(
        self,
        customer_id: str,
        context: DecisionContext,
        idempotency_key: str | None = None,
        *,
        caller: str = "anonymous",
    ) -> bytes:
        """The JSON of :meth:`answer`, its decision logged to the sink before it returns.

        Concurrent callers (``POST /v1/decisions`` in the thread pool, the batch endpoint)
        share the sink's group commit: one ``fsync`` for the records written meanwhile.
        """
        answer = self.answer(customer_id, context, idempotency_key, caller=caller)
        if answer.logged is not None and self.sink is not None:
            self.sink.append([answer.logged])
        return answer.body

    def answer(
        self,
        customer_id: str,
        context: DecisionContext,
        idempotency_key: str | None = None,
        *,
        caller: str = "anonymous",
    ) -> Answer:
        """The decision for ``customer_id`` as the JSON of a :class:`DecisionResponse`, and
        the record the caller must log before answering (``None`` for a replay).

        ``caller`` (the API key's name) scopes the ``idempotency_key``: the same key from
        another caller is another request."""
        (answer,) = self.answer_all([Asked(customer_id, context, idempotency_key, caller)])
        if isinstance(answer, Exception):
            raise answer
        return answer

    def answer_all(self, asked: Sequence[Asked]) -> list[Answer | Exception]:
        """:meth:`answer` for each request of ``asked``, in order: their states read in one
        round trip, decided one after the other, their records written in one more. A
        request's own error (an unknown action, a reused idempotency key) is its result,
        and the others are answered. Two requests for one customer are one customer's two
        decisions only in two calls: the second must read what the first recorded."""
        results: list[Answer | Exception | None] = [None] * len(asked)
        todo: list[tuple[int, _Prepared]] = []
        for i, one in enumerate(asked):
            try:
                todo.append((i, self._prepare(one)))
            except InvalidRequestError as error:
                results[i] = error
        degraded: str | None = None
        try:
            reads = self.gate.call(
                lambda: self.contacts.read_for_decisions([p.read for _, p in todo])
            )
        except RedisDownError:
            degraded = "redis_unavailable"
            reads = [DecisionState() for _ in todo]
        erased = set() if degraded is not None else self._erased(todo, reads)
        decided: list[tuple[int, _Decided]] = []
        # what the batch's earlier decisions consumed, by day: a later one reads its usage
        # as it would after their records (offer budgets and action volumes hold within
        # a batch as between two requests)
        spent: dict[dt.date, tuple[Counter[str], Counter[str]]] = {}
        for (i, prepared), read in zip(todo, reads, strict=True):
            try:
                if read.answer is not None:
                    results[i] = Answer(
                        _replay(read.answer, prepared.fingerprint, prepared.asked.idempotency_key),
                        None,
                    )
                    continue
                day = self.contacts.budget_day(prepared.now)
                if day in spent:
                    read = dataclasses.replace(read, usage=_plus(read.usage, spent[day]))
                done = self._decide(prepared, read, degraded)
                if i in erased:  # answered as an unknown visitor; nothing of them is kept
                    results[i] = Answer(orjson.dumps(done.response, option=JSON), None)
                    continue
                decided.append((i, done))
                consumed = done.record.decision.consumed
                if consumed.offers_given or consumed.actions_sent:
                    offers, actions = spent.setdefault(day, (Counter(), Counter()))
                    offers.update(consumed.offers_given)
                    actions.update(consumed.actions_sent)
            except InvalidRequestError as error:
                results[i] = error
        if degraded is None and decided:
            try:
                self.gate.call(lambda: self.contacts.record_all([d.record for _, d in decided]))
            except RedisDownError:
                for _, d in decided:
                    d.response["degraded"] = True
                    d.response["degraded_reason"] = "history_not_recorded"
        for i, d in decided:
            self._count(d.record.decision, d.response)
            logged = d.record.decision.log(arm=d.arm, model_version=d.response["model_version"])
            if d.record.cancels:  # the log names the withdrawn decisions: they did not go
                logged = dataclasses.replace(logged, replaces=tuple(d.response["replaces"]))
            results[i] = Answer(orjson.dumps(d.response, option=JSON), logged)
        return [r for r in results if r is not None]

    def _erased(
        self, todo: Sequence[tuple[int, _Prepared]], reads: Sequence[DecisionState]
    ) -> set[int]:
        """The requests (by index) for customers erased (``DELETE /v1/customers/{id}``)
        whose erasure is still kept and who have no profile since: their decision must
        not recreate what the erasure deleted (history, decided contacts, a cached
        answer, a decision-log record). One more round trip, for unknown customers
        only."""
        unknown = {
            i: p.asked.customer_id
            for (i, p), read in zip(todo, reads, strict=True)
            if read.stored is None and read.answer is None
        }
        contacts = self.contacts
        if not unknown or not isinstance(contacts, RedisContactState):
            return set()
        try:
            gone = self.gate.call(lambda: RedisErasure(contacts).erased(list(unknown.values())))
        except RedisDownError:
            return set()
        return {i for i, customer in unknown.items() if customer in gone}

    def _prepare(self, asked: Asked) -> _Prepared:
        """What a request asks, checked, before any read (raises its own 422)."""
        context = asked.context
        restriction = self.restriction(context)
        now = (context.timestamp or self.clock()).astimezone(dt.UTC)
        key = asked.idempotency_key
        stored_key = None if key is None else f"{asked.caller}|{key}"
        # only a keyed request is replayed, so only it needs its fingerprint
        fingerprint = "" if stored_key is None else request_fingerprint(asked.customer_id, context)
        table = self._fresh_stats(now)
        read = DecisionRead(asked.customer_id, now, stored_key, with_stats=table is None)
        return _Prepared(asked, restriction, now, stored_key, fingerprint, table, read)

    def _decide(self, prepared: _Prepared, read: DecisionState, degraded: str | None) -> _Decided:
        """A request's decision and answer from its state (not recorded yet)."""
        asked, now, table = prepared.asked, prepared.now, prepared.table
        context, customer_id = asked.context, asked.customer_id
        if table is None and read.stats is not None:
            table = read.stats
            self._stats = (time.monotonic(), table)
            self._stats_refreshing = False

        models = self.models.current
        known = stored = self.profiles.from_stored(customer_id, read.stored, now)
        own, unconsented = read.contacts, None
        history, usage = read.history, read.usage
        if stored is not None and own:
            # a message decided earlier whose channel's consent is gone since, or whose
            # send now falls in quiet hours (the customer's zone changed), is withdrawn,
            # however close its send: supersession's lead weighs trade-offs, not these
            day = self.contacts.budget_day(now)
            unconsented = unsendable_sends(
                stored, own, now, day, read.scheduled, self.contact_policy
            )
            if unconsented is not None:
                withdrawn = unconsented[1]
                gone = {(d.decision_id, ch) for d in withdrawn for ch in d.channels}
                own = tuple(c for c in own if (c.decision_id, c.channel) not in gone)
                # what a withdrawn message's record gives back counts in this decision too
                history = unscheduled_history(
                    history, (item for d in withdrawn for item in d.history.items())
                )
                usage = given_back(usage, [d.consumed for d in withdrawn if d.day == day])
        if known is not None and own:  # its own sends not reported yet count too
            known = with_own_contacts(known, own, now)
        if known is not None:  # the cart and browsed products that can be bought
            known = self._sellable(known)
        profile = known or CustomerProfile(customer_id, as_of=now)
        ctx = CustomerContext(
            profile,
            now,
            session=_session(context, now),
            action_history=dict(history),
            has_new_arrivals=self.stock.has_arrivals_to_show(profile),
        )
        max_actions = min(context.max_actions, len(self._action_ids))
        # a fresh seed per unkeyed decision, as random as the draws it seeds need (not a
        # secret): os.urandom's system call lets go of the interpreter lock, and a decider
        # thread then waits for the event loop to hand it back (BENCHMARKS.md, issue 15
        # items 1-2, fifth pass)
        seed: int | str = asked.idempotency_key or f"{random.getrandbits(64):016x}"
        segment = response_segment(profile)
        stats = None if table is None else table.posteriors(segment)
        policy = self.policy(models, max_actions)
        replacing = None
        if read.scheduled and stored is not None:
            mine = dataclasses.replace(read, contacts=own, history=history, usage=usage)
            replacing = self._replacing(policy, prepared, mine, stored, stats, seed)
        if replacing is None:
            routed = policy.route(
                ctx, usage=usage, stats=stats, seed=seed, restriction=prepared.restriction
            )
        else:
            routed, ctx, usage = replacing.routed, replacing.context, replacing.usage
        decision, arm = routed.decision, routed.arm_name
        response = self._response(decision, ctx, models, known is None, degraded, arm)
        cancels: tuple[CancelledSend, ...] = ()
        for withdrawal, cancelled in (
            (None, ()) if unconsented is None else unconsented,
            (None, ()) if replacing is None else (replacing.verdict, replacing.cancels),
        ):
            if withdrawal is None:
                continue
            taken = {c.decision_id for c in cancelled}
            cancels = (*(c for c in cancels if c.decision_id not in taken), *cancelled)
            response["replaces"] = list(
                dict.fromkeys((*response["replaces"], *withdrawal.replaces))
            )
            response["actions"][0]["reasons"].append(withdrawal.reason)
        stored_key = prepared.stored_key
        answer = (
            None
            if stored_key is None
            else f"{prepared.fingerprint}\n{orjson.dumps(response, option=JSON).decode()}"
        )
        scheduled = (
            ScheduledDecision.of(
                decision,
                ctx.action_history,
                self.contacts.budget_day(now),
                # its exposure, to withdraw from the statistics if the message is withdrawn
                None if self.contacts.stats is None else segment,
            )
            if self.contacts.keeps_scheduled
            else None
        )
        record = DecisionRecord(
            decision,
            stored_key,
            answer,
            segment,
            scheduled,
            cancels,
        )
        return _Decided(record, response, arm)

    def _replacing(
        self,
        policy: DecisionPipeline,
        prepared: _Prepared,
        read: DecisionState,
        known: CustomerProfile,
        stats: SegmentPosteriors | None,
        seed: int | str,
    ) -> _Replacing | None:
        """The decision that replaces some of the customer's scheduled messages, or
        ``None`` (decide as usual): the customer as if the messages due later had not
        been scheduled (their contacts, history and budgets given back), weighed by
        :func:`~features.online.supersession.weigh_replacement` as the closed loop weighs
        it. CPU only: everything it reads came with the decision's read (less the messages
        already withdrawn for their consent, and what those gave back)."""
        now = prepared.now
        if not supersedes(policy):
            return None  # an experiment's router, a baseline: nothing is replaced
        waiting = [
            (c, read.scheduled[c.decision_id])
            for c in read.contacts
            if c.at > now and c.decision_id in read.scheduled
        ]
        pending = [
            Pending(c.decision_id, action, c.channel, c.at, priority)
            for c, kept in waiting
            for action, channel, priority in kept.contacts
            if channel == c.channel
        ]
        lead = self.contact_policy.supersede_lead_minutes
        if lead is None or not withdrawable(pending, now, dt.timedelta(minutes=lead)):
            return None  # none can be withdrawn in time: no need to decide twice
        held = {p.decision_id for p in pending}
        kept_by_id = {kept.decision_id: kept for _, kept in waiting}
        others = [c for c in read.contacts if c.decision_id not in held]
        history = unscheduled_history(
            read.history,
            (before for kept in kept_by_id.values() for before in kept.history_before.items()),
        )
        day = self.contacts.budget_day(now)
        usage = given_back(read.usage, [k.consumed for k in kept_by_id.values() if k.day == day])
        base = self._sellable(with_own_contacts(known, others, now))
        session = _session(prepared.asked.context, now)
        ctx = CustomerContext(
            base,
            now,
            session=session,
            action_history=history,
            has_new_arrivals=self.stock.has_arrivals_to_show(base),
        )
        replacement = weigh_replacement(
            policy,
            self.contact_policy,
            ctx,
            pending,
            usage=usage,
            stats=stats,
            seed=seed,
            restriction=prepared.restriction,
        )
        if replacement is None:
            return None
        verdict = replacement.verdict
        cancels = tuple(kept_by_id[d].cancelled() for d in verdict.replaces)
        return _Replacing(replacement.routed, ctx, usage, verdict, cancels)

    def _sellable(self, profile: CustomerProfile) -> CustomerProfile:
        """``profile`` without the products out of stock (the levels other replicas set
        are read at most every second; with Redis down, the levels known are kept)."""
        if self.stock.due():
            with contextlib.suppress(RedisDownError):
                self.gate.call(self.stock.refresh)
        return self.stock.sellable(profile)

    def _fresh_stats(self, now: dt.datetime) -> ResponseTable | None:
        """The response statistics read less than ``stats_refresh_seconds`` ago for a moment
        as close to ``now``, or ``None`` (read them with the decision's other reads).

        One table per worker and second instead of the whole table per request: the
        exposures counted meanwhile join the next table; a second is nothing against
        the evidence's half-life (days). A request for a moment of its own (a
        ``timestamp`` in the context, e.g. the triggering event's) shares the table when
        that moment is within a thousandth of the half-life of the table's (20 minutes
        at 14 days: the evidence's weights differ by under 0.07 %); further away, it
        reads a table of its own."""
        cached = self._stats
        if cached is None or self.contacts.stats is None:
            return None
        fetched, table = cached
        limit = self.stats_refresh_seconds
        near = max(limit, self.contacts.stats.half_life / MOMENT_SHARE)
        if abs((now - table.as_of).total_seconds()) > near:
            return None  # a decision for another moment: a table of its own
        age = time.monotonic() - fetched
        if age > limit:
            # stale: the first request to see it reads the next table with its other
            # reads; the requests that start before that read returns keep to this one
            # (a moment older) instead of each reading and parsing the whole table again
            if self._stats_refreshing and age <= 2 * limit:
                return table
            self._stats_refreshing = True
            return None
        return table

    # ------------------------------------------------------------------ answer
    def _response(
        self,
        decision: Decision,
        ctx: CustomerContext,
        models: ModelSet,
        cold_start: bool,
        degraded: str | None,
        arm: str | None,
    ) -> dict[str, Any]:
        """The :class:`DecisionResponse` as a JSON-ready dict, field for field (built from
        the engine's own validated objects: nothing to validate again)."""
        reasons = {c.action_id: c for c in decision.explanation.chosen}
        actions = []
        for chosen in decision.actions:
            explained = reasons.get(chosen.action_id)
            actions.append(
                {
                    "action_id": chosen.action_id,
                    "type": chosen.action_type.value,
                    "channel": None if chosen.channel is None else chosen.channel.value,
                    "offer_id": chosen.offer_id,
                    "offer_expires_at": chosen.offer_expires_at,
                    "products": self._products(chosen, ctx, models),
                    "send_at": chosen.send_at,
                    "send_at_local": chosen.send_at_local,
                    "timing": chosen.timing_basis,
                    "score": round(float(chosen.priority), 6),
                    "propensity": round(float(chosen.propensity), 6),
                    "explored": chosen.explored,
                    "template": chosen.template,
                    "variant_id": chosen.variant_id,
                    "reasons": []
                    if explained is None
                    else [explained.summary, *(f"{f.name}: {f.detail}" for f in explained.factors)],
                }
            )
        return {
            "decision_id": decision.decision_id,
            "customer_id": decision.customer_id,
            "decided_at": decision.decided_at,
            "policy": decision.policy,
            "arm": arm,
            "model_version": models.label,
            "actions": actions,
            # why not each of the others
            "rejected": decision.explanation.every_rejected_items(),
            "cold_start": cold_start,
            "degraded": degraded is not None,
            "degraded_reason": degraded,
            "replaces": [],
        }

    def _products(self, chosen: ChosenAction, ctx: CustomerContext, models: ModelSet) -> list[str]:
        profile, session = ctx.profile, ctx.session
        action_type = chosen.action_type
        found = None
        if action_type in RECOMMENDED and models.recommender is not None:
            try:
                found = recommendations(models.recommender, [profile])[0]
            except Exception as error:  # a model bug must not fail the request
                log.error("recommender failed, falling back to popularity: %s", error)
                self.metrics.fallbacks.labels("recommender_error").inc()
        looking_at = None if session is None else session.product_id
        return products_for(
            action_type, profile, self.stock, self.popular, found, looking_at, chosen.shows
        )

    def _count(self, decision: Decision, response: Mapping[str, Any]) -> None:
        if response["degraded_reason"]:
            self.metrics.fallbacks.labels(response["degraded_reason"]).inc()
        if response["cold_start"] and not response["degraded"]:
            self.metrics.fallbacks.labels("cold_start").inc()
        if response["model_version"] == "rules":
            self.metrics.fallbacks.labels("no_model").inc()
        for chosen in decision.actions:
            key = (chosen.action_id, chosen.channel)
            counter = self._decision_counters.get(key)
            if counter is None:  # the labelled child, looked up once per action and channel
                channel = "none" if chosen.channel is None else chosen.channel.value
                counter = self.metrics.decisions.labels(chosen.action_id, channel)
                self._decision_counters[key] = counter
            counter.inc()


def _plus(usage: UsageCounts, spent: tuple[Counter[str], Counter[str]]) -> UsageCounts:
    """``usage`` with the offers given and actions sent of ``spent`` added."""
    offers, actions = Counter(usage.offers_given), Counter(usage.actions_sent)
    offers.update(spent[0])
    actions.update(spent[1])
    return UsageCounts(offers_given=dict(offers), actions_sent=dict(actions))


def request_fingerprint(customer_id: str, context: DecisionContext) -> str:
    """What identifies a decision request: the customer and the whole context (SHA-256).

    A context sent without a timestamp means "now", so a retry a moment later is the
    same request; one with a timestamp is another request when the timestamp differs.
    """
    payload = f"{customer_id}\n{context.model_dump_json()}".encode()
    return hashlib.sha256(payload).hexdigest()


def _replay(stored: str, fingerprint: str, idempotency_key: str | None) -> bytes:
    """The stored answer (JSON) when the request is the one that made it; else 422 (a
    reused key with another request, as payment APIs answer)."""
    kept, _, answer = stored.partition("\n")
    if not answer:  # an answer stored before fingerprints: trust it
        return stored.encode()
    if kept != fingerprint:
        where = ErrorDetail(
            loc=["header", "Idempotency-Key"], message="reused with another request"
        )
        raise InvalidRequestError(
            f"Idempotency-Key {idempotency_key!r} was used for another request (another "
            "customer or context): use a new key for a new request",
            [where],
        )
    return answer.encode()


def check_servable(experiment: ExperimentConfig) -> None:
    """Raise ``ValueError`` when the API cannot run ``experiment`` (challenger arms)."""
    unserved = [a.name for a in experiment.arms if a.kind == ArmKind.CHALLENGER]
    if unserved:
        raise ValueError(
            f"experiment {experiment.name!r}: arm(s) {unserved} are challengers; the API "
            "serves one model set (the champions), so use champion, rule_based, random "
            "and control arms, or compare models offline (nba experiments ope)"
        )


def _session(context: DecisionContext, now: dt.datetime) -> Session | None:
    if context.session is not None:
        s = context.session
        return Session(Channel(s.channel), s.started_at or now, s.page, s.product_id)
    if context.channel in (Channel.WEB, Channel.APP):
        return Session(context.channel, now)
    return None


def refresh_popular(contacts: ContactState, popular: PopularProducts) -> None:
    """Reload the in-memory popularity list (the top :data:`POPULAR_KEPT` products)."""
    top = contacts.top_products(POPULAR_KEPT)
    if top:
        popular.products = tuple(top)
