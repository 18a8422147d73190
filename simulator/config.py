"""Settings and behavioural constants of the retailer simulator, in one place.

:class:`SimulatorConfig` holds what a user varies (size, seed, window, persona
mix, opt-in rates, campaign schedule). The module-level tables below hold the
behavioural constants the simulator draws from; each is documented with the
order of magnitude it is meant to reproduce, so that a reader can tell a
deliberate value from an accident.

>>> config = SimulatorConfig(n_customers=100, days=30, seed=7)
>>> config.end - config.start
datetime.timedelta(days=30)
>>> SimulatorConfig(n_customers=0)
Traceback (most recent call last):
...
ValueError: n_customers must be at least 1 (got 0)
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from features.contract import OfferKind
from nba.channels import CONSENT_CHANNELS, Channel

# ------------------------------------------------------------------ personas

PERSONAS: tuple[str, ...] = (
    "early_adopter",
    "promophile",
    "loyal",
    "bargain_hunter",
    "occasional",
    "lapsing",
)


@dataclass(frozen=True)
class PersonaProfile:
    """How customers of one persona behave, on average.

    Sensitivities are drawn per customer from ``Beta(a, b)``; the pairs below
    give their shape (mean ``a / (a + b)``).
    """

    sessions_per_week: float  # browsing + store sessions per week (mean of a Gamma)
    engagement: float  # multiplier on the per-channel open probability
    conversion: float  # multiplier on add-to-cart and store purchase probability
    promo_sensitivity: tuple[float, float]
    price_sensitivity: tuple[float, float]
    early_adopter: tuple[float, float]
    store_share: float  # share of sessions in a physical store
    app_user_share: float  # share of customers with the mobile app
    seasonal_share: float  # share of customers who buy mostly in two months of the year
    review_rate: float  # probability of reviewing a delivered item


#: Average behaviour per persona. Sessions per week average ~1 across the default
#: mix, i.e. ~12 visits per customer per quarter, most of them without purchase.
PERSONA_PROFILES: dict[str, PersonaProfile] = {
    "early_adopter": PersonaProfile(1.6, 1.2, 1.1, (2, 5), (2, 6), (8, 2), 0.15, 0.65, 0.10, 0.10),
    "promophile": PersonaProfile(1.2, 1.15, 1.0, (8, 2), (5, 3), (2, 6), 0.20, 0.45, 0.15, 0.05),
    "loyal": PersonaProfile(1.4, 1.3, 1.3, (1.5, 8), (2, 6), (3, 5), 0.30, 0.50, 0.10, 0.12),
    "bargain_hunter": PersonaProfile(
        1.0, 0.9, 0.9, (5, 3), (8, 2), (1.5, 8), 0.20, 0.35, 0.20, 0.04
    ),
    "occasional": PersonaProfile(0.35, 0.6, 0.8, (2, 4), (3, 4), (2, 6), 0.35, 0.20, 0.40, 0.03),
    "lapsing": PersonaProfile(0.9, 0.8, 0.9, (3, 4), (3, 4), (2, 6), 0.25, 0.30, 0.10, 0.03),
}

#: Gamma shape of the per-customer session rate around its persona mean (CV ~0.7).
SESSION_RATE_SHAPE = 2.0
#: After their lapse day, lapsing customers keep this share of their activity...
LAPSED_ACTIVITY = 0.05
#: ... and of their propensity to open messages.
LAPSED_ENGAGEMENT = 0.3
#: Activity multipliers for seasonal customers, in and out of their two months.
SEASON_IN_FACTOR = 2.5
SEASON_OUT_FACTOR = 0.5
#: Most seasonal customers pair a spring and an autumn month (April and October...).
SEASON_FIRST_MONTHS: tuple[int, ...] = (2, 3, 4, 5, 6)
SEASON_FIRST_MONTH_WEIGHTS: tuple[float, ...] = (0.15, 0.3, 0.3, 0.15, 0.1)

# ------------------------------------------------------------------ active hours


@dataclass(frozen=True)
class ActiveHoursProfile:
    """A cluster of customers' daily rhythm: peak local hour on weekdays."""

    name: str
    peak_hour: float
    share: float


#: Weekday peak clusters (local time). Evening browsing dominates retail traffic.
ACTIVE_HOURS: tuple[ActiveHoursProfile, ...] = (
    ActiveHoursProfile("commute", 8.0, 0.15),
    ActiveHoursProfile("lunch", 12.5, 0.20),
    ActiveHoursProfile("evening", 19.5, 0.45),
    ActiveHoursProfile("late", 22.0, 0.20),
)
#: Standard deviation of a customer's peak around its cluster, hours.
PEAK_JITTER_HOURS = 0.7
#: Weekend peaks move halfway toward mid-afternoon.
WEEKEND_PULL_HOUR = 15.0
WEEKEND_PULL = 0.5
#: A customer's activity spreads around their peak with this sd (uniform range, hours).
HOUR_SPREAD_RANGE: tuple[float, float] = (1.0, 2.5)
#: Stores open from 9:00 to 20:00 local time; store events are clipped to these hours.
STORE_HOURS: tuple[float, float] = (9.0, 19.75)

# ------------------------------------------------------------------ geography


@dataclass(frozen=True)
class City:
    name: str
    timezone: str
    weight: float


#: Where customers live: a European retailer with a North American presence.
CITIES: tuple[City, ...] = (
    City("Paris", "Europe/Paris", 0.20),
    City("Lyon", "Europe/Paris", 0.06),
    City("Marseille", "Europe/Paris", 0.05),
    City("London", "Europe/London", 0.12),
    City("Manchester", "Europe/London", 0.04),
    City("Berlin", "Europe/Berlin", 0.08),
    City("Munich", "Europe/Berlin", 0.04),
    City("Madrid", "Europe/Madrid", 0.07),
    City("Barcelona", "Europe/Madrid", 0.04),
    City("Milan", "Europe/Rome", 0.05),
    City("Rome", "Europe/Rome", 0.03),
    City("Brussels", "Europe/Brussels", 0.05),
    City("Amsterdam", "Europe/Amsterdam", 0.04),
    City("Lisbon", "Europe/Lisbon", 0.03),
    City("New York", "America/New_York", 0.06),
    City("Montreal", "America/Montreal", 0.04),
)

#: Declared gender shares (contract choices); ~3% leave it blank.
GENDER_SHARES: dict[str, float] = {"female": 0.53, "male": 0.41, "other": 0.01, "unknown": 0.05}
GENDER_MISSING = 0.03
#: Age at the start of the window: Normal(mean, sd) clipped to [min, max].
AGE_MEAN, AGE_SD, AGE_MIN, AGE_MAX = 41.0, 13.0, 18.0, 85.0
#: Share of customers who did not give a birth date.
BIRTH_DATE_MISSING = 0.08
#: Tenure of customers known before the window: exponential, mean in days, capped.
TENURE_MEAN_DAYS, TENURE_MAX_DAYS = 700.0, 3000.0

# ------------------------------------------------------------------ catalogue


@dataclass(frozen=True)
class CategorySpec:
    """A product category: share of the catalogue, prices and margin."""

    name: str
    catalogue_share: float
    median_price: float  # lognormal median, currency
    price_sigma: float  # lognormal sigma
    margin_rate: float  # mean margin / price
    nouns: tuple[str, ...]  # product nouns, also used as search queries


CATEGORIES: tuple[CategorySpec, ...] = (
    CategorySpec("womenswear", 0.16, 45, 0.5, 0.55, ("dress", "blouse", "skirt", "jeans")),
    CategorySpec("menswear", 0.12, 50, 0.5, 0.55, ("shirt", "trousers", "jacket", "polo")),
    CategorySpec("kidswear", 0.08, 25, 0.4, 0.50, ("romper", "hoodie", "pyjamas")),
    CategorySpec("shoes", 0.10, 70, 0.4, 0.45, ("sneakers", "boots", "sandals", "loafers")),
    CategorySpec("accessories", 0.08, 30, 0.6, 0.60, ("bag", "scarf", "belt", "watch")),
    CategorySpec("beauty", 0.08, 22, 0.5, 0.60, ("serum", "lipstick", "perfume")),
    CategorySpec("sportswear", 0.08, 40, 0.5, 0.50, ("leggings", "running shoes", "tracksuit")),
    CategorySpec("home_decor", 0.08, 35, 0.7, 0.50, ("cushion", "lamp", "vase", "rug")),
    CategorySpec("kitchen", 0.07, 30, 0.7, 0.40, ("pan", "knife set", "mug")),
    CategorySpec("electronics", 0.05, 120, 0.8, 0.20, ("headphones", "speaker", "charger")),
    CategorySpec("books", 0.05, 15, 0.3, 0.30, ("novel", "cookbook", "travel guide")),
    CategorySpec("garden", 0.05, 35, 0.7, 0.40, ("planter", "hose", "seeds")),
)

#: Dirichlet concentration of a customer's category taste, per unit of catalogue
#: share. With 12 categories, the favourite typically takes 40-60% of visits.
TASTE_CONCENTRATION = 4.0
#: Brands per category and the lognormal sigma of product popularity.
BRANDS_PER_CATEGORY = 6
POPULARITY_SIGMA = 1.0
#: Catalogue launched before the window: up to this many days earlier.
CATALOGUE_AGE_DAYS = 720
#: By default, new collections launch this far into the window (a winter drop, the
#: spring collection, a mid-season drop).
NEW_COLLECTION_FRACTIONS: tuple[float, ...] = (0.15, 0.5, 0.78)
#: Share of products that sell out (stock 0) and the mean stock otherwise.
OUT_OF_STOCK_SHARE = 0.03
MEAN_STOCK = 120.0

# ------------------------------------------------------------------ sessions and funnel


@dataclass(frozen=True)
class FunnelConstants:
    """Browsing and buying, per session. Calibrated to ~70% cart abandonment."""

    views_per_session: float = 3.5  # mean product views (geometric, at least one)
    search_share: float = 0.35  # sessions that start with a search
    social_share: float = 0.03  # online sessions that happen on social networks
    app_session_share: float = 0.55  # online sessions of app users that happen in the app
    view_gap_seconds: float = 70.0  # mean time between two events of a session
    add_to_cart: float = 0.06  # per product view, times the persona conversion factor
    remove_from_cart: float = 0.12  # per added item
    checkout: float = 0.5  # carts that reach checkout in the session
    purchase_at_checkout: float = 0.6  # checkouts that complete (0.5 x 0.6 -> 70% abandonment)
    cart_return: float = 0.25  # abandoned carts bought later
    store_purchase: float = 0.3  # store visits with a purchase (stores: about half of orders)
    store_items_mean: float = 1.6  # items per store basket (geometric)
    quantity_weights: tuple[float, float, float] = (0.85, 0.12, 0.03)  # 1, 2, 3 units
    click_collect: float = 0.15  # online orders collected in store
    collect_days: tuple[int, int] = (1, 3)
    delivery_days: tuple[int, int] = (2, 5)
    review_days: tuple[int, int] = (1, 10)
    new_product_attraction: float = 0.6  # P(view a new product) at early-adopter appetite 1
    price_choice: float = 0.6  # P(pick the cheaper of two candidates) at price sensitivity 1
    weekend_activity: float = 1.2  # weekend sessions relative to weekdays (mean kept at 1)

    @property
    def mean_quantity(self) -> float:
        """Expected units per purchased item."""
        w = np.array(self.quantity_weights)
        return float((w * np.arange(1, w.size + 1)).sum() / w.sum())

    def add_to_cart_rate(self, conversion: np.ndarray) -> np.ndarray:
        """Add-to-cart probability per product view for conversion multipliers."""
        return np.clip(self.add_to_cart * np.asarray(conversion), 0.0, 0.9)

    def store_purchase_rate(self, conversion: np.ndarray) -> np.ndarray:
        """Purchase probability per store visit for conversion multipliers."""
        return np.clip(self.store_purchase * np.asarray(conversion), 0.0, 0.95)

    def orders_per_session(self, conversion: np.ndarray, store_share: np.ndarray) -> np.ndarray:
        """Expected orders per session, the funnel above in closed form.

        An online session has ``V ~ Geometric(1 / views_per_session)`` views, each
        added to the cart with probability ``p``; a cart is bought in the session
        (checkout x purchase) or, if abandoned, later (``cart_return``). Removals
        never empty a cart, so ``P(order) = P(cart) x P(bought now or later)``.
        """
        q = 1.0 / self.views_per_session
        s = 1.0 - self.add_to_cart_rate(conversion)
        p_cart = 1.0 - q * s / (1.0 - (1.0 - q) * s)
        now = self.checkout * self.purchase_at_checkout
        online = p_cart * (now + (1.0 - now) * self.cart_return) * (1.0 - self.social_share)
        store_share = np.asarray(store_share)
        return (1.0 - store_share) * online + store_share * self.store_purchase_rate(conversion)


# ------------------------------------------------------------------ channels and messages


@dataclass(frozen=True)
class ChannelResponse:
    """How customers respond to a message on one outbound channel.

    ``base_open`` is the open (read, answer) probability at the customer's best
    hour for an average customer; off-hours it drops toward ``off_hours_floor``
    times that. Rates follow published benchmarks: e-mail opens ~20-25%, SMS
    read ~90%, push direct opens (taps) 2-6%, call answer ~30%. A push's open is its
    tap, which opens the app on the message's content as an e-mail's click opens its
    page, so most taps count as a click too.
    """

    base_open: float
    off_hours_floor: float  # open factor far from active hours (1.0: time does not matter)
    hour_tolerance: float  # hours added (in quadrature) to the customer's spread
    click_given_open: float
    bounce: float
    unsubscribe: float  # per delivered message, average customer
    complaint_share: float  # share of withdrawals that are complaints (spam reports)
    quick_open_minutes: float  # mean open delay when the customer is active at send time
    tracks_opens: bool  # whether an open produces a message_opened event
    cost: float  # cost per message sent, currency
    fatigue: float = 1.0  # weight of each recent contact on this channel's opens and withdrawals


#: Costs per message: e-mail at ESP list prices (Amazon SES $0.10, SendGrid ~$0.37,
#: Postmark $1.00 per 1,000 e-mails) plus production, ~0.002; an SMS segment at Twilio's
#: US rate ($0.0079-0.0083) and European rates of several cents, ~0.06: thirty times an
#: e-mail. Fatigue weights (assumption, no public per-contact figure): interruptive
#: channels (SMS, calls, then push) tire more per recent contact than an inbox or a letter.
#: E-mail: 20 % opened and 2.1 % clicked per message sent in the simulated history
#: (Mailchimp's e-commerce accounts: 15.7 % and 2.07 %; all accounts 21-23 % and 2.6-2.9 %;
#: Omnisend 2023 campaigns 25.1 % and 1.5 %). Push: a tap per message is 2-6 % (Appboy/Braze
#: 2016, 500 apps: Android 6.1 %, iOS 2.0 %; Leanplum: 3.5 % and 1.8 %; Airship 2023,
#: 665 billion pushes: retail 2.97 %, "more than twice as high as email click throughs"),
#: 1.0-1.4x an e-mail's click (retail push 2.97 % against e-commerce e-mail 2.07 %). Push
#: was 0.12 opened x 0.10 clicked, 0.6 % clicks per message in the history (0.3x e-mail's):
#: a tap counted as an open that then needed a click of its own. Now 4.0 % taps, 2.3 %
#: clicks per message (1.1x e-mail's), each tap opening the content.
CHANNEL_RESPONSE: dict[Channel, ChannelResponse] = {
    Channel.EMAIL: ChannelResponse(
        0.24, 0.55, 3.0, 0.12, 0.012, 0.0015, 0.12, 45.0, True, 0.002, fatigue=1.0
    ),
    Channel.SMS: ChannelResponse(0.85, 0.60, 1.5, 0.07, 0.02, 0.004, 0.0, 6.0, False, 0.06, 2.5),
    Channel.PUSH: ChannelResponse(
        0.09, 0.25, 1.0, 0.85, 0.04, 0.003, 0.0, 4.0, True, 0.0005, fatigue=1.5
    ),
    Channel.POSTAL: ChannelResponse(
        0.55, 1.00, 0.0, 0.06, 0.01, 0.0008, 0.0, 0.0, False, 0.8, fatigue=0.5
    ),
    Channel.CALL_CENTRE: ChannelResponse(
        0.35, 0.30, 1.0, 0.15, 0.0, 0.02, 0.0, 1.0, True, 3.0, fatigue=3.0
    ),
}
#: Channels the response model covers (the consent channels, in contract order).
MESSAGE_CHANNELS: tuple[Channel, ...] = CONSENT_CHANNELS

#: Per-customer open propensity: lognormal noise around the persona engagement...
RESPONSIVENESS_SIGMA = 0.45
#: ... boosted on the customer's true preferred channel.
PREFERRED_CHANNEL_BOOST = 1.9
#: Who prefers which channel (push only among app users; renormalised otherwise).
PREFERRED_CHANNEL_SHARES: dict[Channel, float] = {
    Channel.EMAIL: 0.45,
    Channel.SMS: 0.20,
    Channel.PUSH: 0.20,
    Channel.POSTAL: 0.10,
    Channel.CALL_CENTRE: 0.05,
}
#: Share of customers who declare a preferred channel, and how often it is their true one.
DECLARED_CHANNEL_SHARE = 0.3
DECLARED_CHANNEL_ACCURACY = 0.85
#: Share of customers who declare preferred contact hours.
DECLARED_HOURS_SHARE = 0.2
#: Share of e-mail addresses that hard-bounce every time.
INVALID_EMAIL_SHARE = 0.015
#: Quiet hours (local): sends then irritate (more withdrawals on SMS, push and calls).
QUIET_HOURS: tuple[int, int] = (21, 8)
QUIET_UNSUBSCRIBE_FACTOR = 2.5


@dataclass(frozen=True)
class ResponseConstants:
    """Coefficients of the response model shared by history and closed-loop runs."""

    purchase_given_click: float = 0.06  # e-commerce conversion of a campaign click
    attribution_days: int = 7  # window in which a purchase counts for a message
    click_offer_lift: float = 2.0  # click x (1 + lift x promo_sensitivity x appeal)
    purchase_offer_lift: float = 6.0  # conversion x (1 + lift x promo_sensitivity x appeal)
    organic_offer_lift: float = 3.0  # organic buying rate while holding an opened coupon
    coupon_redemption: float = 0.85  # organic purchases of coupon holders that use it
    # per recent contact (messages in the last 7 days) times the channel's ``fatigue`` weight:
    fatigue_open: float = 0.08  # opens / (1 + k x weight x recent)
    fatigue_unsubscribe: float = 0.25  # withdrawals x (1 + k x weight x recent)
    unsubscribe_max: float = 0.3
    relevance_floor: float = 0.2  # relevance of a category the customer never visits
    # Affinity (share of visits / an average category's share) counts up to this cap.
    # The default, 4, makes a message about the favourite category up to 3.4x as
    # relevant as an untargeted one; the sourced value is SOURCED_MAX_AFFINITY (1.3),
    # used by the closed loop's playbook world. The default stays until the training
    # tests calibrated on histories drawn with it are revisited.
    max_affinity: float = 4.0
    new_product_lift: float = 1.0  # relevance x (1 + lift x early_adopter) for new products


#: A message about the customer's favourite category has relevance 0.2 + 0.8 x 1.3 = 1.24
#: of an untargeted one, which with conversion x sqrt(relevance) orders 1.38x as often.
#: Omnisend's 2019 e-mail study (MediaPost, "Email Exam"): segmented campaigns order
#: 6.18 % vs 4.54 % for unsegmented ones, 1.36x.
SOURCED_MAX_AFFINITY = 1.3


@dataclass(frozen=True)
class MarketingEffects:
    """What makes the marketing playbook pay in the simulated world's truth.

    Each effect is one named parameter with its source; where no public figure
    exists the comment says so and gives the reasoning. They act on messages
    through :class:`~simulator.response.ResponseModel` (and the organic coupon
    boost of the history), never on organic browsing.
    """

    # Cart reminders decay with cart age. SaleCycle, 500 retailers (MarketingProfs,
    # 19 Jan 2017): cart e-mails sent 1 h after abandonment convert 6.33 %, after 24 h
    # 1.74 %. Response x (age / 1 h) ** -k with k = ln(6.33 / 1.74) / ln(24) = 0.41, flat
    # below 1 h; a reminder without an open cart counts as one about a week-old cart.
    cart_conversion_1h: float = 0.0633
    cart_conversion_24h: float = 0.0174
    stale_cart_hours: float = 168.0
    # Browse reminders decay with browse recency like cart reminders (assumption: no
    # public timing curve; Omnisend H1 2021 puts browse-abandonment clicks at 8.49 % vs
    # 5.80 % for cart e-mails: the two behave alike), and grow with the browsing's
    # intensity: x (views in the last 24 h / views of an average session) ** 0.5,
    # within [0.5, 2] (assumption: "looked at black trousers for 20 minutes").
    browse_reference_hours: float = 1.0
    browse_intensity_exponent: float = 0.5
    browse_intensity_range: tuple[float, float] = (0.5, 2.0)
    # Birthday window. Experian birthday-email audit (50+ brands, Feb 2014): birthday
    # e-mails get 179 % higher unique click rates (2.79x) and 481 % higher transaction
    # rates (5.81x) than promotional e-mails; they start landing 3 weeks before the day.
    # Within the window a birthday message clicks 2.79x a promo and converts 5.81 / 2.79
    # = 2.08x per click; outside it, it is an odd message (assumption: half the response).
    birthday_click_vs_promo: float = 2.79
    birthday_transactions_vs_promo: float = 5.81
    birthday_window_days: tuple[int, int] = (-21, 7)
    birthday_off_window: float = 0.5
    # Seasonal buyers' intent rises in and just before their months (the product brief:
    # reach the April-and-October buyer in March and September). Assumption: their
    # conversion is x 1.8 in their months and the 30 days before, x 0.6 otherwise
    # (their organic activity already follows SEASON_IN_FACTOR / SEASON_OUT_FACTOR).
    season_lead_days: int = 30
    season_response_lift: float = 1.8
    season_off_response: float = 0.6
    # Early adopters answer launches (new_collection messages, new products): clicks
    # x (1 + lift x (early_adopter - mean appetite)), floored at 0.2. Assumption,
    # following Rogers' diffusion of innovations (a minority adopts first).
    launch_lift: float = 2.5
    # Discount uplift varies beyond promo_sensitivity x value: each customer has a
    # threshold (share of the basket below which an offer does not move them, Beta
    # mean ~10 %) and an idiosyncratic response (lognormal, sigma 0.6). Assumption,
    # standard in reference-price research: a discount counts against the customer's
    # own expected discount. Offer pull = promo x appeal x response x
    # sigmoid((appeal - threshold) / width).
    discount_threshold: tuple[float, float] = (2.0, 18.0)
    discount_threshold_width: float = 0.04
    discount_response_sigma: float = 0.6
    # An unsubscribe loses the customer's future value on the channel: the incremental
    # margin of this many future messages of the channel (two a month for a year;
    # assumption) at the customer's own response, lost with P(unsubscribe).
    unsubscribe_future_messages: float = 24.0

    def __post_init__(self) -> None:
        if not 0 < self.cart_conversion_24h <= self.cart_conversion_1h:
            raise ValueError(
                "effects: cart_conversion_1h and cart_conversion_24h must satisfy "
                f"0 < 24 h <= 1 h (got {self.cart_conversion_1h}, {self.cart_conversion_24h})"
            )
        first, last = self.birthday_window_days
        if not first <= 0 <= last:
            raise ValueError(
                f"effects: birthday_window_days must contain the birthday, got {(first, last)}"
            )
        low, high = self.browse_intensity_range
        if not 0 < low <= 1 <= high:
            raise ValueError(f"effects: browse_intensity_range must hold 1, got {(low, high)}")
        positive = (
            "stale_cart_hours",
            "browse_reference_hours",
            "discount_threshold_width",
            "season_response_lift",
            "season_off_response",
        )
        for name in positive:
            if getattr(self, name) <= 0:
                raise ValueError(f"effects: {name} must be > 0 (got {getattr(self, name)})")

    @property
    def cart_decay_exponent(self) -> float:
        """k of the cart (and browse) reminder decay ``(hours / 1 h) ** -k``."""
        return float(np.log(self.cart_conversion_1h / self.cart_conversion_24h) / np.log(24.0))


#: Message kinds and their effect on clicks, conversion and withdrawals, relative to a
#: broadcast campaign. Triggered messages: Omnisend's Ecommerce Statistics Report H1 2021
#: (10 billion e-mails; MediaPost, "Email Conversions And Opens Soared In First-Half
#: 2021"): click rates (of recipients) campaigns 1.47 %, abandoned cart 5.80 %, browse
#: abandonment 8.49 %, welcome 5.63 %, post-purchase 4.97 %, lapsed purchase 2.60 %;
#: click-to-conversion campaigns 12.58 %, cart 20.44 %, browse 22.18 %, welcome 19.48 %,
#: post-purchase 13.77 %, lapsed purchase 10.82 %. A kind's multipliers are those
#: ratios to campaigns (cart 5.80 / 1.47 = 3.95 and 20.44 / 12.58 = 1.62...), so that,
#: as Omnisend's 2025 dataset reports (automations convert 1.49 % of sends, campaigns
#: 0.08 %), a triggered message is worth many broadcast ones. The birthday message's
#: response in its window comes from MarketingEffects (Experian). Broadcast kinds stay
#: near 1 (assumption: small differences of content). A review request's click leads
#: to a review form, not to the shop: 0.7 of a campaign's (assumption).
MESSAGE_KINDS: dict[str, tuple[float, float, float]] = {
    # kind: (click multiplier, conversion-per-click multiplier, withdrawal multiplier)
    "newsletter": (0.8, 1.0, 1.0),
    "promo": (1.0, 1.0, 1.2),
    "new_collection": (1.1, 1.0, 1.0),
    "catalogue": (1.0, 1.0, 0.8),
    "loyalty": (1.2, 1.0, 0.8),
    "cart_reminder": (5.80 / 1.47, 20.44 / 12.58, 0.7),
    "browse_reminder": (8.49 / 1.47, 22.18 / 12.58, 0.9),
    "reactivation": (2.60 / 1.47, 10.82 / 12.58, 1.3),
    "birthday": (1.6, 1.0, 0.6),
    "review_request": (0.7, 1.0, 1.1),
    "content": (0.7, 1.0, 1.0),
    "welcome": (5.63 / 1.47, 19.48 / 12.58, 0.8),
    "post_purchase": (4.97 / 1.47, 13.77 / 12.58, 1.0),
}

# ------------------------------------------------------------------ offers

#: Mix of offer kinds in the generated offer table.
OFFER_KIND_SHARES: dict[OfferKind, float] = {
    OfferKind.PERCENT_DISCOUNT: 0.35,
    OfferKind.FIXED_DISCOUNT: 0.2,
    OfferKind.FREE_SHIPPING: 0.15,
    OfferKind.LOYALTY_POINTS: 0.15,
    OfferKind.CONTENT: 0.15,
}
OFFER_VALUES: dict[OfferKind, tuple[float, ...]] = {
    OfferKind.PERCENT_DISCOUNT: (10, 15, 20, 25, 30),
    OfferKind.FIXED_DISCOUNT: (5, 10, 15, 20),
    OfferKind.FREE_SHIPPING: (4.9,),
    OfferKind.LOYALTY_POINTS: (100, 200, 500),
    OfferKind.CONTENT: (0,),
}
#: Value of one loyalty point, currency.
POINT_VALUE = 0.01
#: Eligibility expressions (decision-core syntax) given to some offers.
ELIGIBILITY_EXPRESSIONS: tuple[str, ...] = (
    'lifecycle_state == "lapsed"',
    "cart_value > 50",
    'loyalty_tier in ["gold", "platinum"]',
    "days_since_last_purchase > 60",
    'lifecycle_state == "new"',
    "orders_total >= 3",
)
#: Share of offers with an eligibility expression.
ELIGIBILITY_SHARE = 0.4


@dataclass(frozen=True)
class JourneyOffer:
    """An offer the retailer's triggered journeys give (a cart discount, birthday points),
    written to the offers table as the retailer holds it, beside the campaign offers.

    Journey offers are personal: no broadcast campaign of the history carries them and
    no shopper types them as a public code. Their truth (what they are worth to a
    customer) follows their kind and value like every other offer's; a free shipping
    offer's ``value`` is the fee given up, as in the campaign offers.
    """

    id: str
    name: str
    kind: OfferKind
    value: float
    cost: float
    channels: tuple[Channel, ...]
    daily_budget: int | None = None
    eligibility: str | None = None

    def __post_init__(self) -> None:
        where = f"journey offer {self.id!r}"
        object.__setattr__(self, "kind", OfferKind(self.kind))
        object.__setattr__(self, "channels", tuple(Channel(c) for c in self.channels))
        if not self.channels:
            raise ValueError(f"{where}: channels must name at least one channel")
        if self.value < 0 or self.cost < 0:
            raise ValueError(f"{where}: value and cost must be >= 0")
        if self.daily_budget is not None and self.daily_budget < 0:
            raise ValueError(f"{where}: daily_budget must be >= 0 (got {self.daily_budget})")


_MESSAGING = (Channel.EMAIL, Channel.SMS, Channel.PUSH, Channel.APP, Channel.WEB)
#: The example catalog's offers (``nba/examples/retailer_catalog.yaml``) as the simulated
#: retailer's offers table holds them: the same ids and terms, valid on the channels the
#: retailer runs its journeys on (the catalog's actions may narrow them). Free shipping
#: is written as the table writes it, the fee given up as its value (the catalog's 0
#: means the same offer: the engine values an offer by its cost). A test keeps them in
#: step with the catalog.
RETAILER_JOURNEY_OFFERS: tuple[JourneyOffer, ...] = (
    JourneyOffer(
        "cart_10pct_48h",
        "10% off your cart, 48 hours",
        OfferKind.PERCENT_DISCOUNT,
        10,
        6.0,
        _MESSAGING,
        daily_budget=500,
    ),
    JourneyOffer(
        "welcome_free_shipping",
        "free shipping on a first order",
        OfferKind.FREE_SHIPPING,
        4.5,
        4.5,
        _MESSAGING,
        daily_budget=1000,
    ),
    JourneyOffer(
        "birthday_points",
        "500 birthday points",
        OfferKind.LOYALTY_POINTS,
        500,
        2.5,
        (*_MESSAGING, Channel.WALLET, Channel.POSTAL),
    ),
    JourneyOffer(
        "winback_15",
        "15% off, we miss you",
        OfferKind.PERCENT_DISCOUNT,
        15,
        7.0,
        (*_MESSAGING, Channel.POSTAL),
        daily_budget=300,
    ),
    JourneyOffer(
        "free_shipping_weekend",
        "free shipping this weekend",
        OfferKind.FREE_SHIPPING,
        4.5,
        4.5,
        _MESSAGING,
        daily_budget=2000,
    ),
)

# ------------------------------------------------------------------ loyalty programme

#: Loyalty membership share and the yearly spend that reaches each tier.
LOYALTY_MEMBER_SHARE = 0.75
TIER_THRESHOLDS: dict[str, float] = {
    "bronze": 0.0,
    "silver": 250.0,
    "gold": 700.0,
    "platinum": 1800.0,
}
#: Members with the app who add the loyalty card to their wallet during the window.
WALLET_PASS_SHARE = 0.12

# ------------------------------------------------------------------ configuration


@dataclass(frozen=True)
class PersonaMix:
    """Share of customers per persona. Must sum to 1."""

    early_adopter: float = 0.10
    promophile: float = 0.18
    loyal: float = 0.20
    bargain_hunter: float = 0.15
    occasional: float = 0.25
    lapsing: float = 0.12

    def shares(self) -> tuple[float, ...]:
        return tuple(getattr(self, name) for name in PERSONAS)


@dataclass(frozen=True)
class ConsentRates:
    """Opt-in rate per consent channel (push: among app users)."""

    email: float = 0.8
    sms: float = 0.45
    push: float = 0.35
    postal: float = 0.6
    call_centre: float = 0.2

    def rate(self, channel: Channel) -> float:
        return float(getattr(self, channel.value))


@dataclass(frozen=True)
class Campaign:
    """A recurring outbound campaign of the historical schedule.

    Occurrences fall on ``days_of_week`` (0 = Monday) when given, else on
    ``first_day``, ``first_day + every_days``, ... (``every_days = 0``: once).
    Each recipient gets one of ``local_hours`` (local time) at random, which
    gives the history the send-time variation models learn from. An occurrence
    carries an offer with probability ``offer_rate``, and then only a random
    ``offer_share`` of recipients get it (a historical A/B test).
    """

    name: str
    channel: Channel
    kind: str
    local_hours: tuple[int, ...]
    days_of_week: tuple[int, ...] = ()
    first_day: int = 0
    every_days: int = 0
    offer_kinds: tuple[OfferKind, ...] = ()
    offer_rate: float = 0.0
    offer_share: float = 0.5
    min_tier: str | None = None  # audience: loyalty members at or above this tier

    def __post_init__(self) -> None:
        where = f"campaign {self.name!r}"
        try:
            object.__setattr__(self, "channel", Channel(self.channel))
        except ValueError:
            raise ValueError(f"{where}: unknown channel {self.channel!r}") from None
        if not self.channel.needs_consent:
            raise ValueError(
                f"{where}: channel must be one of the consent channels "
                f"({', '.join(c.value for c in CONSENT_CHANNELS)}), got {self.channel!r}"
            )
        if self.kind not in MESSAGE_KINDS:
            raise ValueError(
                f"{where}: unknown kind {self.kind!r} (use one of {sorted(MESSAGE_KINDS)})"
            )
        if not self.local_hours or any(not 0 <= h <= 23 for h in self.local_hours):
            raise ValueError(f"{where}: local_hours must be a non-empty tuple of hours 0-23")
        if any(not 0 <= d <= 6 for d in self.days_of_week):
            raise ValueError(f"{where}: days_of_week are 0 (Monday) to 6 (Sunday)")
        if self.first_day < 0 or self.every_days < 0:
            raise ValueError(f"{where}: first_day and every_days must be >= 0")
        for name in ("offer_rate", "offer_share"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{where}: {name} must be in [0, 1]")
        if self.offer_rate > 0 and not self.offer_kinds:
            raise ValueError(f"{where}: offer_rate > 0 needs offer_kinds")
        if self.min_tier is not None and self.min_tier not in TIER_THRESHOLDS:
            raise ValueError(f"{where}: min_tier must be one of {list(TIER_THRESHOLDS)}")


#: The default history: newsletter twice a week, SMS promo every two weeks,
#: weekly push, one spring catalogue by post and one call campaign for top tiers.
DEFAULT_CAMPAIGNS: tuple[Campaign, ...] = (
    Campaign(
        "newsletter",
        Channel.EMAIL,
        "newsletter",
        local_hours=(7, 10, 12, 18, 20),
        days_of_week=(1, 4),
        offer_kinds=(OfferKind.FREE_SHIPPING, OfferKind.LOYALTY_POINTS, OfferKind.CONTENT),
        offer_rate=0.3,
    ),
    Campaign(
        "sms_promo",
        Channel.SMS,
        "promo",
        local_hours=(11, 17, 19),
        first_day=3,
        every_days=14,
        offer_kinds=(OfferKind.PERCENT_DISCOUNT,),
        offer_rate=1.0,
    ),
    Campaign(
        "push_weekly",
        Channel.PUSH,
        "new_collection",
        local_hours=(9, 12, 18, 21),
        days_of_week=(3,),
        offer_kinds=(OfferKind.PERCENT_DISCOUNT,),
        offer_rate=0.2,
    ),
    Campaign(
        "spring_catalogue",
        Channel.POSTAL,
        "catalogue",
        local_hours=(10,),
        first_day=40,
        offer_kinds=(OfferKind.FIXED_DISCOUNT,),
        offer_rate=1.0,
    ),
    Campaign(
        "vip_call",
        Channel.CALL_CENTRE,
        "loyalty",
        local_hours=(10, 14, 17),
        first_day=55,
        min_tier="gold",
    ),
)


def _utc(year: int, month: int, day: int) -> dt.datetime:
    return dt.datetime(year, month, day, tzinfo=dt.UTC)


@dataclass(frozen=True)
class SimulatorConfig:
    """Everything that determines a simulated data set: same config, same output.

    ``start`` must be a midnight in UTC; the window is ``[start, start + days)``.
    ``chunk_size`` customers are simulated together; it bounds memory and is
    part of the config because each chunk has its own random stream.
    """

    n_customers: int = 5000
    days: int = 90  # length of the window
    seed: int = 0
    start: dt.datetime = field(default_factory=lambda: _utc(2026, 1, 5))  # a Monday
    n_products: int = 2000
    n_offers: int = 30  # campaign offers, drawn at random
    #: offers of the retailer's triggered journeys, written after the campaign offers
    journey_offers: tuple[JourneyOffer, ...] = RETAILER_JOURNEY_OFFERS
    persona_mix: PersonaMix = field(default_factory=PersonaMix)
    consent_rates: ConsentRates = field(default_factory=ConsentRates)
    campaigns: tuple[Campaign, ...] = DEFAULT_CAMPAIGNS  # the historical schedule
    new_customer_share: float = 0.10  # customers who join during the window
    new_collection_share: float = 0.08  # products launched during the window
    new_collection_days: tuple[int, ...] | None = None  # None: 15%, 50% and 78% into the window
    cart_return_within_12h: float = 0.75  # abandoned-cart buyers who come back within 12 h
    sales_period: tuple[int, int] = (2, 30)  # winter sales: days [a, b) of the window...
    sales_activity: float = 1.3  # ... lift browsing by this factor
    chunk_size: int = 10_000  # customers simulated together (memory, random streams)
    funnel: FunnelConstants = field(default_factory=FunnelConstants)
    response: ResponseConstants = field(default_factory=ResponseConstants)
    effects: MarketingEffects = field(default_factory=MarketingEffects)

    def __post_init__(self) -> None:
        self._check_int("n_customers", 1)
        self._check_int("days", 1)
        self._check_int("n_products", len(CATEGORIES))
        self._check_int("n_offers", len(OfferKind))
        self._check_int("chunk_size", 100)
        if not isinstance(self.seed, int) or self.seed < 0:
            raise ValueError(f"seed must be a non-negative integer (got {self.seed!r})")
        start = self.start
        if not isinstance(start, dt.datetime) or start.tzinfo is None:
            raise ValueError(
                f"start must be a time-zone aware datetime, e.g. datetime(2026, 1, 5, tzinfo=UTC) "
                f"(got {start!r})"
            )
        if start.utcoffset() != dt.timedelta(0) or start.time() != dt.time(0):
            raise ValueError(f"start must be a midnight in UTC (got {start.isoformat()})")
        shares = self.persona_mix.shares()
        if any(s < 0 for s in shares) or abs(sum(shares) - 1.0) > 1e-6:
            raise ValueError(
                f"persona_mix shares must be >= 0 and sum to 1 (got {sum(shares):.4f}): "
                + ", ".join(f"{p}={s}" for p, s in zip(PERSONAS, shares, strict=True))
            )
        for ch in CONSENT_CHANNELS:
            rate = self.consent_rates.rate(ch)
            if not 0.0 <= rate <= 1.0:
                raise ValueError(f"consent_rates.{ch.value} must be in [0, 1] (got {rate})")
        for name in ("new_customer_share", "new_collection_share", "cart_return_within_12h"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must be in [0, 1] (got {value})")
        if any(not 0 <= d < self.days for d in self.collection_days):
            raise ValueError(
                f"new_collection_days must be days of the window, 0 to {self.days - 1}"
            )
        if self.new_collection_share > 0 and not self.collection_days:
            raise ValueError(
                "new_collection_share > 0 needs at least one new_collection_days entry"
            )
        a, b = self.sales_period
        if not 0 <= a <= b or self.sales_activity <= 0:
            raise ValueError("sales_period must be (first_day, end_day) with 0 <= first <= end")
        names = [c.name for c in self.campaigns]
        if len(set(names)) != len(names):
            raise ValueError(f"campaign names must be unique (got {names})")
        offer_ids = [o.id for o in self.journey_offers]
        if len(set(offer_ids)) != len(offer_ids):
            raise ValueError(f"journey offer ids must be unique (got {offer_ids})")

    def _check_int(self, name: str, minimum: int) -> None:
        value = getattr(self, name)
        if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
            raise ValueError(f"{name} must be at least {minimum} (got {value!r})")

    @property
    def collection_days(self) -> tuple[int, ...]:
        """Days of the window when new-collection products launch."""
        if self.new_collection_days is not None:
            return tuple(self.new_collection_days)
        return tuple(sorted({int(self.days * f) for f in NEW_COLLECTION_FRACTIONS}))

    @property
    def end(self) -> dt.datetime:
        """First moment after the window."""
        return self.start + dt.timedelta(days=self.days)

    @property
    def n_chunks(self) -> int:
        return -(-self.n_customers // self.chunk_size)

    def to_json(self) -> str:
        """The config as JSON (for ``truth/config.json``)."""

        def encode(value: Any) -> Any:
            if isinstance(value, dt.datetime):
                return value.isoformat()
            if isinstance(value, tuple | list):
                return [encode(v) for v in value]
            if isinstance(value, dict):
                return {str(k): encode(v) for k, v in value.items()}
            return value

        return json.dumps(encode(dataclasses.asdict(self)), indent=2, sort_keys=True)
