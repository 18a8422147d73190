"""Decisions for the API: profile from Redis, policy from :mod:`nba`, products, fallbacks.

One request reads the customer's profile, action history and today's usage
from Redis, decides with the champion models (rules when none is registered),
attaches products to the chosen actions, records what was sent, and logs the
decision. The fallbacks never break consent:

- Redis unreachable: the customer is treated as unknown, so consent cannot be
  shown and no outbound contact is chosen; on-site and in-app placements still
  get content, with products from popularity. The answer is ``degraded``.
- unknown customer: a cold-start decision (same safety: no consent known).
- no model registered: rule-based scores (``model_version`` is ``rules``).

An ``Idempotency-Key`` seeds the policy's draws and stores the answer for
``idempotency_hours``: a retried request returns the same decision.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import secrets
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from features.online.profiles import OnlineProfiles
from features.online.redis_store import RedisOnlineStore, decode_customer
from nba.actions import ActionType
from nba.baselines import RandomPolicy, RuleBasedPolicy
from nba.budgets import UsageCounts
from nba.catalog import Catalog
from nba.channels import Channel
from nba.contact_policy import ContactPolicy
from nba.context import CustomerContext, Session
from nba.decision import Decision, LoggedDecision
from nba.engine import NextBestActionPolicy
from nba.experiment import ArmKind, ExperimentConfig, ExperimentRouter
from nba.policy import DecisionPolicy
from nba.profile import CustomerProfile
from nba.reasons import ReasonCode
from nba.screening import Restriction
from serving.errors import InvalidRequestError
from serving.metrics import ApiMetrics
from serving.models import ModelManager, ModelSet
from serving.redis_gate import RedisDownError, RedisGate
from serving.schemas import ActionOut, DecisionContext, DecisionResponse, RejectedOut

log = logging.getLogger("nba.api")

#: Products attached to an action that shows products.
PRODUCTS_PER_ACTION = 4
#: Action types whose products come from the recommender.
RECOMMENDED = frozenset(
    {ActionType.PRODUCT_RECOMMENDATION, ActionType.CROSS_SELL, ActionType.UP_SELL}
)
#: Products kept in the in-memory popularity list (the fallback when Redis is down).
POPULAR_KEPT = 50
#: Popularity points per event type (views count little, purchases most).
POPULARITY_POINTS = {"product_view": 1.0, "add_to_cart": 3.0, "purchase": 5.0}


class DecisionSink(Protocol):
    """Where decisions are logged (the experiments' decision log)."""

    def append(self, decisions: Sequence[LoggedDecision]) -> None: ...


class Keys:
    """Redis keys of the serving layer; per-customer keys share the profile's slot."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix

    def history(self, customer_id: str) -> str:
        return f"{self.prefix}:h:{{{customer_id}}}"

    def idempotency(self, customer_id: str, key: str, scope: str) -> str:
        digest = hashlib.sha256(f"{scope}|{key}".encode()).hexdigest()[:32]
        return f"{self.prefix}:i:{{{customer_id}}}:{digest}"

    def usage(self, day: dt.date) -> str:
        return f"{self.prefix}:u:{day.isoformat()}"

    @property
    def popularity(self) -> str:
        return f"{self.prefix}:pop"


@dataclass
class _Read:
    """What one decision reads from Redis."""

    cached: bytes | None
    history: dict[str, dt.datetime]
    usage: UsageCounts
    profile: CustomerProfile | None


class PopularProducts:
    """The most popular products, refreshed from Redis, kept in memory for fallbacks."""

    def __init__(self, initial: Sequence[str] = ()) -> None:
        self.products: tuple[str, ...] = tuple(initial)

    def top(self, k: int, exclude: Sequence[str] = ()) -> list[str]:
        skip = set(exclude)
        return [p for p in self.products if p not in skip][:k]


class DecisionService:
    """Answers ``/v1/decisions`` (wired by :func:`serving.app.create_app`)."""

    def __init__(
        self,
        *,
        client: Any,
        profiles: OnlineProfiles,
        gate: RedisGate,
        catalog: Catalog,
        contact_policy: ContactPolicy,
        models: ModelManager,
        metrics: ApiMetrics,
        keys: Keys,
        popular: PopularProducts,
        idempotency_seconds: int,
        sink: DecisionSink | None = None,
        experiment: ExperimentConfig | None = None,
        clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
    ) -> None:
        self.client = client
        self.profiles = profiles
        if not isinstance(profiles.store, RedisOnlineStore):
            raise TypeError("the API serves profiles from a RedisOnlineStore")
        self.store = profiles.store
        self.gate = gate
        self.catalog = catalog
        self.contact_policy = contact_policy
        self.models = models
        self.metrics = metrics
        self.keys = keys
        self.popular = popular
        self.idempotency_seconds = idempotency_seconds
        self.sink = sink
        self.experiment = experiment
        if experiment is not None:
            check_servable(experiment)
        self.clock = clock
        self._policies: dict[tuple[int, int], ExperimentRouter | DecisionPolicy] = {}
        self._lock = threading.Lock()

    # ------------------------------------------------------------------ policy
    def policy(self, models: ModelSet, max_actions: int) -> ExperimentRouter | DecisionPolicy:
        """The engine for this model set, behind the experiment's router when one runs
        (built once per model set and size, then reused)."""
        key = (id(models), max_actions)
        policy = self._policies.get(key)
        if policy is None:
            with self._lock:
                if len(self._policies) > 64:
                    self._policies.clear()
                policy = self._build_policy(models, max_actions)
                self._policies[key] = policy
        return policy

    def _build_policy(
        self, models: ModelSet, max_actions: int
    ) -> ExperimentRouter | DecisionPolicy:
        args = (self.catalog, self.contact_policy)
        engine = NextBestActionPolicy(*args, scorer=models.scorer, max_actions=max_actions)
        if self.experiment is None:
            return engine
        return ExperimentRouter(
            self.experiment,
            {
                ArmKind.CHAMPION.value: engine,
                ArmKind.RULE_BASED.value: RuleBasedPolicy(*args, max_actions=max_actions),
                ArmKind.RANDOM.value: RandomPolicy(*args, max_actions=max_actions),
            },
        )

    def restriction(self, context: DecisionContext) -> Restriction | None:
        ids = None
        if context.actions is not None:
            unknown = sorted(set(context.actions) - set(self.catalog.ids))
            if unknown:
                raise InvalidRequestError(
                    f"context.actions: unknown action ids {unknown} (the catalog has "
                    f"{len(self.catalog.ids)} actions; GET /docs lists none of them by design)"
                )
            ids = frozenset(context.actions)
        channels = None if context.channel is None else frozenset({context.channel})
        if ids is None and channels is None:
            return None
        return Restriction(action_ids=ids, channels=channels)

    # ------------------------------------------------------------------ decide
    def decide(
        self, customer_id: str, context: DecisionContext, idempotency_key: str | None = None
    ) -> DecisionResponse:
        restriction = self.restriction(context)
        now = (context.timestamp or self.clock()).astimezone(dt.UTC)
        idem = (
            None
            if idempotency_key is None
            else self.keys.idempotency(customer_id, idempotency_key, "decide")
        )
        degraded: str | None = None
        try:
            read = self.gate.call(lambda: self._read(customer_id, now, idem))
        except RedisDownError:
            degraded = "redis_unavailable"
            read = _Read(None, {}, UsageCounts(), None)
        if read.cached is not None:
            return DecisionResponse.model_validate_json(read.cached)

        models = self.models.current
        profile = read.profile or CustomerProfile(customer_id, as_of=now)
        ctx = CustomerContext(
            profile, now, session=_session(context, now), action_history=read.history
        )
        personalise = getattr(models.scorer, "personalise", None)
        if personalise is not None:  # the learned send-time pattern goes into the profile
            ctx = personalise(ctx)
        max_actions = min(context.max_actions, len(self.catalog.ids))
        seed: int | str = idempotency_key or secrets.token_hex(8)
        policy = self.policy(models, max_actions)
        arm: str | None = None
        if isinstance(policy, ExperimentRouter):
            routed = policy.route(ctx, usage=read.usage, seed=seed, restriction=restriction)
            decision, arm = routed.decision, None if routed.arm is None else routed.arm.name
        else:
            decision = policy.decide(ctx, usage=read.usage, seed=seed, restriction=restriction)
        response = self._response(decision, ctx, models, read, degraded)
        response.arm = arm
        if degraded is None:
            try:
                self.gate.call(lambda: self._record(decision, idem, response))
            except RedisDownError:
                response.degraded, response.degraded_reason = True, "history_not_recorded"
        self._count(decision, response)
        if self.sink is not None:
            self.sink.append([decision.log(arm=arm, model_version=response.model_version)])
        return response

    def _read(self, customer_id: str, now: dt.datetime, idem: str | None) -> _Read:
        """Everything the decision needs, in one round trip (one pipeline)."""
        pipe = self.client.pipeline(transaction=False)
        if idem:
            pipe.get(idem)
        pipe.hgetall(self.keys.history(customer_id))
        pipe.hgetall(self.keys.usage(now.date()))
        pipe.hgetall(self.store.state_key(customer_id))
        replies = pipe.execute()
        cached = replies.pop(0) if idem else None
        if cached:
            return _Read(cached, {}, UsageCounts(), None)
        history, usage, state = replies
        stored = decode_customer(customer_id, state)
        return _Read(
            None,
            decode_history(history),
            _usage(usage),
            self.profiles.from_stored(customer_id, stored, now),
        )

    def _record(self, decision: Decision, idem: str | None, response: DecisionResponse) -> None:
        pipe = self.client.pipeline(transaction=False)
        sent = {
            a.action_id: str(int((a.send_at or decision.decided_at).timestamp()))
            for a in decision.contacts
        }
        if sent:
            pipe.hset(self.keys.history(decision.customer_id), mapping=sent)
        usage_key = self.keys.usage(decision.decided_at.date())
        for offer, n in decision.consumed.offers_given.items():
            pipe.hincrby(usage_key, f"o:{offer}", n)
        for action, n in decision.consumed.actions_sent.items():
            pipe.hincrby(usage_key, f"a:{action}", n)
        if decision.consumed.offers_given or decision.consumed.actions_sent:
            pipe.expire(usage_key, 3 * 86_400)
        if idem:
            pipe.set(idem, response.model_dump_json(), ex=self.idempotency_seconds, nx=True)
        pipe.execute()

    # ------------------------------------------------------------------ answer
    def _response(
        self,
        decision: Decision,
        ctx: CustomerContext,
        models: ModelSet,
        read: _Read,
        degraded: str | None,
    ) -> DecisionResponse:
        reasons = {c.action_id: c for c in decision.explanation.chosen}
        actions = []
        for chosen in decision.actions:
            explained = reasons.get(chosen.action_id)
            actions.append(
                ActionOut(
                    action_id=chosen.action_id,
                    type=chosen.action_type.value,
                    channel=chosen.channel,
                    offer_id=chosen.offer_id,
                    offer_expires_at=chosen.offer_expires_at,
                    products=self._products(chosen.action_type, ctx.profile, models),
                    send_at=chosen.send_at,
                    send_at_local=chosen.send_at_local,
                    timing=chosen.timing_basis,
                    score=round(float(chosen.priority), 6),
                    propensity=round(float(chosen.propensity), 6),
                    explored=chosen.explored,
                    template=chosen.template,
                    variant_id=chosen.variant_id,
                    reasons=[]
                    if explained is None
                    else [explained.summary, *(f"{f.name}: {f.detail}" for f in explained.factors)],
                )
            )
        return DecisionResponse(
            decision_id=decision.decision_id,
            customer_id=decision.customer_id,
            decided_at=decision.decided_at,
            policy=decision.policy,
            model_version=models.label,
            actions=actions,
            rejected=[
                RejectedOut(
                    action_id=r.action_id, channel=r.channel, code=r.code.value, message=r.message
                )
                for r in decision.explanation.rejected
                if r.code != ReasonCode.NOT_REQUESTED  # the caller knows what it left out
            ],
            cold_start=read.profile is None,
            degraded=degraded is not None,
            degraded_reason=degraded,
        )

    def _products(
        self, action_type: ActionType, profile: CustomerProfile, models: ModelSet
    ) -> list[str]:
        if action_type == ActionType.CART_REMINDER:
            return list(profile.cart_items[:PRODUCTS_PER_ACTION])
        if action_type == ActionType.BROWSE_REMINDER:
            return list(profile.browsed_products[:PRODUCTS_PER_ACTION])
        if action_type not in RECOMMENDED:
            return []
        recommender = models.recommender
        if recommender is not None:
            try:
                recs = recommender.recommend([profile.customer_id], PRODUCTS_PER_ACTION)
                return [str(p) for p in recs.product_ids[0] if p is not None and p == p]
            except Exception as error:  # a model bug must not fail the request
                log.error("recommender failed, falling back to popularity: %s", error)
                self.metrics.fallbacks.labels("recommender_error").inc()
        return self.popular.top(PRODUCTS_PER_ACTION)

    def _count(self, decision: Decision, response: DecisionResponse) -> None:
        if response.degraded_reason:
            self.metrics.fallbacks.labels(response.degraded_reason).inc()
        if response.cold_start and not response.degraded:
            self.metrics.fallbacks.labels("cold_start").inc()
        if response.model_version == "rules":
            self.metrics.fallbacks.labels("no_model").inc()
        for chosen in decision.actions:
            channel = "none" if chosen.channel is None else chosen.channel.value
            self.metrics.decisions.labels(chosen.action_id, channel).inc()


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


def decode_history(raw: Mapping[bytes, bytes]) -> dict[str, dt.datetime]:
    """When each action was last sent, from the ``HGETALL`` of the customer's history key."""
    return {k.decode(): dt.datetime.fromtimestamp(int(v), dt.UTC) for k, v in (raw or {}).items()}


def _usage(raw: Mapping[bytes, bytes]) -> UsageCounts:
    offers: dict[str, int] = {}
    actions: dict[str, int] = {}
    for k, v in (raw or {}).items():
        kind, _, name = k.decode().partition(":")
        (offers if kind == "o" else actions)[name] = int(v)
    return UsageCounts(offers_given=offers, actions_sent=actions)


def refresh_popular(client: Any, keys: Keys, popular: PopularProducts) -> None:
    """Reload the in-memory popularity list from Redis (the top :data:`POPULAR_KEPT`)."""
    top = client.zrevrange(keys.popularity, 0, POPULAR_KEPT - 1)
    if top:
        popular.products = tuple(p.decode() for p in top)
