"""Local time and UTC for many customers at once, daylight saving included.

Customers live in a handful of time zones. :class:`LocalClock` precomputes,
per zone, the UTC offset of every hour of a range, so that converting millions
of timestamps is two array look-ups. Times are ``int64`` nanoseconds since the
epoch: UTC instants, or *local wall-clock* times read as if they were UTC.

>>> import datetime as dt
>>> clock = LocalClock(("Europe/Paris", "America/New_York"),
...                    dt.datetime(2026, 3, 1, tzinfo=dt.UTC), days=60)
>>> noon = np.datetime64("2026-03-02T12:00", "ns").astype(np.int64)
>>> utc = clock.to_utc(np.array([noon, noon]), np.array([0, 1]))
>>> [str(np.datetime64(int(t), "ns"))[:16] for t in utc]
['2026-03-02T11:00', '2026-03-02T17:00']
>>> after_dst = np.datetime64("2026-04-02T12:00", "ns").astype(np.int64)
>>> str(np.datetime64(int(clock.to_utc(np.array([after_dst]), np.array([0]))[0]), "ns"))[:16]
'2026-04-02T10:00'
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

import numpy as np
import pandas as pd

SECOND_NS = 1_000_000_000
MINUTE_NS = 60 * SECOND_NS
HOUR_NS = 3_600_000_000_000
DAY_NS = 24 * HOUR_NS
#: 1970-01-01 was a Thursday: weekday of day 0 with Monday = 0.
_EPOCH_WEEKDAY = 3


class LocalClock:
    """UTC <-> local wall-clock conversion for a fixed list of time zones.

    The tables cover ``[start - margin_days, start + days + horizon_days)``;
    times outside fall back to pandas (exact, slower).
    """

    def __init__(
        self,
        timezones: Sequence[str],
        start: dt.datetime,
        days: int,
        margin_days: int = 30,
        horizon_days: int = 400,
    ):
        self.timezones: tuple[str, ...] = tuple(timezones)
        origin = pd.Timestamp(start).tz_convert("UTC").tz_localize(None) - pd.Timedelta(
            days=margin_days
        )
        self._origin = int(origin.value)
        n_hours = (margin_days + days + horizon_days) * 24
        self._n_hours = n_hours
        hours = pd.date_range(origin, periods=n_hours, freq="h").as_unit("ns")
        naive = hours.asi8
        self._local_to_utc = np.empty((len(self.timezones), n_hours), dtype=np.int64)
        self._utc_to_local = np.empty((len(self.timezones), n_hours), dtype=np.int64)
        for i, tz in enumerate(self.timezones):
            # offset of each local wall-clock hour (non-existent hours move forward,
            # ambiguous ones are read as standard time)
            as_local = hours.tz_localize(
                tz, ambiguous=np.zeros(n_hours, dtype=bool), nonexistent="shift_forward"
            )
            utc = as_local.tz_convert("UTC").tz_localize(None).as_unit("ns").asi8
            self._local_to_utc[i] = naive - utc
            # offset of each UTC hour
            local = hours.tz_localize("UTC").tz_convert(tz).tz_localize(None).as_unit("ns").asi8
            self._utc_to_local[i] = local - naive

    def _lookup(
        self, table: np.ndarray, t: np.ndarray, tz: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        idx = (t - self._origin) // HOUR_NS
        inside = (idx >= 0) & (idx < self._n_hours)
        offsets = np.zeros(t.shape, dtype=np.int64)
        offsets[inside] = table[tz[inside], idx[inside]]
        return offsets, inside

    def to_utc(self, local_ns: np.ndarray, tz_index: np.ndarray) -> np.ndarray:
        """UTC instants of local wall-clock times, shape ``(n,)`` like the inputs."""
        local_ns = np.asarray(local_ns, dtype=np.int64)
        tz_index = np.asarray(tz_index, dtype=np.intp)
        offsets, inside = self._lookup(self._local_to_utc, local_ns, tz_index)
        out = local_ns - offsets
        if not inside.all():
            out[~inside] = self._slow(local_ns[~inside], tz_index[~inside], to_utc=True)
        return out

    def to_local(self, utc_ns: np.ndarray, tz_index: np.ndarray) -> np.ndarray:
        """Local wall-clock times of UTC instants, shape ``(n,)`` like the inputs."""
        utc_ns = np.asarray(utc_ns, dtype=np.int64)
        tz_index = np.asarray(tz_index, dtype=np.intp)
        offsets, inside = self._lookup(self._utc_to_local, utc_ns, tz_index)
        out = utc_ns + offsets
        if not inside.all():
            out[~inside] = self._slow(utc_ns[~inside], tz_index[~inside], to_utc=False)
        return out

    def _slow(self, t: np.ndarray, tz_index: np.ndarray, to_utc: bool) -> np.ndarray:
        out = np.empty_like(t)
        for i in np.unique(tz_index):
            mask = tz_index == i
            index = pd.DatetimeIndex(t[mask].astype("datetime64[ns]")).as_unit("ns")
            tz = self.timezones[int(i)]
            if to_utc:
                conv = index.tz_localize(tz, ambiguous="NaT", nonexistent="shift_forward")
                conv = conv.tz_convert("UTC").tz_localize(None)
                out[mask] = np.where(conv.isna(), t[mask], conv.as_unit("ns").asi8)
            else:
                out[mask] = (
                    index.tz_localize("UTC").tz_convert(tz).tz_localize(None).as_unit("ns").asi8
                )
        return out


def hour_of_day(local_ns: np.ndarray) -> np.ndarray:
    """Fractional hour (0 <= h < 24) of local wall-clock times."""
    return (np.asarray(local_ns, dtype=np.int64) % DAY_NS) / HOUR_NS


def weekday(local_ns: np.ndarray) -> np.ndarray:
    """Day of the week of local wall-clock times, Monday = 0."""
    return (np.asarray(local_ns, dtype=np.int64) // DAY_NS + _EPOCH_WEEKDAY) % 7


def circular_hour_distance(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Distance in hours on the 24-hour circle (0 to 12)."""
    d = np.abs(np.asarray(a, dtype=float) - np.asarray(b, dtype=float)) % 24.0
    return np.minimum(d, 24.0 - d)
