"""Batch decisions with the registry's champions over several chunks, decided by the calling
process beside ``workers - 1`` forked ones: each chunk's rows are the API's path one
customer at a time (the context prepared and routed alone, in customer-id order, with the
chunk's share of the budgets), whichever process decides the chunk and however many
decide; a worker that dies leaves its chunk to the calling process, which writes the
same rows. Built from a simulated retailer's raw events through the real feature code and
real fitted models."""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

import pandas as pd
import pytest

import serving.batch_decisions as batch
from cli.decide import load_catalog, load_contact_policy
from features.batch import build_profiles
from features.dataset import RetailDataset
from features.profile_table import profiles_frame
from nba.budgets import UsageCounts
from nba.catalog import Catalog
from nba.context import CustomerContext
from nba.pipeline import DecisionPipeline, build_pipeline
from nba.profile import CustomerProfile
from simulator import SimulatorConfig, simulate
from training.examples import contact_examples, message_sends, sample_rows
from training.model_scorer import ModelScorer
from training.propensity import ChannelPropensityModel
from training.send_time import SendTimeModel

SEED = 11
#: customers per chunk here: the audience of 300 is decided in 8 chunks
CHUNK = 40


@pytest.fixture(scope="module")
def data() -> RetailDataset:
    sim = simulate(SimulatorConfig(n_customers=300, days=45, seed=31, n_products=120))
    return RetailDataset(sim.customers, sim.products, sim.offers, sim.events)


@pytest.fixture(scope="module")
def pipeline(data: RetailDataset, catalog: Catalog) -> DecisionPipeline:
    sends = contact_examples(data, sample_rows(message_sends(data.events), 3000, 0))
    scorer = ModelScorer(ChannelPropensityModel().fit(sends), send_time=SendTimeModel().fit(data))
    return build_pipeline(catalog, load_contact_policy(None), scorer=scorer)


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return load_catalog(None)


@pytest.fixture(scope="module")
def profiles(data: RetailDataset) -> list[CustomerProfile]:
    return build_profiles(data, workers=1).profiles


def _now(profiles: list[CustomerProfile]) -> dt.datetime:
    moment = profiles[0].as_of
    assert moment is not None
    return moment


def _one_at_a_time(
    pipeline: DecisionPipeline,
    catalog: Catalog,
    profiles: list[CustomerProfile],
    now: dt.datetime,
) -> dict[str, list[tuple[object, ...]]]:
    """Each customer's rows as the API's path gives them: chunk by chunk, each customer
    prepared and routed alone in customer-id order with the chunk's usage share."""
    ids = [p.customer_id for p in profiles]
    chunks = batch.chunk_numbers(ids, batch.chunk_count(len(ids)))
    members = batch._members(chunks, ids)
    shares = batch.chunk_shares(catalog, UsageCounts(), {k: len(m) for k, m in members.items()})
    expected: dict[str, list[tuple[object, ...]]] = {}
    for k, positions in members.items():
        offers, actions = dict(shares[k].offers_given), dict(shares[k].actions_sent)
        for i in positions.tolist():
            profile = profiles[i]
            context = pipeline.prepare(CustomerContext(profile, now))
            decision = pipeline.route(
                context, usage=UsageCounts(offers, actions), seed=f"{SEED}:{profile.customer_id}"
            ).decision
            for key, n in decision.consumed.offers_given.items():
                offers[key] = offers.get(key, 0) + n
            for key, n in decision.consumed.actions_sent.items():
                actions[key] = actions.get(key, 0) + n
            expected[profile.customer_id] = [
                (
                    decision.decision_id,
                    a.action_id,
                    None if a.channel is None else a.channel.value,
                    a.send_at,
                    a.priority,
                    a.propensity,
                )
                for a in decision.actions
            ]
    return expected


def _rows(table: pd.DataFrame) -> dict[str, list[tuple[object, ...]]]:
    got: dict[str, list[tuple[object, ...]]] = {}
    for r in table.itertuples():
        if pd.isna(r.action_id):
            got.setdefault(str(r.customer_id), [])
            continue
        got.setdefault(str(r.customer_id), []).append(
            (
                r.decision_id,
                r.action_id,
                None if pd.isna(r.channel) else r.channel,
                None if pd.isna(r.send_at_utc) else r.send_at_utc.to_pydatetime(),
                r.priority,
                r.propensity,
            )
        )
    return got


def _decide(
    pipeline: DecisionPipeline,
    catalog: Catalog,
    audience: object,
    now: dt.datetime,
    workers: int,
) -> pd.DataFrame:
    return batch.decide_audience(
        audience,  # type: ignore[arg-type]
        catalog,
        now=now,
        policy=pipeline,
        seed=SEED,
        workers=workers,
    )


def test_every_chunk_decided_by_any_process_is_the_apis_one_customer_at_a_time(
    pipeline: DecisionPipeline,
    catalog: Catalog,
    profiles: list[CustomerProfile],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(batch, "CHUNK_SIZE", CHUNK)
    now = _now(profiles)
    assert batch.chunk_count(len(profiles)) == 8
    deciders = tmp_path / "deciders"
    decide = batch.BatchJob.decide

    def recorded(self, chunk, usage):  # type: ignore[no-untyped-def]
        with deciders.open("a") as out:  # forked workers append their own lines
            out.write(f"{os.getpid()}\n")
        return decide(self, chunk, usage)

    monkeypatch.setattr(batch.BatchJob, "decide", recorded)
    tables = {}
    frame = profiles_frame(profiles)
    for workers in (1, 2, 3):
        deciders.write_text("")
        tables[workers] = _decide(pipeline, catalog, frame, now, workers)
        pids = deciders.read_text().split()
        assert len(pids) == 8  # each chunk decided once
        # this process decides chunks too, beside workers - 1 forked ones
        assert str(os.getpid()) in pids
        assert len(set(pids)) <= workers
        if workers > 1:
            assert len(set(pids)) > 1
    for workers in (2, 3):
        pd.testing.assert_frame_equal(tables[1], tables[workers], check_exact=True)
    expected = _one_at_a_time(pipeline, catalog, profiles, now)
    got = _rows(tables[1])
    assert got == expected
    contacted = sum(1 for rows in got.values() for row in rows if row[2] is not None)
    assert contacted > 20


def test_a_worker_that_dies_leaves_its_chunk_to_the_calling_process(
    pipeline: DecisionPipeline,
    catalog: Catalog,
    profiles: list[CustomerProfile],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(batch, "CHUNK_SIZE", CHUNK)
    now = _now(profiles)
    alone = _decide(pipeline, catalog, profiles, now, 1)
    parent = os.getpid()
    decide = batch.BatchJob.decide

    def dying(self, chunk, usage):  # type: ignore[no-untyped-def]
        if os.getpid() != parent:
            os._exit(3)  # a forked worker killed in its first chunk
        return decide(self, chunk, usage)

    monkeypatch.setattr(batch.BatchJob, "decide", dying)
    done: list[int] = []
    table = batch.decide_audience(
        profiles,
        catalog,
        now=now,
        policy=pipeline,
        seed=SEED,
        workers=2,
        progress=lambda n, total: done.append(n),
    )
    pd.testing.assert_frame_equal(alone, table, check_exact=True)
    assert done[-1] == len(profiles) and done == sorted(done) and len(done) == 8
