"""Decision policies: one template, many ways to score.

:meth:`DecisionPolicy.decide` does the shared work, the same for every policy,
so that the API, the batch mode and the simulator run identical decisions:

1. screening (validity, eligibility, variants, cool-downs, budgets, consent,
   contact policy, send time): :func:`nba.screening.screen`;
2. scoring: :meth:`DecisionPolicy._assess`, the one step a policy must fill;
3. the best channel per action, then picks (:meth:`DecisionPolicy._pick`,
   greedy unless a policy explores) up to ``max_actions``, re-checking the
   caps and exclusive groups after each pick; a policy that explores beyond
   its own picks (other channels, a logging mixture) says so in the one
   exploration hook, :meth:`DecisionPolicy.explore`;
4. bookkeeping: propensities, budget consumption, rejections with reason
   codes, the explanation and a stable decision id.

A decision is deterministic for a given context, usage, statistics and ``seed``.
:meth:`DecisionPolicy.route` is :meth:`~DecisionPolicy.decide` as a
:class:`~nba.pipeline.Decider` (a plain policy decides under no experiment arm).
"""

from __future__ import annotations

import datetime as dt
import math
import random
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import ClassVar, final

from nba.arbitration import (
    ChannelAssessment,
    Option,
    Pick,
    Posterior,
    best_channels,
    greedy_pick,
)
from nba.budgets import Consumption, UsageCounts
from nba.catalog import Catalog
from nba.channels import Channel
from nba.contact_policy import ContactPolicy
from nba.context import CustomerContext
from nba.decision import (
    ChosenAction,
    Decision,
    OptionProbability,
    RoutedDecision,
    context_features,
    make_decision_id,
)
from nba.explain import explain
from nba.frozen import fast_init
from nba.reasons import ReasonCode, Rejection, WrittenWhenRead
from nba.screening import ActionCandidate, ChannelSlot, Restriction, Screening, screen


class DecisionPolicy(ABC):
    """Base of every decision policy (template method: subclasses only score).

    Parameters
    ----------
    catalog
        The validated action catalog.
    contact_policy
        Caps, quiet hours, cool-downs and fatigue; the defaults when omitted.
    max_actions
        How many actions one decision may choose (default 1). A chosen
        ``do_nothing`` ends the decision.
    """

    #: The policy's name in decision logs.
    name: ClassVar[str] = "policy"
    #: Whether its decisions may replace a message it scheduled and has not sent
    #: (:mod:`nba.supersession`, when the contact policy allows it).
    supersedes: ClassVar[bool] = True

    def __init__(
        self,
        catalog: Catalog,
        contact_policy: ContactPolicy | None = None,
        *,
        max_actions: int = 1,
    ) -> None:
        if max_actions < 1:
            raise ValueError(f"max_actions must be at least 1, got {max_actions}")
        self.catalog = catalog
        self.contact_policy = contact_policy or ContactPolicy()
        self.max_actions = max_actions

    @final
    def route(
        self,
        context: CustomerContext,
        *,
        usage: UsageCounts | None = None,
        stats: Mapping[str, Posterior] | None = None,
        seed: int | str = 0,
        decision_id: str | None = None,
        restriction: Restriction | None = None,
    ) -> RoutedDecision:
        """:meth:`decide` under no experiment arm (the :class:`~nba.pipeline.Decider` call)."""
        decision = self.decide(
            context,
            usage=usage,
            stats=stats,
            seed=seed,
            decision_id=decision_id,
            restriction=restriction,
        )
        return RoutedDecision(decision, None)

    @final
    def decide(
        self,
        context: CustomerContext,
        *,
        usage: UsageCounts | None = None,
        stats: Mapping[str, Posterior] | None = None,
        seed: int | str = 0,
        decision_id: str | None = None,
        restriction: Restriction | None = None,
    ) -> Decision:
        """Decide what to do next for the customer of ``context``.

        Parameters
        ----------
        context
            The customer, the moment, the session and the action history.
        usage
            Today's offer and action counts (read-only); none used when omitted.
        stats
            Per-action Beta posteriors of success, for exploring policies.
        seed
            Seeds the policy's random draws: the same inputs and seed give the same
            decision (pass a request id to make retries idempotent).
        decision_id
            Id to give the decision; derived from the inputs when omitted.
        restriction
            Only these action ids and channels may be chosen (the caller's filter).
        """
        usage = usage or UsageCounts()
        stats = stats or {}
        rng = random.Random(seed)
        screening = self._screen(context, usage, restriction)
        candidates = list(screening.candidates)
        assessments = self._assess(context, candidates)
        _check_assessments(type(self).__name__, candidates, assessments)
        options, channel_rejections, viable = self.channel_options(context, candidates, assessments)
        rejections: list[Rejection] = [*screening.rejections, *channel_rejections]
        eligible = tuple(o.action_id for o in options)

        outcome = self._arbitrate(context, options, viable, stats, rng)
        chosen, competed = outcome.chosen, outcome.competed
        rejections += outcome.rejections
        actions = tuple(_chosen_action(option, pick) for option, pick in chosen)
        rejections += [r for _, r in competed]
        decided_at = context.now_utc
        return Decision(
            decision_id=decision_id
            or make_decision_id(context.customer_id, decided_at, self.name, seed),
            customer_id=context.customer_id,
            policy=self.name,
            decided_at=decided_at,
            seed=seed,
            actions=actions,
            propensity=math.prod(pick.propensity for _, pick in chosen),
            eligible_action_ids=eligible,
            rejections=tuple(rejections),
            consumed=Consumption.of(o.candidate.action for o, _ in chosen),
            explanation=explain(chosen, competed, rejections),
            options=outcome.distribution,
            context=context_features(context, len(candidates)),
        )

    def channel_options(
        self,
        context: CustomerContext,
        candidates: Sequence[ActionCandidate],
        assessments: Sequence[Sequence[ChannelAssessment]],
    ) -> tuple[
        list[Option], list[Rejection], dict[str, list[tuple[ChannelSlot, ChannelAssessment]]]
    ]:
        """Each action on its channel (:func:`~nba.arbitration.best_channels`, honouring
        the customer's declared channel), why its other channels were dropped, and every
        channel each action may use (``viable``: what exploration may draw from; only the
        declared one for an action that honours it)."""
        declared = self._declared_channel(context)
        options, rejections = best_channels(candidates, assessments, declared)
        viable = {
            c.action.id: [
                (slot, a) for slot, a in zip(c.slots, per, strict=True) if a.reason is None
            ]
            for c, per in zip(candidates, assessments, strict=True)
            if c.slots
        }
        if declared is not None:  # an action honouring it explores no other channel
            for option in options:
                if option.slot is not None and option.slot.channel is declared:
                    viable[option.action_id] = [
                        (s, a) for s, a in viable[option.action_id] if s.channel is declared
                    ]
        return options, rejections, viable

    def _declared_channel(self, context: CustomerContext) -> Channel | None:
        """The customer's declared preferred channel when the contact policy honours it
        (:attr:`~nba.contact_policy.ContactPolicy.declared_channel`), else ``None``."""
        named = context.profile.preferred_channel
        if named is None or self.contact_policy.declared_channel != "honour":
            return None
        try:
            return Channel(named)
        except ValueError:
            return None

    @final
    def why_not_now(
        self,
        context: CustomerContext,
        action_id: str,
        channel: Channel,
        usage: UsageCounts | None = None,
    ) -> str | None:
        """Why ``action_id`` on ``channel`` could not go for the customer of ``context``
        now (its eligibility, consent or the contact policy refusing it, in words), or
        ``None`` when it still could: a scheduled message whose reason has passed (its
        cart bought, its consent withdrawn) is withdrawn by :mod:`nba.supersession`."""
        only = Restriction(frozenset({action_id}), frozenset({channel}))
        screening = self._screen(context, usage or UsageCounts(), only)
        for candidate in screening.candidates:
            if candidate.action.id == action_id and channel in candidate.channels:
                return None
        for r in screening.rejections:
            if r.action_id == action_id and r.channel in (None, channel):
                return f"{r.code} ({r.message})"
        return "not eligible now"

    @final
    def worth_now(
        self,
        context: CustomerContext,
        action_id: str,
        channel: Channel,
        usage: UsageCounts | None = None,
    ) -> float | None:
        """What ``action_id`` on ``channel`` is worth for the customer of ``context`` now:
        its best priority on that channel before any opportunity cost (what sending it
        would keep from going: when a scheduled message is weighed against the message
        that may replace it, :mod:`nba.supersession`, that cost is the very comparison);
        ``None`` when it could not go now (not eligible, refused, no slot)."""
        only = Restriction(frozenset({action_id}), frozenset({channel}))
        screening = self._screen(context, usage or UsageCounts(), only)
        candidates = [c for c in screening.candidates if c.action.id == action_id and c.slots]
        if not candidates:
            return None
        assessments = self._assess(context, candidates)
        _check_assessments(type(self).__name__, candidates, assessments)
        values = [
            a.priority + (a.terms.opportunity_cost if a.terms is not None else 0.0)
            for a in assessments[0]
            if a.reason is None and a.channel == channel
        ]
        return max(values) if values else None

    def _screen(
        self, context: CustomerContext, usage: UsageCounts, restriction: Restriction | None
    ) -> Screening:
        """Eligibility, consent and contact policy over the catalog
        (:func:`~nba.screening.screen`). A policy that has already screened these very
        inputs may hand that screening back instead of running it again."""
        return screen(self.catalog, self.contact_policy, context, usage, restriction)

    def _arbitrate(
        self,
        context: CustomerContext,
        options: list[Option],
        viable: Mapping[str, Sequence[tuple[ChannelSlot, ChannelAssessment]]],
        stats: Mapping[str, Posterior],
        rng: random.Random,
    ) -> _Arbitration:
        """Pick up to ``max_actions`` options; after each pick, drop the options of the
        same group and re-check the others against the caps, counting the pick."""
        outcome = _Arbitration()
        pending: dict[Channel, int] = {}
        exploration = self.explore(context, options, viable, stats, rng)
        staged: Pick | None = None
        if exploration is not None:
            options, staged = list(exploration.options), exploration.pick
        while options and len(outcome.chosen) < self.max_actions:
            pick = staged if staged is not None else self._pick(options, stats, rng)
            staged = None
            _check_pick(type(self).__name__, pick, len(options))
            winner = options[pick.index]
            if not outcome.chosen:
                outcome.distribution = _distribution(options, pick)
            outcome.chosen.append((winner, pick))
            # the same action on its other channels (explored pairs) is not picked again
            rest = [
                o
                for i, o in enumerate(options)
                if i != pick.index and o.action_id != winner.action_id
            ]
            if winner.slot is None or len(outcome.chosen) == self.max_actions:
                outcome.competed += [(o, _lost(o, winner)) for o in rest]
                break
            pending[winner.slot.channel] = pending.get(winner.slot.channel, 0) + 1
            options = []
            for option in rest:
                group = option.candidate.action.group
                if group is not None and group == winner.candidate.action.group:
                    message = f"{winner.action_id} of the same group {group!r} was chosen"
                    rejection = Rejection(
                        option.action_id, None, ReasonCode.EXCLUSIVE_GROUP, message
                    )
                    outcome.competed.append((option, rejection))
                    continue
                refreshed = self._recheck(
                    context, option, viable.get(option.action_id, []), pending
                )
                if isinstance(refreshed, Rejection):
                    outcome.rejections.append(refreshed)
                else:
                    options.append(refreshed)
        return outcome

    def explore(
        self,
        context: CustomerContext,
        options: Sequence[Option],
        viable: Mapping[str, Sequence[tuple[ChannelSlot, ChannelAssessment]]],
        stats: Mapping[str, Posterior],
        rng: random.Random,
    ) -> Exploration | None:
        """The exploration hook, called once per decision before the picks.

        ``options`` are the eligible actions, each on its best channel; ``viable``
        every channel each action may use, with its assessment. Return ``None``
        (the default) to pick among ``options`` with :meth:`_pick`; or an
        :class:`Exploration`: the options to pick among instead (e.g. every action
        on every viable channel) and the first pick among them, with the
        probability it had (the logged propensity). Later picks, if
        ``max_actions`` allows, use :meth:`_pick`.
        """
        return None

    @abstractmethod
    def _assess(
        self, context: CustomerContext, candidates: Sequence[ActionCandidate]
    ) -> Sequence[Sequence[ChannelAssessment]]:
        """Score each candidate on each of its channels.

        Return, per candidate, one :class:`~nba.arbitration.ChannelAssessment`
        per slot (in slot order), or exactly one with ``channel=None`` for
        ``do_nothing``. An assessment with a ``reason`` drops that channel.
        """

    def _pick(
        self,
        options: Sequence[Option],
        stats: Mapping[str, Posterior],
        rng: random.Random,
    ) -> Pick:
        """Pick one option and say with which probability (default: greedy, 1)."""
        return greedy_pick(options)

    def _recheck(
        self,
        context: CustomerContext,
        option: Option,
        viable: Sequence[tuple[ChannelSlot, ChannelAssessment]],
        pending: Mapping[Channel, int],
    ) -> Option | Rejection:
        """After a pick, keep ``option`` on a channel the caps still allow (its best
        one if possible, else the next best), or reject it with the cap's reason."""
        if option.slot is None:
            return option
        reason = self.contact_policy.channel_reason(context, option.slot.channel, pending)
        if reason is None:
            return option
        for slot, assessment in sorted(viable, key=lambda item: -item[1].priority):
            if slot.channel == option.slot.channel:
                continue
            if self.contact_policy.channel_reason(context, slot.channel, pending) is None:
                return Option(option.candidate, slot, assessment)
        return Rejection.of(option.action_id, option.slot.channel, reason)


@fast_init
@dataclass(frozen=True)
class Exploration:
    """What :meth:`DecisionPolicy.explore` decided: the options to pick among, and the
    first pick (an index into ``options``, with its propensity)."""

    options: Sequence[Option]
    pick: Pick


@dataclass
class _Arbitration:
    chosen: list[tuple[Option, Pick]] = field(default_factory=list)
    competed: list[tuple[Option, Rejection]] = field(default_factory=list)
    rejections: list[Rejection] = field(default_factory=list)
    distribution: tuple[OptionProbability, ...] = ()


def _distribution(options: Sequence[Option], pick: Pick) -> tuple[OptionProbability, ...]:
    """Every option of the first pick with the probability it had (``pick.probabilities``;
    when a policy gives only the chosen one's, the others' are unknown: ``None``)."""
    known = len(pick.probabilities) == len(options)
    return tuple(
        OptionProbability(
            o.action_id,
            None if o.slot is None else o.slot.channel.value,
            pick.probabilities[i] if known else (pick.propensity if i == pick.index else None),
        )
        for i, o in enumerate(options)
    )


def _lost(option: Option, winner: Option) -> Rejection:
    """Why ``option`` lost to ``winner``, in words written when first read (most
    decisions' losers are never read: a batch row, the closed loop)."""
    return WrittenWhenRead(
        option.action_id, None, ReasonCode.LOST_ARBITRATION, _lost_message, option, winner
    )


def _lost_message(option: Option, winner: Option) -> str:
    if winner.slot is None:
        message = f"doing nothing ({winner.action_id}, priority {winner.priority:.3g}) was picked"
    else:
        message = f"{winner.action_id} was picked (priority {winner.priority:.3g})"
    message += f"; this one had priority {option.priority:.3g}"
    chosen = winner.assessment.terms
    if (
        chosen is not None
        and chosen.deferral is not None
        and chosen.deferral.waits == option.action_id
    ):
        message += f" ({chosen.deferred_for})"
    terms = option.assessment.terms
    if terms is not None and terms.opportunity_cost:
        message += f" after its opportunity cost ({terms.kept_free_for})"
    elif terms is not None and option.priority < 0:  # it costs more than it earns
        offer = (
            f", {terms.offer_cost:g} per redemption x P(response) {terms.propensity:.3f}"
            + (f" + {anyway}" if (anyway := terms.redeemed_anyway_text) else "")
            if terms.offer_cost
            else ""
        )
        message += f": its costs ({terms.channel_cost:g} a send{offer}) exceed what it earns"
    return message


def _chosen_action(option: Option, pick: Pick) -> ChosenAction:
    action = option.candidate.action
    variant = option.candidate.variant
    slot = option.slot
    expires = None
    if slot is not None and action.offer is not None and action.offer.expires_after_hours:
        # the time limit runs from when the customer has the offer: a letter's arrival
        received = slot.send.at if slot.arrives is None else slot.arrives
        expires = received + dt.timedelta(hours=action.offer.expires_after_hours)
    return ChosenAction(
        action_id=action.id,
        action_type=action.type,
        channel=None if slot is None else slot.channel,
        send_at=None if slot is None else slot.send.at,
        send_at_local=None if slot is None else slot.send.local,
        timing_basis="" if slot is None else slot.send.basis,
        priority=option.priority,
        propensity=pick.propensity,
        terms=option.assessment.terms,
        offer_id=None if action.offer is None else action.offer.id,
        offer_expires_at=expires,
        template=(variant.template if variant and variant.template else action.template),
        variant_id=None if variant is None else variant.id,
        explored=pick.explored,
        shows=action.shows,
    )


def _check_assessments(
    policy: str,
    candidates: Sequence[ActionCandidate],
    assessments: Sequence[Sequence[ChannelAssessment]],
) -> None:
    if len(assessments) != len(candidates):
        raise ValueError(f"{policy} assessed {len(assessments)} of {len(candidates)} candidates")
    for candidate, per_channel in zip(candidates, assessments, strict=True):
        expected = list(candidate.channels) if candidate.slots else [None]
        if [a.channel for a in per_channel] != expected:
            raise ValueError(
                f"{policy}: assessments of {candidate.action.id!r} must follow its channels "
                f"{expected}"
            )


def _check_pick(policy: str, pick: Pick, n_options: int) -> None:
    if not 0 <= pick.index < n_options:
        raise ValueError(f"{policy} picked option {pick.index} of {n_options}")
    if not 0.0 < pick.propensity <= 1.0:
        raise ValueError(f"{policy} returned propensity {pick.propensity}, not in (0, 1]")
