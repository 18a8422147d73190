"""Profiles as table rows (Parquet, CSV, Spark) and back.

Scalars stay scalars; lists stay lists; nested values (affinities, engagement,
contact history, consents) are JSON text, so that every engine can store them.
``row_to_profile(profile_to_row(p)) == p``.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import fields
from enum import StrEnum
from typing import Any, TypeVar

import numpy as np
import orjson
import pandas as pd

from nba.channels import CONSENT_CHANNELS, Channel
from nba.profile import (
    ChannelEngagement,
    ContactHistory,
    CustomerProfile,
    JourneyPhase,
    LifecycleState,
)

_JSON_FIELDS = ("category_affinity", "brand_affinity", "engagement", "consents", "contacts")
_TUPLE_FIELDS = (
    "activity_by_hour",
    "cart_items",
    "browsed_products",
    "browsed_categories",
    "last_purchased_products",
    "returned_products",
    "seasonal_months",
)
#: Problems :func:`profiles_from_frame` lists before it stops counting.
MAX_PROBLEMS = 20
_T = TypeVar("_T")
#: Flat convenience columns, derived, ignored when reading back.
DERIVED_COLUMNS = tuple(
    [f"consent_{c.value}" for c in CONSENT_CHANNELS]
    + [f"{c.value}_open_rate" for c in CONSENT_CHANNELS]
    + [f"{c.value}_click_rate" for c in CONSENT_CHANNELS]
)


def _stamp(value: dt.datetime) -> str:
    return value.astimezone(dt.UTC).isoformat()


def _contacts_json(c: ContactHistory) -> str:
    return json.dumps(
        {
            "last_contact_at": {k.value: _stamp(v) for k, v in c.last_contact_at.items()},
            "contacts_1d": {k.value: v for k, v in c.contacts_1d.items()},
            "contacts_7d": {k.value: v for k, v in c.contacts_7d.items()},
            "contacts_30d": {k.value: v for k, v in c.contacts_30d.items()},
            "last_refusal_at": {k.value: _stamp(v) for k, v in c.last_refusal_at.items()},
            "contact_times": {k.value: [_stamp(t) for t in v] for k, v in c.contact_times.items()},
        },
        sort_keys=True,
    )


def profile_to_row(profile: CustomerProfile) -> dict[str, Any]:
    """One flat row for ``profile``."""
    row: dict[str, Any] = {}
    for f in fields(CustomerProfile):
        value = getattr(profile, f.name)
        if f.name == "engagement":
            value = json.dumps({k.value: vars(v) for k, v in value.items()}, sort_keys=True)
        elif f.name == "consents":
            value = json.dumps({k.value: v for k, v in value.items()}, sort_keys=True)
        elif f.name == "contacts":
            value = _contacts_json(value)
        elif f.name in _JSON_FIELDS:
            value = json.dumps(value, sort_keys=True)
        elif f.name in _TUPLE_FIELDS:
            value = list(value)
        elif isinstance(value, LifecycleState | JourneyPhase):
            value = value.value
        row[f.name] = value
    for ch in CONSENT_CHANNELS:
        row[f"consent_{ch.value}"] = profile.consented(ch)
        eng = profile.engagement.get(ch, ChannelEngagement())
        row[f"{ch.value}_open_rate"] = eng.open_rate
        row[f"{ch.value}_click_rate"] = eng.click_rate
    return row


def profiles_frame(profiles: Iterable[CustomerProfile]) -> pd.DataFrame:
    """A frame with one row per profile."""
    return pd.DataFrame([profile_to_row(p) for p in profiles])


def _none(value: Any) -> Any:
    if value is None:
        return None
    try:
        if pd.isna(value):
            return None
    except (TypeError, ValueError):
        pass
    return value


class ProfileRowsError(ValueError):
    """Rows that are not profiles; ``problems`` name the row (from 1), the customer and
    the field of each, e.g. ``row 2 (customer 'C2'), field 'consents': not a JSON object``."""

    def __init__(self, problems: Sequence[str]) -> None:
        self.problems = tuple(problems)
        super().__init__("; ".join(self.problems))


_CHANNELS = {c.value: c for c in Channel}


def _channel_map(convert: Callable[[Any], Any]) -> Callable[[Any], dict[Channel, Any]]:
    def read(value: Any) -> dict[Channel, Any]:
        return {_CHANNELS.get(k) or Channel(k): convert(v) for k, v in value.items()}

    return read


def _made(cls: type[_T], values: dict[str, Any]) -> _T:
    """``cls(**values)`` for a frozen dataclass without ``__post_init__`` or slots whose
    fields ``values`` gives, all of them in their order: the instance's ``__dict__`` set
    at once (its ``__init__`` sets the fields one by one through ``object.__setattr__``,
    about twice the time for a profile's fifty fields; a batch builds thousands)."""
    made = object.__new__(cls)
    object.__setattr__(made, "__dict__", values)
    return made


_ENGAGEMENT_FIELDS = tuple(f.name for f in fields(ChannelEngagement))
_ENGAGEMENT_KEYS = frozenset(_ENGAGEMENT_FIELDS)


def _engagement(raw: Any) -> ChannelEngagement:
    if raw.keys() != _ENGAGEMENT_KEYS:  # a default, or a key that is no field (refused)
        return ChannelEngagement(**raw)
    return _made(ChannelEngagement, {name: raw[name] for name in _ENGAGEMENT_FIELDS})


_times = _channel_map(dt.datetime.fromisoformat)
_counts = _channel_map(int)
_moments = _channel_map(lambda texts: tuple(map(dt.datetime.fromisoformat, texts)))


def _contacts(raw: Mapping[str, Any]) -> ContactHistory:
    return _made(
        ContactHistory,
        {
            "last_contact_at": _times(raw["last_contact_at"]),
            "contacts_1d": _counts(raw["contacts_1d"]),
            "contacts_7d": _counts(raw["contacts_7d"]),
            "contacts_30d": _counts(raw["contacts_30d"]),
            "last_refusal_at": _times(raw["last_refusal_at"]),
            # absent from tables written before contacts kept their times
            "contact_times": _moments(raw.get("contact_times", {})),
        },
    )


def _json_object(text: Any) -> dict[str, Any]:
    try:
        value = orjson.loads(text)
    except (TypeError, orjson.JSONDecodeError):
        try:  # what orjson refuses and json reads: NaN and Infinity, which json.dumps writes
            value = json.loads(text)
        except (TypeError, ValueError) as error:
            raise ValueError(f"not a JSON object ({error})") from None
    if not isinstance(value, dict):
        raise ValueError(f"not a JSON object ({type(value).__name__})")
    return value


def _enum(kind: type[StrEnum]) -> Callable[[Any], StrEnum]:
    allowed = sorted(member.value for member in kind)

    def read(value: Any) -> StrEnum:
        try:
            return kind(value)
        except ValueError:
            raise ValueError(f"{value!r} is not one of {allowed}") from None

    return read


#: How each JSON text field becomes its profile value (after ``json.loads``).
_FROM_JSON: dict[str, Callable[[dict[str, Any]], Any]] = {
    "engagement": _channel_map(_engagement),
    "consents": _channel_map(bool),
    "contacts": _contacts,
    "category_affinity": dict,
    "brand_affinity": dict,
}
_ITEM_TYPES: dict[str, type] = {"seasonal_months": int, "activity_by_hour": float}
_ENUMS: dict[str, type[StrEnum]] = {
    "lifecycle_state": LifecycleState,
    "journey_phase": JourneyPhase,
}
_INT_TYPES = ("int", "int | None")


def _as_of(value: Any) -> dt.datetime | None:
    return None if _none(value) is None else pd.Timestamp(value).to_pydatetime()


def _scalar(kind: str) -> Callable[[Any], Any]:
    def read(value: Any) -> Any:
        value = _none(value)
        if isinstance(value, float) and kind in _INT_TYPES:
            return int(value)
        if hasattr(value, "item"):
            return value.item()
        return value

    return read


def _sequence(name: str) -> Callable[[Any], tuple[Any, ...]]:
    item = _ITEM_TYPES.get(name, str)

    def read(value: Any) -> tuple[Any, ...]:
        if value is None:
            return ()
        if isinstance(value, np.ndarray):
            if not len(value):
                return ()
            if item is not str:  # no copy when the array already holds that type
                return tuple(value.astype(item, copy=False).tolist())
            value = value.tolist()
        return tuple(map(item, value))

    return read


def _converter(name: str, kind: str) -> Callable[[Any], Any]:
    """How the cell of field ``name`` (of type ``kind``) becomes its profile value."""
    if name in _FROM_JSON:
        parse = _FROM_JSON[name]
        return lambda text: parse(_json_object(text))
    if name in _TUPLE_FIELDS:
        return _sequence(name)
    if name in _ENUMS:
        return _enum(_ENUMS[name])
    if name == "as_of":
        return _as_of
    return _scalar(kind)


_PROFILE_FIELDS = tuple(f.name for f in fields(CustomerProfile))
_CONVERTERS: dict[str, Callable[[Any], Any]] = {
    f.name: _converter(f.name, str(f.type)) for f in fields(CustomerProfile)
}
#: Type of each field converted by :func:`_scalar` (numeric columns take a faster path).
_SCALAR_KINDS = {
    f.name: str(f.type)
    for f in fields(CustomerProfile)
    if f.name not in _FROM_JSON
    and f.name not in _TUPLE_FIELDS
    and f.name not in _ENUMS
    and f.name != "as_of"
}
#: Fields whose cells repeat across customers: each distinct cell is converted once.
_SHARED_CELLS = frozenset(
    {*_FROM_JSON, *_ENUMS, "as_of", "timezone", "loyalty_tier", "preferred_channel"}
)


#: Fields a table written before them lacks, read from the field that stood for them: the
#: order counts of a profile table written before orders were counted are its purchase
#: lines, as every reader took them then (not 0: no order, a first-order offer for all).
_READ_AS: dict[str, str] = {"orders_total": "purchases_total", "orders_90d": "purchases_90d"}


def row_to_profile(row: Mapping[str, Any]) -> CustomerProfile:
    """The profile stored in ``row`` (derived columns are ignored)."""
    values = {name: convert(row[name]) for name, convert in _CONVERTERS.items() if name in row}
    for name, older in _READ_AS.items():
        if name not in values and older in values:
            values[name] = values[older]
    return CustomerProfile(**values)


def profiles_from_frame(frame: pd.DataFrame) -> list[CustomerProfile]:
    """The profiles of a frame of profile rows, column by column: what
    ``[row_to_profile(r) for r in frame.to_dict("records")]`` gives, several times faster.

    Each distinct JSON text, enum, zone or moment is converted once and its value
    shared by the profiles that hold it (profiles are values: nothing mutates
    them). Raises :class:`ProfileRowsError` naming the row, customer and field of
    every cell that cannot be read (the first :data:`MAX_PROBLEMS`).

    >>> frame = profiles_frame([CustomerProfile("C1", consents={Channel.EMAIL: True})])
    >>> profiles_from_frame(frame)[0].consents
    {<Channel.EMAIL: 'email'>: True}
    >>> try:
    ...     profiles_from_frame(frame.assign(consents="[1]"))
    ... except ProfileRowsError as error:
    ...     print(error.problems)
    ("row 1 (customer 'C1'), field 'consents': not a JSON object (list)",)
    """
    ids = frame["customer_id"].tolist() if "customer_id" in frame.columns else []
    problems: list[str] = []
    columns: dict[str, list[Any]] = {}
    for name, convert in _CONVERTERS.items():
        if name not in frame.columns:
            continue
        column = frame[name]
        if name in _SCALAR_KINDS and column.dtype.kind in "biuf":
            columns[name] = _numbers(column.to_numpy(), _SCALAR_KINDS[name] in _INT_TYPES)
        elif name in _ITEM_TYPES and (stacked := _stacked(column)) is not None:
            columns[name] = stacked
        elif name == "as_of" and column.dtype.kind == "M":
            # a moment column (one moment for a whole audience, mostly): each distinct
            # moment converted once, the rows given theirs by code (NaT: -1, None)
            codes, moments = pd.factorize(column)
            converted = [_as_of(moment) for moment in moments]
            columns[name] = [None if c < 0 else converted[c] for c in codes.tolist()]
        else:
            columns[name] = _convert_column(
                name, column.tolist(), convert, name in _SHARED_CELLS, ids, problems
            )
    if problems:
        raise ProfileRowsError(problems)
    for name, older in _READ_AS.items():
        if name not in columns and older in columns:
            columns[name] = columns[older]
    names = list(columns)
    if tuple(names) == _PROFILE_FIELDS:  # every field, in order (a file of this version)
        return [
            _made(CustomerProfile, dict(zip(names, cells, strict=True)))
            for cells in zip(*columns.values(), strict=True)
        ]
    return [
        CustomerProfile(**dict(zip(names, cells, strict=True)))
        for cells in zip(*columns.values(), strict=True)
    ]


def _stacked(column: pd.Series) -> list[tuple[Any, ...]] | None:
    """A list column of numbers (``activity_by_hour``: 168 a customer, most of them 0)
    converted as one array when every cell is a one-dimensional array of one type, of
    one length or empty: what :func:`_sequence` gives cell by cell, each zero (``+0``,
    of the column's item type) the same object. A batch worker then allocates, and the
    kernel maps, a fraction of the memory (154 of 168 hours are 0 in the demo's
    profiles: 3.7 kB a customer). ``None``: convert the column cell by cell."""
    cells = column.tolist()
    full = [cell for cell in cells if type(cell) is np.ndarray and len(cell)]
    if not full:
        return None
    shape, dtype = full[0].shape, full[0].dtype
    if len(shape) != 1 or not all(
        type(cell) is np.ndarray
        and cell.dtype == dtype
        and (cell.shape == shape or cell.shape == (0,))
        for cell in cells
    ):
        return None
    item = _ITEM_TYPES[str(column.name)]
    table: np.ndarray = np.stack(full).astype(item, copy=False)
    zero = item(0)
    # +0 only (``-0.0 == 0`` too, and keeps its sign); NaN is no zero
    shared = (table == 0) & ~np.signbit(table)
    rows: list[list[Any]] = [[zero] * shape[0] for _ in full]
    where, hour = np.nonzero(~shared)
    for row, at, value in zip(
        where.tolist(), hour.tolist(), table[where, hour].tolist(), strict=True
    ):
        rows[row][at] = value
    made = iter(map(tuple, rows))
    return [next(made) if len(cell) else () for cell in cells]


def _numbers(values: np.ndarray, integers: bool) -> list[Any]:
    """A numeric column's cells as Python numbers, NaN as None (what :func:`_scalar` gives)."""
    cells = values.tolist()
    if values.dtype.kind != "f":
        return cells
    missing = np.isnan(values)
    if integers:
        cells = (
            values.astype(np.int64, copy=False).tolist()
            if not missing.any()
            else [None if m else int(v) for v, m in zip(cells, missing.tolist(), strict=True)]
        )
        return cells
    if missing.any():
        for position in np.flatnonzero(missing).tolist():
            cells[position] = None
    return cells


def _convert_column(
    name: str,
    cells: list[Any],
    convert: Callable[[Any], Any],
    shared: bool,
    ids: list[Any],
    problems: list[str],
) -> list[Any]:
    seen: dict[Any, Any] = {}
    out: list[Any] = []
    for position, cell in enumerate(cells):
        if shared:
            try:
                out.append(seen[cell])
                continue
            except (KeyError, TypeError):  # not seen yet, or not hashable (a list)
                pass
        try:
            value = convert(cell)
        except (KeyError, TypeError, ValueError) as error:
            if len(problems) < MAX_PROBLEMS:
                customer = ids[position] if position < len(ids) else None
                detail = f"missing key {error}" if isinstance(error, KeyError) else str(error)
                problems.append(
                    f"row {position + 1} (customer {customer!r}), field {name!r}: {detail}"
                )
            value = None
        if shared and isinstance(cell, str | float | pd.Timestamp):
            seen[cell] = value
        out.append(value)
    return out
