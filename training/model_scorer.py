"""The trained models behind the engine's :class:`nba.scoring.Scorer` interface.

:class:`ModelScorer` answers the engine's question (propensity per channel,
expected value, uplift, for one customer's candidates) from the trained
channel-propensity and offer-uplift models, falling back to the rule-based
scorer for whatever they do not cover (a channel without engagement history,
no model at all). It lives in ``training/`` because it holds fitted models;
it does no I/O: models are loaded once (from the registry) and passed in.

* propensity(action, channel) = the rule-based response of the action with
  the channel's typical reach only, x the learned P(engage | channel, send
  hour) / the channel's average engagement rate, capped at 0.95: the action
  type, recency and category affinity keep their rule-based weight, and the
  customer's channel-and-hour specific engagement comes from the model;
* uplift (actions with an offer) = P(purchase | offer) - P(purchase | no
  offer) from the registered uplift learner (the rule-based uplift when the
  registered model is the fixed rule, :attr:`OfferUpliftModel.is_rule`);
* expected value = the action's value, as the rule-based scorer.

All of one customer's channel pairs are scored by a few array operations per
model (no per-row scikit-learn call), so a decision over ~30 candidates costs
well under a millisecond of model time. A batch run does better: inside
``with scorer.chunk(profiles):`` the learned engagement of a whole chunk of
customers (every known channel at every local hour) is computed at once
(:meth:`ChannelPropensityModel.predict_hours`: a customer term and a channel term
per customer, the 24 hours a multiply-add each), and each decision reads its
customer's row; the scores are equal to the bit to the per-customer ones.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field

import numpy as np

from nba.channels import Channel
from nba.context import CustomerContext
from nba.frozen import fast_replace
from nba.profile import CustomerProfile
from nba.scoring import ActionScore, RuleBasedScorer, Scorer
from nba.screening import ActionCandidate, ChannelSlot
from training.offers import OfferSpec, OfferUpliftModel
from training.propensity import ChannelPropensityModel
from training.send_time import SendTimeModel

#: Highest propensity the scorer returns (as the rule-based scorer).
MAX_PROPENSITY = 0.95


@dataclass
class ModelScorer(Scorer):
    """Scores candidates with the trained models; see the module docstring.

    Parameters
    ----------
    propensity
        The channel propensity model (rule-based channel factors when None).
    uplift
        The offer uplift model (rule-based uplift when None).
    send_time
        The send-time model; :meth:`prepare` applies it to a context.
    fallback
        The rule-based scorer used for what the models do not cover.
    """

    propensity: ChannelPropensityModel | None = None
    uplift: OfferUpliftModel | None = None
    send_time: SendTimeModel | None = None
    fallback: RuleBasedScorer = field(default_factory=RuleBasedScorer)
    #: The chunk being decided: id(profile) -> (the profile, its engagement factors per
    #: known channel and local hour of the day), set by :meth:`chunk` only.
    _chunk: dict[int, tuple[CustomerProfile, np.ndarray]] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )

    def __post_init__(self) -> None:
        if self.propensity is not None and self.propensity.scorer is None:
            raise ValueError("ModelScorer: the channel propensity model is not fitted")
        if self.uplift is not None and not self.uplift.fitted:
            raise ValueError("ModelScorer: the offer uplift model is not fitted")

    def prepare(self, context: CustomerContext) -> CustomerContext:
        """The context with the learned hour-of-week pattern in the profile, so that the
        engine's send-time choice uses it (unchanged without a send-time model)."""
        if self.send_time is None:
            return context
        return context.with_profile(self.send_time.personalise(context.profile))

    @contextmanager
    def chunk(self, profiles: Sequence[CustomerProfile]) -> Iterator[None]:
        """Score a batch's chunk of customers in one go: within the block, a context whose
        profile is one of ``profiles`` (the same object, as prepared) reads its learned
        engagement from a table computed for all of them at once
        (:meth:`ChannelPropensityModel.predict_hours`); any other context is scored alone.
        For one thread at a time (a batch worker), not for a scorer serving requests."""
        model = self.propensity
        if model is None or not profiles:
            yield
            return
        p = model.predict_hours(profiles)
        average = np.array([model.channel_rates.get(c, 0.0) for c in model.channels])
        reach = np.array([self.fallback.channel_reach.get(c, 1.0) for c in model.channels])
        with np.errstate(divide="ignore", invalid="ignore"):
            factors = np.where(
                (average > 0)[None, :, None],
                p / average[None, :, None] * reach[None, :, None],
                reach[None, :, None],
            )
        self._chunk = {id(q): (q, f) for q, f in zip(profiles, factors, strict=True)}
        try:
            yield
        finally:
            self._chunk = {}

    def score(
        self, context: CustomerContext, candidates: Sequence[ActionCandidate]
    ) -> list[ActionScore]:
        if self.propensity is None and self.uplift is None:
            return self.fallback.score(context, candidates)
        learned = self._engagement(context, candidates)
        rule, neutral = self._rule_scores(context, candidates, bool(learned))
        uplifts = self._uplifts(context, candidates)
        scores: list[ActionScore] = []
        for i, (candidate, r, n) in enumerate(zip(candidates, rule, neutral, strict=True)):
            propensity: dict[Channel, float] = {}
            for slot in candidate.slots:
                factor = learned.get((slot.channel, _hour_key(slot)))
                if factor is None:
                    propensity[slot.channel] = r.propensity[slot.channel]
                else:
                    propensity[slot.channel] = min(MAX_PROPENSITY, n[slot.channel] * factor)
            uplift = r.uplift
            if candidate.action.offer is not None:
                model_uplift = uplifts.get(i, {})
                uplift = {
                    c: model_uplift.get(c, (r.uplift or {}).get(c, 0.0)) for c in candidate.channels
                }
            # a message is answered no more often than it is opened, learned or not: the
            # rule scorer's ceiling holds exploration's draws (nba.arbitration) here too
            scores.append(ActionScore(propensity, r.expected_value, uplift, r.ceiling))
        return scores

    def _rule_scores(
        self, context: CustomerContext, candidates: Sequence[ActionCandidate], learned: bool
    ) -> tuple[list[ActionScore], Sequence[Mapping[Channel, float]]]:
        """The fallback's scores, and (when ``learned``: a learned engagement factor will
        multiply them) each candidate's propensities for the customer without engagement
        history; else the scores' own propensities. The rule-based scorer gives both from
        one pass (:meth:`~nba.scoring.RuleBasedScorer.score_with_neutral`); a scorer that
        overrides :meth:`score` is asked twice, the second time with ``engagement={}``."""
        fallback = self.fallback
        if not learned:
            rule = fallback.score(context, candidates)
            return rule, [r.propensity for r in rule]
        if type(fallback).score is RuleBasedScorer.score:
            return fallback.score_with_neutral(context, candidates)
        rule = fallback.score(context, candidates)
        plain = context.with_profile(fast_replace(context.profile, engagement={}))
        return rule, [n.propensity for n in fallback.score(plain, candidates)]

    def _engagement(
        self, context: CustomerContext, candidates: Sequence[ActionCandidate]
    ) -> dict[tuple[Channel, int], float]:
        """Learned engagement relative to the channel's average, per (channel, local hour)."""
        model = self.propensity
        if model is None:
            return {}
        pairs: dict[tuple[Channel, int], dt.datetime] = {}
        for candidate in candidates:
            for slot in candidate.slots:
                if model.knows(slot.channel):
                    pairs.setdefault((slot.channel, _hour_key(slot)), slot.send.local)
        if not pairs:
            return {}
        known = self._chunk.get(id(context.profile))
        if known is not None and known[0] is context.profile:
            index = model.channels.index
            factors = known[1]  # per known channel, per local hour of the day
            return {key: float(factors[index(key[0]), local.hour]) for key, local in pairs.items()}
        keys = list(pairs)
        p = model.predict(context.profile, [k[0] for k in keys], [pairs[k] for k in keys])
        out = {}
        for key, value in zip(keys, p, strict=True):
            average = model.channel_rates.get(key[0], 0.0)
            reach = self.fallback.channel_reach.get(key[0], 1.0)
            out[key] = float(value / average * reach) if average > 0 else reach
        return out

    def _uplifts(
        self, context: CustomerContext, candidates: Sequence[ActionCandidate]
    ) -> dict[int, dict[Channel, float]]:
        """Model uplift per candidate (by position) and channel, for actions with an offer."""
        model = self.uplift
        if model is None or model.is_rule:  # the rule champion: the rule-based uplift serves
            return {}
        where: list[tuple[int, Channel]] = []
        specs: list[OfferSpec] = []
        for i, candidate in enumerate(candidates):
            offer = candidate.action.offer
            if offer is None:
                continue
            for channel in candidate.channels:
                if channel in model.channels:
                    where.append((i, channel))
                    specs.append(OfferSpec(offer.kind, offer.cost))
        if not where:
            return {}
        _, uplift = model.predict(context.profile, [c for _, c in where], specs)
        out: dict[int, dict[Channel, float]] = {}
        for (i, channel), u in zip(where, np.clip(uplift, -1.0, 1.0), strict=True):
            out.setdefault(i, {})[channel] = float(u)
        return out


def _hour_key(slot: ChannelSlot) -> int:
    local = slot.send.local
    return local.weekday() * 24 + local.hour
