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
* :class:`LookaheadOraclePolicy` is the same oracle with a value of waiting: it
  contacts only if the true margin now beats what the contact costs the best
  opportunities of the coming days (see its doc): fatigue, caps spent now, and
  a better moment for the same customer later in the horizon.
* :class:`TruthScorer` *is* such a scorer: true incremental response
  probabilities, values and offer uplifts, fed to the engine's own formula.
  The gap between ``nba`` and ``nba+truth`` is what better scores would buy;
  the gap between ``nba+truth`` and the oracle is what the formula costs.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import pandas as pd

from nba.arbitration import ChannelAssessment
from nba.budgets import UsageCounts
from nba.catalog import Catalog
from nba.channels import Channel
from nba.contact_policy import ContactPolicy
from nba.context import CustomerContext
from nba.events import EventType
from nba.policy import DecisionPolicy
from nba.reasons import Reason, ReasonCode
from nba.scoring import ActionScore
from nba.screening import ActionCandidate, ChannelSlot, Restriction, Screening, screen
from simulator import ExpectedValue
from simulator.closed_loop.mapping import SIMULATED_CHANNELS, Message, MessageMapping
from simulator.closed_loop.truth import TickMargins, TrueValue, TruthRows, as_ns


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

    def rows(self) -> TruthRows:
        return TruthRows(
            self.context.customer_id,
            [slot.channel for _, slot, _ in self.pairs],
            [slot.send.at for _, slot, _ in self.pairs],
            [message for _, _, message in self.pairs],
            [_recent_contacts(self.context)] * len(self.pairs),
        )

    def value(self, truth: TrueValue, *, with_offers: bool = True) -> ExpectedValue:
        return truth.of_rows(self.rows(), with_offers=with_offers)


class OraclePolicy(DecisionPolicy):
    """Highest true incremental margin among the slots the rules allow (see module doc).

    Its truth calls are served by :class:`~simulator.closed_loop.truth.TickMargins`:
    :meth:`prepare_tick` values the slots of the coming decisions in one call (the closed
    loop calls it with each tick's customers), and a decision not prepared is valued by
    itself, with the same values.
    """

    name = "oracle-myopic"

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
        self.margins = TickMargins(truth)
        #: the screening :meth:`prepare_tick` ran, by customer: (context, the budgets it
        #: read, screening)
        self._screened: dict[str, tuple[CustomerContext, tuple[int, ...], Screening]] = {}
        # what a screening reads of the day's usage: the budgeted offers' and actions'
        # counts (nba.budgets.budget_reason) against their daily limits
        self._budgets = (
            tuple(
                dict.fromkeys(
                    (a.offer.id, a.offer.daily_budget)
                    for a in catalog
                    if a.offer is not None and a.offer.daily_budget is not None
                )
            ),
            tuple((a.id, a.daily_volume) for a in catalog if a.daily_volume is not None),
        )
        self.screenings_reused = 0  # decisions given the screening prepared for them
        self.screenings_run = 0  # decisions that screened anew (not prepared, or budgets used)

    def prepare_tick(self, decisions: Sequence[tuple[CustomerContext, UsageCounts]]) -> None:
        """Value at once what the coming ``decisions`` (each customer's context and the
        usage of budgets it will likely see) will ask the truth for: their screening is run
        here too, to know their slots (a decision whose screening then differs, because an
        earlier one used a budget, is valued by itself)."""
        requests = []
        self._screened = {}
        for context, usage in decisions:
            screening = screen(self.catalog, self.contact_policy, context, usage)
            self._screened[context.customer_id] = (context, self._budgets_used(usage), screening)
            requests.append(self._truth_rows(context, screening.candidates))
        self.margins.prepare(requests)

    def _screen(
        self, context: CustomerContext, usage: UsageCounts, restriction: Restriction | None
    ) -> Screening:
        """The screening :meth:`prepare_tick` ran for this very context with the same
        counts of the budgeted offers and actions (the same inputs: the same screening),
        else a new one."""
        kept = self._screened.pop(context.customer_id, None)
        if (
            kept is not None
            and restriction is None
            and kept[0] is context
            and kept[1] == self._budgets_used(usage)
        ):
            self.screenings_reused += 1
            return kept[2]
        self.screenings_run += 1
        return super()._screen(context, usage, restriction)

    def _budgets_used(self, usage: UsageCounts) -> tuple[int, ...]:
        """What a screening reads of ``usage`` (:func:`nba.budgets.budget_reason`): for each
        budgeted offer and action, -1 while its count is below its daily limit (no reason:
        the count is read nowhere else), else the count (the rejection's words give it).
        Two usages with the same answer give the same screening, so the one prepared for a
        tick serves its decision until a budget runs out, not only until a count moves."""
        offers, actions = self._budgets
        given, sent = usage.offers_given, usage.actions_sent
        return (
            *(-1 if (n := given.get(o, 0)) < limit else n for o, limit in offers),
            *(-1 if (n := sent.get(a, 0)) < limit else n for a, limit in actions),
        )

    def _truth_rows(
        self, context: CustomerContext, candidates: Sequence[ActionCandidate]
    ) -> TruthRows:
        """The rows :meth:`_assess` values for these candidates."""
        return _Slots(context, candidates, self.mapping).rows()

    def _assess(
        self, context: CustomerContext, candidates: Sequence[ActionCandidate]
    ) -> list[list[ChannelAssessment]]:
        slots = _Slots(context, candidates, self.mapping)
        margin = self.margins.margin(slots.rows())
        by_slot = {
            (index, slot.channel): float(m)
            for (index, slot, _), m in zip(slots.pairs, margin, strict=True)
        }
        return _assessments(candidates, by_slot)


#: Days ahead the lookahead oracle values: a contact counts in the truth's fatigue
#: (contacts of the last 7 days) and in the weekly caps for a week.
LOOKAHEAD_DAYS = 6
#: A reminder goes out this long after the cart or the browsing that triggers it.
REMINDER_DELAY = dt.timedelta(hours=1)
#: Channels a future reminder is valued on (the best one the customer consented to).
REMINDER_CHANNELS: tuple[Channel, ...] = (Channel.EMAIL, Channel.PUSH, Channel.SMS)


@dataclass(frozen=True)
class FutureTriggers:
    """When each customer will fill a cart or browse, from the world's background.

    The background (the customers' own behaviour after the cut) is the same for
    every policy, so an oracle may read ahead in it. ``at`` holds UTC
    nanoseconds in time order, ``cart`` whether the event is an add-to-cart
    (else a product view) and ``product`` its product id, per customer.
    """

    events: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]

    @classmethod
    def of(cls, background: pd.DataFrame) -> FutureTriggers:
        kinds = {EventType.ADD_TO_CART.value, EventType.PRODUCT_VIEW.value}
        rows = background[background["event_type"].isin(kinds)]
        at = as_ns(list(pd.to_datetime(rows["timestamp"], utc=True)))
        cart = (rows["event_type"] == EventType.ADD_TO_CART.value).to_numpy()
        products = rows["product_id"].astype(object).to_numpy()
        customers = rows["customer_id"].astype(str).to_numpy()
        order = np.lexsort((at, customers))
        events: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
        if order.size:
            sorted_ids = customers[order]
            cuts = np.flatnonzero(sorted_ids[1:] != sorted_ids[:-1]) + 1
            for part in np.split(order, cuts):
                events[str(customers[part[0]])] = (at[part], cart[part], products[part])
        return cls(events)

    def between(
        self, customer_id: str, start: dt.datetime, end: dt.datetime
    ) -> list[tuple[dt.datetime, str, str]]:
        """The triggers in ``(start, end]``: every cart filled and the last product viewed,
        as (moment, message kind, product)."""
        found = self.events.get(customer_id)
        if found is None:
            return []
        at, cart, products = found
        low, high = np.searchsorted(at, as_ns([start, end]), side="right")
        out = []
        last_view = None
        for i in range(low, high):
            if cart[i]:
                out.append((_from_ns(at[i]), "cart_reminder", str(products[i])))
            else:
                last_view = i
        if last_view is not None:
            out.append((_from_ns(at[last_view]), "browse_reminder", str(products[last_view])))
        return out


def _from_ns(ns: np.int64) -> dt.datetime:
    return dt.datetime.fromtimestamp(int(ns) / 1e9, tz=dt.UTC)


class _Opportunity(NamedTuple):
    """A message the oracle could send later: when, on what channel, and the candidate
    it repeats (``action_index``; -1 for a reminder of a future cart or browsing). A named
    tuple: a decision makes six per slot, and a frozen dataclass's construction was ~a
    tenth of the plan's CPU."""

    at: dt.datetime
    channel: Channel
    message: Message
    action_index: int  # the candidate it repeats, -1 for a future trigger


@dataclass(frozen=True)
class _Plan:
    """What :meth:`LookaheadOraclePolicy._assess` values: the slots now, the later
    opportunities, when each could go out after each slot, which repeat a slot's action
    (``again``) and which are future triggers, and the truth's rows for all of them."""

    now: list[tuple[int, ChannelSlot, Message]]
    later: list[_Opportunity]
    delayed: list[list[dt.datetime]]
    again: list[int]
    triggers: list[int]
    rows: TruthRows


class LookaheadOraclePolicy(OraclePolicy):
    """The oracle with a value of waiting, over the days a contact weighs on.

    For each slot the rules allow now (margin ``m`` now, true and incremental,
    net of contact, offer and unsubscribe costs), the oracle also values the
    customer's *future opportunities* under the true response model:

    * each other simulated (action, channel) eligible now, at the same moment 1
      to ``lookahead_days`` days later: what a contact now costs them is fatigue
      (one more recent contact in the truth) and caps (an opportunity whose
      weekly or monthly cap, on its channel or overall, this contact uses up is
      gone). The slot's own action later is not an opportunity: an oracle that
      waited for a better day for the same message (tried) kept postponing and
      earned less;
    * the carts the customer will fill and the products they will browse within
      the contact policy's ``message_gap_hours`` (read ahead in the background,
      :class:`FutureTriggers`): a reminder an hour later, on their best
      consented channel; a contact now delays it to the end of the gap, when the
      cart is older.

    With ``F0`` the best of these future opportunities if the oracle waits (none:
    0) and ``F1`` the best after sending this slot now, the slot is worth
    ``m + F1 - F0``: the oracle sends the slot of highest such value when it is
    positive, else waits. That value is its priority, so the volume-matched
    variant keeps its best contacts. It is greedy: one contact ahead, opportunities
    valued one at a time, and it does not re-plan its later contacts.
    """

    name = "oracle"

    def __init__(
        self,
        catalog: Catalog,
        contact_policy: ContactPolicy | None = None,
        *,
        truth: TrueValue,
        mapping: MessageMapping,
        triggers: FutureTriggers | None = None,
        horizon_end: dt.datetime | None = None,
        lookahead_days: int = LOOKAHEAD_DAYS,
        max_actions: int = 1,
    ) -> None:
        super().__init__(
            catalog, contact_policy, truth=truth, mapping=mapping, max_actions=max_actions
        )
        if lookahead_days < 1:
            raise ValueError(f"lookahead_days must be at least 1, got {lookahead_days}")
        self.triggers = triggers
        self.horizon_end = horizon_end
        self.lookahead_days = lookahead_days
        self._days = [dt.timedelta(days=day) for day in range(1, lookahead_days + 1)]
        #: the plans :meth:`prepare_tick` made, by customer: (context, candidates, plan)
        self._plans: dict[str, tuple[CustomerContext, Sequence[ActionCandidate], _Plan]] = {}

    def prepare_tick(self, decisions: Sequence[tuple[CustomerContext, UsageCounts]]) -> None:
        self._plans = {}
        super().prepare_tick(decisions)

    def _truth_rows(
        self, context: CustomerContext, candidates: Sequence[ActionCandidate]
    ) -> TruthRows:
        plan = self._plan(context, candidates)
        self._plans[context.customer_id] = (context, candidates, plan)
        return plan.rows

    def _prepared_plan(
        self, context: CustomerContext, candidates: Sequence[ActionCandidate]
    ) -> _Plan:
        """The plan :meth:`prepare_tick` made for this very context and the same
        candidates (the screening it prepared, reused), else a new one: a plan depends on
        nothing else."""
        kept = self._plans.pop(context.customer_id, None)
        if (
            kept is not None
            and kept[0] is context
            and len(kept[1]) == len(candidates)
            and all(a is b for a, b in zip(kept[1], candidates, strict=True))
        ):
            return kept[2]
        return self._plan(context, candidates)

    def _plan(self, context: CustomerContext, candidates: Sequence[ActionCandidate]) -> _Plan:
        now = _Slots(context, candidates, self.mapping).pairs
        later = self._opportunities(context, now)
        gap = self._gap()
        # per slot sent now, when each opportunity could still go out
        delayed = [
            [o.at if o.action_index >= 0 else max(o.at, slot.send.at + gap) for o in later]
            for _, slot, _ in now
        ]
        recent = _recent_contacts(context)
        n, m = len(now), len(later)
        # Valued once each: the slots now, the opportunities if waiting, and after a slot
        # is sent (one more recent contact): a repeat's moment does not depend on the slot,
        # so its row is shared by every slot; a future trigger's does (the gap it waits).
        again = [j for j, o in enumerate(later) if o.action_index >= 0]
        triggers = [j for j, o in enumerate(later) if o.action_index < 0]
        after_rows = [later[j] for j in again] + [later[j] for _ in now for j in triggers]
        at = [slot.send.at for _, slot, _ in now] + [o.at for o in later]
        at += [later[j].at for j in again] + [row[j] for row in delayed for j in triggers]
        channels = [slot.channel for _, slot, _ in now] + [o.channel for o in later + after_rows]
        messages = [message for _, _, message in now] + [o.message for o in later + after_rows]
        rows = TruthRows(
            context.customer_id,
            channels,
            at,
            messages,
            [recent] * (n + m) + [recent + 1] * len(after_rows),
        )
        return _Plan(now, later, delayed, again, triggers, rows)

    def _assess(
        self, context: CustomerContext, candidates: Sequence[ActionCandidate]
    ) -> list[list[ChannelAssessment]]:
        plan = self._prepared_plan(context, candidates)
        now, later, delayed = plan.now, plan.later, plan.delayed
        again, triggers = plan.again, plan.triggers
        n, m = len(now), len(later)
        margin = self.margins.margin(plan.rows)
        value = margin[:n]
        if m:
            waited = margin[n : n + m]
            after = np.empty((n, m))
            after[:, again] = margin[n + m : n + m + len(again)]
            after[:, triggers] = margin[n + m + len(again) :].reshape(n, len(triggers))
            # whether each opportunity's channel is capped depends on the channels alone:
            # asked once per (channel, channel sent now), not per opportunity and slot
            capped: dict[tuple[Channel, Channel | None], bool] = {}

            def is_open(channel: Channel, sent: Channel | None) -> bool:
                key = (channel, sent)
                if key not in capped:
                    capped[key] = self._capped(context, channel, sent)
                return not capped[key]

            open_now = np.array([is_open(o.channel, None) for o in later])
            repeats = np.array([o.action_index for o in later])
            end = self.horizon_end
            for k, (index, slot, _) in enumerate(now):
                others = open_now & (repeats != index)
                best_if_waiting = max(0.0, float(waited[others].max(initial=0.0)))
                still = others & np.array([is_open(o.channel, slot.channel) for o in later])
                if end is not None:
                    still &= np.array([t < end for t in delayed[k]])
                best_after = max(0.0, float(after[k][still].max(initial=0.0)))
                value[k] += best_after - best_if_waiting
        by_slot = {
            (index, slot.channel): float(v) for (index, slot, _), v in zip(now, value, strict=True)
        }
        return _assessments(candidates, by_slot)

    def _gap(self) -> dt.timedelta:
        hours = self.contact_policy.message_gap_hours
        return dt.timedelta(hours=hours or 0.0)

    def _opportunities(
        self, context: CustomerContext, now: Sequence[tuple[int, ChannelSlot, Message]]
    ) -> list[_Opportunity]:
        end = self.horizon_end
        days = self._days
        out = [
            _Opportunity(slot.send.at + ahead, slot.channel, message, index)
            for index, slot, message in now
            for ahead in days
        ]
        if self.triggers is not None and now:
            start = context.now_utc
            channels = [
                c
                for c in REMINDER_CHANNELS
                if context.profile.consented(c) and c in SIMULATED_CHANNELS
            ]
            for moment, kind, product in self.triggers.between(
                context.customer_id, start, start + self._gap()
            ):
                message = Message(kind, None, product)
                out += [_Opportunity(moment + REMINDER_DELAY, c, message, -1) for c in channels]
        return [o for o in out if end is None or o.at < end]

    def _capped(self, context: CustomerContext, channel: Channel, sent: Channel | None) -> bool:
        """Whether a contact on ``channel`` in the coming days is over a weekly or monthly
        cap, after one more contact on ``sent`` (``None``: none)."""
        history, policy = context.contacts, self.contact_policy
        rules = policy.rules(channel)
        extra = int(sent == channel)
        for cap, used in (
            (rules.cap_7d, history.contacts_7d.get(channel, 0)),
            (rules.cap_30d, history.contacts_30d.get(channel, 0)),
        ):
            if cap is not None and used + extra >= cap:
                return True
        if not rules.counts_toward_total or policy.cap_7d is None:
            return False
        counted = sum(
            v for c, v in history.contacts_7d.items() if policy.rules(c).counts_toward_total
        )
        extra = int(sent is not None and policy.rules(sent).counts_toward_total)
        return counted + extra >= policy.cap_7d


def _assessments(
    candidates: Sequence[ActionCandidate], by_slot: dict[tuple[int, Channel], float]
) -> list[list[ChannelAssessment]]:
    """Each candidate's slots valued by ``by_slot`` (do-nothing 0; unsimulated channels out)."""
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
