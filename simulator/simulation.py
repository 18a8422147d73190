"""Run the simulator: world, campaigns and behaviour, chunk by chunk.

Random streams come from one ``SeedSequence(config.seed)``: one child each for
the catalogue, the offers and the campaign calendar, and one per fixed-size
chunk of customers (itself split for traits, messages and behaviour). The
output therefore depends on the config only, not on the machine or on how
many chunks were computed before.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import cached_property

import numpy as np
import pandas as pd
import pyarrow as pa

from simulator.behaviour import ProductPicker, simulate_behaviour
from simulator.campaigns import CampaignCalendar, build_calendar, simulate_messages
from simulator.clock import DAY_NS, LocalClock
from simulator.config import SimulatorConfig
from simulator.eventlog import EventBlock, arrow_to_frame, block_to_arrow
from simulator.response import ResponseModel
from simulator.response.history import ShoppingHistory
from simulator.world import (
    TIMEZONES,
    Catalogue,
    CustomerWorld,
    OfferTable,
    build_catalogue,
    build_customers,
    build_offers,
    customer_ids,
    customers_frame,
    truth_frame,
)

Progress = Callable[[int, int], None]


@dataclass(frozen=True, eq=False)
class GroundTruth:
    """What the simulator knows and models must find out (never given to models)."""

    customers: (
        pd.DataFrame
    )  # one row per customer: persona, channel responsiveness, hours, tastes...
    products: pd.DataFrame  # popularity, new collection
    offers: pd.DataFrame  # appeal
    campaigns: pd.DataFrame  # the historical campaign calendar


@dataclass(frozen=True, eq=False)
class SimulatedRetailer:
    """A simulated data set: the four contract tables, the ground truth and the response model.

    Events are kept compactly per chunk (``event_blocks``, 32 bytes an event)
    and turned into contract rows on demand: :meth:`iter_event_tables` yields
    one Arrow table per chunk (bounded memory), :attr:`events` builds the whole
    frame (small runs, tests).
    """

    config: SimulatorConfig
    customers: pd.DataFrame
    products: pd.DataFrame
    offers: pd.DataFrame
    truth: GroundTruth
    response: ResponseModel
    event_blocks: tuple[EventBlock, ...]
    properties: tuple[str, ...]

    @property
    def n_events(self) -> int:
        return sum(len(b) for b in self.event_blocks)

    def iter_event_tables(self) -> Iterator[pa.Table]:
        """Contract events, one Arrow table per chunk of customers; ids ``E...`` in order."""
        width = event_id_width(self.config)
        ids = {
            "customer_ids": pa.array(self.customers["customer_id"].to_numpy(dtype=object)),
            "product_ids": pa.array(self.products["product_id"].to_numpy(dtype=object)),
            "offer_ids": pa.array(self.offers["offer_id"].to_numpy(dtype=object)),
            "properties": pa.array(list(self.properties), type=pa.string()),
        }
        first = 1
        for block in self.event_blocks:
            yield block_to_arrow(block, first, width, **ids)
            first += len(block)

    @cached_property
    def events(self) -> pd.DataFrame:
        """All events as one contract-typed frame (builds text columns: mind memory at scale),
        kept: :meth:`event_frame` builds it without keeping it."""
        return self.event_frame()

    def event_frame(self) -> pd.DataFrame:
        """All events as one contract-typed frame, built anew (the caller keeps it or not)."""
        tables = list(self.iter_event_tables())
        if not tables:
            return arrow_to_frame(block_to_arrow(EventBlock.concat([]), 1, 9, *_empty_ids()))
        return arrow_to_frame(pa.concat_tables(tables))


def event_id_width(config: SimulatorConfig) -> int:
    """Digits of event ids: room for ~20 events per customer and day, so that ids of a
    streamed run (count unknown in advance) match those of an in-memory one."""
    return max(9, len(str(config.n_customers * config.days * 20)))


def _empty_ids() -> tuple[pa.Array, ...]:
    return tuple(pa.array([], type=pa.string()) for _ in range(4))


@dataclass(frozen=True, eq=False)
class SimulationRun:
    """A run prepared up to the events: catalogue, offers, calendar, customers' traits.

    :meth:`chunks` then simulates the events chunk by chunk; :func:`simulate`
    keeps them, :func:`~simulator.writer.stream_simulation` writes
    them as they come. Both see the same chunks, so their output is identical.
    """

    config: SimulatorConfig
    clock: LocalClock
    catalogue: Catalogue
    offers: OfferTable
    calendar: CampaignCalendar
    world: CustomerWorld
    response: ResponseModel
    picker: ProductPicker
    bounds: tuple[tuple[int, int], ...]
    chunk_seeds: tuple[tuple[np.random.SeedSequence, ...], ...]

    @staticmethod
    def prepare(config: SimulatorConfig) -> SimulationRun:
        root = np.random.SeedSequence(config.seed)
        catalogue_seq, offers_seq, calendar_seq, chunks_seq = root.spawn(4)
        clock = LocalClock(TIMEZONES, config.start, config.days)
        catalogue = build_catalogue(config, np.random.default_rng(catalogue_seq))
        offers = build_offers(config, np.random.default_rng(offers_seq), catalogue)
        calendar = build_calendar(config, np.random.default_rng(calendar_seq), catalogue, offers)
        bounds = tuple(
            (lo, min(lo + config.chunk_size, config.n_customers))
            for lo in range(0, config.n_customers, config.chunk_size)
        )
        chunk_seeds = tuple(tuple(seq.spawn(3)) for seq in chunks_seq.spawn(len(bounds)))
        world = CustomerWorld.concat(
            [
                build_customers(config, np.random.default_rng(seeds[0]), hi - lo, clock, catalogue)
                for (lo, hi), seeds in zip(bounds, chunk_seeds, strict=True)
            ]
        )
        response = ResponseModel(
            world,
            catalogue,
            offers,
            clock,
            config,
            customer_ids(0, config.n_customers, config.n_customers),
            catalogue.products["product_id"].to_numpy(dtype=object),
            offers.offers["offer_id"].to_numpy(dtype=object),
        )
        return SimulationRun(
            config,
            clock,
            catalogue,
            offers,
            calendar,
            world,
            response,
            ProductPicker(catalogue, config),
            bounds,
            chunk_seeds,
        )

    def chunks(self) -> Iterator[tuple[int, EventBlock, pd.DataFrame]]:
        """``(last customer row + 1, events, customers table rows)`` per chunk, in order."""
        for (lo, hi), seeds in zip(self.bounds, self.chunk_seeds, strict=True):
            block, frame = _simulate_chunk(self, lo, hi, seeds)
            yield hi, block, frame

    def ground_truth(self) -> GroundTruth:
        product_ids = self.catalogue.products["product_id"].to_numpy(dtype=object)
        offer_ids = self.offers.offers["offer_id"].to_numpy(dtype=object)
        return GroundTruth(
            customers=truth_frame(
                self.world, customer_ids(0, self.config.n_customers, self.config.n_customers)
            ),
            products=self.catalogue.truth,
            offers=self.offers.truth,
            campaigns=self.calendar.frame(self.config, product_ids, offer_ids),
        )

    def retailer(
        self, frames: list[pd.DataFrame], blocks: tuple[EventBlock, ...]
    ) -> SimulatedRetailer:
        return SimulatedRetailer(
            config=self.config,
            customers=pd.concat(frames, ignore_index=True),
            products=self.catalogue.products,
            offers=self.offers.offers,
            truth=self.ground_truth(),
            response=self.response.with_history(ShoppingHistory(blocks)),
            event_blocks=blocks,
            properties=self.catalogue.properties,
        )


def simulate(config: SimulatorConfig, progress: Progress | None = None) -> SimulatedRetailer:
    """Simulate ``config.n_customers`` customers over ``config.days`` days, in memory.

    ``progress(done, total)`` is called after each chunk with customers done so far.
    Events stay in compact form (32 bytes each); for runs too large for that, use
    :func:`~simulator.writer.stream_simulation`.
    """
    run = SimulationRun.prepare(config)
    blocks: list[EventBlock] = []
    frames: list[pd.DataFrame] = []
    for done, block, frame in run.chunks():
        blocks.append(block)
        frames.append(frame)
        if progress is not None:
            progress(done, config.n_customers)
    return run.retailer(frames, tuple(blocks))


def _simulate_chunk(
    run: SimulationRun, lo: int, hi: int, seeds: tuple[np.random.SeedSequence, ...]
) -> tuple[EventBlock, pd.DataFrame]:
    config, world = run.config, run.world
    rows = np.arange(lo, hi)
    part = world.slice(lo, hi)
    messages = simulate_messages(
        np.random.default_rng(seeds[1]),
        rows,
        part,
        config,
        run.calendar,
        run.offers,
        run.clock,
        run.response,
    )
    behaviour = simulate_behaviour(
        np.random.default_rng(seeds[2]),
        rows,
        part,
        config,
        run.catalogue,
        run.offers,
        run.clock,
        run.picker,
        messages,
    )
    block = EventBlock.concat([messages.events.build(), behaviour.events.build()])
    start = int(pd.Timestamp(config.start).value)
    end = start + config.days * DAY_NS
    local = block.customer - lo
    inside = (block.timestamp >= np.maximum(start, part.created_at[local])) & (
        block.timestamp < end
    )
    block = block.take(inside).sorted()

    withdrawn = messages.withdrawn_at >= 0
    consent = part.consent & ~withdrawn
    consent_at = np.where(withdrawn, messages.withdrawn_at, part.consent_at)
    frame = customers_frame(part, lo, config.n_customers, consent, consent_at, behaviour.final_tier)
    return block, frame
