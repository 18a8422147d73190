"""The products a chosen action shows: one rule for the API and ``nba decide``.

* a cart reminder: the cart's items; a browse reminder: the browsed products (the
  profile's, after :meth:`~features.online.stock.StockLevels.sellable`: those that
  can be bought);
* a recommender action (:data:`RECOMMENDED`): the champion recommender's top
  products, without what was just bought or is in the cart and without what cannot be
  bought (out of stock, or launched after the customer's local day); when every
  recommendation is unavailable, or without a recommender (or when it fails), the most
  popular products that are neither, fitted to the action (:func:`fitted`): picks in
  the customer's categories first, cross-sells in other categories than what it goes
  with first;
* an action that shows new arrivals (a launch, ``shows: new_arrivals``): the products
  launched in the last 30 days up to the customer's local day and in stock
  (:meth:`~features.online.stock.StockLevels.new_arrivals`), those the recommender
  ranks first, then the newest; without what was just bought or is in the cart;
* any other action: none.

The recommender is asked once for many customers (:func:`recommendations`): the
API asks for one, a batch chunk for all its customers that need some. Each
customer's list is cut to the length a request of their own would ask for, and
the recommender's top-k is a prefix of its top-(k+1) (ties by catalogue order), so
both see the same products.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from features.online.stock import StockLevels, held
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
    shows: str = "auto",
) -> list[str]:
    """The products an action of ``action_type`` shows ``profile`` (see the module);
    ``recommended`` is the recommender's list for them (:func:`recommendations`),
    ``None`` without a recommender or when it failed; ``looking_at``, the product of the
    page the customer is on (a placement): what goes with it, never itself; ``shows``,
    the action's :attr:`~nba.actions.Action.shows`."""
    if shows == "new_arrivals":
        return new_arrivals(profile, stock, recommended)[:PRODUCTS_PER_ACTION]
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
    ranked = popular.top(POPULAR_KEPT, exclude=(*kept, *unavailable))
    return fitted(action_type, profile, stock.category, ranked, looking_at)[:PRODUCTS_PER_ACTION]


def new_arrivals(
    profile: CustomerProfile, stock: StockLevels, recommended: Sequence[str] | None = None
) -> list[str]:
    """The new arrivals ``profile``'s customer can buy and does not hold, those the
    recommender ranks first in its order, then the newest (a launch's products: not the
    store's best sellers of any age)."""
    kept = set(held(profile))
    fresh = [p for p in stock.new_arrivals(profile) if p not in kept]
    rank = {p: i for i, p in enumerate(recommended or ())}
    return sorted(fresh, key=lambda p: rank.get(p, len(rank)))  # stable: newest first


def fitted(
    action_type: ActionType,
    profile: CustomerProfile,
    category: Mapping[str, str],
    ranked: Sequence[str],
    looking_at: str | None = None,
) -> list[str]:
    """The popular products ``ranked`` (most popular first) in the order an action of
    ``action_type`` shows them without a recommender, popularity kept within a group:

    * a product recommendation (the weekly picks "in your top category"): the
      categories the customer likes most first (``category_affinity``);
    * a cross-sell (complementary items): products of other categories than what it
      goes with (the product on the page, else the products just bought) first: after
      black trousers, a shirt or a belt, not more trousers.

    >>> profile = CustomerProfile("C1", category_affinity={"trousers": 0.8, "shirts": 0.2},
    ...                           last_purchased_products=("P1",))
    >>> category = {"P1": "trousers", "P2": "shirts", "P3": "trousers", "P6": "belts"}
    >>> fitted(ActionType.PRODUCT_RECOMMENDATION, profile, category, ["P2", "P6", "P3"])
    ['P3', 'P2', 'P6']
    >>> fitted(ActionType.CROSS_SELL, profile, category, ["P3", "P2", "P6"])
    ['P2', 'P6', 'P3']
    """
    if not category:
        return list(ranked)
    if action_type == ActionType.PRODUCT_RECOMMENDATION:
        taste = profile.category_affinity
        return sorted(ranked, key=lambda p: -taste.get(category.get(p, ""), 0.0))
    if action_type == ActionType.CROSS_SELL:
        anchors = (looking_at,) if looking_at is not None else profile.last_purchased_products
        held = {category[p] for p in anchors if p in category}
        return sorted(ranked, key=lambda p: category.get(p) in held)
    return list(ranked)
