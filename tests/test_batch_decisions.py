"""Batch decisions: the engine over offline profiles, deterministic, and strict on input."""

from __future__ import annotations

import dataclasses
import datetime as dt
import gc
import json
import math
import os
import pickle
import subprocess
import sys
from dataclasses import fields
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import typer
from typer.testing import CliRunner

import serving.batch_decisions as batch
from cli.decide import decide, load_catalog, load_contact_policy
from features.batch import build_profiles
from features.dataset import RetailDataset
from features.profile_table import profiles_frame, profiles_from_frame, row_to_profile
from nba.catalog import Catalog, parse_catalog
from nba.channels import Channel
from nba.contact_policy import ContactPolicy
from nba.context import CustomerContext
from nba.decision import RoutedDecision
from nba.engine import NextBestActionPolicy
from nba.profile import ChannelEngagement, ContactHistory, CustomerProfile
from serving.batch_decisions import AudienceError, contacts_only, decide_audience
from simulator import SimulatorConfig, simulate


@pytest.fixture(scope="module")
def profiles() -> list[CustomerProfile]:
    sim = simulate(SimulatorConfig(n_customers=300, days=30, seed=5, n_products=300))
    data = RetailDataset(sim.customers, sim.products, sim.offers, sim.events)
    cut = sim.config.start + dt.timedelta(days=30, hours=-15)  # 09:00 UTC on the last day
    return build_profiles(data, as_of=cut, workers=1).profiles


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return load_catalog(None)


@pytest.fixture(scope="module")
def contact_policy() -> ContactPolicy:
    return load_contact_policy(None)


@pytest.fixture(scope="module")
def now(profiles: list[CustomerProfile]) -> dt.datetime:
    as_of = profiles[0].as_of
    assert as_of is not None
    return as_of


def test_one_row_per_customer_and_action(
    profiles: list[CustomerProfile], catalog: Catalog, contact_policy: ContactPolicy, now
) -> None:
    table = decide_audience(profiles, catalog, contact_policy, now, seed=3)
    assert list(table.columns) == list(batch.DECISION_COLUMNS)
    assert table["customer_id"].tolist() == [p.customer_id for p in profiles]
    contacts = contacts_only(table)
    assert len(contacts) > 10
    assert contacts["send_at_utc"].notna().all()
    assert contacts["send_at_local"].str.match(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[+-]\d\d:\d\d").all()
    assert (contacts["send_at_utc"] >= pd.Timestamp(now)).all()
    assert contacts["reasons"].str.len().gt(0).all()


def test_matches_the_engine_for_single_customers(
    profiles: list[CustomerProfile], catalog: Catalog, contact_policy: ContactPolicy, now
) -> None:
    table = decide_audience(profiles, catalog, contact_policy, now, seed=3).set_index("customer_id")
    engine = NextBestActionPolicy(catalog, contact_policy)
    for profile in profiles[::25]:
        decision = engine.decide(CustomerContext(profile, now), seed=f"3:{profile.customer_id}")
        row = table.loc[profile.customer_id]
        chosen = decision.actions[0]
        assert row["decision_id"] == decision.decision_id
        assert row["action_id"] == chosen.action_id
        expected_channel = None if chosen.channel is None else chosen.channel.value
        assert (None if pd.isna(row["channel"]) else row["channel"]) == expected_channel
        if chosen.send_at is not None:
            assert row["send_at_utc"] == pd.Timestamp(chosen.send_at)


def test_deterministic_whatever_the_order_chunks_and_workers(
    profiles: list[CustomerProfile],
    catalog: Catalog,
    contact_policy: ContactPolicy,
    now,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    first = decide_audience(profiles, catalog, contact_policy, now, seed=9)
    again = decide_audience(profiles, catalog, contact_policy, now, seed=9)
    pd.testing.assert_frame_equal(first, again)
    monkeypatch.setattr(batch, "CHUNK_SIZE", 10_000)
    shuffled = decide_audience(profiles[::-1], catalog, contact_policy, now, seed=9)
    pd.testing.assert_frame_equal(
        shuffled.sort_values("customer_id").reset_index(drop=True),
        first.sort_values("customer_id").reset_index(drop=True),
    )
    monkeypatch.setattr(batch, "CHUNK_SIZE", 40)
    one = decide_audience(profiles, catalog, contact_policy, now, seed=9, workers=1)
    two = decide_audience(profiles, catalog, contact_policy, now, seed=9, workers=2)
    pd.testing.assert_frame_equal(one, two)


def test_profile_rows_decide_like_profiles(
    profiles: list[CustomerProfile], catalog: Catalog, contact_policy: ContactPolicy, now
) -> None:
    from_rows = decide_audience(profiles_frame(profiles), catalog, contact_policy, now, seed=1)
    from_objects = decide_audience(profiles, catalog, contact_policy, now, seed=1)
    pd.testing.assert_frame_equal(from_rows, from_objects)


def gift_catalog(budget: int) -> Catalog:
    """A catalog whose one offer has a daily budget of ``budget``."""
    return parse_catalog(
        f"""
actions:
  - id: gift
    type: offer
    channels: [email, postal]
    value: 50
    timing: asap
    offer: {{id: gift10, kind: fixed_discount, value: 10, cost: 1, daily_budget: {budget}}}
  - {{id: nothing, type: do_nothing}}
"""
    )


def test_budgets_hold_across_chunks(
    profiles: list[CustomerProfile], now, monkeypatch: pytest.MonkeyPatch
) -> None:
    catalog = gift_catalog(budget=7)
    monkeypatch.setattr(batch, "CHUNK_SIZE", 25)
    for workers in (1, 2):
        table = decide_audience(profiles, catalog, None, now, workers=workers)
        given = (table["offer_id"] == "gift10").sum()
        assert 0 < given <= 7


def test_budgets_do_not_depend_on_the_order_of_the_rows(
    profiles: list[CustomerProfile], now, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Chunks are formed by customer id, so a binding budget goes to the same customers
    whatever the order of the audience."""
    catalog = gift_catalog(budget=11)
    monkeypatch.setattr(batch, "CHUNK_SIZE", 40)
    first = decide_audience(profiles, catalog, None, now, seed=2)
    shuffled = decide_audience(
        profiles[::-1][::2] + profiles[::-1][1::2], catalog, None, now, seed=2
    )
    assert (first["offer_id"] == "gift10").sum() == 11
    assert shuffled["customer_id"].tolist() == [
        p.customer_id for p in profiles[::-1][::2] + profiles[::-1][1::2]
    ]
    pd.testing.assert_frame_equal(
        shuffled.sort_values("customer_id", ignore_index=True),
        first.sort_values("customer_id", ignore_index=True),
    )


def test_profiles_read_column_by_column_equal_row_by_row(
    profiles: list[CustomerProfile],
) -> None:
    frame = profiles_frame(profiles)
    by_columns = profiles_from_frame(frame)
    assert by_columns == profiles
    assert by_columns == [row_to_profile(r) for r in frame.to_dict("records")]
    # nullable integers stored as floats with NaN come back as int or None
    assert {type(p.days_to_birthday) for p in by_columns} <= {int, type(None)}


def test_hour_histograms_read_from_parquet_are_the_cells_own(
    profiles: list[CustomerProfile], tmp_path: Path
) -> None:
    """``activity_by_hour`` read back from Parquet (a column of arrays) as one array: the
    values ``row_to_profile`` gives, cell by cell (``-0.0`` and NaN as they are, an empty
    histogram empty), each ``+0.0`` the same object; a column whose arrays differ in
    length is read cell by cell, as before."""
    hours = [0.0] * 168
    odd = [*hours[:160], -0.0, 7.0, 0.5, 1e-300, 0.0, 2.0, 0.0, 3.0]
    people = [
        dataclasses.replace(profiles[0], customer_id="A", activity_by_hour=tuple(odd)),
        dataclasses.replace(profiles[1], customer_id="B", activity_by_hour=()),
        *profiles[2:40],
    ]
    path = tmp_path / "profiles.parquet"
    profiles_frame(people).to_parquet(path)
    frame = pd.read_parquet(path)
    assert isinstance(frame["activity_by_hour"].iloc[0], np.ndarray)
    rows = [row_to_profile(r) for r in frame.to_dict("records")]
    for ragged in (False, True):
        if ragged:  # one histogram of another length: cell by cell
            frame.at[2, "activity_by_hour"] = np.array([1.0, 0.0])
            rows[2] = dataclasses.replace(rows[2], activity_by_hour=(1.0, 0.0))
        built = profiles_from_frame(frame)
        assert built == rows
        for made, row in zip(built, rows, strict=True):
            got, expected = made.activity_by_hour, row.activity_by_hour
            assert [type(v) for v in got] == [type(v) for v in expected]
            assert [math.copysign(1.0, v) for v in got] == [math.copysign(1.0, v) for v in expected]
    first = profiles_from_frame(frame.iloc[[0, 3]])
    zeros = {
        id(v) for p in first for v in p.activity_by_hour if v == 0.0 and math.copysign(1, v) > 0
    }
    assert len(zeros) == 1  # shared
    assert (
        first[0].activity_by_hour[160] == 0.0
        and math.copysign(1, first[0].activity_by_hour[160]) < 0
    )
    assert first[0].activity_by_hour[163] == 1e-300
    unknown = frame.iloc[[0, 3]].copy()  # NaN is no zero: read as NaN (NaN != NaN: apart)
    unknown.at[unknown.index[0], "activity_by_hour"] = np.array([math.nan, *odd[1:]])
    assert math.isnan(profiles_from_frame(unknown)[0].activity_by_hour[0])
    assert math.isnan(row_to_profile(unknown.iloc[0].to_dict()).activity_by_hour[0])
    assert profiles_from_frame(frame.iloc[[1]])[0].activity_by_hour == ()


def test_profiles_built_at_once_are_what_their_constructors_build(
    profiles: list[CustomerProfile],
) -> None:
    """A frame with every field gives profiles (and engagements, contact histories) whose
    fields are set at once: equal, field for field (engagements in repr and hash), to the
    constructors'; a
    frame without some column, or an engagement without some key, takes the constructor
    with its defaults. The classes built at once run nothing after their fields are set."""
    for cls in (CustomerProfile, ChannelEngagement, ContactHistory):
        assert not hasattr(cls, "__post_init__") and not hasattr(cls, "__slots__"), cls
    frame = profiles_frame(profiles[:40])
    built = profiles_from_frame(frame)
    for profile, made in zip(profiles[:40], built, strict=True):
        assert vars(made) == {f.name: getattr(profile, f.name) for f in fields(profile)}
        for channel, engagement in made.engagement.items():
            assert repr(engagement) == repr(profile.engagement[channel])
            assert hash(engagement) == hash(profile.engagement[channel])
        assert vars(made.contacts) == vars(profile.contacts)
    partial = profiles_from_frame(frame.drop(columns=["cart_value"]))
    assert [p.cart_value for p in partial] == [0.0] * 40
    assert [dataclasses.replace(p, cart_value=0.0) for p in profiles[:40]] == partial
    some = frame.assign(engagement='{"email": {"sent": 4, "opened": 1}}')
    assert profiles_from_frame(some)[0].engagement == {
        Channel.EMAIL: ChannelEngagement(sent=4, opened=1)
    }


def test_refuses_bad_audiences(catalog: Catalog, now) -> None:
    good = profiles_frame([CustomerProfile("C1"), CustomerProfile("C2")])
    cases = [
        (good.drop(columns=["customer_id"]), "'customer_id' is missing"),
        (good.assign(customer_id=["C1", "C1"]), r"row 2, field 'customer_id': 'C1' appears twice"),
        (
            good.assign(timezone=["UTC", "Mars/Olympus"]),
            r"row 2 \(customer 'C2'\), field 'timezone'",
        ),
        (good.assign(consents=["{}", "{not json"]), r"row 2 \(customer 'C2'\), field 'consents'"),
        (
            good.assign(lifecycle_state=["active", "zombie"]),
            r"field 'lifecycle_state': 'zombie' is not one of",
        ),
        (
            good.assign(engagement=['{"email": {"opens": 3}}', "{}"]),
            r"row 1 \(customer 'C1'\), field 'engagement'",
        ),
        (good.assign(contacts=["{}", "{}"]), r"field 'contacts': missing key 'last_contact_at'"),
    ]
    for frame, expected in cases:
        with pytest.raises(AudienceError, match=expected):
            decide_audience(frame, catalog, None, now)
    with pytest.raises(ValueError, match="time-zone aware"):
        decide_audience(good, catalog, None, now.replace(tzinfo=None))


# ------------------------------------------------------------------ the command


@pytest.fixture
def cli() -> typer.Typer:
    app = typer.Typer()
    app.command("decide")(decide)
    app.command("unused")(lambda: None)  # a group, so that 'decide' is a subcommand
    return app


def test_command_writes_decisions(
    cli: typer.Typer, profiles: list[CustomerProfile], tmp_path: Path
) -> None:
    audience = tmp_path / "profiles.parquet"
    profiles_frame(profiles[:60]).to_parquet(audience, index=False)
    for name in ("decisions.parquet", "decisions.csv"):
        out = tmp_path / name
        result = CliRunner().invoke(
            cli, ["decide", "--audience", str(audience), "--out", str(out), "--workers", "1"]
        )
        assert result.exit_code == 0, result.output
        table = pd.read_parquet(out) if out.suffix == ".parquet" else pd.read_csv(out)
        assert table["customer_id"].nunique() == 60
    assert "60 customers decided" in result.output


@pytest.mark.parametrize(
    ("catalog_text", "expected"),
    [
        ("actions:\n  - {id: x, type: content, channels: [fax], value: 1}\n", "field 'channels'"),
        ("actions: [\n", "not valid YAML"),
    ],
)
def test_command_refuses_a_bad_catalog(
    cli: typer.Typer, tmp_path: Path, catalog_text: str, expected: str
) -> None:
    audience = tmp_path / "profiles.parquet"
    profiles_frame([CustomerProfile("C1")]).to_parquet(audience, index=False)
    catalog = tmp_path / "catalog.yaml"
    catalog.write_text(catalog_text)
    result = CliRunner().invoke(
        cli,
        [
            "decide",
            "--audience",
            str(audience),
            "--out",
            str(tmp_path / "d.csv"),
            "--catalog",
            str(catalog),
        ],
    )
    assert result.exit_code == 2
    assert str(catalog) in result.output and expected in result.output
    assert "Traceback" not in result.output


def test_command_refuses_a_bad_audience(cli: typer.Typer, tmp_path: Path) -> None:
    broken = tmp_path / "broken.parquet"
    profiles_frame([CustomerProfile("C1")]).assign(timezone="Nowhere/Land").to_parquet(broken)
    not_parquet = tmp_path / "profiles.parquet"
    not_parquet.write_text("customer_id\nC1\n")
    for audience, expected in (
        (broken, "field 'timezone'"),
        (not_parquet, "not a Parquet file"),
        (tmp_path / "missing.parquet", "no such file"),
    ):
        result = CliRunner().invoke(
            cli, ["decide", "--audience", str(audience), "--out", str(tmp_path / "d.csv")]
        )
        assert result.exit_code == 2, result.output
        assert str(audience) in result.output and expected in result.output
        assert "Traceback" not in result.output


def test_command_reads_what_the_api_sent_from_redis(
    cli: typer.Typer, profiles: list[CustomerProfile], now: dt.datetime, tmp_path: Path
) -> None:
    """With ``--redis-url`` batch mode sees the API's action history: an action the API
    sent an hour ago is not sent again (its cool-down holds in batch too)."""
    from features.online.contact_state import RedisContactState
    from features.online.redis_store import RedisOnlineStore
    from tests.redis_servers import RedisServer, free_port, redis_server_binary

    binary = redis_server_binary()
    if binary is None:
        pytest.skip("no redis-server binary")
    audience = tmp_path / "profiles.parquet"
    profiles_frame(profiles[:80]).to_parquet(audience, index=False)
    args = ["decide", "--audience", str(audience), "--workers", "1", "--now", now.isoformat()]
    first = tmp_path / "first.parquet"
    assert CliRunner().invoke(cli, [*args, "--out", str(first)]).exit_code == 0
    sent = pd.read_parquet(first).dropna(subset=["channel"])
    assert len(sent) > 5, "the audience should get some outbound contacts"
    server = RedisServer(binary, free_port(), tmp_path / "redis").start()
    try:
        with server.client() as client:
            contacts = RedisContactState(RedisOnlineStore(client, prefix="nba"))
            for row in sent.itertuples():
                contacts.record_sent(row.customer_id, {row.action_id: now - dt.timedelta(hours=1)})
        second = tmp_path / "second.parquet"
        result = CliRunner().invoke(
            cli, [*args, "--out", str(second), "--redis-url", server.url, "--seed", "0"]
        )
        assert result.exit_code == 0, result.output
    finally:
        server.stop()
    again = pd.read_parquet(second).merge(
        sent[["customer_id", "action_id"]], on=["customer_id", "action_id"]
    )
    assert again.empty, again[["customer_id", "action_id", "channel"]]


#: Run in a fresh interpreter: what other tests left behind (MLflow's SQLAlchemy registry,
#: threads) is not counted.
_CYCLES = """
import gc, json, pickle, sys
from pathlib import Path
import nba
from nba.catalog import parse_catalog
from nba.contact_policy import parse_contact_policy
from nba.context import CustomerContext
from nba.engine import NextBestActionPolicy
from nba.pipeline import build_pipeline
profiles, now = pickle.loads(Path(sys.argv[1]).read_bytes())
examples = Path(nba.__file__).parent / "examples"
catalog = parse_catalog((examples / "retailer_catalog.yaml").read_text())
policy = parse_contact_policy((examples / "contact_policy.yaml").read_text())
pipeline = build_pipeline(catalog, policy)
engine = NextBestActionPolicy(catalog, policy, max_actions=2)
def decide_everyone():
    for profile in profiles:
        context = CustomerContext(profile, now)
        pipeline.route(context, seed="1:" + profile.customer_id)
        decision = engine.decide(context, seed=2)
        decision.explanation.chosen, decision.explanation.every_rejected
decide_everyone()
gc.collect()
gc.disable()
gc.set_debug(gc.DEBUG_SAVEALL)
decide_everyone()
found = gc.collect()
print(json.dumps([found, sorted({type(o).__qualname__ for o in gc.garbage})]))
"""


def test_a_decision_leaves_no_reference_cycle(
    profiles: list[CustomerProfile], now, tmp_path: Path
) -> None:
    """A chunk is decided with the cyclic collector paused (``paused_gc``): free only
    while every object of a decision is freed as it dies, explanation read or not. The
    customers are decided once first, so that what the first decisions leave for good
    (caches filled, and whatever older entries they push out) is not counted."""
    audience = tmp_path / "audience.pickle"
    audience.write_bytes(pickle.dumps((profiles, now)))
    root = str(Path(__file__).resolve().parents[1])
    done = subprocess.run(
        [sys.executable, "-c", _CYCLES, str(audience)],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "PYTHONPATH": root},
    )
    assert done.returncode == 0, done.stderr[-2000:]
    found, kinds = json.loads(done.stdout.strip().splitlines()[-1])
    assert found == 0, f"{found} objects in reference cycles: {kinds}"


def test_the_collector_is_paused_while_a_chunk_is_decided_then_as_it_was(
    profiles: list[CustomerProfile], catalog: Catalog, contact_policy: ContactPolicy, now
) -> None:
    engine = NextBestActionPolicy(catalog, contact_policy)
    seen: list[bool] = []

    class Watched:
        name = engine.name

        def route(self, context: CustomerContext, **kwargs: Any) -> RoutedDecision:
            seen.append(gc.isenabled())
            return engine.route(context, **kwargs)

    frame = profiles_frame(profiles[:20])
    decide_audience(frame, catalog, contact_policy, now, policy=Watched())
    assert seen == [False] * 20
    assert gc.isenabled()
    gc.disable()
    try:
        decide_audience(profiles[:5], catalog, contact_policy, now, policy=Watched())
        assert not gc.isenabled()
    finally:
        gc.enable()
