"""Send time: the best hour of the week per customer and channel, shrunk when history is thin.

A customer's activity events (views, searches, carts, purchases, store visits,
opens and clicks: :data:`features.definitions.ACTIVITY_EVENTS`) are counted by
local hour of week. Weekdays share one daily rhythm and weekend days another,
so counts are pooled over the days of each kind before anything else: a
customer's Tuesday evening tells about their Wednesday evening.

The estimate is a hierarchical Dirichlet-multinomial (empirical Bayes)::

    global   g  = pooled counts of everyone, normalised
    segment  s  = (segment counts + beta * g) / (segment events + beta)
    customer pi = (own counts + alpha * s) / (own events + alpha)

``alpha`` (how many events of their own a customer needs before they outweigh
their segment) is chosen by maximising the Dirichlet-multinomial marginal
likelihood of the customers' counts over a grid; ``beta`` is fixed (a segment
has thousands of events). The posterior is smoothed over neighbouring hours
(``0.25, 0.5, 0.25``), and the best hour on a channel is its maximum over the
hours the channel's contact rules allow (quiet hours, weekdays:
:class:`nba.contact_policy.ContactPolicy`). The segment is a column of the
customers table (the loyalty tier by default).

Serving reads the table by customer id (an unknown customer gets their
segment's or everyone's pattern); :meth:`SendTimeModel.personalise` puts the
posterior in a profile's ``activity_by_hour`` so that the engine's own
send-time choice (:class:`nba.timing.HourPreference`) uses it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy.special import gammaln

from features.dataset import RetailDataset
from features.definitions import ACTIVITY_EVENTS, epoch_seconds, local_parts
from nba.channels import CONSENT_CHANNELS, Channel
from nba.contact_policy import ContactPolicy
from nba.events import MESSAGE_EVENTS, EventType
from nba.frozen import fast_replace
from nba.profile import HOURS_PER_WEEK, CustomerProfile

Report = Callable[[str], None]

#: Channels a send time is chosen for (placements on the site or app go out at once).
TIMED_CHANNELS: tuple[Channel, ...] = (*CONSENT_CHANNELS, Channel.WALLET)
#: Activity the customer paces themselves: online browsing and buying. Store visits follow
#: opening hours and message opens follow the sender's schedule, so they are left out.
SELF_PACED_EVENTS: frozenset[EventType] = ACTIVITY_EVENTS - MESSAGE_EVENTS
SELF_PACED_CHANNELS: tuple[Channel, ...] = (Channel.WEB, Channel.APP, Channel.SOCIAL)
_REFERENCE_MONDAY = dt.datetime(2026, 1, 5)
_WEEKEND = np.arange(HOURS_PER_WEEK) >= 5 * 24
_ALPHA_GRID = np.array([0.5, 1, 2, 4, 8, 16, 32, 64, 128, 256, 512], dtype=float)


def allowed_hours(policy: ContactPolicy, channel: Channel) -> np.ndarray:
    """Boolean mask ``(168,)`` of the local hours of week the channel's rules allow
    (a reference week without excluded dates)."""
    times = policy.rules(channel).allowed_times
    return np.array(
        [times.allows(_REFERENCE_MONDAY + dt.timedelta(hours=h)) for h in range(HOURS_PER_WEEK)]
    )


def activity_counts(
    data: RetailDataset, as_of: pd.Timestamp | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """``(customer_ids, counts)``: activity events before ``as_of`` per local hour of week,
    counts of shape ``(n_customers, 168)`` for every customer of the customers table."""
    events = data.events
    if as_of is not None:
        events = events[events["timestamp"] < as_of]
    events = events[
        events["event_type"].isin([e.value for e in SELF_PACED_EVENTS])
        & events["channel"].isin([c.value for c in SELF_PACED_CHANNELS])
    ]
    ids = data.customers["customer_id"].astype(str).to_numpy(dtype=object)
    index = pd.Index(ids)
    rows = index.get_indexer(events["customer_id"].astype(str))
    known = rows >= 0
    zones = data.customers["timezone"].astype(str).to_numpy(dtype=object)
    how, _ = local_parts(epoch_seconds(events["timestamp"][known]), zones[rows[known]])
    counts = np.zeros((len(ids), HOURS_PER_WEEK))
    np.add.at(counts, (rows[known], how), 1.0)
    return ids, counts


def pool_day_kinds(counts: np.ndarray) -> np.ndarray:
    """Counts per hour of week replaced by the mean over days of the same kind (weekdays,
    weekend days) at that hour; totals are kept."""
    daily = counts.reshape(-1, 7, 24)
    weekday = daily[:, :5].mean(axis=1, keepdims=True)
    weekend = daily[:, 5:].mean(axis=1, keepdims=True)
    pooled = np.concatenate([np.repeat(weekday, 5, axis=1), np.repeat(weekend, 2, axis=1)], axis=1)
    return pooled.reshape(-1, HOURS_PER_WEEK)


def smooth_hours(matrix: np.ndarray, width: float = 1.5) -> np.ndarray:
    """Gaussian smoothing (sd ``width`` hours) over the hours of each day, circular within
    the day (11 pm is next to midnight); totals are kept."""
    if width <= 0:
        return matrix
    offsets = np.arange(-12, 12)
    kernel = np.exp(-0.5 * (offsets / width) ** 2)
    kernel /= kernel.sum()
    days = np.asarray(matrix, dtype=float).reshape(*matrix.shape[:-1], 7, 24)
    out = np.zeros_like(days)
    for offset, weight in zip(offsets, kernel, strict=True):
        out += weight * np.roll(days, offset, axis=-1)
    return out.reshape(matrix.shape)


def _normalise(vector: np.ndarray) -> np.ndarray:
    total = vector.sum(axis=-1, keepdims=True)
    return np.divide(vector, total, out=np.full_like(vector, 1.0 / HOURS_PER_WEEK), where=total > 0)


def fit_concentration(
    counts: np.ndarray, prior: np.ndarray, grid: np.ndarray = _ALPHA_GRID
) -> float:
    """The Dirichlet concentration ``alpha`` maximising the marginal likelihood of each row of
    ``counts`` under ``Dirichlet(alpha * prior_row)``-multinomial (rows with 2+ events)."""
    n = counts.sum(axis=1)
    use = n >= 2
    if not use.any():
        return float(grid[len(grid) // 2])
    c, m, n = counts[use], np.clip(prior[use], 1e-9, None), n[use]
    best, best_ll = float(grid[0]), -np.inf
    for alpha in grid:
        a = alpha * m
        ll = float(
            (gammaln(alpha) - gammaln(n + alpha)).sum() + (gammaln(c + a) - gammaln(a)).sum()
        )
        if ll > best_ll:
            best, best_ll = float(alpha), ll
    return best


def _best_by_day(patterns: np.ndarray, allowed: np.ndarray) -> np.ndarray:
    """Best allowed local hour (0-23) of each day of the week, ``(n, 7)``; -1 on days
    without an allowed hour."""
    days = np.where(allowed, patterns, -1.0).reshape(-1, 7, 24)
    best = days.argmax(axis=2).astype(np.int16)
    open_days = np.asarray(np.asarray(allowed).reshape(7, 24).sum(axis=1) > 0)
    return np.where(open_days.reshape(1, 7), best, -1).astype(np.int16)


@dataclass(frozen=True)
class SendTimeConfig:
    """Settings of :class:`SendTimeModel`."""

    segment_column: str = "loyalty_tier"
    segment_strength: float = 500.0  # beta: pseudo-events pulling a segment toward everyone
    smoothing_hours: float = 2.0  # sd of the Gaussian smoothing over neighbouring hours
    alpha: float | None = None  # None: empirical Bayes (marginal likelihood over a grid)
    channels: tuple[Channel, ...] = TIMED_CHANNELS

    def to_params(self) -> dict[str, object]:
        return {
            "segment_column": self.segment_column,
            "segment_strength": self.segment_strength,
            "smoothing_hours": self.smoothing_hours,
            "alpha": "empirical-bayes" if self.alpha is None else self.alpha,
            "channels": [c.value for c in self.channels],
        }


#: Up to this many customer ids are looked up one by one (:meth:`SendTimeModel._rows`).
_LOOKED_UP_ALONE = 64


@dataclass
class SendTimeModel:
    """Per-customer hour-of-week preference and best hour per channel (see module docstring)."""

    config: SendTimeConfig = field(default_factory=SendTimeConfig)
    customer_ids: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=object))
    posterior: np.ndarray = field(default_factory=lambda: np.zeros((0, HOURS_PER_WEEK)))
    events: np.ndarray = field(default_factory=lambda: np.zeros(0))
    segments: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=object))
    segment_patterns: dict[str, np.ndarray] = field(default_factory=dict)
    global_pattern: np.ndarray = field(default_factory=lambda: np.full(HOURS_PER_WEEK, 1 / 168))
    allowed: dict[Channel, np.ndarray] = field(default_factory=dict)
    best: dict[Channel, np.ndarray] = field(default_factory=dict)
    alpha: float = 0.0
    _index: pd.Index = field(default_factory=lambda: pd.Index([]))

    def fit(
        self,
        data: RetailDataset,
        policy: ContactPolicy | None = None,
        as_of: pd.Timestamp | None = None,
    ) -> SendTimeModel:
        """Estimate every customer's pattern from events before ``as_of`` (default: all)."""
        cfg = self.config
        if cfg.segment_column not in data.customers:
            raise ValueError(
                f"customers: no column {cfg.segment_column!r} to segment send-time patterns by "
                f"(columns: {list(data.customers.columns)})"
            )
        for c in cfg.channels:
            Channel(c)
        ids, raw = activity_counts(data, as_of)
        if raw.sum() == 0:
            raise ValueError(
                "events: no activity events (views, searches, purchases, opens, clicks...) "
                "to learn send times from"
            )
        pooled = pool_day_kinds(raw)
        segments = (
            data.customers[cfg.segment_column].astype(str).fillna("none").to_numpy(dtype=object)
        )
        width = cfg.smoothing_hours
        self.global_pattern = smooth_hours(_normalise(pooled.sum(axis=0)), width)
        self.segment_patterns = {}
        for seg in sorted(set(segments)):
            at = segments == seg
            seg_counts = pooled[at].sum(axis=0)
            self.segment_patterns[seg] = (
                seg_counts + cfg.segment_strength * self.global_pattern
            ) / (seg_counts.sum() + cfg.segment_strength)
        prior = np.vstack([self.segment_patterns[s] for s in segments])
        self.alpha = cfg.alpha if cfg.alpha is not None else fit_concentration(raw, prior)
        n = pooled.sum(axis=1, keepdims=True)
        self.posterior = smooth_hours(
            (pooled + self.alpha * prior) / (n + self.alpha), width
        ).astype(np.float32)
        self.customer_ids = ids
        self.events = n[:, 0]
        self.segments = segments
        self._index = pd.Index(ids)
        policy = policy or ContactPolicy()
        self.allowed = {c: allowed_hours(policy, c) for c in cfg.channels}
        self.best = {}
        for c, mask in self.allowed.items():
            if not mask.any():
                raise ValueError(f"contact policy: channel {c.value} allows no hour of the week")
            self.best[c] = _best_by_day(self.posterior, mask)
        return self

    # ---------------------------------------------------------------- reading

    def _rows(self, customer_ids: Sequence[str]) -> np.ndarray:
        """Each customer's row of :attr:`posterior` (``-1``: not in the history). A few ids
        (the API's one per decision) are looked up one by one: ``get_indexer`` builds an
        index of them first, 76 µs for one id against 0.2 µs by ``get_loc``."""
        index = self._index
        if len(customer_ids) > _LOOKED_UP_ALONE or not index.is_unique:
            return index.get_indexer(pd.Index([str(c) for c in customer_ids]))
        rows = []
        for customer in customer_ids:
            try:
                rows.append(index.get_loc(str(customer)))
            except KeyError:
                rows.append(-1)
        return np.array(rows, dtype=np.intp)

    def _channel(self, channel: Channel | str) -> Channel:
        ch = Channel(channel)
        if ch not in self.best:
            raise ValueError(
                f"channel {ch.value!r} has no send-time model "
                f"(known: {[c.value for c in self.best]})"
            )
        return ch

    def pattern(self, customer_id: str, segment: str | None = None) -> np.ndarray:
        """The customer's hour-of-week preference ``(168,)``; an unknown customer gets their
        segment's pattern (when given and known) or everyone's."""
        row = self._rows([customer_id])[0]
        if row >= 0:
            return np.asarray(self.posterior[row], dtype=float)
        if segment is not None and segment in self.segment_patterns:
            return smooth_hours(self.segment_patterns[segment], self.config.smoothing_hours)
        return self.global_pattern

    def best_hours(
        self, customer_ids: Sequence[str], channel: Channel | str, weekday: int | None = None
    ) -> np.ndarray:
        """Best allowed local hour per customer on ``channel``: the hour of day (0-23) on
        ``weekday`` (Monday = 0; -1 when the channel is closed that day), or the best hour of
        the whole week (Monday 00:00 = 0) when ``weekday`` is None. Unknown customers get
        everyone's best hour."""
        ch = self._channel(channel)
        rows = self._rows(customer_ids)
        if weekday is None:
            mask = self.allowed[ch]
            table = np.where(mask, self.posterior, -1.0).argmax(axis=1)
            fallback = int(np.where(mask, self.global_pattern, -1.0).argmax())
            return np.where(rows >= 0, table[np.maximum(rows, 0)], fallback).astype(int)
        if not 0 <= weekday <= 6:
            raise ValueError(f"weekday must be 0 (Monday) to 6 (Sunday), got {weekday}")
        fallback = int(self.global_best_hours(ch)[weekday])
        return np.where(rows >= 0, self.best[ch][np.maximum(rows, 0), weekday], fallback).astype(
            int
        )

    def global_best_hours(self, channel: Channel | str) -> np.ndarray:
        """Everyone's best allowed hour of each day (the baseline), shape ``(7,)``."""
        ch = self._channel(channel)
        return _best_by_day(self.global_pattern[None, :], self.allowed[ch])[0]

    def segment_best_hours(self, channel: Channel | str) -> np.ndarray:
        """Best allowed hour of each day of each customer's segment, ``(n_customers, 7)``."""
        ch = self._channel(channel)
        width = self.config.smoothing_hours
        best = {
            s: _best_by_day(smooth_hours(p[None, :], width), self.allowed[ch])[0]
            for s, p in self.segment_patterns.items()
        }
        return np.vstack([best[s] for s in self.segments])

    def predict_frame(self, frame: pd.DataFrame) -> pd.DataFrame:
        """Batch look-up (the MLflow pyfunc input): ``customer_id, channel`` and an optional
        ``weekday`` (0 = Monday); returns ``best_hour``: the hour of day on that weekday, or
        the hour of week (Monday 00:00 = 0) without one."""
        missing = {"customer_id", "channel"} - set(frame.columns)
        if missing:
            raise ValueError(f"send-time input: missing column(s) {sorted(missing)}")
        out = np.zeros(len(frame), dtype=int)
        weekdays = frame["weekday"] if "weekday" in frame else pd.Series([None] * len(frame))
        keys = pd.DataFrame(
            {
                "channel": frame["channel"].astype(str).to_numpy(),
                "weekday": [-1 if pd.isna(w) else int(w) for w in weekdays],
            }
        )
        ids = frame["customer_id"].astype(str).to_numpy()
        for channel, weekday in keys.drop_duplicates().itertuples(index=False):
            rows = np.flatnonzero((keys["channel"] == channel) & (keys["weekday"] == weekday))
            out[rows] = self.best_hours(
                list(ids[rows]), str(channel), None if int(weekday) < 0 else int(weekday)
            )
        return pd.DataFrame({"customer_id": ids, "channel": keys["channel"], "best_hour": out})

    def personalise(self, profile: CustomerProfile) -> CustomerProfile:
        """``profile`` with ``activity_by_hour`` replaced by the learned pattern, so that
        :class:`nba.timing.HourPreference` (the engine's send-time choice) uses it."""
        return self.personalise_many([profile])[0]

    def personalise_many(self, profiles: Sequence[CustomerProfile]) -> list[CustomerProfile]:
        """:meth:`personalise` for many profiles, with one index look-up for all of them
        (batch mode personalises a whole chunk at once)."""
        if not profiles:
            return []
        rows = self._rows([p.customer_id for p in profiles])
        # each row's pattern over its own sum, row by row as one pattern alone would be
        # (a row's sum does not depend on the rows beside it; an IEEE division is the
        # same in numpy as in Python): a chunk's shares in three array operations
        known = rows >= 0
        patterns = np.empty((len(profiles), HOURS_PER_WEEK))
        patterns[known] = np.asarray(self.posterior[rows[known]], dtype=float)
        patterns[~known] = np.asarray(self.global_pattern, dtype=float)
        shares = patterns / patterns.sum(axis=1)[:, None]
        return [
            fast_replace(profile, activity_by_hour=tuple(row))
            for profile, row in zip(profiles, shares.tolist(), strict=True)
        ]

    def segment_matrix(self) -> tuple[np.ndarray, list[str]]:
        """Segment patterns as a ``(n_segments + 1, 168)`` matrix (last row: everyone)."""
        labels = [*self.segment_patterns, "everyone"]
        rows = [
            smooth_hours(p, self.config.smoothing_hours) for p in self.segment_patterns.values()
        ] + [self.global_pattern]
        return np.vstack(rows), labels


# ------------------------------------------------------------------ evaluation


def hour_distance(
    hour_of_week: np.ndarray, peak_weekday: np.ndarray, peak_weekend: np.ndarray
) -> np.ndarray:
    """Circular distance (hours) between a send at the top of each hour of week and the
    customer's true peak for that kind of day."""
    how = np.asarray(hour_of_week)
    peak = np.where(_WEEKEND[how], peak_weekend, peak_weekday)
    d = np.abs((how % 24) - peak) % 24
    return np.minimum(d, 24 - d)


@dataclass(frozen=True)
class SendTimeEvaluation:
    """Share of (customer, open day) pairs whose chosen hour is within one hour of the
    customer's true peak that day, per channel and strategy (simulator ground truth)."""

    within_one_hour: dict[str, dict[str, float]]  # strategy -> channel -> share
    customers: int
    alpha: float
    by_history: dict[str, dict[str, float]] = field(default_factory=dict)  # strategy -> bucket

    def metrics(self) -> dict[str, float]:
        out = {"customers": float(self.customers), "alpha": self.alpha}
        for name, per in self.within_one_hour.items():
            for ch, v in per.items():
                out[f"{name}_within_1h_{ch}"] = v
            out[f"{name}_within_1h_mean"] = float(np.mean(list(per.values())))
        for name, per in self.by_history.items():
            for bucket, v in per.items():
                out[f"{name}_within_1h_{bucket.replace(' ', '_').replace('+', 'plus')}"] = v
        return out

    def markdown(self) -> str:
        channels = list(next(iter(self.within_one_hour.values())))
        lines = [
            f"Send time: share of {self.customers:,} customers x open days whose chosen hour is "
            f"within one hour of the true peak (alpha = {self.alpha:g})",
            "",
            "| strategy | " + " | ".join(channels) + " | mean |",
            "|---|" + "---:|" * (len(channels) + 1),
        ]
        for name, per in self.within_one_hour.items():
            values = " | ".join(f"{per[c]:.3f}" for c in channels)
            lines.append(f"| {name} | {values} | {np.mean(list(per.values())):.3f} |")
        if self.by_history:
            buckets = list(next(iter(self.by_history.values())))
            lines += [
                "",
                "By the customer's own history (first channel):",
                "",
                "| strategy | " + " | ".join(buckets) + " |",
                "|---|" + "---:|" * len(buckets),
            ]
            for name, per in self.by_history.items():
                lines.append(f"| {name} | " + " | ".join(f"{per[b]:.3f}" for b in buckets) + " |")
        return "\n".join(lines)


def evaluate_send_time(
    model: SendTimeModel,
    truth_customers: pd.DataFrame,
    channels: Sequence[Channel] | None = None,
) -> SendTimeEvaluation:
    """The model against everyone's best hour (``global``) and the segment's, on the truth
    (``customer_id, peak_hour_weekday, peak_hour_weekend``), for every day each channel is
    open; ``oracle`` is the share an allowed hour can reach at all (quiet hours may rule out
    a customer's peak)."""
    needed = {"customer_id", "peak_hour_weekday", "peak_hour_weekend"}
    missing = needed - set(truth_customers.columns)
    if missing:
        raise ValueError(f"truth customers: missing column(s) {sorted(missing)}")
    truth = truth_customers.set_index(truth_customers["customer_id"].astype(str))
    truth = truth.reindex(model.customer_ids)
    known = truth["peak_hour_weekday"].notna().to_numpy()
    if not known.any():
        raise ValueError("truth customers: none of the model's customers has a known peak hour")
    wd = truth["peak_hour_weekday"].to_numpy(dtype=float)[known]
    we = truth["peak_hour_weekend"].to_numpy(dtype=float)[known]
    ids = model.customer_ids[known]
    events = model.events[known]
    buckets = {
        "0 events": events == 0,
        "1-9 events": (events > 0) & (events < 10),
        "10+ events": events >= 10,
    }
    channels = list(channels or model.best)
    shares: dict[str, dict[str, float]] = {"model": {}, "segment": {}, "global": {}, "oracle": {}}
    history: dict[str, dict[str, float]] = {"model": {}, "segment": {}, "global": {}}
    for ch in channels:
        c = model._channel(ch)
        open_days = [d for d in range(7) if model.allowed[c][d * 24 : (d + 1) * 24].any()]
        segment = model.segment_best_hours(c)[known]
        everyone = model.global_best_hours(c)
        hits: dict[str, list[np.ndarray]] = {name: [] for name in shares}
        for d in open_days:
            chosen = {
                "model": model.best_hours(list(ids), c, weekday=d),
                "segment": segment[:, d],
                "global": np.full(len(ids), everyone[d]),
            }
            for name, hour in chosen.items():
                hits[name].append(hour_distance(d * 24 + hour, wd, we) <= 1.0)
            allowed = np.flatnonzero(model.allowed[c][d * 24 : (d + 1) * 24])
            dist = np.stack(
                [hour_distance(np.full(len(ids), d * 24 + h), wd, we) for h in allowed], axis=1
            )
            hits["oracle"].append(dist.min(axis=1) <= 1.0)
        for name, parts in hits.items():
            per_customer = np.mean(parts, axis=0)
            shares[name][c.value] = float(per_customer.mean())
            if name in history and c == model._channel(channels[0]):
                for label, at in buckets.items():
                    if at.any():
                        history[name][label] = float(per_customer[at].mean())
    return SendTimeEvaluation(shares, int(known.sum()), model.alpha, history)
