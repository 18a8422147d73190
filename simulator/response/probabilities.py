"""The truth's probabilities and values of messages, from the customers' true traits.

:class:`TrueResponse` turns a :class:`~simulator.response.lookup.MessageBatch`
into :class:`ResponseTerms`: the conditional probabilities (delivered, opened
once delivered, clicked once opened...) and the values behind a message's
outcomes. The terms then give the marginal probabilities
(:meth:`ResponseTerms.marginals`), the expected value within the attribution
window (:meth:`ResponseTerms.expected_value`), and what sampling draws from.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from features.contract import OfferKind
from nba.channels import Channel
from simulator.clock import DAY_NS, LocalClock, circular_hour_distance, hour_of_day, weekday
from simulator.config import (
    CHANNEL_RESPONSE,
    LAPSED_ENGAGEMENT,
    MESSAGE_CHANNELS,
    MESSAGE_KINDS,
    QUIET_HOURS,
    QUIET_UNSUBSCRIBE_FACTOR,
    SimulatorConfig,
)
from simulator.response.history import ShoppingHistory
from simulator.response.lookup import KIND_NAMES, MessageBatch
from simulator.world import (
    CATEGORY_NAMES,
    LINES_PER_ORDER,
    OFFER_KINDS,
    PRICE_TILT,
    Catalogue,
    CustomerWorld,
    OfferTable,
    activity_factor,
    offer_pull,
)

#: Channels where a message at quiet hours irritates.
INTRUSIVE_CHANNELS: frozenset[Channel] = frozenset({Channel.SMS, Channel.PUSH, Channel.CALL_CENTRE})
#: Average early-adopter appetite; new products are neutral for such a customer.
_MEAN_EARLY_ADOPTER = 0.3


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
class ExpectedValue:
    """Expected outcomes of a message within the attribution window, shape ``(n,)``.

    ``margin`` is the product margin net of offer cost, contact cost and the
    expected value lost to an unsubscribe.
    """

    purchase: np.ndarray  # probability of at least one purchase
    orders: np.ndarray  # expected number of orders
    revenue: np.ndarray  # expected revenue, net of discounts
    margin: np.ndarray
    offer_cost: np.ndarray
    contact_cost: np.ndarray
    unsubscribe_cost: np.ndarray  # future value on the channel lost, times P(unsubscribe)

    def __sub__(self, other: ExpectedValue) -> ExpectedValue:
        return ExpectedValue(  # field by field (``fields()`` costs more than the arrays' work)
            self.purchase - other.purchase,
            self.orders - other.orders,
            self.revenue - other.revenue,
            self.margin - other.margin,
            self.offer_cost - other.offer_cost,
            self.contact_cost - other.contact_cost,
            self.unsubscribe_cost - other.unsubscribe_cost,
        )

    @classmethod
    def organic(
        cls, rate: np.ndarray, window_days: float, basket: np.ndarray, margin_rate: np.ndarray
    ) -> ExpectedValue:
        """Expected outcomes without any contact: ``rate`` organic orders a day over the
        window, each of ``basket`` at ``margin_rate``."""
        orders = rate * window_days
        zero = np.zeros(rate.shape)
        return cls(
            -np.expm1(-orders),
            orders,
            orders * basket,
            orders * basket * margin_rate,
            zero,
            zero,
            zero,
        )


@dataclass(frozen=True)
class ResponseTerms:
    """Conditional probabilities and values behind the marginals, each of shape ``(n,)``."""

    window_days: float  # the attribution window
    coupon_redemption: float  # organic purchases of coupon holders that use the coupon
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
    lost_value: np.ndarray  # the customer's future value on the channel, lost if they withdraw

    @property
    def size(self) -> int:
        return int(self.deliver.size)

    def baseline(self) -> ExpectedValue:
        """What :meth:`TrueResponse.baseline` gives for these messages' customers and send
        times, from the terms' own organic rate and usual order (computed once, not twice)."""
        return ExpectedValue.organic(
            self.organic_rate, self.window_days, self.usual_basket, self.usual_margin_rate
        )

    def organic_probability(self, opened: bool) -> np.ndarray:
        """P(an organic purchase within the window), for customers who opened or not."""
        extra = (self.boost - 1.0) * self.boost_days if opened else 0.0
        return -np.expm1(-self.organic_rate * (self.window_days + extra))

    def marginals(self) -> ResponseProbabilities:
        opened = self.deliver * self.open
        click = opened * (1.0 - self.unsubscribe) * self.click
        convert = click * self.convert
        no_purchase = (1.0 - opened) * (1.0 - self.organic_probability(False)) + opened * (
            1.0 - self.organic_probability(True)
        ) * (1.0 - (1.0 - self.unsubscribe) * self.click * self.convert)
        return ResponseProbabilities(
            deliver=self.deliver,
            open=opened,
            click=click,
            convert=convert,
            purchase=1.0 - no_purchase,
            unsubscribe=self.deliver * self.unsubscribe,
        )

    def expected_value(self) -> ExpectedValue:
        """Expected purchases, revenue and margin within the attribution window."""
        p = self.marginals()
        w = self.window_days
        seen = self.deliver * self.open
        organic_orders = self.organic_rate * (w + seen * (self.boost - 1.0) * self.boost_days)
        orders = p.convert + organic_orders
        held_orders = seen * self.organic_rate * self.boost * self.boost_days
        redeemed = np.where(self.has_offer, p.convert, 0.0)  # the message's own orders
        redeemed_usual = np.where(self.has_offer, held_orders * self.coupon_redemption, 0.0)
        discounts = redeemed * self.discount + redeemed_usual * self.usual_discount
        offer_cost = discounts + (redeemed + redeemed_usual) * self.other_cost
        revenue = p.convert * self.basket + organic_orders * self.usual_basket - discounts
        gross_margin = (
            p.convert * self.basket * self.margin_rate
            + organic_orders * self.usual_basket * self.usual_margin_rate
        )
        unsubscribe_cost = p.unsubscribe * self.lost_value
        margin = gross_margin - offer_cost - self.contact_cost - unsubscribe_cost
        return ExpectedValue(
            p.purchase, orders, revenue, margin, offer_cost, self.contact_cost, unsubscribe_cost
        )


@dataclass(frozen=True)
class _MomentEffects:
    click: np.ndarray
    convert: np.ndarray


def _month(t_ns: np.ndarray) -> np.ndarray:
    """Calendar month (1-12, UTC) of instants in ns."""
    return np.asarray(
        t_ns.astype("datetime64[ns]").astype("datetime64[M]").astype(np.int64) % 12 + 1
    )


def _days_from_birthday(birth_date: np.ndarray, t_ns: np.ndarray) -> np.ndarray:
    """Signed days from the nearest birthday (negative: before it), by day of the year."""

    def day_of_year(ns: np.ndarray) -> np.ndarray:
        day = ns.astype("datetime64[ns]").astype("datetime64[D]")
        return np.asarray((day - day.astype("datetime64[Y]")).astype(np.int64))

    return (day_of_year(t_ns) - day_of_year(birth_date) + 182) % 365 - 182


class TrueResponse:
    """Response terms of messages from the customers' true traits (see the package doc)."""

    def __init__(
        self,
        world: CustomerWorld,
        catalogue: Catalogue,
        offers: OfferTable,
        clock: LocalClock,
        config: SimulatorConfig,
        history: ShoppingHistory | None = None,
    ) -> None:
        self.world = world
        self.catalogue = catalogue
        self.offers = offers
        self.clock = clock
        self.config = config
        self.history = history
        self._start = int(pd.Timestamp(config.start).value)
        self._orders_per_session = config.funnel.orders_per_session(
            world.conversion, world.store_share
        )
        margin_share = catalogue.margin / catalogue.price
        self._category_margin = np.array(
            [margin_share[catalogue.category == c].mean() for c in range(len(CATEGORY_NAMES))]
        )
        # once for every customer: a row's value never depends on the batch it is valued in
        self._usual_margin_rate = np.asarray(world.taste @ self._category_margin)
        self._channel_value = self._future_value_per_message()

    def _future_value_per_message(self) -> np.ndarray:
        """Incremental margin of a typical message per customer and channel, ``(n, 5)``.

        An untargeted message at the customer's best hour: opened, clicked,
        converted at their own rates, net of the channel's cost; never below 0.
        """
        world, rc = self.world, self.config.response
        order_margin = world.average_basket * self.usual_margin_rate(np.arange(len(world)))
        buys = rc.purchase_given_click * world.conversion * order_margin
        gain = world.responsiveness * _CHANNEL_ARRAYS["click_given_open"][None, :] * buys[:, None]
        return np.maximum(gain - _CHANNEL_ARRAYS["cost"][None, :], 0.0)

    def terms(self, m: MessageBatch) -> ResponseTerms:
        """The response terms of the messages ``m``."""
        world, rc, fx = self.world, self.config.response, self.config.effects
        rows, ch, t_ns, recent = m.rows, m.channel, m.send_ns, m.recent
        cat, prod, off = m.category, m.product, m.offer
        has_offer = off >= 0

        # delivery and opening
        alive = t_ns >= world.created_at[rows]
        lapsed = (world.lapse_day[rows] >= 0) & (
            (t_ns - self._start) // DAY_NS >= world.lapse_day[rows]
        )
        deliver = (1.0 - _CHANNEL_ARRAYS["bounce"][ch]) * alive
        deliver = np.where((ch == _EMAIL) & world.email_invalid[rows], 0.0, deliver)
        responsiveness = world.responsiveness[rows, ch] * np.where(lapsed, LAPSED_ENGAGEMENT, 1.0)
        hour = self.hour_factor(rows, ch, t_ns)
        tired = _CHANNEL_ARRAYS["fatigue"][ch] * recent
        open_ = np.clip(responsiveness * hour / (1.0 + rc.fatigue_open * tired), 0.0, 0.98)

        # relevance of what the message is about
        affinity = np.where(
            cat >= 0, world.taste[rows, np.maximum(cat, 0)] * len(CATEGORY_NAMES), 1.0
        )
        relevance = rc.relevance_floor + (1.0 - rc.relevance_floor) * np.minimum(
            affinity, rc.max_affinity
        )
        p = np.maximum(prod, 0)
        is_new = (prod >= 0) & self.catalogue.is_new[p]
        early = world.early_adopter[rows]
        launch = np.maximum(1.0 + fx.launch_lift * (early - _MEAN_EARLY_ADOPTER), 0.2)
        relevance *= np.where(
            is_new,
            1.0 + rc.new_product_lift * (early - _MEAN_EARLY_ADOPTER),
            np.where(m.kind == _NEW_COLLECTION, launch, 1.0),
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
        pull = offer_pull(world, self.config, rows, appeal)
        moment = self._moment_effects(m)
        click = np.clip(
            _CHANNEL_ARRAYS["click_given_open"][ch]
            * relevance
            * _KIND_CLICK[m.kind]
            * moment.click
            * (1.0 + rc.click_offer_lift * pull),
            0.0,
            0.9,
        )
        convert = np.clip(
            rc.purchase_given_click
            * world.conversion[rows]
            * np.sqrt(relevance)
            * _KIND_CONVERT[m.kind]
            * moment.convert
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
            * _KIND_UNSUBSCRIBE[m.kind]
            * np.where(quiet, QUIET_UNSUBSCRIBE_FACTOR, 1.0)
            * (1.0 + rc.fatigue_unsubscribe * tired),
            0.0,
            rc.unsubscribe_max,
        )

        # organic buying and values
        organic_rate = self.organic_rate(rows, t_ns)
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

        # Free shipping and points cost the retailer what its offers table says per
        # redemption (the fee given up; the points' cost after breakage), not their face
        # value: 500 birthday points are 5.00 to the customer and 2.50 to the retailer.
        other_cost = np.where(
            (kind_of_offer == _SHIPPING) | (kind_of_offer == _POINTS), self.offers.cost[o], 0.0
        )
        return ResponseTerms(
            window_days=w,
            coupon_redemption=rc.coupon_redemption,
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
            usual_margin_rate=self.usual_margin_rate(rows),
            discount=discount(basket),
            usual_discount=discount(usual_basket),
            other_cost=np.where(redeemable, other_cost, 0.0),
            contact_cost=_CHANNEL_ARRAYS["cost"][ch],
            has_offer=redeemable,
            lost_value=fx.unsubscribe_future_messages * self._channel_value[rows, ch],
        )

    def _moment_effects(self, m: MessageBatch) -> _MomentEffects:
        """Click and conversion multipliers of what the customer is living at send time:
        their cart and browsing, their birthday, their season (see MarketingEffects)."""
        fx = self.config.effects
        rows, t_ns = m.rows, m.send_ns
        click = np.ones(m.size)
        convert = np.ones(m.size)

        # reminders: the cart's age, the browsing's recency and intensity
        k = fx.cart_decay_exponent
        stale = fx.stale_cart_hours
        cart = m.kind == _CART_REMINDER
        browse = m.kind == _BROWSE_REMINDER
        if self.history is not None and (cart.any() or browse.any()):
            at = np.flatnonzero(cart)
            age = self.history.cart_age_hours(rows[at], m.product[at], t_ns[at])
            convert[at] = np.maximum(np.nan_to_num(age, nan=stale), 1.0) ** -k
            at = np.flatnonzero(browse)
            since = self.history.hours_since_view(rows[at], t_ns[at])
            recency = np.maximum(np.nan_to_num(since, nan=stale) / fx.browse_reference_hours, 1.0)
            views = self.history.views(rows[at], t_ns[at], window_ns=DAY_NS)
            low, high = fx.browse_intensity_range
            intensity = np.clip(
                (views / self.config.funnel.views_per_session) ** fx.browse_intensity_exponent,
                low,
                high,
            )
            convert[at] = recency**-k * intensity

        # birthday window
        birthday = m.kind == _BIRTHDAY
        if birthday.any():
            days = _days_from_birthday(self.world.birth_date[rows], t_ns)
            first, last = fx.birthday_window_days
            inside = (days >= first) & (days <= last)
            in_click = fx.birthday_click_vs_promo / _KIND_CLICK[_BIRTHDAY]
            per_click = fx.birthday_transactions_vs_promo / fx.birthday_click_vs_promo
            click *= np.where(birthday, np.where(inside, in_click, fx.birthday_off_window), 1.0)
            convert *= np.where(birthday & inside, per_click, 1.0)

        # seasonal buyers, in and just before their months
        season = self.world.season_months[rows]
        seasonal = season[:, 0] > 0
        if seasonal.any():
            lead = t_ns + fx.season_lead_days * DAY_NS
            months = np.stack([_month(t_ns), _month(lead)], axis=1)
            near = (months[:, :, None] == season[:, None, :]).any(axis=(1, 2))
            factor = np.where(near, fx.season_response_lift, fx.season_off_response)
            convert *= np.where(seasonal, factor, 1.0)
        return _MomentEffects(click, convert)

    def baseline(self, rows: np.ndarray, t_ns: np.ndarray) -> ExpectedValue:
        """Expected outcomes without any contact, over the window from ``t_ns``."""
        return ExpectedValue.organic(
            self.organic_rate(rows, t_ns),
            self.config.response.attribution_days,
            self.world.average_basket[rows],
            self.usual_margin_rate(rows),
        )

    def organic_rate(self, rows: np.ndarray, t_ns: np.ndarray) -> np.ndarray:
        """Mean organic orders per day over the attribution window from ``t_ns``."""
        w = self.config.response.attribution_days
        day = (t_ns - self._start) // DAY_NS
        days = day[:, None] + np.arange(w)[None, :]
        activity = activity_factor(self.world, self.config, rows, days).mean(axis=1)
        return self.world.session_rate[rows] * self._orders_per_session[rows] * activity

    def usual_margin_rate(self, rows: np.ndarray) -> np.ndarray:
        """Margin rate of a customer's usual order (their taste over the categories): the
        same value whichever batch the row is valued in."""
        return self._usual_margin_rate[rows]

    def hour_factor(self, rows: np.ndarray, ch: np.ndarray, t_ns: np.ndarray) -> np.ndarray:
        """Open multiplier of the send hour: 1 at the peak, down to the channel's floor."""
        local = self.clock.to_local(t_ns, self.world.tz[rows])
        hour = hour_of_day(local)
        weekend = weekday(local) >= 5
        peak = np.where(weekend, self.world.peak_weekend[rows], self.world.peak_weekday[rows])
        floor = _CHANNEL_ARRAYS["off_hours_floor"][ch]
        tolerance = _CHANNEL_ARRAYS["hour_tolerance"][ch]
        width = np.sqrt(self.world.hour_spread[rows] ** 2 + tolerance**2)
        distance = circular_hour_distance(hour, peak)
        return floor + (1.0 - floor) * np.exp(-0.5 * (distance / width) ** 2)

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
        margin_rate = np.where(cat >= 0, self._category_margin[c], self.usual_margin_rate(rows))
        margin_rate = np.where(
            prod >= 0, self.catalogue.margin[p] / self.catalogue.price[p], margin_rate
        )
        return basket, margin_rate


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
        "fatigue",
    )
}
_INTRUSIVE = np.array([c in INTRUSIVE_CHANNELS for c in MESSAGE_CHANNELS])
_EMAIL = MESSAGE_CHANNELS.index(Channel.EMAIL)
_KIND_CLICK = np.array([MESSAGE_KINDS[k][0] for k in KIND_NAMES])
_KIND_CONVERT = np.array([MESSAGE_KINDS[k][1] for k in KIND_NAMES])
_KIND_UNSUBSCRIBE = np.array([MESSAGE_KINDS[k][2] for k in KIND_NAMES])
_CART_REMINDER = KIND_NAMES.index("cart_reminder")
_BROWSE_REMINDER = KIND_NAMES.index("browse_reminder")
_BIRTHDAY = KIND_NAMES.index("birthday")
_NEW_COLLECTION = KIND_NAMES.index("new_collection")
_PERCENT = OFFER_KINDS.index(OfferKind.PERCENT_DISCOUNT)
_FIXED = OFFER_KINDS.index(OfferKind.FIXED_DISCOUNT)
_SHIPPING = OFFER_KINDS.index(OfferKind.FREE_SHIPPING)
_POINTS = OFFER_KINDS.index(OfferKind.LOYALTY_POINTS)
