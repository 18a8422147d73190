"""Batch decisions with the registry's champions score a whole chunk at once and decide
exactly as one customer at a time (the API's path): the channel model's chunk table, the
send-time model's chunk personalisation and the copies of profiles they make change the
cost, never a number. Everything is built from a simulated retailer's raw events through
the real feature code and real fitted models (and, for ``nba decide``, a real MLflow
registry)."""

from __future__ import annotations

import dataclasses
import datetime as dt
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import typer
from typer.testing import CliRunner

from cli.decide import load_catalog, load_contact_policy
from features.batch import build_profiles
from features.dataset import RetailDataset
from features.profile_table import profiles_frame
from nba.budgets import UsageCounts
from nba.channels import Channel
from nba.context import CustomerContext
from nba.frozen import computed_once, fast_init, fast_replace
from nba.pipeline import build_pipeline
from nba.profile import CustomerProfile
from simulator import SimulatorConfig, simulate
from training.examples import contact_examples, message_sends, sample_rows
from training.model_scorer import ModelScorer
from training.propensity import ChannelPropensityModel, _design
from training.send_time import SendTimeModel

SEED = 5


@pytest.fixture(scope="module")
def data() -> RetailDataset:
    sim = simulate(SimulatorConfig(n_customers=400, days=45, seed=21, n_products=150))
    return RetailDataset(sim.customers, sim.products, sim.offers, sim.events)


@pytest.fixture(scope="module")
def scorer(data: RetailDataset) -> ModelScorer:
    sends = contact_examples(data, sample_rows(message_sends(data.events), 3000, 0))
    return ModelScorer(ChannelPropensityModel().fit(sends), send_time=SendTimeModel().fit(data))


@pytest.fixture(scope="module")
def profiles(data: RetailDataset) -> list[CustomerProfile]:
    """The retailer's profiles at the end of its history, from its raw events."""
    return build_profiles(data, workers=1).profiles


def _now(profiles: list[CustomerProfile]) -> dt.datetime:
    moment = profiles[0].as_of
    assert moment is not None
    return moment


def test_a_chunk_personalised_at_once_is_each_profile_personalised_alone_to_the_bit(
    scorer: ModelScorer, profiles: list[CustomerProfile]
) -> None:
    model = scorer.send_time
    assert model is not None
    stranger = dataclasses.replace(profiles[0], customer_id="not-in-the-history")
    chunk = [*profiles, stranger]
    together = model.personalise_many(chunk)
    for profile, personal in zip(chunk, together, strict=True):
        alone = model.personalise(profile)
        assert personal == alone
        # the learned pattern, each hour's share of it (as plain Python floats)
        pattern = model.pattern(profile.customer_id).tolist()
        total = float(np.asarray(pattern).sum())
        assert personal.activity_by_hour == tuple(v / total for v in pattern)
        # nothing else of the profile moved
        assert dataclasses.replace(personal, activity_by_hour=profile.activity_by_hour) == profile
    assert together[-1].activity_by_hour != together[0].activity_by_hour  # the stranger's
    assert model.personalise_many([]) == []


def test_channel_scores_in_parts_agree_with_the_training_design_and_hours_to_the_bit(
    scorer: ModelScorer, profiles: list[CustomerProfile]
) -> None:
    """``predict`` (one customer, the API's path) scores by customer, channel and hour-fit
    terms; the full design matrix (training's path) gives the same probabilities within
    rounding, and ``predict_hours`` (a chunk's table) equals ``predict`` to the bit."""
    model = scorer.propensity
    assert model is not None and model.scorer is not None
    personal = scorer.send_time.personalise_many(profiles[:80])  # type: ignore[union-attr]
    silent = dataclasses.replace(personal[0], engagement={}, activity_by_hour=())
    chunk = [*personal, silent]
    grid = model.predict_hours(chunk)
    channels = list(model.channels)
    day = dt.datetime(2026, 2, 4, tzinfo=dt.UTC)
    from training.contact_features import channel_features, profile_features

    moved = 0.0
    for n, profile in enumerate(chunk):
        for hour in (0, 7, 12, 19, 23):
            local = [day.replace(hour=hour)] * len(channels)
            alone = model.predict(profile, channels, local)
            assert np.array_equal(grid[n, :, hour], alone)
            per = np.vstack(
                [channel_features(profile, c, t) for c, t in zip(channels, local, strict=True)]
            )
            index = np.arange(len(channels), dtype=np.intp)
            base = np.vstack([profile_features(profile)] * len(channels))
            designed = model.scorer.probability(_design(base, index, per, len(channels)))
            np.testing.assert_allclose(alone, designed, rtol=0, atol=1e-12)
            moved = max(moved, float(np.ptp(grid[n, 0, :])))
    assert moved > 0.0  # the hour matters


def test_a_chunks_scores_equal_each_customers_own_scores_on_the_engines_candidates(
    scorer: ModelScorer, profiles: list[CustomerProfile]
) -> None:
    """Every candidate the engine screens for a customer (their real actions, channels
    and send slots) scores the same inside ``chunk`` as alone, without a model call."""
    catalog = load_catalog(None)
    now = _now(profiles)
    contexts = [scorer.prepare(CustomerContext(p, now)) for p in profiles[:150]]
    seen: list[tuple[CustomerContext, list]] = []

    class Recording(ModelScorer):
        def score(self, context, candidates):  # type: ignore[no-untyped-def]
            seen.append((context, list(candidates)))
            return super().score(context, candidates)

    recording = Recording(scorer.propensity, scorer.uplift, scorer.send_time)
    spy = build_pipeline(catalog, load_contact_policy(None), scorer=recording)
    for context in contexts:
        spy.decider.route(context, seed=f"{SEED}:{context.customer_id}")  # prepared above
    assert len(seen) > 50 and sum(len(c) for _, c in seen) > 200
    alone = [scorer.score(context, candidates) for context, candidates in seen]
    model = scorer.propensity
    assert model is not None
    calls = 0
    predict = model.predict

    def counted(*args, **kwargs):  # type: ignore[no-untyped-def]
        nonlocal calls
        calls += 1
        return predict(*args, **kwargs)

    model.predict = counted  # type: ignore[method-assign]
    try:
        with scorer.chunk([c.profile for c in contexts]):
            together = [scorer.score(context, candidates) for context, candidates in seen]
    finally:
        del model.predict
    assert together == alone
    chunked = {id(c.profile) for c in contexts}
    outside = [
        c
        for c, candidates in seen
        if id(c.profile) not in chunked
        and any(model.knows(s.channel) for x in candidates for s in x.slots)
    ]
    assert calls == len(outside) < len(seen) / 10


def test_batch_decisions_with_the_champions_are_the_apis_one_customer_at_a_time(
    scorer: ModelScorer, profiles: list[CustomerProfile]
) -> None:
    """``decide_audience`` (chunked scoring) gives each customer the decision the API's
    path gives: prepare the context, route it alone, in the chunk's order with the
    chunk's usage (one chunk: the audience is under ``CHUNK_SIZE``)."""
    from serving.batch_decisions import CHUNK_SIZE, decide_audience

    catalog = load_catalog(None)
    pipeline = build_pipeline(catalog, load_contact_policy(None), scorer=scorer)
    now = _now(profiles)
    assert len(profiles) < CHUNK_SIZE
    table = decide_audience(profiles, catalog, now=now, policy=pipeline, seed=SEED)

    offers: dict[str, int] = {}
    actions: dict[str, int] = {}
    expected: dict[str, list[tuple[object, ...]]] = {}
    for profile in sorted(profiles, key=lambda p: p.customer_id):
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
    contacted = 0
    for customer, rows in table.groupby("customer_id", sort=False):
        got = [
            (
                r.decision_id,
                r.action_id,
                None if pd.isna(r.channel) else r.channel,
                None if pd.isna(r.send_at_utc) else r.send_at_utc.to_pydatetime(),
                r.priority,
                r.propensity,
            )
            for r in rows.itertuples()
            if not pd.isna(r.action_id)
        ]
        assert got == expected[str(customer)], customer
        contacted += sum(1 for g in got if g[2] is not None)
    assert contacted > 20


def test_nba_decide_writes_the_same_rows_scored_by_chunk_or_one_at_a_time(
    data: RetailDataset,
    profiles: list[CustomerProfile],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """``nba decide`` with the registry's champions, on two workers over several chunks,
    writes the file it writes when every customer is scored alone (no chunk table, each
    profile personalised on its own)."""
    import serving.batch_decisions as batch
    from cli.decide import decide
    from training.api import CHANNELS_NAME, SEND_TIME_NAME, train_channels, train_send_time
    from training.registry import ModelRegistry

    registry = ModelRegistry(f"sqlite:///{tmp_path / 'mlflow.db'}", tmp_path / "artifacts")
    channels = train_channels(data, registry=registry)
    send_time = train_send_time(data, registry=registry)
    registry.promote(CHANNELS_NAME, channels.version.version)
    registry.promote(SEND_TIME_NAME, send_time.version.version)
    audience = tmp_path / "audience.parquet"
    profiles_frame(profiles).to_parquet(audience, index=False)
    cli = typer.Typer()
    cli.command("decide")(decide)
    cli.command("unused")(lambda: None)  # a group, so that 'decide' is a subcommand
    monkeypatch.setattr(batch, "CHUNK_SIZE", 60)  # several chunks, on two workers

    def run(out: Path) -> pd.DataFrame:
        result = CliRunner().invoke(
            cli,
            [
                "decide",
                *("--audience", str(audience), "--out", str(out)),
                *("--now", _now(profiles).isoformat(), "--seed", str(SEED)),
                *("--workers", "2", "--tracking-uri", f"sqlite:///{tmp_path / 'mlflow.db'}"),
            ],
        )
        assert result.exit_code == 0, result.output
        assert f"{CHANNELS_NAME}:" in " ".join(result.output.split())
        return pd.read_parquet(out)

    chunked = run(tmp_path / "chunked.parquet")

    @dataclasses.dataclass
    class _Alone:
        def __enter__(self) -> None:
            return None

        def __exit__(self, *args: object) -> None:
            return None

    monkeypatch.setattr(ModelScorer, "chunk", lambda self, profiles: _Alone())
    monkeypatch.setattr(
        SendTimeModel, "personalise_many", lambda self, ps: [self.personalise(p) for p in ps]
    )
    monkeypatch.setattr(
        SendTimeModel,
        "personalise",
        lambda self, p: dataclasses.replace(
            p,
            activity_by_hour=tuple(
                v / float(self.pattern(p.customer_id).sum())
                for v in self.pattern(p.customer_id).tolist()
            ),
        ),
    )
    alone = run(tmp_path / "alone.parquet")
    pd.testing.assert_frame_equal(chunked, alone, check_exact=True)
    sent = chunked.dropna(subset=["channel"])
    assert len(sent) > 20 and sent["channel"].isin([c.value for c in Channel]).all()


def test_fast_replace_is_dataclasses_replace_where_a_dict_copy_is_the_same_object(
    profiles: list[CustomerProfile],
) -> None:
    profile = profiles[0]
    for changes in ({"engagement": {}}, {"activity_by_hour": ()}, {}):
        copied = fast_replace(profile, **changes)
        assert copied == dataclasses.replace(profile, **changes)
        assert copied is not profile and type(copied) is CustomerProfile
    assert fast_replace(profile, engagement={}).engagement == {}
    assert profile.engagement  # the original is untouched
    with pytest.raises(TypeError, match="CustomerProfile has no field 'engagment'"):
        fast_replace(profile, engagment={})
    with pytest.raises(dataclasses.FrozenInstanceError):
        fast_replace(profile).customer_id = "x"  # type: ignore[misc]

    # a class with __post_init__ still checks: it goes through dataclasses.replace
    context = CustomerContext(profile, _now(profiles))
    with pytest.raises(ValueError, match="time zone"):
        fast_replace(context, now=dt.datetime(2026, 1, 1))

    # a value computed once from the fields would be stale in a copy: not copied
    @fast_init
    @dataclasses.dataclass(frozen=True)
    class Basket:
        items: tuple[float, ...]

        @computed_once
        def total(self) -> float:
            return sum(self.items)

    full = Basket((1.0, 2.0))
    assert full.total == 3.0
    assert fast_replace(full, items=(5.0,)).total == 5.0


def test_a_few_customers_rows_are_found_as_many_customers_rows_are(
    scorer: ModelScorer, profiles: list[CustomerProfile]
) -> None:
    """The send-time model looks up a few ids one by one (the API's one per decision) and
    many at once; both find the same rows, unknown customers included."""
    import training.send_time as send_time

    model = scorer.send_time
    assert model is not None
    ids = [p.customer_id for p in profiles[:40]] + ["nobody", "C999999"]
    many = model._index.get_indexer(pd.Index(ids))
    assert (many >= 0).sum() == 40 and (many < 0).sum() == 2
    assert model._rows(ids).tolist() == many.tolist()
    assert [model._rows([c])[0] for c in ids] == many.tolist()
    everyone = [p.customer_id for p in profiles] + ["nobody"]
    assert len(everyone) > send_time._LOOKED_UP_ALONE
    assert model._rows(everyone).tolist() == model._index.get_indexer(pd.Index(everyone)).tolist()
    assert np.array_equal(model.pattern("nobody"), model.global_pattern)
