"""What the decision models read of a customer: profile and channel features as vectors.

The channel propensity and offer uplift models score a customer's point-in-time
profile on a channel. Both start from the same numbers: :func:`profile_matrix`
(recency, frequency, value, promotion sensitivity, lifecycle state...) and
:func:`channel_matrix` (the customer's smoothed open and click rates on the
channel, recent contacts there, and how well the send's local hour fits their
activity). Each feature has one definition, over
:class:`~features.point_in_time.ProfileColumns`: the columns of many training
examples at once (:func:`features.point_in_time.point_in_time_columns`) or of
one live profile (:func:`profile_features`, :func:`channel_features`).

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

import numpy as np

from features.point_in_time import CHANNEL_INDEX, LIFECYCLE_STATES, ProfileColumns
from nba.channels import CONSENT_CHANNELS, Channel
from nba.profile import CustomerProfile

#: Channels whose messages report opens (e-mail, push; calls answered); elsewhere clicks.
OPEN_CHANNELS = (Channel.EMAIL, Channel.PUSH, Channel.CALL_CENTRE)
_TIERS = ("none", "bronze", "silver", "gold", "platinum")
_STATES = LIFECYCLE_STATES
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


_DAYS_CAP = 365.0
_TIER_RANK = {t: i for i, t in enumerate(_TIERS)}
_CONSENT_INDEX = np.array([CHANNEL_INDEX[c] for c in CONSENT_CHANNELS], dtype=np.intp)


def _log_days(days: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(log1p(days capped to [0, 365]), unknown)``; unknown (NaN) days count as 365."""
    unknown = np.isnan(days)
    capped = np.where(unknown, _DAYS_CAP, np.minimum(np.maximum(days, 0.0), _DAYS_CAP))
    return np.log1p(capped), unknown.astype(float)


def _logit(rate: np.ndarray) -> np.ndarray:
    r = np.minimum(np.maximum(rate, 1e-3), 1 - 1e-3)
    return np.log(r / (1.0 - r))


def profile_matrix(cols: ProfileColumns) -> np.ndarray:
    """The customer-level features (:data:`PROFILE_FEATURES`), shape ``(n, n_features)``."""
    visit, never_visited = _log_days(cols.days_since_last_visit)
    purchase, never_purchased = _log_days(cols.days_since_last_purchase)
    rank = np.array([_TIER_RANK.get(t, 0) for t in cols.loyalty_tier.tolist()], dtype=float)
    opens = np.where(cols.has_engagement, cols.open_rate, -np.inf)[:, _CONSENT_INDEX]
    best = opens.max(axis=1, initial=-np.inf)
    best_open = np.where(np.isfinite(best), best, 0.0)  # no consent channel engaged: 0
    states = cols.lifecycle[:, None] == np.arange(len(_STATES))[None, :]
    columns = [
        visit,
        never_visited,
        purchase,
        never_purchased,
        np.log1p(cols.purchases_90d.astype(float)),
        np.log1p(cols.purchases_total.astype(float)),
        np.log1p(np.maximum(cols.revenue_90d, 0.0)),
        np.log1p(np.maximum(cols.average_basket, 0.0)),
        cols.promo_sensitivity,
        cols.early_adopter_score,
        np.log1p(cols.events_seen.astype(float)),
        cols.has_cart.astype(float),
        rank,
        cols.contacts_7d.sum(axis=1).astype(float),
        best_open,
    ]
    return np.hstack([np.column_stack(columns), states.astype(float)])


def hour_fit(cols: ProfileColumns, hour_of_day: np.ndarray) -> np.ndarray:
    """How typical each row's local hour of day is for the customer: 24 x their activity
    share in that hour and its neighbours (weights 0.25, 0.5, 0.25; 1 = an average hour;
    1 when the hour (``-1``) or the activity is unknown), shape ``(n,)``."""
    h = np.asarray(hour_of_day, dtype=np.intp)
    rows = np.arange(len(h))
    at = cols.day_activity
    share = (
        0.25 * at[rows, (h - 1) % 24] + 0.5 * at[rows, h % 24] + 0.25 * at[rows, (h + 1) % 24]
    )
    known = (h >= 0) & ~np.isnan(share)
    return np.where(known, 24.0 * np.nan_to_num(share), 1.0)


def channel_matrix(
    cols: ProfileColumns, channel: np.ndarray, hour_of_day: np.ndarray
) -> np.ndarray:
    """Each row's features on its ``channel`` (index into
    :data:`features.point_in_time.CHANNELS`) for a send at local ``hour_of_day``
    (``-1``: unknown), :data:`CHANNEL_FEATURES`, shape ``(n, n_features)``."""
    rows = np.arange(len(channel))
    has = cols.has_engagement[rows, channel]
    unknown = _logit(np.zeros(1))[0]
    return np.column_stack(
        [
            np.where(has, _logit(np.nan_to_num(cols.open_rate[rows, channel])), unknown),
            np.where(has, _logit(np.nan_to_num(cols.click_rate[rows, channel])), unknown),
            np.where(has, np.log1p(cols.sent[rows, channel].astype(float)), 0.0),
            np.where(has, np.log1p(cols.opened[rows, channel].astype(float)), 0.0),
            cols.contacts_7d[rows, channel].astype(float),
            hour_fit(cols, hour_of_day),
        ]
    )


def channel_codes(channels: object) -> np.ndarray:
    """Indexes into :data:`features.point_in_time.CHANNELS` of channel names or members."""
    return np.array([CHANNEL_INDEX[Channel(c)] for c in channels], dtype=np.intp)  # type: ignore[attr-defined]


def profile_features(profile: CustomerProfile) -> np.ndarray:
    """One profile's :func:`profile_matrix` row, shape ``(n_features,)``."""
    return profile_matrix(ProfileColumns.of_profiles([profile]))[0]


def channel_features(
    profile: CustomerProfile, channel: Channel, local: dt.datetime | None
) -> np.ndarray:
    """One profile's :func:`channel_matrix` row on ``channel`` for a send at local moment
    ``local``."""
    cols = ProfileColumns.of_profiles([profile])
    hour = np.array([-1 if local is None else local.hour])
    return channel_matrix(cols, channel_codes([channel]), hour)[0]
