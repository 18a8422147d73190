"""The behavioural profile: what nba knows about one customer at one moment.

The profile is a domain type. ``features/`` computes it (offline, point in time,
and online in Redis) from the same definitions; the decision core reads it; the
eligibility language refers to its fields by name. It is flat on purpose: a
profile is one Redis hash per customer and one row of a training set.

Scalar fields are listed in :data:`PROFILE_FIELDS` with their type, so that
rules referring to an unknown field, or comparing a number with text, are
refused when an action catalog loads, not when a decision is made.

>>> p = CustomerProfile(customer_id="C1", lifecycle_state=LifecycleState.ACTIVE)
>>> p.value("lifecycle_state"), p.value("cart_value")
('active', 0.0)
>>> PROFILE_FIELDS["days_to_birthday"]
'number'
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from enum import StrEnum
from operator import attrgetter
from typing import Literal

from nba.channels import CONSENT_CHANNELS, OUTBOUND_CHANNELS, Channel
from nba.frozen import fast_init

HOURS_PER_WEEK = 168
#: The loyalty programme's tiers, lowest first (the data contract's, which rules compare
#: ``loyalty_tier`` with: a catalog that writes another is refused when loaded).
LOYALTY_TIERS: tuple[str, ...] = ("none", "bronze", "silver", "gold", "platinum")

FieldType = Literal["number", "text", "bool", "list"]


class LifecycleState(StrEnum):
    """Where a customer is in their relationship with the brand."""

    NEW = "new"  # known for a short time, no or one purchase
    ACTIVE = "active"  # bought recently
    AT_RISK = "at_risk"  # bought before, quiet for longer than usual
    LAPSED = "lapsed"  # quiet for long: a reactivation target
    PROSPECT = "prospect"  # never bought, not new any more


class JourneyPhase(StrEnum):
    """The phase of the current buying journey."""

    DISCOVERY = "discovery"  # browsing without intent
    CONSIDERATION = "consideration"  # viewing the same products or categories again
    DECISION = "decision"  # items in the cart or a checkout started
    RECOMMENDATION = "recommendation"  # bought recently: review, advocacy
    LOYALTY = "loyalty"  # repeat buyer: cross-sell, up-sell
    LAPSE = "lapse"  # gone quiet


@fast_init
@dataclass(frozen=True)
class ChannelEngagement:
    """Message outcomes on one channel, with rates smoothed toward a prior.

    Rates are ``(successes + prior_rate * prior_weight) / (trials + prior_weight)``,
    so that a customer with two e-mails is not judged on two e-mails alone.
    """

    sent: int = 0
    delivered: int = 0
    opened: int = 0
    clicked: int = 0
    converted: int = 0
    open_rate: float = 0.0
    click_rate: float = 0.0
    conversion_rate: float = 0.0


@fast_init
@dataclass(frozen=True)
class ContactHistory:
    """Outbound contacts already made, for caps, cool-downs and fatigue.

    ``contact_times`` holds each contact's time in the last 30 days per channel (UTC,
    whole seconds, oldest first; a contact counted several times appears as often):
    the rolling caps count them to the second at the moment of the decision, and a
    reached cap of several contacts frees when its oldest contact leaves the window. A
    channel without times (a profile written by hand, or by an older version) is known
    by its counts ``contacts_1d`` / ``_7d`` / ``_30d`` and its last contact only.
    """

    last_contact_at: dict[Channel, dt.datetime] = field(default_factory=dict)
    contacts_1d: dict[Channel, int] = field(default_factory=dict)
    contacts_7d: dict[Channel, int] = field(default_factory=dict)
    contacts_30d: dict[Channel, int] = field(default_factory=dict)
    last_refusal_at: dict[Channel, dt.datetime] = field(default_factory=dict)
    contact_times: dict[Channel, tuple[dt.datetime, ...]] = field(default_factory=dict)

    def total_1d(self) -> int:
        return sum(self.contacts_1d.values())

    def total_7d(self) -> int:
        return sum(self.contacts_7d.values())


@fast_init
@dataclass(frozen=True)
class CustomerProfile:
    """Everything the engine knows about one customer, as of ``as_of``.

    Money is in the data set's currency; durations are in the unit their name
    says; ``None`` means "never" (no purchase yet, no birthday known...).
    """

    customer_id: str
    as_of: dt.datetime | None = None
    timezone: str = "UTC"
    # recency, frequency, monetary value
    days_since_first_seen: float | None = None
    # since the sign-up (the customer record's created_at, an identify's createdAt); a
    # customer known only from events: since first seen
    days_since_sign_up: float | None = None
    # the same sign-up counted in the customer's calendar days: 0 on the local day they
    # signed up, 1 from the next local midnight (a series planned "on day 7" by the
    # calendar: a 23:00 sign-up is on day 1 an hour later)
    sign_up_day: int | None = None
    days_since_last_purchase: float | None = None
    days_since_last_visit: float | None = None
    purchases_30d: int = 0
    purchases_90d: int = 0
    purchases_total: int = 0
    # orders: the purchase lines of one moment are one order (purchases count the lines)
    orders_90d: int = 0
    orders_total: int = 0
    revenue_90d: float = 0.0
    revenue_total: float = 0.0
    average_basket: float = 0.0
    # tastes (time-decayed affinities, each summing to 1 when non-empty)
    category_affinity: dict[str, float] = field(default_factory=dict)
    brand_affinity: dict[str, float] = field(default_factory=dict)
    top_category: str | None = None
    top_brand: str | None = None
    # engagement per outbound channel
    engagement: dict[Channel, ChannelEngagement] = field(default_factory=dict)
    # activity by hour of week (local time; Monday 00:00 is 0), shares summing to 1
    activity_by_hour: tuple[float, ...] = ()
    peak_hour_of_week: int | None = None
    # journey and lifecycle
    lifecycle_state: LifecycleState = LifecycleState.PROSPECT
    journey_phase: JourneyPhase = JourneyPhase.DISCOVERY
    # cart and browse state
    cart_items: tuple[str, ...] = ()
    cart_value: float = 0.0
    cart_age_hours: float | None = None
    browsed_products: tuple[str, ...] = ()
    browsed_categories: tuple[str, ...] = ()
    browse_minutes_24h: float = 0.0
    hours_since_last_browse: float | None = None
    # days with product views in the last 30 (this one included): how often a browsing
    # session, and the time-critical reminder it may trigger, comes
    browse_days_30d: int = 0
    # of those, the days with two minutes or more of product views (products left behind,
    # not a glance), and the days with an add-to-cart and no purchase (a cart left): how
    # often the customer's own sessions trigger a browse or a cart reminder
    browse_left_days_30d: int = 0
    cart_left_days_30d: int = 0
    # the same per day, shrunk toward the store's rate by the feature build's priors
    # (empirical Bayes: a few days in 30 say little); None: read the counts over 30 days
    browse_left_rate: float | None = None
    cart_left_rate: float | None = None
    last_purchased_products: tuple[str, ...] = ()
    # products sent back or cancelled whole in the last 90 days and not bought again
    # since, latest first: never recommended again
    returned_products: tuple[str, ...] = ()
    hours_since_last_purchase: float | None = None
    # the latest order_delivered or click_collect_pickup (the order's hand-over)
    hours_since_last_delivery: float | None = None
    # the latest order_returned or order_cancelled: an order sent back or cancelled
    hours_since_last_return: float | None = None
    # a return or cancellation since the latest delivery of what that delivery handed
    # over (or of an order it names none of, or after a delivery naming no product)
    last_delivery_returned: bool = False
    # traits
    promo_sensitivity: float = 0.0
    early_adopter_score: float = 0.0
    seasonal_months: tuple[int, ...] = ()
    # milestones
    days_to_birthday: int | None = None
    loyalty_tier: str = "none"
    days_since_loyalty_tier: float | None = None
    has_click_collect: bool = False  # ever picked up an order in store
    click_collect_pending: bool = False  # a click-and-collect order waits for its pick-up
    hours_since_click_collect_order: float | None = None
    # declared preferences (customers table): an outbound channel, local hours "18-21"
    preferred_channel: str | None = None
    preferred_hours: str | None = None
    # consent and contact history
    consents: dict[Channel, bool] = field(default_factory=dict)
    contacts: ContactHistory = field(default_factory=ContactHistory)
    events_seen: int = 0

    def value(self, name: str) -> object:
        """The value of the scalar or derived field ``name`` (see :data:`PROFILE_FIELDS`):
        an enum as its text, a tuple as a list."""
        read = FIELD_READERS.get(name)
        if read is None:
            raise KeyError(f"unknown profile field {name!r}")
        return read(self)

    def consented(self, channel: Channel) -> bool:
        """True when the customer may be contacted on ``channel`` (consent-wise): opted
        in where it needs consent, holding the pass where it needs one (the wallet)."""
        if not (channel.needs_consent or channel.needs_pass):
            return True
        return self.consents.get(channel, False)


def _consented_channels(p: CustomerProfile) -> list[str]:
    return [c.value for c in OUTBOUND_CHANNELS if p.consented(c)]


def _engagement_rate(channel: Channel, rate: str):  # type: ignore[no-untyped-def]
    def get(p: CustomerProfile) -> float:
        return float(getattr(p.engagement.get(channel, ChannelEngagement()), rate))

    return get


_DERIVED = {
    "consented_channels": _consented_channels,
    "contacts_1d": lambda p: p.contacts.total_1d(),
    "contacts_7d": lambda p: p.contacts.total_7d(),
    "cart_size": lambda p: len(p.cart_items),
    **{
        f"{ch.value}_{rate}": _engagement_rate(ch, rate)
        for ch in CONSENT_CHANNELS
        for rate in ("open_rate", "click_rate")
    },
}


def _profile_fields() -> dict[str, FieldType]:
    types: dict[str, FieldType] = {}
    hints = {
        "float | None": "number",
        "int | None": "number",
        "float": "number",
        "int": "number",
        "str": "text",
        "str | None": "text",
        "bool": "bool",
        "LifecycleState": "text",
        "JourneyPhase": "text",
        "tuple[str, ...]": "list",
        "tuple[int, ...]": "list",
    }
    for f in fields(CustomerProfile):
        kind = hints.get(str(f.type))
        if kind is not None and f.name not in ("as_of",):
            types[f.name] = kind  # type: ignore[assignment]
    types.update(
        {
            "consented_channels": "list",
            "contacts_1d": "number",
            "contacts_7d": "number",
            "cart_size": "number",
        }
    )
    for ch in CONSENT_CHANNELS:
        types[f"{ch.value}_open_rate"] = "number"
        types[f"{ch.value}_click_rate"] = "number"
    return types


#: Fields that rules may refer to, with their type.
PROFILE_FIELDS: dict[str, FieldType] = _profile_fields()

_AS_IS = frozenset({type(None), bool, int, float, str})


def _reader(name: str) -> Callable[[CustomerProfile], object]:
    """:meth:`CustomerProfile.value` of one field, with the look-ups by name done once
    (a decision reads some thirty fields; values of the usual types pass as they are)."""
    derived = _DERIVED.get(name)
    if derived is not None:
        return derived
    get = attrgetter(name)

    def read(profile: CustomerProfile) -> object:
        value = get(profile)
        if type(value) in _AS_IS:
            return value
        if isinstance(value, StrEnum):
            return value.value
        if isinstance(value, tuple):
            return list(value)
        return value

    return read


#: The fields of :data:`PROFILE_FIELDS` computed from others (the rest are attributes).
DERIVED_FIELDS: frozenset[str] = frozenset(_DERIVED)

#: :meth:`CustomerProfile.value` per field of :data:`PROFILE_FIELDS`.
FIELD_READERS: dict[str, Callable[[CustomerProfile], object]] = {
    name: _reader(name) for name in PROFILE_FIELDS
}
