"""What the decision models read of a customer: profile and channel features as vectors.

The channel propensity and offer uplift models score a customer's point-in-time
profile on a channel. Both start from the same numbers: :func:`profile_matrix`
(recency, frequency, value, promotion sensitivity, lifecycle state...) and
:func:`channel_matrix` (the customer's smoothed open and click rates on the
channel, recent contacts there, and how well the send's local hour fits their
activity). Each feature is written twice, for the two ways it is read:

- over :class:`~features.point_in_time.ProfileColumns`, the columns of many
  training examples at once (:func:`features.point_in_time.point_in_time_columns`)
  or of a batch of profiles: :func:`profile_matrix`, :func:`channel_matrix`;
- in scalar arithmetic on one live profile (:func:`profile_features`,
  :func:`channel_features`): what serving scores per request, where a numpy call
  per feature would cost more than the features of one row.

``tests/test_point_in_time_columns.py`` checks the two give the same values, bit
for bit, on thousands of simulated examples.

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
from collections.abc import Sequence

import numpy as np

from features.point_in_time import CHANNEL_INDEX, LIFECYCLE_STATES, ProfileColumns
from nba.channels import CONSENT_CHANNELS, Channel
from nba.profile import HOURS_PER_WEEK, CustomerProfile

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


def _log_days_array(days: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(log1p(days capped to [0, 365]), unknown)``; unknown (NaN) days count as 365."""
    unknown = np.isnan(days)
    capped = np.where(unknown, _DAYS_CAP, np.minimum(np.maximum(days, 0.0), _DAYS_CAP))
    return np.log1p(capped), unknown.astype(float)


def _logit_array(rate: np.ndarray) -> np.ndarray:
    r = np.minimum(np.maximum(rate, 1e-3), 1 - 1e-3)
    return np.log(r / (1.0 - r))


def profile_matrix(cols: ProfileColumns) -> np.ndarray:
    """The customer-level features (:data:`PROFILE_FEATURES`), shape ``(n, n_features)``."""
    visit, never_visited = _log_days_array(cols.days_since_last_visit)
    purchase, never_purchased = _log_days_array(cols.days_since_last_purchase)
    rank = np.array([_TIER_RANK.get(t, 0) for t in cols.loyalty_tier.tolist()], dtype=float)
    opens = np.where(cols.has_engagement, cols.open_rate, -np.inf)[:, _CONSENT_INDEX]
    best = opens.max(axis=1, initial=-np.inf)
    best_open = np.where(np.isfinite(best), best, 0.0)  # no consent channel engaged: 0
    columns = (
        visit,
        never_visited,
        purchase,
        never_purchased,
        np.log1p(cols.purchases_90d),
        np.log1p(cols.purchases_total),
        np.log1p(np.maximum(cols.revenue_90d, 0.0)),
        np.log1p(np.maximum(cols.average_basket, 0.0)),
        cols.promo_sensitivity,
        cols.early_adopter_score,
        np.log1p(cols.events_seen),
        cols.has_cart,
        rank,
        cols.contacts_7d.sum(axis=1),
        best_open,
    )
    out = np.empty((len(cols), len(PROFILE_FEATURES)))
    for j, column in enumerate(columns):
        out[:, j] = column
    out[:, len(columns) :] = cols.lifecycle[:, None] == np.arange(len(_STATES))[None, :]
    return out


def hour_fit_array(cols: ProfileColumns, hour_of_day: np.ndarray) -> np.ndarray:
    """How typical each row's local hour of day is for its customer: 24 x their activity
    share in that hour and its neighbours (weights 0.25, 0.5, 0.25; 1 = an average hour;
    1 when the hour (``-1``) or the activity is unknown), shape ``(n,)``."""
    h = np.asarray(hour_of_day, dtype=np.intp)
    row = np.arange(len(h))
    at = cols.day_activity
    share = 0.25 * at[row, (h - 1) % 24] + 0.5 * at[row, h % 24] + 0.25 * at[row, (h + 1) % 24]
    return np.where((h >= 0) & ~np.isnan(share), 24.0 * share, 1.0)


def channel_matrix(
    cols: ProfileColumns, channel: np.ndarray, hour_of_day: np.ndarray
) -> np.ndarray:
    """Each row's features on its ``channel`` (index into
    :data:`features.point_in_time.CHANNELS`) for a send at local ``hour_of_day``
    (``-1``: unknown), :data:`CHANNEL_FEATURES`, shape ``(n, n_features)``."""
    row = np.arange(len(channel))
    has = cols.has_engagement[row, channel]
    columns = (
        _logit_array(np.where(has, cols.open_rate[row, channel], 0.0)),
        _logit_array(np.where(has, cols.click_rate[row, channel], 0.0)),
        np.where(has, np.log1p(cols.sent[row, channel]), 0.0),
        np.where(has, np.log1p(cols.opened[row, channel]), 0.0),
        cols.contacts_7d[row, channel],
        hour_fit_array(cols, hour_of_day),
    )
    out = np.empty((len(row), len(CHANNEL_FEATURES)))
    for j, column in enumerate(columns):
        out[:, j] = column
    return out


def channel_codes(channels: object) -> np.ndarray:
    """Indexes into :data:`features.point_in_time.CHANNELS` of channel names or members."""
    return np.array([CHANNEL_INDEX[Channel(c)] for c in channels], dtype=np.intp)  # type: ignore[attr-defined]


def _log_days(value: float | None) -> tuple[float, float]:
    if value is None:
        return math.log1p(365.0), 1.0
    return math.log1p(min(max(value, 0.0), 365.0)), 0.0


def profile_features(profile: CustomerProfile) -> np.ndarray:
    """The customer-level features (:data:`PROFILE_FEATURES`) of one live profile, shape
    ``(n_features,)``: :func:`profile_matrix` in scalar arithmetic, for the online path
    (a numpy call per feature costs more than the features on one row)."""
    return np.asarray(_profile_values(profile), dtype=float)


def profile_feature_rows(profiles: Sequence[CustomerProfile]) -> np.ndarray:
    """:func:`profile_features` of each profile (the same scalar arithmetic, so equal to
    the bit), shape ``(n, n_features)``, built as one array (a batch chunk's)."""
    return np.array([_profile_values(p) for p in profiles], dtype=float).reshape(
        len(profiles), len(PROFILE_FEATURES)
    )


def _profile_values(profile: CustomerProfile) -> list[float]:
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
    return values


def hour_fit(profile: CustomerProfile, local: dt.datetime | None) -> float:
    """How typical the local hour is for the customer: 24 x their activity share in that
    hour of day and its neighbours, summed over the days of the week (weights 0.25, 0.5,
    0.25; 1 = an average hour; 1 when unknown). :func:`hour_fit_array` over columns."""
    activity = profile.activity_by_hour
    if local is None or len(activity) != HOURS_PER_WEEK:
        return 1.0

    def day_share(hour: int) -> float:
        return sum(activity[d * 24 + hour] for d in range(7))

    h = local.hour
    share = 0.25 * day_share((h - 1) % 24) + 0.5 * day_share(h) + 0.25 * day_share((h + 1) % 24)
    return 24.0 * share


def _logit(rate: float) -> float:
    r = min(max(rate, 1e-3), 1 - 1e-3)
    return math.log(r / (1.0 - r))


def channel_features(
    profile: CustomerProfile, channel: Channel, local: dt.datetime | None
) -> np.ndarray:
    """One live profile's features on ``channel`` (:data:`CHANNEL_FEATURES`) for a send at
    local moment ``local``: :func:`channel_matrix` in scalar arithmetic."""
    return np.array([*_channel_values(profile, channel), hour_fit(profile, local)])


def channel_feature_rows(profiles: Sequence[CustomerProfile], channel: Channel) -> np.ndarray:
    """:func:`channel_features` of each profile on ``channel`` but the last, the hour's fit
    (the same scalar arithmetic, so equal to the bit), shape ``(n, n_features - 1)``."""
    return np.array([_channel_values(p, channel) for p in profiles], dtype=float).reshape(
        len(profiles), len(CHANNEL_FEATURES) - 1
    )


def _channel_values(profile: CustomerProfile, channel: Channel) -> list[float]:
    """:data:`CHANNEL_FEATURES` but the hour's fit (the last)."""
    eng = profile.engagement.get(channel)
    contacts = float(profile.contacts.contacts_7d.get(channel, 0))
    if eng is None:
        return [_logit(0.0), _logit(0.0), 0.0, 0.0, contacts]
    return [
        _logit(eng.open_rate),
        _logit(eng.click_rate),
        math.log1p(eng.sent),
        math.log1p(eng.opened),
        contacts,
    ]
