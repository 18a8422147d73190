"""``nba decide --history`` on Spark (local mode) gives the decisions of one machine:
the history, the contacts counted from the audience's earliest ``as_of`` and today's
usage travel with the job to every task."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd
import pytest
import typer
from typer.testing import CliRunner

from cli.decide import decide
from tests.test_batch_spark import CONFIG, audience, data  # noqa: F401  (fixtures)
from tests.test_spark import spark  # noqa: F401  (the local session fixture)

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

pytestmark = [
    pytest.mark.integration,
    pytest.mark.filterwarnings("ignore:PySpark does not yet fully support pandas:FutureWarning"),
    pytest.mark.filterwarnings("ignore:The copy keyword is deprecated"),
]


def test_spark_with_a_history_file_decides_as_one_machine(
    spark: SparkSession,  # noqa: F811
    audience: Path,  # noqa: F811
    tmp_path: Path,
) -> None:
    app = typer.Typer()
    app.command("decide")(decide)
    app.command("unused")(lambda: None)
    cut = CONFIG.start + dt.timedelta(days=30, hours=-15)  # the audience's as_of
    args = ["decide", "--audience", str(audience), "--seed", "3", "--workers", "1"]
    yesterday = tmp_path / "yesterday.parquet"
    result = CliRunner().invoke(app, [*args, "--out", str(yesterday)])
    assert result.exit_code == 0, result.output
    later = ["--now", (cut + dt.timedelta(hours=10)).isoformat()]
    outs = {}
    for name, extra in {
        "here": ["--history", str(yesterday)],
        "there": ["--history", str(yesterday), "--spark"],
        "without": [],
    }.items():
        outs[name] = tmp_path / (name if name == "there" else f"{name}.parquet")
        result = CliRunner().invoke(app, [*args, *later, *extra, "--out", str(outs[name])])
        assert result.exit_code == 0, result.output
    key = ["customer_id", "rank"]
    shown = ["customer_id", "action_id", "channel", "offer_id", "decision_id", "products"]

    def rows(path: Path) -> pd.DataFrame:
        table = pd.read_parquet(path).sort_values(key, ignore_index=True)
        table = table[shown].assign(products=lambda t: t["products"].map(list))
        return table.astype(object).where(table.notna(), None)

    here, there = rows(outs["here"]), rows(outs["there"])
    pd.testing.assert_frame_equal(there, here)
    # and the folder a Spark run writes is a history as the file of one machine is
    folder, again = tmp_path / "yesterday_on_spark", tmp_path / "again.parquet"
    result = CliRunner().invoke(app, [*args, "--spark", "--out", str(folder)])
    assert result.exit_code == 0, result.output
    result = CliRunner().invoke(app, [*args, *later, "--history", str(folder), "--out", str(again)])
    assert result.exit_code == 0, result.output
    pd.testing.assert_frame_equal(rows(again), here)
    sent = pd.read_parquet(yesterday).dropna(subset=["channel"])[["customer_id", "action_id"]]
    assert not rows(outs["without"]).dropna(subset=["channel"]).merge(sent).empty
    assert here.dropna(subset=["channel"]).merge(sent).empty
