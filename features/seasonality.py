"""Seasonal buyers: the months of the year in which a customer shops far more than usual.

The evidence is what a retailer records: the days a customer shopped (viewed,
searched, carted, checked out, bought, visited a store, picked up), by local day, the
state family ``ad`` (:mod:`features.definitions`), counted per calendar month.
Purchases alone are too few (a median of six in two years on the simulated retailer);
events come in sessions of very different lengths, so a day counts once however many
events it has. Two normalisations make a busy month mean something:

* **exposure**: a month of the year counts only as far as the customer was known in it
  (first seen in March: no January to compare; the current month, as far as it went);
* **the store's own seasonality** (:attr:`FeaturePriors.month_activity
  <features.finalise.FeaturePriors>`, estimated by :func:`store_month_factors` over
  every customer): December is busy for everyone, so a busy December marks no one.

A month is seasonal for a customer when, against those expectations, their rate in it
is at least :data:`LIFT` times their rate in the other months and :data:`MIN_Z`
standard deviations above its expected share, on at least :data:`MIN_DAYS` days in it
and :data:`MIN_TOTAL_DAYS` in all, over at least :data:`MIN_KNOWN_MONTHS` months known
(the minimum-evidence rule: a customer seen for one quarter has no "usual" yet).

>>> factors = (1.0,) * 12
>>> start = dt.date(2024, 1, 1)
>>> # first seen 2024-01-01, read 2026-01-01: 10 days in April and October, 1 in the others
>>> days = [start + dt.timedelta(days=d) for d in range(731)]
>>> shopped = [d for d in days if d.day <= (10 if d.month in (4, 10) else 1)]
>>> ad = {str((d - dt.date(1970, 1, 1)).days): 1.0 for d in shopped}
>>> seasonal_months(ad, 1704067200.0, 1767225600.0, factors)
(4, 10)
>>> even = {str((d - dt.date(1970, 1, 1)).days): 1.0 for d in days if d.day <= 3}
>>> seasonal_months(even, 1704067200.0, 1767225600.0, factors)
()
"""

from __future__ import annotations

import datetime as dt
import functools
import math
from collections import Counter
from collections.abc import Mapping

#: Rate in the month / rate in the other months (store-adjusted) that makes it seasonal.
#: The simulated seasonal buyer shops 5x more in season than out of it (3.7x the rate of
#: the other months, which include the other season month); a customer without a
#: season, ~1x with noise.
LIFT = 2.0
#: Standard deviations above its expected share of the days a month must lie (binomial;
#: twelve months are tested per customer, so well above 2).
MIN_Z = 2.5
#: Days needed in a month of the year (over all its years) before it can be seasonal.
MIN_DAYS = 4
#: Months the customer must have been known for (any seasonality needs a baseline).
MIN_KNOWN_MONTHS = 6.0
#: Fewer shopping days in the whole history than this: no seasonality is read.
MIN_TOTAL_DAYS = 10

#: Months on each side of a month that make its baseline: a season stands out from
#: the months around it, a customer's slow drift (growing, lapsing) does not.
NEIGHBOURS = 3
#: Days after their last shopping day a customer still counts as known (then lapsed).
QUIET_DAYS = 60

MONTHS = 12
SECONDS_PER_DAY = 86_400.0
_EPOCH_YEAR = 1970
_EPOCH_DATE = dt.date(1970, 1, 1)


def _month_start(index: int) -> float:
    year, month = divmod(index, MONTHS)
    return dt.datetime(_EPOCH_YEAR + year, month + 1, 1, tzinfo=dt.UTC).timestamp()


@functools.lru_cache(maxsize=4096)
def month_of_day(day: int) -> int:
    """The calendar month index of a day number (days since 1970-01-01)."""
    date = _EPOCH_DATE + dt.timedelta(days=day)
    return (date.year - _EPOCH_YEAR) * MONTHS + date.month - 1


def days_by_month(days: Mapping[str, float]) -> Counter[int]:
    """Shopping days per calendar month index, from ``ad`` fields (day number text)."""
    out: Counter[int] = Counter()
    for day in days:
        out[month_of_day(int(float(day)))] += 1
    return out


def _month_of(seconds: float) -> int:
    when = dt.datetime.fromtimestamp(seconds, dt.UTC)
    return (when.year - _EPOCH_YEAR) * MONTHS + when.month - 1


def month_exposure(first_seen: float, as_of: float) -> dict[int, float]:
    """Calendar month index -> the share of it between ``first_seen`` and ``as_of``
    (epoch seconds; months in UTC, a few hours off a customer's local months).

    >>> month_exposure(1706745600.0, 1709251200.0 + 86400 * 15.5)  # 2024-02-01 to 03-16 12:00
    {649: 1.0, 650: 0.5}
    """
    if not as_of > first_seen:
        return {}
    out: dict[int, float] = {}
    for index in range(_month_of(first_seen), _month_of(as_of) + 1):
        start, end = _month_start(index), _month_start(index + 1)
        seen = min(end, as_of) - max(start, first_seen)
        if seen > 0:
            out[index] = seen / (end - start)
    return out


def shopping_span(day_numbers: list[int], first_seen: float | None) -> tuple[int, int]:
    """The days ``[start, end)`` a customer counts as known for seasonality: from their
    first day of shopping (or sign-up, when later: a customers table's sign-up dates
    may predate the event history) to :data:`QUIET_DAYS` after their last (the end of
    the history, at the latest): a customer who stopped (lapsed) has no quiet months
    afterwards, only a quiet life."""
    last = max(day_numbers)
    start, end = min(day_numbers), last + QUIET_DAYS
    if first_seen is not None:
        start = min(max(start, int(first_seen // SECONDS_PER_DAY)), last)
    return start, end


def exposure_of_spans(
    starts: Mapping[int, int], ends: Mapping[int, int], until: int
) -> dict[int, float]:
    """Customer-months known per calendar month index, from how many customers'
    :func:`shopping_span` starts and ends on each day, up to day ``until`` (the end of
    the history; one pass over the days, however many customers).

    >>> exposure_of_spans({19754: 2}, {19754 + 29: 1, 19754 + 90: 1}, 19754 + 60)  # 2024-02-01
    {649: 2.0, 650: 1.0}
    """
    if not starts:
        return {}
    customer_days: Counter[int] = Counter()
    known = 0
    for day in range(min(starts), min(max(ends), until)):
        known += starts.get(day, 0) - ends.get(day, 0)
        if known:
            customer_days[month_of_day(day)] += known
    return {index: n / _days_in_month(index) for index, n in customer_days.items()}


@functools.lru_cache(maxsize=1024)
def _days_in_month(index: int) -> int:
    return round((_month_start(index + 1) - _month_start(index)) / SECONDS_PER_DAY)


def store_month_factors(
    activity: Mapping[int, float], exposure: Mapping[int, float]
) -> tuple[float, ...]:
    """The store's activity per month of the year (January first), relative to its
    average month: shopping days per known customer-month, from every customer's
    :func:`days_by_month` summed (``activity``, by month index) and their summed
    exposure (:func:`exposure_of_spans`).

    >>> activity = {648 + m: (200.0 if m == 11 else 100.0) for m in range(12)}
    >>> [round(f, 2) for f in store_month_factors(activity, dict.fromkeys(activity, 10.0))][10:]
    [0.92, 1.85]
    """
    events = [0.0] * MONTHS
    known = [0.0] * MONTHS
    for index, share in exposure.items():
        known[index % MONTHS] += share
        events[index % MONTHS] += activity.get(index, 0.0)
    total_known = sum(known)
    if not total_known > 0 or not sum(events) > 0:
        return (1.0,) * MONTHS
    average = sum(events) / total_known
    return tuple(
        (e / k) / average if k > 0 and e > 0 else 1.0 for e, k in zip(events, known, strict=True)
    )


def seasonal_months(
    days: Mapping[str, float],
    first_seen: float | None,
    as_of: float,
    store: tuple[float, ...],
) -> tuple[int, ...]:
    """Months of the year (1..12) in which this customer is seasonal, from their ``ad``
    fields (day number text), first seen and ``as_of`` (epoch seconds) and the store's
    :func:`store_month_factors`."""
    if len(days) < MIN_TOTAL_DAYS:
        return ()
    activity = days_by_month(days)
    start, end = shopping_span([int(float(d)) for d in days], first_seen)
    exposure = month_exposure(start * SECONDS_PER_DAY, min(as_of, end * SECONDS_PER_DAY))
    if sum(exposure.values()) < MIN_KNOWN_MONTHS:
        return ()
    weight = {i: share * store[i % MONTHS] for i, share in exposure.items()}
    here = [0.0] * MONTHS  # shopping days in the month of the year
    here_weight = [0.0] * MONTHS
    around = [0.0] * MONTHS  # ... and in the months around each of its instances
    around_weight = [0.0] * MONTHS
    for index, w in weight.items():
        moy = index % MONTHS
        here[moy] += activity.get(index, 0)
        here_weight[moy] += w
        for j in range(index - NEIGHBOURS, index + NEIGHBOURS + 1):
            if j != index and j in weight:
                around[moy] += activity.get(j, 0)
                around_weight[moy] += weight[j]
    found = []
    for moy in range(MONTHS):
        n, rest = here[moy], around[moy]
        if n < MIN_DAYS or not here_weight[moy] > 0 or not around_weight[moy] > 0:
            continue
        # half a day added around: a customer seen only in this month is not
        # infinitely seasonal
        lift = (n / here_weight[moy]) / ((rest + 0.5) / around_weight[moy])
        # the month's share of the days against its expected share (binomial)
        share = here_weight[moy] / (here_weight[moy] + around_weight[moy])
        total = n + rest
        z = (n - total * share) / math.sqrt(total * share * (1 - share))
        if lift >= LIFT and z >= MIN_Z:
            found.append(moy + 1)
    return tuple(found)
