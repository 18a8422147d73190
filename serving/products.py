"""The products a chosen action shows: one rule for the API and ``nba decide``.

* a cart reminder: the cart's items; a browse reminder: the browsed products (the
  profile's, after :meth:`~features.online.stock.StockLevels.sellable`: those that
  can be bought);
* a recommender action (:data:`RECOMMENDED`): the champion recommender's top
  products, without what was just bought or is in the cart and without what cannot be
  bought (out of stock, or launched after the customer's local day); when every
  recommendation is unavailable, or without a recommender (or when it fails), the most
  popular products that are neither;
* any other action: none.

The recommender is asked once for many customers (:func:`recommendations`): the
API asks for one, a batch chunk for all its customers that need some. Each
customer's list is cut to the length a request of their own would ask for, and
the recommender's top-k is a prefix of its top-(k+1) (ties by catalogue order), so
both see the same products.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from features.online.stock import StockLevels
from nba.actions import ActionType
from nba.profile import CustomerProfile

#: Products attached to an action that shows products.
PRODUCTS_PER_ACTION = 4
#: Action types whose products come from the recommender.
RECOMMENDED = frozenset(
    {ActionType.PRODUCT_RECOMMENDATION, ActionType.CROSS_SELL, ActionType.UP_SELL}
)
#: Products kept in the in-memory popularity list (the fallback when Redis is down).
POPULAR_KEPT = 50


class PopularProducts:
    """The most popular products, refreshed from Redis, kept in memory for fallbacks."""

    def __init__(self, initial: Sequence[str] = ()) -> None:
        self.products: tuple[str, ...] = tuple(initial)

    def top(self, k: int, exclude: Sequence[str] = ()) -> list[str]:
        skip = set(exclude)
        return [p for p in self.products if p not in skip][:k]


def held(profile: CustomerProfile) -> tuple[str, ...]:
    """What a recommendation leaves out: just bought or in the cart (a model knows only
    the purchases of its training data)."""
    return (*profile.last_purchased_products, *profile.cart_items)


def recommendations(recommender: Any, profiles: Sequence[CustomerProfile]) -> list[list[str]]:
    """The recommender's products for each of ``profiles``, in one call: each list as
    long as a call for that customer alone asks (twice :data:`PRODUCTS_PER_ACTION`
    plus what they hold, so that enough are left once those are taken out)."""
    if not profiles:
        return []
    wanted = [2 * PRODUCTS_PER_ACTION + len(held(p)) for p in profiles]
    recs = recommender.recommend([p.customer_id for p in profiles], max(wanted))
    return [
        [str(p) for p in row[:k] if p is not None and p == p]
        for row, k in zip(recs.product_ids, wanted, strict=True)
    ]


def products_for(
    action_type: ActionType,
    profile: CustomerProfile,
    stock: StockLevels,
    popular: PopularProducts,
    recommended: Sequence[str] | None = None,
    looking_at: str | None = None,
) -> list[str]:
    """The products an action of ``action_type`` shows ``profile`` (see the module);
    ``recommended`` is the recommender's list for them (:func:`recommendations`),
    ``None`` without a recommender or when it failed; ``looking_at``, the product of the
    page the customer is on (a placement): what goes with it, never itself."""
    if action_type == ActionType.CART_REMINDER:
        return list(profile.cart_items[:PRODUCTS_PER_ACTION])
    if action_type == ActionType.BROWSE_REMINDER:
        return list(profile.browsed_products[:PRODUCTS_PER_ACTION])
    if action_type not in RECOMMENDED:
        return []
    kept = held(profile) if looking_at is None else (*held(profile), looking_at)
    unavailable = stock.unavailable(profile)
    if recommended is not None:
        sold = [p for p in recommended if p not in kept and p not in unavailable]
        if sold or not recommended:
            return sold[:PRODUCTS_PER_ACTION]
        # every recommendation unavailable: the popular ones that are not
    return popular.top(PRODUCTS_PER_ACTION, exclude=(*kept, *unavailable))
