"""Logging for off-policy evaluation: what was decided, among what, with which probabilities.

**The action of off-policy evaluation** is an :class:`ActionChannel`: an
action id *and* the channel that delivers it (``None`` for ``do_nothing``).
The same action is worth different amounts by e-mail and by SMS, and policies
disagree on channels (the engine sends each action on its best-scored channel,
the baselines on the first one the catalog lists), so an estimate that matched
on the action id alone would credit a candidate with rewards earned on another
channel. The send time is not part of it: screening sets it per action and
channel, the same for every policy. A decision with no option at all (nothing
eligible, no ``do_nothing`` in the catalog) takes :data:`NO_ACTION`.

**Overlap.** Importance weighting needs every action-and-channel a candidate
may take to have a positive logging probability. The engine alone does not
give that: it never sends an action on a channel other than its best one.
:class:`ExploringPolicy` wraps it into an epsilon-mixture: with probability
``1 - epsilon`` the engine's own pick (its whole Thompson-sampling
distribution is estimated first, then sampled), with probability
``epsilon`` a uniform draw among every action on every channel screening
allowed. Its logged propensity is the mixture's exact probability of the
logged pair. The scorer's preferences (e.g. an offer whose uplift is below
``min_uplift``) bind the engine's share only; consent, eligibility and the
contact policy bind every draw, since they happen in screening.

**Candidates at the logged contexts.** The wrapper hands each decision's
:class:`LoggedContext` (the context, screening's candidates, the success
statistics, its own distribution and pick) to a callback. Screening depends
only on the catalog, the contact policy, the context and today's usage, so a
candidate sharing the catalog and contact policy faces exactly the same
candidates; :func:`policy_distribution` then scores them with the candidate
and returns its probability of each :class:`ActionChannel`: one-hot for
deterministic policies, ``1 / n`` for :class:`~nba.baselines.RandomPolicy`,
the Thompson-sampling distribution for an exploring engine.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from nba.arbitration import (
    DEFAULT_PROPENSITY_DRAWS,
    ChannelAssessment,
    Option,
    Pick,
    Posterior,
)
from nba.baselines import RandomPolicy
from nba.channels import Channel
from nba.context import CustomerContext
from nba.decision import CONTEXT_FEATURES
from nba.decision import context_features as decision_context_features
from nba.engine import NextBestActionPolicy
from nba.policy import DecisionPolicy, Exploration
from nba.screening import ActionCandidate, ChannelSlot


class ActionChannel(NamedTuple):
    """The action of off-policy evaluation: an action id on a channel (see the module doc).

    >>> str(ActionChannel("cart_reminder_1", "email")), str(ActionChannel("do_nothing", None))
    ('cart_reminder_1@email', 'do_nothing')
    """

    action_id: str
    channel: str | None

    def __str__(self) -> str:
        return self.action_id if self.channel is None else f"{self.action_id}@{self.channel}"


#: The "action" of a decision that had no option at all.
NO_ACTION = ActionChannel("", None)


def action_channel(option: Option) -> ActionChannel:
    """The :class:`ActionChannel` an option stands for."""
    return ActionChannel(
        option.action_id, None if option.slot is None else option.slot.channel.value
    )


@dataclass(frozen=True)
class LoggedContext:
    """One logged decision, with what a candidate needs to decide again in its place.

    ``actions`` are the logger's possible actions (in order), ``probabilities``
    its distribution over them and ``chosen`` the index it drew.
    """

    context: CustomerContext
    candidates: tuple[ActionCandidate, ...]
    stats: Mapping[str, Posterior]
    actions: tuple[ActionChannel, ...]
    probabilities: tuple[float, ...]
    chosen: int

    @property
    def customer_id(self) -> str:
        return self.context.customer_id

    @property
    def decided_at(self) -> dt.datetime:
        return self.context.now_utc

    @property
    def action(self) -> ActionChannel:
        return self.actions[self.chosen]

    @property
    def propensity(self) -> float:
        return self.probabilities[self.chosen]

    def send_at(self, action: ActionChannel) -> dt.datetime | None:
        """When screening would send ``action`` (``None`` for ``do_nothing``)."""
        for candidate in self.candidates:
            if candidate.action.id == action.action_id:
                for slot in candidate.slots:
                    if slot.channel.value == action.channel:
                        return slot.send.at
        return None


Recorder = Callable[[LoggedContext], None]


class ExploringPolicy(DecisionPolicy):
    """An epsilon-mixture of a policy and uniform exploration over actions and channels.

    Parameters
    ----------
    inner
        The policy whose decisions are logged (normally the engine with Thompson sampling).
        It must choose one action per decision.
    epsilon
        Share of decisions drawn uniformly among every screened action on every channel.
    draws
        Monte-Carlo draws to estimate an exploring inner policy's distribution.
    record
        Called with every decision's :class:`LoggedContext`.

    It explores through the policy template's exploration hook (:meth:`explore`).
    One instance decides for one caller at a time: :meth:`decide` passes the inner
    policy's scores from ``_assess`` to :meth:`explore` on the instance.
    """

    name = "nba-explore"

    def __init__(
        self,
        inner: DecisionPolicy,
        *,
        epsilon: float = 0.3,
        draws: int = DEFAULT_PROPENSITY_DRAWS,
        record: Recorder | None = None,
    ) -> None:
        if inner.max_actions != 1:
            raise ValueError("off-policy evaluation needs one action per decision (max_actions=1)")
        if not 0.0 <= epsilon <= 1.0:
            raise ValueError(f"epsilon must be in [0, 1], got {epsilon}")
        super().__init__(inner.catalog, inner.contact_policy, max_actions=1)
        self.inner = inner
        self.epsilon = epsilon
        self.draws = draws
        self.record = record
        # decide() calls _assess, then explore for the same context: the inner policy's
        # scores travel between them here.
        self._scored: (
            tuple[CustomerContext, list[ActionCandidate], list[list[ChannelAssessment]]] | None
        ) = None

    def _assess(
        self, context: CustomerContext, candidates: Sequence[ActionCandidate]
    ) -> list[list[ChannelAssessment]]:
        scored = [list(per) for per in self.inner._assess(context, candidates)]
        self._scored = (context, list(candidates), scored)
        # Exploration may use every channel screening allowed: the inner policy's reasons
        # (e.g. uplift too low) are preferences of its own share only.
        return [[dataclasses.replace(a, reason=None) for a in per] for per in scored]

    def _declared_channel(self, context: CustomerContext) -> Channel | None:
        """None: the uniform share explores every channel screening allowed (the inner
        policy's declared-channel choice is a preference of its own share only)."""
        return None

    def explore(
        self,
        context: CustomerContext,
        options: Sequence[Option],
        viable: Mapping[str, Sequence[tuple[ChannelSlot, ChannelAssessment]]],
        stats: Mapping[str, Posterior],
        rng: random.Random,
    ) -> Exploration | None:
        """The mixture's pick among every action on every viable channel (the
        :meth:`~nba.policy.DecisionPolicy.explore` hook), logged with its probability."""
        if self._scored is None or self._scored[0] is not context:
            raise RuntimeError("ExploringPolicy: explore called without _assess")
        _, candidates, scored = self._scored
        self._scored = None
        expanded: list[Option] = []
        for option in options:
            if option.slot is None:
                expanded.append(option)
            else:
                expanded += [Option(option.candidate, s, a) for s, a in viable[option.action_id]]
        if not expanded:
            self._log(context, candidates, stats, (NO_ACTION,), (1.0,), 0)
            return None
        inner_options = first_pick_options(self.inner, context, candidates, scored)
        inner = dict(
            zip(
                map(action_channel, inner_options),
                option_probabilities(self.inner, inner_options, stats, rng, draws=self.draws),
                strict=True,
            )
        )
        explore = self.epsilon if inner else 1.0
        actions = tuple(action_channel(o) for o in expanded)
        probabilities = tuple(
            (1.0 - explore) * inner.get(a, 0.0) + explore / len(expanded) for a in actions
        )
        index = _draw(probabilities, rng)
        greedy = max(inner, key=inner.__getitem__) if inner else None
        pick = Pick(
            index,
            probabilities[index],
            explored=actions[index] != greedy,
            basis=f"epsilon-mixture ({self.epsilon:g} uniform over {len(expanded)} "
            f"actions and channels) of {self.inner.name}",
            probabilities=probabilities,
        )
        self._log(context, candidates, stats, actions, probabilities, index)
        return Exploration(expanded, pick)

    def _log(
        self,
        context: CustomerContext,
        candidates: list[ActionCandidate],
        stats: Mapping[str, Posterior],
        actions: tuple[ActionChannel, ...],
        probabilities: tuple[float, ...],
        chosen: int,
    ) -> None:
        if self.record is not None:
            self.record(
                LoggedContext(context, tuple(candidates), stats, actions, probabilities, chosen)
            )


def _draw(probabilities: Sequence[float], rng: random.Random) -> int:
    u = rng.random() * math.fsum(probabilities)
    total = 0.0
    for index, p in enumerate(probabilities):
        total += p
        if u < total:
            return index
    return len(probabilities) - 1


def option_probabilities(
    policy: DecisionPolicy,
    options: Sequence[Option],
    stats: Mapping[str, Posterior],
    rng: random.Random,
    *,
    draws: int | None = None,
) -> list[float]:
    """The probability that ``policy`` picks each of ``options`` (summing to 1).

    The engine says so itself (:meth:`~nba.engine.NextBestActionPolicy.pick_probabilities`);
    :class:`~nba.baselines.RandomPolicy` is uniform; any other policy must pick with
    probability 1 (deterministic), else this raises.
    """
    if not options:
        return []
    if isinstance(policy, NextBestActionPolicy):
        return policy.pick_probabilities(options, stats, rng, draws=draws)
    if isinstance(policy, RandomPolicy):
        return [1.0 / len(options)] * len(options)
    pick = policy._pick(options, stats, rng)
    if pick.propensity != 1.0:
        raise ValueError(
            f"cannot tell the action distribution of {type(policy).__name__}: it picks at "
            f"random (propensity {pick.propensity:.3g}) and does not expose its probabilities"
        )
    probabilities = [0.0] * len(options)
    probabilities[pick.index] = 1.0
    return probabilities


def first_pick_options(
    policy: DecisionPolicy,
    context: CustomerContext,
    candidates: Sequence[ActionCandidate],
    assessments: Sequence[Sequence[ChannelAssessment]],
) -> list[Option]:
    """The options ``policy`` makes its first pick among at ``context``, as its
    :meth:`~nba.policy.DecisionPolicy.decide` does: each action on its channel (its best,
    or the customer's declared one), or, for the exploring engine, each action on every
    channel it may use."""
    options, _, viable = policy.channel_options(context, candidates, assessments)
    if not isinstance(policy, NextBestActionPolicy):
        return options
    return policy.exploration_options(options, viable)


def policy_distribution(
    policy: DecisionPolicy,
    logged: LoggedContext,
    *,
    draws: int = DEFAULT_PROPENSITY_DRAWS,
    seed: int = 0,
) -> dict[ActionChannel, float]:
    """The candidate ``policy``'s probability of each action at a logged decision.

    Scores the logged decision's screened candidates with ``policy``, keeps each
    action's best channel (as :meth:`~nba.policy.DecisionPolicy.decide` does) and
    returns the non-zero probabilities of the resulting pick. ``policy`` must share the
    logger's catalog and contact policy (so that screening is the same) and choose one
    action per decision.
    """
    if policy.max_actions != 1:
        raise ValueError(
            f"{policy.name}: off-policy evaluation needs one action per decision (max_actions=1)"
        )
    candidates = list(logged.candidates)
    assessments = policy._assess(logged.context, candidates)
    options = first_pick_options(policy, logged.context, candidates, assessments)
    if not options:
        return {NO_ACTION: 1.0}
    rng = random.Random(f"{seed}:{logged.customer_id}:{logged.decided_at.isoformat()}")
    probabilities = option_probabilities(policy, options, logged.stats, rng, draws=draws)
    out: dict[ActionChannel, float] = {}
    for option, p in zip(options, probabilities, strict=True):
        if p > 0:
            key = action_channel(option)
            out[key] = out.get(key, 0.0) + p
    return out


def context_features(logged: LoggedContext) -> np.ndarray:
    """The logged decision's :data:`CONTEXT_FEATURES`, shape ``(n_features,)`` (NaN if unknown)."""
    features = decision_context_features(logged.context, len(logged.candidates))
    return np.array([features[name] for name in CONTEXT_FEATURES], dtype=float)
