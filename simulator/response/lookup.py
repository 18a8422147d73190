"""From what callers pass to what the truth is indexed by: rows, codes, nanoseconds.

:class:`ResponseLookup` turns the arguments of the response model's methods
(customers by row or id, channels by name or index, send times in any of the
accepted forms, and a message's :class:`MessageOptions`) into a
:class:`MessageBatch` of integer arrays of shape ``(n,)``, validating them
with errors that say what to fix. It is the one place where a message's
options get their defaults.

>>> names = ("promo", "birthday")
>>> codes(np.array(["birthday", "promo"]), names).tolist()
[1, 0]
>>> broadcast(np.array([7]), 3).tolist()
[7, 7, 7]
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, TypedDict

import numpy as np
import pandas as pd

from simulator.config import MESSAGE_CHANNELS, MESSAGE_KINDS
from simulator.world import CATEGORY_NAMES, Catalogue

ArrayLike = Any  # scalar, sequence or numpy array, broadcast to (n,)

#: Message kinds in code order (codes index this tuple).
KIND_NAMES: tuple[str, ...] = tuple(MESSAGE_KINDS)


class MessageOptionsBase(TypedDict, total=False):
    """:class:`MessageOptions` without the offer, which ``offer_uplift`` takes on its own."""

    kind: ArrayLike
    category: ArrayLike
    product: ArrayLike
    recent_contacts: ArrayLike


class MessageOptions(MessageOptionsBase, total=False):
    """What a message is, beyond its customer, channel and send time; each broadcast to ``(n,)``.

    ``kind`` is a message kind (see ``config.MESSAGE_KINDS``, default
    ``"promo"``); ``category`` (name or index) or ``product`` (id or index)
    says what the message is about (neither, the default: a generic
    message); ``offer`` (id, index or None, the default) is the offer it
    carries (None or a negative index: none); ``recent_contacts`` counts
    messages the customer got in the previous 7 days (fatigue, default 0).
    """

    offer: ArrayLike


#: Defaults of :class:`MessageOptions`.
MESSAGE_DEFAULTS: Mapping[str, Any] = {
    "kind": "promo",
    "category": None,
    "product": None,
    "offer": None,
    "recent_contacts": 0,
}


@dataclass(frozen=True)
class MessageBatch:
    """Messages resolved to indices, every field of shape ``(n,)``; -1 means none."""

    rows: np.ndarray  # customer rows
    channel: np.ndarray  # index into MESSAGE_CHANNELS
    send_ns: np.ndarray  # int64 ns UTC
    kind: np.ndarray  # index into KIND_NAMES
    category: np.ndarray  # index into CATEGORY_NAMES (the product's when a product is given)
    product: np.ndarray  # product row
    offer: np.ndarray  # offer row
    recent: np.ndarray  # messages in the previous 7 days, float

    @property
    def size(self) -> int:
        return int(self.rows.size)


class ResponseLookup:
    """Resolves customers, channels, send times and message options to indices."""

    def __init__(
        self,
        catalogue: Catalogue,
        customer_ids: np.ndarray,
        product_ids: np.ndarray,
        offer_ids: np.ndarray,
    ) -> None:
        self.catalogue = catalogue
        self.customer_index = pd.Index(customer_ids)
        self.product_index = pd.Index(product_ids)
        self.offer_index = pd.Index(offer_ids)

    @property
    def n_customers(self) -> int:
        return len(self.customer_index)

    def batch(
        self,
        customers: ArrayLike,
        channel: ArrayLike,
        send_time: ArrayLike,
        message: Mapping[str, Any],
    ) -> MessageBatch:
        """The messages ``(customers, channel, send_time, **message)``, resolved."""
        unknown = sorted(set(message) - set(MESSAGE_DEFAULTS))
        if unknown:
            raise TypeError(
                f"unknown message option(s) {unknown} (use {', '.join(MESSAGE_DEFAULTS)})"
            )
        options = {**MESSAGE_DEFAULTS, **message}
        rows = self.customer_rows(customers)
        n = rows.size
        ch = broadcast(self.channel_codes(channel), n)
        send_ns = broadcast(as_ns(send_time), n)
        recent = broadcast(np.asarray(options["recent_contacts"], dtype=float), n)
        kind = broadcast(self.kind_codes(options["kind"]), n)
        product = broadcast(self._lookup(options["product"], self.product_index, "product"), n)
        category = broadcast(self.category_codes(options["category"]), n)
        category = np.where(product >= 0, self.catalogue.category[np.maximum(product, 0)], category)
        offer = broadcast(self._lookup(options["offer"], self.offer_index, "offer"), n)
        return MessageBatch(rows, ch, send_ns, kind, category, product, offer, recent)

    def customer_rows(self, customers: ArrayLike) -> np.ndarray:
        """Row indices, shape ``(n,)``, of customers given as indices or ids."""
        values = np.atleast_1d(np.asarray(customers))
        if values.dtype.kind in "iu":
            rows = values.astype(np.intp)
            if rows.size and (rows.min() < 0 or rows.max() >= self.n_customers):
                raise IndexError(f"customer rows must be in [0, {self.n_customers})")
            return rows
        rows = self.customer_index.get_indexer(pd.Index(values.astype(str)))
        if (rows < 0).any():
            unknown = values[rows < 0][:3].tolist()
            raise KeyError(f"unknown customer ids, e.g. {unknown}")
        return rows.astype(np.intp)

    def channel_codes(self, channel: ArrayLike) -> np.ndarray:
        """Indices into MESSAGE_CHANNELS of channel names (or of indices, passed through)."""
        values = np.atleast_1d(np.asarray(channel))
        if values.dtype.kind in "iu":
            if values.size and (values.min() < 0 or values.max() >= len(MESSAGE_CHANNELS)):
                raise IndexError(f"channel indices must be in [0, {len(MESSAGE_CHANNELS)})")
            return values.astype(np.intp)
        found = codes(values, tuple(c.value for c in MESSAGE_CHANNELS))
        if (found < 0).any():
            raise ValueError(
                "the response model covers the messaging channels "
                f"{[c.value for c in MESSAGE_CHANNELS]} (in-app and on-site placements are "
                f"not simulated); got {sorted({str(v) for v in pd.unique(values[found < 0])})}"
            )
        return found

    @staticmethod
    def kind_codes(kind: ArrayLike) -> np.ndarray:
        """Indices into :data:`KIND_NAMES` of message kinds."""
        values = np.atleast_1d(np.asarray(kind))
        found = codes(values, KIND_NAMES)
        if (found < 0).any():
            unknown = sorted({str(v) for v in pd.unique(values[found < 0])})
            raise ValueError(
                f"unknown message kind(s) {unknown} (use one of {sorted(MESSAGE_KINDS)})"
            )
        return found

    @staticmethod
    def category_codes(category: ArrayLike) -> np.ndarray:
        """Indices into CATEGORY_NAMES of category names or indices; -1 for None."""
        arr = np.atleast_1d(np.asarray(category))
        if arr.dtype.kind in "iu":
            if (arr >= len(CATEGORY_NAMES)).any():
                raise IndexError(f"category indices must be below {len(CATEGORY_NAMES)}")
            return np.where(arr >= 0, arr, -1).astype(np.intp)
        arr = arr.astype(object)
        out = np.full(arr.size, -1, dtype=np.intp)
        present = pd.notna(arr)
        lookup = {name: i for i, name in enumerate(CATEGORY_NAMES)}
        for value in pd.unique(arr[present]):
            if isinstance(value, int | np.integer) and 0 <= value < len(CATEGORY_NAMES):
                code = int(value)
            elif str(value) in lookup:
                code = lookup[str(value)]
            else:
                raise KeyError(f"unknown category {value!r} (use one of {list(CATEGORY_NAMES)})")
            out[present & (arr == value)] = code
        return out

    @staticmethod
    def _lookup(values: ArrayLike, index: pd.Index, what: str) -> np.ndarray:
        """Row indices for ids or indices; -1 for None or a negative index."""
        arr = np.atleast_1d(np.asarray(values))
        if arr.dtype.kind in "iu":
            if (arr >= len(index)).any():
                raise IndexError(f"{what} rows must be below {len(index)}")
            return np.where(arr >= 0, arr, -1).astype(np.intp)
        arr = arr.astype(object)
        out = np.full(arr.size, -1, dtype=np.intp)
        present = pd.notna(arr)
        if not present.any():
            return out
        given = arr[present]
        if all(isinstance(v, int | np.integer) for v in given[:1]):
            rows = given.astype(np.intp)
            if (rows < 0).any() or (rows >= len(index)).any():
                raise IndexError(f"{what} rows must be in [0, {len(index)})")
        else:
            rows = index.get_indexer(pd.Index(given.astype(str)))
            if (rows < 0).any():
                raise KeyError(f"unknown {what}, e.g. {given[rows < 0][:3].tolist()}")
        out[present] = rows
        return out


def broadcast(values: np.ndarray, n: int) -> np.ndarray:
    """``values`` as shape ``(n,)``: a single value repeated, or ``n`` values as they are."""
    values = np.atleast_1d(values)
    if values.size == 1:
        return np.full(n, values[0], dtype=values.dtype)
    if values.size != n:
        raise ValueError(f"expected {n} values (one per customer) or a scalar, got {values.size}")
    return values


def codes(values: np.ndarray, names: tuple[str, ...]) -> np.ndarray:
    """Index of each value in ``names`` (-1 when absent), vectorised."""
    if values.size == 1:
        value = str(values.flat[0])
        return np.array([names.index(value) if value in names else -1], dtype=np.intp)
    return pd.Categorical(values.astype(str), categories=list(names)).codes.astype(np.intp)


def as_ns(value: ArrayLike) -> np.ndarray:
    """UTC nanoseconds since the epoch, shape ``(n,)`` or ``(1,)``."""
    if isinstance(value, dt.datetime | pd.Timestamp):
        ts = pd.Timestamp(value)
        if ts.tzinfo is None:
            raise ValueError(f"send times must be time-zone aware (got {value!r})")
        return np.array([ts.tz_convert("UTC").value], dtype=np.int64)
    if isinstance(value, pd.Series | pd.Index):
        index = pd.DatetimeIndex(value)
        if index.tz is None:
            raise ValueError("send times must be time-zone aware")
        return index.tz_convert("UTC").as_unit("ns").asi8
    arr = np.atleast_1d(np.asarray(value))
    if arr.dtype.kind == "M":
        return arr.astype("datetime64[ns]").astype(np.int64)
    if arr.dtype.kind in "iu":
        return arr.astype(np.int64)
    if arr.dtype == object and isinstance(arr.flat[0], dt.datetime):
        return as_ns(pd.Series(arr))
    raise TypeError(f"cannot read send times from {type(value).__name__}")
