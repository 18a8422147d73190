"""The compact encoding of a customer's online state: one MessagePack map per customer.

The profile state (:mod:`features.state`) is a flat ``{"h:115": 9.0, "pd:20512": 1.0,
...}``; stored, it is grouped by family, and families, keys and numbers take their
smallest binary form, so that no field name is repeated::

    {0: 150, 27: {115: 9, 116: 5}, 36: {17268450: 1}, 41: {1: 12832871888},
     26: {"Eldraso": 1112389513175.2004}, -1: 5, -3: 1767225600}

* a family is its one-byte code (:data:`FAMILY_CODES`), the entries beside the
  families a negative one-byte code (:data:`RESERVED_CODES`): ``_tz``, ``_bd``,
  ``_rg`` (static attributes: ``_rg`` is 1 for a customer an ``identify`` registered
  with neither a zone nor a birthday), ``_wm`` (materialisation watermark), ``_mx``
  (newest event time), ``_cp`` (last compaction) and ``_e`` (recent event ids, see
  below);
* unkeyed families (``n``, ``tv``...) are plain entries;
* keys that are canonical whole numbers (hours of week, days, months, numeric
  product ids) are MessagePack integers;
* channel keys are small integer codes (:data:`CHANNEL_CODES`), and a channel with
  a day or hour number (``email|491234``) one integer ``code << 24 | number``;
* whole-number values are integers (1 to 9 bytes), others IEEE doubles, exact;
* ``_tz`` is a common zone's code (:data:`ZONE_CODES`), any other zone its name; ``_bd``
  the birth date's day number (days since 1970-01-01);
* ``_e`` maps the :func:`event_hash` of each recent event id to its event time:
  the de-duplication of the replay window, inside the state (no key of its own).

Layout 2 (before these codes) spelt families and reserved entries as their names
(``"h"``, ``"_tz"``), the birth date as ISO text, and kept event ids in a sorted set
of their own; :func:`state_of` and :func:`static_of` read both spellings, and the
store converts a layout-2 prefix on first use
(:meth:`~features.online.redis_store.RedisOnlineStore.migrate`).

The Redis scripts read and write the same map with Redis' built-in ``cmsgpack``
(a table whose keys happen to be exactly ``1..n`` comes back as an array, read as
keys ``1..n``). Encoding then decoding gives back the same state, field for field
(tested with arbitrary keys and values). The codes never change meaning: a new
family or channel gets a new code, and a key that has none is stored as its text.
"""

from __future__ import annotations

import datetime as dt
import hashlib
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
#: Family codes in the stored map. Append only: a stored code must keep its family.
FAMILY_CODES: dict[str, int] = {
    "n": 0, "t0": 1, "su": 2, "tv": 3, "tp": 4, "tf": 5, "tc": 6, "td": 7, "cc": 8,
    "cl": 9, "co": 10, "tx": 11, "rt": 12, "rw": 13, "ra": 14, "np": 15, "rv": 16,
    "pp": 17, "pn": 18, "pd": 19, "rd": 20, "pq": 21, "pm": 22, "ad": 23, "am": 24,
    "c": 25, "b": 26, "h": 27, "es": 28, "ed": 29, "eo": 30, "ek": 31, "kd": 32,
    "wd": 33, "wm": 34, "wc": 35, "xh": 36, "xm": 37, "xd": 38, "xl": 39, "xr": 40,
    "g": 41, "lt": 42, "lm": 43, "pc": 44, "ph": 45, "ca": 46, "cr": 47, "cb": 48,
    "cv": 49, "v": 50, "vc": 51, "vm": 52, "vs": 53, "dv": 54, "bp": 55,
    "ol": 56, "lx": 57,
}  # fmt: skip
#: Codes of the entries beside the families (negative: one byte each, never a family's).
#: Append only: a stored code must keep its entry.
RESERVED_CODES: dict[str, int] = {
    "_tz": -1, "_bd": -2, "_wm": -3, "_mx": -4, "_cp": -5, "_e": -6, "_rg": -7,
}  # fmt: skip
_FAMILY_NAMES = {code: name for name, code in FAMILY_CODES.items()}
#: Codes of common time zones in ``_tz`` (one byte instead of ~14; any other zone is stored
#: as its name). Append only: a stored code must keep its zone.
ZONE_CODES: dict[str, int] = {
    name: code
    for code, name in enumerate(
        (
            "UTC", "Europe/London", "Europe/Dublin", "Europe/Lisbon", "Europe/Paris",
            "Europe/Brussels", "Europe/Amsterdam", "Europe/Luxembourg", "Europe/Berlin",
            "Europe/Zurich", "Europe/Vienna", "Europe/Rome", "Europe/Madrid",
            "Europe/Copenhagen", "Europe/Oslo", "Europe/Stockholm", "Europe/Helsinki",
            "Europe/Warsaw", "Europe/Prague", "Europe/Budapest", "Europe/Bucharest",
            "Europe/Athens", "Europe/Istanbul", "Europe/Kyiv", "Europe/Moscow",
            "Atlantic/Canary", "Africa/Casablanca", "Africa/Lagos", "Africa/Cairo",
            "Africa/Johannesburg", "Africa/Nairobi", "Asia/Dubai", "Asia/Riyadh",
            "Asia/Jerusalem", "Asia/Karachi", "Asia/Kolkata", "Asia/Dhaka", "Asia/Bangkok",
            "Asia/Jakarta", "Asia/Singapore", "Asia/Kuala_Lumpur", "Asia/Manila",
            "Asia/Hong_Kong", "Asia/Shanghai", "Asia/Taipei", "Asia/Seoul", "Asia/Tokyo",
            "Australia/Perth", "Australia/Adelaide", "Australia/Brisbane",
            "Australia/Sydney", "Australia/Melbourne", "Pacific/Auckland",
            "Pacific/Honolulu", "America/Anchorage", "America/Los_Angeles",
            "America/Vancouver", "America/Phoenix", "America/Denver", "America/Chicago",
            "America/Mexico_City", "America/New_York", "America/Toronto",
            "America/Halifax", "America/Bogota", "America/Lima", "America/Santiago",
            "America/Caracas", "America/Sao_Paulo", "America/Argentina/Buenos_Aires",
        ),
        1,
    )
}  # fmt: skip
_ZONE_NAMES = {code: name for name, code in ZONE_CODES.items()}
#: Bits of an event id's hash in ``_e`` (a Lua number holds integers below 2**53 exactly).
EVENT_HASH_BITS = 52
#: Bits of a channel-day or channel-hour key's number (hours fit until the year 3884).
_NUMBER_BITS = 24
_NUMBER_MASK = (1 << _NUMBER_BITS) - 1
#: ``key % NUMBER_SPAN`` is the day or hour number of a channel-day or channel-hour key.
NUMBER_SPAN = 1 << _NUMBER_BITS
_CHANNEL_TIMED = (KeyKind.CHANNEL_DAY, KeyKind.CHANNEL_HOUR)
#: Reserved entries (static attributes and bookkeeping), beside the families.
RESERVED = tuple(RESERVED_CODES)
#: Field encodings kept in memory per process before the cache is reset.
FIELD_CACHE_SIZE = 200_000

Key = int | str
#: ``(op, family code, key)`` of a field; ``key`` is ``False`` for an unkeyed family.
FieldCode = tuple[int, int, Key | bool]

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


def event_hash(event_id: str) -> int:
    """The stored form of an event id in ``_e``: the first 52 bits of its SHA-1 (the
    Redis scripts compute the same with ``redis.sha1hex``). Two ids of one customer's
    replay window share a hash with probability ``k / 2**52`` per event for ``k`` ids
    held (``k`` = 13 at the 90th percentile: 3e-15, one false duplicate in ~3e14 events).

    >>> event_hash("E000062395") == int(hashlib.sha1(b"E000062395").hexdigest()[:13], 16)
    True
    """
    digest = hashlib.sha1(event_id.encode(), usedforsecurity=False).hexdigest()
    return int(digest[: EVENT_HASH_BITS // 4], 16)


def encode_field(field: str) -> FieldCode:
    """``(op, family code, key)`` of a state field (cached)."""
    code = _field_cache.get(field)
    if code is None:
        name, _, key = field.partition(":")
        family = FAMILIES[name]
        stored: Key | bool = False if family.key is KeyKind.NONE else encode_key(family.key, key)
        code = (int(family.op), FAMILY_CODES[name], stored)
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
    """The stored form of ``state`` with the ``reserved`` entries (``_tz``, ``_wm``...,
    by name; ``_bd`` as :func:`static_entries` gives it)."""
    out: dict[Any, Any] = {}
    for field, value in state.items():
        _, family, key = encode_field(field)
        if key is False:
            out[family] = number(float(value))
        else:
            out.setdefault(family, {})[key] = number(float(value))
    for name, value in reserved.items():
        out[RESERVED_CODES[name]] = value
    return msgpack.packb(out)


def unpack(raw: bytes | None) -> dict[Any, Any]:
    """The stored map (empty for a missing key; a table keyed exactly ``1..n`` comes back
    from the scripts as an array, read as keys ``1..n``)."""
    if not raw:
        return {}
    stored = msgpack.unpackb(raw, strict_map_key=False)
    if isinstance(stored, list):
        return dict(enumerate(stored, 1))
    return stored if isinstance(stored, dict) else {}


def reserved_entry(stored: Mapping[Any, Any], name: str) -> Any:
    """The reserved entry ``name`` (``"_tz"``...) of a stored map, in either layout."""
    value = stored.get(RESERVED_CODES[name])
    return stored.get(name) if value is None else value


def state_of(stored: Mapping[Any, Any]) -> SplitState:
    """The profile state of a stored map: the flat state (``"pd:20512" -> 1.0``) held as
    its scalars and families, the form the stored map already has (no flat names built
    only to be split again by :func:`~features.finalise.build_profile`)."""
    scalars: dict[str, float] = {}
    keyed: dict[str, dict[str, float]] = {}
    for code, value in stored.items():
        if isinstance(code, int):
            if code < 0:
                continue
            name = _FAMILY_NAMES.get(code, str(code))
        elif code[:1] == "_":  # layout 2: families and reserved entries by name
            continue
        else:
            name = code
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


def static_of(stored: Mapping[Any, Any]) -> CustomerStatic:
    """The static attributes of a stored map."""
    bd, tz = reserved_entry(stored, "_bd"), timezone_of(stored)
    if isinstance(bd, int):
        birth: dt.date | None = _EPOCH_DAY + dt.timedelta(days=bd)
    else:  # layout 2: ISO text
        birth = dt.date.fromisoformat(bd) if bd else None
    return CustomerStatic(
        timezone=tz or "UTC",
        birth_date=birth,
        zone_known=bool(tz),
        identified=_REGISTERED_MARK in stored,  # (layout 2 had no marker)
    )


def timezone_of(stored: Mapping[Any, Any]) -> str | None:
    """The customer's time zone name in a stored map (``None`` when not known)."""
    tz = reserved_entry(stored, "_tz")
    if isinstance(tz, int):
        return _ZONE_NAMES.get(tz)
    return tz or None


_EPOCH_DAY = dt.date(1970, 1, 1)
#: The stored code of the marker of a customer an ``identify`` registered (``_rg``).
_REGISTERED_MARK = RESERVED_CODES["_rg"]


def static_entries(static: CustomerStatic | None) -> dict[str, str | int]:
    """The reserved entries of static attributes, by name (none for ``None``)."""
    if static is None:
        return {}
    entries: dict[str, str | int] = {}
    if static.zone_known:
        entries["_tz"] = ZONE_CODES.get(static.timezone, static.timezone)
    if static.birth_date is not None:
        entries["_bd"] = (static.birth_date - _EPOCH_DAY).days
    if static.identified and not (static.zone_known or static.birth_date is not None):
        entries["_rg"] = 1  # registered by neither: the marker (one byte of code, one of value)
    return entries


def stored_entries(entries: Mapping[str, Any]) -> dict[int, Any]:
    """Reserved entries by name as the stored map keys them (their codes)."""
    return {RESERVED_CODES[name]: value for name, value in entries.items()}
