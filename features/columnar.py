"""Columnar state: the ops of many customers reduced with numpy, for batch builds
and point-in-time cuts.

The ops come from the one definition (:func:`features.definitions.event_ops`,
:func:`~features.definitions.customer_ops`); this module only changes how they
are combined. Every field (``family`` + key) gets an integer code and every
customer an owner code, so that combining ops is ``bincount`` or
``maximum.at`` over integers (:func:`reduce_ops`) instead of a pandas
``groupby`` over text, and a point-in-time cut is one ``searchsorted`` per
(row, field) (:func:`states_as_of`).

>>> ops = ColumnarOps.collect([(iter(()), np.zeros(0, dtype=np.int64))], n_owners=1)
>>> reduce_ops(ops).value.shape
(0,)
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from features.definitions import (
    FAMILIES,
    SECONDS_PER_DAY,
    Family,
    FamilyOps,
    KeyKind,
    Op,
    field_name,
    key_time_seconds,
)
from features.state import TIMESTAMP_VALUED, State, is_expired

#: Reduce densely (one cell per owner and key) up to this many cells (and 16 per op),
#: else hash the pairs.
DENSE_CELLS = 1 << 24

_FAMILY_INDEX = {name: i for i, name in enumerate(FAMILIES)}
_FAMILY_LIST: list[Family] = list(FAMILIES.values())


class _KeyCodes:
    """Key texts of one family and their codes (first seen, first coded)."""

    def __init__(self) -> None:
        self.code: dict[str, int] = {}
        self.texts: list[str] = []

    def encode(self, keys: object, n: int, keyed: bool) -> np.ndarray:
        """Codes of ``keys`` (``-1`` where missing), coded as their text (``str(key)``)."""
        if not keyed:
            if not self.texts:
                self.code[""] = 0
                self.texts.append("")
            return np.zeros(n, dtype=np.int64)
        local, uniques = pd.factorize(keys)  # type: ignore[call-overload]
        lookup = np.empty(len(uniques) + 1, dtype=np.int64)
        lookup[-1] = -1  # missing keys are dropped, as groupby drops them
        for i, key in enumerate(uniques):
            text = str(key)
            code = self.code.get(text)
            if code is None:
                code = self.code[text] = len(self.texts)
                self.texts.append(text)
            lookup[i] = code
        return lookup[np.asarray(local)]


@dataclass(frozen=True)
class FamilyColumns:
    """All ops of one family: owner code, key code, time and value per op."""

    family: Family
    owner: np.ndarray
    key: np.ndarray
    ts: np.ndarray
    value: np.ndarray
    key_texts: list[str]


@dataclass(frozen=True)
class ColumnarOps:
    """Ops of many customers, by family, in integer codes."""

    families: list[FamilyColumns]
    n_owners: int

    @classmethod
    def collect(
        cls,
        sources: Iterable[tuple[Iterable[FamilyOps], np.ndarray]],
        n_owners: int,
    ) -> ColumnarOps:
        """Code the ops of each ``(ops, owner_codes)`` source; ``owner_codes`` gives the
        owner (``0 <= code < n_owners``) of each row the ops refer to."""
        parts: dict[str, list[tuple[np.ndarray, ...]]] = {}
        coders: dict[str, _KeyCodes] = {}
        for ops, owner_of_row in sources:
            for fam_ops in ops:
                frame = fam_ops.frame
                if frame.empty:
                    continue
                fam = fam_ops.family
                coder = coders.setdefault(fam.name, _KeyCodes())
                keyed = fam.key is not KeyKind.NONE
                key = coder.encode(frame["key"], len(frame), keyed)
                owner = owner_of_row[frame["row"].to_numpy()]
                ts = frame["ts"].to_numpy(dtype=np.int64)
                value = frame["value"].to_numpy(dtype=float)
                kept = key >= 0
                if not kept.all():
                    owner, key, ts, value = owner[kept], key[kept], ts[kept], value[kept]
                parts.setdefault(fam.name, []).append((owner, key, ts, value))
        families = []
        for name in sorted(parts, key=_FAMILY_INDEX.__getitem__):
            owner, key, ts, value = (np.concatenate(c) for c in zip(*parts[name], strict=True))
            # keys coded in text order: a customer's fields come in the same order whatever
            # other customers' events were coded with them (a partitioned build equals one
            # build, sums and all)
            texts = coders[name].texts
            order = sorted(range(len(texts)), key=texts.__getitem__)
            recode = np.empty(len(texts), dtype=np.int64)
            recode[order] = np.arange(len(texts))
            families.append(
                FamilyColumns(
                    FAMILIES[name], owner, recode[key], ts, value, [texts[i] for i in order]
                )
            )
        return cls(families, n_owners)


@dataclass(frozen=True)
class ColumnarState:
    """Combined state: one row per owner and field, sorted by owner.

    ``field`` indexes ``names`` (``"pd:20512"``), ``families`` and ``keys``.
    """

    owner: np.ndarray
    field: np.ndarray
    value: np.ndarray
    names: np.ndarray
    families: np.ndarray
    keys: np.ndarray

    def states(self, owners: np.ndarray) -> dict[str, State]:
        """One flat state per owner that has any field, keyed by ``owners[code]``."""
        bounds = np.flatnonzero(np.diff(self.owner)) + 1
        starts = np.concatenate([[0], bounds]).tolist() if len(self.owner) else []
        ends = [*starts[1:], len(self.owner)] if starts else []
        names = self.names[self.field].tolist()
        values = self.value.tolist()
        ids = owners[self.owner[starts]].tolist() if starts else []
        return {
            cid: dict(zip(names[s:e], values[s:e], strict=True))
            for cid, s, e in zip(ids, starts, ends, strict=True)
        }

    def long(self, owners: np.ndarray) -> pd.DataFrame:
        """The long frame of :mod:`features.state` (customer_id, family, key, value)."""
        return pd.DataFrame(
            {
                "customer_id": pd.Series(owners[self.owner], dtype=object),
                "family": pd.Series(self.families[self.field], dtype=object),
                "key": pd.Series(self.keys[self.field], dtype=object),
                "value": self.value,
            }
        )

    def unexpired(self, as_of_seconds: float) -> ColumnarState:
        """Without the fields expired at ``as_of`` (:func:`features.state.is_expired`;
        a cart price goes with its cart entry, as in :func:`~features.state.trim_state`)."""
        names, families = self.names.tolist(), self.families.tolist()
        pairs = list(zip(names, families, strict=True))
        by_key = np.array(
            [f not in TIMESTAMP_VALUED and is_expired(n, 0.0, as_of_seconds) for n, f in pairs],
            dtype=bool,
        )
        horizon = np.array(
            [
                as_of_seconds - FAMILIES[f].retention_days * SECONDS_PER_DAY  # type: ignore[operator]
                if f in TIMESTAMP_VALUED
                else -np.inf
                for f in families
            ]
        )
        keep = ~by_key[self.field] & (self.value >= horizon[self.field])
        code = {n: i for i, n in enumerate(names)}
        cart_of = np.array(
            [
                code.get("ca:" + k, -1) if f == "cv" else -2
                for f, k in zip(families, self.keys.tolist(), strict=True)
            ],
            dtype=np.int64,
        )
        price = cart_of[self.field] != -2
        if price.any():
            n_fields = len(names)
            cart = keep & (self.families[self.field] == "ca")
            carts = np.sort(self.owner[cart] * n_fields + self.field[cart])
            wanted = self.owner[price] * n_fields + cart_of[self.field[price]]
            at = np.minimum(np.searchsorted(carts, wanted), max(len(carts) - 1, 0))
            found = carts[at] == wanted if len(carts) else np.zeros(len(wanted), dtype=bool)
            keep[price] = (cart_of[self.field[price]] >= 0) & found
        return dataclasses.replace(
            self, owner=self.owner[keep], field=self.field[keep], value=self.value[keep]
        )


class LazyStates(Mapping[str, State]):
    """The flat state of every owner of a combined state (:meth:`ColumnarState.states`),
    built on first use: a batch build holds the states for the online store, and a
    run that only reads profiles never pays for a dictionary per customer."""

    def __init__(self, combined: ColumnarState, owners: np.ndarray) -> None:
        self._combined: ColumnarState | None = combined
        self._owners = owners
        self._states: dict[str, State] | None = None

    def _built(self) -> dict[str, State]:
        if self._states is None:
            assert self._combined is not None
            self._states = self._combined.states(self._owners)
            self._combined = None
        return self._states

    def __getitem__(self, customer_id: str) -> State:
        return self._built()[customer_id]

    def __iter__(self) -> Iterator[str]:
        return iter(self._built())

    def __len__(self) -> int:
        return len(self._built())


def concat_states(parts: list[tuple[int, ColumnarState]]) -> ColumnarState:
    """One combined state of parts with distinct owners: ``(n_owners, state)`` each, the
    owners of a part numbered after those of the parts before it. Field codes are
    united by name; each owner keeps its fields in their order."""
    code: dict[str, int] = {}
    families: list[str] = []
    keys: list[str] = []
    owner, field, value = [], [], []
    offset = 0
    for n_owners, part in parts:
        recode = np.empty(len(part.names), dtype=np.int64)
        for i, (name, family, key) in enumerate(
            zip(part.names.tolist(), part.families.tolist(), part.keys.tolist(), strict=True)
        ):
            got = code.get(name)
            if got is None:
                got = code[name] = len(code)
                families.append(family)
                keys.append(key)
            recode[i] = got
        owner.append(part.owner + offset)
        field.append(recode[part.field])
        value.append(part.value)
        offset += n_owners
    empty = np.zeros(0, dtype=np.int64)
    return ColumnarState(
        np.concatenate([empty, *owner]),
        np.concatenate([empty, *field]),
        np.concatenate([np.zeros(0), *value]),
        np.array(list(code), dtype=object),
        np.array(families, dtype=object),
        np.array(keys, dtype=object),
    )


def _reduce(op: Op, cell: np.ndarray, value: np.ndarray, size: int) -> tuple[np.ndarray, ...]:
    """``(cells, values)``: ``value`` combined with ``op`` per ``cell``, cells ascending."""
    if size <= min(DENSE_CELLS, 16 * len(cell) + 4096):
        counts = np.bincount(cell, minlength=size)
        cells = np.flatnonzero(counts)
        index, n, pick = cell, size, cells
    else:
        index, uniques = pd.factorize(cell)
        pick = np.argsort(uniques)
        cells, n = uniques[pick], len(uniques)
    if op is Op.SUM:
        out = np.bincount(index, weights=value, minlength=n)
    else:
        out = np.full(n, -np.inf if op is Op.MAX else np.inf)
        (np.maximum if op is Op.MAX else np.minimum).at(out, index, value)
    return cells, out[pick]


def reduce_ops(ops: ColumnarOps) -> ColumnarState:
    """Combine ops per owner and field with each family's op."""
    owner_parts, field_parts, value_parts = [], [], []
    names: list[str] = []
    families: list[str] = []
    keys: list[str] = []
    for fc in ops.families:
        fam = fc.family
        nk = len(fc.key_texts)
        cells, combined = _reduce(fam.op, fc.owner * nk + fc.key, fc.value, ops.n_owners * nk)
        owner_parts.append(cells // nk)
        field_parts.append(cells % nk + len(names))
        value_parts.append(combined)
        names += [field_name(fam.name, k) for k in fc.key_texts]
        families += [fam.name] * nk
        keys += fc.key_texts
    if not owner_parts:
        empty = np.zeros(0, dtype=np.int64)
        none = np.zeros(0, dtype=object)
        return ColumnarState(empty, empty, np.zeros(0), none, none, none)
    owner = np.concatenate(owner_parts)
    order = np.argsort(owner, kind="stable")  # merges the per-family runs
    return ColumnarState(
        owner[order],
        np.concatenate(field_parts)[order],
        np.concatenate(value_parts)[order],
        np.array(names, dtype=object),
        np.array(families, dtype=object),
        np.array(keys, dtype=object),
    )


def states_as_of(
    ops: ColumnarOps, row_owner: np.ndarray, row_cut: np.ndarray
) -> Iterator[tuple[int, State]]:
    """``(row, state)`` of each row that has any field: the state of owner
    ``row_owner[i]`` from the ops with time strictly before ``row_cut[i]``
    (whole epoch seconds), rows in order (:func:`cut_fields` as flat states).
    """
    cut = cut_fields(ops, row_owner, row_cut)
    pair_names = cut.names[cut.field].tolist()
    pair_values = cut.value.tolist()
    bounds = np.flatnonzero(np.diff(cut.row)) + 1
    starts = [0, *bounds.tolist()] if len(cut.row) else []
    ends = [*starts[1:], len(cut.row)]
    rows = cut.row[starts].tolist() if starts else []
    for r, s, e in zip(rows, starts, ends, strict=True):
        yield r, dict(zip(pair_names[s:e], pair_values[s:e], strict=True))


@dataclass(frozen=True)
class CutFields:
    """Every (row, field) value of a point-in-time cut, sorted by row then field code.

    ``field`` indexes ``names`` (``"pd:20512"``), ``families`` (``"pd"``) and
    ``keys`` (``"20512"``).
    """

    row: np.ndarray
    field: np.ndarray
    value: np.ndarray
    names: np.ndarray
    families: np.ndarray
    keys: np.ndarray


def cut_fields(ops: ColumnarOps, row_owner: np.ndarray, row_cut: np.ndarray) -> CutFields:
    """The state of owner ``row_owner[i]`` from the ops with time strictly before
    ``row_cut[i]`` (whole epoch seconds), for every row at once, as columns.

    Each field's ops are cumulated in time order (running sum, maximum or
    minimum), sorted by (owner, field, time), and each row takes, for every
    field of its owner, the last cumulated value before its cut (one
    ``searchsorted``). Fields expired at the row's cut are left out.
    """
    owner_parts, field_parts, ts_parts, value_parts = [], [], [], []
    names: list[str] = []
    families: list[str] = []
    keys: list[str] = []
    lifetimes: list[tuple[np.ndarray, np.ndarray]] = []
    for fc in ops.families:
        nk = len(fc.key_texts)
        order = np.argsort(fc.ts, kind="stable")
        grouped = pd.Series(fc.value[order]).groupby(fc.owner[order] * nk + fc.key[order])
        if fc.family.op is Op.SUM:
            running = grouped.cumsum()
        else:
            running = grouped.cummax() if fc.family.op is Op.MAX else grouped.cummin()
        value_parts.append(running.to_numpy(dtype=float))
        owner_parts.append(fc.owner[order])
        field_parts.append(fc.key[order] + len(names))
        ts_parts.append(fc.ts[order])
        names += [field_name(fc.family.name, k) for k in fc.key_texts]
        families += [fc.family.name] * nk
        keys += fc.key_texts
        lifetimes.append(_lifetimes(fc.family, fc.key_texts))
    if not owner_parts:
        empty = np.zeros(0, dtype=np.int64)
        none = np.zeros(0, dtype=object)
        return CutFields(empty, empty, np.zeros(0), none, none, none)
    key_end, value_end = (np.concatenate(x) for x in zip(*lifetimes, strict=True))
    owner, field, ts, value = (
        np.concatenate(p) for p in (owner_parts, field_parts, ts_parts, value_parts)
    )
    order = np.lexsort((ts, field, owner))  # stable: same-second ops keep their running order
    owner, field, ts, value = owner[order], field[order], ts[order], value[order]
    new_group = np.r_[True, (owner[1:] != owner[:-1]) | (field[1:] != field[:-1])]
    group = np.cumsum(new_group) - 1  # dense (owner, field) rank, ascending
    first = np.flatnonzero(new_group)

    # every (row, field of the row's owner) pair
    first_owner = owner[first]
    start = np.searchsorted(first_owner, row_owner, side="left")
    count = np.searchsorted(first_owner, row_owner, side="right") - start
    pair_row = np.repeat(np.arange(len(row_owner)), count)
    within = np.arange(int(count.sum())) - np.repeat(np.cumsum(count) - count, count)
    pair_group = np.repeat(start, count) + within

    # the last op of the pair's field strictly before the row's cut
    t0 = int(ts.min())
    span = int(ts.max()) - t0 + 2
    cut = np.clip(np.asarray(row_cut, dtype=np.int64) - t0, 0, span - 1)
    last = np.searchsorted(group * span + (ts - t0), pair_group * span + cut[pair_row]) - 1
    hit = (last >= 0) & (group[np.maximum(last, 0)] == pair_group)
    pair_row, last = pair_row[hit], last[hit]
    # fields expired at the row's cut are never read: leave them out (as a batch build does)
    row_cut = np.asarray(row_cut, dtype=float)[pair_row]
    alive = (key_end[field[last]] > row_cut) & (value[last] + value_end[field[last]] >= row_cut)
    pair_row, last = pair_row[alive], last[alive]
    return CutFields(
        pair_row,
        field[last],
        value[last],
        np.array(names, dtype=object),
        np.array(families, dtype=object),
        np.array(keys, dtype=object),
    )


def _lifetimes(family: Family, key_texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Per key of ``family``: the moment from which the field is expired whatever its
    value (``inf`` if never), and how long after its value (a time) it lives (``inf``
    if that does not apply); :func:`features.state.is_expired` in arrays."""
    n = len(key_texts)
    key_end = np.full(n, np.inf)
    value_end = np.full(n, np.inf)
    if family.retention_days is None or family.name == "cv":
        return key_end, value_end
    retention = family.retention_days * SECONDS_PER_DAY
    if family.name in TIMESTAMP_VALUED:
        value_end[:] = retention
        return key_end, value_end
    span = SECONDS_PER_DAY if family.key in (KeyKind.DAY, KeyKind.CHANNEL_DAY) else 3600
    for i, key in enumerate(key_texts):
        when = key_time_seconds(family, key)
        if when is not None:
            key_end[i] = when + span + retention
    return key_end, value_end
