"""Send time learned by gradient boosting, to compare with the shrunk hour-of-week model.

:func:`boosted_send_time` scores every (customer, kind of day, hour of day) with a
LightGBM classifier of "the customer's next activity on that kind of day falls in this
hour". Each candidate hour is described by the customer's own share of activity at that
hour and its neighbours (that kind of day and the other), their event counts, and the
shares of their segment and of everyone at that hour. It learns from a sample of the
customers' own activity events, each described by the customer's counts *without* that
event (leave-one-out, so an event never describes itself), against the 23 hours it did
not fall in. The fitted :class:`~training.send_time.SendTimeModel` is returned with its
posterior replaced by the normalised scores, so the same best-hour look-ups and
:func:`~training.send_time.evaluate_send_time` measure both in the same run.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from nba.profile import HOURS_PER_WEEK
from training.send_time import SendTimeModel, _best_by_day
from training.uplift_learners import BoostingConfig

_HOURS = 24
_WEEKDAY_DAYS = 5
_NEIGHBOURS = (-2, -1, 0, 1, 2)


def _day_kind_counts(counts: np.ndarray) -> np.ndarray:
    """``(n, 2, 24)``: counts per hour of day over weekdays (0) and weekend days (1)."""
    daily = counts.reshape(-1, 7, _HOURS)
    return np.stack(
        [daily[:, :_WEEKDAY_DAYS].sum(axis=1), daily[:, _WEEKDAY_DAYS:].sum(axis=1)], axis=1
    )


def _shares(counts: np.ndarray) -> np.ndarray:
    total = counts.sum(axis=-1, keepdims=True)
    return np.divide(counts, total, out=np.zeros_like(counts, dtype=float), where=total > 0)


def hour_features(
    own: np.ndarray, group: np.ndarray, everyone: np.ndarray, weekend: np.ndarray
) -> np.ndarray:
    """Features of every candidate hour of rows of customers, ``(n * 24, 11)`` (row-major:
    the 24 hours of the first row first). ``own`` and ``group`` (the customer's segment's)
    are ``(n, 2, 24)`` counts, ``everyone`` ``(2, 24)`` shares, ``weekend`` ``(n,)``."""
    n = len(own)
    kind = weekend.astype(int)
    rows = np.arange(n)
    same, other = _shares(own[rows, kind]), _shares(own[rows, 1 - kind])
    hours = np.arange(_HOURS)
    near = [np.roll(same, -offset, axis=1) for offset in _NEIGHBOURS]  # share at h + offset
    columns = [
        *near,
        other,
        np.repeat(own[rows, kind].sum(axis=1, keepdims=True), _HOURS, axis=1),
        np.repeat(own[rows, 1 - kind].sum(axis=1, keepdims=True), _HOURS, axis=1),
        _shares(group[rows, kind]),
        everyone[kind],
        np.broadcast_to(hours, (n, _HOURS)),
    ]
    return np.stack([c.reshape(-1) for c in columns], axis=1).astype(np.float32)


def boosted_send_time(
    model: SendTimeModel,
    counts: np.ndarray,
    config: BoostingConfig | None = None,
    max_events: int = 20_000,
) -> SendTimeModel:
    """``model`` (fitted, its customers in ``counts``' rows, ``(n, 168)`` activity counts
    from :func:`~training.send_time.activity_counts`) with its posterior and best hours
    predicted by LightGBM (see the module docstring); ``max_events`` caps the sample."""
    config = config or BoostingConfig()
    if counts.shape != (len(model.customer_ids), HOURS_PER_WEEK):
        raise ValueError(
            f"counts must be (customers, {HOURS_PER_WEEK}) = ({len(model.customer_ids)}, "
            f"{HOURS_PER_WEEK}) (got {counts.shape})"
        )
    flat = counts.astype(np.int64).ravel()
    if flat.sum() < 2 * _HOURS:
        raise ValueError(f"too few activity events to learn send times from ({flat.sum()})")
    kinds = _day_kind_counts(counts)
    segments = np.asarray(model.segments, dtype=object)
    group = np.zeros_like(kinds)
    for seg in set(segments.tolist()):
        at = segments == seg
        group[at] = kinds[at].sum(axis=0)
    everyone = _shares(kinds.sum(axis=0))

    rng = np.random.default_rng(config.seed)
    events = np.repeat(np.arange(flat.size), flat)
    if len(events) > max_events:
        events = rng.choice(events, max_events, replace=False)
    customer, hour_of_week = np.divmod(events, HOURS_PER_WEEK)
    weekend = hour_of_week >= _WEEKDAY_DAYS * _HOURS
    hour = hour_of_week % _HOURS
    own = kinds[customer].copy()
    own[np.arange(len(events)), weekend.astype(int), hour] -= 1  # leave the event out
    label = (np.arange(_HOURS)[None, :] == hour[:, None]).reshape(-1)
    classifier = config.classifier()
    classifier.fit(hour_features(own, group[customer], everyone, weekend), label)

    n = len(model.customer_ids)
    patterns = np.zeros((n, 2, _HOURS))
    for kind in (0, 1):
        flags = np.full(n, bool(kind))
        x = hour_features(kinds, group, everyone, flags)
        score = classifier.booster_.predict(x, num_threads=1).reshape(n, _HOURS)
        patterns[:, kind] = _shares(score)
    posterior = np.concatenate(
        [np.repeat(patterns[:, :1], _WEEKDAY_DAYS, 1), np.repeat(patterns[:, 1:], 2, 1)], axis=1
    ).reshape(n, HOURS_PER_WEEK)
    posterior /= posterior.sum(axis=1, keepdims=True)
    best = {c: _best_by_day(posterior, mask) for c, mask in model.allowed.items()}
    return dataclasses.replace(model, posterior=posterior.astype(np.float32), best=best)
