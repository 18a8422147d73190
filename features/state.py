"""Profile state: ops combined per customer and field, in batch and at points in time.

A customer's state is a flat ``dict[str, float]`` (``{"np": 3.0, "pd:20512": 1.0,
...}``): exactly what the online store keeps in one Redis hash. Batch state is
the same thing for many customers at once, as a long frame with columns
``customer_id``, ``field``, ``value``.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import pandas as pd

from features.definitions import (
    FAMILIES,
    SECONDS_PER_DAY,
    FamilyOps,
    KeyKind,
    Op,
    key_time_seconds,
)

_AGG = {Op.SUM: "sum", Op.MAX: "max", Op.MIN: "min"}

#: MAX families whose value is itself a timestamp (retention applies to the value).
_TIMESTAMP_VALUED = {"ca", "cr", "cb", "v", "vc"}

State = dict[str, float]


def field_names(family: str, keys: pd.Series) -> pd.Series:
    fam = FAMILIES[family]
    if fam.key is KeyKind.NONE:
        return pd.Series(family, index=keys.index, dtype=object)
    return family + ":" + keys.astype(str)


def aggregate(ops: Iterable[FamilyOps], owners: np.ndarray) -> pd.DataFrame:
    """Combine ops into state: one row per customer and field.

    ``owners[row]`` is the customer id of the event (or customer) at ``row``.
    """
    parts: list[pd.DataFrame] = []
    for fam_ops in ops:
        frame = fam_ops.frame
        if frame.empty:
            continue
        grouped = (
            pd.DataFrame(
                {
                    "customer_id": owners[frame["row"].to_numpy()],
                    "key": frame["key"].to_numpy(),
                    "value": frame["value"].to_numpy(dtype=float),
                }
            )
            .groupby(["customer_id", "key"], sort=False)["value"]
            .agg(_AGG[fam_ops.family.op])
            .reset_index()
        )
        grouped["field"] = field_names(fam_ops.family.name, grouped["key"])
        parts.append(grouped[["customer_id", "field", "value"]])
    if not parts:
        return pd.DataFrame({"customer_id": [], "field": [], "value": []})
    return combine(pd.concat(parts, ignore_index=True))


def combine(long: pd.DataFrame) -> pd.DataFrame:
    """Merge rows for the same customer and field with their family's op."""
    family = long["field"].str.split(":", n=1).str[0]
    out = []
    for op in Op:
        names = [f.name for f in FAMILIES.values() if f.op is op]
        part = long[family.isin(names).to_numpy()]
        if part.empty:
            continue
        out.append(
            part.groupby(["customer_id", "field"], sort=False)["value"].agg(_AGG[op]).reset_index()
        )
    return pd.concat(out, ignore_index=True) if out else long


def is_expired(field: str, value: float, as_of_seconds: float) -> bool:
    """True when ``field`` is older than its family's retention at ``as_of``.

    An expired field is never read by the profile, so dropping it saves memory
    and changes nothing.
    """
    family_name, _, key = field.partition(":")
    family = FAMILIES[family_name]
    if family.retention_days is None:
        return False
    horizon = as_of_seconds - family.retention_days * SECONDS_PER_DAY
    if family_name in _TIMESTAMP_VALUED:
        return value < horizon
    if family_name == "cv":
        return False  # dropped with its cart entry, see trim_state
    when = key_time_seconds(family, key)
    # day and hour buckets are kept while any part of them is inside the window
    span = SECONDS_PER_DAY if family.key in (KeyKind.DAY, KeyKind.CHANNEL_DAY) else 3600
    return when is not None and when + span <= horizon


def trim_state(state: State, as_of_seconds: float) -> State:
    """``state`` without expired fields."""
    kept = {f: v for f, v in state.items() if not is_expired(f, v, as_of_seconds)}
    for f in [f for f in kept if f.startswith("cv:")]:
        if "ca:" + f[3:] not in kept:
            del kept[f]
    return kept


def states_by_customer(long: pd.DataFrame) -> dict[str, State]:
    """The long state frame as one dict per customer."""
    result: dict[str, State] = {}
    if long.empty:
        return result
    ordered = long.sort_values("customer_id", kind="stable")
    ids = ordered["customer_id"].to_numpy(dtype=object)
    fields = ordered["field"].to_numpy(dtype=object)
    values = ordered["value"].to_numpy(dtype=float)
    bounds = np.flatnonzero(ids[1:] != ids[:-1]) + 1
    starts = np.concatenate([[0], bounds])
    ends = np.concatenate([bounds, [len(ids)]])
    for s, e in zip(starts, ends, strict=True):
        result[ids[s]] = dict(zip(fields[s:e].tolist(), values[s:e].tolist(), strict=True))
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
