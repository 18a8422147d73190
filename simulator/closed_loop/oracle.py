"""Decisions with the ground truth: the oracle, and the engine given perfect scores.

Both run through the shared template of :class:`~nba.policy.DecisionPolicy`,
so consent, eligibility, cool-downs, budgets, caps and quiet hours bind them
exactly as they bind the engine and the baselines; only the scoring knows the
truth.

* :class:`OraclePolicy` picks, among the action, channel and send-time slots
  the rules allow, the one with the highest true incremental margin
  (:class:`~simulator.closed_loop.truth.TrueValue`), and does nothing when
  no slot earns more than nothing. It ignores business levers and the
  catalog's ``min_uplift`` targeting (they are business preferences, not
  rules of contact), and the send time is the one screening chose, as for
  every policy.

  It is a policy rather than a :class:`~nba.scoring.Scorer` plugged into
  :class:`~nba.engine.NextBestActionPolicy` because the engine's priority
  formula (one value per action, levers, catalog offer costs, ``min_uplift``)
  cannot encode an arbitrary true margin per channel exactly.
* :class:`TruthScorer` *is* such a scorer: true incremental response
  probabilities, values and offer uplifts, fed to the engine's own formula.
  The gap between ``nba`` and ``nba+truth`` is what better scores would buy;
  the gap between ``nba+truth`` and the oracle is what the formula costs.
"""

from __future__ import annotations

from collections.abc import Sequence

from nba.arbitration import ChannelAssessment
from nba.catalog import Catalog
from nba.channels import Channel
from nba.contact_policy import ContactPolicy
from nba.context import CustomerContext
from nba.policy import DecisionPolicy
from nba.reasons import Reason, ReasonCode
from nba.scoring import ActionScore
from nba.screening import ActionCandidate, ChannelSlot
from simulator import ExpectedValue
from simulator.closed_loop.mapping import SIMULATED_CHANNELS, Message, MessageMapping
from simulator.closed_loop.truth import TrueValue


def _recent_contacts(context: CustomerContext) -> int:
    return context.profile.contacts.total_7d()


def _unsimulated(channel: Channel) -> Reason:
    return Reason(
        ReasonCode.CHANNEL_UNAVAILABLE, f"the simulator does not answer {channel.value} messages"
    )


class _Slots:
    """The simulated (candidate, slot) pairs of a decision, as arrays for :class:`TrueValue`."""

    def __init__(
        self,
        context: CustomerContext,
        candidates: Sequence[ActionCandidate],
        mapping: MessageMapping,
    ) -> None:
        self.pairs: list[tuple[int, ChannelSlot, Message]] = []
        for index, candidate in enumerate(candidates):
            if candidate.action.is_do_nothing:
                continue
            message = mapping.message(candidate.action, context.profile)
            for slot in candidate.slots:
                if slot.channel in SIMULATED_CHANNELS:
                    self.pairs.append((index, slot, message))
        self.context = context

    def value(self, truth: TrueValue, *, with_offers: bool = True) -> ExpectedValue:
        n = len(self.pairs)
        return truth.incremental(
            [self.context.customer_id] * n,
            [slot.channel for _, slot, _ in self.pairs],
            [slot.send.at for _, slot, _ in self.pairs],
            [message for _, _, message in self.pairs],
            [_recent_contacts(self.context)] * n,
            with_offers=with_offers,
        )


class OraclePolicy(DecisionPolicy):
    """Highest true incremental margin among the slots the rules allow (see module doc)."""

    name = "oracle"

    def __init__(
        self,
        catalog: Catalog,
        contact_policy: ContactPolicy | None = None,
        *,
        truth: TrueValue,
        mapping: MessageMapping,
        max_actions: int = 1,
    ) -> None:
        super().__init__(catalog, contact_policy, max_actions=max_actions)
        self.truth = truth
        self.mapping = mapping

    def _assess(
        self, context: CustomerContext, candidates: Sequence[ActionCandidate]
    ) -> list[list[ChannelAssessment]]:
        slots = _Slots(context, candidates, self.mapping)
        margin = slots.value(self.truth).margin
        by_slot = {
            (index, slot.channel): float(m)
            for (index, slot, _), m in zip(slots.pairs, margin, strict=True)
        }
        out: list[list[ChannelAssessment]] = []
        for index, candidate in enumerate(candidates):
            if candidate.action.is_do_nothing:
                out.append([ChannelAssessment(None, 0.0)])
                continue
            out.append(
                [
                    ChannelAssessment(slot.channel, by_slot[(index, slot.channel)])
                    if (index, slot.channel) in by_slot
                    else ChannelAssessment(slot.channel, 0.0, reason=_unsimulated(slot.channel))
                    for slot in candidate.slots
                ]
            )
        return out


class TruthScorer:
    """A :class:`~nba.scoring.Scorer` with the ground truth, for the engine's own formula.

    Per channel, ``propensity`` is the true incremental purchase probability of
    the message; ``expected_value`` is the true margin per incremental purchase
    (pooled over the action's channels, before the channel's cost); ``uplift``,
    for actions with an offer, is how much the offer adds to the purchase
    probability of the same message without it. Channels the simulator does not
    answer get propensity 0.
    """

    def __init__(self, truth: TrueValue, mapping: MessageMapping) -> None:
        self.truth = truth
        self.mapping = mapping

    def score(
        self, context: CustomerContext, candidates: Sequence[ActionCandidate]
    ) -> list[ActionScore]:
        slots = _Slots(context, candidates, self.mapping)
        value = slots.value(self.truth)
        plain = slots.value(self.truth, with_offers=False)
        per_candidate: dict[int, list[tuple[Channel, float, float, float]]] = {}
        for k, (index, slot, _) in enumerate(slots.pairs):
            gain = float(value.margin[k] + value.contact_cost[k] + value.offer_cost[k])
            per_candidate.setdefault(index, []).append(
                (
                    slot.channel,
                    float(value.purchase[k]),
                    gain,
                    float(value.purchase[k] - plain.purchase[k]),
                )
            )
        scores: list[ActionScore] = []
        for index, candidate in enumerate(candidates):
            rows = per_candidate.get(index, [])
            lift = sum(max(0.0, p) for _, p, _, _ in rows)
            gain = sum(g for _, p, g, _ in rows if p > 0)
            propensity = {c: 0.0 for c in candidate.channels}
            propensity.update({c: min(1.0, max(0.0, p)) for c, p, _, _ in rows})
            uplift = None
            if candidate.action.offer is not None:
                uplift = {c: 0.0 for c in candidate.channels}
                uplift.update({c: min(1.0, max(-1.0, u)) for c, _, _, u in rows})
            scores.append(ActionScore(propensity, max(0.0, gain / lift) if lift else 0.0, uplift))
        return scores
