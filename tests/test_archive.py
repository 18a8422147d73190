"""The event archive: durable appends, torn lines, compaction beside live writers, export."""

from __future__ import annotations

import datetime as dt
import logging
from pathlib import Path

import pandas as pd
import pytest

from features.archive import EventArchive, compact, export_dataset, read_archive
from features.contract import EventRecord
from features.dataset import RetailDataset, load_dataset, write_dataset
from features.jsonl_segments import segment_paths

T0 = dt.datetime(2026, 3, 6, 9, tzinfo=dt.UTC)


def record(i: int, customer: str = "C1", *, hours: float = 0.0) -> EventRecord:
    return EventRecord(
        event_id=f"a-{i}",
        customer_id=customer,
        timestamp=T0 + dt.timedelta(hours=hours or i),
        channel="web",
        event_type="product_view" if i % 2 else "add_to_cart",
        product_id="P1",
        properties={"page": f"/p/{i}"} if i % 3 == 0 else None,
    )


def test_appended_events_read_back_in_the_contract(tmp_path: Path) -> None:
    with EventArchive(tmp_path) as archive:
        archive.append([record(0), record(1)])
        archive.append([record(2), record(1)])  # a replayed event is archived once
    events = read_archive(tmp_path)
    assert list(events["event_id"]) == ["a-0", "a-1", "a-2"]
    assert str(events["timestamp"].dt.tz) == "UTC"
    assert events.loc[0, "properties"] == '{"page": "/p/0"}'
    assert list(events["event_type"]) == ["add_to_cart", "product_view", "add_to_cart"]


def test_a_torn_line_is_skipped_with_a_warning_and_the_rest_kept(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with EventArchive(tmp_path) as archive:
        archive.append([record(0), record(1)])
    [segment] = segment_paths(tmp_path / "segments", "events")
    with segment.open("ab") as out:
        out.write(b'{"event_id": "a-9", "customer_id": "C')  # the crash cut this line
    with EventArchive(tmp_path) as archive:  # a restarted writer starts a new segment
        archive.append([record(3)])
    with caplog.at_level(logging.WARNING, logger="nba.archive"):
        events = read_archive(tmp_path)
    assert list(events["event_id"]) == ["a-0", "a-1", "a-3"]
    assert "torn" in caplog.text


def test_compaction_writes_days_and_never_loses_what_writers_add_meanwhile(
    tmp_path: Path,
) -> None:
    writer = EventArchive(tmp_path, fsync="never")
    writer.append([record(i, hours=24 * (i % 3) + 1) for i in range(6)])
    first = compact(tmp_path)
    assert (first.events, first.days) == (6, 3)
    writer.append([record(6, hours=2), record(7, hours=80)])  # the writer goes on
    assert len(read_archive(tmp_path)) == 8  # parts + what the segments hold beyond them
    second = compact(tmp_path)
    assert second.events == 2 and compact(tmp_path).events == 0
    writer.close()
    days = sorted(p.name for p in (tmp_path / "events").iterdir())
    assert days == ["day=2026-03-06", "day=2026-03-07", "day=2026-03-08", "day=2026-03-09"]
    assert sorted(read_archive(tmp_path)["event_id"]) == sorted(f"a-{i}" for i in range(8))


def test_export_is_a_contract_data_set_with_the_prospects_as_customers(
    tmp_path: Path, base: RetailDataset
) -> None:
    write_dataset(base, tmp_path / "base")
    known = str(base.customers["customer_id"].iloc[0])
    with EventArchive(tmp_path / "archive") as archive:
        archive.append([record(0, known), record(1, "prospect-7")])
    exported = export_dataset(tmp_path / "archive", tmp_path / "base", tmp_path / "out")
    again = load_dataset(tmp_path / "out")
    assert len(again.events) == len(base.events) + 2
    prospect = again.customers.set_index("customer_id").loc["prospect-7"]
    assert prospect["timezone"] == "UTC" and not prospect["consent_email"]
    assert len(exported.customers) == len(base.customers) + 1
    pd.testing.assert_frame_equal(again.products, base.products)
    # a retailer's zone, as the API served them (audit8: a customer of no zone is not UTC's)
    paris = export_dataset(
        tmp_path / "archive", tmp_path / "base", tmp_path / "paris", "Europe/Paris"
    )
    assert paris.customers.set_index("customer_id").loc["prospect-7", "timezone"] == (
        "Europe/Paris"
    )


def test_the_cli_compacts_and_exports(tmp_path: Path, base: RetailDataset) -> None:
    from typer.testing import CliRunner

    from cli.main import app

    write_dataset(base, tmp_path / "base")
    with EventArchive(tmp_path / "archive") as archive:
        archive.append([record(0, str(base.customers["customer_id"].iloc[0]))])
    runner = CliRunner()
    done = runner.invoke(app, ["archive", "compact", str(tmp_path / "archive")])
    assert done.exit_code == 0 and "compacted 1 events into 1 day(s)" in done.output
    out = tmp_path / "retrain"
    args = ["archive", "export", "--archive", str(tmp_path / "archive")]
    exported = runner.invoke(app, [*args, "--base", str(tmp_path / "base"), "--out", str(out)])
    assert exported.exit_code == 0, exported.output
    assert len(load_dataset(out).events) == len(base.events) + 1
    missing = runner.invoke(app, ["archive", "compact", str(tmp_path / "nowhere")])
    assert missing.exit_code == 2 and "no such archive folder" in missing.output


def test_retrain_trains_on_the_base_and_the_archived_events(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from cli.main import app
    from simulator import SimulatorConfig, simulate
    from training.api import RECOMMENDER_NAME
    from training.registry import ModelRegistry

    sim = simulate(SimulatorConfig(n_customers=150, days=21, seed=4, n_products=120))
    write_dataset(
        RetailDataset(sim.customers, sim.products, sim.offers, sim.events), tmp_path / "base"
    )
    customer = str(sim.customers["customer_id"].iloc[0])
    product = str(sim.products["product_id"].iloc[0])
    last = pd.Timestamp(sim.events["timestamp"].max()).to_pydatetime()
    with EventArchive(tmp_path / "archive") as archive:
        archive.append(
            [
                EventRecord(
                    event_id=f"api-{i}",
                    customer_id=customer,
                    timestamp=last + dt.timedelta(minutes=i + 1),
                    channel="web",
                    event_type="product_view",
                    product_id=product,
                )
                for i in range(3)
            ]
        )
    args = ["retrain", "--archive", str(tmp_path / "archive"), "--base", str(tmp_path / "base")]
    args += ["--work", str(tmp_path / "work"), "--data-dir", str(tmp_path / "store")]
    result = CliRunner().invoke(app, [*args, "--target", "recommender", "--promote"])
    assert result.exit_code == 0, result.output
    [exported] = (tmp_path / "work").iterdir()
    assert len(load_dataset(exported).events) == len(sim.events) + 3
    registry = ModelRegistry.local(tmp_path / "store")
    assert registry.champion(RECOMMENDER_NAME) is not None
