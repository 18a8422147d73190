"""The next-best-action engine: scored priorities with Thompson-sampling exploration.

:class:`NextBestActionPolicy` scores every eligible action on every allowed
channel with a :class:`~nba.scoring.Scorer` (the rule-based one by default),
turns the scores into priorities (``response x value x lever x fatigue -
costs``, see :mod:`nba.arbitration`), drops offers whose uplift does not reach
the action's ``min_uplift`` and incentives whose uplift does not pay for them
(:attr:`~nba.arbitration.PriorityTerms.offer_pays`) where the catalog has the same
message without them (:func:`_offer_alone`: now, later or already sent), keeps each action's best
channel and picks by Thompson sampling over the per-action Beta posteriors it is given, logging
the pick's propensity. Everything else (consent, eligibility, contact policy,
bookkeeping) is the shared template of :class:`~nba.policy.DecisionPolicy`.

>>> import datetime as dt
>>> from nba.catalog import parse_catalog
>>> from nba.context import CustomerContext
>>> from nba.profile import CustomerProfile
>>> catalog = parse_catalog('''
... actions:
...   - {id: cart_reminder, type: cart_reminder, channels: [email, sms],
...      eligibility: "cart_size > 0", value: "cart_value * 0.3", timing: asap}
...   - {id: nothing, type: do_nothing}
... ''')
>>> profile = CustomerProfile("C1", timezone="Europe/Paris", cart_items=("P1",),
...                           cart_value=80.0, consents={Channel.EMAIL: True})
>>> now = dt.datetime(2026, 3, 6, 21, 30, tzinfo=dt.UTC)  # 22:30 in Paris
>>> decision = NextBestActionPolicy(catalog).decide(CustomerContext(profile, now), seed=1)
>>> [(a.action_id, a.channel, a.send_at_local.strftime("%a %H:%M")) for a in decision.actions]
[('cart_reminder', <Channel.EMAIL: 'email'>, 'Sat 07:00')]
>>> decision.reasons("cart_reminder")
(<ReasonCode.NO_CONSENT: 'no_consent'>,)
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import random
from collections.abc import Mapping, Sequence

from nba.actions import Action, ActionType
from nba.ageing import fading_at, fading_of
from nba.arbitration import (
    DEFAULT_PROPENSITY_DRAWS,
    BetaPosterior,
    ChannelAssessment,
    Option,
    Pick,
    Posterior,
    PriorityTerms,
    greedy_pick,
    priority,
    thompson_pick,
    thompson_probabilities,
)
from nba.catalog import Catalog
from nba.channels import Channel
from nba.contact_policy import ContactPolicy
from nba.context import ContextScope, CustomerContext, scope_of
from nba.deferral import closes_with_time, credit_closing_rivals
from nba.offer_trial import OfferTrial, TrialCounts, UpliftBelief, trial_counts, trial_draw
from nba.policy import DecisionPolicy, Exploration
from nba.reasons import Reason, ReasonCode, Rejection
from nba.redemption import message_order, redeemed_anyway, redemption_cost
from nba.reserve import (
    JourneySteps,
    KeptFree,
    LaterScope,
    ReminderValue,
    after_send,
    aged,
    blocks_channels,
    combined,
    delay_factor,
    free_at,
    opportunity_cost,
    pending_due,
    session_reminders,
    trigger_hours,
    trigger_per_day,
    trigger_rates,
)
from nba.rules.functions import Call
from nba.rules.tree import Literal, Logical, Not
from nba.scoring import INCENTIVE_KINDS, ActionScore, RuleBasedScorer, Scorer, check_scores
from nba.screening import ActionCandidate, ChannelSlot
from nba.timing import SendTime


class NextBestActionPolicy(DecisionPolicy):
    """The engine: model (or rule) scores, business levers, Thompson sampling.

    Parameters
    ----------
    catalog, contact_policy, max_actions
        See :class:`~nba.policy.DecisionPolicy`.
    scorer
        Supplies propensities per channel, expected values and uplift;
        :class:`~nba.scoring.RuleBasedScorer` when omitted.
    exploration
        Thompson sampling when true (default) over every (action, channel) pair the
        rules allow, with exact propensities; greedy with propensity 1 when false.
    propensity_draws
        Ignored (the propensities are exact); kept for existing callers.
    prior
        Posterior assumed for (action, channel) pairs missing from ``stats`` (new
        actions); Beta(1, 1) when omitted.
    explore_share
        The share of picks drawn uniformly among the options instead (an experiment
        arm's ``explore_share``): every option then has at least ``explore_share / n``,
        and the logged probabilities are the mixture's, exactly.
    """

    name = "nba"
    #: :attr:`_channel_costs` with the contact policy they were read from
    _costs: tuple[ContactPolicy, dict[Channel, tuple[float, bool]]] | None = None
    #: the incentives the offer-pays test refused in the last :meth:`_assess`, with the
    #: context they were assessed for (read by :meth:`explore` for the same context)
    _refused: tuple[CustomerContext, list[_Refused]] | None = None
    #: :attr:`offer_trial` with the share it was made from
    _trial: tuple[float | None, OfferTrial | None] | None = None

    def __init__(
        self,
        catalog: Catalog,
        contact_policy: ContactPolicy | None = None,
        *,
        scorer: Scorer | None = None,
        exploration: bool = True,
        propensity_draws: int = DEFAULT_PROPENSITY_DRAWS,
        prior: Posterior | None = None,
        max_actions: int = 1,
        explore_share: float = 0.0,
    ) -> None:
        super().__init__(catalog, contact_policy, max_actions=max_actions)
        if propensity_draws < 1:
            raise ValueError(f"propensity_draws must be at least 1, got {propensity_draws}")
        if not 0.0 <= explore_share <= 1.0:
            raise ValueError(f"explore_share must be in [0, 1], got {explore_share}")
        self.explore_share = explore_share
        self.scorer: Scorer = scorer or RuleBasedScorer()
        self.exploration = exploration
        self.propensity_draws = propensity_draws
        self.prior: Posterior = prior or BetaPosterior()
        self._session_reminders = session_reminders(catalog.actions)
        self._session_ids = frozenset(a.id for a in self._session_reminders)
        self._trigger_hours = {a.id: trigger_hours(a) for a in self._session_reminders}
        # the journeys' next steps time alone makes due (a sequence, a cool-down), for the
        # reserve: the session reminders have their own
        self._steps = JourneySteps([a for a in catalog.actions if a.id not in self._session_ids])
        self._offer_alone = _offer_alone(catalog.actions)
        self._plain_ids = frozenset(a.id for a in catalog.actions if _is_plain(a))
        self._closing = frozenset(a.id for a in catalog.actions if closes_with_time(a))

    def _assess(
        self, context: CustomerContext, candidates: Sequence[ActionCandidate]
    ) -> list[list[ChannelAssessment]]:
        scorable = [c for c in candidates if not c.action.is_do_nothing]
        policy = self.contact_policy
        # the time-critical reminders a next browsing session may trigger, scored with the
        # candidates (one scorer call) to value the channels a send would block (none
        # when no send would block a channel)
        blocks = any(blocks_channels(policy, s.channel) for c in scorable for s in c.slots)
        reminders, dues, valid = (
            self._reminder_candidates(context, candidates) if blocks else ([], [], [])
        )
        # a journey's next step is scored as the customer will be when it comes due
        steps: dict[float, list[ActionCandidate]] = {}
        for r, due in zip(reminders, dues, strict=True):
            if due is not None and r.action.id not in self._session_ids:
                steps.setdefault(due, []).append(r)
        scored = scorable + [r for r in reminders if r.action.id in self._session_ids]
        scores = list(self.scorer.score(context, scored)) if scored else []
        check_scores(self.scorer, scored, scores)
        by_action = {c.action.id: s for c, s in zip(scored, scores, strict=True)}
        due_context: dict[str, CustomerContext] = {}
        for due, due_steps in steps.items():
            then = aged(context, due)
            step_scores = list(self.scorer.score(then, due_steps))
            check_scores(self.scorer, due_steps, step_scores)
            for c, score in zip(due_steps, step_scores, strict=True):
                by_action[c.action.id] = score
                due_context[c.action.id] = then
        fatigue = self.contact_policy.fatigue_factor(context.profile)
        sessions = [r.action for r in reminders if r.action.id in self._session_ids]
        rates = iter(trigger_rates(context, sessions, self._trigger_hours) if sessions else [])
        reminder_values = []
        for r, due, ttl in zip(reminders, dues, valid, strict=True):
            reminder_terms = {
                k: self._terms(
                    due_context.get(r.action.id, context),
                    r.action,
                    by_action[r.action.id],
                    k,
                    fatigue,
                )
                for k in r.channels
            }
            reminder_values.append(
                ReminderValue(
                    r.action.id,
                    ttl,
                    {k: t.priority() for k, t in reminder_terms.items()},
                    next(rates) if r.action.id in self._session_ids else None,
                    due,
                    # its worth fades from its trigger's age when it is due: a cart a session
                    # will leave is fresh then, an open cart as old as it will be by then
                    (
                        fading_at(r.action.type, 0.0)
                        if due is None
                        else fading_of(r.action.type, context.profile, due)
                    ),
                    r.action.group,
                    # a late send fades its response, not the cost of sending it
                    {k: t.fixed_cost for k, t in reminder_terms.items()},
                )
            )
        before = (
            free_at(context, policy, [k for r in reminders for k in r.channels])
            if reminders
            else {}
        )
        kept_at: dict[tuple[Channel, dt.datetime], KeptFree | None] = {}
        taken_at: dict[tuple[int, Channel, dt.datetime], KeptFree | None] = {}
        plain = _plain_messages(scorable, self._plain_ids)
        # the session reminders eligible now: another action's send that blocks their
        # channels at their own send time takes them (a cross-sell due tomorrow evening
        # keeps a fresh cart's capped e-mail from going in the morning)
        present = (
            [
                (c, self._present_value(context, c, by_action[c.action.id], fatigue))
                for c in candidates
                if c.action.id in self._session_ids
            ]
            if blocks
            else []
        )
        assessments: list[list[ChannelAssessment]] = []
        trial = self.offer_trial
        refused: list[_Refused] = []  # incentives the offer-pays test refused, to try
        tried: list[tuple[ChannelSlot, ChannelAssessment]] = []
        for candidate in candidates:
            action = candidate.action
            if action.is_do_nothing:
                assessments.append([ChannelAssessment(None, candidate.value * action.lever)])
                continue
            score = by_action[action.id]
            incentive = action.offer is not None and action.offer.kind in INCENTIVE_KINDS
            fading = fading_of(action.type, context.profile)
            per_channel: list[ChannelAssessment] = []
            for slot in candidate.slots:
                channel = slot.channel
                kept = None
                if reminder_values:
                    slot_key = (channel, slot.send.at)  # several actions share a slot
                    if slot_key not in kept_at:
                        after = after_send(context, policy, before, channel, slot.send.at)
                        kept = opportunity_cost(context.now_utc, reminder_values, before, after)
                        kept_at[slot_key] = kept and dataclasses.replace(kept, channel=channel)
                    kept = kept_at[slot_key]
                for k, (reminder, (value, own)) in enumerate(present):
                    if reminder is candidate:
                        continue
                    taken_key = (k, channel, slot.send.at)  # several actions share a slot
                    if taken_key not in taken_at:
                        after = after_send(context, policy, own, channel, slot.send.at)
                        taken = opportunity_cost(context.now_utc, [value], own, after)
                        taken_at[taken_key] = taken and dataclasses.replace(taken, channel=channel)
                    if (taken := taken_at[taken_key]) is not None:
                        kept = combined(kept, taken)
                # a reminder whose worth fades with its trigger's age is worth less the
                # later its slot sends (a capped e-mail tomorrow against an SMS at 08:00)
                late = 1.0 if fading is None else delay_factor(context, slot, fading)
                terms = self._terms(context, action, score, channel, fatigue, kept, late)
                uplift = None if score.uplift is None else score.uplift.get(channel)
                reason = _uplift_reason(action.min_uplift, uplift, channel)
                offer_refused = (
                    reason is None
                    and incentive
                    and ((action.type, channel) in plain or action.id in self._offer_alone)
                )
                if offer_refused:
                    reason = _offer_reason(terms, channel)
                # terms.priority() at scale 1, the terms' own check having bounded the
                # propensity and uplift by 1 (its min(1.0, x * 1.0) gives x itself)
                at = priority(
                    terms.propensity,
                    terms.value,
                    terms.lever,
                    uplift=terms.uplift,
                    channel_cost=terms.channel_cost,
                    offer_cost=terms.offer_cost,
                    fatigue=terms.fatigue,
                    opportunity_cost=terms.opportunity_cost,
                    redeemed_anyway=terms.redeemed_anyway,
                    anyway_cost=terms.anyway_cost,
                )
                per_channel.append(ChannelAssessment(channel, at, terms, reason))
                if offer_refused and reason is not None and trial is not None:
                    tried.append((slot, ChannelAssessment(channel, at, terms)))
            if tried:
                refused.append(_Refused(candidate, tried))
                tried = []
            assessments.append(per_channel)
        self._refused = (context, refused) if trial is not None else None
        # an action that can wait gives way to one whose window closes (nba.deferral)
        if any(c.action.id in self._closing for c in scorable):
            credit_closing_rivals(context, policy, candidates, assessments, self._closing)
        return assessments

    def _present_value(
        self,
        context: CustomerContext,
        candidate: ActionCandidate,
        score: ActionScore,
        fatigue: float,
    ) -> tuple[ReminderValue, dict[Channel, dt.datetime]]:
        """A session reminder eligible now as the reserve values it (triggered now, its
        priority on each of its channels), and when each channel's slot would send it."""
        action = candidate.action
        terms = {
            s.channel: self._terms(context, action, score, s.channel, fatigue)
            for s in candidate.slots
        }
        value = ReminderValue(
            action.id,
            action.ttl_hours,
            {k: t.priority() for k, t in terms.items()},
            due_hours=0.0,
            fading=fading_of(action.type, context.profile),
            costs={k: t.fixed_cost for k, t in terms.items()},
        )
        return value, {s.channel: s.send.at for s in candidate.slots}

    @property
    def _channel_costs(self) -> dict[Channel, tuple[float, bool]]:
        """Each channel's send cost and whether it counts toward the caps, read from the
        contact policy's rules as channels come up (kept with the policy they are of)."""
        held = self._costs
        if held is None or held[0] is not self.contact_policy:
            held = self._costs = (self.contact_policy, {})
        return held[1]

    @property
    def offer_trial(self) -> OfferTrial | None:
        """The trial of incentives refused on priors (:mod:`nba.offer_trial`), from the
        contact policy's ``offer_trial_share`` (``None``: off)."""
        share = self.contact_policy.offer_trial_share
        held = self._trial
        if held is None or held[0] != share:
            held = self._trial = (share, None if share is None else OfferTrial(share=share))
        return held[1]

    def _terms(
        self,
        context: CustomerContext,
        action: Action,
        score: ActionScore,
        channel: Channel,
        fatigue: float,
        kept: KeptFree | None = None,
        late: float = 1.0,
    ) -> PriorityTerms:
        """The priority terms of ``action`` on ``channel`` from its score, and the send's
        opportunity cost when it has one (:mod:`nba.reserve`); ``late``: the share of
        its response left at the slot's send time (:func:`nba.reserve.delay_factor`),
        which scales its response probabilities (and so the offer's redemptions on the
        message's orders; those on orders placed anyway, :mod:`nba.redemption`, do not
        depend on the message's response)."""
        costs = self._channel_costs
        cost = costs.get(channel)
        if cost is None:
            rules = self.contact_policy.rules(channel)
            cost = costs[channel] = (rules.cost, rules.counts_toward_total)
        channel_cost, counted = cost
        offer = action.offer
        uplift = None if score.uplift is None else score.uplift.get(channel)
        if late != 1.0:  # responses (and so redemptions) fade with the send's delay
            uplift = None if uplift is None else uplift * late
        offer_cost, anyway_cost, anyway = 0.0, None, 0.0
        if offer is not None and offer.cost > 0.0:
            # each redemption at what it gives up on its order: the message's (a cart
            # reminder's cart) or an order placed anyway (the customer's usual basket)
            profile = context.profile
            offer_cost = redemption_cost(offer, message_order(profile, action.type))
            anyway_cost = redemption_cost(offer, max(0.0, profile.average_basket))
            anyway = redeemed_anyway(profile, channel, offer)
        return PriorityTerms(
            propensity=score.propensity[channel] * late,
            value=score.expected_value,
            lever=action.lever,
            # with an offer, the uplift is the offer's own effect (arbitration doc)
            uplift=None if offer is not None else uplift,
            channel_cost=channel_cost,
            offer_cost=offer_cost,
            fatigue=fatigue if counted else 1.0,
            offer_uplift=uplift if offer is not None else None,
            redeemed_anyway=anyway,
            opportunity_cost=0.0 if kept is None else kept.cost,
            kept_free=kept,
            ceiling=1.0 if score.ceiling is None else min(1.0, score.ceiling.get(channel, 1.0)),
            anyway_cost=None if anyway_cost == offer_cost else anyway_cost,
        )

    def _reminder_candidates(
        self, context: CustomerContext, candidates: Sequence[ActionCandidate]
    ) -> tuple[list[ActionCandidate], list[float | None], list[float]]:
        """What a send now could take a channel from (:mod:`nba.reserve`): the catalog's
        session-triggered time-critical reminders this customer could get after a next
        browsing session, or that a trigger already gave and that become due later; and
        the journeys' next steps that time alone makes due (:func:`nba.reserve.step_due`:
        the cart's second reminder once the cart is a day old, a welcome's next message).
        Each not eligible now, out of its cool-down (a step: by its due time), on the
        outbound channels the customer consented to; valued now (a step: as the customer
        will be when it comes due); with the hours until it is due when its trigger
        already happened, and its validity in hours from then."""
        if not self._session_reminders and not self._steps.plans:
            return [], [], []
        present = {c.action.id for c in candidates}
        out: list[ActionCandidate] = []
        dues: list[float | None] = []
        valid: list[float] = []
        for action in self._session_reminders:
            if action.id in present:
                continue
            since = context.hours_since_sent(action.id)
            if (
                since is not None
                and since < (action.cooldown_hours or 0.0)
                and not (action.cooldown_per_cart and context.cart_added_since_sent(action.id))
            ):
                continue
            due = pending_due(context, action)
            if due is None and trigger_per_day(context.profile, action) <= 0.0:
                continue
            candidate = self._reminder_candidate(context, action, scope_of(context))
            if candidate is not None:
                out.append(candidate)
                dues.append(due)
                valid.append(action.ttl_hours)
        for action, due, validity in self._steps.due(context, present):
            later = LaterScope(context, due)
            candidate = self._reminder_candidate(context, action, later)
            if candidate is not None:
                out.append(candidate)
                dues.append(due)
                valid.append(validity)
        return out, dues, valid

    def _reminder_candidate(
        self, context: CustomerContext, action: Action, scope: ContextScope
    ) -> ActionCandidate | None:
        """``action`` as the reserve values it: on the outbound channels the customer
        consented to, its value read from ``scope`` (``None`` without a channel)."""
        rules = self.contact_policy.rules
        channels = [
            k
            for k in action.channels
            if context.profile.consented(k) and not rules(k).requires_session
        ]
        if not channels:
            return None
        value = max(0.0, action.value.number(scope) or 0.0)
        now, local = context.now_utc, context.local_now
        slots = tuple(ChannelSlot(k, SendTime(now, local, "")) for k in channels)
        return ActionCandidate(action, value, None, slots)

    def explore(
        self,
        context: CustomerContext,
        options: Sequence[Option],
        viable: Mapping[str, Sequence[tuple[ChannelSlot, ChannelAssessment]]],
        stats: Mapping[str, Posterior],
        rng: random.Random,
    ) -> Exploration | None:
        """Thompson sampling over every (action, channel) pair, not only each action's
        best channel: the statistics are per pair, so channels are explored too. With an
        offer trial (:mod:`nba.offer_trial`), each incentive the offer-pays test refused
        is tried, instead of that pick, on its open share of the customers."""
        trials = self._trial_options(context, stats)
        if not self.exploration and not trials:
            return None
        pairs = self.exploration_options(options, viable)
        if not pairs:
            return None
        pick = self._pick(pairs, stats, rng)
        if not trials:
            return Exploration(pairs, pick)
        return _trial_mixture(context, pairs, pick, trials)

    def _trial_options(
        self, context: CustomerContext, stats: Mapping[str, Posterior]
    ) -> list[_TrialOption]:
        """The incentives refused for ``context`` in the last :meth:`_assess`, each on its
        best refused channel with its open probability (those the trial has stopped left
        out)."""
        held, trial = self._refused, self.offer_trial
        if held is None or held[0] is not context or trial is None:
            return []
        out: list[_TrialOption] = []
        for refused in held[1]:
            slot, assessment = max(refused.slots, key=lambda s: s[1].priority)
            offer = refused.candidate.action.offer
            assert offer is not None  # an incentive
            counts = trial_counts(stats, refused.candidate.action.id)
            share = trial.open_probability(counts, offer.cost)
            if share >= MIN_TRIAL_SHARE:
                option = Option(refused.candidate, slot, assessment)
                out.append(_TrialOption(option, share, counts, trial.belief(counts, offer.cost)))
        return out

    def _recheck(
        self,
        context: CustomerContext,
        option: Option,
        viable: Sequence[tuple[ChannelSlot, ChannelAssessment]],
        pending: Mapping[Channel, int],
    ) -> Option | Rejection:
        """An incentive on trial is tried as the decision's first pick only: a later pick
        leaves it out (the offer-pays test refused it)."""
        terms = option.assessment.terms
        if (
            option.slot is not None
            and option.assessment.reason is None
            and terms is not None
            and not terms.offer_pays
            and self._refused is not None
            and self._refused[0] is context
            and any(r.candidate is option.candidate for r in self._refused[1])
        ):
            reason = _offer_reason(terms, option.slot.channel)
            assert reason is not None
            return Rejection(option.action_id, option.slot.channel, reason.code, reason.message)
        return super()._recheck(context, option, viable, pending)

    def exploration_options(
        self,
        options: Sequence[Option],
        viable: Mapping[str, Sequence[tuple[ChannelSlot, ChannelAssessment]]],
    ) -> list[Option]:
        """The options the first pick is made among: each action on its best channel when
        exploration is off, else on every channel it may use (do-nothing as it is)."""
        if not self.exploration:
            return list(options)
        pairs: list[Option] = []
        for option in options:
            channels = viable.get(option.action_id, ())
            if option.slot is None or len(channels) <= 1:
                pairs.append(option)
                continue
            pairs += [Option(option.candidate, slot, a) for slot, a in channels]
        return pairs

    def _pick(
        self,
        options: Sequence[Option],
        stats: Mapping[str, Posterior],
        rng: random.Random,
    ) -> Pick:
        if not self.exploration:
            return greedy_pick(options)
        share = self.explore_share
        if share <= 0.0:
            return thompson_pick(options, stats, rng, prior=self.prior)
        n = len(options)
        uniform = rng.random() < share
        drawn = rng.randrange(n) if uniform else -1
        pick = thompson_pick(options, stats, rng, prior=self.prior)
        index = drawn if uniform else pick.index
        probabilities = tuple((1.0 - share) * p + share / n for p in pick.probabilities)
        basis = f"drawn uniformly among {n} options (share {share:g})" if uniform else pick.basis
        greedy = greedy_pick(options).index
        return Pick(
            index,
            probabilities[index],
            explored=index != greedy,
            basis=basis,
            probabilities=probabilities,
        )

    def pick_probabilities(
        self,
        options: Sequence[Option],
        stats: Mapping[str, Posterior],
        rng: random.Random,
        *,
        draws: int | None = None,
    ) -> list[float]:
        """The probability that this policy picks each of ``options``, summing to 1.

        One-hot on the highest priority when exploration is off; otherwise the
        exact Thompson-sampling distribution (:func:`~nba.arbitration.thompson_probabilities`;
        ``draws`` is ignored). Off-policy evaluation needs the whole distribution, not
        only the chosen option's propensity.
        """
        if not self.exploration:
            probabilities = [0.0] * len(options)
            probabilities[greedy_pick(options).index] = 1.0
            return probabilities
        exact = thompson_probabilities(options, stats, prior=self.prior)
        share, n = self.explore_share, len(options)
        return [(1.0 - share) * p + share / n for p in exact] if share > 0 else exact


#: An open probability below this stops a trial (its evidence says the offer loses).
MIN_TRIAL_SHARE = 1e-3


@dataclasses.dataclass(frozen=True, slots=True)
class _Refused:
    """An incentive the offer-pays test refused, on the channels it was refused on."""

    candidate: ActionCandidate
    slots: list[tuple[ChannelSlot, ChannelAssessment]]


@dataclasses.dataclass(frozen=True, slots=True)
class _TrialOption:
    option: Option
    share: float  # the open probability
    counts: TrialCounts | None
    belief: UpliftBelief


def _trial_mixture(
    context: CustomerContext, pairs: Sequence[Option], pick: Pick, trials: Sequence[_TrialOption]
) -> Exploration:
    """The first pick with the trials in front of it: trial ``i`` is tried when the
    customer's draw for it is below its open share and no earlier trial was (probability
    ``share_i x prod_{j<i} (1 - share_j)``); otherwise ``pick`` stands, every option's
    probability scaled by the chance that no trial was tried. Exact, for off-policy
    evaluation; deterministic per customer (:func:`~nba.offer_trial.trial_draw`)."""
    stay = 1.0
    tried: int | None = None
    shares: list[float] = []
    for i, t in enumerate(trials):
        shares.append(stay * t.share)
        if tried is None and trial_draw(t.option.action_id, context.customer_id) < t.share:
            tried = i
        stay *= 1.0 - t.share
    known = pick.probabilities
    if len(known) != len(pairs):
        known = tuple(pick.propensity if i == pick.index else 0.0 for i in range(len(pairs)))
    probabilities = tuple(stay * p for p in known) + tuple(shares)
    options = [*pairs, *(t.option for t in trials)]
    if tried is not None:
        index = len(pairs) + tried
        basis = "explored: " + _trial_text(trials[tried])
        return Exploration(options, Pick(index, probabilities[index], True, basis, probabilities))
    held = "; ".join(f"held out of the trial of {_trial_text(t)}" for t in trials)
    basis = f"{pick.basis}; {held}" if pick.basis else held
    return Exploration(
        options, Pick(pick.index, probabilities[pick.index], pick.explored, basis, probabilities)
    )


def _trial_text(trial: _TrialOption) -> str:
    """An incentive on trial, in words: refused on priors, tried on a share, and why."""
    counts = trial.counts
    if counts is None or counts.treated <= 0 or counts.held <= 0:
        evidence = "no evidence yet, the marketer's trial share"
    else:
        evidence = (
            f"P(it pays) {trial.belief.pays:.2f}, {trial.belief.mean:+.3f} a decision over "
            f"the default from {counts.treated:.0f} tried and {counts.held:.0f} held out"
        )
    return (
        f"{trial.option.action_id} (refused on priors: its uplift does not pay its cost), "
        f"tried on {trial.share:.1%} of the customers it is refused to ({evidence})"
    )


def _is_plain(action: Action) -> bool:
    """A message without an incentive (none, or a gift such as birthday points)."""
    return not action.is_do_nothing and (
        action.offer is None or action.offer.kind not in INCENTIVE_KINDS
    )


def _plain_messages(
    candidates: Sequence[ActionCandidate], plain: frozenset[str]
) -> set[tuple[ActionType, Channel]]:
    """The (action type, channel) pairs on which a message without an incentive can go now
    (``plain``: the ids of the catalog's actions that are such messages, :func:`_is_plain`):
    where an incentive of the same type has this alternative, giving it is a choice about
    the offer alone, and the offer must pay for itself (:func:`_offer_reason`)."""
    return {(c.action.type, s.channel) for c in candidates if c.action.id in plain for s in c.slots}


def _offer_alone(actions: Sequence[Action]) -> frozenset[str]:
    """The incentives (action ids) the catalog has the same message without: a plain action
    of the incentive's type (:func:`_is_plain`) in its group (the same journey's message:
    a cart's plain reminders), or one that can be sent again (it comes back, as "we miss
    you" does after its cool-down). The customer can get that message now, later, or has
    already had it, so giving the incentive is a choice about the offer alone and the
    offer must pay for itself (:attr:`~nba.arbitration.PriorityTerms.offer_pays`). A win-back
    discount must pay for itself even while "we miss you" cools down; once a cart's plain
    reminders are spent, the discount reminder is the cart's last message, and it too goes
    only to a customer whom the discount moves enough to pay for it: what the product
    promises ("escalate to a time-limited discount only for customers whom it moves").
    Valued as a message of its own (message + uplift - its cost on every redemption) it
    went to full-price buyers: in the closed loop 42-57 such e-mails per 600 customers and
    seed at -0.22 to -0.46 each in the truth (BENCHMARKS.md, issue 12, calib5).

    A plain message its rule sends once (``not known(hours_since_sent('<its id>'))``) and
    outside the incentive's group is another message, not this one without its offer: a
    welcome series' first two steps against its third, which carries free shipping. An
    incentive without the same message competes as a message of its own; refused on the
    offer alone, the message was lost with it: every prospect has the store's promotion
    share as theirs, so the third welcome went to all of them or none by where that share
    fell (0.109 against a break-even of 0.110: none on one simulated retailer, where the
    rules' third welcomes earned 0.19 each; BENCHMARKS.md, issue 12, offer11).

    >>> from nba.catalog import parse_catalog
    >>> catalog = parse_catalog('''
    ... actions:
    ...   - {id: hello, type: welcome, channels: [email], value: 1,
    ...      eligibility: "not known(hours_since_sent('hello'))"}
    ...   - {id: hello_offer, type: welcome, channels: [email], value: 1,
    ...      offer: {id: fs, kind: free_shipping, value: 0, cost: 4.5}}
    ...   - {id: miss_you, type: reactivation, channels: [email], value: 1, cooldown_hours: 720}
    ...   - {id: miss_you_offer, type: reactivation, channels: [email], value: 1,
    ...      offer: {id: w, kind: percent_discount, value: 15, cost: 7}}
    ... ''')
    >>> sorted(_offer_alone(catalog.actions))
    ['miss_you_offer']
    """
    incentives = [a for a in actions if not a.is_do_nothing and not _is_plain(a)]
    plain = [a for a in actions if _is_plain(a)]
    return frozenset(
        incentive.id
        for incentive in incentives
        if any(
            a.type is incentive.type
            and ((a.group is not None and a.group == incentive.group) or not _sent_once(a))
            for a in plain
        )
    )


def _sent_once(action: Action) -> bool:
    """Whether ``action``'s rule sends it at most once to a customer: one of the
    conditions it requires (its top-level ``and``) is ``not known(hours_since_sent(<its
    own id>))``."""
    if action.eligibility is None:
        return False
    tree = action.eligibility.tree
    required = tree.operands if isinstance(tree, Logical) and tree.op == "and" else [tree]
    for node in required:
        if not isinstance(node, Not) or not isinstance(known := node.operand, Call):
            continue
        if known.name != "known" or len(known.args) != 1:
            continue
        sent = known.args[0]
        if (
            isinstance(sent, Call)
            and sent.name == "hours_since_sent"
            and len(sent.args) == 1
            and isinstance(sent.args[0], Literal)
            and sent.args[0].value == action.id
        ):
            return True
    return False


def _offer_reason(terms: PriorityTerms, channel: Channel) -> Reason | None:
    """Why an incentive is not worth giving on ``channel``: its uplift does not pay for it."""
    if terms.offer_pays or terms.offer_uplift is None:
        return None
    anyway = terms.redeemed_anyway_text
    return Reason(
        ReasonCode.UPLIFT_TOO_LOW,
        f"the offer's uplift {terms.offer_uplift:.3f} x value {terms.value:.2f} on "
        f"{channel.value} does not pay its cost {terms.offer_cost:g} on every redemption "
        f"(P(response) {terms.propensity:.3f}{anyway and ', ' + anyway})",
    )


def _uplift_reason(minimum: float | None, uplift: float | None, channel: Channel) -> Reason | None:
    if minimum is None:
        return None
    if uplift is None:
        return Reason(
            ReasonCode.UPLIFT_TOO_LOW,
            f"no uplift estimate on {channel.value}; {minimum:g} required",
        )
    if uplift < minimum:
        return Reason(
            ReasonCode.UPLIFT_TOO_LOW,
            f"uplift {uplift:.3f} on {channel.value} is below the required {minimum:g}",
        )
    return None
