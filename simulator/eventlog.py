"""Compact, columnar storage of simulated events and their conversion to the contract.

The simulator keeps events as integer codes (32 bytes an event) and turns
them into the contract's text columns only when a chunk is written or asked
for, so that millions of events fit in memory and text is built in C++
(pyarrow), never in a Python loop.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from features.contract import EVENTS
from nba.channels import Channel
from nba.events import EventType

#: Code -> value tables for the integer-coded columns.
CHANNEL_CODES: tuple[Channel, ...] = tuple(Channel)
EVENT_CODES: tuple[EventType, ...] = tuple(EventType)
CHANNEL_CODE: dict[Channel, int] = {c: i for i, c in enumerate(CHANNEL_CODES)}
EVENT_CODE: dict[EventType, int] = {e: i for i, e in enumerate(EVENT_CODES)}

#: Arrow schema of the events table as written to Parquet.
EVENTS_ARROW_SCHEMA = pa.schema(
    [
        ("event_id", pa.string()),
        ("customer_id", pa.string()),
        ("timestamp", pa.timestamp("ns", tz="UTC")),
        ("channel", pa.string()),
        ("event_type", pa.string()),
        ("product_id", pa.string()),
        ("offer_id", pa.string()),
        ("decision_id", pa.string()),
        ("quantity", pa.int64()),
        ("revenue", pa.float64()),
        ("properties", pa.string()),
    ]
)
assert EVENTS_ARROW_SCHEMA.names == EVENTS.names


@dataclass(frozen=True)
class EventBlock:
    """Events as parallel arrays of shape ``(n,)``.

    ``customer``, ``product`` and ``offer`` are row indices into the customers,
    products and offers tables (-1: none); ``prop`` indexes the properties
    vocabulary (-1: null); ``quantity`` is -1 and ``revenue`` NaN when absent.
    """

    customer: np.ndarray  # int32
    timestamp: np.ndarray  # int64 ns UTC
    channel: np.ndarray  # int8 code into CHANNEL_CODES
    event_type: np.ndarray  # int8 code into EVENT_CODES
    product: np.ndarray  # int32
    offer: np.ndarray  # int16
    quantity: np.ndarray  # int16
    revenue: np.ndarray  # float64
    prop: np.ndarray  # int16

    def __len__(self) -> int:
        return int(self.customer.size)

    def take(self, index: np.ndarray) -> EventBlock:
        """Rows at ``index`` (positions or a boolean mask)."""
        return EventBlock(**{f.name: getattr(self, f.name)[index] for f in fields(self)})

    def sorted(self) -> EventBlock:
        """Ordered by customer, then time, then event type (stable)."""
        order = np.lexsort((self.event_type, self.timestamp, self.customer))
        return self.take(order)

    @property
    def nbytes(self) -> int:
        return sum(getattr(self, f.name).nbytes for f in fields(self))

    @staticmethod
    def concat(blocks: Sequence[EventBlock]) -> EventBlock:
        if not blocks:
            return EventBuffer().build()
        return EventBlock(
            **{
                f.name: np.concatenate([getattr(b, f.name) for b in blocks])
                for f in fields(EventBlock)
            }
        )


_DTYPES = {
    "customer": np.int32,
    "timestamp": np.int64,
    "channel": np.int8,
    "event_type": np.int8,
    "product": np.int32,
    "offer": np.int16,
    "quantity": np.int16,
    "revenue": np.float64,
    "prop": np.int16,
}
_MISSING = {"product": -1, "offer": -1, "quantity": -1, "revenue": np.nan, "prop": -1}


class EventBuffer:
    """Collects groups of events (arrays or scalars per column) into one block."""

    def __init__(self) -> None:
        self._parts: list[dict[str, np.ndarray]] = []

    def add(
        self,
        customer: np.ndarray,
        timestamp: np.ndarray,
        channel: Channel | int | np.ndarray,
        event_type: EventType,
        *,
        product: np.ndarray | int = -1,
        offer: np.ndarray | int = -1,
        quantity: np.ndarray | int = -1,
        revenue: np.ndarray | float = np.nan,
        prop: np.ndarray | int = -1,
    ) -> None:
        """Append ``len(customer)`` events; scalars are broadcast."""
        n = int(np.size(customer))
        if n == 0:
            return
        channel_code = CHANNEL_CODE[channel] if isinstance(channel, Channel) else channel
        values = {
            "customer": customer,
            "timestamp": timestamp,
            "channel": channel_code,
            "event_type": EVENT_CODE[event_type],
            "product": product,
            "offer": offer,
            "quantity": quantity,
            "revenue": revenue,
            "prop": prop,
        }
        self._parts.append(
            {k: np.broadcast_to(np.asarray(v, dtype=_DTYPES[k]), (n,)) for k, v in values.items()}
        )

    def build(self) -> EventBlock:
        if not self._parts:
            return EventBlock(**{k: np.empty(0, dtype=d) for k, d in _DTYPES.items()})
        return EventBlock(**{k: np.concatenate([p[k] for p in self._parts]) for k in _DTYPES})


def _ids_or_null(ids: pa.Array, index: np.ndarray) -> pa.Array:
    mask = index < 0
    if mask.all():
        return pa.nulls(index.size, pa.string())
    return ids.take(pa.array(np.where(mask, 0, index), mask=mask))


def padded_ids(prefix: str, first: int, n: int, width: int) -> pa.Array:
    """``prefix`` + zero-padded numbers ``first .. first + n - 1``, built in C++.

    >>> padded_ids("C", 8, 3, 4).to_pylist()
    ['C0008', 'C0009', 'C0010']
    """
    numbers = pc.cast(pa.array(np.arange(first, first + n, dtype=np.int64)), pa.string())
    return pc.binary_join_element_wise(prefix, pc.utf8_lpad(numbers, width=width, padding="0"), "")


def block_to_arrow(
    block: EventBlock,
    first_id: int,
    id_width: int,
    customer_ids: pa.Array,
    product_ids: pa.Array,
    offer_ids: pa.Array,
    properties: pa.Array,
) -> pa.Table:
    """The contract events table for ``block``; event ids start at ``first_id``."""
    n = len(block)
    channels = pa.array([c.value for c in CHANNEL_CODES])
    types = pa.array([e.value for e in EVENT_CODES])
    quantity = block.quantity.astype(np.int64)
    columns = [
        padded_ids("E", first_id, n, id_width),
        customer_ids.take(pa.array(block.customer)),
        pa.array(block.timestamp, type=pa.int64()).cast(pa.timestamp("ns", tz="UTC")),
        channels.take(pa.array(block.channel.astype(np.int32))),
        types.take(pa.array(block.event_type.astype(np.int32))),
        _ids_or_null(product_ids, block.product.astype(np.int64)),
        _ids_or_null(offer_ids, block.offer.astype(np.int64)),
        pa.nulls(n, pa.string()),
        pa.array(quantity, mask=quantity < 0),
        pa.array(block.revenue, mask=np.isnan(block.revenue)),
        _ids_or_null(properties, block.prop.astype(np.int64)),
    ]
    return pa.Table.from_arrays(columns, schema=EVENTS_ARROW_SCHEMA)


def arrow_to_frame(table: pa.Table) -> pd.DataFrame:
    """Contract-typed pandas frame: text ids, UTC timestamps, nullable ``Int64`` quantity."""
    frame = table.to_pandas()
    frame["quantity"] = frame["quantity"].astype("Int64")
    return frame
