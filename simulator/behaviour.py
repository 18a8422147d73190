"""Organic behaviour of a chunk of customers: sessions, funnel, orders and what follows.

Per customer and day, the number of sessions is Poisson with a rate from the
customer's truth (base rate x seasonality x lapse x weekend x winter sales x
coupon held). Sessions happen at the customer's active hours in their own time
zone, online (web, app, a few on social networks) or in a store. Online, a
session is a search (sometimes) and product views in one category drawn from
the customer's taste; views may go to the cart, carts to checkout and purchase,
and abandoned carts come back later (mostly within 12 hours). Store visits may
end with a basket. Online orders are delivered or collected in store, and some
items get reviewed. Purchases may redeem a coupon, and spending moves loyalty
members up the tiers.

Message-driven visits (clicks, postal readers) come from
:mod:`simulator.campaigns` with their outcome already drawn by the
response model; they go through the same funnel with that outcome imposed.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from features.contract import OfferKind
from nba.channels import Channel
from nba.events import EventType
from simulator.campaigns import MessageHistory
from simulator.clock import DAY_NS, HOUR_NS, MINUTE_NS, SECOND_NS, LocalClock, weekday
from simulator.config import (
    STORE_HOURS,
    TIER_THRESHOLDS,
    WALLET_PASS_SHARE,
    SimulatorConfig,
)
from simulator.eventlog import CHANNEL_CODE, EventBuffer
from simulator.rhythm import (
    local_midnight,
    moment_on_day,
    next_active_moment,
    store_moment,
)
from simulator.world import (
    CATEGORY_NAMES,
    OFFER_KINDS,
    Catalogue,
    CustomerWorld,
    OfferTable,
    activity_factor,
    offer_pull,
    tier_of,
)

#: Share of purchases where a customer without a held coupon types a public promo code,
#: at promotion sensitivity 1.
PUBLIC_CODE_RATE = 0.15
#: Abandoned carts come back 30 minutes to 12 hours later, or 12 hours to 7 days later
#: (log-uniform within each range); a comeback is a new session, so at least 30 minutes later.
QUICK_RETURN_NS = (30 * MINUTE_NS, 12 * HOUR_NS)
SLOW_RETURN_NS = (12 * HOUR_NS, 7 * DAY_NS)

WEB, APP, STORE, SOCIAL = (
    CHANNEL_CODE[c] for c in (Channel.WEB, Channel.APP, Channel.STORE, Channel.SOCIAL)
)


class ProductPicker:
    """Draws products a customer looks at: by category, popularity, novelty and price.

    Only products launched by the day of the view are drawn. Early adopters
    turn to the new collection (products launched during the window); price
    sensitive customers keep the cheaper of two candidates.
    """

    def __init__(self, catalogue: Catalogue, config: SimulatorConfig):
        self.catalogue = catalogue
        self.funnel = config.funnel
        self._old: list[tuple[np.ndarray, np.ndarray]] = []
        self._new: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
        for c in range(len(CATEGORY_NAMES)):
            in_cat = catalogue.category == c
            old = np.flatnonzero(in_cat & (catalogue.launch_day < 0))
            self._old.append((old, np.cumsum(catalogue.popularity[old])))
            new = np.flatnonzero(in_cat & (catalogue.launch_day >= 0))
            new = new[np.argsort(catalogue.launch_day[new], kind="stable")]
            self._new.append((new, np.cumsum(catalogue.popularity[new]), catalogue.launch_day[new]))

    def pick(
        self,
        rng: np.random.Generator,
        category: np.ndarray,
        day: np.ndarray,
        early_adopter: np.ndarray,
        price_sensitivity: np.ndarray,
    ) -> np.ndarray:
        """Product rows, shape ``(m,)``, for views in ``category`` on window ``day``."""
        out = np.empty(category.size, dtype=np.int64)
        price = self.catalogue.price
        for c in range(len(CATEGORY_NAMES)):
            at = np.flatnonzero(category == c)
            if at.size == 0:
                continue
            old, old_cum = self._old[c]
            u = rng.random((2, at.size)) * old_cum[-1]
            first = old[np.searchsorted(old_cum, u[0], side="right").clip(max=old.size - 1)]
            second = old[np.searchsorted(old_cum, u[1], side="right").clip(max=old.size - 1)]
            cheaper = np.where(price[second] < price[first], second, first)
            wants_cheap = rng.random(at.size) < self.funnel.price_choice * price_sensitivity[at]
            chosen = np.where(wants_cheap, cheaper, first)
            new, new_cum, launch = self._new[c]
            if new.size:
                launched = np.searchsorted(launch, day[at], side="right")
                wants_new = (launched > 0) & (
                    rng.random(at.size) < self.funnel.new_product_attraction * early_adopter[at]
                )
                top = new_cum[np.maximum(launched - 1, 0)]
                pos = np.searchsorted(new_cum, rng.random(at.size) * top, side="right")
                pick_new = new[np.minimum(pos, np.maximum(launched - 1, 0))]
                chosen = np.where(wants_new, pick_new, chosen)
            out[at] = chosen
        return out


@dataclass(frozen=True)
class BehaviourResult:
    events: EventBuffer
    final_tier: np.ndarray  # shape (n,), index into TIERS


def _taste_draw(rng: np.random.Generator, taste: np.ndarray, cust: np.ndarray) -> np.ndarray:
    cumulative = np.cumsum(taste[cust], axis=1)
    u = rng.random((cust.size, 1)) * cumulative[:, -1:]
    return np.minimum((cumulative < u).sum(axis=1), taste.shape[1] - 1)


def _within_group_cumsum(values: np.ndarray, group_start: np.ndarray) -> np.ndarray:
    """Inclusive cumulative sum restarting at each group (groups contiguous).

    ``group_start`` gives, for each element, the position of its group's first element.
    """
    total = np.cumsum(values)
    return total - (total[group_start] - values[group_start])


def _log_uniform(rng: np.random.Generator, low: float, high: float, n: int) -> np.ndarray:
    return np.exp(rng.uniform(np.log(low), np.log(high), n)).astype(np.int64)


def simulate_behaviour(
    rng: np.random.Generator,
    rows: np.ndarray,
    world: CustomerWorld,
    config: SimulatorConfig,
    catalogue: Catalogue,
    offers: OfferTable,
    clock: LocalClock,
    picker: ProductPicker,
    messages: MessageHistory,
) -> BehaviourResult:
    """Organic and message-driven behaviour of the chunk ``rows``; ``world`` is its slice."""
    f = config.funnel
    n = rows.size
    start = int(pd.Timestamp(config.start).value)
    end = start + config.days * DAY_NS
    events = EventBuffer()

    # ---- sessions per customer and day
    days = np.arange(config.days)
    day_starts = start + days * DAY_NS
    weekend = weekday(day_starts) >= 5
    weekly_mean = (5.0 + 2.0 * f.weekend_activity) / 7.0
    day_factor = np.where(weekend, f.weekend_activity, 1.0) / weekly_mean
    intensity = world.session_rate[:, None] * activity_factor(world, config, np.arange(n), days)
    intensity *= day_factor[None, :] * _coupon_boost(world, config, offers, messages, n)
    counts = rng.poisson(intensity)
    cust_idx, day_idx = np.nonzero(counts)
    reps = counts[cust_idx, day_idx]
    s_cust = np.repeat(cust_idx, reps)
    s_day = np.repeat(day_idx, reps)
    # a sign-up visit for customers who joined during the window
    joined = np.flatnonzero((world.created_at >= start) & (world.created_at < end))
    s_cust = np.concatenate([s_cust, joined])
    n_organic = s_cust.size
    u = rng.random((3, n_organic))
    in_store = u[0] < world.store_share[s_cust]
    online_channel = np.where(world.app_user[s_cust] & (u[1] < f.app_session_share), APP, WEB)
    online_channel = np.where(u[2] < f.social_share, SOCIAL, online_channel)
    s_channel = np.where(in_store, STORE, online_channel).astype(np.int8)
    organic_days = start + s_day * DAY_NS  # local wall-clock midnight of the session's day
    s_ts = np.concatenate(
        [
            moment_on_day(
                rng, world, s_cust[: s_day.size], clock, organic_days, in_store[: s_day.size]
            ),
            world.created_at[joined],
        ]
    )
    keep = (s_ts >= start) & (s_ts < end) & (s_ts >= world.created_at[s_cust])

    # message-driven visits join the organic ones
    clicks = messages.clicks
    s_cust = np.concatenate([s_cust[keep], clicks.customer])
    s_ts = np.concatenate([s_ts[keep], clicks.timestamp])
    s_channel = np.concatenate([s_channel[keep], clicks.channel]).astype(np.int8)
    m_org = int(keep.sum())
    forced = np.concatenate(
        [np.zeros(m_org, dtype=bool), np.ones(clicks.customer.size, dtype=bool)]
    )
    forced_buy = np.concatenate([np.zeros(m_org, dtype=bool), clicks.converted])
    s_offer = np.concatenate([np.full(m_org, -1), clicks.offer]).astype(np.int64)
    s_category = np.concatenate([np.full(m_org, -1), clicks.category]).astype(np.int64)
    s_first = np.concatenate([np.full(m_org, -1), clicks.product]).astype(np.int64)
    drawn = s_category < 0
    s_category[drawn] = _taste_draw(rng, world.taste, s_cust[drawn])
    s_day = (s_ts - start) // DAY_NS
    n_sessions = s_cust.size

    # ---- online sessions: search, views, cart
    online = s_channel != STORE
    on = np.flatnonzero(online)
    searches = on[(rng.random(on.size) < f.search_share) & ~forced[on]]
    query_of = catalogue.query_props
    query = np.empty(searches.size, dtype=np.int32)
    for c in range(len(CATEGORY_NAMES)):
        at = s_category[searches] == c
        query[at] = query_of[c][rng.integers(0, query_of[c].size, at.sum())]
    events.add(
        rows[s_cust[searches]], s_ts[searches], s_channel[searches], EventType.SEARCH, prop=query
    )

    n_views = rng.geometric(1.0 / f.views_per_session, on.size)
    v_sess = np.repeat(on, n_views)
    v_first = np.repeat(
        np.cumsum(n_views) - n_views, n_views
    )  # position of the session's first view
    is_first_view = np.arange(v_sess.size) == v_first
    v_cust = s_cust[v_sess]
    v_product = picker.pick(
        rng,
        s_category[v_sess],
        s_day[v_sess],
        world.early_adopter[v_cust],
        world.price_sensitivity[v_cust],
    )
    featured = is_first_view & (s_first[v_sess] >= 0)
    v_product[featured] = s_first[v_sess][featured]
    gaps = (rng.exponential(f.view_gap_seconds, v_sess.size) * SECOND_NS).astype(
        np.int64
    ) + SECOND_NS
    v_ts = s_ts[v_sess] + _within_group_cumsum(gaps, v_first)
    v_channel = s_channel[v_sess]
    events.add(rows[v_cust], v_ts, v_channel, EventType.PRODUCT_VIEW, product=v_product)

    p_cart = f.add_to_cart_rate(world.conversion[v_cust]) * (v_channel != SOCIAL)
    carted = rng.random(v_sess.size) < p_cart
    carted |= is_first_view & forced_buy[v_sess]
    rank = _within_group_cumsum(carted.astype(np.int64), v_first)
    removed = carted & (rank >= 2) & (rng.random(v_sess.size) < f.remove_from_cart)
    cart_at = v_ts + 15 * SECOND_NS
    events.add(
        rows[v_cust[carted]],
        cart_at[carted],
        v_channel[carted],
        EventType.ADD_TO_CART,
        product=v_product[carted],
    )
    events.add(
        rows[v_cust[removed]],
        cart_at[removed] + 30 * SECOND_NS,
        v_channel[removed],
        EventType.REMOVE_FROM_CART,
        product=v_product[removed],
    )

    has_cart = np.bincount(v_sess, weights=carted, minlength=n_sessions) > 0
    session_end = np.zeros(n_sessions, dtype=np.int64)
    np.maximum.at(session_end, v_sess, cart_at + 45 * SECOND_NS)
    r = rng.random((3, n_sessions))
    checkout = has_cart & (forced_buy | (r[0] < f.checkout))
    buy_now = np.where(forced, forced_buy, checkout & (r[1] < f.purchase_at_checkout)) & has_cart
    returns = has_cart & ~buy_now & ~forced & (r[2] < f.cart_return)
    quick = rng.random(n_sessions) < config.cart_return_within_12h
    delay = np.where(
        quick,
        _log_uniform(rng, *QUICK_RETURN_NS, n_sessions),
        _log_uniform(rng, *SLOW_RETURN_NS, n_sessions),
    )
    return_at = session_end + delay
    bought = buy_now | returns
    for mask, at in ((checkout, session_end), (returns, return_at)):
        events.add(rows[s_cust[mask]], at[mask], s_channel[mask], EventType.CHECKOUT_STARTED)
    purchase_at = (
        np.where(returns, return_at, session_end) + rng.integers(60, 240, n_sessions) * SECOND_NS
    )

    # online order lines: carted, not removed, in sessions bought now or on return
    line = carted & ~removed & bought[v_sess]
    online_lines = _Lines(
        session=v_sess[line], product=v_product[line], timestamp=purchase_at[v_sess[line]]
    )

    # ---- store visits
    st = np.flatnonzero(~online)
    events.add(rows[s_cust[st]], s_ts[st], STORE, EventType.STORE_VISIT)
    p_store = f.store_purchase_rate(world.conversion[s_cust[st]])
    store_buy = np.where(forced[st], forced_buy[st], rng.random(st.size) < p_store)
    buying = st[store_buy]
    n_items = rng.geometric(1.0 / f.store_items_mean, buying.size)
    i_sess = np.repeat(buying, n_items)
    i_first = np.repeat(np.cumsum(n_items) - n_items, n_items)
    i_category = _taste_draw(rng, world.taste, s_cust[i_sess])
    first_item = np.arange(i_sess.size) == i_first
    i_category[first_item] = s_category[i_sess[first_item]]
    i_cust = s_cust[i_sess]
    i_product = picker.pick(
        rng, i_category, s_day[i_sess], world.early_adopter[i_cust], world.price_sensitivity[i_cust]
    )
    paid_at = s_ts + rng.integers(5, 40, n_sessions) * MINUTE_NS
    store_lines = _Lines(session=i_sess, product=i_product, timestamp=paid_at[i_sess])

    # ---- orders, coupons and revenue
    lines = _Lines.concat(online_lines, store_lines)
    lines = lines.take(lines.timestamp < end)
    order_of_session = np.full(n_sessions, -1)
    sessions_with_order = np.unique(lines.session)
    order_of_session[sessions_with_order] = np.arange(sessions_with_order.size)
    l_order = order_of_session[lines.session]
    o_sess = sessions_with_order
    o_cust = s_cust[o_sess]
    o_channel = s_channel[o_sess]
    o_ts = np.zeros(o_sess.size, dtype=np.int64)
    o_ts[l_order] = lines.timestamp
    l_qty = (
        rng.choice(
            len(f.quantity_weights),
            size=l_order.size,
            p=np.array(f.quantity_weights) / sum(f.quantity_weights),
        )
        + 1
    )
    l_value = catalogue.price[lines.product] * l_qty
    o_value = np.bincount(l_order, weights=l_value, minlength=o_sess.size)
    o_offer = _order_coupons(
        rng, world, config, offers, messages, o_sess, o_cust, o_channel, o_ts, s_offer, forced
    )
    l_offer = o_offer[l_order]
    l_revenue = _discounted(offers, l_offer, l_value, o_value[l_order])
    # drawn here (not with the fulfilment below) so that the purchases carry it
    online_order = o_channel != STORE
    collect = online_order & (rng.random(o_sess.size) < f.click_collect)
    events.add(
        rows[s_cust[lines.session]],
        lines.timestamp,
        s_channel[lines.session],
        EventType.PURCHASE,
        product=lines.product,
        offer=l_offer,
        quantity=l_qty,
        revenue=np.round(l_revenue, 2),
        prop=np.where(collect[l_order], catalogue.collect_prop, -1),
    )
    used = o_offer >= 0
    events.add(
        rows[o_cust[used]],
        o_ts[used],
        o_channel[used],
        EventType.COUPON_REDEEMED,
        offer=o_offer[used],
    )

    # ---- fulfilment and reviews
    deliver = online_order & ~collect
    collect_day = (
        o_ts + rng.integers(f.collect_days[0], f.collect_days[1] + 1, o_sess.size) * DAY_NS
    )
    delivery_day = (
        o_ts + rng.integers(f.delivery_days[0], f.delivery_days[1] + 1, o_sess.size) * DAY_NS
    )
    fulfilled_at = np.where(
        collect,
        np.maximum(store_moment(rng, world, o_cust, clock, collect_day), o_ts + HOUR_NS),
        _daytime(rng, world, o_cust, clock, delivery_day),
    )
    events.add(rows[o_cust[collect]], fulfilled_at[collect], STORE, EventType.CLICK_COLLECT_PICKUP)
    events.add(
        rows[o_cust[deliver]], fulfilled_at[deliver], o_channel[deliver], EventType.ORDER_DELIVERED
    )
    received = np.where(online_order, fulfilled_at, o_ts)[l_order]
    l_cust = o_cust[l_order]
    review_rate = world.review_rate[l_cust] * np.where(online_order[l_order], 1.0, 0.5)
    reviews = rng.random(l_order.size) < review_rate
    wait = rng.integers(f.review_days[0], f.review_days[1] + 1, l_order.size) * DAY_NS
    review_at = next_active_moment(rng, world, l_cust, clock, received + wait)
    review_channel = np.where(online_order[l_order], o_channel[l_order], WEB).astype(np.int8)
    events.add(
        rows[l_cust[reviews]],
        review_at[reviews],
        review_channel[reviews],
        EventType.REVIEW,
        product=lines.product[reviews],
    )

    # ---- loyalty tiers reached by spending
    o_revenue = np.bincount(l_order, weights=l_revenue, minlength=o_sess.size)
    final_tier = _loyalty(events, rows, world, catalogue, o_cust, o_ts, o_channel, o_revenue, end)

    # ---- wallet passes
    adds = world.member & world.app_user & (rng.random(n) < WALLET_PASS_SHARE)
    first = np.maximum(world.created_at, start)
    added_at = first + (rng.random(n) * (end - first)).astype(np.int64)
    events.add(rows[adds], added_at[adds], Channel.WALLET, EventType.WALLET_PASS_ADDED)
    return BehaviourResult(events, final_tier)


@dataclass(frozen=True)
class _Lines:
    session: np.ndarray
    product: np.ndarray
    timestamp: np.ndarray

    def take(self, index: np.ndarray) -> _Lines:
        return _Lines(self.session[index], self.product[index], self.timestamp[index])

    @staticmethod
    def concat(a: _Lines, b: _Lines) -> _Lines:
        return _Lines(
            *(
                np.concatenate([x, y])
                for x, y in zip(
                    (a.session, a.product, a.timestamp),
                    (b.session, b.product, b.timestamp),
                    strict=True,
                )
            )
        )


def _coupon_boost(
    world: CustomerWorld,
    config: SimulatorConfig,
    offers: OfferTable,
    messages: MessageHistory,
    n: int,
) -> np.ndarray:
    """Session-rate multiplier ``(n, days)`` while customers hold an opened coupon."""
    days = config.days
    held = messages.coupons
    start = int(pd.Timestamp(config.start).value)
    first = np.clip((held.start - start) // DAY_NS, 0, days)
    last = np.clip((held.end - start) // DAY_NS + 1, 0, days)
    pull = offer_pull(world, config, held.customer, offers.appeal[held.offer])
    log_boost = np.log1p(config.response.organic_offer_lift * pull)
    diff = np.zeros((n, days + 1))
    np.add.at(diff, (held.customer, first), log_boost)
    np.add.at(diff, (held.customer, last), -log_boost)
    return np.exp(np.cumsum(diff, axis=1)[:, :days])


def _order_coupons(
    rng: np.random.Generator,
    world: CustomerWorld,
    config: SimulatorConfig,
    offers: OfferTable,
    messages: MessageHistory,
    o_sess: np.ndarray,
    o_cust: np.ndarray,
    o_channel: np.ndarray,
    o_ts: np.ndarray,
    s_offer: np.ndarray,
    forced: np.ndarray,
) -> np.ndarray:
    """Offer redeemed by each order (-1: none), shape ``(orders,)``."""
    n = o_sess.size
    redeemable = offers.redeemable
    # 1. a visit caused by a message with an offer uses it
    from_message = s_offer[o_sess]
    ok = (from_message >= 0) & redeemable[np.maximum(from_message, 0)] & forced[o_sess]
    chosen = np.where(ok, from_message, -1)
    # 2. a coupon opened recently is used by most purchases while valid
    held = messages.coupons
    if held.customer.size:
        order = np.lexsort((held.start, held.customer))
        h_cust, h_start, h_end, h_offer = (
            held.customer[order],
            held.start[order],
            held.end[order],
            held.offer[order],
        )
        base = min(int(h_start.min()), int(o_ts.min()) if n else 0)
        key_h = h_cust.astype(np.int64) * (1 << 32) + (h_start - base) // SECOND_NS
        key_o = o_cust.astype(np.int64) * (1 << 32) + (o_ts - base) // SECOND_NS
        pos = np.searchsorted(key_h, key_o, side="right") - 1
        p = np.maximum(pos, 0)
        holding = (pos >= 0) & (h_cust[p] == o_cust) & (h_end[p] >= o_ts)
        use = holding & (chosen < 0) & (rng.random(n) < config.response.coupon_redemption)
        chosen = np.where(use, h_offer[p], chosen)
    # 3. promotion-sensitive customers type a public code of a running offer
    tries = (chosen < 0) & (rng.random(n) < PUBLIC_CODE_RATE * world.promo_sensitivity[o_cust])
    candidates = np.flatnonzero(redeemable & offers.public)  # journey offers are personal
    for _ in range(4):  # rejection sampling: a few rounds find a valid offer for most orders
        pick = candidates[rng.integers(0, candidates.size, n)]
        valid = (offers.valid_from[pick] <= o_ts) & (offers.valid_to[pick] >= o_ts)
        valid &= offers.channel_ok[pick, o_channel] | (o_channel == STORE)
        take = tries & valid
        chosen = np.where(take, pick, chosen)
        tries &= ~take
    return chosen


def _discounted(
    offers: OfferTable, offer: np.ndarray, value: np.ndarray, order_value: np.ndarray
) -> np.ndarray:
    """Line revenue after the order's coupon (fixed amounts spread over the lines)."""
    o = np.maximum(offer, 0)
    kind = np.where(offer >= 0, offers.kind[o], -1)
    percent = kind == OFFER_KINDS.index(OfferKind.PERCENT_DISCOUNT)
    fixed = kind == OFFER_KINDS.index(OfferKind.FIXED_DISCOUNT)
    v = offers.value[o]
    share = np.divide(value, order_value, out=np.zeros_like(value), where=order_value > 0)
    out = np.where(percent, value * (1.0 - v / 100.0), value)
    return np.where(fixed, np.maximum(value - v * share, 0.0), out)


def _daytime(
    rng: np.random.Generator,
    world: CustomerWorld,
    cust: np.ndarray,
    clock: LocalClock,
    day_of: np.ndarray,
) -> np.ndarray:
    """A delivery moment between 9:00 and 18:00 local on the local day of ``day_of``."""
    midnight = local_midnight(clock, world, cust, day_of)
    hour = rng.uniform(STORE_HOURS[0], 18.0, cust.size)
    return clock.to_utc(midnight + (hour * HOUR_NS).astype(np.int64), world.tz[cust])


def _loyalty(
    events: EventBuffer,
    rows: np.ndarray,
    world: CustomerWorld,
    catalogue: Catalogue,
    o_cust: np.ndarray,
    o_ts: np.ndarray,
    o_channel: np.ndarray,
    o_revenue: np.ndarray,
    end: int,
) -> np.ndarray:
    """Emit ``loyalty_tier_reached`` when spending crosses a threshold; return final tiers."""
    n = world.member.size
    order = np.lexsort((o_ts, o_cust))
    cust, ts, channel, revenue = o_cust[order], o_ts[order], o_channel[order], o_revenue[order]
    group_start = np.searchsorted(cust, cust, side="left")
    spend = world.spend_before[cust] + _within_group_cumsum(revenue, group_start)
    after = tier_of(spend, world.member[cust])
    before = np.where(
        np.arange(cust.size) == group_start, world.initial_tier()[cust], np.roll(after, 1)
    )
    up = (after > before) & (ts < end)
    prop = np.array([catalogue.tier_props.get(t, -1) for t in TIER_THRESHOLDS], dtype=np.int32)
    events.add(
        rows[cust[up]],
        ts[up] + SECOND_NS,
        channel[up],
        EventType.LOYALTY_TIER_REACHED,
        prop=prop[after[up] - 1],
    )
    total = np.bincount(o_cust, weights=o_revenue, minlength=n)
    return tier_of(world.spend_before + total, world.member)
