"""Response statistics: how each (action, channel) fares per segment, learned online.

Every decision that contacts a customer counts as one **exposure** of its first
contact's (action, channel) in the customer's segment, together with the
responses the scorer **expected** (its propensity on that channel); a message
withdrawn before it went (:mod:`nba.supersession`) is taken back
(:meth:`ResponseStats.withdraw`): it was never an exposure without response. Outcome
events (``message_opened``, ``message_clicked``, ``purchase``, ``unsubscribe``,
``complaint``, ``sms_stop``) are **attributed** to a decision: the one their
``decision_id`` names, else the latest decision sent to that customer within
the attribution window before the event. Each decision counts at most one
outcome of each kind (opened, clicked, purchased, negative = unsubscribed or
complained, and **responded** = clicked or purchased, the response the
scorer's propensity predicts), so a replayed or duplicated event changes
nothing. An outcome naming an unknown decision, or another customer's, is
*unattributed* (counted by the caller, applied to the profile as any event).

**The model.** Per (action, channel, segment) a Gamma-Poisson calibration of
the scorer: the responses observed against the responses the scorer predicted
give a :class:`~nba.arbitration.ResponsePosterior` Gamma(2 + responses,
2 + expected) on the factor by which the scorer is off. It is conjugate (an
update is two additions), it keeps the personalised scorer as the location
(a per-segment Beta on raw rates would throw the customer's own propensity
away) while the evidence corrects its level and narrows Thompson sampling's
spread, and additions commute, so concurrent API workers update it with
``HINCRBYFLOAT`` and late events land where they belong.

**The value.** A response is not what the business is paid: a click that leads
nowhere earns nothing. For the actions whose goal is a purchase (all but review
requests and content: :data:`UNVALUED_TYPES`) each exposure also keeps the value
the marketer stated for a response (its priority's ``value x lever x fatigue``),
each counted response adds that stated value (``w``), and each attributed purchase
its margin (``m``: what was paid times the product's margin rate, and ``m**2`` in
``q``). The factor by which the stated value per response is off, ``margin / w``,
gets a Gamma belief too: a sum of purchase margins is compound Poisson, so
divided by the unit ``E[margin**2] / E[margin]`` (the segment's ``q / m``) it has
a Poisson's variance and the Gamma-Poisson update applies, with the segment's
pooled factor as the prior's centre (weight :data:`VALUE_PRIOR_WEIGHT`
purchases). The policy's Thompson sampling scales the scorer's response x stated
value by a draw from the belief it reads, so the priority is the *learned expected
value* of a message; fast evidence (clicks) moves the response, slow evidence
(purchases) the value. Three models say what it reads: ``"value_mean"`` (the
default, :data:`DEFAULT_MODEL`) the response calibration's belief scaled by the
value factor's posterior mean (the value a shrunk estimate, exploration the
response's, which settles as evidence grows); ``"value"`` the product of the two
beliefs (moment-matched to one Gamma: exploration over the value too, wider while
purchases are few); ``"response"`` the response calibration alone. Measured in
closed loop (BENCHMARKS.md, issue 13 item 1 goals): the value's spread costs more
exploration than the sparse purchases repay, hence the default.

**Forgetting.** Counts decay with a half-life (14 days by default) so that
drift is tracked: an exposure at time ``t`` adds ``2 ** ((t - era_start) /
half_life)`` and a read at ``now`` multiplies by ``2 ** ((era_start - now) /
half_life)``. An era spans :data:`ERA_HALF_LIVES` half-lives (so weights stay
finite); reads sum the current and the previous era.

:class:`ResponseStats` is the interface, :class:`RedisResponseStats` the
production implementation (beside the online store, read in the decision's one
pipelined round trip through :class:`~features.online.contact_state.RedisContactState`)
and :class:`MemoryResponseStats` the in-process one; ``tests/test_response_stats.py``
runs the same contract against both.

>>> import datetime as dt
>>> stats = MemoryResponseStats(half_life_days=7.0)
>>> now = dt.datetime(2026, 3, 6, tzinfo=dt.UTC)
>>> stats.expose(Exposure("d1", "C1", now, "cart", "email", "active", expected=0.1))
>>> stats.attribute(Outcome.of_event("e1", "C1", now, EventType.PURCHASE, "d1")).attributed
1
>>> later = stats.table(now + dt.timedelta(days=7)).counts[StatsKey("cart", "email", "active")]
>>> later.exposures, later.responses  # one half-life later
(0.5, 0.5)
"""

from __future__ import annotations

import abc
import collections
import dataclasses
import datetime as dt
import math
import statistics
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import msgpack

from features.contract import EventRecord
from features.online.redis_store import LuaScript, run_scripts
from features.online.store import ScriptCall
from nba.actions import ActionType
from nba.arbitration import ResponsePosterior, stats_key
from nba.decision import Decision
from nba.events import EventType
from nba.offer_trial import TrialCounts, TrialUnit, trial_key, trial_unit
from nba.profile import CustomerProfile

#: Half-life of the evidence, in days.
DEFAULT_HALF_LIFE_DAYS = 14.0
#: How long after a send an outcome without a decision id is attributed to it.
DEFAULT_WINDOW_HOURS = 72.0
#: Half-lives per era (weights stay below 2 ** ERA_HALF_LIVES).
ERA_HALF_LIVES = 64
#: How long an offer trial's decision waits for the purchase that counts for it (days).
TRIAL_UNIT_DAYS = 14.0
#: The prior of every (action, channel, segment): Gamma(shape, rate), mean 1.
PRIOR = (2.0, 2.0)

#: Outcome kinds of each outcome event, by the letter each is stored under: opened,
#: clicked, purchased, negative, and responded (clicked or purchased, counted once).
OUTCOME_KINDS: Mapping[EventType, tuple[str, ...]] = {
    EventType.MESSAGE_OPENED: ("o",),
    EventType.MESSAGE_CLICKED: ("c", "r"),
    EventType.PURCHASE: ("p", "r"),
    EventType.UNSUBSCRIBE: ("n",),
    EventType.COMPLAINT: ("n",),
    EventType.SMS_STOP: ("n",),
}
_OUTCOME_LETTERS = tuple(dict.fromkeys(k for kinds in OUTCOME_KINDS.values() for k in kinds))
#: Counters per key: exposures, expected responses, the outcome kinds, then the value's:
#: exposures whose value is learned, the stated value of their counted responses, the
#: margin of their attributed purchases and its square.
FIELDS = ("e", "x", "o", "c", "p", "r", "n", "v", "w", "m", "q")
#: Action types whose response is not a purchase (a review, a read): their value is the
#: marketer's, not learned from purchases.
UNVALUED_TYPES = frozenset({ActionType.REVIEW_REQUEST, ActionType.CONTENT})
#: The value factor's prior weight, in purchases.
VALUE_PRIOR_WEIGHT = 2.0
#: Margin / price of a purchase whose product is unknown.
DEFAULT_MARGIN_RATE = 0.3
#: The posteriors policies read: response calibration x value per response (drawn from
#: both beliefs), the response calibration alone, or the calibration's belief scaled by the
#: value factor's posterior mean (the value a shrunk estimate; exploration the response's).
MODELS = ("value", "response", "value_mean")
DEFAULT_MODEL = "value_mean"


def response_segment(profile: CustomerProfile) -> str:
    """The segment a customer's statistics are kept in: their lifecycle state."""
    return profile.lifecycle_state.value


@dataclass(frozen=True, slots=True)
class StatsKey:
    action_id: str
    channel: str
    segment: str


@dataclass(frozen=True, slots=True)
class ResponseCounts:
    """Decayed counts of one key (or a sum of keys): ``exposures`` decisions sent,
    ``expected`` responses the scorer predicted, and the outcomes attributed."""

    exposures: float = 0.0
    expected: float = 0.0
    opens: float = 0.0
    clicks: float = 0.0
    purchases: float = 0.0
    responses: float = 0.0
    negatives: float = 0.0
    #: Exposures whose value is learned, the stated value of their counted responses, the
    #: margin of their attributed purchases and the sum of its squares.
    valued: float = 0.0
    response_value: float = 0.0
    margin: float = 0.0
    margin_sq: float = 0.0

    def __add__(self, other: ResponseCounts) -> ResponseCounts:
        return ResponseCounts(
            *(a + b for a, b in zip(self.as_tuple(), other.as_tuple(), strict=True))
        )

    def as_tuple(self) -> tuple[float, ...]:
        return (
            self.exposures,
            self.expected,
            self.opens,
            self.clicks,
            self.purchases,
            self.responses,
            self.negatives,
            self.valued,
            self.response_value,
            self.margin,
            self.margin_sq,
        )

    def posterior(self, prior: tuple[float, float] = PRIOR) -> ResponsePosterior:
        """The Gamma belief about observed / predicted responses."""
        return ResponsePosterior.from_counts(self.responses, self.expected, prior)

    @property
    def value_ratio(self) -> float:
        """Attributed margin per stated value of the responses (0 before any response)."""
        return self.margin / self.response_value if self.response_value > 0 else 0.0

    @property
    def rate(self) -> float:
        """Responses (clicks or purchases) per exposure (0 without exposures)."""
        return self.responses / self.exposures if self.exposures > 0 else 0.0

    def rate_interval(self, level: float = 0.9) -> tuple[float, float]:
        """Wilson interval of the response rate, on the decayed (effective) counts."""
        n = self.exposures
        if n <= 0:
            return (0.0, 1.0)
        z = statistics.NormalDist().inv_cdf(0.5 + level / 2)
        p = min(1.0, self.responses / n)
        centre = (p + z * z / (2 * n)) / (1 + z * z / n)
        half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
        return (max(0.0, centre - half), min(1.0, centre + half))


class SegmentPosteriors(dict[str, ResponsePosterior]):
    """A segment's posteriors by ``action@channel``, and ``unseen``: the belief about a pair
    the segment has no evidence of (its pooled calibration at the prior's weight), which
    :meth:`get` answers for a missing key (``None``: the policy's own prior).

    >>> p = SegmentPosteriors({"a@email": ResponsePosterior(3, 2)}, ResponsePosterior(4, 2))
    >>> p.get("a@email").mean, p.get("new@email").mean, "new@email" in p
    (1.5, 2.0, False)
    """

    def __init__(
        self,
        known: Mapping[str, ResponsePosterior],
        unseen: ResponsePosterior | None,
        trials: Mapping[str, TrialCounts] | None = None,
    ) -> None:
        super().__init__(known)
        self.unseen = unseen
        #: The offer trials' evidence by :func:`~nba.offer_trial.trial_key` (store-wide).
        self.trials: Mapping[str, TrialCounts] = trials or {}

    def get(self, key: str, default: Any = None) -> Any:
        found = super().get(key)
        if found is not None:
            return found
        return self.unseen if self.unseen is not None else default


def combined(calibration: ResponsePosterior, value: ResponsePosterior) -> ResponsePosterior:
    """The Gamma with the mean and variance of the product of two independent Gamma
    beliefs (response calibration x value per response).

    >>> c = combined(ResponsePosterior(4, 2), ResponsePosterior(1e9, 2e9))  # value 0.5, sure
    >>> round(c.mean, 6), round(c.shape, 3)
    (1.0, 4.0)
    """
    mean = calibration.mean * value.mean
    shape = 1.0 / ((1.0 + 1.0 / calibration.shape) * (1.0 + 1.0 / value.shape) - 1.0)
    return ResponsePosterior(shape, shape / mean)


@dataclass(frozen=True)
class ResponseTable:
    """Every key's decayed counts at ``as_of``; ``model`` says what :meth:`posteriors`
    gives policies (:data:`MODELS`)."""

    as_of: dt.datetime
    counts: Mapping[StatsKey, ResponseCounts] = field(default_factory=dict)
    model: str = DEFAULT_MODEL
    #: The offer trials' evidence by :func:`~nba.offer_trial.trial_key` (store-wide, kept
    #: by :class:`MemoryResponseStats`; none on Redis yet).
    trials: Mapping[str, TrialCounts] = field(default_factory=dict)
    _posteriors: dict[tuple[str, tuple[float, float], bool], SegmentPosteriors] = field(
        default_factory=dict, repr=False, compare=False
    )

    def __post_init__(self) -> None:
        if self.model not in MODELS:
            raise ValueError(f"unknown statistics model {self.model!r} (expected one of {MODELS})")

    def posteriors(
        self, segment: str, prior: tuple[float, float] = PRIOR, *, pooled: bool = True
    ) -> SegmentPosteriors:
        """The posteriors of one segment, keyed as policies read them
        (:func:`~nba.arbitration.stats_key`: ``action@channel``); computed once per table.

        With ``pooled`` (the default) the prior of every pair is centred on the segment's
        pooled calibration (all its pairs' responses against all their expected ones, with
        ``prior``), keeping ``prior``'s weight: a pair with little evidence, and an unseen
        one (a new action), start from what the segment says of the scorer rather than
        from 1. Without, every pair's prior is ``prior``. In the ``"value"`` model, each
        pair whose value is learned gets the product of that calibration and its value
        factor (see the module doc), the value's prior centred on the segment's pooled
        factor (on 1 without ``pooled``), once the segment has an attributed purchase.
        """
        cached = self._posteriors.get((segment, prior, pooled))
        if cached is None:
            mine = {k: c for k, c in self.counts.items() if k.segment == segment}
            total = sum(mine.values(), ResponseCounts())
            centre = total.posterior(prior).mean if pooled and mine else 1.0
            own = (prior[0] * centre, prior[1])
            value = self._value_prior(total)

            def belief(c: ResponseCounts) -> ResponsePosterior:
                calibration = c.posterior(own)
                if value is None or c.valued <= 0:
                    return calibration
                ratio, unit = value
                factor = ResponsePosterior(
                    VALUE_PRIOR_WEIGHT + c.margin / unit,
                    VALUE_PRIOR_WEIGHT + ratio * c.response_value / unit,
                )
                if self.model == "value_mean":  # the shrunk estimate, without its spread
                    return ResponsePosterior(calibration.shape, calibration.rate / factor.mean)
                return combined(calibration, factor)

            unseen = None
            if pooled and mine:
                unseen = ResponsePosterior(*own)
                if value is not None and self.model == "value":
                    unseen = combined(
                        unseen, ResponsePosterior(VALUE_PRIOR_WEIGHT, VALUE_PRIOR_WEIGHT)
                    )
            cached = SegmentPosteriors(
                {stats_key(k.action_id, k.channel): belief(c) for k, c in mine.items()},
                unseen,
                self.trials,
            )
            self._posteriors[(segment, prior, pooled)] = cached
        return cached

    def _value_prior(self, total: ResponseCounts) -> tuple[float, float] | None:
        """The segment's pooled margin per stated value of a response and the margin unit,
        from its pooled counts ``total`` (``None``: the response model, or no purchase yet)."""
        if self.model == "response" or total.margin <= 0 or total.margin_sq <= 0:
            return None
        unit = total.margin_sq / total.margin  # compound Poisson: margin / unit ~ Poisson
        ratio = (VALUE_PRIOR_WEIGHT + total.margin / unit) / (
            VALUE_PRIOR_WEIGHT + total.response_value / unit
        )
        return (ratio, unit)

    def by_action(self) -> dict[str, ResponseCounts]:
        """Counts summed over channels and segments, per action."""
        out: dict[str, ResponseCounts] = {}
        for key, counts in self.counts.items():
            out[key.action_id] = out.get(key.action_id, ResponseCounts()) + counts
        return out


@dataclass(frozen=True, slots=True)
class Exposure:
    """A decision's first contact, as the statistics count it."""

    decision_id: str
    customer_id: str
    sent_at: dt.datetime
    action_id: str
    channel: str
    segment: str
    expected: float
    #: The stated value of a response (0: not learned, see :data:`UNVALUED_TYPES`).
    value: float = 0.0

    @classmethod
    def of(cls, decision: Decision, segment: str) -> Exposure | None:
        """The exposure of ``decision`` (``None`` when it contacts nobody)."""
        if not decision.contacts:
            return None
        first = decision.contacts[0]
        assert first.channel is not None  # a contact has a channel
        terms = first.terms
        expected = 0.0 if terms is None else terms.propensity
        value = 0.0
        if terms is not None and first.action_type not in UNVALUED_TYPES:
            value = terms.value * terms.lever * terms.fatigue
        return cls(
            decision.decision_id,
            decision.customer_id,
            first.send_at or decision.decided_at,
            first.action_id,
            first.channel.value,
            segment,
            expected,
            value,
        )


@dataclass(frozen=True, slots=True)
class Outcome:
    """An outcome event: ``kinds`` the letters of its kinds (:data:`OUTCOME_KINDS`; a click
    is ``"cr"``: clicked, and responded); ``margin`` a purchase's margin."""

    event_id: str
    customer_id: str
    at: dt.datetime
    kinds: str
    decision_id: str | None = None
    margin: float = 0.0

    @classmethod
    def of_event(
        cls,
        event_id: str,
        customer_id: str,
        at: dt.datetime,
        event_type: EventType,
        decision_id: str | None,
        margin: float = 0.0,
    ) -> list[Outcome]:
        """The outcome of one event, from its fields (none if it is not an outcome)."""
        kinds = OUTCOME_KINDS.get(event_type)
        if kinds is None:
            return []
        return [cls(event_id, customer_id, at, "".join(kinds), decision_id, margin)]


def margin_rates(products: Any) -> dict[str, float]:
    """Margin / price of each product of a contract products table (``product_id``,
    ``price``, ``margin``), for the products with a positive price."""
    priced = products[products["price"] > 0]
    return dict(
        zip(
            priced["product_id"].astype(str),
            (priced["margin"] / priced["price"]).clip(0.0, 1.0).astype(float),
            strict=True,
        )
    )


@dataclass
class AttributionResult:
    """What became of outcome events: joined to a decision (``attributed``), already
    counted (``duplicate``), or joined to none (``unattributed``)."""

    attributed: int = 0
    duplicate: int = 0
    unattributed: int = 0

    def add(self, other: AttributionResult) -> None:
        self.attributed += other.attributed
        self.duplicate += other.duplicate
        self.unattributed += other.unattributed


class ResponseStats(abc.ABC):
    """Where response statistics live. Implementations pass ``tests/test_response_stats.py``.

    Parameters
    ----------
    half_life_days
        The evidence's half-life (forgetting, to track drift).
    window_hours
        Outcomes without a decision id are attributed to the latest send this recent.
    margin_rates
        Margin / price per product id (:func:`margin_rates`): a purchase's margin is what
        was paid times its product's rate, ``default_margin_rate`` for a product not in it.
    model
        What the tables give policies (:data:`MODELS`).
    """

    def __init__(
        self,
        *,
        half_life_days: float = DEFAULT_HALF_LIFE_DAYS,
        window_hours: float = DEFAULT_WINDOW_HOURS,
        margin_rates: Mapping[str, float] | None = None,
        default_margin_rate: float = DEFAULT_MARGIN_RATE,
        model: str = DEFAULT_MODEL,
    ) -> None:
        if not (half_life_days > 0 and math.isfinite(half_life_days)):
            raise ValueError(f"half_life_days must be positive, got {half_life_days}")
        if not (window_hours > 0 and math.isfinite(window_hours)):
            raise ValueError(f"window_hours must be positive, got {window_hours}")
        if not 0.0 <= default_margin_rate <= 1.0:
            raise ValueError(f"default_margin_rate must be in [0, 1], got {default_margin_rate}")
        if model not in MODELS:
            raise ValueError(f"unknown statistics model {model!r} (expected one of {MODELS})")
        self.margin_rates = dict(margin_rates or {})
        self.default_margin_rate = default_margin_rate
        self.model = model
        self.half_life_days = half_life_days
        self.window_hours = window_hours
        self.half_life = half_life_days * 86_400.0
        self.window = window_hours * 3_600.0

    def margin(self, product_id: str | None, revenue: float | None) -> float:
        """The margin of a purchase of ``product_id`` that paid ``revenue``."""
        if not revenue or revenue <= 0:
            return 0.0
        rate = self.margin_rates.get(product_id or "", self.default_margin_rate)
        return float(revenue) * rate

    def outcomes(self, record: EventRecord) -> list[Outcome]:
        """The outcome an event is, with its margin (in a list: none if it is not one)."""
        if record.event_type not in OUTCOME_KINDS:
            return []
        return Outcome.of_event(
            record.event_id,
            record.customer_id,
            record.timestamp,
            record.event_type,
            record.decision_id,
            self.margin(record.product_id, record.revenue),
        )

    # the decay ---------------------------------------------------------------
    def era(self, at: float) -> int:
        return math.floor(at / (self.half_life * ERA_HALF_LIVES))

    def weight(self, at: float) -> tuple[int, float]:
        """The era of an exposure at ``at`` (epoch seconds) and its weight within it."""
        era = self.era(at)
        return era, 2.0 ** ((at - era * self.half_life * ERA_HALF_LIVES) / self.half_life)

    def discount(self, era: int, now: float) -> float:
        """What a weight of ``era`` is worth at ``now``."""
        return 2.0 ** ((era * self.half_life * ERA_HALF_LIVES - now) / self.half_life)

    # the interface -------------------------------------------------------------
    @abc.abstractmethod
    def table(self, now: dt.datetime) -> ResponseTable:
        """Every key's counts, decayed to ``now``."""

    @abc.abstractmethod
    def expose(self, exposure: Exposure) -> None:
        """Count an exposure and keep it for attribution (recording it twice counts twice:
        the caller records a decision once)."""

    @abc.abstractmethod
    def attribute(self, outcomes: Sequence[Outcome]) -> AttributionResult:
        """Join outcome events to their decisions and count them (each decision at most once
        per kind): an event is attributed when it counts a kind anew, a duplicate when its
        decision had all its kinds counted; idempotent."""

    @abc.abstractmethod
    def withdraw(self, exposures: Sequence[Exposure]) -> None:
        """Take back ``exposures`` of messages withdrawn before they went
        (:mod:`nba.supersession`): their exposure, expected responses and valued exposure
        leave the counts (a message never sent is no exposure without response), and they
        are forgotten for attribution (an outcome can no longer be joined to them). Each
        is given as :meth:`expose` was (:meth:`Exposure.of` its decision), and once: the
        write that withdraws a scheduled message also deletes what it scheduled
        (:meth:`~features.online.contact_state.ContactState.cancel`), so it is not read,
        nor withdrawn, again."""

    @abc.abstractmethod
    def counted_exposures(self, customer_id: str, decision_ids: Sequence[str]) -> list[Exposure]:
        """The exposures counted for ``customer_id``'s decisions ``decision_ids`` and still
        kept for attribution (none for a decision that contacted nobody, or withdrawn), as
        :meth:`expose` counted them: what :meth:`withdraw` takes back for a message whose
        decision's exposure was not kept beside it (a consent withdrawn with supersession
        off, :func:`features.online.supersession.unsendable_sends`)."""

    def record_decision(self, decision: Decision, segment: str) -> None:
        """Count ``decision``'s exposure, if it contacts the customer."""
        exposure = Exposure.of(decision, segment)
        if exposure is not None:
            self.expose(exposure)


def _field(kind: str, key: StatsKey) -> str:
    return f"{kind}|{key.segment}|{key.channel}|{key.action_id}"


def _parse_field(name: str) -> tuple[str, StatsKey] | None:
    parts = name.split("|", 3)
    if len(parts) != 4 or parts[0] not in FIELDS:
        return None
    kind, segment, channel, action_id = parts
    return kind, StatsKey(action_id, channel, segment)


def _table_of(
    sums: Iterable[tuple[str, float]], as_of: dt.datetime, model: str = DEFAULT_MODEL
) -> ResponseTable:
    values: dict[StatsKey, dict[str, float]] = {}
    for name, value in sums:
        parsed = _parse_field(name)
        if parsed is None:
            continue
        kind, key = parsed
        mine = values.setdefault(key, {})
        mine[kind] = mine.get(kind, 0.0) + value
    counts = {
        key: ResponseCounts(*(v.get(kind, 0.0) for kind in FIELDS)) for key, v in values.items()
    }
    return ResponseTable(as_of, counts, model)


class MemoryResponseStats(ResponseStats):
    """In-process response statistics with the same semantics as Redis (the closed loop,
    single-process runs).

    It also keeps the evidence of offer trials (:mod:`nba.offer_trial`): each decision
    of a trial is a treated or held-out unit, and the first purchase attributed to it adds
    its margin, less the offer's cost when the offer went out (a treated unit is charged
    at once what its redemptions on orders placed anyway are expected to cost:
    :class:`~nba.offer_trial.TrialUnit`); store-wide, not forgotten (a trial's purchases
    are few). Redis does not keep trials yet: there a trial stays at
    its share.
    """

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self._sums: dict[int, dict[str, float]] = {}
        self._sent: dict[str, dict[str, Exposure]] = {}
        self._counted: set[tuple[str, str]] = set()
        self._table: ResponseTable | None = None  # the last table read, until a write
        self._units: dict[str, TrialUnit] = {}  # trial decisions awaiting a purchase
        self._unit_times: collections.deque[tuple[float, str]] = collections.deque()
        self._trials: dict[str, TrialCounts] = {}

    def record_decision(self, decision: Decision, segment: str) -> None:
        super().record_decision(decision, segment)
        unit = trial_unit(decision)
        if unit is not None:
            self._table = None
            at = decision.decided_at.timestamp()
            # a unit waits for its purchase TRIAL_UNIT_DAYS at most (memory stays bounded)
            times, horizon = self._unit_times, at - TRIAL_UNIT_DAYS * 86_400.0
            while times and times[0][0] < horizon:
                self._units.pop(times.popleft()[1], None)
            self._units[decision.decision_id] = unit
            times.append((at, decision.decision_id))
            net = unit.net_at_send
            counts = (
                TrialCounts(treated=1.0, treated_net=net, treated_net_sq=net * net)
                if unit.treated
                else TrialCounts(held=1.0)
            )
            key = trial_key(unit.action_id)
            self._trials[key] = self._trials.get(key, TrialCounts()) + counts

    def _trial_purchase(self, decision_id: str, margin: float) -> None:
        """A purchase attributed to a trial's decision: its net margin, once per decision."""
        unit = self._units.pop(decision_id, None)
        if unit is None:
            return
        self._table = None
        before, net = unit.net_at_send, unit.net_with_purchase(margin)
        counts = (  # the unit's net replaces what it counted at the send
            TrialCounts(treated_net=net - before, treated_net_sq=net * net - before * before)
            if unit.treated
            else TrialCounts(held_net=net, held_net_sq=net * net)
        )
        key = trial_key(unit.action_id)
        self._trials[key] = self._trials.get(key, TrialCounts()) + counts

    def table(self, now: dt.datetime) -> ResponseTable:
        if self._table is not None and self._table.as_of == now:
            return self._table
        self._table = self._read(now)
        return self._table

    def _read(self, now: dt.datetime) -> ResponseTable:
        at = now.timestamp()
        era = self.era(at)
        sums: list[tuple[str, float]] = []
        for e in (era - 1, era):
            discount = self.discount(e, at)
            sums += [(name, v * discount) for name, v in self._sums.get(e, {}).items()]
        table = _table_of(sums, now, self.model)
        return dataclasses.replace(table, trials=dict(self._trials)) if self._trials else table

    def _add(self, exposure: Exposure, kind: str, amount: float) -> None:
        self._table = None
        era, weight = self.weight(exposure.sent_at.timestamp())
        key = StatsKey(exposure.action_id, exposure.channel, exposure.segment)
        sums = self._sums.setdefault(era, {})
        name = _field(kind, key)
        sums[name] = sums.get(name, 0.0) + weight * amount

    def expose(self, exposure: Exposure) -> None:
        self._add(exposure, "e", 1.0)
        self._add(exposure, "x", exposure.expected)
        if exposure.value > 0:
            self._add(exposure, "v", 1.0)
        mine = self._sent.setdefault(exposure.customer_id, {})
        mine[exposure.decision_id] = exposure
        if len(mine) > 64:  # keep the newest: older ones are past any window
            for old in sorted(mine, key=lambda d: mine[d].sent_at)[: len(mine) - 64]:
                del mine[old]

    def counted_exposures(self, customer_id: str, decision_ids: Sequence[str]) -> list[Exposure]:
        mine = self._sent.get(customer_id, {})
        return [mine[d] for d in dict.fromkeys(decision_ids) if d in mine]

    def withdraw(self, exposures: Sequence[Exposure]) -> None:
        for given in exposures:
            # the exposure as counted, once: withdrawing it again changes nothing
            exposure = self._sent.get(given.customer_id, {}).pop(given.decision_id, None)
            if exposure is None:
                continue
            self._add(exposure, "e", -1.0)
            self._add(exposure, "x", -exposure.expected)
            if exposure.value > 0:
                self._add(exposure, "v", -1.0)

    def attribute(self, outcomes: Sequence[Outcome]) -> AttributionResult:
        result = AttributionResult()
        for outcome in outcomes:
            sent = self._sent.get(outcome.customer_id, {})
            exposure: Exposure | None
            if outcome.decision_id is not None:
                exposure = sent.get(outcome.decision_id)
            else:
                at = outcome.at.timestamp()
                recent = [
                    e for e in sent.values() if 0 <= at - e.sent_at.timestamp() <= self.window
                ]
                exposure = max(recent, key=lambda e: e.sent_at, default=None)
            if exposure is None:
                result.unattributed += 1
                continue
            new = [k for k in outcome.kinds if (exposure.decision_id, k) not in self._counted]
            if not new:
                result.duplicate += 1
                continue
            for kind in new:
                self._counted.add((exposure.decision_id, kind))
                self._add(exposure, kind, 1.0)
                if kind == "p" and self._units:
                    self._trial_purchase(exposure.decision_id, outcome.margin)
                if exposure.value > 0 and kind == "r":
                    self._add(exposure, "w", exposure.value)
                if exposure.value > 0 and kind == "p" and outcome.margin > 0:
                    self._add(exposure, "m", outcome.margin)
                    self._add(exposure, "q", outcome.margin**2)
            result.attributed += 1
        return result


# Join and count outcome events, atomically.
# KEYS: the statistics keys of the eras the batch may count in (ARGV[5] of them: none on a
#       Redis Cluster, where the increments are returned instead), then customers' sends
#       (hash decision id -> "sent_at|action|channel|segment|expected|value", or without
#       "|value" as written before values were learned, and "<decision id>|<kind>" -> 1
#       once that kind is counted).
# ARGV: window, half-life, era length, stats prefix, number of stats keys, then the outcomes
#       as one msgpack array of [kinds, at, decision id, index of its sends key in KEYS,
#       margin] (one argument, not five per outcome: the client encodes and the server
#       parses one).
# Increments of the same statistics field are added up first: one HINCRBYFLOAT per field.
# A counted response adds the send's stated value ("w"), a counted purchase its margin
# ("m") and squared margin ("q"), for sends whose value is learned (value > 0).
_ATTRIBUTE = """
local window = tonumber(ARGV[1])
local half = tonumber(ARGV[2])
local era_len = tonumber(ARGV[3])
local n_stats = tonumber(ARGV[5])
local outcomes = cmsgpack.unpack(ARGV[6])
local attributed, dup, unattributed = 0, 0, 0
local stats = {}
for i = 1, n_stats do stats[KEYS[i]] = true end
local sums, order = {}, {}
local all_sends = {}
local function add(key, name, amount)
  local per_key = sums[key]
  if per_key == nil then
    per_key = {}
    sums[key] = per_key
    order[#order + 1] = key
  end
  if per_key[name] == nil then
    per_key[name] = amount
    per_key[#per_key + 1] = name
  else
    per_key[name] = per_key[name] + amount
  end
end
for e = 1, #outcomes do
  local outcome = outcomes[e]
  local kinds, at, did = outcome[1], outcome[2], outcome[3]
  local sends_key = KEYS[outcome[4]]
  local record, marks = nil, nil
  if did ~= '' then
    -- an id with a '|' would name a counted-kind mark, never a send
    if not string.find(did, '|', 1, true) then
      -- one call reads the send and the marks of this outcome's kinds
      local fields = {did}
      for kind in string.gmatch(kinds, '.') do fields[#fields + 1] = did .. '|' .. kind end
      marks = redis.call('HMGET', sends_key, unpack(fields))
      record = marks[1]
    end
  else
    local sends = all_sends[sends_key]
    if sends == nil then
      sends = redis.call('HGETALL', sends_key)
      all_sends[sends_key] = sends
    end
    local best = -1
    for i = 1, #sends, 2 do
      local name, value = sends[i], sends[i + 1]
      if not string.find(name, '|', 1, true) then
        local sent = tonumber(string.match(value, '^([^|]+)'))
        if sent and at - sent >= 0 and at - sent <= window and sent > best then
          best, did, record = sent, name, value
        end
      end
    end
  end
  local sent, action, channel, segment, value = nil, nil, nil, nil, nil
  if record then
    sent, action, channel, segment, value =
      string.match(record, '^([^|]+)|(.*)|([^|]*)|([^|]*)|[^|]*|([^|]*)$')
    if not sent then
      sent, action, channel, segment = string.match(record, '^([^|]+)|(.*)|([^|]*)|([^|]*)|[^|]*$')
    end
  end
  if not sent then
    unattributed = unattributed + 1
  else
    sent = tonumber(sent)
    local era = math.floor(sent / era_len)
    local weight = 2 ^ ((sent - era * era_len) / half)
    local key = ARGV[4] .. ':rs:' .. string.format('%d', era)
    local counted = 0
    local suffix = '|' .. segment .. '|' .. channel .. '|' .. action
    value = tonumber(value) or 0
    if marks == nil then  -- found in the window: its marks are read now
      local fields = {}
      for kind in string.gmatch(kinds, '.') do fields[#fields + 1] = did .. '|' .. kind end
      marks = {false, unpack(redis.call('HMGET', sends_key, unpack(fields)))}
    end
    local new_marks = {}
    local position = 1
    for kind in string.gmatch(kinds, '.') do
      position = position + 1
      local mark = did .. '|' .. kind
      -- the same kind twice in one outcome, or in one batch, counts once
      if not marks[position] and new_marks[mark] == nil then
        new_marks[mark] = true
        new_marks[#new_marks + 1] = mark
        new_marks[#new_marks + 1] = '1'
        counted = counted + 1
        add(key, kind .. suffix, weight)
        if value > 0 then
          local margin = tonumber(outcome[5]) or 0
          if kind == 'r' then
            add(key, 'w' .. suffix, weight * value)
          elseif kind == 'p' and margin > 0 then
            add(key, 'm' .. suffix, weight * margin)
            add(key, 'q' .. suffix, weight * margin * margin)
          end
        end
      end
    end
    if #new_marks > 0 then redis.call('HSET', sends_key, unpack(new_marks)) end
    if counted > 0 then attributed = attributed + 1 else dup = dup + 1 end
  end
end
local increments = {}
for _, key in ipairs(order) do
  local per_key = sums[key]
  for i = 1, #per_key do
    local name = per_key[i]
    if stats[key] then
      redis.call('HINCRBYFLOAT', key, name, per_key[name])
    else
      increments[#increments + 1] = key
      increments[#increments + 1] = name
      increments[#increments + 1] = string.format('%.17g', per_key[name])
    end
  end
end
return {attributed, dup, unattributed, increments}
"""


_ATTRIBUTE_SCRIPT = LuaScript(_ATTRIBUTE)


def _sent_record(customer_id: str, decision_id: str, raw: bytes | str) -> Exposure | None:
    """The exposure a send record of :meth:`RedisResponseStats.queue_exposure` keeps
    (``sent|action|channel|segment|expected|value``; older ones without the value, the
    action may hold a ``|``), or ``None`` when it does not read as one."""
    parts = (raw.decode() if isinstance(raw, bytes) else raw).split("|")
    try:
        if len(parts) >= 6:
            value = float(parts[-1])
            sent, action, channel, segment, expected = (
                parts[0],
                "|".join(parts[1:-4]),
                parts[-4],
                parts[-3],
                parts[-2],
            )
        elif len(parts) == 5:
            value = 0.0
            sent, action, channel, segment, expected = parts
        else:
            return None
        at = dt.datetime.fromtimestamp(float(sent), dt.UTC)
        return Exposure(
            decision_id, customer_id, at, action, channel, segment, float(expected), value
        )
    except ValueError:
        return None


def sends_key(prefix: str, customer_id: str) -> str:
    """The key of a customer's sends kept for attribution (their hash tag's slot)."""
    return f"{prefix}:d:{{{customer_id}}}"


class RedisResponseStats(ResponseStats):
    """Response statistics on Redis, beside the online store (same client and prefix).

    Keys: ``<prefix>:rs:<era>`` hash ``<kind>|<segment>|<channel>|<action>`` -> weighted
    sum (expires three eras after its last write); ``<prefix>:d:{<customer>}`` the
    customer's sends for attribution and the kinds already counted per decision (expires
    :data:`SENDS_SECONDS` after the last send). A batch of outcomes is joined and counted
    by one Lua script call (atomic, idempotent). On a Redis Cluster a script may only
    touch one slot: one call per customer joins and marks, and returns the increments,
    which follow in one more pipeline (a crash between the two loses those increments;
    it never counts one twice).
    """

    def __init__(
        self, client: Any, prefix: str = "nba", *, cluster: bool | None = None, **options: Any
    ) -> None:
        super().__init__(**options)
        self.client = client
        self.prefix = prefix
        self.cluster = cluster if cluster is not None else type(client).__name__ == "RedisCluster"

    @property
    def era_seconds(self) -> float:
        return self.half_life * ERA_HALF_LIVES

    def stats_key(self, era: int) -> str:
        return f"{self.prefix}:rs:{era}"

    def sends_key(self, customer_id: str) -> str:
        return sends_key(self.prefix, customer_id)

    # reads ------------------------------------------------------------------
    def queue_table(self, pipe: Any, now: dt.datetime) -> int:
        """Queue the reads of :meth:`table` on ``pipe``; returns how many replies they take."""
        era = self.era(now.timestamp())
        pipe.hgetall(self.stats_key(era - 1))
        pipe.hgetall(self.stats_key(era))
        return 2

    def table_from(self, replies: Sequence[Any], now: dt.datetime) -> ResponseTable:
        """The table from the replies of :meth:`queue_table`."""
        at = now.timestamp()
        era = self.era(at)
        sums: list[tuple[str, float]] = []
        for e, raw in zip((era - 1, era), replies, strict=True):
            discount = self.discount(e, at)
            sums += [(k.decode(), float(v) * discount) for k, v in (raw or {}).items()]
        return _table_of(sums, now, self.model)

    def table(self, now: dt.datetime) -> ResponseTable:
        pipe = self.client.pipeline(transaction=False)
        self.queue_table(pipe, now)
        return self.table_from(pipe.execute(), now)

    # writes -----------------------------------------------------------------
    def queue_exposure(self, pipe: Any, exposure: Exposure) -> None:
        """Queue the writes of :meth:`expose` on ``pipe``."""
        era, weight = self.weight(exposure.sent_at.timestamp())
        key = StatsKey(exposure.action_id, exposure.channel, exposure.segment)
        stats = self.stats_key(era)
        pipe.hincrbyfloat(stats, _field("e", key), weight)
        if exposure.expected > 0:
            pipe.hincrbyfloat(stats, _field("x", key), weight * exposure.expected)
        if exposure.value > 0:
            pipe.hincrbyfloat(stats, _field("v", key), weight)
        pipe.expire(stats, int(3 * self.era_seconds))
        sends = self.sends_key(exposure.customer_id)
        # the send time as weighed (to the microsecond): a withdrawal read back from here
        # (counted_exposures) takes back exactly the weight counted
        sent = exposure.sent_at.timestamp()
        pipe.hset(
            sends,
            exposure.decision_id,
            f"{sent!r}|{exposure.action_id}|{exposure.channel}|{exposure.segment}|"
            f"{exposure.expected!r}|{exposure.value!r}",
        )
        pipe.expire(sends, SENDS_SECONDS)

    def expose(self, exposure: Exposure) -> None:
        pipe = self.client.pipeline(transaction=False)
        self.queue_exposure(pipe, exposure)
        pipe.execute()

    def counted_exposures(self, customer_id: str, decision_ids: Sequence[str]) -> list[Exposure]:
        ids = [d for d in dict.fromkeys(decision_ids) if "|" not in d]  # '|': a mark
        if not ids:
            return []
        records = self.client.hmget(self.sends_key(customer_id), ids)
        out = []
        for decision_id, record in zip(ids, records, strict=True):
            if record is not None:
                exposure = _sent_record(customer_id, decision_id, record)
                if exposure is not None:
                    out.append(exposure)
        return out

    def queue_withdrawal(self, pipe: Any, exposure: Exposure) -> None:
        """Queue the writes of :meth:`withdraw` of one exposure on ``pipe`` (the decision
        that withdraws it writes them in its own round trip): the increments of
        :meth:`queue_exposure` taken back (same era, same weight) and its send forgotten."""
        era, weight = self.weight(exposure.sent_at.timestamp())
        key = StatsKey(exposure.action_id, exposure.channel, exposure.segment)
        stats = self.stats_key(era)
        pipe.hincrbyfloat(stats, _field("e", key), -weight)
        if exposure.expected > 0:
            pipe.hincrbyfloat(stats, _field("x", key), -weight * exposure.expected)
        if exposure.value > 0:
            pipe.hincrbyfloat(stats, _field("v", key), -weight)
        did = exposure.decision_id
        pipe.hdel(
            self.sends_key(exposure.customer_id),
            did,
            *(f"{did}|{kind}" for kind in _OUTCOME_LETTERS),
        )

    def withdraw(self, exposures: Sequence[Exposure]) -> None:
        if exposures:
            pipe = self.client.pipeline(transaction=False)
            for exposure in exposures:
                self.queue_withdrawal(pipe, exposure)
            pipe.execute()

    def attribute(self, outcomes: Sequence[Outcome]) -> AttributionResult:
        calls = self.attribution_calls(outcomes)
        if not calls:
            return AttributionResult()
        return self.count_attributed(
            run_scripts(self.client, [(_ATTRIBUTE_SCRIPT, keys, args) for _, keys, args in calls])
        )

    def attribution_calls(self, outcomes: Sequence[Outcome]) -> list[ScriptCall]:
        """The script calls of :meth:`attribute` (Lua text, keys, arguments), for a caller
        that runs them in its own pipeline (the API's ingest, beside the events') and hands
        their replies to :meth:`count_attributed`."""
        if not outcomes:
            return []
        head: list[str | float | int] = [self.window, self.half_life, self.era_seconds, self.prefix]
        if self.cluster:  # one call per customer: their sends live in their slot
            by_customer: dict[str, list[Outcome]] = {}
            for outcome in outcomes:
                by_customer.setdefault(outcome.customer_id, []).append(outcome)
            return [
                (_ATTRIBUTE, [self.sends_key(cid)], [*head, 0, msgpack.packb(_packed(mine, 1))])
                for cid, mine in by_customer.items()
            ]
        # one call for the whole batch, counting into the statistics directly; the outcomes
        # in their order, each with the index of its customer's sends key
        keys: list[str] = []
        index: dict[str, int] = {}
        for outcome in outcomes:
            if outcome.customer_id not in index:
                keys.append(self.sends_key(outcome.customer_id))
                index[outcome.customer_id] = len(keys) + 2
        packed = _packed(outcomes, index)
        latest = self.era(max(row[1] for row in packed))
        keys = [self.stats_key(latest), self.stats_key(latest - 1), *keys]
        return [(_ATTRIBUTE, keys, [*head, 2, msgpack.packb(packed)])]

    def count_attributed(self, replies: Sequence[Any]) -> AttributionResult:
        """The result of the calls of :meth:`attribution_calls` from their replies, with the
        increments they returned (Redis Cluster, or an era not passed in) written."""
        result = AttributionResult()
        leftover = []
        for attributed, dup, unattributed, increments in replies:
            result.add(AttributionResult(int(attributed), int(dup), int(unattributed)))
            for i in range(0, len(increments), 3):
                leftover.append(
                    tuple(x.decode() if isinstance(x, bytes) else x for x in increments[i : i + 3])
                )
        if leftover:
            pipe = self.client.pipeline(transaction=False)
            for key, name, weight in leftover:
                pipe.hincrbyfloat(key, name, float(weight))
                pipe.expire(key, int(3 * self.era_seconds))
            pipe.execute()
        return result


def _packed(
    outcomes: Sequence[Outcome], sends: Mapping[str, int] | int
) -> list[tuple[str, float, str, int, float]]:
    """The outcomes as the attribution script reads them: kinds, time, decision id, the
    index in KEYS of the customer's sends (one for all, or per customer), margin."""
    return [
        (
            o.kinds,
            o.at.timestamp(),
            o.decision_id or "",
            sends if isinstance(sends, int) else sends[o.customer_id],
            o.margin or 0,
        )
        for o in outcomes
    ]


#: How long a customer's sends are kept for attribution after their last send.
SENDS_SECONDS = 30 * 86_400


__all__ = [
    "AttributionResult",
    "Exposure",
    "MemoryResponseStats",
    "Outcome",
    "RedisResponseStats",
    "ResponseCounts",
    "ResponseStats",
    "ResponseTable",
    "SegmentPosteriors",
    "StatsKey",
    "combined",
    "margin_rates",
    "response_segment",
    "sends_key",
]
