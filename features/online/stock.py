"""Stock levels online: which products can be sold now, the same for every API replica.

A product with no stock must never be recommended or put in a message, nor one whose
``launch_date`` (the products table's first day on sale) is after the customer's local
day: it cannot be bought yet. The products
table's ``stock`` column is where the levels start; the retailer's stock system then
sets a product's units (``PUT /v1/products/{id}/stock``), kept in Redis beside the
profiles (``{stock}`` is the keys' hash tag: one slot on a Redis Cluster):

* ``<prefix>:{stock}``: hash product id -> units, every level set since start;
* ``<prefix>:{stock}:v``: a counter raised with every change.

Each process keeps the set of products out of stock in memory. The process that takes
a change applies it at once; the others read the hash again when the counter has moved,
checked at most every ``refresh_seconds`` (:meth:`StockLevels.refresh`), so a change
reaches every replica within that time without a round trip per decision.

:meth:`StockLevels.sellable` is a profile as a decision should see it: the cart and the
browsed products without those out of stock or not launched on the profile's local day
(and the cart's value without theirs), the browsed ones also without those bought
lately, so a cart whose every item sold out is no cart to remind of, and a reminder
shows only what can be bought and is not owned; :meth:`StockLevels.unavailable` is what
a recommendation leaves out; :meth:`StockLevels.new_arrivals` what a launch shows
(launched in the last ``NEW_PRODUCT_DAYS``, as the early-adopter score counts them).

>>> import pandas as pd
>>> products = pd.DataFrame({"product_id": ["P1", "P2"], "price": [10.0, 30.0], "stock": [5, 0]})
>>> stock = StockLevels(None, "doc", products)
>>> sorted(stock.out_of_stock), stock.in_stock(["P2", "P1", "P9"])
(['P2'], ['P1', 'P9'])
>>> profile = CustomerProfile("C1", cart_items=("P2", "P1"), cart_value=40.0)
>>> view = stock.sellable(profile)
>>> view.cart_items, view.cart_value
(('P1',), 10.0)
"""

from __future__ import annotations

import bisect
import copy
import dataclasses
import datetime as dt
import math
import time
from collections.abc import Callable, Iterable
from typing import Any
from zoneinfo import ZoneInfo

import pandas as pd

from features.definitions import NEW_PRODUCT_DAYS
from nba.profile import CustomerProfile

#: How often a process checks whether another one changed a stock level, by default.
DEFAULT_REFRESH_SECONDS = 1.0


class UnknownProductError(KeyError):
    """A stock level set for a product the products table does not list."""


class StockLevels:
    """Units in stock per product: the products table's, then those set through the API.

    ``client`` is the API's Redis client (``None``: the table's levels only, in this
    process), ``prefix`` its key prefix; ``products`` the contract products table
    (``product_id``, ``price``, ``stock``, ``launch_date``; ``None``: no product known). A
    product the table does not list counts as in stock and launched (nothing says
    otherwise).
    """

    def __init__(
        self,
        client: Any,
        prefix: str,
        products: pd.DataFrame | None = None,
        *,
        refresh_seconds: float = DEFAULT_REFRESH_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.client = client
        self.key = f"{prefix}:{{stock}}"
        self.version_key = f"{self.key}:v"
        self.refresh_seconds = refresh_seconds
        self.clock = clock
        if products is None:
            products = pd.DataFrame({"product_id": [], "price": [], "stock": []})
        ids = products["product_id"].astype(str).tolist()
        self._table = dict(zip(ids, _units(products), strict=True))
        self._price = dict(zip(ids, products["price"].astype(float).tolist(), strict=True))
        #: each product's category (where the table gives one): what a recommendation
        #: without a recommender ranks the popular products by (serving.products)
        self.category: dict[str, str] = (
            {
                p: str(c)
                for p, c in zip(ids, products["category"].tolist(), strict=True)
                if pd.notna(c)
            }
            if "category" in products.columns
            else {}
        )
        launches = sorted(_launches(products, ids))
        self._launch_days = [day for day, _ in launches]
        self._launched_in_order = [p for _, p in launches]
        #: out of stock or not launched, per index of the first product not launched yet
        #: (with the out-of-stock set it was built from: a change of stock rebuilds it)
        self._unavailable: dict[int, tuple[frozenset[str], frozenset[str]]] = {}
        self._set: dict[str, int] = {}  # levels set through the API
        self._version: int | None = None
        self._checked = -math.inf
        self.out_of_stock: frozenset[str] = frozenset()
        self._rebuild()

    def knows(self, product_id: str) -> bool:
        return product_id in self._table

    def units(self, product_id: str) -> int | None:
        """The units in stock (``None`` for a product the table does not list)."""
        return self._set.get(product_id, self._table.get(product_id))

    def set(self, product_id: str, units: int) -> None:
        """Set a product's units, for every replica (raises :class:`UnknownProductError`
        for a product the products table does not list)."""
        if product_id not in self._table:
            raise UnknownProductError(product_id)
        if units < 0:
            raise ValueError(f"stock must be at least 0, got {units}")
        if self.client is not None:
            pipe = self.client.pipeline(transaction=True)
            pipe.hset(self.key, product_id, int(units))
            pipe.incr(self.version_key)
            _, version = pipe.execute()
            # another replica's change in between: read the whole hash at the next refresh
            if self._version is None or int(version) != self._version + 1:
                self._checked = -math.inf
            else:
                self._version = int(version)
        self._set[product_id] = int(units)
        self._rebuild()

    def due(self) -> bool:
        """Whether :meth:`refresh` would check Redis now."""
        return self.client is not None and self.clock() - self._checked >= self.refresh_seconds

    def refresh(self) -> None:
        """Read the levels other replicas set, when the counter moved (at most every
        ``refresh_seconds``); the driver's errors propagate (the caller keeps the
        levels it has)."""
        if not self.due():
            return
        self._checked = self.clock()
        version = int(self.client.get(self.version_key) or 0)
        if version == self._version:
            return
        raw = self.client.hgetall(self.key) or {}
        self._set = {_text(k): int(v) for k, v in raw.items()}
        self._version = version
        self._rebuild()

    def snapshot(self) -> StockLevels:
        """These levels, frozen, without the Redis client (it pickles: batch workers and
        Spark executors decide with it)."""
        frozen = copy.copy(self)
        frozen.client = None
        frozen._set = dict(self._set)
        return frozen

    def unavailable(self, profile: CustomerProfile) -> frozenset[str]:
        """The products ``profile``'s customer cannot buy at its ``as_of``: out of stock,
        or launched after their local day."""
        if not self._launch_days or profile.as_of is None:
            return self.out_of_stock
        day = profile.as_of.astimezone(ZoneInfo(profile.timezone)).date()
        first = bisect.bisect_right(self._launch_days, day)  # launched after ``day`` on
        if first == len(self._launch_days):
            return self.out_of_stock
        out = self.out_of_stock
        held = self._unavailable.get(first)
        if held is None or held[0] is not out:
            held = self._unavailable[first] = (out, out | set(self._launched_in_order[first:]))
        return held[1]

    def has_arrivals_to_show(self, profile: CustomerProfile) -> bool | None:
        """Whether a launch could show ``profile``'s customer anything: one of the
        :meth:`new_arrivals` they do not hold (:func:`held`), read newest first until one
        is found (a few microseconds, whatever the catalogue's size). The
        :attr:`~nba.context.CustomerContext.has_new_arrivals` a decision screens a launch
        with (False: nothing to show, not given); ``None`` when the products table gives
        no launch dates (nothing is known to be new: the launch's rules decide alone).

        >>> products = pd.DataFrame({"product_id": ["P1", "P2"], "price": [1.0] * 2,
        ...     "stock": [5, 5], "launch_date": ["2025-09-01", "2026-03-05"]})
        >>> at = dt.datetime(2026, 3, 10, 9, tzinfo=dt.UTC)
        >>> stock = StockLevels(None, "doc", products)
        >>> stock.has_arrivals_to_show(CustomerProfile("C1", as_of=at))
        True
        >>> stock.has_arrivals_to_show(CustomerProfile("C1", as_of=at, cart_items=("P2",)))
        False
        """
        if not self._launch_days:
            return None
        first, last = self._new_span(profile, NEW_PRODUCT_DAYS)
        out, kept, launched = self.out_of_stock, held(profile), self._launched_in_order
        return any(
            launched[i] not in out and launched[i] not in kept
            for i in range(last - 1, first - 1, -1)
        )

    def new_arrivals(self, profile: CustomerProfile, days: int = NEW_PRODUCT_DAYS) -> list[str]:
        """The products launched within the ``days`` days up to ``profile``'s local day
        (that day included) and in stock, the newest first: what a launch shows.

        >>> products = pd.DataFrame({"product_id": ["P1", "P2", "P3"], "price": [1.0] * 3,
        ...     "stock": [5, 5, 0], "launch_date": ["2025-09-01", "2026-03-05", "2026-03-04"]})
        >>> at = dt.datetime(2026, 3, 10, 9, tzinfo=dt.UTC)
        >>> StockLevels(None, "doc", products).new_arrivals(CustomerProfile("C1", as_of=at))
        ['P2']
        """
        first, last = self._new_span(profile, days)
        out = self.out_of_stock
        return [p for p in reversed(self._launched_in_order[first:last]) if p not in out]

    def _new_span(self, profile: CustomerProfile, days: int) -> tuple[int, int]:
        """The positions ``[first, last)`` in launch order of the products launched within
        the ``days`` days up to ``profile``'s local day (none without launch dates or a
        moment)."""
        if not self._launch_days or profile.as_of is None:
            return 0, 0
        day = profile.as_of.astimezone(ZoneInfo(profile.timezone)).date()
        last = bisect.bisect_right(self._launch_days, day)
        first = bisect.bisect_left(self._launch_days, day - dt.timedelta(days=days - 1))
        return first, last

    def in_stock(self, product_ids: Iterable[str]) -> list[str]:
        """``product_ids`` without those out of stock, in order."""
        out = self.out_of_stock
        return [p for p in product_ids if p not in out]

    def sellable(self, profile: CustomerProfile) -> CustomerProfile:
        """``profile`` with the products it cannot buy (:meth:`unavailable`) taken out of
        its cart (and their price out of its value) and browsed products, and the products
        it bought lately (``last_purchased_products``, kept) out of its browsed ones: a
        look at the trousers delivered yesterday (their care label, the size guide) is no
        browse left behind to remind of, as the picks leave them out too."""
        out = self.unavailable(profile)
        gone = [p for p in profile.cart_items if p in out]
        owned = profile.last_purchased_products
        browsed_gone = any(p in out or p in owned for p in profile.browsed_products)
        if not gone and not browsed_gone:
            return profile
        left = tuple(p for p in profile.cart_items if p not in out)
        value = max(0.0, profile.cart_value - sum(self._price.get(p, 0.0) for p in gone))
        return dataclasses.replace(
            profile,
            cart_items=left,
            cart_value=value if left else 0.0,
            cart_age_hours=profile.cart_age_hours if left else None,
            browsed_products=tuple(
                p for p in profile.browsed_products if p not in out and p not in owned
            ),
        )

    def _rebuild(self) -> None:
        levels = {**self._table, **self._set}
        self.out_of_stock = frozenset(p for p, units in levels.items() if units <= 0)


def held(profile: CustomerProfile) -> tuple[str, ...]:
    """What a recommendation leaves out: just bought, in the cart, or sent back (a model
    knows only the purchases of its training data, and a returned product was one)."""
    return (*profile.last_purchased_products, *profile.cart_items, *profile.returned_products)


def _units(products: pd.DataFrame) -> list[int]:
    """The table's units per product (a missing level counts as in stock)."""
    if "stock" not in products.columns:
        return [1] * len(products)
    return [1 if pd.isna(u) else int(u) for u in products["stock"].tolist()]


def _launches(products: pd.DataFrame, ids: list[str]) -> list[tuple[dt.date, str]]:
    """(first day on sale, product) of the table's products that give one."""
    if "launch_date" not in products.columns:
        return []
    days = pd.to_datetime(products["launch_date"]).tolist()
    return [(d.date(), p) for p, d in zip(ids, days, strict=True) if not pd.isna(d)]


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
