"""Write a simulated data set: the four contract tables and the ground truth.

Layout of ``out_dir``::

    customers.parquet  products.parquet  offers.parquet  events.parquet
    truth/customers.parquet  truth/products.parquet  truth/offers.parquet
    truth/campaigns.parquet  truth/config.json

Events are written chunk by chunk with one ``ParquetWriter`` (row groups of at
most :data:`EVENTS_ROW_GROUP` rows), so that only one chunk's text columns are
in memory at a time. :func:`write_simulation` writes a run held in memory;
:func:`stream_simulation` simulates and writes at once, never holding more
than one chunk of events (memory bounded whatever the number of customers).
Both write identical files for the same config.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from simulator.config import SimulatorConfig
from simulator.eventlog import EVENTS_ARROW_SCHEMA, block_to_arrow
from simulator.simulation import (
    GroundTruth,
    Progress,
    SimulatedRetailer,
    SimulationRun,
    event_id_width,
)

#: Rows per Parquet row group of the events file.
EVENTS_ROW_GROUP = 256_000


def write_simulation(
    sim: SimulatedRetailer, out_dir: str | Path, progress: Progress | None = None
) -> Path:
    """Write ``sim`` to ``out_dir`` (created if needed) and return its path.

    ``progress(done, total)`` is called after each chunk of events with events written so far.
    """
    out = _prepare(out_dir)
    total = sim.n_events

    def report(done: int) -> None:
        if progress is not None:
            progress(done, total)

    _write_events(out, sim.iter_event_tables(), report)
    _write_tables(out, sim.config, sim.customers, sim.products, sim.offers, sim.truth)
    return out


def stream_simulation(
    config: SimulatorConfig, out_dir: str | Path, progress: Progress | None = None
) -> Path:
    """Simulate ``config`` and write it to ``out_dir`` chunk by chunk; return its path.

    Memory holds the customers' traits and one chunk of events, never the whole
    event log. ``progress(done, total)`` reports customers simulated so far.
    """
    out = _prepare(out_dir)
    run = SimulationRun.prepare(config)
    ids = {
        "customer_ids": pa.array(run.response.customer_ids, type=pa.string()),
        "product_ids": pa.array(run.catalogue.products["product_id"].to_numpy(dtype=object)),
        "offer_ids": pa.array(run.offers.offers["offer_id"].to_numpy(dtype=object)),
        "properties": pa.array(list(run.catalogue.properties), type=pa.string()),
    }
    frames: list[pd.DataFrame] = []
    width = event_id_width(config)

    def tables() -> Iterable[pa.Table]:
        first = 1
        for done, block, frame in run.chunks():
            frames.append(frame)
            yield block_to_arrow(block, first, width, **ids)
            first += len(block)
            if progress is not None:
                progress(done, config.n_customers)

    _write_events(out, tables(), lambda done: None)
    customers = pd.concat(frames, ignore_index=True)
    products, offers = run.catalogue.products, run.offers.offers
    _write_tables(out, config, customers, products, offers, run.ground_truth())
    return out


def _prepare(out_dir: str | Path) -> Path:
    out = Path(out_dir)
    (out / "truth").mkdir(parents=True, exist_ok=True)
    return out


def _write_events(out: Path, tables: Iterable[pa.Table], report: Callable[[int], None]) -> None:
    done = 0
    with pq.ParquetWriter(
        out / "events.parquet", EVENTS_ARROW_SCHEMA, compression="zstd"
    ) as writer:
        for table in tables:
            writer.write_table(table, row_group_size=EVENTS_ROW_GROUP)
            done += table.num_rows
            report(done)


def _write_tables(
    out: Path,
    config: SimulatorConfig,
    customers: pd.DataFrame,
    products: pd.DataFrame,
    offers: pd.DataFrame,
    truth: GroundTruth,
) -> None:
    customers.to_parquet(out / "customers.parquet", index=False)
    products.to_parquet(out / "products.parquet", index=False)
    offers.to_parquet(out / "offers.parquet", index=False)
    truth_dir = out / "truth"
    truth.customers.to_parquet(truth_dir / "customers.parquet", index=False)
    truth.products.to_parquet(truth_dir / "products.parquet", index=False)
    truth.offers.to_parquet(truth_dir / "offers.parquet", index=False)
    truth.campaigns.to_parquet(truth_dir / "campaigns.parquet", index=False)
    (truth_dir / "config.json").write_text(config.to_json() + "\n", encoding="utf-8")
