"""The simulated retailer's world: catalogue, offers and customers with their true traits.

Everything here is drawn once per run, before any event: products and offers
from the run's catalogue stream, customers chunk by chunk from each chunk's
own stream. The true traits (:class:`CustomerWorld`) drive the behaviour and
the response model; only the observable attributes reach the contract tables.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, fields

import numpy as np
import pandas as pd

from features.contract import GENDERS, OfferKind
from nba.channels import CONSENT_CHANNELS, Channel
from simulator.clock import DAY_NS, HOUR_NS, LocalClock
from simulator.config import (
    ACTIVE_HOURS,
    AGE_MAX,
    AGE_MEAN,
    AGE_MIN,
    AGE_SD,
    BIRTH_DATE_MISSING,
    BRANDS_PER_CATEGORY,
    CATALOGUE_AGE_DAYS,
    CATEGORIES,
    CHANNEL_RESPONSE,
    CITIES,
    DECLARED_CHANNEL_ACCURACY,
    DECLARED_CHANNEL_SHARE,
    DECLARED_HOURS_SHARE,
    ELIGIBILITY_EXPRESSIONS,
    ELIGIBILITY_SHARE,
    GENDER_MISSING,
    GENDER_SHARES,
    HOUR_SPREAD_RANGE,
    INVALID_EMAIL_SHARE,
    LAPSED_ACTIVITY,
    LOYALTY_MEMBER_SHARE,
    MEAN_STOCK,
    MESSAGE_CHANNELS,
    OFFER_KIND_SHARES,
    OFFER_VALUES,
    OUT_OF_STOCK_SHARE,
    PEAK_JITTER_HOURS,
    PERSONA_PROFILES,
    PERSONAS,
    POINT_VALUE,
    POPULARITY_SIGMA,
    PREFERRED_CHANNEL_BOOST,
    PREFERRED_CHANNEL_SHARES,
    RESPONSIVENESS_SIGMA,
    SEASON_FIRST_MONTH_WEIGHTS,
    SEASON_FIRST_MONTHS,
    SEASON_IN_FACTOR,
    SEASON_OUT_FACTOR,
    SESSION_RATE_SHAPE,
    TASTE_CONCENTRATION,
    TENURE_MAX_DAYS,
    TENURE_MEAN_DAYS,
    TIER_THRESHOLDS,
    WEEKEND_PULL,
    WEEKEND_PULL_HOUR,
    SimulatorConfig,
)
from simulator.eventlog import CHANNEL_CODE, CHANNEL_CODES, padded_ids

TIMEZONES: tuple[str, ...] = tuple(dict.fromkeys(c.timezone for c in CITIES))
CATEGORY_NAMES: tuple[str, ...] = tuple(c.name for c in CATEGORIES)
OFFER_KINDS: tuple[OfferKind, ...] = tuple(OfferKind)
TIERS: tuple[str, ...] = ("none", *TIER_THRESHOLDS)
#: Channel indices (into MESSAGE_CHANNELS) of push, for app-only rules.
PUSH = MESSAGE_CHANNELS.index(Channel.PUSH)
EMAIL = MESSAGE_CHANNELS.index(Channel.EMAIL)
#: Mean items per order, for expected basket values.
LINES_PER_ORDER = 1.25
#: Price-sensitive customers pick the cheaper of two candidates (FunnelConstants.price_choice
#: = 0.6 at sensitivity 1); the cheaper of two lognormal prices is ~30% below the mean,
#: so baskets shrink by about 0.6 x 0.3 = 0.18 x sensitivity.
PRICE_TILT = 0.18
_SYLLABLES = ("lu", "ma", "no", "ri", "ka", "ve", "so", "ta", "mi", "dra", "zen", "or", "el", "po")


def _ns(moment: dt.datetime) -> int:
    return int(pd.Timestamp(moment).value)


def _pick(rng: np.random.Generator, weights: np.ndarray, n: int) -> np.ndarray:
    weights = np.asarray(weights, dtype=float)
    return rng.choice(weights.size, size=n, p=weights / weights.sum())


# ------------------------------------------------------------------ catalogue


@dataclass(frozen=True)
class Catalogue:
    """Products as arrays of shape ``(n_products,)``, plus the properties vocabulary.

    ``launch_day`` is the day of the window the product went on sale (negative:
    before the window). ``properties`` holds the JSON strings events can carry
    (search queries, loyalty tiers, click-and-collect fulfilment); ``query_props[k]``
    lists the query entries that fit category ``k``.
    """

    products: pd.DataFrame
    truth: pd.DataFrame
    category: np.ndarray
    price: np.ndarray
    margin: np.ndarray
    popularity: np.ndarray
    launch_day: np.ndarray
    is_new: np.ndarray
    category_mean_price: np.ndarray  # shape (n_categories,)
    properties: tuple[str, ...]
    query_props: tuple[np.ndarray, ...]
    tier_props: dict[str, int]
    #: The properties entry of a click-and-collect order's purchases.
    collect_prop: int = -1


def build_catalogue(config: SimulatorConfig, rng: np.random.Generator) -> Catalogue:
    """Products per category with lognormal prices, popularity and launch dates."""
    n = config.n_products
    k = len(CATEGORIES)
    shares = np.array([c.catalogue_share for c in CATEGORIES])
    counts = np.ones(k, dtype=int) + np.floor(shares / shares.sum() * (n - k)).astype(int)
    counts[np.argsort(-shares)[: n - counts.sum()]] += 1
    category = np.repeat(np.arange(k), counts)

    medians = np.array([c.median_price for c in CATEGORIES])[category]
    sigmas = np.array([c.price_sigma for c in CATEGORIES])[category]
    raw_price = rng.lognormal(np.log(medians), sigmas)
    price = np.maximum(np.ceil(raw_price) - 0.01, 1.99)
    margin_rate = np.array([c.margin_rate for c in CATEGORIES])[category]
    margin = np.round(price * np.clip(margin_rate * rng.uniform(0.8, 1.2, n), 0.05, 0.9), 2)
    popularity = rng.lognormal(0.0, POPULARITY_SIGMA, n)

    # the new collection never takes a category's first product, so every category
    # has products on sale from day one
    first_of_category = np.concatenate([[0], np.cumsum(counts)[:-1]])
    eligible = np.setdiff1d(np.arange(n), first_of_category)
    n_new = min(round(config.new_collection_share * n), eligible.size)
    is_new = np.zeros(n, dtype=bool)
    is_new[rng.choice(eligible, size=n_new, replace=False)] = True
    launch_day = -rng.integers(1, CATALOGUE_AGE_DAYS + 1, n)
    if n_new:
        drops = np.array(config.collection_days)
        launch_day[is_new] = drops[rng.integers(0, drops.size, n_new)]
    stock = np.round(rng.gamma(2.0, MEAN_STOCK / 2.0, n) * np.where(is_new, 2.0, 1.0)).astype(
        np.int64
    )
    stock[rng.random(n) < OUT_OF_STOCK_SHARE] = 0

    brand_names = _brand_names(rng, k * BRANDS_PER_CATEGORY)
    brand = category * BRANDS_PER_CATEGORY + rng.integers(0, BRANDS_PER_CATEGORY, n)
    noun_of = [np.array(c.nouns, dtype=object) for c in CATEGORIES]
    noun = np.empty(n, dtype=object)
    for c in range(k):
        mask = category == c
        noun[mask] = noun_of[c][rng.integers(0, len(CATEGORIES[c].nouns), mask.sum())]
    brands = np.array(brand_names, dtype=object)[brand]
    names = (
        brands
        + " "
        + noun
        + " "
        + pd.Series(np.arange(n) % 1000).astype(str).str.zfill(3).to_numpy()
    )

    width = max(5, len(str(n)))
    product_ids = padded_ids("P", 1, n, width).to_numpy(zero_copy_only=False)
    start = pd.Timestamp(config.start).tz_localize(None)
    launch_date = start + pd.to_timedelta(launch_day, unit="D")
    products = pd.DataFrame(
        {
            "product_id": product_ids,
            "name": names.astype(str),
            "category": np.array(CATEGORY_NAMES, dtype=object)[category].astype(str),
            "brand": brands.astype(str),
            "price": price,
            "margin": margin,
            "stock": stock,
            "launch_date": pd.DatetimeIndex(launch_date).normalize().astype("datetime64[ns]"),
        }
    )
    truth = pd.DataFrame(
        {
            "product_id": product_ids,
            "category": products["category"],
            "popularity": popularity,
            "is_new_collection": is_new,
            "launch_day": launch_day,
        }
    )
    weights = popularity * 1.0
    cat_mean = np.array(
        [np.average(price[category == c], weights=weights[category == c]) for c in range(k)]
    )

    # properties vocabulary: one search query per category noun and per brand, then tiers
    properties: list[str] = []
    query_props: list[np.ndarray] = []
    for c, spec in enumerate(CATEGORIES):
        terms = (
            list(spec.nouns) + brand_names[c * BRANDS_PER_CATEGORY : (c + 1) * BRANDS_PER_CATEGORY]
        )
        first = len(properties)
        properties += [json.dumps({"query": term.lower()}) for term in terms]
        query_props.append(np.arange(first, len(properties)))
    tier_props = {}
    for tier in TIER_THRESHOLDS:
        tier_props[tier] = len(properties)
        properties.append(json.dumps({"tier": tier}))
    collect_prop = len(properties)
    properties.append(json.dumps({"fulfilment": "click_collect"}))
    return Catalogue(
        products=products,
        truth=truth,
        category=category,
        price=price,
        margin=margin,
        popularity=popularity,
        launch_day=launch_day,
        is_new=is_new,
        category_mean_price=cat_mean,
        properties=tuple(properties),
        query_props=tuple(query_props),
        tier_props=tier_props,
        collect_prop=collect_prop,
    )


def _brand_names(rng: np.random.Generator, n: int) -> list[str]:
    names: list[str] = []
    while len(names) < n:
        parts = rng.choice(len(_SYLLABLES), size=int(rng.integers(2, 4)))
        name = "".join(_SYLLABLES[i] for i in parts).capitalize()
        if name not in names:
            names.append(name)
    return names


# ------------------------------------------------------------------ offers


@dataclass(frozen=True)
class OfferTable:
    """Offers as arrays of shape ``(n_offers,)``.

    ``appeal`` is the offer's value as a share of an average basket (a 20% discount
    is 0.2, free shipping ~0.08, content 0): what moves promotion-sensitive customers.
    ``channel_ok`` has shape ``(n_offers, len(CHANNEL_CODES))``.
    """

    offers: pd.DataFrame
    truth: pd.DataFrame
    kind: np.ndarray  # index into OFFER_KINDS
    value: np.ndarray
    cost: np.ndarray
    valid_from: np.ndarray  # int64 ns UTC
    valid_to: np.ndarray  # int64 ns UTC
    channel_ok: np.ndarray
    appeal: np.ndarray
    journey: np.ndarray  # bool: a triggered journey's offer (never a campaign's nor a public code)

    @property
    def redeemable(self) -> np.ndarray:
        """Offers a customer can use at checkout (content offers are not)."""
        return self.kind != OFFER_KINDS.index(OfferKind.CONTENT)

    @property
    def public(self) -> np.ndarray:
        """Offers campaigns may carry and shoppers may type as a code (not journey offers)."""
        return ~self.journey

    def with_journey_offers(self, config: SimulatorConfig, average_basket: float) -> OfferTable:
        """This table with ``config.journey_offers`` appended: valid from a month before
        the window to a year after it, on their own channels, worth what their kind and
        value say (:func:`offer_appeal`). No random draw: the campaign offers, and so the
        history, are the same with or without them."""
        extra = config.journey_offers
        if not extra:
            return self
        ids = [o.id for o in extra]
        clash = sorted(set(ids) & set(self.offers["offer_id"].astype(str)))
        if clash:
            raise ValueError(f"journey offer ids {clash} are also campaign offer ids")
        n = len(extra)
        kind = np.array([OFFER_KINDS.index(o.kind) for o in extra])
        value = np.array([float(o.value) for o in extra])
        cost = np.array([float(o.cost) for o in extra])
        appeal = np.array([offer_appeal(o.kind, o.value, average_basket) for o in extra])
        valid_from = np.full(n, _ns(config.start) - 30 * DAY_NS, dtype=np.int64)
        valid_to = np.full(n, _ns(config.end) + 365 * DAY_NS, dtype=np.int64)
        channel_ok = np.zeros((n, len(CHANNEL_CODES)), dtype=bool)
        for row, offer in enumerate(extra):
            channel_ok[row, [CHANNEL_CODE[c] for c in offer.channels]] = True
        rows = pd.DataFrame(
            {
                "offer_id": ids,
                "name": [o.name for o in extra],
                "kind": [o.kind.value for o in extra],
                "value": value,
                "cost": cost,
                "valid_from": pd.to_datetime(valid_from, utc=True).astype("datetime64[ns, UTC]"),
                "valid_to": pd.to_datetime(valid_to, utc=True).astype("datetime64[ns, UTC]"),
                "channels": ["|".join(c.value for c in o.channels) for o in extra],
                "daily_budget": pd.array([o.daily_budget for o in extra], dtype="Int64"),
                "eligibility": pd.Series([o.eligibility for o in extra], dtype=object),
            }
        )
        truth = pd.DataFrame({"offer_id": ids, "appeal": appeal, "evergreen": True})
        return OfferTable(
            offers=pd.concat([self.offers, rows], ignore_index=True),
            truth=pd.concat([self.truth, truth], ignore_index=True),
            kind=np.concatenate([self.kind, kind]),
            value=np.concatenate([self.value, value]),
            cost=np.concatenate([self.cost, cost]),
            valid_from=np.concatenate([self.valid_from, valid_from]),
            valid_to=np.concatenate([self.valid_to, valid_to]),
            channel_ok=np.vstack([self.channel_ok, channel_ok]),
            appeal=np.concatenate([self.appeal, appeal]),
            journey=np.concatenate([self.journey, np.ones(n, dtype=bool)]),
        )


def offer_appeal(kind: OfferKind, value: float, average_basket: float) -> float:
    """An offer's appeal: its value as a share of an average basket (a 20 % discount is
    0.2, free shipping worth a 4.5 fee 4.5 / basket, 200 points at 0.01 2 / basket,
    content 0).

    >>> offer_appeal(OfferKind.PERCENT_DISCOUNT, 20, 50.0)
    0.2
    >>> offer_appeal(OfferKind.FREE_SHIPPING, 4.5, 50.0)
    0.09
    """
    if kind is OfferKind.PERCENT_DISCOUNT:
        return float(value) / 100
    if kind in (OfferKind.FIXED_DISCOUNT, OfferKind.FREE_SHIPPING):
        return float(value) / average_basket
    if kind is OfferKind.LOYALTY_POINTS:
        return float(value) * POINT_VALUE / average_basket
    return 0.0


def build_offers(
    config: SimulatorConfig, rng: np.random.Generator, catalogue: Catalogue
) -> OfferTable:
    """Offers of every kind; about 40% valid over the whole window ("evergreen")."""
    n = config.n_offers
    category_shares = np.array([c.catalogue_share for c in CATEGORIES])
    average_basket = float(
        category_shares
        @ catalogue.category_mean_price
        / category_shares.sum()
        * LINES_PER_ORDER
        * config.funnel.mean_quantity
    )
    kinds = np.array(list(OFFER_KIND_SHARES))
    shares = np.array(list(OFFER_KIND_SHARES.values()))
    kind_code = np.concatenate(
        [np.arange(len(kinds)), _pick(rng, shares, n - len(kinds))]
    )  # at least one of each kind
    kind = np.array([OFFER_KINDS.index(kinds[i]) for i in kind_code])
    first_of_kind = np.zeros(n, dtype=bool)
    first_of_kind[: len(kinds)] = True
    evergreen = first_of_kind | (rng.random(n) < 0.4)

    value = np.empty(n)
    cost = np.empty(n)
    appeal = np.empty(n)
    names: list[str] = []
    for i in range(n):  # one loop over a few dozen offers
        k = OFFER_KINDS[kind[i]]
        options = OFFER_VALUES[k]
        value[i] = options[int(rng.integers(0, len(options)))]
        appeal[i] = offer_appeal(k, value[i], average_basket)
        if k is OfferKind.PERCENT_DISCOUNT:
            cost[i] = value[i] / 100 * average_basket
            names.append(f"{value[i]:g}% off")
        elif k is OfferKind.FIXED_DISCOUNT:
            cost[i] = value[i]
            names.append(f"{value[i]:g} off your order")
        elif k is OfferKind.FREE_SHIPPING:
            cost[i] = value[i]
            names.append("free shipping")
        elif k is OfferKind.LOYALTY_POINTS:
            cost[i] = value[i] * POINT_VALUE
            names.append(f"{value[i]:g} bonus points")
        else:
            cost[i] = 0.0
            names.append("style guide")
    cost = np.round(cost, 2)

    start = _ns(config.start)
    end = _ns(config.end)
    month = 30 * DAY_NS
    from_day = rng.integers(0, max(config.days - 7, 1), n)
    length = rng.integers(7, 29, n)
    valid_from = np.where(evergreen, start - month, start + from_day * DAY_NS)
    valid_to = np.where(evergreen, end + month, valid_from + length * DAY_NS - 1_000_000_000)

    base = [Channel.EMAIL, Channel.SMS, Channel.PUSH, Channel.POSTAL, Channel.WEB, Channel.APP]
    extra = [Channel.CALL_CENTRE, Channel.WALLET]
    channel_ok = np.zeros((n, len(CHANNEL_CODES)), dtype=bool)
    everywhere = np.array([CHANNEL_CODE[c] for c in base])
    channel_ok[np.ix_(evergreen, everywhere)] = True
    for c in extra:
        channel_ok[:, CHANNEL_CODE[c]] = rng.random(n) < 0.3
    pool = base + extra
    for row in np.flatnonzero(~evergreen):
        chosen = rng.choice(len(pool), size=int(rng.integers(2, 5)), replace=False)
        channel_ok[row, [CHANNEL_CODE[pool[j]] for j in chosen]] = True
    channel_names = np.array([c.value for c in CHANNEL_CODES])
    channels = ["|".join(channel_names[row]) for row in channel_ok]

    is_content = kind == OFFER_KINDS.index(OfferKind.CONTENT)
    budget = np.maximum(10, np.round(config.n_customers * rng.uniform(0.002, 0.01, n))).astype(
        float
    )
    budget[is_content | (rng.random(n) < 0.2)] = np.nan
    expressions = np.array([*ELIGIBILITY_EXPRESSIONS, None], dtype=object)
    eligibility = expressions[
        np.where(
            rng.random(n) < ELIGIBILITY_SHARE,
            rng.integers(0, len(ELIGIBILITY_EXPRESSIONS), n),
            len(ELIGIBILITY_EXPRESSIONS),
        )
    ]
    width = max(3, len(str(n)))
    offer_ids = padded_ids("O", 1, n, width).to_numpy(zero_copy_only=False)
    offers = pd.DataFrame(
        {
            "offer_id": offer_ids,
            "name": names,
            "kind": [OFFER_KINDS[i].value for i in kind],
            "value": value,
            "cost": cost,
            "valid_from": pd.to_datetime(valid_from, utc=True).astype("datetime64[ns, UTC]"),
            "valid_to": pd.to_datetime(valid_to, utc=True).astype("datetime64[ns, UTC]"),
            "channels": channels,
            "daily_budget": pd.array(budget, dtype="Int64"),
            "eligibility": pd.Series(eligibility, dtype=object),
        }
    )
    truth = pd.DataFrame({"offer_id": offer_ids, "appeal": appeal, "evergreen": evergreen})
    campaign = OfferTable(
        offers,
        truth,
        kind,
        value,
        cost,
        valid_from,
        valid_to,
        channel_ok,
        appeal,
        journey=np.zeros(n, dtype=bool),
    )
    return campaign.with_journey_offers(config, average_basket)


# ------------------------------------------------------------------ customers


@dataclass(frozen=True)
class CustomerWorld:
    """True traits of customers: arrays with first dimension ``n`` (customers).

    Channel-indexed arrays (``consent``, ``consent_at``, ``responsiveness``) have
    shape ``(n, 5)`` in :data:`MESSAGE_CHANNELS` order; ``taste`` has shape
    ``(n, n_categories)`` and rows summing to 1. Times are int64 ns UTC; days
    are days of the window (negative: before it). -1 means "none".
    """

    persona: np.ndarray  # index into PERSONAS
    city: np.ndarray  # index into CITIES
    tz: np.ndarray  # index into TIMEZONES
    created_at: np.ndarray
    created_day: np.ndarray
    app_user: np.ndarray
    consent: np.ndarray  # opted in before or at creation
    consent_at: np.ndarray
    preferred: np.ndarray  # true preferred channel, index into MESSAGE_CHANNELS
    responsiveness: np.ndarray  # open probability at the best hour
    declared_channel: np.ndarray  # index into MESSAGE_CHANNELS or -1
    declared_hours: np.ndarray  # (start hour, or -1) for "a-(a+3)"
    peak_weekday: np.ndarray
    peak_weekend: np.ndarray
    hour_spread: np.ndarray
    taste: np.ndarray
    price_sensitivity: np.ndarray
    promo_sensitivity: np.ndarray
    early_adopter: np.ndarray
    season_months: np.ndarray  # shape (n, 2), 0 = not seasonal
    birth_date: np.ndarray  # int64 ns, naive midnight
    birth_declared: np.ndarray
    gender: np.ndarray  # index into GENDERS or -1
    session_rate: np.ndarray  # sessions per day at activity 1
    conversion: np.ndarray  # multiplier on add-to-cart and store purchase
    store_share: np.ndarray
    review_rate: np.ndarray
    lapse_day: np.ndarray
    member: np.ndarray  # loyalty programme member
    spend_before: np.ndarray  # programme-year spend before the window
    email_invalid: np.ndarray
    average_basket: np.ndarray
    discount_threshold: np.ndarray  # share of the basket below which an offer does not move them
    discount_response: np.ndarray  # idiosyncratic multiplier of an offer's pull

    def __len__(self) -> int:
        return int(self.persona.shape[0])

    def slice(self, start: int, stop: int) -> CustomerWorld:
        return CustomerWorld(**{f.name: getattr(self, f.name)[start:stop] for f in fields(self)})

    @staticmethod
    def concat(parts: list[CustomerWorld]) -> CustomerWorld:
        return CustomerWorld(
            **{
                f.name: np.concatenate([getattr(p, f.name) for p in parts])
                for f in fields(CustomerWorld)
            }
        )

    def initial_tier(self) -> np.ndarray:
        """Loyalty tier index (into TIERS) at the start of the window."""
        return tier_of(self.spend_before, self.member)


def tier_of(spend: np.ndarray, member: np.ndarray) -> np.ndarray:
    """Tier index into :data:`TIERS` for a programme-year spend (0: not a member)."""
    thresholds = np.array(list(TIER_THRESHOLDS.values()))
    return np.where(member, np.searchsorted(thresholds, spend, side="right"), 0)


def build_customers(
    config: SimulatorConfig,
    rng: np.random.Generator,
    n: int,
    clock: LocalClock,
    catalogue: Catalogue,
) -> CustomerWorld:
    """Draw ``n`` customers' traits (one chunk)."""
    start = _ns(config.start)
    persona = _pick(rng, np.array(config.persona_mix.shares()), n)
    profiles = [PERSONA_PROFILES[p] for p in PERSONAS]

    def by_persona(attr: str) -> np.ndarray:
        return np.array([getattr(p, attr) for p in profiles])[persona]

    def beta_by_persona(attr: str) -> np.ndarray:
        shape = np.array([getattr(p, attr) for p in profiles])[persona]
        return rng.beta(shape[:, 0], shape[:, 1])

    city = _pick(rng, np.array([c.weight for c in CITIES]), n)
    tz = np.array([TIMEZONES.index(c.timezone) for c in CITIES])[city]

    # rhythm of the day
    cluster = _pick(rng, np.array([a.share for a in ACTIVE_HOURS]), n)
    peak_weekday = (
        np.array([a.peak_hour for a in ACTIVE_HOURS])[cluster] + rng.normal(0, PEAK_JITTER_HOURS, n)
    ) % 24
    pulled = peak_weekday + WEEKEND_PULL * _signed_hour_gap(peak_weekday, WEEKEND_PULL_HOUR)
    peak_weekend = (pulled + rng.normal(0, 0.5, n)) % 24
    hour_spread = rng.uniform(*HOUR_SPREAD_RANGE, n)

    # creation: most customers are known before the window, some join during it
    is_new = rng.random(n) < config.new_customer_share
    created_day = np.where(is_new, rng.integers(0, config.days, n), -1)
    tenure = np.minimum(rng.exponential(TENURE_MEAN_DAYS, n), TENURE_MAX_DAYS) + 1.0
    old_created = start - (tenure * DAY_NS).astype(np.int64)
    local_hour = (peak_weekday + rng.normal(0, 1, n) * hour_spread) % 24
    local_new = start + created_day * DAY_NS + (local_hour * HOUR_NS).astype(np.int64)
    created_at = np.where(is_new, clock.to_utc(local_new, tz), old_created)
    end = start + config.days * DAY_NS
    created_at = np.where(is_new, np.clip(created_at, start, end - HOUR_NS), created_at)
    created_day = np.where(is_new, (created_at - start) // DAY_NS, -1 - (tenure.astype(np.int64)))

    app_user = rng.random(n) < by_persona("app_user_share")

    # consents: given at sign-up (70%) or later, before the window
    n_ch = len(MESSAGE_CHANNELS)
    rates = np.array([config.consent_rates.rate(c) for c in MESSAGE_CHANNELS])
    consent = rng.random((n, n_ch)) < rates
    consent[:, PUSH] &= app_user
    later = rng.random((n, n_ch)) < 0.3
    span = np.maximum(start - created_at, 0)[:, None]
    consent_at = created_at[:, None] + np.where(
        later, (rng.random((n, n_ch)) * span).astype(np.int64), 0
    )
    consent_at = np.where(is_new[:, None], created_at[:, None] + 30_000_000_000, consent_at)
    consent_at = np.where(consent, consent_at, -1)

    # channel preference and responsiveness
    pref_weights = np.tile(
        np.array([PREFERRED_CHANNEL_SHARES[c] for c in MESSAGE_CHANNELS]), (n, 1)
    )
    pref_weights[:, PUSH] *= app_user
    cumulative = np.cumsum(pref_weights / pref_weights.sum(1, keepdims=True), axis=1)
    preferred = np.minimum((cumulative < rng.random((n, 1))).sum(1), n_ch - 1)
    base_open = np.array([CHANNEL_RESPONSE[c].base_open for c in MESSAGE_CHANNELS])
    noise = rng.lognormal(-0.5 * RESPONSIVENESS_SIGMA**2, RESPONSIVENESS_SIGMA, (n, n_ch))
    boost = np.where(np.arange(n_ch) == preferred[:, None], PREFERRED_CHANNEL_BOOST, 1.0)
    responsiveness = np.clip(
        base_open * by_persona("engagement")[:, None] * noise * boost, 0.005, 0.97
    )
    declares = rng.random(n) < DECLARED_CHANNEL_SHARE
    wrong = rng.random(n) > DECLARED_CHANNEL_ACCURACY
    other = (preferred + rng.integers(1, n_ch, n)) % n_ch
    other = np.where((other == PUSH) & ~app_user, EMAIL, other)  # push needs the app
    declared_channel = np.where(declares, np.where(wrong, other, preferred), -1)
    declared_hours = np.where(
        rng.random(n) < DECLARED_HOURS_SHARE, np.floor(peak_weekday - 1.0).astype(int) % 24, -1
    )

    # tastes and sensitivities
    alpha = TASTE_CONCENTRATION * np.array([c.catalogue_share for c in CATEGORIES])
    taste = rng.dirichlet(alpha, n)
    price_sensitivity = beta_by_persona("price_sensitivity")
    promo_sensitivity = beta_by_persona("promo_sensitivity")
    early_adopter = beta_by_persona("early_adopter")
    seasonal = rng.random(n) < by_persona("seasonal_share")
    first_month = np.array(SEASON_FIRST_MONTHS)[_pick(rng, np.array(SEASON_FIRST_MONTH_WEIGHTS), n)]
    season_months = np.where(seasonal[:, None], np.stack([first_month, first_month + 6], 1), 0)

    # who they are
    age = np.clip(rng.normal(AGE_MEAN, AGE_SD, n), AGE_MIN, AGE_MAX)
    start_day = pd.Timestamp(config.start).tz_localize(None).value
    birth_date = start_day - (age * 365.25 * DAY_NS).astype(np.int64)
    birth_date -= birth_date % DAY_NS
    birth_declared = rng.random(n) >= BIRTH_DATE_MISSING
    gender = _pick(rng, np.array([GENDER_SHARES[g] for g in GENDERS]), n)
    gender = np.where(rng.random(n) < GENDER_MISSING, -1, gender)

    # activity
    mean_rate = by_persona("sessions_per_week") / 7.0
    session_rate = rng.gamma(SESSION_RATE_SHAPE, mean_rate / SESSION_RATE_SHAPE)
    conversion = by_persona("conversion") * rng.lognormal(-0.02, 0.2, n)
    store_share = np.clip(by_persona("store_share") * rng.lognormal(-0.08, 0.4, n), 0.0, 0.9)
    review_rate = by_persona("review_rate")
    lapsing = persona == PERSONAS.index("lapsing")
    lapse_low, lapse_high = max(1, config.days // 10), max(2, config.days - config.days // 6)
    lapse_day = np.where(lapsing, rng.integers(lapse_low, lapse_high, n), -1)

    line_value = taste @ catalogue.category_mean_price * (1.0 - PRICE_TILT * price_sensitivity)
    average_basket = line_value * LINES_PER_ORDER * config.funnel.mean_quantity
    member = rng.random(n) < LOYALTY_MEMBER_SHARE
    tenure_years = np.clip(-created_day / 365.0, 0.0, 1.0)
    yearly_orders = session_rate * 365 * config.funnel.orders_per_session(conversion, store_share)
    spend_before = yearly_orders * average_basket * tenure_years * rng.gamma(2.0, 0.5, n)
    email_invalid = rng.random(n) < INVALID_EMAIL_SHARE

    # drawn last, so that the traits above keep their draws
    effects = config.effects
    discount_threshold = rng.beta(*effects.discount_threshold, n)
    sigma = effects.discount_response_sigma
    discount_response = rng.lognormal(-0.5 * sigma**2, sigma, n)

    return CustomerWorld(
        persona=persona,
        city=city,
        tz=tz,
        created_at=created_at,
        created_day=created_day,
        app_user=app_user,
        consent=consent,
        consent_at=consent_at,
        preferred=preferred,
        responsiveness=responsiveness,
        declared_channel=declared_channel,
        declared_hours=declared_hours,
        peak_weekday=peak_weekday,
        peak_weekend=peak_weekend,
        hour_spread=hour_spread,
        taste=taste,
        price_sensitivity=price_sensitivity,
        promo_sensitivity=promo_sensitivity,
        early_adopter=early_adopter,
        season_months=season_months,
        birth_date=birth_date,
        birth_declared=birth_declared,
        gender=gender,
        session_rate=session_rate,
        conversion=conversion,
        store_share=store_share,
        review_rate=review_rate,
        lapse_day=lapse_day,
        member=member,
        spend_before=spend_before,
        email_invalid=email_invalid,
        average_basket=average_basket,
        discount_threshold=discount_threshold,
        discount_response=discount_response,
    )


def _signed_hour_gap(a: np.ndarray, b: float) -> np.ndarray:
    """Signed shortest move on the 24-hour circle from ``a`` to ``b``."""
    return (b - a + 12.0) % 24.0 - 12.0


def activity_factor(
    world: CustomerWorld, config: SimulatorConfig, rows: np.ndarray, days: np.ndarray
) -> np.ndarray:
    """Activity multiplier of customers ``rows`` (shape ``(n,)``) on window ``days``.

    ``days`` has shape ``(m,)`` (the same days for everyone) or ``(n, m)``; the
    result has shape ``(n, m)``. Seasonal customers are busier in their two
    months, lapsing customers go quiet after their lapse day, nobody is active
    before being created, and the winter sales lift everyone.
    """
    rows = np.asarray(rows, dtype=np.intp)
    days = np.asarray(days, dtype=np.int64)
    if days.ndim == 1:
        days = days[None, :]
    first = np.datetime64(config.start.date(), "D")
    months = (first + days).astype("datetime64[M]").astype(np.int64) % 12 + 1
    season = world.season_months[rows]
    in_season = (season[:, :1] == months) | (season[:, 1:] == months)
    factor = np.where(
        (season[:, :1] > 0), np.where(in_season, SEASON_IN_FACTOR, SEASON_OUT_FACTOR), 1.0
    )
    lapse = world.lapse_day[rows][:, None]
    factor = np.where((lapse >= 0) & (days >= lapse), factor * LAPSED_ACTIVITY, factor)
    factor = np.where(days >= world.created_day[rows][:, None], factor, 0.0)
    a, b = config.sales_period
    return factor * np.where((days >= a) & (days < b), config.sales_activity, 1.0)


def offer_pull(
    world: CustomerWorld,
    config: SimulatorConfig,
    rows: np.ndarray,
    appeal: np.ndarray,
) -> np.ndarray:
    """How much offers of ``appeal`` move customers ``rows`` (0: not at all), shape ``(n,)``.

    Promotion sensitivity x appeal, times the customer's own response, and only
    once the offer clears their threshold (a soft step, see
    :class:`~simulator.config.MarketingEffects`).
    """
    effects = config.effects
    step = (appeal - world.discount_threshold[rows]) / effects.discount_threshold_width
    clears = 1.0 / (1.0 + np.exp(-np.clip(step, -50.0, 50.0)))
    pull = world.promo_sensitivity[rows] * appeal * world.discount_response[rows] * clears
    return np.where(appeal > 0, pull, 0.0)


def customers_frame(
    world: CustomerWorld,
    first_index: int,
    n_total: int,
    consent: np.ndarray,
    consent_at: np.ndarray,
    tier: np.ndarray,
) -> pd.DataFrame:
    """The contract customers table for ``world`` with the final consent and tier."""
    n = len(world)
    data: dict[str, object] = {
        "customer_id": customer_ids(first_index, n, n_total),
        "created_at": _utc_series(world.created_at),
        "timezone": np.array(TIMEZONES, dtype=object)[world.tz].astype(str),
        "birth_date": pd.Series(
            np.where(world.birth_declared, world.birth_date, np.iinfo(np.int64).min).astype(
                "datetime64[ns]"
            )
        ),
        "gender": pd.array(np.array((*GENDERS, None), dtype=object)[world.gender], dtype=object),
        "city": np.array([c.name for c in CITIES], dtype=object)[world.city].astype(str),
        "loyalty_tier": np.array(TIERS, dtype=object)[tier].astype(str),
    }
    for j, ch in enumerate(CONSENT_CHANNELS):
        data[f"consent_{ch.value}"] = consent[:, j]
        data[f"consent_{ch.value}_at"] = _utc_series(consent_at[:, j])
    declared = np.array([c.value for c in MESSAGE_CHANNELS] + [None], dtype=object)
    data["preferred_channel"] = pd.array(declared[world.declared_channel], dtype=object)
    labels = np.array([f"{h}-{min(h + 3, 24)}" for h in range(24)] + [None], dtype=object)
    data["preferred_hours"] = pd.array(labels[world.declared_hours], dtype=object)
    return pd.DataFrame(data)


def customer_ids(first_index: int, n: int, n_total: int) -> np.ndarray:
    """Text ids ``C000001``... of customers ``first_index .. first_index + n - 1``."""
    width = max(6, len(str(n_total)))
    return padded_ids("C", first_index + 1, n, width).to_numpy(zero_copy_only=False)


def _utc_series(ns: np.ndarray) -> pd.Series:
    values = np.where(ns < 0, np.iinfo(np.int64).min, ns).astype("datetime64[ns]")
    return pd.Series(values).dt.tz_localize("UTC")


def truth_frame(world: CustomerWorld, ids: np.ndarray) -> pd.DataFrame:
    """The ground truth per customer (``truth/customers.parquet``)."""
    data: dict[str, object] = {
        "customer_id": ids,
        "persona": np.array(PERSONAS, dtype=object)[world.persona].astype(str),
        "preferred_channel": np.array([c.value for c in MESSAGE_CHANNELS], dtype=object)[
            world.preferred
        ].astype(str),
    }
    for j, ch in enumerate(MESSAGE_CHANNELS):
        data[f"open_{ch.value}"] = world.responsiveness[:, j]
    data |= {
        "peak_hour_weekday": world.peak_weekday,
        "peak_hour_weekend": world.peak_weekend,
        "hour_spread": world.hour_spread,
    }
    for k, name in enumerate(CATEGORY_NAMES):
        data[f"taste_{name}"] = world.taste[:, k]
    season = world.season_months
    data |= {
        "favourite_category": np.array(CATEGORY_NAMES, dtype=object)[world.taste.argmax(1)].astype(
            str
        ),
        "price_sensitivity": world.price_sensitivity,
        "promo_sensitivity": world.promo_sensitivity,
        "early_adopter": world.early_adopter,
        "season_month_1": pd.array(np.where(season[:, 0] > 0, season[:, 0], np.nan), dtype="Int64"),
        "season_month_2": pd.array(np.where(season[:, 1] > 0, season[:, 1], np.nan), dtype="Int64"),
        "birth_date": pd.Series(world.birth_date.astype("datetime64[ns]")),
        "sessions_per_day": world.session_rate,
        "conversion": world.conversion,
        "store_share": world.store_share,
        "average_basket": world.average_basket,
        "lapse_day": pd.array(
            np.where(world.lapse_day >= 0, world.lapse_day, np.nan), dtype="Int64"
        ),
        "app_user": world.app_user,
        "loyalty_member": world.member,
        "spend_before": world.spend_before,
        "email_invalid": world.email_invalid,
        "discount_threshold": world.discount_threshold,
        "discount_response": world.discount_response,
        "created_in_window": world.created_day >= 0,
    }
    return pd.DataFrame(data)
