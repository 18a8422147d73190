"""The simulated retailer's offers table holds the example catalog's offers, as a
retailer's own table would: the demo's ``nba decide``, ``nba decide-examples`` and API
merge it with the catalog without a warning, and what the table says (a cost, a budget)
is what they decide with. The simulator's truth for those offers is the table's row.
"""

from __future__ import annotations

import logging
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from cli.main import app
from features.contract import OfferKind
from nba.offer_table import apply_offer_table
from serving.startup import load_offer_table
from simulator.config import RETAILER_JOURNEY_OFFERS
from tests.test_scenarios import retailer

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo's first two steps at a small size: simulate, build profiles."""
    root = tmp_path_factory.mktemp("demo")
    runner = CliRunner()
    for args in (
        ["simulate", "--customers", "1000", "--days", "60", "--seed", "7"],
        ["features", "build", "--data", str(root / "retailer")],
    ):
        out = ["--out", str(root / "retailer")] if args[0] == "simulate" else []
        if args[0] == "features":
            out = ["--out", str(root / "profiles.parquet")]
        result = runner.invoke(app, [*args, *out])
        assert result.exit_code == 0, result.output
    return root


def _decide(root: Path, out: Path, *extra: str) -> pd.DataFrame:
    args = ["decide", "--audience", str(root / "profiles.parquet"), "--out", str(out)]
    result = CliRunner().invoke(app, [*args, "--workers", "1", *extra])
    assert result.exit_code == 0, result.output
    return pd.read_parquet(out)


def _table_with(root: Path, path: Path, offer_id: str, **terms: object) -> Path:
    table = pd.read_parquet(root / "retailer" / "offers.parquet")
    for column, value in terms.items():
        table.loc[table["offer_id"] == offer_id, column] = value
    table.to_parquet(path, index=False)
    return path


def test_the_retailer_offers_are_the_example_catalogs_on_the_same_terms() -> None:
    """Every offer of the example catalog is one of the simulated retailer's journey
    offers with the same kind, cost and daily budget, on every channel of its actions;
    free shipping's value is the fee its cost gives up (the catalog writes 0)."""
    journey = {o.id: o for o in RETAILER_JOURNEY_OFFERS}
    for action in retailer():
        offer = action.offer
        if offer is None:
            continue
        mine = journey[offer.id]
        assert (mine.kind.value, mine.cost, mine.daily_budget) == (
            offer.kind.value,
            offer.cost,
            offer.daily_budget,
        ), offer.id
        expected = offer.cost if mine.kind is OfferKind.FREE_SHIPPING else offer.value
        assert mine.value == expected, offer.id
        assert set(action.channels) <= set(mine.channels), action.id


def test_the_demos_decisions_merge_the_simulated_table_without_a_warning(
    data_dir: Path,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The demo's ``nba decide`` (the table found through NBA_DATA_DIR, as `make demo`
    runs it) and ``nba decide-examples`` log no offers-table warning, and the merge
    leaves every offered action a channel; the table's rows for the catalog's offers are
    the truth's rows (the same ids in truth/offers.parquet)."""
    merge = apply_offer_table(
        retailer(), load_offer_table(data_dir / "retailer" / "offers.parquet")
    )
    assert merge.warnings() == [] and merge.unlisted == () and merge.silenced == ()
    truth = pd.read_parquet(data_dir / "retailer" / "truth" / "offers.parquet")
    catalog_offers = {a.offer.id for a in retailer() if a.offer is not None}
    assert catalog_offers <= set(truth["offer_id"])
    monkeypatch.setenv("NBA_DATA_DIR", str(data_dir))
    with caplog.at_level(logging.WARNING):
        decisions = _decide(data_dir, tmp_path / "decisions.parquet")
        result = CliRunner().invoke(app, ["decide-examples", "--data", str(data_dir / "retailer")])
    assert result.exit_code == 0, result.output
    assert not [r for r in caplog.records if "offers table" in r.getMessage()], caplog.text
    assert "offers table" not in result.output
    assert set(decisions["offer_id"].dropna()) <= catalog_offers
    assert decisions["offer_id"].notna().any()


def test_a_budget_in_the_simulated_table_changes_the_demos_decisions(
    data_dir: Path, tmp_path: Path
) -> None:
    """The demo gives birthday points to the customers in their birthday week; the
    retailer's table, with the points' daily budget set to 0, stops them: the same run
    gives none, and those customers get another action."""
    plain = _decide(
        data_dir,
        tmp_path / "plain.parquet",
        "--offers",
        str(data_dir / "retailer" / "offers.parquet"),
    )
    birthdays = set(plain.loc[plain["offer_id"] == "birthday_points", "customer_id"])
    assert birthdays
    spent = _table_with(data_dir, tmp_path / "offers.parquet", "birthday_points", daily_budget=0)
    capped = _decide(data_dir, tmp_path / "capped.parquet", "--offers", str(spent))
    assert "birthday_points" not in set(capped["offer_id"].dropna())
    again = capped[capped["customer_id"].isin(birthdays) & (capped["rank"] == 0)]
    assert len(again) == len(birthdays) and "birthday" not in set(again["action_id"])


def test_decide_examples_reads_the_offers_table(data_dir: Path, tmp_path: Path) -> None:
    """``nba decide-examples`` merges the data folder's offers table (or --offers) as
    ``nba decide`` does: the birthday example's points are valued at the table's cost,
    and not at the catalog's."""
    runner = CliRunner()
    data = str(data_dir / "retailer")
    shown = runner.invoke(app, ["decide-examples", "--data", data])
    assert shown.exit_code == 0, shown.output
    assert "offer cost 2.5 per redemption" in shown.output
    dearer = _table_with(data_dir, tmp_path / "offers.parquet", "birthday_points", cost=2.75)
    priced = runner.invoke(app, ["decide-examples", "--data", data, "--offers", str(dearer)])
    assert priced.exit_code == 0, priced.output
    assert "offer cost 2.75 per redemption" in priced.output
    assert "offer cost 2.5 per redemption" not in priced.output
