"""The compact encoding of a customer's online state: one MessagePack map per customer.

The profile state (:mod:`features.state`) is a flat ``{"h:115": 9.0, "pd:20512": 1.0,
...}``; stored, it is grouped by family and its keys get short codes, so that the
field names are not repeated and numbers take their binary size::

    {"n": 150, "h": {115: 9, 116: 5}, "xh": {17268450: 1}, "g": {1: 12832871888},
     "b": {"Eldraso": 1112389513175.2004}, "_tz": "Europe/Paris", "_wm": 1767225600}

* unkeyed families (``n``, ``tv``...) are plain entries;
* keys that are canonical whole numbers (hours of week, days, months, numeric
  product ids) are MessagePack integers;
* channel keys are small integer codes (:data:`CHANNEL_CODES`), and a channel with
  a day or hour number (``email|491234``) one integer ``code << 24 | number``;
* whole-number values are integers (1 to 9 bytes), others IEEE doubles, exact;
* ``_tz``, ``_bd`` (static attributes), ``_wm`` (materialisation watermark), ``_mx``
  (newest event time) and ``_cp`` (last compaction) sit beside the families.

The Redis scripts read and write the same map with Redis' built-in ``cmsgpack``
(a family whose keys happen to be exactly ``1..n`` comes back as an array, read as
keys ``1..n``). Encoding then decoding gives back the same state, field for field
(tested with arbitrary keys and values). The codes never change meaning: a new
channel gets a new code, and a key that has none is stored as its text.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

import msgpack

from features.definitions import FAMILIES, KeyKind
from features.finalise import CustomerStatic, SplitState
from features.state import State

#: Channel codes in the stored keys. Append only: a stored code must keep its channel.
CHANNEL_CODES: dict[str, int] = {
    "email": 1,
    "sms": 2,
    "push": 3,
    "wallet": 4,
    "postal": 5,
    "web": 6,
    "app": 7,
    "store": 8,
    "social": 9,
    "call_centre": 10,
}
_CHANNEL_NAMES = {code: name for name, code in CHANNEL_CODES.items()}
#: Bits of a channel-day or channel-hour key's number (hours fit until the year 3884).
_NUMBER_BITS = 24
_NUMBER_MASK = (1 << _NUMBER_BITS) - 1
#: ``key % NUMBER_SPAN`` is the day or hour number of a channel-day or channel-hour key.
NUMBER_SPAN = 1 << _NUMBER_BITS
_CHANNEL_TIMED = (KeyKind.CHANNEL_DAY, KeyKind.CHANNEL_HOUR)
#: Reserved entries (static attributes and bookkeeping), beside the families.
RESERVED = ("_tz", "_bd", "_wm", "_mx", "_cp")
#: Field encodings kept in memory per process before the cache is reset.
FIELD_CACHE_SIZE = 200_000

Key = int | str
#: ``(op, family, key)`` of a field; ``key`` is ``False`` for an unkeyed family.
FieldCode = tuple[int, str, Key | bool]

_field_cache: dict[str, FieldCode] = {}


def _whole(text: str) -> bool:
    """True for the canonical text of a non-negative integer below 2**53 (``"0"``, ``"115"``)."""
    return text.isascii() and text.isdigit() and (text == "0" or text[0] != "0") and len(text) < 16


def encode_key(kind: KeyKind, key: str) -> Key:
    """The stored form of a field's key (see the module docstring)."""
    if kind is KeyKind.CHANNEL:
        return CHANNEL_CODES.get(key, key)
    if kind in _CHANNEL_TIMED:
        name, _, number = key.partition("|")
        code = CHANNEL_CODES.get(name)
        if code is not None and _whole(number) and int(number) <= _NUMBER_MASK:
            return code << _NUMBER_BITS | int(number)
        return key
    return int(key) if _whole(key) else key


def decode_key(kind: KeyKind | None, key: Any) -> str:
    """The field key of a stored key (the inverse of :func:`encode_key`)."""
    if not isinstance(key, int):
        return str(key)
    if kind is KeyKind.CHANNEL:
        return _CHANNEL_NAMES.get(key, str(key))
    if kind in _CHANNEL_TIMED:
        return f"{_CHANNEL_NAMES.get(key >> _NUMBER_BITS, '?')}|{key & _NUMBER_MASK}"
    return str(key)


def encode_field(field: str) -> FieldCode:
    """``(op, family, key)`` of a state field (cached)."""
    code = _field_cache.get(field)
    if code is None:
        name, _, key = field.partition(":")
        family = FAMILIES[name]
        stored: Key | bool = False if family.key is KeyKind.NONE else encode_key(family.key, key)
        code = (int(family.op), name, stored)
        if len(_field_cache) >= FIELD_CACHE_SIZE:
            _field_cache.clear()
        _field_cache[field] = code
    return code


def number(value: float) -> int | float:
    """A whole number as an integer (fewer bytes), any other as the float itself."""
    if value.is_integer() and abs(value) < 2**53:
        return int(value)
    return value


def pack(state: State, reserved: Mapping[str, Any]) -> bytes:
    """The stored form of ``state`` with the ``reserved`` entries (``_tz``, ``_wm``...)."""
    out: dict[Any, Any] = {}
    for field, value in state.items():
        _, family, key = encode_field(field)
        if key is False:
            out[family] = number(float(value))
        else:
            out.setdefault(family, {})[key] = number(float(value))
    out.update(reserved)
    return msgpack.packb(out)


def unpack(raw: bytes | None) -> dict[str, Any]:
    """The stored map (empty for a missing key; an empty table comes back as an array)."""
    if not raw:
        return {}
    stored = msgpack.unpackb(raw, strict_map_key=False)
    return stored if isinstance(stored, dict) else {}


def state_of(stored: Mapping[str, Any]) -> SplitState:
    """The profile state of a stored map: the flat state (``"pd:20512" -> 1.0``) held as
    its scalars and families, the form the stored map already has (no flat names built
    only to be split again by :func:`~features.finalise.build_profile`)."""
    scalars: dict[str, float] = {}
    keyed: dict[str, dict[str, float]] = {}
    for name, value in stored.items():
        if name[:1] == "_":
            continue
        if isinstance(value, dict):
            items: Any = value.items()
        elif isinstance(value, list):  # a table keyed exactly 1..n
            items = enumerate(value, 1)
        else:
            scalars[name] = float(value)
            continue
        family = FAMILIES.get(name)
        kind = None if family is None else family.key
        if kind is KeyKind.CHANNEL or kind in _CHANNEL_TIMED:
            entries = {decode_key(kind, key): float(v) for key, v in items}
        else:  # decode_key is str() for every other kind
            entries = {str(key): float(v) for key, v in items}
        if entries:
            keyed[name] = entries
    return SplitState(scalars, keyed)


def static_of(stored: Mapping[str, Any]) -> CustomerStatic:
    """The static attributes of a stored map."""
    bd, tz = stored.get("_bd"), stored.get("_tz")
    return CustomerStatic(
        timezone=tz or "UTC",
        birth_date=dt.date.fromisoformat(bd) if bd else None,
        zone_known=bool(tz),
    )


def static_entries(static: CustomerStatic | None) -> dict[str, str]:
    """The reserved entries of static attributes (none for ``None``)."""
    if static is None:
        return {}
    entries = {"_tz": static.timezone} if static.zone_known else {}
    if static.birth_date is not None:
        entries["_bd"] = static.birth_date.isoformat()
    return entries
