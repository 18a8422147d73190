"""Profile state: a customer's ops combined per field, and its retention.

A customer's state is a flat ``dict[str, float]`` (``{"np": 3.0, "pd:20512": 1.0,
...}``): exactly what the online store keeps in one Redis hash. :func:`apply_op`
is the reference fold of one op; :mod:`features.columnar` combines the ops of
many customers at once, and its long frame (columns ``customer_id``,
``family``, ``key`` and ``value``; the field name is ``family`` or
``family:key``) is what Spark exchanges.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from features.definitions import (
    FAMILIES,
    RETURN_DAYS,
    SECONDS_PER_DAY,
    SECONDS_PER_HOUR,
    KeyKind,
    Op,
    first_day_of_month,
    key_time_seconds,
)

#: MAX families whose value is itself a timestamp (retention applies to the value).
TIMESTAMP_VALUED = frozenset({"ca", "cr", "cb", "bp", "v", "vc", "vs", "rt", "rw", "dv"})
#: A local day ends at most this long after the UTC day of the same number (UTC-12; 14 h
#: keeps a margin): an event at or after ``(day + 1) * 86400 + FOLD_MARGIN_SECONDS`` is
#: never on ``day``.
FOLD_MARGIN_SECONDS = 14 * SECONDS_PER_HOUR

State = dict[str, float]


def field_names(family: str, keys: pd.Series) -> pd.Series:
    """Field names of ``family`` for ``keys`` (``pd:20512``)."""
    fam = FAMILIES[family]
    if fam.key is KeyKind.NONE:
        return pd.Series(family, index=keys.index, dtype=object)
    return family + ":" + keys.astype(str)


def is_expired(field: str, value: float, as_of_seconds: float) -> bool:
    """True when ``field`` is older than its family's retention at ``as_of``.

    An expired field is never read by the profile, so dropping it saves memory
    and changes nothing.
    """
    family_name, _, key = field.partition(":")
    family = FAMILIES[family_name]
    if family.retention_days is None or family_name == "cv":
        return False
    horizon = as_of_seconds - family.retention_days * SECONDS_PER_DAY
    if family_name in TIMESTAMP_VALUED:
        return value < horizon
    when = key_time_seconds(family, key)
    span = SECONDS_PER_DAY if family.key in (KeyKind.DAY, KeyKind.CHANNEL_DAY) else SECONDS_PER_HOUR
    return when is not None and when + span <= horizon


def trim_state(state: State, as_of_seconds: float) -> State:
    """``state`` without expired fields."""
    kept = {f: v for f, v in state.items() if not is_expired(f, v, as_of_seconds)}
    for f in [f for f in kept if f.startswith("cv:")]:
        if "ca:" + f[3:] not in kept:
            del kept[f]
    return kept


def fold_shopping_days(state: State, before: float) -> State:
    """``state`` with its shopping days (``ad:<day>``) that no event at or after ``before``
    (epoch seconds) can reach counted into their month (``am:<first day of the month>``).

    The online store folds the days older than its replay window (no event older than
    that is applied any more), so that a customer keeps one field per month rather than
    per day; the seasonality read from the months is the same
    (:func:`features.seasonality.shopping_months`). The Redis scripts fold the same way.
    A day shopped by purchases alone (a negative value) waits until the return window
    (:data:`~features.definitions.RETURN_DAYS`) is past it too: until then a return or
    cancellation may withdraw it (:func:`features.finalise.withdrawn_days`), after it no
    return can.

    >>> fold_shopping_days({"ad:20089": 1.0, "ad:20090": 1.0, "ad:20120": 1.0}, 20120 * 86400.0)
    {'ad:20120': 1.0, 'am:20089': 2.0}
    >>> fold_shopping_days({"ad:20089": -2.0, "ad:20020": -3.0}, 20120 * 86400.0)
    {'ad:20089': -2.0, 'am:19997': 1.0}
    """
    last_day = (before - FOLD_MARGIN_SECONDS) // SECONDS_PER_DAY - 1
    last_bought = last_day - RETURN_DAYS
    out: State = {}
    folded: dict[str, float] = {}
    for field, value in state.items():
        if field.startswith("ad:") and int(field[3:]) <= (last_day if value >= 0 else last_bought):
            month = f"am:{first_day_of_month(int(field[3:]))}"
            folded[month] = folded.get(month, 0.0) + 1.0
        else:
            out[field] = value
    for month, days in folded.items():
        out[month] = out.get(month, 0.0) + days
    return out


def fold_orders(state: State, before: float) -> State:
    """``state`` with its orders (``ol:<second>``) that no return at or after ``before``
    (epoch seconds) can undo folded into ``lx``: each adds its lines beyond the first, so
    that the order count (:func:`features.finalise.order_count`, ``np`` less the lines
    beyond each order's first) is the same, with no field per order past the return
    window. The same cut as the days shopped by purchases alone
    (:func:`fold_shopping_days`); the Redis scripts fold the same way.

    >>> day = 20120 * 86400
    >>> fold_orders({"np": 5.0, "ol:1700000000": 3.0, "ol:1700000100": 1.0,
    ...              f"ol:{day}": 1.0}, float(day))
    {'np': 5.0, 'ol:1738368000': 1.0, 'lx': 2.0}
    """
    last_bought = (before - FOLD_MARGIN_SECONDS) // SECONDS_PER_DAY - 1 - RETURN_DAYS
    horizon = (last_bought + 1) * SECONDS_PER_DAY
    out: State = {}
    extra = 0.0
    for field, value in state.items():
        if field.startswith("ol:") and int(field[3:]) < horizon:
            extra += max(value - 1.0, 0.0)
        else:
            out[field] = value
    if extra > 0:
        out["lx"] = out.get("lx", 0.0) + extra
    return out


def stored_state(state: State, cut: float) -> State:
    """``state`` as the online store keeps it from ``cut`` (epoch seconds) on: without its
    expired fields, its shopping days and orders past reach folded
    (:func:`trim_state`, :func:`fold_shopping_days`, :func:`fold_orders`)."""
    return fold_orders(fold_shopping_days(trim_state(state, cut), cut), cut)


def states_by_customer(long: pd.DataFrame) -> dict[str, State]:
    """The long state frame as one flat dict per customer."""
    result: dict[str, State] = {}
    if long.empty:
        return result
    ordered = long.sort_values("customer_id", kind="stable")
    ids = ordered["customer_id"].to_numpy(dtype=object)
    family = ordered["family"].to_numpy(dtype=object)
    key = ordered["key"].to_numpy(dtype=object)
    names = np.where(key == "", family, family + ":" + key)
    values = ordered["value"].to_numpy(dtype=float)
    bounds = np.flatnonzero(ids[1:] != ids[:-1]) + 1
    starts = np.concatenate([[0], bounds])
    ends = np.concatenate([bounds, [len(ids)]])
    for s, e in zip(starts, ends, strict=True):
        result[ids[s]] = dict(zip(names[s:e].tolist(), values[s:e].tolist(), strict=True))
    return result


def apply_op(state: State, field: str, value: float) -> None:
    """Apply one op to ``state`` in place (the reference for the online store's script)."""
    op = FAMILIES[field.partition(":")[0]].op
    current = state.get(field)
    if current is None:
        state[field] = value
    elif op is Op.SUM:
        state[field] = current + value
    elif op is Op.MAX:
        state[field] = max(current, value)
    else:
        state[field] = min(current, value)
