"""Batch profiles: every customer's profile as of one moment, and point-in-time
training sets where each row sees only what was known just before its time.

Both use the definitions of :mod:`features.definitions` (the ops each event
makes), combine the ops of all customers in integer codes with numpy
(:mod:`features.columnar`, the same sums, maxima and minima as the online fold
:func:`features.state.apply_op`) and read states with the one reader
:func:`features.finalise.build_profile`, so that offline values equal the
online ones for the same events (property tests, tests/test_online_store.py).
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import gc
import itertools
import math
import multiprocessing
import os
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from features.columnar import (
    ColumnarOps,
    ColumnarState,
    LazyStates,
    concat_states,
    cut_fields,
    reduce_ops,
)
from features.dataset import RetailDataset
from features.definitions import (
    EVENT_COLUMNS_READ,
    FAMILIES,
    SECONDS_PER_DAY,
    FamilyOps,
    KeyKind,
    ProductCatalog,
    customer_ops,
    epoch_seconds,
    event_ops,
)
from features.finalise import (
    ChannelPrior,
    CustomerStatic,
    FeaturePriors,
    left_days,
    settle_returns,
    settled_shopping_days,
    split_state,
    trigger_prior,
)
from features.profile_columns import left_day_sums, read_profiles
from features.seasonality import (
    exposure_of_spans,
    month_of_day,
    shopping_span,
    state_months,
    store_month_factors,
    store_season_prior,
)
from features.state import State
from nba.channels import CONSENT_CHANNELS
from nba.profile import CustomerProfile

Progress = Callable[[float, float], None]

#: A segment's own rate is used once it rests on this many messages.
MIN_SEGMENT_MESSAGES = 200


@dataclass(frozen=True)
class ProfileBuild:
    """Result of a batch build: states (what the online store holds), priors and profiles."""

    as_of: dt.datetime
    states: Mapping[str, State]  # built on first use (features.columnar.LazyStates)
    statics: dict[str, CustomerStatic]
    priors: FeaturePriors
    profiles: list[CustomerProfile]


def statics_of(customers: pd.DataFrame) -> dict[str, CustomerStatic]:
    """Static attributes by customer id."""
    births = customers["birth_date"]
    return {
        cid: CustomerStatic(timezone=tz, birth_date=None if pd.isna(b) else pd.Timestamp(b).date())
        for cid, tz, b in zip(customers["customer_id"], customers["timezone"], births, strict=True)
    }


def known_before(data: RetailDataset, as_of: pd.Timestamp) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Customers created and events that happened strictly before ``as_of``."""
    return _before(data.customers, "created_at", as_of), _before(data.events, "timestamp", as_of)


def _before(frame: pd.DataFrame, column: str, as_of: pd.Timestamp) -> pd.DataFrame:
    """The rows of ``frame`` whose ``column`` is before ``as_of``, indexed from 0 (the
    frame itself, not a copy of millions of rows, when they all are)."""
    kept = (frame[column] < as_of).to_numpy()
    index = frame.index
    if kept.all() and isinstance(index, pd.RangeIndex) and (index.start, index.step) == (0, 1):
        return frame
    return frame[kept].reset_index(drop=True)


def columnar_ops(
    customers: pd.DataFrame,
    events: pd.DataFrame,
    products: pd.DataFrame,
    before: pd.Timestamp | None = None,
) -> tuple[ColumnarOps, np.ndarray]:
    """The ops of customers and events in integer codes, and the customer id of each owner code.

    With ``before``, events at or after it are left out, and so are customer ops
    (a consent given or withdrawn) not known to be strictly before it: their
    stamps are whole seconds, so a change in the last second before ``before``
    is left out rather than risk one from after it.
    """
    catalog = ProductCatalog.from_products(products)
    timezones = customers.set_index("customer_id")["timezone"]
    if before is not None:
        events = _before(events, "timestamp", before)
    cut = None if before is None else before.timestamp()

    def known(ops: Iterator[FamilyOps]) -> Iterator[FamilyOps]:
        for fam in ops:
            if cut is not None:
                fam = FamilyOps(fam.family, fam.frame[fam.frame["ts"] + 1 <= cut])
            yield fam

    event_owner, seen = pd.factorize(events["customer_id"].astype(object))
    customer_ids = customers["customer_id"].astype(object).to_numpy()
    customer_owner = pd.Index(seen).get_indexer(customer_ids)
    unseen = customer_owner < 0
    customer_owner[unseen] = len(seen) + np.arange(int(unseen.sum()))
    owners = np.concatenate([np.asarray(seen, dtype=object), customer_ids[unseen]])
    ops = ColumnarOps.collect(
        [
            (event_ops(events, catalog, timezones), event_owner.astype(np.int64)),
            (known(customer_ops(customers)), customer_owner.astype(np.int64)),
        ],
        n_owners=len(owners),
    )
    return ops, owners


def compute_states(
    customers: pd.DataFrame,
    events: pd.DataFrame,
    products: pd.DataFrame,
    before: pd.Timestamp | None = None,
) -> pd.DataFrame:
    """Long state frame (customer_id, family, key, value) from customers and events
    (``before`` as in :func:`columnar_ops`)."""
    ops, owners = columnar_ops(customers, events, products, before)
    return reduce_ops(ops).long(owners)


def estimate_priors(states: dict[str, State], now: float | None = None) -> FeaturePriors:
    """Population rates per loyalty tier and channel, for smoothing thin histories, and
    the store's seasonality (shopping days per month of the year).

    A segment's rate is used once it rests on :data:`MIN_SEGMENT_MESSAGES`
    messages; below that, profiles fall back to everyone's rate (``"*"``).
    """
    from features.definitions import TIERS, decode_register

    totals: dict[tuple[str, str], list[float]] = {}
    promo = [0.0, 0.0, 0.0]  # promo purchases, new-product purchases, purchases
    for state in states.values():
        reg = state.get("lt")
        rank = decode_register(reg)[1] if reg is not None else 0
        tier = TIERS[min(max(rank, 0), len(TIERS) - 1)]
        for ch in CONSENT_CHANNELS:
            c = ch.value
            base = max(state.get(f"ed:{c}", 0.0), state.get(f"es:{c}", 0.0))
            for seg in (tier, "*"):
                acc = totals.setdefault((seg, c), [0.0, 0.0, 0.0])
                acc[0] += base
                acc[1] += state.get(f"eo:{c}", 0.0)
                acc[2] += state.get(f"ek:{c}", 0.0)
        promo[0] += state.get("pp", 0.0)
        promo[1] += state.get("pn", 0.0)
        promo[2] += state.get("np", 0.0)
    states = settled_shopping_states(states, now)
    return _priors(totals, promo, shopping_days(states), _customer_months(states))


def estimate_priors_columns(
    combined: ColumnarState, owners: np.ndarray, now: float | None = None
) -> FeaturePriors:
    """:func:`estimate_priors` of a combined state (every owner's fields), with numpy
    sums over all owners instead of a loop over their flat states (the counts are
    whole numbers: any order of addition gives the same totals)."""
    from features.definitions import TIERS

    n = int(combined.owner.max()) + 1 if len(combined.owner) else 0
    name_code = {name: i for i, name in enumerate(combined.names.tolist())}
    wanted = ["lt", "t0", "pp", "pn", "np"] + [
        f"{f}:{ch.value}" for ch in CONSENT_CHANNELS for f in ("es", "ed", "eo", "ek")
    ]
    slot = np.full(len(name_code), -1, dtype=np.int64)
    for j, name in enumerate(wanted):
        if name in name_code:
            slot[name_code[name]] = j
    picked = slot[combined.field]
    read = picked >= 0
    table = np.zeros((n, len(wanted)))
    present = np.zeros((n, len(wanted)), dtype=bool)
    table[combined.owner[read], picked[read]] = combined.value[read]
    present[combined.owner[read], picked[read]] = True

    def column(name: str) -> np.ndarray:
        return table[:, wanted.index(name)]

    register = column("lt")
    has = present[:, 0]
    rank = np.where(has, np.rint(register - np.floor(register / 8) * 8), 0).astype(np.int64)
    tier = np.clip(rank, 0, len(TIERS) - 1)
    alive = np.zeros(n, dtype=bool)
    alive[combined.owner] = True  # owners with a state: those the flat states hold
    totals: dict[tuple[str, str], list[float]] = {}
    for ch in CONSENT_CHANNELS:
        c = ch.value
        base = np.maximum(column(f"ed:{c}"), column(f"es:{c}"))
        opened, clicked = column(f"eo:{c}"), column(f"ek:{c}")
        for t, seg in enumerate(TIERS):
            mine = alive & (tier == t)
            if mine.any():
                totals[(seg, c)] = [
                    float(base[mine].sum()),
                    float(opened[mine].sum()),
                    float(clicked[mine].sum()),
                ]
        totals[("*", c)] = [float(base.sum()), float(opened.sum()), float(clicked.sum())]
    promo = [float(column(name).sum()) for name in ("pp", "pn", "np")]
    first_seen = np.where(present[:, 1], column("t0"), np.nan)
    combined = _without_withdrawn_days(combined, now)
    return _priors(
        totals,
        promo,
        shopping_days_columns(combined, first_seen, name_code),
        _customer_months_columns(combined, owners, first_seen),
    )


def _priors(
    totals: dict[tuple[str, str], list[float]],
    promo: list[float],
    shopping: tuple[Counter[int], Counter[int], Counter[int], int],
    customer_months: Iterable[tuple[str, Counter[int], float | None]],
) -> FeaturePriors:
    """Priors from the sums: messages, opens and clicks per (segment, channel); promo,
    new-product and all purchases; :func:`shopping_days`; each shopper's months
    (:func:`_customer_months`) for the store's season prior."""
    shopped, starts, ends, until = shopping
    default = ChannelPrior()
    channels: dict[str, dict[str, ChannelPrior]] = {}
    for (seg, c), (base, opens, clicks) in totals.items():
        if base < MIN_SEGMENT_MESSAGES:
            continue
        channels.setdefault(seg, {})[c] = ChannelPrior(
            open_rate=opens / base,
            click_rate=clicks / base,
            conversion_rate=default.conversion_rate,
        )
    month_activity = store_month_factors(shopped, exposure_of_spans(starts, ends, until))
    return FeaturePriors(
        channels=channels,
        promo_share=promo[0] / promo[2] if promo[2] else FeaturePriors().promo_share,
        new_product_share=promo[1] / promo[2] if promo[2] else FeaturePriors().new_product_share,
        month_activity=month_activity,
        season_prior=store_season_prior(customer_months, until * SECONDS_PER_DAY, month_activity),
    )


def with_trigger_priors(
    priors: FeaturePriors,
    customers: int,
    sums: tuple[tuple[float, float], tuple[float, float]],
) -> FeaturePriors:
    """``priors`` with the store's rates of browse and cart abandonment days and their
    weights (:func:`features.finalise.trigger_prior`), from the ``customers``' sums of
    ``browse_left_days_30d`` and ``cart_left_days_30d`` and of their squares."""
    (browse, browse_squares), (cart, cart_squares) = sums
    browse_rate, browse_weight = trigger_prior(customers, browse, browse_squares)
    cart_rate, cart_weight = trigger_prior(customers, cart, cart_squares)
    return dataclasses.replace(
        priors,
        browse_left_rate=browse_rate,
        browse_left_weight=browse_weight,
        cart_left_rate=cart_rate,
        cart_left_weight=cart_weight,
    )


#: The families (keyed or not) a customer's left days are read from
#: (:func:`features.finalise.left_days`) and their returns settled with
#: (:func:`features.finalise.settle_returns`).
LEFT_DAY_FIELDS = frozenset(
    {"pd", "wc", "wm", "rt", "rw", "ra", "cb", "bp", "rd", "pq", "np", "rv", "tp", "tf"}
)


#: The families a customer's shopping days are settled with (:func:`withdrawn_day_fields`).
SHOPPING_DAY_FIELDS = LEFT_DAY_FIELDS | {"ad"}


def settling_time(days: Iterable[int], returns: Iterable[float], now: float | None) -> float:
    """When the store's seasonality settles its customers' returns (seconds): ``now`` (the
    build's moment), else the end of the history: the day after the last shopping day or
    the last return, whichever is later."""
    if now is not None:
        return now
    return max(
        (max(days, default=-1) + 1) * SECONDS_PER_DAY,
        max(returns, default=-math.inf),
    )


def withdrawn_day_fields(state: Mapping[str, float], now: float) -> list[str]:
    """The ``ad`` fields of a flat state that are no shopping day at ``now`` (seconds): days
    shopped by purchases alone whose orders were undone
    (:func:`features.finalise.withdrawn_days`)."""
    if not any(f.startswith("ad:") and v < 0 for f, v in state.items()):
        return []
    scalars, keyed = split_state(state)
    if "rt" not in keyed:
        return []
    kept = settled_shopping_days(scalars, keyed, now)
    return [f"ad:{d}" for d in keyed["ad"] if d not in kept]


def settled_shopping_states(states: dict[str, State], now: float | None = None) -> dict[str, State]:
    """``states`` with the shopping days their returns withdrew at ``now`` (seconds; default
    :func:`settling_time`) taken out, for the store's seasonality."""
    now = settling_time(
        (int(f[3:]) for s in states.values() for f in s if f.startswith("ad:")),
        (v for s in states.values() for f, v in s.items() if f.startswith("rt:")),
        now,
    )
    out = dict(states)
    for cid, state in states.items():
        gone = withdrawn_day_fields(state, now)
        if gone:
            out[cid] = {f: v for f, v in state.items() if f not in gone}
    return out


def _without_withdrawn_days(combined: ColumnarState, now: float | None) -> ColumnarState:
    """:func:`settled_shopping_states` of a combined state: the (few) owners with a return
    or cancellation and a day shopped by purchases alone settled one by one."""
    family_of = combined.families
    is_day = (family_of == "ad")[combined.field]
    marked = is_day & (combined.value < 0)
    if not marked.any():
        return combined
    is_return = (family_of == "rt")[combined.field]
    returning = np.intersect1d(combined.owner[marked], combined.owner[is_return])
    if not len(returning):
        return combined
    days = combined.keys[combined.field[is_day]].astype(np.int64)
    now = settling_time(days.tolist(), combined.value[is_return].tolist(), now)
    wanted = np.isin(family_of, list(SHOPPING_DAY_FIELDS))
    rows = np.flatnonzero(wanted[combined.field] & np.isin(combined.owner, returning))
    names = combined.names.tolist()
    drop = np.zeros(len(combined.owner), dtype=bool)
    owner = combined.owner[rows]
    bounds = np.flatnonzero(np.r_[True, owner[1:] != owner[:-1], True]).tolist()
    for lo, hi in itertools.pairwise(bounds):
        mine = rows[lo:hi]
        fields = combined.field[mine].tolist()
        state = dict(zip([names[f] for f in fields], combined.value[mine].tolist(), strict=True))
        gone = set(withdrawn_day_fields(state, now))
        if gone:
            drop[mine[[names[f] in gone for f in fields]]] = True
    if not drop.any():
        return combined
    keep = ~drop
    return dataclasses.replace(
        combined, owner=combined.owner[keep], field=combined.field[keep], value=combined.value[keep]
    )


def settled_left_days(state: Mapping[str, float], now: float) -> tuple[int, int]:
    """``browse_left_days_30d`` and ``cart_left_days_30d`` of a flat state at ``now``
    (seconds) as its profile reads them: with its returns and cancellations settled
    (:func:`features.finalise.settle_returns`: a day whose only order was cancelled left
    its cart behind)."""
    scalars, keyed = split_state(state)
    if "rt" in keyed:
        scalars, keyed, _ = settle_returns(scalars, keyed, now)
    return left_days(keyed, now)


def settled_left_day_sums(
    entity: np.ndarray,
    field: np.ndarray,
    value: np.ndarray,
    families: np.ndarray,
    keys: np.ndarray,
    ids: list[str],
    as_of: dt.datetime,
) -> tuple[tuple[float, float], tuple[float, float]]:
    """:func:`features.profile_columns.left_day_sums` of the entities ``ids`` at ``as_of``,
    each as its profile reads it: the (few) customers with a return or cancellation
    through :func:`settled_left_days`, the others at once from the columns (the store's
    rates then are the mean of the profiles' own values)."""
    n = len(ids)
    codes = families.tolist()
    returns = [i for i, f in enumerate(codes) if f == "rt"]
    if not returns:  # no return nor cancellation: every profile at once from the columns
        return left_day_sums(entity, field, value, families, keys, n, [as_of] * n)
    names = [
        f if FAMILIES[f].key is KeyKind.NONE else f"{f}:{k}"
        for f, k in zip(codes, keys.tolist(), strict=True)
    ]
    special = np.unique(entity[np.isin(field, returns)])
    mine = np.isin(entity, special)
    (browse, browse2), (cart, cart2) = left_day_sums(
        entity[~mine], field[~mine], value[~mine], families, keys, n, [as_of] * n
    )
    now = as_of.timestamp()
    # only the fields left days and the settling of returns read
    read = np.array([f in LEFT_DAY_FIELDS for f in codes], dtype=bool)[field] & mine
    entity, field, value = entity[read], field[read], value[read]
    for i in special.tolist():
        lo, hi = np.searchsorted(entity, [i, i + 1])
        state = {
            names[f]: v for f, v in zip(field[lo:hi].tolist(), value[lo:hi].tolist(), strict=True)
        }
        b, c = settled_left_days(state, now)
        browse, browse2, cart, cart2 = browse + b, browse2 + b * b, cart + c, cart2 + c * c
    return (browse, browse2), (cart, cart2)


def _customer_months(
    states: dict[str, State],
) -> Iterator[tuple[str, Counter[int], float | None]]:
    """Per customer who shopped: shopping days per calendar month index and first seen."""
    for customer_id, state in states.items():
        months = state_months(state)
        if months:
            yield customer_id, months, state.get("t0")


def _customer_months_columns(
    combined: ColumnarState, owners: np.ndarray, first_seen: np.ndarray
) -> Iterator[tuple[str, Counter[int], float | None]]:
    """:func:`_customer_months` of a combined state (``owners``: customer id per owner
    code; ``first_seen``: ``t0`` per owner, NaN where absent)."""
    names = combined.names.tolist()
    shopping = np.array([n.startswith(("ad:", "am:")) for n in names], dtype=bool)
    mine = shopping[combined.field] if len(names) else np.zeros(0, dtype=bool)
    owner, field, value = combined.owner[mine], combined.field[mine], combined.value[mine]
    bounds = np.flatnonzero(np.r_[True, owner[1:] != owner[:-1], True]).tolist()
    fields, values = field.tolist(), value.tolist()
    for lo, hi in itertools.pairwise(bounds if len(owner) else []):
        state = {names[f]: v for f, v in zip(fields[lo:hi], values[lo:hi], strict=True)}
        months = state_months(state)
        if months:
            code = int(owner[lo])
            seen = float(first_seen[code])
            yield str(owners[code]), months, None if seen != seen else seen


def shopping_days_columns(
    combined: ColumnarState, first_seen: np.ndarray, name_code: dict[str, int]
) -> tuple[Counter[int], Counter[int], Counter[int], int]:
    """:func:`shopping_days` of a combined state (``first_seen``: ``t0`` per owner, NaN
    where absent)."""
    shopped: Counter[int] = Counter()
    starts: Counter[int] = Counter()
    ends: Counter[int] = Counter()
    is_day = np.zeros(len(combined.names), dtype=bool)
    day_of = np.zeros(len(combined.names), dtype=np.int64)
    for name, code in name_code.items():
        if name.startswith("ad:"):
            is_day[code] = True
            day_of[code] = int(name[3:])
    mine = is_day[combined.field]
    owner, day = combined.owner[mine], day_of[combined.field[mine]]
    if not len(owner):
        return shopped, starts, ends, 0
    distinct, counts = np.unique(day, return_counts=True)
    for d, k in zip(distinct.tolist(), counts.tolist(), strict=True):
        shopped[month_of_day(d)] += k
    bounds = np.flatnonzero(np.r_[True, owner[1:] != owner[:-1], True])
    days = day.tolist()
    seen = first_seen[owner[bounds[:-1]]].tolist()
    for lo, hi, t0 in zip(bounds[:-1].tolist(), bounds[1:].tolist(), seen, strict=True):
        start, end = shopping_span(days[lo:hi], None if t0 != t0 else t0)
        starts[start] += 1
        ends[end] += 1
    return shopped, starts, ends, int(day.max()) + 1


def shopping_days(
    states: dict[str, State],
) -> tuple[Counter[int], Counter[int], Counter[int], int]:
    """Everyone's shopping days per calendar month, how many customers'
    :func:`~features.seasonality.shopping_span` starts and ends on each day, and the
    day after the last shopping day: the sums the store's seasonality is estimated from."""
    shopped: Counter[int] = Counter()
    starts: Counter[int] = Counter()
    ends: Counter[int] = Counter()
    until = 0
    for state in states.values():
        days = [int(f[3:]) for f in state if f.startswith("ad:")]
        if not days:
            continue
        shopped.update(month_of_day(d) for d in days)
        start, end = shopping_span(days, state.get("t0"))
        starts[start] += 1
        ends[end] += 1
        until = max(until, max(days) + 1)
    return shopped, starts, ends, until


def build_profiles(
    data: RetailDataset,
    as_of: dt.datetime | None = None,
    priors: FeaturePriors | None = None,
    progress: Progress | None = None,
    workers: int | None = None,
) -> ProfileBuild:
    """Profiles of every customer known before ``as_of`` (default: just after the last event).

    ``workers`` processes combine the events into states (default: one per core;
    1 runs in this process; :func:`combine`); the profiles of all customers are then
    read at once from the combined state (:func:`features.profile_columns.read_profiles`).
    """
    with paused_gc():
        return _build_profiles(data, as_of, priors, progress, workers)


def _build_profiles(
    data: RetailDataset,
    as_of: dt.datetime | None,
    priors: FeaturePriors | None,
    progress: Progress | None,
    workers: int | None,
) -> ProfileBuild:
    if as_of is None:
        last = data.events["timestamp"].max() if len(data.events) else pd.Timestamp.now(tz="UTC")
        as_of = (last.floor("s") + pd.Timedelta(seconds=1)).to_pydatetime()
    stamp = pd.Timestamp(as_of)
    customers, events = known_before(data, stamp)
    owners, combined = combine(customers, events, data.products, stamp, workers)
    if progress:
        progress(0.5, 1.0)
    states = LazyStates(combined, owners)
    statics = statics_of(customers)
    ids = customers["customer_id"].tolist()
    # each customer's entries, in the order of the customers (and of its state within)
    position = pd.Index(ids).get_indexer(owners)[combined.owner]
    known = position >= 0
    order = np.argsort(position[known], kind="stable")
    entity, field, value = (
        position[known][order],
        combined.field[known][order],
        combined.value[known][order],
    )
    as_ofs = [as_of] * len(ids)
    if priors is None:
        sums = settled_left_day_sums(
            entity, field, value, combined.families, combined.keys, ids, as_of
        )
        priors = with_trigger_priors(
            estimate_priors_columns(combined, owners, as_of.timestamp()), len(ids), sums
        )
    profiles = read_profiles(
        entity,
        field,
        value,
        combined.families,
        combined.keys,
        ids,
        [statics[cid] for cid in ids],
        as_ofs,
        priors,
    )
    if progress:
        progress(1.0, 1.0)
    return ProfileBuild(
        as_of=as_of, states=states, statics=statics, priors=priors, profiles=profiles
    )


#: Below this many events, combining in other processes costs more than it saves.
PARALLEL_MIN_EVENTS = 200_000
#: What the combining processes read, left by their parent before it forks them
#: (inherited, not pickled: the frames can be gigabytes).
_FORKED: tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame, pd.Timestamp, int] | None = None


def combine(
    customers: pd.DataFrame,
    events: pd.DataFrame,
    products: pd.DataFrame,
    as_of: pd.Timestamp,
    workers: int | None = None,
) -> tuple[np.ndarray, ColumnarState]:
    """``(owners, state)``: every customer's state at ``as_of`` without expired fields,
    from the ops of their customers row and events before it; ``owners[code]`` is the
    customer id of each owner code.

    With ``workers`` > 1 (default: one per core) and enough events, the customers are
    split by a hash of their id and each part is combined in its own forked process;
    keys are coded in text order, so the parts united are the same state, field for
    field and in the same order, as one process gives.
    """
    global _FORKED
    workers = workers or os.cpu_count() or 1
    if workers <= 1 or len(events) < PARALLEL_MIN_EVENTS:
        ops, owners = columnar_ops(customers, events, products, as_of)
        return owners, reduce_ops(ops).unexpired(as_of.timestamp())
    # text columns as categoricals, once, before forking: the processes then read integer
    # codes, instead of each touching (and so copying, page by page) millions of strings
    events = events.assign(
        **{
            c: pd.Categorical(events[c])
            for c in ("customer_id", "channel", "event_type", "product_id", "offer_id")
        }
    )
    _FORKED = (customers, events, products, as_of, workers)
    try:
        context = multiprocessing.get_context("fork")
        with context.Pool(workers) as pool:
            parts = pool.map(_combine_part, range(workers))
    finally:
        _FORKED = None
    owners = np.concatenate([np.zeros(0, dtype=object), *(o for o, _ in parts)])
    return owners, concat_states([(len(o), state) for o, state in parts])


def customer_parts(ids: pd.Series | np.ndarray, parts: int) -> np.ndarray:
    """The part (``0 <= k < parts``) of each customer id: a hash of the id alone, the same
    in every process, on every machine and for any order (categorical ids are hashed
    once per category).

    >>> customer_parts(pd.Series(["C1", "C2", "C1"]), 2).tolist() == customer_parts(
    ...     pd.Series(["C1", "C2", "C1"], dtype="category"), 2).tolist()
    True
    """
    if isinstance(ids, pd.Series) and isinstance(ids.dtype, pd.CategoricalDtype):
        labels = ids.cat.categories.astype(object).to_numpy()
        hashed = pd.util.hash_array(labels)[ids.cat.codes.to_numpy()]
    else:
        values = ids.astype(object).to_numpy() if isinstance(ids, pd.Series) else ids
        hashed = pd.util.hash_array(np.asarray(values, dtype=object))
    return np.asarray(hashed % np.uint64(parts), dtype=np.int64)


def _combine_part(part: int) -> tuple[np.ndarray, ColumnarState]:
    """The combined state of the customers whose id hashes to ``part``."""
    assert _FORKED is not None, "combine leaves its input before forking"
    customers, events, products, as_of, parts = _FORKED
    with paused_gc():

        def mine(ids: pd.Series) -> np.ndarray:
            return customer_parts(ids, parts) == part

        ops, owners = columnar_ops(
            customers[mine(customers["customer_id"])].reset_index(drop=True),
            # only the columns the definitions read: the others are not copied
            events.loc[mine(events["customer_id"]), list(EVENT_COLUMNS_READ)].reset_index(
                drop=True
            ),
            products,
            as_of,
        )
        return owners, reduce_ops(ops).unexpired(as_of.timestamp())


@contextlib.contextmanager
def paused_gc() -> Iterator[None]:
    """Pause the cycle collector while a build allocates: profiles are millions of small
    acyclic containers, and each collection of the oldest generation walks all that were
    built so far (a build spent about a sixth of its CPU time, and a parent unpickling
    its workers' profiles two thirds, in collections that found nothing). Restored after."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def rows_ops(
    data: RetailDataset, rows: pd.DataFrame
) -> tuple[pd.DataFrame, ColumnarOps, np.ndarray]:
    """``(customers, ops, row_owner)``: the customers of ``(customer_id, timestamp)`` rows,
    the ops of their events before the last row's time, and each row's owner code."""
    cutoffs = pd.to_datetime(rows["timestamp"], utc=True)
    wanted = data.customers["customer_id"].isin(rows["customer_id"])
    customers = data.customers[wanted].reset_index(drop=True)
    events = data.events[
        data.events["customer_id"].isin(rows["customer_id"])
        & (data.events["timestamp"] < cutoffs.max())
    ].reset_index(drop=True)
    ops, owners = columnar_ops(customers, events, data.products)
    row_owner = pd.Index(owners).get_indexer(rows["customer_id"].astype(object).to_numpy())
    return customers, ops, row_owner


def point_in_time(
    data: RetailDataset,
    rows: pd.DataFrame,
    priors: FeaturePriors | None = None,
    workers: int | None = None,
) -> list[CustomerProfile]:
    """The profile of each ``(customer_id, timestamp)`` row as known just before its time.

    No op at or after a row's timestamp (in whole seconds) contributes to its
    profile: an event never leaks into the features of a training example it
    could have caused. All rows are cut in one vectorised pass
    (:func:`features.columnar.cut_fields`) and read at once
    (:func:`features.profile_columns.read_profiles`), in this process: ``workers`` is
    accepted for the callers of the earlier per-row finaliser, which ran in
    processes, and unused (pickling profiles back would cost more than reading them).
    Rows are returned in input order.
    """
    if rows.empty:
        return []
    with paused_gc():
        return _point_in_time(data, rows, priors, workers)


def _point_in_time(
    data: RetailDataset,
    rows: pd.DataFrame,
    priors: FeaturePriors | None,
    workers: int | None,
) -> list[CustomerProfile]:
    rows = rows.reset_index(drop=True)
    cutoffs = pd.to_datetime(rows["timestamp"], utc=True)
    customers, ops, row_owner = rows_ops(data, rows)
    cut = cut_fields(ops, row_owner, epoch_seconds(cutoffs))
    statics = statics_of(customers)
    ids = rows["customer_id"].tolist()
    return read_profiles(
        cut.row,
        cut.field,
        cut.value,
        cut.families,
        cut.keys,
        ids,
        [statics.get(cid, CustomerStatic()) for cid in ids],
        cutoffs.dt.to_pydatetime().tolist(),
        priors or FeaturePriors(),
    )
