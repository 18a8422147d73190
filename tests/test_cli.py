"""The command line: real commands on real files; bad input gives a message and status 2."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from cli.main import app
from cli.support import EXIT_BAD_INPUT
from tests.conftest import EVENTS_CSV, WriteDataset

runner = CliRunner()


def test_validate_prints_a_summary(write_dataset: WriteDataset) -> None:
    result = runner.invoke(app, ["validate", str(write_dataset())])
    assert result.exit_code == 0, result.output
    assert "valid" in result.output
    assert "purchases" in result.output and "1 by 1 customers" in result.output


def test_validate_reports_problems_without_a_traceback(write_dataset: WriteDataset) -> None:
    folder = write_dataset(events=EVENTS_CSV.replace("web,product_view", "fax,product_view"))
    result = runner.invoke(app, ["validate", str(folder)])
    assert result.exit_code == EXIT_BAD_INPUT
    assert "events.csv: row 1, field 'channel': unknown channel 'fax'" in result.output
    assert "nothing was loaded" in result.output
    assert "Traceback" not in result.output


def test_simulate_then_build_profiles(tmp_path: Path) -> None:
    out = tmp_path / "shop"
    result = runner.invoke(
        app, ["simulate", "--customers", "150", "--days", "14", "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    assert "wrote 150 customers" in result.output
    assert (out / "truth" / "customers.parquet").exists()
    profiles = tmp_path / "profiles.parquet"
    result = runner.invoke(app, ["features", "build", "--data", str(out), "--out", str(profiles)])
    assert result.exit_code == 0, result.output
    table = pd.read_parquet(profiles)
    assert len(table) == 150
    assert table["customer_id"].is_unique


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["simulate", "--customers", "0", "--out", "x"], "n_customers"),
        (["features", "build", "--data", "nowhere", "--out", "p.parquet"], "is not a directory"),
        (["contract", "orders"], "unknown table 'orders'"),
    ],
)
def test_bad_arguments_are_explained(args: list[str], message: str, tmp_path: Path) -> None:
    result = runner.invoke(app, [a.replace("nowhere", str(tmp_path / "nowhere")) for a in args])
    assert result.exit_code == EXIT_BAD_INPUT, result.output
    assert message in result.output
    assert "Traceback" not in result.output


def test_as_of_without_a_zone_is_refused(write_dataset: WriteDataset, tmp_path: Path) -> None:
    result = runner.invoke(
        app,
        [
            "features",
            "build",
            "--data",
            str(write_dataset()),
            "--out",
            str(tmp_path / "p.parquet"),
            "--as-of",
            "2026-03-07",
        ],
    )
    assert result.exit_code == EXIT_BAD_INPUT
    assert "has no time zone" in result.output


def test_serve_key_prints_whole_lines_when_piped() -> None:
    """The key and the NBA_API_KEYS line are copied from a pipe: never wrapped at 80 columns."""
    import json
    import re

    from serving.auth import ApiKeys
    from serving.settings import ApiKeySpec

    result = runner.invoke(app, ["serve-key", "journeys", "--scopes", "decide,profiles"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    [key_line] = [line for line in lines if line.startswith("key (shown once): ")]
    [config_line] = [line for line in lines if line.startswith("NBA_API_KEYS=")]
    assert re.fullmatch(r"NBA_API_KEYS='\[.*\]'", config_line)
    [spec] = [ApiKeySpec(**s) for s in json.loads(config_line.split("=", 1)[1].strip("'"))]
    key = key_line.removeprefix("key (shown once): ")
    assert ApiKeys([spec]).check(key, "profiles").name == "journeys"  # the printed pair works
