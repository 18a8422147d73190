"""When customers act: moments drawn from their true active hours, in their own time zone.

A customer's activity on a local day follows ``Normal(peak, spread)`` around
their weekday or weekend peak hour. Moments are drawn in local wall-clock time
and converted to UTC with the run's :class:`~simulator.clock.LocalClock`.
All arrays have shape ``(m,)``; ``cust`` indexes the given world.
"""

from __future__ import annotations

import numpy as np

from simulator.clock import DAY_NS, HOUR_NS, MINUTE_NS, LocalClock, hour_of_day, weekday
from simulator.config import STORE_HOURS
from simulator.world import CustomerWorld


def active_hour(
    rng: np.random.Generator, world: CustomerWorld, cust: np.ndarray, local_day_start: np.ndarray
) -> np.ndarray:
    """Fractional local hours (0-24) drawn from each customer's rhythm on that local day."""
    is_weekend = weekday(local_day_start) >= 5
    peak = np.where(is_weekend, world.peak_weekend[cust], world.peak_weekday[cust])
    return (peak + rng.normal(0.0, 1.0, cust.size) * world.hour_spread[cust]) % 24.0


def moment_on_day(
    rng: np.random.Generator,
    world: CustomerWorld,
    cust: np.ndarray,
    clock: LocalClock,
    local_day_start: np.ndarray,
    in_store: np.ndarray | bool = False,
) -> np.ndarray:
    """UTC moments on the given local days at active hours (store hours where ``in_store``)."""
    hour = active_hour(rng, world, cust, local_day_start)
    hour = np.where(in_store, np.clip(hour, *STORE_HOURS), hour)
    local = local_day_start + (hour * HOUR_NS).astype(np.int64)
    return clock.to_utc(local, world.tz[cust])


def local_midnight(
    clock: LocalClock, world: CustomerWorld, cust: np.ndarray, utc: np.ndarray
) -> np.ndarray:
    """Local wall-clock midnight of the local day containing each UTC instant."""
    local = clock.to_local(utc, world.tz[cust])
    return local - local % DAY_NS


def next_active_moment(
    rng: np.random.Generator,
    world: CustomerWorld,
    cust: np.ndarray,
    clock: LocalClock,
    after: np.ndarray,
) -> np.ndarray:
    """A UTC moment after ``after`` at the customer's active hours (that day or a later one)."""
    tz = world.tz[cust]
    local = clock.to_local(after, tz)
    midnight = local - local % DAY_NS
    hour = active_hour(rng, world, cust, midnight)
    later_today = hour > hour_of_day(local) + 0.25
    extra_days = (~later_today).astype(np.int64) + rng.geometric(0.7, cust.size) - 1
    moment = midnight + extra_days * DAY_NS + (hour * HOUR_NS).astype(np.int64)
    return np.maximum(clock.to_utc(moment, tz), after + MINUTE_NS)


def store_moment(
    rng: np.random.Generator,
    world: CustomerWorld,
    cust: np.ndarray,
    clock: LocalClock,
    day_of: np.ndarray,
) -> np.ndarray:
    """A UTC moment in store hours on the local day of ``day_of``, near the active hours."""
    midnight = local_midnight(clock, world, cust, day_of)
    return moment_on_day(rng, world, cust, clock, midnight, in_store=True)
