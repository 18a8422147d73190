"""Baseline policies the engine is benchmarked against.

Both run through the same template as the engine
(:meth:`~nba.policy.DecisionPolicy.decide`), so consent, eligibility and the
contact policy bind them exactly as they bind the engine; only the choice
differs.

* :class:`RandomPolicy`: uniform over the eligible actions (``do_nothing``
  included when the catalog has it), each on its first allowed channel in the
  catalog's order; the logged propensity is exactly ``1 / n``.
* :class:`RuleBasedPolicy`: fixed priorities by action type, no model; the
  first allowed channel in the catalog's order; propensity 1.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence

from nba.actions import ActionType
from nba.arbitration import (
    ChannelAssessment,
    Option,
    Pick,
    Posterior,
    greedy_pick,
    uniform_pick,
)
from nba.catalog import Catalog
from nba.contact_policy import ContactPolicy
from nba.context import CustomerContext
from nba.policy import DecisionPolicy
from nba.screening import ActionCandidate

#: Fixed priorities of :class:`RuleBasedPolicy` (higher wins; catalog order breaks ties).
DEFAULT_TYPE_PRIORITIES: Mapping[ActionType, float] = {
    ActionType.CART_REMINDER: 100,
    ActionType.BROWSE_REMINDER: 90,
    ActionType.WELCOME: 85,
    ActionType.REVIEW_REQUEST: 80,
    ActionType.MILESTONE: 75,
    ActionType.CROSS_SELL: 70,
    ActionType.UP_SELL: 65,
    ActionType.SEASONAL: 60,
    ActionType.REACTIVATION: 55,
    ActionType.OFFER: 50,
    ActionType.PRODUCT_RECOMMENDATION: 40,
    ActionType.CONTENT: 30,
    ActionType.DO_NOTHING: 0,
}


def _flat(
    candidates: Sequence[ActionCandidate], priority: Mapping[str, float]
) -> list[list[ChannelAssessment]]:
    """The same priority on every channel of an action: the first channel wins ties."""
    return [
        [ChannelAssessment(c, priority[cand.action.id]) for c in cand.channels]
        if cand.slots
        else [ChannelAssessment(None, priority[cand.action.id])]
        for cand in candidates
    ]


class RandomPolicy(DecisionPolicy):
    """Uniformly random among eligible actions; propensity ``1 / n``."""

    name = "random"
    #: its priorities mean nothing: nothing to weigh a scheduled message against
    supersedes = False

    def _assess(
        self, context: CustomerContext, candidates: Sequence[ActionCandidate]
    ) -> list[list[ChannelAssessment]]:
        return _flat(candidates, {c.action.id: 0.0 for c in candidates})

    def _pick(
        self, options: Sequence[Option], stats: Mapping[str, Posterior], rng: random.Random
    ) -> Pick:
        return uniform_pick(options, rng)


class RuleBasedPolicy(DecisionPolicy):
    """Fixed priorities by action type (:data:`DEFAULT_TYPE_PRIORITIES`), no model."""

    name = "rules"
    #: the baseline journey tool: a message it scheduled goes
    supersedes = False

    def __init__(
        self,
        catalog: Catalog,
        contact_policy: ContactPolicy | None = None,
        *,
        priorities: Mapping[ActionType, float] | None = None,
        max_actions: int = 1,
    ) -> None:
        super().__init__(catalog, contact_policy, max_actions=max_actions)
        self.priorities = dict(DEFAULT_TYPE_PRIORITIES if priorities is None else priorities)

    def _assess(
        self, context: CustomerContext, candidates: Sequence[ActionCandidate]
    ) -> list[list[ChannelAssessment]]:
        return _flat(
            candidates,
            {c.action.id: float(self.priorities.get(c.action.type, 0.0)) for c in candidates},
        )

    def _pick(
        self, options: Sequence[Option], stats: Mapping[str, Posterior], rng: random.Random
    ) -> Pick:
        pick = greedy_pick(options)
        action = options[pick.index].candidate.action
        return Pick(pick.index, 1.0, basis=f"fixed priority of {action.type.value} actions")
