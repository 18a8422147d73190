"""From state to profile: the one function that reads a customer's state.

:func:`build_profile` is pure: the same state, static attributes, priors and
``as_of`` always give the same :class:`~nba.profile.CustomerProfile`, whether
the state came from a batch aggregation, a point-in-time cut, Spark or Redis.
It reads keyed fields only inside their windows, so trimming expired fields
never changes a profile.
"""

from __future__ import annotations

import datetime as dt
import functools
import math
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field, fields
from typing import Any

from features.definitions import (
    CONVERSION_DAYS,
    DEFAULT_VIEW_SECONDS,
    FAMILIES,
    PURCHASE_DAY_OFFSET,
    RETURN_DAYS,
    RETURN_ORDER_KEY,
    SECONDS_PER_DAY,
    SECONDS_PER_HOUR,
    TIERS,
    VIEW_DAY_SCALE,
    decode_hours_register,
    decode_register,
    first_day_of_month,
    local_day,
    time_zone,
)
from features.seasonality import (
    VerdictInputs,
    flat_season_prior,
    seasonal_months,
    shopping_months,
    verdict_inputs,
)
from nba.channels import CONSENT_CHANNELS, Channel
from nba.profile import (
    HOURS_PER_WEEK,
    ChannelEngagement,
    ContactHistory,
    CustomerProfile,
    JourneyPhase,
    LifecycleState,
)
from nba.scoring import REFERENCE_OPEN_RATES

#: Weight of the prior in smoothed rates, in pseudo-observations.
PRIOR_WEIGHT = 10.0
NEW_CUSTOMER_DAYS = 30
CART_DAYS = 30
BROWSE_DAYS = 7
RECENT_PURCHASE_DAYS = 90
DEFAULT_PURCHASE_GAP_DAYS = 45.0
MIN_PURCHASE_GAP_DAYS = 14.0
AT_RISK_GAPS = 1.5  # quiet for 1.5 usual gaps: at risk
LAPSED_GAPS = 3.0  # quiet for 3 usual gaps: lapsed
RECOMMENDATION_DAYS = 14
TOP_N = 10
#: The earliest a local day starts before the UTC day of its number (UTC+14), in seconds.
_EARLIEST_DAY_START = 14 * 3_600
#: A refund within half a cent of what the lines it names cost returns them whole.
_WHOLE_REFUND_SLACK = 0.005
#: Seconds of product views in a day that leave products behind, not a glance (two
#: minutes: the seed catalog's browse reminder trigger, two views without dwell times):
#: a day with that much viewing and neither an add-to-cart nor a purchase is a browse
#: abandoned (``browse_left_days_30d``).
BROWSE_LEFT_SECONDS = 120.0


@dataclass(frozen=True)
class ChannelPrior:
    open_rate: float = 0.2
    click_rate: float = 0.03
    conversion_rate: float = 0.1


_DEFAULT_PRIOR = ChannelPrior()
#: A channel's prior where the store has not measured its own (no priors estimated, or
#: too few messages in the segment and overall): the channel's typical rates. A push's open
#: is its tap, 2-6 % of the pushes sent, 4 % in the middle; a call is answered about 30 %
#: of the time (:data:`nba.scoring.REFERENCE_OPEN_RATES`); the others keep e-mail's rates,
#: as every channel once did (a push customer with no history then looked five times as
#: engaged as a typical one).
TYPICAL_CHANNEL_PRIORS: Mapping[str, ChannelPrior] = {
    Channel.PUSH.value: ChannelPrior(open_rate=REFERENCE_OPEN_RATES[Channel.PUSH]),
    Channel.CALL_CENTRE.value: ChannelPrior(open_rate=REFERENCE_OPEN_RATES[Channel.CALL_CENTRE]),
}


@dataclass(frozen=True)
class FeaturePriors:
    """Population rates that thin histories are shrunk toward.

    ``channels[segment][channel]``: segment is the loyalty tier; ``"*"`` is
    everyone and serves segments without data.
    """

    channels: Mapping[str, Mapping[str, ChannelPrior]] = field(default_factory=dict)
    promo_share: float = 0.2
    new_product_share: float = 0.1
    #: the store's shopping days per month of the year (January first) over its average
    #: month (:func:`features.seasonality.store_month_factors`)
    month_activity: tuple[float, ...] = (1.0,) * 12
    #: the store's prior over its customers' seasons: no season, then each set of
    #: :data:`features.seasonality.SEASON_SETS` (:func:`features.seasonality.store_season_prior`)
    season_prior: tuple[float, ...] = flat_season_prior()
    #: the store's days that left products behind (``browse_left_days_30d``) and a cart
    #: (``cart_left_days_30d``) per customer and day, and how many days of a customer's own
    #: history weigh as much as that rate (:func:`trigger_prior`); weight 0: none known
    browse_left_rate: float = 0.0
    browse_left_weight: float = 0.0
    cart_left_rate: float = 0.0
    cart_left_weight: float = 0.0

    def channel(self, segment: str, channel: str) -> ChannelPrior:
        for seg in (segment, "*"):
            prior = self.channels.get(seg, {}).get(channel)
            if prior is not None:
                return prior
        return TYPICAL_CHANNEL_PRIORS.get(channel, _DEFAULT_PRIOR)


@dataclass(frozen=True)
class CustomerStatic:
    """Attributes that come from the customers table, not from events. ``zone_known``:
    whether ``timezone`` was given (the customers table, an identify); when not, UTC
    stands in, and a reader that knows the retailer's zone puts it in instead
    (:class:`features.online.profiles.OnlineProfiles`). ``identified``: an ``identify``
    named the customer without a zone or a birthday (only other traits: a sign-up date,
    a loyalty tier, preferences), which registers them as well (:attr:`registered`)."""

    timezone: str = "UTC"
    birth_date: dt.date | None = None
    zone_known: bool = True
    identified: bool = False

    @property
    def registered(self) -> bool:
        """Whether the customer is known to the retailer (the customers table, or an
        ``identify``), not a prospect seen only in events.

        >>> CustomerStatic(zone_known=False).registered, CustomerStatic().registered
        (False, True)
        >>> CustomerStatic(zone_known=False, identified=True).registered
        True
        """
        return self.zone_known or self.birth_date is not None or self.identified


#: The window of the left-day counts, in days.
LEFT_DAYS_WINDOW = 30
#: The weight given to the store's rate when its customers' counts vary no more than
#: chance would make them (no customer is known to differ): ten years of days.
MAX_TRIGGER_WEIGHT = 3650.0


def trigger_prior(customers: int, days: float, squares: float) -> tuple[float, float]:
    """The store's rate of a trigger per customer and day and its weight in days, from
    every customer's count of trigger days in the last :data:`LEFT_DAYS_WINDOW` (``days``
    their sum, ``squares`` the sum of their squares): a Gamma prior on each customer's
    rate by the method of moments (empirical Bayes). The counts' variance less the
    Poisson variance of a count (its mean) is the spread of the customers' own rates; the
    weight is the window times the mean over that spread. A customer's rate is then
    ``(days + weight x rate) / (window + weight)``: a customer with three such days in 30
    is not taken for one who triggers every ten days when most who show three do less
    (regression to the mean).

    >>> trigger_prior(4, 4.0, 10.0)  # counts 0, 0, 1, 3: mean 1, variance 1.5
    (0.03333333333333333, 60.0)
    >>> trigger_prior(0, 0.0, 0.0)
    (0.0, 0.0)
    """
    if customers <= 0 or days <= 0.0:
        return 0.0, 0.0
    mean = days / customers
    spread = squares / customers - mean * mean - mean
    weight = MAX_TRIGGER_WEIGHT if spread <= 0.0 else LEFT_DAYS_WINDOW * mean / spread
    return mean / LEFT_DAYS_WINDOW, min(weight, MAX_TRIGGER_WEIGHT)


def trigger_rate(days: float, rate: float, weight: float) -> float:
    """A customer's trigger days per day: its own ``days`` in the window shrunk toward
    the store's ``rate`` by ``weight`` days (:func:`trigger_prior`)."""
    return (days + weight * rate) / (LEFT_DAYS_WINDOW + weight)


def left_days(keyed: Mapping[str, Mapping[str, float]], now: float) -> tuple[int, int]:
    """``browse_left_days_30d`` and ``cart_left_days_30d`` at ``now`` (seconds) of a
    state's keyed families (:func:`split_state`)."""
    none: Mapping[str, float] = _EMPTY
    purchase_days = {int(float(d)) for d, n in keyed.get("pd", none).items() if n > 0}
    cart_days = {int(float(k)) for k in keyed.get("wc", none)}
    bought_or_carted = purchase_days | cart_days
    browse = sum(
        1
        for k, v in keyed.get("wm", none).items()
        if v >= BROWSE_LEFT_SECONDS
        and _day_in_window(float(k), now, LEFT_DAYS_WINDOW)
        and int(float(k)) not in bought_or_carted
    )
    cart = sum(
        1 for day in cart_days - purchase_days if _day_in_window(float(day), now, LEFT_DAYS_WINDOW)
    )
    return browse, cart


def _smoothed(successes: float, trials: float, prior: float) -> float:
    return (successes + prior * PRIOR_WEIGHT) / (trials + PRIOR_WEIGHT)


@functools.lru_cache(maxsize=256)
def _unengaged(prior: ChannelPrior) -> ChannelEngagement:
    """The engagement of a channel with no message sent, delivered, opened or clicked:
    the prior's rates (one frozen object per prior, shared: most customers have several
    such channels)."""
    return ChannelEngagement(
        open_rate=_smoothed(0.0, 0.0, prior.open_rate),
        click_rate=_smoothed(0.0, 0.0, prior.click_rate),
        conversion_rate=_smoothed(0, 0, prior.conversion_rate),
    )


_EMPTY: dict[str, float] = {}
_CHANNELS = {c.value: c for c in Channel}
#: The families that count contacts, with the seconds their key's time covers: hours
#: (the second of the last contact of each in ``xm``), and the days older versions wrote.
CONTACT_BUCKETS = (("xh", SECONDS_PER_HOUR), ("xd", SECONDS_PER_DAY))
_CONTACT_BUCKETS = CONTACT_BUCKETS


def contact_moments(seconds: Iterable[int]) -> tuple[dt.datetime, ...]:
    """Contact times (epoch seconds) as UTC moments, oldest first.

    >>> contact_moments([86_400, 0])
    (datetime.datetime(1970, 1, 1, 0, 0, tzinfo=datetime.timezone.utc), \
datetime.datetime(1970, 1, 2, 0, 0, tzinfo=datetime.timezone.utc))
    """
    return tuple(dt.datetime.fromtimestamp(t, dt.UTC) for t in sorted(seconds))


#: The consent channels with their names (an enum member's ``value`` is slow to read).
_CONSENT = tuple((c, c.value) for c in CONSENT_CHANNELS)
#: Channels whose register (``g``) opens them: the consent channels, and the wallet,
#: which a pass added to the customer's wallet opens.
_REGISTERED = (*_CONSENT, (Channel.WALLET, Channel.WALLET.value))


#: Each frozen profile type's field names, in declaration order (see :func:`_frozen`).
_FIELD_NAMES: dict[type, tuple[str, ...]] = {}


def _frozen(cls: type[Any], values: dict[str, Any]) -> Any:
    """``cls(**values)`` for a frozen dataclass given every one of its fields, in
    declaration order, without its generated ``__init__`` (one ``object.__setattr__`` per
    field: ~20 µs of a ~100-µs :func:`build_profile` for the profile's ~55 fields): the
    same object, field for field. A type that validates in ``__post_init__``, or a call
    that does not give exactly its fields, goes through the constructor.

    >>> _frozen(ChannelEngagement, dict.fromkeys(_field_names(ChannelEngagement), 1))
    ChannelEngagement(sent=1, delivered=1, opened=1, clicked=1, converted=1, open_rate=1, \
click_rate=1, conversion_rate=1)
    """
    if hasattr(cls, "__post_init__") or tuple(values) != _field_names(cls):
        return cls(**values)
    made = object.__new__(cls)
    made.__dict__.update(values)
    return made


def _field_names(cls: type[Any]) -> tuple[str, ...]:
    names = _FIELD_NAMES.get(cls)
    if names is None:
        names = _FIELD_NAMES[cls] = tuple(f.name for f in fields(cls))
    return names


def split_state(state: Mapping[str, float]) -> tuple[dict[str, float], dict[str, dict[str, float]]]:
    """``(scalars, keyed)``: ``{"np": 3}`` and ``{"pd": {"20512": 1}}`` from a flat state."""
    scalars: dict[str, float] = {}
    keyed: dict[str, dict[str, float]] = {}
    for name, value in state.items():
        family, sep, key = name.partition(":")
        if sep:
            keyed.setdefault(family, {})[key] = value
        else:
            scalars[name] = value
    return scalars, keyed


class SplitState(Mapping[str, float]):
    """A flat state held already split as :func:`split_state` splits it: the scalars, and
    each keyed family's entries by key. A decoder that reads families whole (the online
    store's MessagePack, :func:`features.online.codec.state_of`) builds it directly;
    :func:`build_profile` then reads the parts as they are instead of re-splitting
    ``family:key`` names. As a mapping it is the flat state (``"pd:20512" -> 1.0``).
    The parts are shared, not copied: neither side may change them."""

    __slots__ = ("keyed", "scalars")

    def __init__(self, scalars: dict[str, float], keyed: dict[str, dict[str, float]]) -> None:
        self.scalars = scalars
        self.keyed = keyed

    def __getitem__(self, name: str) -> float:
        family, sep, key = name.partition(":")
        if not sep:
            return self.scalars[name]
        entries = self.keyed.get(family)
        if entries is None or key not in entries:
            raise KeyError(name)
        return entries[key]

    def __iter__(self) -> Iterator[str]:
        yield from self.scalars
        for family, entries in self.keyed.items():
            for key in entries:
                yield f"{family}:{key}"

    def __len__(self) -> int:
        return len(self.scalars) + sum(len(entries) for entries in self.keyed.values())


def _day_in_window(day: float, as_of: float, days: int) -> bool:
    start = day * SECONDS_PER_DAY
    return start + SECONDS_PER_DAY > as_of - days * SECONDS_PER_DAY and start <= as_of


def _bucket_sum(buckets: Mapping[str, float], as_of: float, days: int) -> float:
    # _day_in_window inlined (the same arithmetic): a call per bucket costs more than the test
    since = as_of - days * SECONDS_PER_DAY
    return sum(
        v
        for k, v in buckets.items()
        if (start := float(k) * SECONDS_PER_DAY) + SECONDS_PER_DAY > since and start <= as_of
    )


def order_count(lines: float, order_lines: Iterable[float], folded: float = 0.0) -> float:
    """The orders of ``lines`` purchase lines: the lines less those beyond each order's
    first, of the orders known by their second (``order_lines``: the ``ol`` values) and
    of the orders folded past the return window (``folded``: ``lx``). The contract has one
    purchase event per order line, all at the order's second. A line no order knows (a
    state written before orders were kept) counts as an order, as every line did; any
    line at all is at least one order.

    >>> order_count(4.0, [3.0, 1.0]), order_count(4.0, []), order_count(6.0, [2.0], 3.0)
    (2.0, 4.0, 2.0)
    """
    extra = folded + sum(n - 1.0 for n in order_lines if n > 1.0)
    return max(lines - extra, min(lines, 1.0))


def _orders_in_window(
    lines: float, order_lines: Mapping[str, float], as_of: float, days: int
) -> float:
    """:func:`order_count` of the ``lines`` bought in the window of the last ``days``
    (the UTC day buckets :func:`_bucket_sum` counts the lines of)."""
    since = as_of - days * SECONDS_PER_DAY
    return order_count(
        lines,
        (
            n
            for k, n in order_lines.items()
            if (start := float(k) // SECONDS_PER_DAY * SECONDS_PER_DAY) + SECONDS_PER_DAY > since
            and start <= as_of
        ),
    )


def _recent(stamps: Mapping[str, float], as_of: float, days: int) -> list[tuple[str, float]]:
    horizon = as_of - days * SECONDS_PER_DAY
    return sorted(
        ((k, v) for k, v in stamps.items() if horizon <= v <= as_of), key=lambda kv: (-kv[1], kv[0])
    )


def lingered(dwell: float | None, last_view: float, zone: dt.tzinfo) -> float:
    """How a browsed product ranks in a browse reminder, highest first: its longest view
    on the latest local day it was viewed (the state's ``vs``, ``day * VIEW_DAY_SCALE +
    seconds``); a product whose views that day gave no dwell time counts that day and the
    default 60 seconds. Without any dwell time this is the latest view first.

    >>> day = 20_000 * 86_400.0
    >>> lingered(None, day + 5, dt.UTC) == day + DEFAULT_VIEW_SECONDS
    True
    >>> lingered(day + 1200, day + 5, dt.UTC) == day + 1200  # 20 minutes that day
    True
    >>> lingered(day - 86_400 + 1200, day + 5, dt.UTC) == day + DEFAULT_VIEW_SECONDS
    True
    """
    start = local_day(dt.datetime.fromtimestamp(last_view, zone)) * VIEW_DAY_SCALE
    if dwell is not None and dwell >= start:
        return dwell
    return start + DEFAULT_VIEW_SECONDS


def _hours(as_of: float, then: float | None) -> float | None:
    return None if then is None else (as_of - then) / SECONDS_PER_HOUR


def _days(as_of: float, then: float | None) -> float | None:
    return None if then is None else (as_of - then) / SECONDS_PER_DAY


def _shares(values: Mapping[str, float]) -> dict[str, float]:
    total = sum(values.values())
    if total <= 0:
        return {}
    return {k: v / total for k, v in sorted(values.items())}


def _top(shares: Mapping[str, float]) -> str | None:
    return min(shares, key=lambda k: (-shares[k], k)) if shares else None


def calendar_days_since(then: float | None, today: dt.date, zone: dt.tzinfo) -> int | None:
    """Local calendar days from the day of ``then`` (epoch seconds) to ``today``, in
    ``zone``: 0 on the same local day, 1 from the next local midnight.

    >>> paris = time_zone("Europe/Paris")
    >>> signed = dt.datetime(2026, 3, 1, 23, 0, tzinfo=paris).timestamp()
    >>> calendar_days_since(signed, dt.date(2026, 3, 2), paris)
    1
    >>> calendar_days_since(None, dt.date(2026, 3, 2), paris) is None
    True
    """
    if then is None:
        return None
    return (today - dt.datetime.fromtimestamp(then, zone).date()).days


def days_to_birthday(birth: dt.date | None, today: dt.date) -> int | None:
    """Days from ``today`` to the next birthday (0 on the day; 29 February falls on 1 March).

    >>> days_to_birthday(dt.date(1990, 4, 12), dt.date(2026, 4, 5))
    7
    >>> days_to_birthday(dt.date(1990, 4, 12), dt.date(2026, 4, 13))
    364
    """
    if birth is None:
        return None

    def on(year: int) -> dt.date:
        try:
            return birth.replace(year=year)
        except ValueError:  # 29 February
            return dt.date(year, 3, 1)

    nxt = on(today.year)
    if nxt < today:
        nxt = on(today.year + 1)
    return (nxt - today).days


def _peak_hour(counts: Mapping[int, float]) -> int:
    """The hour of week where the activity ``counts`` smoothed over the neighbouring hours
    (circular, weights 1-2-1) peaks; the earliest on a tie."""
    week = [0.0] * HOURS_PER_WEEK
    for hour, n in counts.items():
        week[hour] = n
    candidates = sorted({(h + d) % HOURS_PER_WEEK for h in counts for d in (-1, 0, 1)})
    last = HOURS_PER_WEEK - 1
    best, peak = -math.inf, -1
    for i in candidates:
        value = week[i - 1] + 2 * week[i] + week[i + 1 if i < last else 0]
        if value > best:
            best, peak = value, i
    return peak


def season_inputs(
    state: Mapping[str, float], as_of: float, priors: FeaturePriors
) -> VerdictInputs | None:
    """The inputs of the customer's seasonal test at ``as_of`` (epoch seconds), read from
    the state as :func:`build_profile` reads them (``None``: no shopping day)."""
    if isinstance(state, SplitState):
        scalars, keyed = state.scalars, state.keyed
    else:
        scalars, keyed = split_state(state)
    months = shopping_months(settled_shopping_days(scalars, keyed, as_of), keyed.get("am", _EMPTY))
    return verdict_inputs(
        months, scalars.get("t0"), as_of, (priors.month_activity, priors.season_prior)
    )


def settle_returns(
    scalars: Mapping[str, float], keyed: Mapping[str, dict[str, float]], now: float
) -> tuple[dict[str, float], dict[str, dict[str, float]], frozenset[str]]:
    """The purchase fields of a state with its returns and cancellations taken out, at
    ``now`` (epoch seconds), and the products whose purchase was undone.

    A return or cancellation (``rt``) naming a product undoes that product's latest
    purchase before it (``bp``); one naming none undoes the customer's latest order
    before it (every line bought at that second). Without an amount (``rw``), or with
    refunds (``ra``) that reach what the lines cost (their share of the day's revenue),
    the lines are undone whole: they leave the purchase counts (``np``, ``pd``; their
    order, ``ol``, with its last line or with a return naming no product), the
    revenue (``rv``, ``rd``), the last and first purchase (``tp``, ``tf``: the latest
    purchase kept; where only its day is known, the month's last purchase if it is that
    day's, else the day's start; where it is older than the window, the last purchase of
    the latest month before it, ``pq``) and the last purchased products. A smaller
    refund is a partial return: the purchase still counts, its revenue less the refund
    (a product's refunds add up over the state's life). Only purchases of the last
    :data:`RETURN_DAYS` are known by product and day; an older one is not undone.

    >>> day = 20_000 * 86_400.0
    >>> state = {"np": 2.0, "rv": 80.0, "tp": day + 60, "tf": day - 86_400 * 40}
    >>> keyed = {"pd": {"20000": 1.0, "19960": 1.0}, "rd": {"20000": 50.0, "19960": 30.0},
    ...          "bp": {"P1|20000": day + 60}, "rt": {"P1": day + 3600}, "rw": {"P1": day + 3600}}
    >>> scalars, settled, returned = settle_returns(state, keyed, day + 7200)
    >>> scalars["np"], scalars["rv"], scalars["tp"] == day - 86_400 * 40, sorted(returned)
    (1.0, 30.0, True, ['P1'])
    """
    settled = _settlement(scalars, keyed, now)
    return settled.scalars, settled.keyed, settled.returned


@dataclass(frozen=True)
class _Settled:
    """What :func:`_settlement` gives: the settled purchase fields, the products whose
    purchase was undone, the seconds of the orders undone whole, the seconds of the
    purchases kept in the return window (a purchase known by its day only: its day's
    start, or the month's last purchase), the UTC days of those known by their day
    only and, for each product undone, the return or cancellation that undid it; all
    empty when nothing was undone."""

    scalars: dict[str, float]
    keyed: dict[str, dict[str, float]]
    returned: frozenset[str]
    undone_times: frozenset[float]
    kept: tuple[float, ...]
    kept_days: frozenset[int] = frozenset()
    returned_at: Mapping[str, float] = field(default_factory=dict)


def _settlement(
    scalars: Mapping[str, float], keyed: Mapping[str, dict[str, float]], now: float
) -> _Settled:
    """:func:`settle_returns`, with the orders it undid and the purchases it kept.

    Only the returns of the window count: one older than :data:`RETURN_DAYS` (which the
    online store holds until its daily compaction, while a batch build has dropped it)
    changes nothing, so that online and batch read the same profile at any moment."""
    horizon = now - RETURN_DAYS * SECONDS_PER_DAY
    stamps = {k: at for k, at in keyed.get("rt", _EMPTY).items() if horizon <= at <= now}
    if not stamps:
        return _Settled(dict(scalars), dict(keyed), frozenset(), frozenset(), ())
    bought = _purchase_lines(keyed, horizon, now)
    whole_at, refunded = keyed.get("rw", _EMPTY), keyed.get("ra", _EMPTY)
    last, first = scalars.get("tp"), scalars.get("tf")
    day_count, day_revenue = dict(keyed.get("pd", _EMPTY)), dict(keyed.get("rd", _EMPTY))
    day_key = {int(float(k)): k for k in day_count}
    purchases, revenue = scalars.get("np", 0.0), scalars.get("rv", 0.0)
    order_lines = dict(keyed.get("ol", _EMPTY))  # an order leaves with its last line
    undone: set[tuple[float, str]] = set()  # (purchase second, product) undone whole
    undone_times: set[float] = set()
    undone_by: dict[str, float] = {}  # product -> the return that undid its purchase
    for key, at in sorted(stamps.items()):
        if key == RETURN_ORDER_KEY:
            times = [t for t, _ in bought if t <= at]
            if last is not None and horizon <= last <= at:
                times.append(last)
            if not times:
                continue
            target = max(times)
            lines = sorted(p for t, p in bought if t == target) or [RETURN_ORDER_KEY]
        else:
            # the product's latest purchase before the return, though bought again since
            target = max((t for t, p in bought if p == key and t <= at), default=math.inf)
            if target == math.inf:
                continue
            lines = [key]
        lines = [p for p in lines if (target, p) not in undone]
        if not lines:
            continue
        day = day_key.get(int(target // SECONDS_PER_DAY))
        count = day_count.get(day, 0.0) if day is not None else 0.0
        cost = len(lines) * (day_revenue.get(day, 0.0) / count if day and count > 0 else 0.0)
        amount = refunded.get(key, 0.0)
        if whole_at.get(key, -math.inf) >= target or (
            cost > 0 and amount >= cost - _WHOLE_REFUND_SLACK
        ):
            undone.update((target, p) for p in lines)
            undone_by.update(dict.fromkeys(lines, at))
            undone_times.add(target)
            purchases -= len(lines)
            revenue -= cost
            order = _order_key(target)
            left = order_lines.get(order, 0.0) - len(lines)
            if key == RETURN_ORDER_KEY or left <= 0:
                order_lines.pop(order, None)
            else:
                order_lines[order] = left
            if day is not None:
                day_count[day] = count - len(lines)
                day_revenue[day] = day_revenue.get(day, 0.0) - cost
        elif amount > 0 and cost > 0:
            revenue -= amount
            if day is not None:
                day_revenue[day] = day_revenue.get(day, 0.0) - amount
    out = dict(scalars)
    out["np"], out["rv"] = max(purchases, 0.0), max(revenue, 0.0)
    kept: list[float] = []
    kept_days: set[int] = set()
    if undone_times:
        kept = [t for t, p in bought if (t, p) not in undone]
        stamped_days: dict[int, int] = {}
        for t in kept:
            stamped_days[int(t // SECONDS_PER_DAY)] = (
                stamped_days.get(int(t // SECONDS_PER_DAY), 0) + 1
            )
        in_window = 0.0
        months = keyed.get("pq", _EMPTY)
        for number, k in day_key.items():
            start = number * SECONDS_PER_DAY
            if start + SECONDS_PER_DAY > horizon and start <= now and day_count[k] > 0:
                in_window += day_count[k]
                if day_count[k] > stamped_days.get(number, 0):
                    # a purchase known by its day only: the month's last purchase when it
                    # is that day's and kept, else the day's start
                    month_last = months.get(str(first_day_of_month(number)))
                    on_day = month_last is not None and int(month_last // SECONDS_PER_DAY) == number
                    if on_day and month_last not in undone_times:
                        kept.append(month_last)  # type: ignore[arg-type]
                    else:
                        kept.append(max(start, horizon))
                        kept_days.add(number)
        older = out["np"] - in_window > 0
        if last is not None and last in undone_times and last not in kept:
            latest = (
                max(kept) if kept else (_kept_before(scalars, keyed, horizon) if older else None)
            )
            _set_or_drop(out, "tp", latest)
        if first is not None and first in undone_times and first not in kept:
            _set_or_drop(out, "tf", min(kept) if kept else None)
        if out["np"] <= 0:
            out.pop("tp", None)
            out.pop("tf", None)
    settled = dict(keyed)  # the families' entries shared, pd and rd replaced
    settled["pd"], settled["rd"] = day_count, day_revenue
    if "ol" in keyed:
        settled["ol"] = order_lines
    returned = frozenset(p for _, p in undone if p != RETURN_ORDER_KEY)
    return _Settled(
        out,
        settled,
        returned,
        frozenset(undone_times),
        tuple(kept),
        frozenset(kept_days),
        {p: at for p, at in undone_by.items() if p != RETURN_ORDER_KEY},
    )


def _order_key(second: float) -> str:
    """The ``ol`` key of the order at ``second``."""
    return str(int(second))


def latest_purchases(keyed: Mapping[str, Mapping[str, float]]) -> dict[str, float]:
    """Each product's latest purchase (epoch seconds): the latest of its purchases by day
    (``bp``, ``product|day``), or its ``cb`` as earlier versions kept it, if later.

    >>> latest_purchases({"bp": {"P1|20000": 7.0, "P1|20001": 9.0, "P2|20000": 8.0},
    ...                   "cb": {"P2": 5.0, "P3": 4.0}})
    {'P2': 8.0, 'P3': 4.0, 'P1': 9.0}
    """
    out = dict(keyed.get("cb", _EMPTY))
    for key, at in keyed.get("bp", _EMPTY).items():
        product = key.rpartition("|")[0]
        if at > out.get(product, -math.inf):
            out[product] = at
    return out


def _purchase_lines(
    keyed: Mapping[str, Mapping[str, float]], horizon: float, now: float
) -> list[tuple[float, str]]:
    """The purchases known by second and product between ``horizon`` and ``now``: each
    product's purchases by day (``bp``: the day's last) and its latest as earlier versions
    kept it (``cb``, for a state written before ``bp`` was kept), once each, in time
    order."""
    lines = {(t, p) for p, t in keyed.get("cb", _EMPTY).items() if horizon <= t <= now}
    lines.update(
        (t, key.rpartition("|")[0])
        for key, t in keyed.get("bp", _EMPTY).items()
        if horizon <= t <= now
    )
    return sorted(lines)


def withdrawn_days(days: Mapping[str, float], settled: _Settled) -> frozenset[str]:
    """The local days (``ad`` keys) that are no shopping day once returns are settled: the
    days shopped by purchases alone (a negative ``ad`` value: the day's latest purchase,
    :data:`~features.definitions.PURCHASE_DAY_OFFSET`) whose latest order was undone whole
    and that keep no purchase since the start of the day (taken early: the day's start in
    the easternmost zone, UTC+14, so that a kept order is never missed; a kept purchase
    known by its UTC day only, anywhere in that day). Only orders the
    return window (:data:`RETURN_DAYS`) can undo are withdrawn: an older day counts again,
    as an older return's purchase does in the counts (the state no longer knows it)."""
    if not settled.undone_times:
        return frozenset()
    out = []
    for day, value in days.items():
        if value >= 0:
            continue
        latest = value + PURCHASE_DAY_OFFSET
        if latest not in settled.undone_times:
            continue
        earliest = int(float(day)) * SECONDS_PER_DAY - _EARLIEST_DAY_START
        if any(earliest <= t <= latest for t in settled.kept):
            continue
        # a kept purchase known by its UTC day only: anywhere in that day
        if any(
            (u + 1) * SECONDS_PER_DAY > earliest and u * SECONDS_PER_DAY <= latest
            for u in settled.kept_days
        ):
            continue
        out.append(day)
    return frozenset(out)


def shopping_days(
    keyed: Mapping[str, Mapping[str, float]], settled: _Settled | None
) -> Mapping[str, float]:
    """The ``ad`` days of a state that count as shopping days (:func:`withdrawn_days` out)."""
    days = keyed.get("ad", _EMPTY)
    gone = withdrawn_days(days, settled) if settled is not None else frozenset()
    return {d: v for d, v in days.items() if d not in gone} if gone else days


def settled_shopping_days(
    scalars: Mapping[str, float], keyed: Mapping[str, dict[str, float]], now: float
) -> Mapping[str, float]:
    """:func:`shopping_days` of a state at ``now`` (epoch seconds), its returns settled when
    a day shopped by purchases alone may have been undone."""
    days = keyed.get("ad", _EMPTY)
    if "rt" not in keyed or all(v >= 0 for v in days.values()):
        return days
    return shopping_days(keyed, _settlement(scalars, keyed, now))


#: How long a delivery's products are kept (``dv``'s retention), in seconds.
_HANDED_KEPT_SECONDS = (FAMILIES["dv"].retention_days or 0) * SECONDS_PER_DAY


def delivery_returned(
    delivered_at: float | None,
    returned_at: float | None,
    handed: Mapping[str, float],
    returns: Mapping[str, float],
    now: float,
) -> bool:
    """Whether what the latest delivery (or pick-up) handed over was sent back or cancelled
    since: one of its products (``dv`` stamps equal to the delivery) among those returned
    whole after it (``returns``: product -> when, as :func:`settle_returns` undid their
    purchase, a return naming no product included). A delivery naming no product, or
    older than what ``dv`` keeps (its retention: the stamps may be gone), is taken as
    returned by any return after it (``returned_at``). A return of an earlier order
    (another product), or a partial refund (a price adjustment: the product is kept),
    leaves the delivery kept: its review is asked.

    >>> day = 86_400.0
    >>> delivery_returned(100.0, 150.0, {"P1": 100.0, "P2": 50.0}, {"P2": 150.0}, 2 * day)
    False
    >>> delivery_returned(100.0, 150.0, {"P1": 100.0}, {"P1": 150.0}, 2 * day)
    True
    >>> delivery_returned(100.0, 150.0, {}, {"P2": 150.0}, 2 * day)  # no product named
    True
    """
    if delivered_at is None or returned_at is None or not returned_at > delivered_at:
        return False
    if now - delivered_at > _HANDED_KEPT_SECONDS:
        return True
    products = [p for p, t in handed.items() if t == delivered_at]
    if not products:
        return True
    return any(returns.get(p, -math.inf) > delivered_at for p in products)


def _kept_before(
    scalars: Mapping[str, float], keyed: Mapping[str, Mapping[str, float]], horizon: float
) -> float:
    """The latest purchase before ``horizon`` (the start of the window returns undo
    purchases in): the last purchase of the latest month before it (``pq``), else the
    first purchase, else the window's start (a purchase older than the months kept)."""
    months = [t for t in keyed.get("pq", _EMPTY).values() if t < horizon]
    if months:
        return max(months)
    first = scalars.get("tf")
    return first if first is not None and first < horizon else horizon


def _in_return_window(at: float | None, now: float) -> float | None:
    """``at`` (a return's second) when the return window (:data:`RETURN_DAYS`) still holds it
    at ``now``, else ``None``: an older return is no evidence of what a delivery became (the
    state keeps which products went back for the window only)."""
    return at if at is not None and at >= now - RETURN_DAYS * SECONDS_PER_DAY else None


def _set_or_drop(values: dict[str, float], name: str, value: float | None) -> None:
    if value is None:
        values.pop(name, None)
    else:
        values[name] = value


def build_profile(
    customer_id: str,
    state: Mapping[str, float],
    as_of: dt.datetime,
    static: CustomerStatic | None = None,
    priors: FeaturePriors | None = None,
    season: str | None = None,
) -> CustomerProfile:
    """The profile of ``customer_id`` at ``as_of`` (timezone-aware) from its state.

    ``season``: the seasonal verdict stored for the day
    (:func:`features.seasonality.stored_verdict`), used when it was computed from this
    state's inputs and day (the same months as the test would give)."""
    static = static or CustomerStatic()
    priors = priors or FeaturePriors()
    now = as_of.timestamp()
    if isinstance(state, SplitState):
        scalars, keyed = state.scalars, state.keyed
    else:
        scalars, keyed = split_state(state)
    settled: _Settled | None = None
    if "rt" in keyed:  # returns or cancellations: the purchases they undo taken out
        settled = _settlement(scalars, keyed, now)
        scalars, keyed = settled.scalars, settled.keyed
    get = scalars.get

    def _keyed(_: object, family: str) -> dict[str, float]:
        return keyed.get(family, _EMPTY)

    tier_enc = get("lt")
    tier_at, tier_rank = decode_register(tier_enc) if tier_enc is not None else (None, 0)
    tier = TIERS[min(tier_rank, len(TIERS) - 1)]
    # a tier below the highest held was lost (a yearly requalification), not reached:
    # no "days since the tier was reached" to congratulate on
    held = get("lm")
    if tier_at is not None and held is not None and tier_rank < held:
        tier_at = None

    purchases = get("np", 0.0)
    revenue = get("rv", 0.0)
    day_purchases = _keyed(state, "pd")
    order_lines = _keyed(state, "ol")
    orders = order_count(purchases, order_lines.values(), get("lx", 0.0))
    day_revenue = _keyed(state, "rd")

    # engagement per channel
    engagement: dict[Channel, ChannelEngagement] = {}
    sent, delivered, opened, clicked = (_keyed(state, f) for f in ("es", "ed", "eo", "ek"))
    click_days = _keyed(state, "kd")
    purchase_days = {int(float(d)) for d, n in day_purchases.items() if n > 0}
    clicks_by_channel: dict[str, list[int]] = {}
    for key in click_days:
        ch_name, _, day = key.rpartition("|")
        if _day_in_window(float(day), now, 90):
            clicks_by_channel.setdefault(ch_name, []).append(int(day))
    for ch, c in _CONSENT:
        prior = priors.channel(tier, c)
        n_sent, n_del = sent.get(c, 0.0), delivered.get(c, 0.0)
        n_open, n_click = opened.get(c, 0.0), clicked.get(c, 0.0)
        days_clicked = clicks_by_channel.get(c, [])
        if not (n_sent or n_del or n_open or n_click or days_clicked):
            engagement[ch] = _unengaged(prior)  # nothing known: the prior's rates
            continue
        converted = sum(
            1
            for d in days_clicked
            if any(d + i in purchase_days for i in range(CONVERSION_DAYS + 1))
        )
        base = max(n_del, n_sent)
        engagement[ch] = _frozen(
            ChannelEngagement,
            {
                "sent": int(n_sent),
                "delivered": int(n_del),
                "opened": int(n_open),
                "clicked": int(n_click),
                "converted": converted,
                "open_rate": _smoothed(n_open, base, prior.open_rate),
                "click_rate": _smoothed(n_click, base, prior.click_rate),
                "conversion_rate": _smoothed(converted, len(days_clicked), prior.conversion_rate),
            },
        )

    # activity by hour of week
    hours = _keyed(state, "h")
    activity: tuple[float, ...] = ()
    peak: int | None = None
    total_activity = sum(hours.values())
    if total_activity > 0:
        counts: dict[int, float] = {}
        for k, v in hours.items():
            hour = int(float(k)) % HOURS_PER_WEEK
            counts[hour] = counts.get(hour, 0.0) + v
        shares = [0.0] * HOURS_PER_WEEK
        for hour, v in counts.items():
            shares[hour] = v / total_activity
        activity = tuple(shares)

        peak = _peak_hour(counts)

    # cart and browse
    added, removed, bought = _keyed(state, "ca"), _keyed(state, "cr"), latest_purchases(keyed)
    prices = _keyed(state, "cv")
    in_cart = [
        (p, t)
        for p, t in _recent(added, now, CART_DAYS)
        if t > max(removed.get(p, -math.inf), bought.get(p, -math.inf))
    ]
    cart_items = tuple(sorted(p for p, _ in in_cart))
    cart_value = sum(prices.get(p, 0.0) for p in cart_items)
    # the cart's age runs from its last addition (the moment the customer left it, as
    # cart-abandonment timers count): an item left weeks ago does not age a cart
    # topped up today
    cart_age = _hours(now, max(t for _, t in in_cart)) if in_cart else None
    viewed = _recent(_keyed(state, "v"), now, BROWSE_DAYS)
    browsed = tuple(p for p, t in viewed if t > bought.get(p, -math.inf))
    dwell = _keyed(state, "vs")
    if dwell:  # what they lingered on first (see lingered)
        zone = time_zone(static.timezone)
        last = dict(viewed)
        browsed = tuple(sorted(browsed, key=lambda p: -lingered(dwell.get(p), last[p], zone)))
    browsed = browsed[:TOP_N]
    browsed_categories = tuple(c for c, _ in _recent(_keyed(state, "vc"), now, BROWSE_DAYS))[:TOP_N]
    browse_seconds = sum(
        v
        for k, v in _keyed(state, "vm").items()
        if float(k) * SECONDS_PER_HOUR + SECONDS_PER_HOUR > now - SECONDS_PER_DAY
    )
    # sent back and not bought again since (a later purchase of it stays a purchase), with
    # when: the return that undid it (an older return of the product, or one the window has
    # passed, is no part of it)
    returned_at = settled.returned_at if settled is not None else {}
    still_returned = {p: at for p, at in returned_at.items() if bought.get(p, -math.inf) <= at}
    last_bought = tuple(
        p for p, _ in _recent(bought, now, RECENT_PURCHASE_DAYS) if p not in still_returned
    )[:TOP_N]
    returned_products = tuple(sorted(still_returned, key=lambda p: (-still_returned[p], p)))

    # lifecycle and journey
    first_seen = get("t0")
    last_purchase, first_purchase = get("tp"), get("tf")
    days_known = _days(now, first_seen)
    days_quiet = _days(now, last_purchase)
    # a repeat buyer has bought at two moments or more: the lines of one order share its
    # second (one purchase event per line), so three lines bought at once are one order,
    # not a customer who buys every 14 days (MIN_PURCHASE_GAP_DAYS) and is lapsed in six
    # weeks; nor a loyal customer. The usual gap is between orders, not lines
    repeat = (
        orders >= 2
        and last_purchase is not None
        and first_purchase is not None
        and last_purchase > first_purchase
    )
    if repeat and last_purchase is not None and first_purchase is not None:
        gap = max(
            MIN_PURCHASE_GAP_DAYS,
            (last_purchase - first_purchase) / SECONDS_PER_DAY / (orders - 1),
        )
    else:
        gap = DEFAULT_PURCHASE_GAP_DAYS
    if days_known is not None and days_known <= NEW_CUSTOMER_DAYS and not repeat:
        lifecycle = LifecycleState.NEW
    elif purchases == 0 or days_quiet is None:
        lifecycle = LifecycleState.PROSPECT
    elif days_quiet <= AT_RISK_GAPS * gap:
        lifecycle = LifecycleState.ACTIVE
    elif days_quiet <= LAPSED_GAPS * gap:
        lifecycle = LifecycleState.AT_RISK
    else:
        lifecycle = LifecycleState.LAPSED
    if cart_items:
        phase = JourneyPhase.DECISION
    elif days_quiet is not None and days_quiet <= RECOMMENDATION_DAYS:
        phase = JourneyPhase.RECOMMENDATION
    elif lifecycle is LifecycleState.LAPSED:
        phase = JourneyPhase.LAPSE
    elif repeat:
        # a repeat buyer who browses is still a loyal customer (cross-sell, up-sell),
        # not one discovering the brand (the style guide)
        phase = JourneyPhase.LOYALTY
    elif len(viewed) >= 2:
        phase = JourneyPhase.CONSIDERATION
    else:
        phase = JourneyPhase.DISCOVERY

    seasonal = seasonal_months(
        shopping_days(keyed, settled),
        first_seen,
        now,
        priors.month_activity,
        priors.season_prior,
        _keyed(state, "am"),
        season,
    )

    # consents and contacts
    consents: dict[Channel, bool] = {}
    given = _keyed(state, "g")
    for ch, c in _REGISTERED:
        reg = given.get(c)
        consents[ch] = reg is not None and decode_register(reg)[1] == 0
    tz = time_zone(static.timezone)
    today = as_of.astimezone(tz).date()  # the customer's local date
    c1: dict[Channel, int] = {}
    c7: dict[Channel, int] = {}
    c30: dict[Channel, int] = {}
    seconds: dict[Channel, list[int]] = {}
    # rolling: a bucket counts while any of it lies in the last ``window`` days; each
    # contact's time is its hour's last contact's second (xm), or, where an older version
    # wrote none, the bucket's last second (as long as it counted)
    last_second = _keyed(state, "xm")
    windows = (
        (now - SECONDS_PER_DAY, c1),
        (now - 7 * SECONDS_PER_DAY, c7),
        (now - 30 * SECONDS_PER_DAY, c30),
    )
    for family, span in _CONTACT_BUCKETS:
        for key, n in _keyed(state, family).items():
            ch_name, number = key.rsplit("|", 1)
            ch = _CHANNELS[ch_name]
            start = int(float(number)) * span
            if start > now:
                continue
            for since, per_channel in windows:
                if start + span > since:
                    per_channel[ch] = per_channel.get(ch, 0) + int(n)
            if start + span > windows[2][0] and int(n) > 0:
                offset = last_second.get(key) if family == "xh" else None
                at = start + span - 1
                if offset is not None and 0 <= offset < SECONDS_PER_HOUR:
                    at = start + int(offset)
                seconds.setdefault(ch, []).extend([at] * int(n))
    contacts = _frozen(
        ContactHistory,
        {
            "last_contact_at": {
                _CHANNELS[k]: dt.datetime.fromtimestamp(v, dt.UTC)
                for k, v in _keyed(state, "xl").items()
            },
            "contacts_1d": c1,
            "contacts_7d": c7,
            "contacts_30d": c30,
            "last_refusal_at": {
                _CHANNELS[k]: dt.datetime.fromtimestamp(v, dt.UTC)
                for k, v in _keyed(state, "xr").items()
            },
            "contact_times": {ch: contact_moments(times) for ch, times in seconds.items()},
        },
    )

    declared_channels = _keyed(state, "pc")
    preferred_channel = (
        max(declared_channels, key=lambda c: (declared_channels[c], c))
        if declared_channels
        else None
    )
    collect_order, collect_pickup = get("co"), get("cl")
    hours_register = get("ph")
    preferred_hours = None if hours_register is None else decode_hours_register(hours_register)[1]

    categories = _shares(_keyed(state, "c"))
    brands = _shares(_keyed(state, "b"))
    browse_left, cart_left = left_days(keyed, now)
    lines_90d = _bucket_sum(day_purchases, now, 90)
    return _frozen(
        CustomerProfile,
        {
            "customer_id": customer_id,
            "as_of": as_of,
            "timezone": static.timezone,
            "days_since_first_seen": days_known,
            "days_since_sign_up": days_known if get("su") is None else _days(now, get("su")),
            "sign_up_day": calendar_days_since(
                first_seen if get("su") is None else get("su"), today, tz
            ),
            "days_since_last_purchase": days_quiet,
            "days_since_last_visit": _days(now, get("tv")),
            "purchases_30d": int(_bucket_sum(day_purchases, now, 30)),
            "purchases_90d": int(lines_90d),
            "purchases_total": int(purchases),
            "orders_90d": int(_orders_in_window(lines_90d, order_lines, now, 90)),
            "orders_total": int(orders),
            "revenue_90d": _bucket_sum(day_revenue, now, 90),
            "revenue_total": revenue,
            "average_basket": revenue / orders if orders else 0.0,
            "category_affinity": categories,
            "brand_affinity": brands,
            "top_category": _top(categories),
            "top_brand": _top(brands),
            "engagement": engagement,
            "activity_by_hour": activity,
            "peak_hour_of_week": peak,
            "lifecycle_state": lifecycle,
            "journey_phase": phase,
            "cart_items": cart_items,
            "cart_value": cart_value,
            "cart_age_hours": cart_age,
            "browsed_products": browsed,
            "browsed_categories": browsed_categories,
            "browse_minutes_24h": browse_seconds / 60.0,
            "hours_since_last_browse": _hours(now, viewed[0][1]) if viewed else None,
            "browse_days_30d": int(_bucket_sum(_keyed(state, "wd"), now, 30)),
            "browse_left_days_30d": browse_left,
            "cart_left_days_30d": cart_left,
            "browse_left_rate": trigger_rate(
                browse_left, priors.browse_left_rate, priors.browse_left_weight
            ),
            "cart_left_rate": trigger_rate(
                cart_left, priors.cart_left_rate, priors.cart_left_weight
            ),
            "last_purchased_products": last_bought,
            "returned_products": returned_products,
            "hours_since_last_purchase": _hours(now, last_purchase),
            "hours_since_last_delivery": _hours(now, get("td")),
            "hours_since_last_return": _hours(now, get("tx")),
            "last_delivery_returned": delivery_returned(
                get("td"),
                _in_return_window(get("tx"), now),
                _keyed(state, "dv"),
                still_returned,
                now,
            ),
            "promo_sensitivity": _smoothed(get("pp", 0.0), purchases, priors.promo_share),
            "early_adopter_score": _smoothed(get("pn", 0.0), purchases, priors.new_product_share),
            "seasonal_months": seasonal,
            "days_to_birthday": days_to_birthday(static.birth_date, today),
            "loyalty_tier": tier,
            "days_since_loyalty_tier": _days(now, tier_at),
            "has_click_collect": get("cc") is not None,
            "click_collect_pending": collect_order is not None
            and (collect_pickup is None or collect_pickup < collect_order),
            "hours_since_click_collect_order": _hours(now, collect_order),
            "preferred_channel": preferred_channel,
            "preferred_hours": preferred_hours,
            "consents": consents,
            "contacts": contacts,
            "events_seen": int(get("n", 0.0)),
        },
    )
