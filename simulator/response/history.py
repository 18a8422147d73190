"""What each simulated customer was doing before a message: carts and browsing.

A reminder's truth depends on the state it reminds of: how long a product has
sat in the cart, how recently and how much the customer browsed. The callers
of the response model pass a message (customer, channel, send time, what it
is about), not that state, so the truth reads it from the simulated
customers' own events: :class:`ShoppingHistory` indexes the add-to-cart,
remove-from-cart, purchase and product-view events of a simulation and
answers, for arrays of ``(customer, moment)``, with only the events at or
before that moment.

>>> from simulator.eventlog import EventBuffer
>>> from nba.channels import Channel
>>> from nba.events import EventType
>>> events = EventBuffer()
>>> events.add(np.array([0, 0]), np.array([1, 5]) * HOUR_NS, Channel.WEB, EventType.PRODUCT_VIEW,
...            product=np.array([7, 7]))
>>> events.add(np.array([0]), np.array([5]) * HOUR_NS, Channel.WEB, EventType.ADD_TO_CART,
...            product=np.array([7]))
>>> history = ShoppingHistory([events.build()])
>>> history.cart_age_hours(np.array([0, 0]), np.array([7, -1]), np.array([8, 4]) * HOUR_NS).tolist()
[3.0, nan]
>>> history.views(np.array([0]), np.array([6]) * HOUR_NS, window_ns=24 * HOUR_NS).tolist()
[2]
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property

import numpy as np

from nba.events import EventType
from simulator.clock import HOUR_NS, SECOND_NS
from simulator.eventlog import EVENT_CODE, EventBlock

#: Seconds of a key's time part: events and queries must lie within ~8.5 years of the origin.
_SPAN = 1 << 28
_CART_IN = EVENT_CODE[EventType.ADD_TO_CART]
_CART_OUT = (EVENT_CODE[EventType.REMOVE_FROM_CART], EVENT_CODE[EventType.PURCHASE])
_VIEW = EVENT_CODE[EventType.PRODUCT_VIEW]


@dataclass(frozen=True)
class _Keyed:
    """Events of one kind as sorted keys ``group * _SPAN + seconds since the origin``."""

    keys: np.ndarray

    @staticmethod
    def build(group: np.ndarray, timestamp: np.ndarray, origin: int) -> _Keyed:
        seconds = np.clip((timestamp - origin) // SECOND_NS, 0, _SPAN - 1)
        return _Keyed(np.sort(group.astype(np.int64) * _SPAN + seconds))

    def last_before(self, group: np.ndarray, moment: np.ndarray, origin: int) -> np.ndarray:
        """Seconds since the origin of each group's last event at or before ``moment``; -1 none."""
        if self.keys.size == 0:
            return np.full(group.shape, -1, dtype=np.int64)
        query = group.astype(np.int64) * _SPAN + _seconds(moment, origin)
        at = np.searchsorted(self.keys, query, side="right") - 1
        found = self.keys[np.maximum(at, 0)]
        same = (at >= 0) & (found // _SPAN == group)
        return np.where(same, found % _SPAN, -1)

    def count_between(
        self, group: np.ndarray, since: np.ndarray, until: np.ndarray, origin: int
    ) -> np.ndarray:
        """Events of each group in ``(since, until]``."""
        base = group.astype(np.int64) * _SPAN
        hi = np.searchsorted(self.keys, base + _seconds(until, origin), side="right")
        lo = np.searchsorted(self.keys, base + _seconds(since, origin), side="right")
        return hi - lo


def _seconds(moment: np.ndarray, origin: int) -> np.ndarray:
    return np.clip((moment - origin) // SECOND_NS, 0, _SPAN - 1)


class ShoppingHistory:
    """Cart and browsing state of customers at any moment, from simulated events.

    Indexes are built on first use, so a history nobody asks about costs nothing.
    Customers and products are rows (as in :class:`~simulator.eventlog.EventBlock`).
    """

    def __init__(self, blocks: Sequence[EventBlock]) -> None:
        self._blocks = tuple(blocks)

    @cached_property
    def _index(self) -> tuple[int, int, _Keyed, _Keyed, _Keyed, _Keyed, _Keyed]:
        block = EventBlock.concat(list(self._blocks))
        kind = block.event_type
        origin = int(block.timestamp.min()) - SECOND_NS if len(block) else 0  # events at >= 1 s
        n_products = int(block.product.max()) + 1 if len(block) else 1
        customer = block.customer.astype(np.int64)
        pair = customer * n_products + block.product
        cart_in = kind == _CART_IN
        cart_out = np.isin(kind, _CART_OUT) & (block.product >= 0)
        bought = kind == _CART_OUT[1]
        view = kind == _VIEW
        return (
            origin,
            n_products,
            _Keyed.build(pair[cart_in], block.timestamp[cart_in], origin),
            _Keyed.build(pair[cart_out], block.timestamp[cart_out], origin),
            _Keyed.build(customer[cart_in], block.timestamp[cart_in], origin),
            _Keyed.build(customer[bought], block.timestamp[bought], origin),
            _Keyed.build(customer[view], block.timestamp[view], origin),
        )

    def cart_age_hours(
        self, customers: np.ndarray, products: np.ndarray, moment: np.ndarray
    ) -> np.ndarray:
        """Hours since the product (any product, for -1) went into the cart; NaN: not in it.

        A product is in the cart from its last add-to-cart until it is removed or
        bought; without a product, the cart is the last add-to-cart since the
        customer's last purchase.
        """
        origin, n_products, added, gone, any_added, bought, _ = self._index
        now = _seconds(moment, origin)
        pair = customers.astype(np.int64) * n_products + np.maximum(products, 0)
        product_in = added.last_before(pair, moment, origin)
        product_out = gone.last_before(pair, moment, origin)
        any_in = any_added.last_before(customers, moment, origin)
        any_out = bought.last_before(customers, moment, origin)
        since = np.where(products >= 0, product_in, any_in)
        until = np.where(products >= 0, product_out, any_out)
        open_cart = (since >= 0) & (since > until)
        return np.where(open_cart, (now - since) * SECOND_NS / HOUR_NS, np.nan)

    def hours_since_view(self, customers: np.ndarray, moment: np.ndarray) -> np.ndarray:
        """Hours since the customer's last product view; NaN: none yet."""
        origin, *_, views = self._index
        last = views.last_before(customers, moment, origin)
        now = _seconds(moment, origin)
        return np.where(last >= 0, (now - last) * SECOND_NS / HOUR_NS, np.nan)

    def views(self, customers: np.ndarray, moment: np.ndarray, *, window_ns: int) -> np.ndarray:
        """Product views of each customer in the ``window_ns`` before ``moment``."""
        origin, *_, views = self._index
        return views.count_between(customers, moment - window_ns, moment, origin)
