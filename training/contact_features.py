"""What the decision models read of a customer: profile and channel features as vectors.

The channel propensity and offer uplift models score a customer's point-in-time
profile (:class:`~nba.profile.CustomerProfile`) on a channel. Both start from
the same numbers: :func:`profile_features` (recency, frequency, value, promotion
sensitivity, lifecycle state...) and :func:`channel_features` (the customer's
smoothed open and click rates on the channel, recent contacts there, and how
well the send's local hour fits their activity).

>>> import datetime as dt
>>> p = CustomerProfile("C1", days_since_last_visit=2.0)
>>> profile_features(p).shape == (len(PROFILE_FEATURES),)
True
>>> local = dt.datetime(2026, 3, 6, 18)
>>> channel_features(p, Channel.EMAIL, local).shape == (len(CHANNEL_FEATURES),)
True
"""

from __future__ import annotations

import datetime as dt
import math

import numpy as np

from nba.channels import CONSENT_CHANNELS, Channel
from nba.profile import HOURS_PER_WEEK, CustomerProfile, LifecycleState

#: Channels whose messages report opens (e-mail, push; calls answered); elsewhere clicks.
OPEN_CHANNELS = (Channel.EMAIL, Channel.PUSH, Channel.CALL_CENTRE)
_TIERS = ("none", "bronze", "silver", "gold", "platinum")
_STATES = tuple(LifecycleState)
PROFILE_FEATURES: tuple[str, ...] = (
    "log_days_since_visit",
    "never_visited",
    "log_days_since_purchase",
    "never_purchased",
    "log_purchases_90d",
    "log_purchases_total",
    "log_revenue_90d",
    "log_average_basket",
    "promo_sensitivity",
    "early_adopter_score",
    "log_events_seen",
    "has_cart",
    "loyalty_rank",
    "contacts_7d",
    "best_open_rate",
    *(f"state_{s.value}" for s in _STATES),
)
CHANNEL_FEATURES: tuple[str, ...] = (
    "logit_open_rate",
    "logit_click_rate",
    "log_sent",
    "log_opened",
    "contacts_7d_channel",
    "hour_fit",
)


def _log_days(value: float | None) -> tuple[float, float]:
    if value is None:
        return math.log1p(365.0), 1.0
    return math.log1p(min(max(value, 0.0), 365.0)), 0.0


def profile_features(profile: CustomerProfile) -> np.ndarray:
    """The customer-level features (:data:`PROFILE_FEATURES`), shape ``(n_features,)``."""
    visit, never_visited = _log_days(profile.days_since_last_visit)
    purchase, never_purchased = _log_days(profile.days_since_last_purchase)
    rank = _TIERS.index(profile.loyalty_tier) if profile.loyalty_tier in _TIERS else 0
    opens = [profile.engagement[c].open_rate for c in CONSENT_CHANNELS if c in profile.engagement]
    values = [
        visit,
        never_visited,
        purchase,
        never_purchased,
        math.log1p(profile.purchases_90d),
        math.log1p(profile.purchases_total),
        math.log1p(max(profile.revenue_90d, 0.0)),
        math.log1p(max(profile.average_basket, 0.0)),
        profile.promo_sensitivity,
        profile.early_adopter_score,
        math.log1p(profile.events_seen),
        1.0 if profile.cart_items else 0.0,
        float(rank),
        float(profile.contacts.total_7d()),
        max(opens, default=0.0),
        *(1.0 if profile.lifecycle_state == s else 0.0 for s in _STATES),
    ]
    return np.asarray(values, dtype=float)


def hour_fit(profile: CustomerProfile, local: dt.datetime | None) -> float:
    """How typical the local hour is for the customer: 24 x their activity share in that
    hour of day and its neighbours (1 = an average hour; 1 when unknown)."""
    activity = profile.activity_by_hour
    if local is None or len(activity) != HOURS_PER_WEEK:
        return 1.0
    h = local.hour
    share = 0.0
    for d in range(7):
        base = d * 24
        share += (
            0.25 * activity[base + (h - 1) % 24]
            + 0.5 * activity[base + h]
            + 0.25 * activity[base + (h + 1) % 24]
        )
    return 24.0 * share


def _logit(rate: float) -> float:
    r = min(max(rate, 1e-3), 1 - 1e-3)
    return math.log(r / (1.0 - r))


def channel_features(
    profile: CustomerProfile, channel: Channel, local: dt.datetime | None
) -> np.ndarray:
    """The customer's features on ``channel`` (:data:`CHANNEL_FEATURES`) for a send at
    local moment ``local``."""
    eng = profile.engagement.get(channel)
    contacts = float(profile.contacts.contacts_7d.get(channel, 0))
    fit = hour_fit(profile, local)
    if eng is None:
        return np.array([_logit(0.0), _logit(0.0), 0.0, 0.0, contacts, fit])
    return np.array(
        [
            _logit(eng.open_rate),
            _logit(eng.click_rate),
            math.log1p(eng.sent),
            math.log1p(eng.opened),
            contacts,
            fit,
        ]
    )
