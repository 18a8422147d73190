"""The true response of simulated customers to an outbound message.

:class:`ResponseModel` answers, for arrays of customers and one message each
(channel, send time, kind, category or product, offer): how likely is it to be
delivered, opened, clicked, to lead to a purchase, to make the customer
withdraw consent. The historical campaigns are drawn from this very model, and
closed-loop evaluations use it too, so history and evaluation agree.

Probabilities come from the customer's ground truth:

* open = responsiveness on the channel (higher on the preferred one) x the
  send-hour factor (1 at the customer's peak local hour, down to the channel's
  floor far from it) x fatigue x lapse;
* click = open x click rate x relevance (category taste, new products for
  early adopters, price for price-sensitive customers) x message kind x offer
  appeal for promotion-sensitive customers;
* convert = click x conversion, lifted by the offer the same way;
* purchase = converts, or buys anyway within the attribution window at the
  customer's organic rate (faster while holding an opened coupon);
* unsubscribe = channel rate, higher for unresponsive customers, at quiet hours
  on intrusive channels, and with fatigue.

All array arguments are broadcast to shape ``(n,)``; results have shape ``(n,)``.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, fields
from typing import Any

import numpy as np
import pandas as pd

from features.contract import OfferKind
from nba.channels import Channel
from simulator.clock import (
    DAY_NS,
    LocalClock,
    circular_hour_distance,
    hour_of_day,
    weekday,
)
from simulator.config import (
    CHANNEL_RESPONSE,
    LAPSED_ENGAGEMENT,
    MESSAGE_CHANNELS,
    MESSAGE_KINDS,
    POINT_VALUE,
    QUIET_HOURS,
    QUIET_UNSUBSCRIBE_FACTOR,
    SimulatorConfig,
)
from simulator.world import (
    CATEGORY_NAMES,
    LINES_PER_ORDER,
    OFFER_KINDS,
    PRICE_TILT,
    Catalogue,
    CustomerWorld,
    OfferTable,
    activity_factor,
)

#: Channels where a message at quiet hours irritates.
INTRUSIVE_CHANNELS: frozenset[Channel] = frozenset({Channel.SMS, Channel.PUSH, Channel.CALL_CENTRE})
#: Average early-adopter appetite; new products are neutral for such a customer.
_MEAN_EARLY_ADOPTER = 0.3
_MAX_AFFINITY = 4.0

ArrayLike = Any  # scalar, sequence or numpy array, broadcast to (n,)


@dataclass(frozen=True)
class ResponseProbabilities:
    """Marginal probabilities for each message, every field of shape ``(n,)``.

    ``click`` <= ``open`` <= ``deliver``; ``convert`` is a purchase through the
    message's click, ``purchase`` any purchase within the attribution window.
    """

    deliver: np.ndarray
    open: np.ndarray
    click: np.ndarray
    convert: np.ndarray
    purchase: np.ndarray
    unsubscribe: np.ndarray


@dataclass(frozen=True)
class ResponseSample:
    """One draw of outcomes, boolean arrays of shape ``(n,)``.

    Fields mirror :class:`ResponseProbabilities`.
    """

    delivered: np.ndarray
    opened: np.ndarray
    clicked: np.ndarray
    converted: np.ndarray
    purchased: np.ndarray
    unsubscribed: np.ndarray


@dataclass(frozen=True)
class ExpectedValue:
    """Expected outcomes of a message within the attribution window, shape ``(n,)``.

    ``margin`` is the product margin net of offer cost and contact cost.
    """

    purchase: np.ndarray  # probability of at least one purchase
    orders: np.ndarray  # expected number of orders
    revenue: np.ndarray  # expected revenue, net of discounts
    margin: np.ndarray
    offer_cost: np.ndarray
    contact_cost: np.ndarray

    def __sub__(self, other: ExpectedValue) -> ExpectedValue:
        return ExpectedValue(
            **{f.name: getattr(self, f.name) - getattr(other, f.name) for f in fields(self)}
        )


@dataclass(frozen=True)
class _Terms:
    """Conditional probabilities and values behind the marginals."""

    deliver: np.ndarray  # P(delivered)
    open: np.ndarray  # P(open | delivered)
    unsubscribe: np.ndarray  # P(withdraw | delivered)
    click: np.ndarray  # P(click | opened, stayed)
    convert: np.ndarray  # P(purchase | click)
    organic_rate: np.ndarray  # organic orders per day over the window
    boost_days: np.ndarray  # days of the window a coupon held after an open boosts buying
    boost: np.ndarray  # organic rate multiplier while holding the coupon
    basket: np.ndarray  # value of an order the message leads to (its category or product)
    margin_rate: np.ndarray
    usual_basket: np.ndarray  # value of an organic order
    usual_margin_rate: np.ndarray
    discount: np.ndarray  # revenue given up when the message's order redeems the offer
    usual_discount: np.ndarray  # ... when an organic order redeems it
    other_cost: np.ndarray  # non-revenue offer cost per redemption (shipping, points)
    contact_cost: np.ndarray
    has_offer: np.ndarray


class ResponseModel:
    """True response probabilities of simulated customers to messages.

    ``customers`` arguments are row indices into the customers table (ints) or
    customer ids (text). ``channel`` is one of the consent channels (e-mail,
    SMS, push, postal, call centre), by name or by index into
    ``config.MESSAGE_CHANNELS``. ``send_time`` is a tz-aware datetime, a
    pandas timestamp/series, numpy ``datetime64`` (read as UTC) or int64
    nanoseconds since the epoch (UTC).

    >>> from simulator import SimulatorConfig, simulate
    >>> sim = simulate(SimulatorConfig(n_customers=200, days=14, seed=3))
    >>> p = sim.response.probabilities([0, 1, 2], "email", sim.config.start, category="shoes")
    >>> p.open.shape, bool((p.click <= p.open).all())
    ((3,), True)
    """

    def __init__(
        self,
        world: CustomerWorld,
        catalogue: Catalogue,
        offers: OfferTable,
        clock: LocalClock,
        config: SimulatorConfig,
        customer_ids: np.ndarray,
        product_ids: np.ndarray,
        offer_ids: np.ndarray,
    ):
        self.world = world
        self.catalogue = catalogue
        self.offers = offers
        self.clock = clock
        self.config = config
        self._customer_index = pd.Index(customer_ids)
        self._product_index = pd.Index(product_ids)
        self._offer_index = pd.Index(offer_ids)
        self._start = int(pd.Timestamp(config.start).value)
        self._orders_per_session = config.funnel.orders_per_session(
            world.conversion, world.store_share
        )
        k = len(CATEGORY_NAMES)
        margin_share = catalogue.margin / catalogue.price
        self._category_margin = np.array(
            [margin_share[catalogue.category == c].mean() for c in range(k)]
        )

    @property
    def n_customers(self) -> int:
        return len(self.world)

    @property
    def customer_ids(self) -> np.ndarray:
        """Customer ids by row, shape ``(n_customers,)``."""
        return self._customer_index.to_numpy(dtype=object)

    # ------------------------------------------------------------ public API

    def probabilities(
        self,
        customers: ArrayLike,
        channel: ArrayLike,
        send_time: ArrayLike,
        *,
        kind: ArrayLike = "promo",
        category: ArrayLike = None,
        product: ArrayLike = None,
        offer: ArrayLike = None,
        recent_contacts: ArrayLike = 0,
    ) -> ResponseProbabilities:
        """Marginal response probabilities, each of shape ``(n,)``.

        ``kind`` is a message kind (see ``config.MESSAGE_KINDS``); ``category``
        (name or index) or ``product`` (id or index) says what the message is
        about (neither: a generic message); ``offer`` (id, index or None) is the
        offer it carries (None or a negative index: none); ``recent_contacts``
        counts messages the customer got in the previous 7 days (fatigue).
        """
        t = self._terms(
            customers, channel, send_time, kind, category, product, offer, recent_contacts
        )
        return self._marginals(t)

    def sample(
        self,
        rng: np.random.Generator,
        customers: ArrayLike,
        channel: ArrayLike,
        send_time: ArrayLike,
        *,
        kind: ArrayLike = "promo",
        category: ArrayLike = None,
        product: ArrayLike = None,
        offer: ArrayLike = None,
        recent_contacts: ArrayLike = 0,
    ) -> ResponseSample:
        """Draw outcomes consistent with :meth:`probabilities` (same arguments), shape ``(n,)``.

        ``purchased`` includes purchases the customer would have made anyway
        within the attribution window; ``converted`` only those through the click.
        """
        t = self._terms(
            customers, channel, send_time, kind, category, product, offer, recent_contacts
        )
        n = t.deliver.size
        u = rng.random((6, n))
        delivered = u[0] < t.deliver
        unsubscribed = delivered & (u[1] < t.unsubscribe)
        opened = delivered & (u[2] < t.open)
        clicked = opened & ~unsubscribed & (u[3] < t.click)
        converted = clicked & (u[4] < t.convert)
        organic = np.where(
            opened, self._organic_probability(t, True), self._organic_probability(t, False)
        )
        purchased = converted | (u[5] < organic)
        return ResponseSample(delivered, opened, clicked, converted, purchased, unsubscribed)

    def expected_value(
        self,
        customers: ArrayLike,
        channel: ArrayLike,
        send_time: ArrayLike,
        *,
        kind: ArrayLike = "promo",
        category: ArrayLike = None,
        product: ArrayLike = None,
        offer: ArrayLike = None,
        recent_contacts: ArrayLike = 0,
    ) -> ExpectedValue:
        """Expected purchases, revenue and margin within the attribution window, shape ``(n,)``."""
        t = self._terms(
            customers, channel, send_time, kind, category, product, offer, recent_contacts
        )
        p = self._marginals(t)
        w = float(self.config.response.attribution_days)
        seen = t.deliver * t.open
        organic_orders = t.organic_rate * (w + seen * (t.boost - 1.0) * t.boost_days)
        orders = p.convert + organic_orders
        held_orders = seen * t.organic_rate * t.boost * t.boost_days
        redeemed = np.where(t.has_offer, p.convert, 0.0)  # the message's own orders
        redeemed_usual = np.where(
            t.has_offer, held_orders * self.config.response.coupon_redemption, 0.0
        )
        discounts = redeemed * t.discount + redeemed_usual * t.usual_discount
        offer_cost = discounts + (redeemed + redeemed_usual) * t.other_cost
        revenue = p.convert * t.basket + organic_orders * t.usual_basket - discounts
        gross_margin = (
            p.convert * t.basket * t.margin_rate
            + organic_orders * t.usual_basket * t.usual_margin_rate
        )
        margin = gross_margin - offer_cost - t.contact_cost
        return ExpectedValue(p.purchase, orders, revenue, margin, offer_cost, t.contact_cost)

    def offer_uplift(
        self,
        customers: ArrayLike,
        channel: ArrayLike,
        send_time: ArrayLike,
        offer: ArrayLike,
        **action: Any,
    ) -> ExpectedValue:
        """True uplift of adding ``offer`` to the message: with minus without, shape ``(n,)``."""
        with_offer = self.expected_value(customers, channel, send_time, offer=offer, **action)
        without = self.expected_value(customers, channel, send_time, offer=None, **action)
        return with_offer - without

    def baseline(self, customers: ArrayLike, time: ArrayLike) -> ExpectedValue:
        """Expected outcomes without any contact, over the window from ``time``, shape ``(n,)``."""
        rows = self.customer_rows(customers)
        t_ns = np.broadcast_to(_as_ns(time), rows.shape)
        w = self.config.response.attribution_days
        rate = self._organic_rate(rows, t_ns)
        basket = self.world.average_basket[rows]
        margin_rate = self.world.taste[rows] @ self._category_margin
        orders = rate * w
        zero = np.zeros(rows.shape)
        return ExpectedValue(
            -np.expm1(-orders), orders, orders * basket, orders * basket * margin_rate, zero, zero
        )

    def hour_factor(
        self, customers: ArrayLike, channel: ArrayLike, send_time: ArrayLike
    ) -> np.ndarray:
        """Open multiplier of the send hour: 1 at the customer's peak, shape ``(n,)``."""
        rows = self.customer_rows(customers)
        n = rows.size
        ch = _broadcast(self._channel_codes(channel), n)
        t_ns = _broadcast(_as_ns(send_time), n)
        return self._hour_factor(rows, ch, t_ns)

    def customer_rows(self, customers: ArrayLike) -> np.ndarray:
        """Row indices, shape ``(n,)``, of customers given as indices or ids."""
        values = np.atleast_1d(np.asarray(customers))
        if values.dtype.kind in "iu":
            rows = values.astype(np.intp)
            if rows.size and (rows.min() < 0 or rows.max() >= self.n_customers):
                raise IndexError(f"customer rows must be in [0, {self.n_customers})")
            return rows
        rows = self._customer_index.get_indexer(pd.Index(values.astype(str)))
        if (rows < 0).any():
            unknown = values[rows < 0][:3].tolist()
            raise KeyError(f"unknown customer ids, e.g. {unknown}")
        return rows.astype(np.intp)

    # ------------------------------------------------------------ internals

    def _marginals(self, t: _Terms) -> ResponseProbabilities:
        opened = t.deliver * t.open
        click = opened * (1.0 - t.unsubscribe) * t.click
        convert = click * t.convert
        no_purchase = (1.0 - opened) * (1.0 - self._organic_probability(t, False)) + opened * (
            1.0 - self._organic_probability(t, True)
        ) * (1.0 - (1.0 - t.unsubscribe) * t.click * t.convert)
        return ResponseProbabilities(
            deliver=t.deliver,
            open=opened,
            click=click,
            convert=convert,
            purchase=1.0 - no_purchase,
            unsubscribe=t.deliver * t.unsubscribe,
        )

    def _organic_probability(self, t: _Terms, opened: bool) -> np.ndarray:
        w = float(self.config.response.attribution_days)
        extra = (t.boost - 1.0) * t.boost_days if opened else 0.0
        return -np.expm1(-t.organic_rate * (w + extra))

    def _organic_rate(self, rows: np.ndarray, t_ns: np.ndarray) -> np.ndarray:
        """Mean organic orders per day over the attribution window from ``t_ns``."""
        w = self.config.response.attribution_days
        day = (t_ns - self._start) // DAY_NS
        days = day[:, None] + np.arange(w)[None, :]
        activity = activity_factor(self.world, self.config, rows, days).mean(axis=1)
        return self.world.session_rate[rows] * self._orders_per_session[rows] * activity

    def _hour_factor(self, rows: np.ndarray, ch: np.ndarray, t_ns: np.ndarray) -> np.ndarray:
        local = self.clock.to_local(t_ns, self.world.tz[rows])
        hour = hour_of_day(local)
        weekend = weekday(local) >= 5
        peak = np.where(weekend, self.world.peak_weekend[rows], self.world.peak_weekday[rows])
        floor = _CHANNEL_ARRAYS["off_hours_floor"][ch]
        tolerance = _CHANNEL_ARRAYS["hour_tolerance"][ch]
        width = np.sqrt(self.world.hour_spread[rows] ** 2 + tolerance**2)
        distance = circular_hour_distance(hour, peak)
        return floor + (1.0 - floor) * np.exp(-0.5 * (distance / width) ** 2)

    def _channel_codes(self, channel: ArrayLike) -> np.ndarray:
        """Indices into MESSAGE_CHANNELS of channel names (or of indices, passed through)."""
        values = np.atleast_1d(np.asarray(channel))
        if values.dtype.kind in "iu":
            if values.size and (values.min() < 0 or values.max() >= len(MESSAGE_CHANNELS)):
                raise IndexError(f"channel indices must be in [0, {len(MESSAGE_CHANNELS)})")
            return values.astype(np.intp)
        codes = _codes(values, tuple(c.value for c in MESSAGE_CHANNELS))
        if (codes < 0).any():
            raise ValueError(
                "the response model covers the messaging channels "
                f"{[c.value for c in MESSAGE_CHANNELS]} (in-app and on-site placements are "
                f"not simulated); got {sorted({str(v) for v in pd.unique(values[codes < 0])})}"
            )
        return codes

    def _lookup(self, values: ArrayLike, index: pd.Index, what: str) -> np.ndarray:
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

    def _terms(
        self,
        customers: ArrayLike,
        channel: ArrayLike,
        send_time: ArrayLike,
        kind: ArrayLike,
        category: ArrayLike,
        product: ArrayLike,
        offer: ArrayLike,
        recent_contacts: ArrayLike,
    ) -> _Terms:
        rows = self.customer_rows(customers)
        n = rows.size
        world = self.world
        rc = self.config.response
        ch = _broadcast(self._channel_codes(channel), n)
        t_ns = _broadcast(_as_ns(send_time), n)
        recent = _broadcast(np.asarray(recent_contacts, dtype=float), n)
        kinds = _codes(np.atleast_1d(np.asarray(kind)), _KIND_NAMES)
        if (kinds < 0).any():
            unknown = sorted(
                {str(v) for v in pd.unique(np.atleast_1d(np.asarray(kind))[kinds < 0])}
            )
            raise ValueError(
                f"unknown message kind(s) {unknown} (use one of {sorted(MESSAGE_KINDS)})"
            )
        kind_click = _broadcast(_KIND_CLICK[kinds], n)
        kind_unsub = _broadcast(_KIND_UNSUBSCRIBE[kinds], n)

        prod = _broadcast(self._lookup(product, self._product_index, "product"), n)
        cat = _broadcast(self._category_codes(category), n)
        cat = np.where(prod >= 0, self.catalogue.category[np.maximum(prod, 0)], cat)
        off = _broadcast(self._lookup(offer, self._offer_index, "offer"), n)
        has_offer = off >= 0

        # delivery and opening
        alive = t_ns >= world.created_at[rows]
        lapsed = (world.lapse_day[rows] >= 0) & (
            (t_ns - self._start) // DAY_NS >= world.lapse_day[rows]
        )
        deliver = (1.0 - _CHANNEL_ARRAYS["bounce"][ch]) * alive
        deliver = np.where((ch == _EMAIL) & world.email_invalid[rows], 0.0, deliver)
        responsiveness = world.responsiveness[rows, ch] * np.where(lapsed, LAPSED_ENGAGEMENT, 1.0)
        hour = self._hour_factor(rows, ch, t_ns)
        open_ = np.clip(responsiveness * hour / (1.0 + rc.fatigue_open * recent), 0.0, 0.98)

        # relevance of what the message is about
        affinity = np.where(
            cat >= 0, world.taste[rows, np.maximum(cat, 0)] * len(CATEGORY_NAMES), 1.0
        )
        relevance = rc.relevance_floor + (1.0 - rc.relevance_floor) * np.minimum(
            affinity, _MAX_AFFINITY
        )
        p = np.maximum(prod, 0)
        is_new = (prod >= 0) & self.catalogue.is_new[p]
        early = world.early_adopter[rows]
        relevance *= np.where(
            is_new, 1.0 + rc.new_product_lift * (early - _MEAN_EARLY_ADOPTER), 1.0
        )
        price_ratio = (
            self.catalogue.price[p] / self.catalogue.category_mean_price[self.catalogue.category[p]]
        )
        price_effect = np.clip(
            np.exp(-world.price_sensitivity[rows] * (price_ratio - 1.0) * 0.5), 0.3, 2.0
        )
        relevance *= np.where(prod >= 0, price_effect, 1.0)

        # offer
        o = np.maximum(off, 0)
        appeal = np.where(has_offer, self.offers.appeal[o], 0.0)
        pull = world.promo_sensitivity[rows] * appeal
        click = np.clip(
            _CHANNEL_ARRAYS["click_given_open"][ch]
            * relevance
            * kind_click
            * (1.0 + rc.click_offer_lift * pull),
            0.0,
            0.9,
        )
        convert = np.clip(
            rc.purchase_given_click
            * world.conversion[rows]
            * np.sqrt(relevance)
            * (1.0 + rc.purchase_offer_lift * pull),
            0.0,
            0.9,
        )

        # withdrawal
        relative = world.responsiveness[rows, ch] / _CHANNEL_ARRAYS["base_open"][ch]
        irritation = np.clip(1.6 / (0.4 + relative), 0.4, 4.0)
        local_hour = hour_of_day(self.clock.to_local(t_ns, world.tz[rows]))
        quiet_start, quiet_end = QUIET_HOURS
        quiet = ((local_hour >= quiet_start) | (local_hour < quiet_end)) & _INTRUSIVE[ch]
        unsubscribe = np.clip(
            _CHANNEL_ARRAYS["unsubscribe"][ch]
            * irritation
            * kind_unsub
            * np.where(quiet, QUIET_UNSUBSCRIBE_FACTOR, 1.0)
            * (1.0 + rc.fatigue_unsubscribe * recent),
            0.0,
            rc.unsubscribe_max,
        )

        # organic buying and values
        organic_rate = self._organic_rate(rows, t_ns)
        w = float(rc.attribution_days)
        redeemable = has_offer & self.offers.redeemable[o]
        valid_to = self.offers.valid_to[o]
        boost_days = np.where(redeemable, np.clip((valid_to - t_ns) / DAY_NS, 0.0, w), 0.0)
        boost = 1.0 + rc.organic_offer_lift * pull
        basket, margin_rate = self._basket(rows, cat, prod)
        usual_basket = world.average_basket[rows]
        kind_of_offer = np.where(has_offer, self.offers.kind[o], -1)
        value = self.offers.value[o]

        def discount(order_value: np.ndarray) -> np.ndarray:
            given_up = np.select(
                [kind_of_offer == _PERCENT, kind_of_offer == _FIXED],
                [order_value * value / 100.0, np.minimum(value, order_value)],
                0.0,
            )
            return np.where(redeemable, given_up, 0.0)

        other_cost = np.select(
            [kind_of_offer == _SHIPPING, kind_of_offer == _POINTS],
            [value, value * POINT_VALUE],
            0.0,
        )
        return _Terms(
            deliver=deliver,
            open=open_,
            unsubscribe=unsubscribe * alive,
            click=click,
            convert=convert,
            organic_rate=organic_rate,
            boost_days=boost_days,
            boost=boost,
            basket=basket,
            margin_rate=margin_rate,
            usual_basket=usual_basket,
            usual_margin_rate=world.taste[rows] @ self._category_margin,
            discount=discount(basket),
            usual_discount=discount(usual_basket),
            other_cost=np.where(redeemable, other_cost, 0.0),
            contact_cost=_CHANNEL_ARRAYS["cost"][ch],
            has_offer=redeemable,
        )

    def _basket(
        self, rows: np.ndarray, cat: np.ndarray, prod: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        world = self.world
        qty = self.config.funnel.mean_quantity
        tilt = 1.0 - PRICE_TILT * world.price_sensitivity[rows]
        c = np.maximum(cat, 0)
        p = np.maximum(prod, 0)
        line_usual = world.average_basket[rows] / LINES_PER_ORDER
        line_category = self.catalogue.category_mean_price[c] * tilt * qty
        basket = np.where(cat >= 0, line_category * LINES_PER_ORDER, world.average_basket[rows])
        basket = np.where(
            prod >= 0, self.catalogue.price[p] * qty + (LINES_PER_ORDER - 1.0) * line_usual, basket
        )
        margin_rate = np.where(
            cat >= 0, self._category_margin[c], world.taste[rows] @ self._category_margin
        )
        margin_rate = np.where(
            prod >= 0, self.catalogue.margin[p] / self.catalogue.price[p], margin_rate
        )
        return basket, margin_rate

    def _category_codes(self, category: ArrayLike) -> np.ndarray:
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


def _channel_array(attr: str) -> np.ndarray:
    return np.array([getattr(CHANNEL_RESPONSE[c], attr) for c in MESSAGE_CHANNELS], dtype=float)


_CHANNEL_ARRAYS: dict[str, np.ndarray] = {
    name: _channel_array(name)
    for name in (
        "base_open",
        "off_hours_floor",
        "hour_tolerance",
        "click_given_open",
        "bounce",
        "unsubscribe",
        "cost",
    )
}
_INTRUSIVE = np.array([c in INTRUSIVE_CHANNELS for c in MESSAGE_CHANNELS])
_EMAIL = MESSAGE_CHANNELS.index(Channel.EMAIL)
_KIND_NAMES: tuple[str, ...] = tuple(MESSAGE_KINDS)
_KIND_CLICK = np.array([MESSAGE_KINDS[k][0] for k in _KIND_NAMES])
_KIND_UNSUBSCRIBE = np.array([MESSAGE_KINDS[k][1] for k in _KIND_NAMES])
_PERCENT = OFFER_KINDS.index(OfferKind.PERCENT_DISCOUNT)
_FIXED = OFFER_KINDS.index(OfferKind.FIXED_DISCOUNT)
_SHIPPING = OFFER_KINDS.index(OfferKind.FREE_SHIPPING)
_POINTS = OFFER_KINDS.index(OfferKind.LOYALTY_POINTS)


def _broadcast(values: np.ndarray, n: int) -> np.ndarray:
    values = np.atleast_1d(values)
    if values.size == 1:
        return np.full(n, values[0], dtype=values.dtype)
    if values.size != n:
        raise ValueError(f"expected {n} values (one per customer) or a scalar, got {values.size}")
    return values


def _codes(values: np.ndarray, names: tuple[str, ...]) -> np.ndarray:
    """Index of each value in ``names`` (-1 when absent), vectorised."""
    if values.size == 1:
        value = str(values.flat[0])
        return np.array([names.index(value) if value in names else -1], dtype=np.intp)
    return pd.Categorical(values.astype(str), categories=list(names)).codes.astype(np.intp)


def _as_ns(value: ArrayLike) -> np.ndarray:
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
        return _as_ns(pd.Series(arr))
    raise TypeError(f"cannot read send times from {type(value).__name__}")
