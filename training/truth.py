"""What a simulated data set knows and the models must find out: ground truth for evaluation.

A data set written by the simulator carries ``truth/`` (each customer's true
channel responsiveness, peak hours and promotion sensitivity; each offer's
appeal). :class:`SimulatorTruth` reads it, or takes the
:class:`~simulator.SimulatedRetailer` itself, and answers the questions the
evaluations ask: the true P(open) of a send, the true uplift of an offer.
It is for evaluation only; no model is fitted on it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from simulator import ResponseModel, SimulatedRetailer
from training.contact_features import OPEN_CHANNELS
from training.examples import ContactExamples


@dataclass(frozen=True)
class SimulatorTruth:
    """What a simulated data set knows and models must find out, for evaluation only.

    ``customers`` is ``truth/customers.parquet`` (true channel responsiveness
    ``open_<channel>``, peak hours, promotion sensitivity...), ``offers``
    ``truth/offers.parquet`` (each offer's true appeal). ``response`` is the
    simulator's :class:`~simulator.ResponseModel` when the data set
    was simulated in this process: then true probabilities and uplifts are
    exact; read from files, they come from the customers' true traits
    (responsiveness; promotion sensitivity x appeal).
    """

    customers: pd.DataFrame
    offers: pd.DataFrame
    response: ResponseModel | None = None
    message_kinds: dict[str, str] | None = None  # channel -> kind of its historical campaign

    @classmethod
    def from_simulation(cls, sim: SimulatedRetailer) -> SimulatorTruth:
        """From an in-memory :class:`~simulator.SimulatedRetailer`."""
        kinds: dict[str, str] = {}
        for campaign in sim.config.campaigns:
            kinds.setdefault(campaign.channel.value, campaign.kind)
        return cls(sim.truth.customers, sim.truth.offers, sim.response, kinds)

    @classmethod
    def from_dir(cls, folder: str | Path) -> SimulatorTruth | None:
        """From ``folder/truth/`` as the simulator writes it; None when there is none."""
        truth = Path(folder) / "truth"
        if not (truth / "customers.parquet").is_file():
            return None
        offers_path = truth / "offers.parquet"
        offers = pd.read_parquet(offers_path) if offers_path.is_file() else pd.DataFrame()
        return cls(pd.read_parquet(truth / "customers.parquet"), offers)

    def engagement(self, examples: ContactExamples) -> np.ndarray:
        """True P(open) of each send on channels that report opens (NaN elsewhere)."""
        rows = examples.rows
        channels = rows["channel"].astype(str).to_numpy()
        opens = np.isin(channels, [c.value for c in OPEN_CHANNELS])
        if self.response is not None:
            recent = examples.columns.contacts_7d.sum(axis=1)
            p = self.response.probabilities(
                rows["customer_id"].to_numpy(dtype=object),
                channels,
                rows["timestamp"].to_numpy(),
                recent_contacts=recent,
            )
            return np.where(opens, p.open, np.nan)
        truth = self.customers.set_index("customer_id")
        out = np.full(len(rows), np.nan)
        for channel in np.unique(channels[opens]):
            column = f"open_{channel}"
            if column in truth:
                at = channels == channel
                out[at] = truth[column].reindex(rows["customer_id"][at]).to_numpy(dtype=float)
        return out

    def uplift(self, examples: ContactExamples) -> np.ndarray:
        """True uplift in P(purchase within the window) of each send's offer."""
        rows = examples.rows
        if self.response is not None:
            channels = rows["channel"].astype(str).to_numpy()
            kinds = np.array(
                [(self.message_kinds or {}).get(c, "promo") for c in channels], dtype=object
            )
            value = self.response.offer_uplift(
                rows["customer_id"].to_numpy(dtype=object),
                channels,
                rows["timestamp"].to_numpy(),
                rows["offer_id"].to_numpy(dtype=object),
                kind=kinds,
            )
            return np.asarray(value.purchase, dtype=float)
        promo = self.customers.set_index("customer_id")["promo_sensitivity"]
        appeal = self.offers.set_index("offer_id")["appeal"]
        return promo.reindex(rows["customer_id"]).to_numpy(dtype=float) * appeal.reindex(
            rows["offer_id"]
        ).to_numpy(dtype=float)
