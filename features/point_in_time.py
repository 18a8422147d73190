"""Point-in-time profile columns: what the decision models read of many profiles, as arrays.

A training example needs a handful of a profile's values (recency, frequency,
value, engagement per channel, contacts, activity by hour, lifecycle state...),
not a whole :class:`~nba.profile.CustomerProfile`. :func:`point_in_time_columns`
reads them for every ``(customer_id, timestamp)`` row at once from the cut
states (:func:`features.columnar.cut_fields`), with the formulas of
:func:`features.finalise.build_profile` written over arrays;
:meth:`ProfileColumns.of_profiles` reads the same values from profiles (a live
profile online, a profile table row). Both give :class:`ProfileColumns`, so
the models' features (:mod:`training.contact_features`) have one definition;
``tests/test_point_in_time_columns.py`` checks that the two readers agree on
simulated data, value for value.

>>> from nba.profile import CustomerProfile
>>> cols = ProfileColumns.of_profiles([CustomerProfile("C1", purchases_total=3)])
>>> cols.purchases_total.tolist(), len(cols)
([3], 1)
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import os
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from features.batch import customer_parts, rows_ops
from features.columnar import ColumnarOps, CutFields, cut_fields
from features.dataset import RetailDataset
from features.definitions import FAMILIES, SECONDS_PER_DAY, TIERS, KeyKind, epoch_seconds
from features.finalise import (
    AT_RISK_GAPS,
    CART_DAYS,
    CONTACT_BUCKETS,
    DEFAULT_PURCHASE_GAP_DAYS,
    LAPSED_GAPS,
    MIN_PURCHASE_GAP_DAYS,
    NEW_CUSTOMER_DAYS,
    PRIOR_WEIGHT,
    FeaturePriors,
    build_profile,
)
from features.forked import Forked
from nba.channels import CONSENT_CHANNELS, Channel
from nba.profile import HOURS_PER_WEEK, CustomerProfile, LifecycleState

#: Column order of the per-channel arrays.
CHANNELS: tuple[Channel, ...] = tuple(Channel)
CHANNEL_INDEX = {c: i for i, c in enumerate(CHANNELS)}
#: Codes of ``ProfileColumns.lifecycle`` (index into this tuple).
LIFECYCLE_STATES: tuple[LifecycleState, ...] = tuple(LifecycleState)
_LIFECYCLE_CODE = {s: i for i, s in enumerate(LIFECYCLE_STATES)}
_TIER_CODE = {t: i for i, t in enumerate(TIERS)}
_HOURS_PER_DAY = 24
#: The state families :class:`ProfileColumns` are read from (the cut leaves the others out).
READ_FAMILIES = frozenset(
    {"np", "ol", "lx", "rv", "pp", "pn", "n", "lt", "t0", "tv", "tp", "tf", "pd", "rd", "h"}
    | {"es", "ed", "eo", "ek", "xh", "xd", "ca", "cr", "cb"}
    | {"rt", "rw", "ra", "pq", "bp"}  # returns and cancellations (rows with them: _settled)
)


@dataclass(frozen=True)
class ProfileColumns:
    """Profile values of ``n`` customers (each at its own moment), one array per value.

    Optional values (days since...) are NaN where the profile has ``None``; a
    channel without engagement in the profile has NaN rates and ``has_engagement``
    False. ``day_activity[i, h]`` is the customer's activity share at local hour of
    day ``h`` summed over the days of the week (NaN rows: no activity known).
    """

    customer_id: np.ndarray  # (n,) object
    days_since_last_visit: np.ndarray  # (n,)
    days_since_last_purchase: np.ndarray  # (n,)
    purchases_90d: np.ndarray  # (n,) int
    purchases_total: np.ndarray  # (n,) int
    revenue_90d: np.ndarray  # (n,)
    average_basket: np.ndarray  # (n,)
    promo_sensitivity: np.ndarray  # (n,)
    early_adopter_score: np.ndarray  # (n,)
    events_seen: np.ndarray  # (n,) int
    has_cart: np.ndarray  # (n,) bool
    loyalty_tier: np.ndarray  # (n,) object: the tier's name
    lifecycle: np.ndarray  # (n,) int: index into LIFECYCLE_STATES
    contacts_7d: np.ndarray  # (n, len(CHANNELS)) int
    has_engagement: np.ndarray  # (n, len(CHANNELS)) bool
    sent: np.ndarray  # (n, len(CHANNELS)) int
    opened: np.ndarray  # (n, len(CHANNELS)) int
    open_rate: np.ndarray  # (n, len(CHANNELS))
    click_rate: np.ndarray  # (n, len(CHANNELS))
    day_activity: np.ndarray  # (n, 24)

    def __len__(self) -> int:
        return len(self.customer_id)

    def take(self, index: np.ndarray) -> ProfileColumns:
        """The rows at ``index`` (positions or a boolean mask), in that order."""
        return ProfileColumns(*(getattr(self, name)[index] for name in _FIELDS))

    @classmethod
    def scatter(cls, parts: Sequence[tuple[np.ndarray, ProfileColumns]], n: int) -> ProfileColumns:
        """``n`` rows put together from ``(positions, columns)`` parts: row
        ``positions[i]`` of the result is row ``i`` of the part's columns (the parts'
        positions cover ``0..n-1`` once)."""
        out = []
        for name in _FIELDS:
            first = getattr(parts[0][1], name)
            column = np.empty((n, *first.shape[1:]), dtype=first.dtype)
            for positions, cols in parts:
                column[positions] = getattr(cols, name)
            out.append(column)
        return cls(*out)

    @classmethod
    def of_profiles(cls, profiles: Sequence[CustomerProfile]) -> ProfileColumns:
        """The columns of profiles as they are (a live profile, a profile table's rows)."""
        n, m = len(profiles), len(CHANNELS)
        floats = np.array(
            [
                (
                    np.nan if p.days_since_last_visit is None else p.days_since_last_visit,
                    np.nan if p.days_since_last_purchase is None else p.days_since_last_purchase,
                    p.revenue_90d,
                    p.average_basket,
                    p.promo_sensitivity,
                    p.early_adopter_score,
                )
                for p in profiles
            ],
            dtype=float,
        ).reshape(n, 6)
        ints = np.array(
            [
                (
                    p.purchases_90d,
                    p.purchases_total,
                    p.events_seen,
                    _LIFECYCLE_CODE[p.lifecycle_state],
                    1 if p.cart_items else 0,
                )
                for p in profiles
            ],
            dtype=np.int64,
        ).reshape(n, 5)
        has = np.zeros((n, m), dtype=bool)
        counts = np.zeros((3, n, m), dtype=np.int64)  # sent, opened, contacts in 7 days
        rates = np.full((2, n, m), np.nan)  # open, click
        activity = np.full((n, _HOURS_PER_DAY), np.nan)
        for i, p in enumerate(profiles):
            for ch, eng in p.engagement.items():
                j = CHANNEL_INDEX[ch]
                has[i, j] = True
                counts[0, i, j], counts[1, i, j] = eng.sent, eng.opened
                rates[0, i, j], rates[1, i, j] = eng.open_rate, eng.click_rate
            for ch, count in p.contacts.contacts_7d.items():
                counts[2, i, CHANNEL_INDEX[ch]] = count
            if len(p.activity_by_hour) == HOURS_PER_WEEK:
                week = np.array(p.activity_by_hour, dtype=float).reshape(7, _HOURS_PER_DAY)
                activity[i] = week.sum(axis=0)
        return cls(
            customer_id=np.array([p.customer_id for p in profiles], dtype=object),
            days_since_last_visit=floats[:, 0],
            days_since_last_purchase=floats[:, 1],
            purchases_90d=ints[:, 0],
            purchases_total=ints[:, 1],
            revenue_90d=floats[:, 2],
            average_basket=floats[:, 3],
            promo_sensitivity=floats[:, 4],
            early_adopter_score=floats[:, 5],
            events_seen=ints[:, 2],
            has_cart=ints[:, 4].astype(bool),
            loyalty_tier=np.array([p.loyalty_tier for p in profiles], dtype=object),
            lifecycle=ints[:, 3],
            contacts_7d=counts[2],
            has_engagement=has,
            sent=counts[0],
            opened=counts[1],
            open_rate=rates[0],
            click_rate=rates[1],
            day_activity=activity,
        )


_FIELDS = tuple(f.name for f in dataclasses.fields(ProfileColumns))


#: Below this many rows, cutting in other processes costs more than it saves.
PARALLEL_MIN_ROWS = 20_000


def point_in_time_columns(
    data: RetailDataset,
    rows: pd.DataFrame,
    priors: FeaturePriors | None = None,
    workers: int | None = 1,
) -> ProfileColumns:
    """:class:`ProfileColumns` of each ``(customer_id, timestamp)`` row as known just before
    its time: the values :func:`features.batch.point_in_time` profiles hold, without
    building a profile per row. Rows keep their order.

    With ``workers`` > 1 (``None``: one per core) and at least :data:`PARALLEL_MIN_ROWS`
    rows, the customers are split by a hash of their id and each part's rows are cut in
    a forked process (:class:`features.forked.Forked`: the data is inherited, not
    pickled): a customer's values depend on its own events only, so the parts put back
    in row order are the columns one process gives, bit for bit.
    """
    rows = rows.reset_index(drop=True)
    workers = workers or os.cpu_count() or 1
    if workers <= 1 or len(rows) < PARALLEL_MIN_ROWS:
        return _point_in_time_columns(data, rows, priors)
    part = customer_parts(rows["customer_id"], workers)
    positions = [np.flatnonzero(part == p) for p in range(workers)]
    children = [
        Forked(functools.partial(_cut_part, data, rows, mine, priors)) for mine in positions
    ]
    parts = [(mine, child.result()) for mine, child in zip(positions, children, strict=True)]
    return ProfileColumns.scatter(parts, len(rows))


def _cut_part(
    data: RetailDataset, rows: pd.DataFrame, positions: np.ndarray, priors: FeaturePriors | None
) -> ProfileColumns:
    return _point_in_time_columns(data, rows.iloc[positions], priors)


def _point_in_time_columns(
    data: RetailDataset, rows: pd.DataFrame, priors: FeaturePriors | None
) -> ProfileColumns:
    rows = rows.reset_index(drop=True)
    cutoffs = pd.to_datetime(rows["timestamp"], utc=True)
    ids = rows["customer_id"].astype(object).to_numpy()
    n = len(rows)
    if rows.empty:
        return _columns(_Pairs(ColumnarOps([], 0), ids, np.zeros(0)), n, ids, np.zeros(0), priors)
    _, ops, row_owner = rows_ops(data, rows)
    pairs = _Pairs(ops, row_owner, epoch_seconds(cutoffs))
    # a profile's as_of.timestamp(): whole microseconds, as a datetime holds them
    micros = (cutoffs - pd.Timestamp(0, tz="UTC")) // pd.Timedelta(microseconds=1)
    now = micros.to_numpy(dtype=np.int64) / 1e6
    return _columns(pairs, n, ids, now, priors)


def _empty_cut() -> CutFields:
    empty = np.zeros(0, dtype=np.int64)
    none = np.zeros(0, dtype=object)
    return CutFields(empty, empty, np.zeros(0), none, none, none)


class _Pairs:
    """The cut's (row, value, field) pairs, one family at a time.

    Each family is cut on its own (:func:`features.columnar.cut_fields` of its ops
    only): sorting the families apart costs less than sorting all their ops together,
    and the reader takes them family by family anyway.
    """

    def __init__(self, ops: ColumnarOps, row_owner: np.ndarray, row_cut: np.ndarray) -> None:
        self.cuts = {
            fc.family.name: cut_fields(ColumnarOps([fc], ops.n_owners), row_owner, row_cut)
            for fc in ops.families
            if fc.family.name in READ_FAMILIES
        }

    def _cut(self, family: str) -> CutFields:
        cut = self.cuts.get(family)
        return _empty_cut() if cut is None else cut

    def of(self, family: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(row, value, field)`` of the pairs of ``family``, by row then field;
        ``field`` indexes :meth:`keys`."""
        cut = self._cut(family)
        return cut.row, cut.value, cut.field

    def keys(self, family: str) -> np.ndarray:
        """The key text of each field of ``family``."""
        return self._cut(family).keys

    def scalar(self, family: str, n: int) -> np.ndarray:
        """An unkeyed field per row (NaN where absent)."""
        out = np.full(n, np.nan)
        row, value, _ = self.of(family)
        out[row] = value
        return out

    def key_numbers(self, family: str, field: np.ndarray) -> np.ndarray:
        """The keys of ``field`` as numbers (``"20512"`` -> 20512.0), parsed once per field."""
        uniques, inverse = np.unique(field, return_inverse=True)
        parsed = np.array([float(k) for k in self.keys(family)[uniques]], dtype=float)
        return parsed[inverse]

    def channel_index(self, family: str, field: np.ndarray) -> np.ndarray:
        """The channel index of ``"channel"`` keys, parsed once per field."""
        uniques, inverse = np.unique(field, return_inverse=True)
        index = [CHANNEL_INDEX[Channel(k)] for k in self.keys(family)[uniques]]
        return np.array(index, dtype=np.int64)[inverse]

    def channel_keys(self, family: str, field: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(channel index, number)`` of ``"channel|number"`` keys, parsed once per field."""
        uniques, inverse = np.unique(field, return_inverse=True)
        split = [str(k).rsplit("|", 1) for k in self.keys(family)[uniques]]
        channel = np.array([CHANNEL_INDEX[Channel(c)] for c, _ in split], dtype=np.int64)
        number = np.array([float(x) for _, x in split], dtype=float)
        return channel[inverse], number[inverse]


def _in_day_window(day: np.ndarray, now: np.ndarray, days: int) -> np.ndarray:
    """:func:`features.finalise._day_in_window` over arrays."""
    start = day * SECONDS_PER_DAY
    return (start + SECONDS_PER_DAY > now - days * SECONDS_PER_DAY) & (start <= now)


def _window_sum(pairs: _Pairs, family: str, now: np.ndarray, days: int) -> np.ndarray:
    row, value, field = pairs.of(family)
    inside = _in_day_window(pairs.key_numbers(family, field), now[row], days)
    return np.bincount(row[inside], weights=value[inside], minlength=len(now))


def _smoothed(successes: np.ndarray, trials: np.ndarray, prior: np.ndarray | float) -> np.ndarray:
    return (successes + prior * PRIOR_WEIGHT) / (trials + PRIOR_WEIGHT)


def _columns(
    pairs: _Pairs, n: int, ids: np.ndarray, now: np.ndarray, priors: FeaturePriors | None
) -> ProfileColumns:
    priors = priors or FeaturePriors()
    m = len(CHANNELS)
    purchases = np.nan_to_num(pairs.scalar("np", n))
    revenue = np.nan_to_num(pairs.scalar("rv", n))

    register = pairs.scalar("lt", n)
    rank = np.zeros(n, dtype=np.int64)
    known = ~np.isnan(register)
    seconds = np.floor(register[known] / 8)
    rank[known] = np.round(register[known] - seconds * 8).astype(np.int64)
    tier_code = np.minimum(rank, len(TIERS) - 1)
    tiers = np.array(TIERS, dtype=object)[tier_code]

    # engagement on the consent channels, smoothed toward the tier's priors
    counts = {}
    for family in ("es", "ed", "eo", "ek"):
        table = np.zeros((n, m))
        row, value, field = pairs.of(family)
        table[row, pairs.channel_index(family, field)] = value
        counts[family] = table
    has = np.zeros((n, m), dtype=bool)
    open_rate = np.full((n, m), np.nan)
    click_rate = np.full((n, m), np.nan)
    for ch in CONSENT_CHANNELS:
        j = CHANNEL_INDEX[ch]
        has[:, j] = True
        prior_open = np.array([priors.channel(t, ch.value).open_rate for t in TIERS])[tier_code]
        prior_click = np.array([priors.channel(t, ch.value).click_rate for t in TIERS])[tier_code]
        base = np.maximum(counts["ed"][:, j], counts["es"][:, j])
        open_rate[:, j] = _smoothed(counts["eo"][:, j], base, prior_open)
        click_rate[:, j] = _smoothed(counts["ek"][:, j], base, prior_click)

    # contacts in the last 7 days per channel (rolling hour and day buckets)
    contacts = np.zeros(n * m)
    for family, span in CONTACT_BUCKETS:
        row, value, field = pairs.of(family)
        channel, number = pairs.channel_keys(family, field)
        start = number * span
        inside = (start + span > now[row] - 7 * SECONDS_PER_DAY) & (start <= now[row])
        contacts += np.bincount(
            row[inside] * m + channel[inside],
            weights=np.trunc(value[inside]),
            minlength=n * m,
        )

    # a cart entry within CART_DAYS not removed or bought since
    row, added, field = pairs.of("ca")
    recent = (added >= now[row] - CART_DAYS * SECONDS_PER_DAY) & (added <= now[row])
    later = np.full(len(row), -np.inf)
    for family in ("cr", "cb", "bp"):  # bp by its product: the latest purchase of it
        later = np.maximum(later, _same_key_value(pairs, "ca", row, field, family))
    in_cart = np.bincount(row[recent & (added > later)], minlength=n) > 0

    # lifecycle
    first_seen, last_purchase = pairs.scalar("t0", n), pairs.scalar("tp", n)
    first_purchase = pairs.scalar("tf", n)
    days_known = (now - first_seen) / SECONDS_PER_DAY
    days_quiet = (now - last_purchase) / SECONDS_PER_DAY
    # orders (features.finalise.order_count): the lines less each order's beyond its first
    row, lines, _ = pairs.of("ol")
    extra = np.bincount(row, weights=np.maximum(lines - 1.0, 0.0), minlength=n).astype(float)
    extra += np.nan_to_num(pairs.scalar("lx", n))
    orders = np.maximum(purchases - extra, np.minimum(purchases, 1.0))
    with np.errstate(divide="ignore", invalid="ignore"):
        spread = (last_purchase - first_purchase) / SECONDS_PER_DAY / (orders - 1)
    # bought at two moments or more (features.finalise: the lines of one order share its
    # second); NaN compares False
    repeat = (orders >= 2) & (last_purchase > first_purchase)
    gap = np.where(repeat, np.maximum(MIN_PURCHASE_GAP_DAYS, spread), DEFAULT_PURCHASE_GAP_DAYS)
    code = _LIFECYCLE_CODE
    lifecycle = np.select(
        [
            (days_known <= NEW_CUSTOMER_DAYS) & ~repeat,
            (purchases == 0) | np.isnan(days_quiet),
            days_quiet <= AT_RISK_GAPS * gap,
            days_quiet <= LAPSED_GAPS * gap,
        ],
        [
            code[LifecycleState.NEW],
            code[LifecycleState.PROSPECT],
            code[LifecycleState.ACTIVE],
            code[LifecycleState.AT_RISK],
        ],
        code[LifecycleState.LAPSED],
    )

    activity = _day_activity(pairs, n)
    purchases_90d = _window_sum(pairs, "pd", now, 90)
    columns = ProfileColumns(
        customer_id=ids,
        days_since_last_visit=(now - pairs.scalar("tv", n)) / SECONDS_PER_DAY,
        days_since_last_purchase=days_quiet,
        purchases_90d=purchases_90d.astype(np.int64),
        purchases_total=purchases.astype(np.int64),
        revenue_90d=_window_sum(pairs, "rd", now, 90),
        average_basket=np.divide(revenue, orders, out=np.zeros(n), where=orders != 0),
        promo_sensitivity=_smoothed(
            np.nan_to_num(pairs.scalar("pp", n)), purchases, priors.promo_share
        ),
        early_adopter_score=_smoothed(
            np.nan_to_num(pairs.scalar("pn", n)), purchases, priors.new_product_share
        ),
        events_seen=np.nan_to_num(pairs.scalar("n", n)).astype(np.int64),
        has_cart=in_cart,
        loyalty_tier=tiers,
        lifecycle=lifecycle.astype(np.int64),
        contacts_7d=contacts.reshape(n, m).astype(np.int64),
        has_engagement=has,
        sent=np.trunc(counts["es"]).astype(np.int64),
        opened=np.trunc(counts["eo"]).astype(np.int64),
        open_rate=open_rate,
        click_rate=click_rate,
        day_activity=activity,
    )
    return _settled(columns, pairs, now, priors)


def _settled(
    columns: ProfileColumns, pairs: _Pairs, now: np.ndarray, priors: FeaturePriors
) -> ProfileColumns:
    """``columns`` with the rows that know a return or cancellation read from their
    profile (:func:`features.finalise.build_profile` of the row's cut state, which
    takes the purchases they undo out): few rows, one definition of the matching."""
    returning = np.unique(pairs.of("rt")[0])
    if not len(returning):
        return columns
    states: dict[int, dict[str, float]] = {int(r): {} for r in returning}
    for family in sorted(READ_FAMILIES):
        row, value, field = pairs.of(family)
        mine = np.isin(row, returning)
        if not mine.any():
            continue
        keys = pairs.keys(family)
        keyed = FAMILIES[family].key is not KeyKind.NONE
        for r, v, f in zip(
            row[mine].tolist(), value[mine].tolist(), field[mine].tolist(), strict=True
        ):
            states[r][f"{family}:{keys[f]}" if keyed else family] = v
    profiles = [
        build_profile(
            str(columns.customer_id[r]),
            states[r],
            dt.datetime.fromtimestamp(float(now[r]), dt.UTC),
            priors=priors,
        )
        for r in states
    ]
    patch = ProfileColumns.of_profiles(profiles)
    out = {name: getattr(columns, name).copy() for name in _FIELDS}
    for name in _FIELDS:
        out[name][list(states)] = getattr(patch, name)
    return ProfileColumns(**out)


#: Rows whose activity by hour of week is spread at once (a dense block of 168 per row).
_ACTIVITY_BLOCK = 20_000


def _day_activity(pairs: _Pairs, n: int) -> np.ndarray:
    """Activity share per local hour of week, summed over the days per hour of day,
    ``(n, 24)``; NaN rows without activity. Rows are spread in blocks (bounded memory)."""
    row, value, field = pairs.of("h")
    hour = pairs.key_numbers("h", field).astype(np.int64) % HOURS_PER_WEEK
    total = np.bincount(row, weights=value, minlength=n)
    activity = np.full((n, _HOURS_PER_DAY), np.nan)
    for start in range(0, n, _ACTIVITY_BLOCK):
        size = min(_ACTIVITY_BLOCK, n - start)
        lo, hi = np.searchsorted(row, [start, start + size])
        cell = (row[lo:hi] - start) * HOURS_PER_WEEK + hour[lo:hi]
        week = np.bincount(cell, weights=value[lo:hi], minlength=size * HOURS_PER_WEEK)
        week = week.reshape(size, HOURS_PER_WEEK)
        block_total = total[start : start + size]
        active = block_total > 0
        shares = week[active] / block_total[active, None]
        block = activity[start : start + size]
        block[active] = shares.reshape(-1, 7, _HOURS_PER_DAY).sum(axis=1)
    return activity


def _same_key_value(
    pairs: _Pairs, family: str, row: np.ndarray, field: np.ndarray, other: str
) -> np.ndarray:
    """For each pair ``(row, field)`` of ``family``, the largest value of ``other`` with
    the same key in the same row (``-inf`` where there is none): a cart entry's removal or
    purchase time. ``other``'s keys are products, or for ``bp`` ``product|day`` (its
    product's purchases by day: the latest of them)."""
    other_row, other_value, other_field = pairs.of(other)
    out = np.full(len(row), -np.inf)
    if not len(row) or not len(other_row):
        return out
    other_keys = pairs.keys(other)[other_field].astype(str)
    if other == "bp":
        other_keys = np.char.rpartition(other_keys, "|")[:, 0]
    texts = np.concatenate([pairs.keys(family)[field].astype(str), other_keys])
    keys, key_code = np.unique(texts, return_inverse=True)
    n_keys = len(keys)
    mine = row * n_keys + key_code[: len(row)]
    theirs = other_row * n_keys + key_code[len(row) :]
    order = np.lexsort((other_value, theirs))  # a key's largest value last
    theirs, other_value = theirs[order], other_value[order]
    at = np.searchsorted(theirs, mine, side="right") - 1
    found = (at >= 0) & (theirs[at.clip(min=0)] == mine)
    out[found] = other_value[at[found]]
    return out
