"""From catalog actions to the simulator's messages: the one place they are mapped.

The simulator's :class:`~simulator.ResponseModel` knows messages,
not catalog actions: a message has a *kind* (``cart_reminder``, ``promo``...),
is about a category or a product (or nothing in particular) and may carry an
offer. :class:`MessageMapping` turns an action sent to a customer into such a
message, with these rules:

* **kind**: by action id when listed in :data:`KIND_BY_ACTION` (the birthday
  milestone is a ``birthday`` message, the collection launch a
  ``new_collection`` one), else by action type (:data:`KIND_BY_TYPE`).
* **what it is about**: the first item of the cart for cart reminders, the
  most recently browsed product for browse reminders; the action's own
  ``category`` when it names one of the simulator's categories; otherwise the
  customer's top category for product-led actions (recommendations,
  cross-sell, up-sell, seasonal, reactivation), and nothing in particular
  for the rest (welcome, milestones, review requests, content, offers).
* **offer**: each catalog offer is added to the response model's offer table
  (:func:`with_catalog_offers`) with its own kind and value, so that a 10 %
  catalog discount is answered as a 10 % discount: percent and fixed
  discounts and loyalty points keep their ``value``; free shipping is worth
  its ``cost`` (the shipping fee given up) when its ``value`` is 0; content
  offers are worth nothing. An offer's appeal (what moves promotion-sensitive
  customers) scales like the simulator's own offers of the same kind. Offers
  are valid throughout the closed loop: a time-limited offer
  (``expires_after_hours``) is answered as if it lasted the whole attribution
  window, which slightly flatters time-limited discounts.
* **channels**: the response model covers the five consent channels (e-mail,
  SMS, push, postal mail, call centre). On-site and in-app placements need a
  live session, which the closed loop does not simulate, so no policy can
  choose them; the mobile wallet is closed in the loop's contact policy (see
  :func:`simulator.closed_loop.world.loop_contact_policy`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from nba.actions import Action, ActionType, Offer, OfferKind
from nba.catalog import Catalog
from nba.channels import Channel
from nba.profile import CustomerProfile
from simulator import ResponseModel, SimulatedRetailer
from simulator.config import MESSAGE_CHANNELS, MESSAGE_KINDS
from simulator.world import CATEGORY_NAMES, OFFER_KINDS, OfferTable

#: Channels whose messages the response model answers.
SIMULATED_CHANNELS: frozenset[Channel] = frozenset(MESSAGE_CHANNELS)

#: Message kind of each action type.
KIND_BY_TYPE: Mapping[ActionType, str] = {
    ActionType.CART_REMINDER: "cart_reminder",
    ActionType.BROWSE_REMINDER: "browse_reminder",
    ActionType.WELCOME: "welcome",
    ActionType.MILESTONE: "loyalty",
    ActionType.SEASONAL: "catalogue",
    ActionType.REACTIVATION: "reactivation",
    ActionType.CROSS_SELL: "post_purchase",
    ActionType.UP_SELL: "promo",
    ActionType.REVIEW_REQUEST: "review_request",
    ActionType.CONTENT: "content",
    ActionType.PRODUCT_RECOMMENDATION: "promo",
    ActionType.OFFER: "promo",
}

#: Message kinds of particular actions of the example catalog, overriding their type's.
KIND_BY_ACTION: Mapping[str, str] = {
    "birthday": "birthday",
    "new_collection_launch": "new_collection",
}

#: Action types whose message is about the customer's favourite category.
CATEGORY_LED: frozenset[ActionType] = frozenset(
    {
        ActionType.PRODUCT_RECOMMENDATION,
        ActionType.CROSS_SELL,
        ActionType.UP_SELL,
        ActionType.SEASONAL,
        ActionType.REACTIVATION,
    }
)


@dataclass(frozen=True, slots=True)
class Message:
    """An action as the response model sees it.

    ``offer`` is an id of the closed-loop response model's offer table (the
    catalog offer's own id), ``None`` without an offer.
    """

    kind: str
    category: str | None = None
    product: str | None = None
    offer: str | None = None


class MessageMapping:
    """Maps an action sent to a customer to a :class:`Message` (rules in the module doc).

    Parameters
    ----------
    products
        The contract products table (to know the category of cart and browsed items).
    kind_by_type, kind_by_action
        Override :data:`KIND_BY_TYPE` and :data:`KIND_BY_ACTION`.
    """

    def __init__(
        self,
        products: pd.DataFrame,
        *,
        kind_by_type: Mapping[ActionType, str] | None = None,
        kind_by_action: Mapping[str, str] | None = None,
    ) -> None:
        self.kind_by_type = dict(KIND_BY_TYPE if kind_by_type is None else kind_by_type)
        self.kind_by_action = dict(KIND_BY_ACTION if kind_by_action is None else kind_by_action)
        for kind in [*self.kind_by_type.values(), *self.kind_by_action.values()]:
            if kind not in MESSAGE_KINDS:
                raise ValueError(
                    f"unknown message kind {kind!r} (use one of {sorted(MESSAGE_KINDS)})"
                )
        self._known_products = frozenset(products["product_id"].astype(str))
        self._categories = frozenset(CATEGORY_NAMES)

    def kind(self, action: Action) -> str:
        return self.kind_by_action.get(action.id) or self.kind_by_type[action.type]

    def message(self, action: Action, profile: CustomerProfile) -> Message:
        """The message ``action`` becomes when sent to the customer of ``profile``."""
        if action.is_do_nothing:
            raise ValueError("do_nothing sends no message")
        offer = None if action.offer is None else action.offer.id
        kind = self.kind(action)
        product = None
        if action.type == ActionType.CART_REMINDER:
            product = self._first_known(profile.cart_items)
        elif action.type == ActionType.BROWSE_REMINDER:
            product = self._first_known(profile.browsed_products)
        if product is not None:
            return Message(kind, None, product, offer)
        category = None
        if action.category in self._categories:
            category = action.category
        elif action.type in CATEGORY_LED and profile.top_category in self._categories:
            category = profile.top_category
        return Message(kind, category, None, offer)

    def _first_known(self, products: tuple[str, ...]) -> str | None:
        for product in products:
            if product in self._known_products:
                return product
        return None


def response_offer_value(offer: Offer) -> float:
    """The offer's value in the simulator's units (percent, currency or points).

    >>> response_offer_value(Offer(id="fs", kind="free_shipping", value=0, cost=4.5))
    4.5
    >>> response_offer_value(Offer(id="pct", kind="percent_discount", value=10, cost=6))
    10.0
    """
    if offer.kind == OfferKind.CONTENT:
        return 0.0
    if offer.kind == OfferKind.FREE_SHIPPING and offer.value == 0:
        return float(offer.cost)
    return float(offer.value)


def with_catalog_offers(sim: SimulatedRetailer, catalog: Catalog) -> ResponseModel:
    """The simulator's response model with the catalog's offers added to its offer table.

    Simulator offers keep their ids and rows. A catalog offer the simulated retailer's
    offers table already lists (its journey offers, :data:`simulator.config.
    RETAILER_JOURNEY_OFFERS`) is answered as that row says: the table is the truth, and
    the engine is given the same terms (:func:`nba.offer_table.apply_offer_table`). A
    campaign offer's id in the catalog is an error (the engine would give a broadcast
    offer as its own). Every other catalog offer gets a row under its own id, valid for
    a year from the simulation's start, on every channel.
    """
    base = sim.response.offers
    listed = set(base.offers["offer_id"].astype(str))
    journey = set(base.offers["offer_id"].astype(str)[base.journey])
    offers = {
        a.offer.id: a.offer for a in catalog if a.offer is not None and a.offer.id not in journey
    }
    clash = sorted(set(offers) & listed)
    if clash:
        raise ValueError(f"catalog offer ids {clash} are also simulator campaign offer ids")
    if not offers:
        return sim.response
    kinds = np.array([OFFER_KINDS.index(_contract_kind(o.kind)) for o in offers.values()])
    values = np.array([response_offer_value(o) for o in offers.values()])
    appeal = np.array(
        [_appeal_per_unit(base, k) * v for k, v in zip(kinds, values, strict=True)], dtype=float
    )
    start = int(pd.Timestamp(sim.config.start).value)
    year = 365 * 24 * 3_600 * 1_000_000_000
    n = len(offers)
    rows = pd.DataFrame(
        {
            "offer_id": list(offers),
            "name": [o.id for o in offers.values()],
            "kind": [OFFER_KINDS[k].value for k in kinds],
            "value": values,
            "cost": [o.cost for o in offers.values()],
        }
    )
    table = OfferTable(
        offers=pd.concat([base.offers, rows], ignore_index=True),
        truth=pd.concat(
            [base.truth, pd.DataFrame({"offer_id": list(offers), "appeal": appeal})],
            ignore_index=True,
        ),
        kind=np.concatenate([base.kind, kinds]),
        value=np.concatenate([base.value, values]),
        cost=np.concatenate([base.cost, rows["cost"].to_numpy(dtype=float)]),
        valid_from=np.concatenate([base.valid_from, np.full(n, start - year, dtype=np.int64)]),
        valid_to=np.concatenate([base.valid_to, np.full(n, start + year, dtype=np.int64)]),
        channel_ok=np.vstack([base.channel_ok, np.ones((n, base.channel_ok.shape[1]), bool)]),
        appeal=np.concatenate([base.appeal, appeal]),
        journey=np.concatenate([base.journey, np.ones(n, dtype=bool)]),
    )
    return ResponseModel(
        sim.response.world,
        sim.response.catalogue,
        table,
        sim.response.clock,
        sim.config,
        sim.response.customer_ids,
        sim.products["product_id"].to_numpy(dtype=object),
        table.offers["offer_id"].to_numpy(dtype=object),
        history=sim.response.history,
    )


def _contract_kind(kind: OfferKind) -> object:
    return next(k for k in OFFER_KINDS if k.value == kind.value)


def _appeal_per_unit(table: OfferTable, kind: int) -> float:
    """Appeal of one unit of value for offers of ``kind``, read off the simulator's offers."""
    same = (table.kind == kind) & (table.value > 0)
    if not same.any():
        return 0.0
    return float(np.median(table.appeal[same] / table.value[same]))


def require_simulated(channel: Channel) -> None:
    """Raise ``ValueError`` for a channel the response model does not answer."""
    if channel not in SIMULATED_CHANNELS:
        raise ValueError(
            f"the closed loop cannot deliver on {channel.value}: the simulator answers "
            f"{sorted(c.value for c in SIMULATED_CHANNELS)} only"
        )
