"""Profile state: ops combined per customer and field, in batch and at points in time.

A customer's state is a flat ``dict[str, float]`` (``{"np": 3.0, "pd:20512": 1.0,
...}``): exactly what the online store keeps in one Redis hash. Batch state is
the same thing for many customers at once, as a long frame with columns
``customer_id``, ``family``, ``key`` and ``value`` (the field name is
``family`` or ``family:key``).
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import pandas as pd

from features.definitions import (
    FAMILIES,
    SECONDS_PER_DAY,
    SECONDS_PER_HOUR,
    FamilyOps,
    KeyKind,
    Op,
    key_time_seconds,
)

_AGG = {Op.SUM: "sum", Op.MAX: "max", Op.MIN: "min"}

#: MAX families whose value is itself a timestamp (retention applies to the value).
TIMESTAMP_VALUED = frozenset({"ca", "cr", "cb", "v", "vc"})

State = dict[str, float]
LONG_COLUMNS = ["customer_id", "family", "key", "value"]


def field_names(family: str, keys: pd.Series) -> pd.Series:
    """Field names of ``family`` for ``keys`` (``pd:20512``)."""
    fam = FAMILIES[family]
    if fam.key is KeyKind.NONE:
        return pd.Series(family, index=keys.index, dtype=object)
    return family + ":" + keys.astype(str)


def aggregate(ops: Iterable[FamilyOps], owners: pd.Categorical | np.ndarray) -> pd.DataFrame:
    """Combine ops into state: one row per customer and field (long frame).

    ``owners`` gives the customer id of each input row (event or customer).
    """
    owners = owners if isinstance(owners, pd.Categorical) else pd.Categorical(owners)
    codes = owners.codes
    ids = np.asarray(owners.categories, dtype=object)
    parts: list[pd.DataFrame] = []
    for fam_ops in ops:
        frame = fam_ops.frame
        if frame.empty:
            continue
        fam = fam_ops.family
        grouped = (
            pd.DataFrame(
                {
                    "owner": codes[frame["row"].to_numpy()],
                    "key": frame["key"].to_numpy() if fam.key is not KeyKind.NONE else 0,
                    "value": frame["value"].to_numpy(dtype=float),
                }
            )
            .groupby(["owner", "key"], sort=False, observed=True)["value"]
            .agg(_AGG[fam.op])
            .reset_index()
        )
        n = len(grouped)
        keys = (
            np.asarray(grouped["key"].astype(str), dtype=object)
            if fam.key is not KeyKind.NONE
            else np.full(n, "", dtype=object)
        )
        parts.append(
            pd.DataFrame(
                {
                    "customer_id": pd.Series(ids[grouped["owner"].to_numpy()], dtype=object),
                    "family": pd.Series(np.full(n, fam.name, dtype=object), dtype=object),
                    "key": pd.Series(keys, dtype=object),
                    "value": grouped["value"].to_numpy(dtype=float),
                }
            )
        )
    if not parts:
        return pd.DataFrame(
            {c: pd.Series(dtype=object if c != "value" else float) for c in LONG_COLUMNS}
        )
    return pd.concat(parts, ignore_index=True)


def combine(long: pd.DataFrame, families: Iterable[str] | None = None) -> pd.DataFrame:
    """Merge rows for the same customer and field with their family's op.

    Only ``families`` (all when None) are regrouped: pass the families that
    several sources may have written.
    """
    names = set(FAMILIES) if families is None else set(families)
    touched = long["family"].isin(names).to_numpy()
    out = [long[~touched]]
    sub = long[touched]
    for op in Op:
        fams = [f for f in names if FAMILIES[f].op is op]
        part = sub[sub["family"].isin(fams).to_numpy()]
        if part.empty:
            continue
        out.append(
            part.groupby(["customer_id", "family", "key"], sort=False)["value"]
            .agg(_AGG[op])
            .reset_index()
        )
    return pd.concat(out, ignore_index=True)


def expired_mask(long: pd.DataFrame, as_of_seconds: float) -> np.ndarray:
    """True for rows older than their family's retention at ``as_of`` (vectorised
    :func:`is_expired`); cart prices go with their cart entries."""
    family = long["family"].to_numpy(dtype=object)
    key = long["key"]
    value = long["value"].to_numpy(dtype=float)
    expired = np.zeros(len(long), dtype=bool)
    for fam in FAMILIES.values():
        if fam.retention_days is None or fam.name == "cv":
            continue
        mask = family == fam.name
        if not mask.any():
            continue
        horizon = as_of_seconds - fam.retention_days * SECONDS_PER_DAY
        if fam.name in TIMESTAMP_VALUED:
            expired[mask] = value[mask] < horizon
            continue
        keys = key[mask]
        if fam.key is KeyKind.CHANNEL_DAY:
            start = keys.str.rsplit("|", n=1).str[1].astype(float).to_numpy() * SECONDS_PER_DAY
            span = SECONDS_PER_DAY
        elif fam.key is KeyKind.CHANNEL_HOUR:
            start = keys.str.rsplit("|", n=1).str[1].astype(float).to_numpy() * SECONDS_PER_HOUR
            span = SECONDS_PER_HOUR
        elif fam.key is KeyKind.DAY:
            start = keys.astype(float).to_numpy() * SECONDS_PER_DAY
            span = SECONDS_PER_DAY
        else:
            start = keys.astype(float).to_numpy() * SECONDS_PER_HOUR
            span = SECONDS_PER_HOUR
        expired[mask] = start + span <= horizon
    cv = family == "cv"
    if cv.any():
        kept_carts = long[(family == "ca") & ~expired]
        alive = pd.MultiIndex.from_arrays([kept_carts["customer_id"], kept_carts["key"]])
        prices = long[cv]
        has_cart = pd.MultiIndex.from_arrays([prices["customer_id"], prices["key"]]).isin(alive)
        expired[cv] = ~has_cart
    return expired


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
