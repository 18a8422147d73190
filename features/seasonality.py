"""Seasonal buyers: the months of the year in which a customer shops far more than usual.

The evidence is what a retailer records: the days a customer shopped (viewed,
searched, carted, checked out, bought, visited a store, picked up), by local day, the
state family ``ad`` (:mod:`features.definitions`), counted per calendar month.
Purchases alone are too few (a median of six in two years on the simulated retailer);
events come in sessions of very different lengths, so a day counts once however many
events it has.

Each customer gets a Bayesian test rather than thresholds. Their shopping days in
calendar month ``j`` are Poisson with mean ``r * w_j * lift`` where

* ``w_j`` is the month's **exposure** (its days, as far as the customer was known in it:
  first seen in March, no January to compare; the current month, as far as it went)
  times **the store's own seasonality** (:attr:`FeaturePriors.month_activity
  <features.finalise.FeaturePriors>`, :func:`store_month_factors`): December is busy
  for everyone, so a busy December marks no one;
* ``r`` is the customer's own rate, with a Gamma prior, integrated out; a customer who
  **lapses or grows** has a different rate before and after a change month (one change
  at most, anywhere with :data:`MIN_SEGMENT_MONTHS` on each side, or none), so a
  slowing customer's early months are not a season;
* ``lift`` is 1 outside the customer's season and one of :data:`LIFTS` in it; a season
  is a set of one or two months of the year (:data:`SEASON_SETS`), evidence pooled from
  every year seen.

Every hypothesis (no season, or each set) gets its marginal likelihood
(:func:`season_log_likelihoods`, closed form: the Gamma-Poisson integral), the prior
over the hypotheses is the store's (:func:`estimate_season_prior`, empirical Bayes: the
share of customers with each season, fitted by EM over the customers, kept in
:attr:`FeaturePriors.season_prior <features.finalise.FeaturePriors>`), and a month is
seasonal when its posterior probability reaches :data:`THRESHOLD`. A customer known
for less than :data:`MIN_KNOWN_MONTHS` months has no season of the year yet.

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
import hashlib
import itertools
import math
import zlib
from array import array as doubles_of
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence

import numpy as np

#: The seasons a customer may have: every set of one or two months of the year (0-based),
#: single months first. Which of them a store's customers have is the store's prior.
SEASON_SETS: tuple[tuple[int, ...], ...] = tuple(
    itertools.chain(itertools.combinations(range(12), 1), itertools.combinations(range(12), 2))
)
#: Shopping rate in season over the rate out of it: a grid, averaged over (equal weights).
LIFTS: tuple[float, ...] = (2.0, 3.0, 5.0, 8.0)
#: Prior probability that a customer's rate changes once (lapses, grows) in the history.
CHANGE_PROBABILITY = 0.5
#: Months known on each side of a change of rate.
MIN_SEGMENT_MONTHS = 3
#: Months a customer must have been known for before a month can be seasonal: a season
#: of the year needs a year (a burst within a shorter history is no season).
MIN_KNOWN_MONTHS = 6.0
#: Months before the current one whose shopping days are evidence (two years of seasons;
#: the ``ad`` and ``am`` families keep them, :mod:`features.definitions`).
EVIDENCE_MONTHS = 24
#: Prior share of seasonal customers before the store's is estimated (the flat prior:
#: split evenly between one- and two-month seasons, then between their sets).
FLAT_SEASONAL_SHARE = 0.2
#: Posterior probability of a month at which it is claimed: the threshold that maximises
#: the smaller of precision and recall on a simulated retailer of another seed than the
#: evaluation's (``benchmarks/bench_seasonality.py``, seed 11; BENCHMARKS.md "Seasonal
#: months by a Bayesian test").
THRESHOLD = 0.2
#: EM iterations of the store's season prior, and the weight floor that keeps every set
#: possible for a customer whose evidence is strong.
PRIOR_ITERATIONS = 50
PRIOR_FLOOR = 1e-6
#: Customers the store's season prior is estimated from, at most (those with the smallest
#: CRC-32 of their id, so that every engine draws the same ones).
PRIOR_SAMPLE = 20_000

#: Days after their last shopping day a customer still counts as known (then lapsed).
QUIET_DAYS = 60

MONTHS = 12
SECONDS_PER_DAY = 86_400.0
_EPOCH_YEAR = 1970
_EPOCH_DATE = dt.date(1970, 1, 1)


@functools.lru_cache(maxsize=4096)
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
    first, last = _month_of(first_seen), _month_of(as_of)
    out = dict.fromkeys(range(first + 1, last), 1.0)  # the whole months between
    for index in {first, last}:
        start, end = _month_start(index), _month_start(index + 1)
        seen = min(end, as_of) - max(start, first_seen)
        if seen > 0:
            out[index] = seen / (end - start)
    return dict(sorted(out.items()))


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


def _set_membership() -> np.ndarray:
    member = np.zeros((len(SEASON_SETS), MONTHS))
    for row, months in enumerate(SEASON_SETS):
        member[row, list(months)] = 1.0
    return member


#: Shape ``(sets, 12)``: 1 where the set holds the month.
_MEMBER = _set_membership()
#: Shape ``(12, sets + 1)``: the months of each set, then of no season (none).
_IN_SET = np.concatenate([_MEMBER.T, np.zeros((MONTHS, 1))], axis=1)
_LOG_LIFTS = np.log(np.array(LIFTS))[:, None, None]
_LIFTS_ABOVE_1 = np.array(LIFTS)[:, None, None] - 1.0


@functools.cache
def flat_season_prior() -> tuple[float, ...]:
    """The prior over (no season, each of :data:`SEASON_SETS`) before the store's is known."""
    sizes = Counter(len(s) for s in SEASON_SETS)
    per_size = FLAT_SEASONAL_SHARE / len(sizes)
    return (1.0 - FLAT_SEASONAL_SHARE, *(per_size / sizes[len(s)] for s in SEASON_SETS))


def shopping_months(days: Mapping[str, float], folded: Mapping[str, float]) -> Counter[int]:
    """Shopping days per calendar month index: the ``ad`` day fields (day number text)
    and the ``am`` month counts (keyed by the month's first day) that the online store
    folds days past its replay window into (:func:`features.state.fold_shopping_days`)."""
    out = days_by_month(days)
    for first_day, count in folded.items():
        out[month_of_day(int(float(first_day)))] += int(count)
    return out


def state_months(state: Mapping[str, float]) -> Counter[int]:
    """:func:`shopping_months` of a flat state's ``ad:<day>`` and ``am:<month>`` fields."""
    days = {f[3:]: v for f, v in state.items() if f.startswith("ad:")}
    return shopping_months(days, {f[3:]: v for f, v in state.items() if f.startswith("am:")})


def _month_weights(
    months: Mapping[int, float], first_seen: float | None, as_of: float, store: Sequence[float]
) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """Per calendar month known, from the first month with shopping (or first seen, when
    later) to ``as_of``: shopping days, expected days at rate 1 (exposure x the store's
    factor) and month of the year; None when known for less than :data:`MIN_KNOWN_MONTHS`."""
    # the months read: the last EVIDENCE_MONTHS and the current one, whatever else the
    # state holds (the batch keeps days, online their months: both cover these)
    first_read = _month_of(as_of) - EVIDENCE_MONTHS
    shopped = [m for m, n in months.items() if n > 0 and m >= first_read]
    if not shopped:
        return None
    start = _month_start(min(shopped))
    if first_seen is not None:
        start = max(start, min(first_seen, _month_start(max(shopped) + 1) - 1.0))
    exposure = month_exposure(start, as_of)
    if sum(exposure.values()) < MIN_KNOWN_MONTHS:
        return None
    index = sorted(exposure)
    weight = np.array([exposure[i] * _days_in_month(i) * store[i % MONTHS] for i in index])
    counts = np.array([float(months.get(i, 0)) for i in index])
    return counts, weight, np.array([i % MONTHS for i in index])


def _lgamma(values: np.ndarray) -> np.ndarray:
    return np.array([math.lgamma(v) for v in values.tolist()])


@functools.lru_cache(maxsize=64)
def _change_rows(
    n_months: int, change_probability: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """What depends on the months known alone: the rows' change months (the first row: no
    change, all months; then each month a rate may change at, with
    :data:`MIN_SEGMENT_MONTHS` on each side), which of them have months after, and the
    log prior of each change (shape ``(1, changes, 1)``). Read-only: shared by every call."""
    changes = np.array(
        [n_months, *range(MIN_SEGMENT_MONTHS, n_months - MIN_SEGMENT_MONTHS + 1)], dtype=int
    )
    has_after = changes < n_months
    n_changes = len(changes) - 1
    change_prior = np.zeros(1)  # no room for a change: one rate
    if n_changes:
        with np.errstate(divide="ignore"):  # a probability of 0 rules its case out
            change_prior = np.log(
                np.where(has_after, change_probability / n_changes, 1.0 - change_probability)
            )
    for array in (changes, has_after, change_prior):
        array.flags.writeable = False
    return changes, has_after, change_prior[None, :, None]


def season_log_likelihoods(
    months: Mapping[int, float], first_seen: float | None, as_of: float, store: Sequence[float]
) -> np.ndarray | None:
    """Log marginal likelihood of a customer's shopping days per calendar month index
    (:func:`shopping_months`) under each hypothesis: no season, then each of
    :data:`SEASON_SETS` (shape ``(1 + sets,)``, up to a constant shared by all), the rate
    and its change integrated out, the lift averaged over :data:`LIFTS`; None when the
    customer is known for too short a time to tell (:data:`MIN_KNOWN_MONTHS`)."""
    known = _month_weights(months, first_seen, as_of, store)
    if known is None:
        return None
    counts, weight, moy = known
    n_months = len(counts)
    total, exposure = counts.sum(), weight.sum()
    # the rate's Gamma prior: shape 1, mean the customer's own rate (one day's worth of
    # information), so that a change of rate costs what a second rate is worth
    shape, scale = 1.0, exposure / max(total, 1.0)
    by_month = np.zeros((n_months + 1, MONTHS))
    by_month[np.arange(1, n_months + 1), moy] = weight  # one month of the year per row
    by_month = np.cumsum(by_month, axis=0)  # row c: weight per month of the year before c
    counts_before = np.concatenate([[0.0], np.cumsum(counts)])
    changes, has_after, change_prior = _change_rows(n_months, CHANGE_PROBABILITY)
    # one rate's months per row: before each change, then after each real change
    weights = np.concatenate([by_month[changes], by_month[n_months] - by_month[changes[has_after]]])
    days = np.concatenate([counts_before[changes], total - counts_before[changes[has_after]]])
    # (lifts, rows, sets + 1): the log Gamma-Poisson marginal of each row's months; the
    # last column is the no-season hypothesis. Computed in place, in the order of
    # log_norm - (shape + days) * log(scale + row weight + (lift - 1) * season weight):
    # one array of lifts x rows x sets, not one per step (the same numbers)
    log_norm = shape * math.log(scale) - math.lgamma(shape) + _lgamma(shape + days)
    rows = _LIFTS_ABOVE_1 * (weights @ _IN_SET)
    rows += (scale + weights.sum(1))[None, :, None]
    np.log(rows, out=rows)
    rows *= (shape + days)[None, :, None]
    np.subtract(log_norm[None, :, None], rows, out=rows)
    log_lik = rows[:, : len(changes)]  # before each change; the rows after follow
    log_lik += np.bincount(moy, counts, MONTHS) @ _IN_SET * _LOG_LIFTS
    log_lik[:, 1:] += rows[:, len(changes) :]
    log_lik += change_prior
    top = float(log_lik.max())
    log_lik -= top
    np.exp(log_lik, out=log_lik)
    summed = np.log(np.ascontiguousarray(log_lik).sum(axis=(0, 1)) / len(LIFTS)) + top
    return np.concatenate([summed[-1:], summed[:-1]])


def _posterior(log_likelihoods: np.ndarray, prior: Sequence[float] | np.ndarray) -> np.ndarray:
    """Posterior over the hypotheses (rows of ``log_likelihoods``, ``(..., 1 + sets)``)."""
    log_post = log_likelihoods + np.log(np.asarray(prior, dtype=float))
    log_post -= log_post.max(axis=-1, keepdims=True)
    post = np.exp(log_post)
    return post / post.sum(axis=-1, keepdims=True)


def estimate_season_prior(log_likelihoods: Iterable[np.ndarray | None]) -> tuple[float, ...]:
    """The store's prior over (no season, each of :data:`SEASON_SETS`): the mixture
    weights that best explain its customers' :func:`season_log_likelihoods` (EM from
    the flat prior, :data:`PRIOR_ITERATIONS` steps), so that the seasons its customers
    share (April and October, say) need less evidence than the others."""
    rows = [r for r in log_likelihoods if r is not None]
    prior = np.array(flat_season_prior())
    if not rows:
        return tuple(prior.tolist())
    stacked = np.vstack(rows)
    for _ in range(PRIOR_ITERATIONS):
        prior = _posterior(stacked, prior).mean(axis=0) + PRIOR_FLOOR
        prior /= prior.sum()
    return tuple(prior.tolist())


def prior_sample_key(customer_id: str) -> tuple[int, str]:
    """The order in which customers enter the season prior's sample (:data:`PRIOR_SAMPLE`):
    CRC-32 of the id (Spark's ``crc32`` gives the same), then the id."""
    return zlib.crc32(customer_id.encode("utf-8")), customer_id


def store_season_prior(
    customers: Iterable[tuple[str, Mapping[int, float], float | None]],
    as_of: float,
    store: Sequence[float],
) -> tuple[float, ...]:
    """:func:`estimate_season_prior` of a store's customers ``(id, shopping days per
    calendar month index, first seen)``, read at ``as_of`` with the store's month factors,
    from the :data:`PRIOR_SAMPLE` first by :func:`prior_sample_key`."""
    sample = sorted(customers, key=lambda c: prior_sample_key(c[0]))[:PRIOR_SAMPLE]
    return estimate_season_prior(
        season_log_likelihoods(months, first_seen, as_of, store) for _, months, first_seen in sample
    )


def season_probabilities(
    months: Mapping[int, float],
    first_seen: float | None,
    as_of: float,
    store: Sequence[float],
    prior: Sequence[float] | None = None,
) -> tuple[float, ...]:
    """Posterior probability that each month of the year (January first) is in the
    customer's season, from their shopping days per calendar month index
    (:func:`shopping_months`), first seen and ``as_of`` (epoch seconds), the store's
    :func:`store_month_factors` and season prior (default :func:`flat_season_prior`)."""
    log_lik = season_log_likelihoods(months, first_seen, as_of, store)
    if log_lik is None:
        return (0.0,) * MONTHS
    post = _posterior(log_lik, prior if prior is not None else flat_season_prior())
    return tuple((post[1:] @ _MEMBER).tolist())


def seasonal_months(
    days: Mapping[str, float],
    first_seen: float | None,
    as_of: float,
    store: Sequence[float],
    prior: Sequence[float] | None = None,
    folded: Mapping[str, float] | None = None,
    stored: str | None = None,
) -> tuple[int, ...]:
    """Months of the year (1..12) in which this customer is seasonal, from their ``ad``
    fields (day number text), the ``am`` month counts folded from older days, first seen
    and ``as_of`` (epoch seconds), the store's :func:`store_month_factors` and season
    prior: posterior probability >= :data:`THRESHOLD`, and above the prior's (the
    customer's own days must point to the month: in a store where most customers share
    a season, a customer with little history is not given it on the prior alone).

    ``stored`` is a verdict computed earlier (:func:`stored_verdict`, written once a day
    outside the request path): used when it was computed from these very inputs and
    day, ignored otherwise (the test then runs here)."""
    inputs = verdict_inputs(shopping_months(days, folded or {}), first_seen, as_of, (store, prior))
    if inputs is None:
        return ()
    if stored is not None:
        digest, _, months = stored.partition(":")
        if digest == verdict_digest(inputs):
            return tuple(int(m) for m in months.split(",") if m)
    return _verdict(*inputs)


#: What a verdict is a function of: the shopping months, first seen, the UTC day, the
#: store's month factors and season prior (the arguments of :func:`_verdict`).
VerdictInputs = tuple[
    tuple[tuple[int, float], ...], float | None, float, tuple[float, ...], tuple[float, ...]
]


def verdict_inputs(
    months: Mapping[int, float],
    first_seen: float | None,
    as_of: float,
    priors: tuple[Sequence[float], Sequence[float] | None],
) -> VerdictInputs | None:
    """The inputs of :func:`seasonal_months`' test as of ``as_of``'s UTC day, from the
    shopping days per month (:func:`shopping_months`) and the store's ``(month factors,
    season prior)`` (``None``: no shopping day, no season and nothing to test)."""
    if not months:
        return None
    store, prior = priors
    return (
        tuple(sorted(months.items())),
        first_seen,
        math.floor(as_of / SECONDS_PER_DAY) * SECONDS_PER_DAY,
        tuple(store),
        tuple(prior) if prior is not None else flat_season_prior(),
    )


@functools.lru_cache(maxsize=65_536)
def verdict_digest(inputs: VerdictInputs) -> str:
    """A digest of a verdict's inputs (16 hex digits: BLAKE2b of their exact binary
    values): a stored verdict is used only for the inputs it was computed from."""
    months, first_seen, day, store, prior = inputs
    numbers = doubles_of("d", [day, math.nan if first_seen is None else first_seen])
    for month, count in months:
        numbers.extend((month, count))
    return hashlib.blake2b(
        numbers.tobytes() + _priors_digest(store, prior), digest_size=8
    ).hexdigest()


@functools.lru_cache(maxsize=8)
def _priors_digest(store: tuple[float, ...], prior: tuple[float, ...]) -> bytes:
    """The store's part of :func:`verdict_digest` (the same for every customer)."""
    return hashlib.blake2b(doubles_of("d", store + prior).tobytes(), digest_size=16).digest()


def stored_verdict(inputs: VerdictInputs) -> str:
    """A verdict as :func:`seasonal_months` reads it back: ``"<digest>:<months>"``
    (``"3f...:4,10"``; no months: ``"3f...:"``)."""
    return f"{verdict_digest(inputs)}:{','.join(map(str, _verdict(*inputs)))}"


@functools.lru_cache(maxsize=65_536)
def _verdict(
    months: tuple[tuple[int, float], ...],
    first_seen: float | None,
    day: float,
    store: tuple[float, ...],
    prior: tuple[float, ...],
) -> tuple[int, ...]:
    """:func:`seasonal_months` as of the start of the UTC day ``day``: a season is a
    verdict of the day, kept per process for the customer's shopping months, so that the
    API does not repeat the Bayesian test (about 0.2 ms with numpy) at every decision of
    the day for a customer known for six months or more."""
    probability = season_probabilities(dict(months), first_seen, day, store, prior)
    return tuple(
        m + 1
        for m, (p, before) in enumerate(zip(probability, _prior_months(prior), strict=True))
        if p >= THRESHOLD and p > before
    )


@functools.lru_cache(maxsize=8)
def _prior_months(prior: tuple[float, ...]) -> tuple[float, ...]:
    """The prior probability of each month of the year (the store's, one per process)."""
    return tuple((np.asarray(prior[1:]) @ _MEMBER).tolist())
