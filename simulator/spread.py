"""How much the choice of action, channel and time is worth, per customer, under the truth.

:func:`option_spread` values every option (message kind x consented channel x
send hour x offer) of each customer by its true incremental margin (expected
margin with the message minus without any contact), and reports, per
customer, the best option against the mean of their options, and the best
per-customer choice against a fixed rule: one priority list of options for
everyone (by their mean value), each customer getting the first they can
receive. A world where these are close would make personalisation pointless.

>>> from simulator import SimulatorConfig, simulate
>>> sim = simulate(SimulatorConfig(n_customers=300, days=30, seed=2))
>>> spread = option_spread(sim, range(100), sim.config.start + dt.timedelta(days=20),
...                        kinds=("promo", "birthday"), hours=(9, 19), offers=(None,))
>>> bool((spread.best >= spread.mean).all()), spread.options
(True, 20)
"""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from simulator.config import MESSAGE_CHANNELS
from simulator.simulation import SimulatedRetailer


@dataclass(frozen=True)
class OptionSpread:
    """Per-customer option values, arrays of shape ``(n,)`` (customers with an option)."""

    customers: np.ndarray  # rows
    best: np.ndarray  # value of the customer's best option (0: doing nothing)
    mean: np.ndarray  # mean value of their options
    best_fixed: np.ndarray  # value of a fixed rule's choice (see option_spread)
    options: int  # options per customer before consent

    @property
    def spread(self) -> np.ndarray:
        return self.best - self.mean

    def summary(self) -> dict[str, float]:
        """Means over customers; ``personalisation_gain`` is best / fixed rule - 1."""
        return {
            "customers": float(self.customers.size),
            "best": float(self.best.mean()),
            "mean_option": float(self.mean.mean()),
            "spread_mean": float(self.spread.mean()),
            "spread_median": float(np.median(self.spread)),
            "best_fixed_option": float(self.best_fixed.mean()),
            "personalisation_gain": float(self.best.mean() / self.best_fixed.mean() - 1.0),
        }


def option_spread(
    sim: SimulatedRetailer,
    customers: Iterable[int],
    day: dt.datetime,
    *,
    kinds: Sequence[str] = ("promo", "newsletter", "new_collection", "birthday", "reactivation"),
    hours: Sequence[int] = (7, 10, 13, 16, 19, 22),
    offers: Sequence[str | None] | None = None,
) -> OptionSpread:
    """True incremental margin of every option for ``customers`` (rows) on ``day`` (UTC hours).

    Messages are about the customer's true favourite category; ``offers``
    defaults to none, the smallest and the largest percent discount. Only the
    channels a customer consented to at the end of the data set count.
    """
    response = sim.response
    rows = np.asarray(list(customers), dtype=np.intp)
    if offers is None:
        percent = sim.offers[sim.offers["kind"] == "percent_discount"].sort_values("value")
        offers = (None, str(percent["offer_id"].iloc[0]), str(percent["offer_id"].iloc[-1]))
    favourite = sim.truth.customers["favourite_category"].to_numpy()[rows]
    consent = np.stack(
        [sim.customers[f"consent_{c.value}"].to_numpy(bool)[rows] for c in MESSAGE_CHANNELS]
    )
    values, allowed = [], []
    for kind, (c, channel), hour, offer in itertools.product(
        kinds, enumerate(MESSAGE_CHANNELS), hours, offers
    ):
        when = day + dt.timedelta(hours=hour)
        value = response.expected_value(
            rows, channel.value, when, kind=kind, category=favourite, offer=offer
        )
        values.append(value.margin - response.baseline(rows, when).margin)
        allowed.append(consent[c])
    table = np.where(np.array(allowed), np.array(values), np.nan)  # (options, customers)
    reachable = np.array(allowed).any(axis=0)
    table = table[:, reachable]
    ranked = table[np.argsort(-np.nan_to_num(np.nanmean(table, axis=1), nan=-np.inf))]
    first = np.argmax(~np.isnan(ranked), axis=0)
    return OptionSpread(
        customers=rows[reachable],
        best=np.maximum(np.nanmax(table, axis=0), 0.0),  # doing nothing is an option
        mean=np.nanmean(table, axis=0),
        best_fixed=ranked[first, np.arange(ranked.shape[1])],
        options=len(values),
    )
