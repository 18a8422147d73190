"""Bad input at the file doors a data scientist uses: every problem of a data set named
by file, row and field in one go, also when a CSV row does not split into the header's
columns (the parser used to stop at the first such line, name it by its line, not its
row, and hide every other problem of the file)."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from cli.main import app
from features.dataset import RetailDataset, load_dataset, write_dataset
from features.validation import DataContractError
from simulator import SimulatorConfig, simulate


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    sim = simulate(SimulatorConfig(n_customers=60, days=10, seed=3, n_products=40))
    root = tmp_path_factory.mktemp("csvdata")
    write_dataset(RetailDataset(sim.customers, sim.products, sim.offers, sim.events), root, "csv")
    return root


def corrupted(folder: Path, tmp_path: Path, edit: dict[int, str]) -> Path:
    """A copy of ``folder`` whose events.csv has data rows ``edit`` replaced (by number)."""
    copy = tmp_path / "data"
    copy.mkdir(parents=True)
    for table in folder.iterdir():
        copy.joinpath(table.name).write_bytes(table.read_bytes())
    lines = (folder / "events.csv").read_text().split("\n")
    for row, text in edit.items():
        lines[row] = text(lines[row]) if callable(text) else text
    (copy / "events.csv").write_text("\n".join(lines))
    return copy


def test_every_problem_of_a_csv_with_a_malformed_row_is_named_at_its_row(
    folder: Path, tmp_path: Path
) -> None:
    rows = (folder / "events.csv").read_text().count("\n") - 1
    assert rows > 400
    middle, later, last = rows // 3, rows // 2, 2 * rows // 3
    data = corrupted(
        folder,
        tmp_path,
        {
            middle: lambda line: line + ",an extra,value",  # more values than columns
            later: lambda line: line.replace(",", ",fax-", 3).replace("fax-", "", 2),
            last: lambda line: line.replace(line.split(",")[1], "C-nobody", 1),
        },
    )
    with pytest.raises(DataContractError) as caught:
        load_dataset(data)
    said = {str(p) for p in caught.value.problems}
    assert any(
        s.startswith(f"events.csv: row {middle}: more values than the header's 11 columns")
        for s in said
    ), said
    # the rows after the malformed one keep their own numbers, in the checks of one table
    assert any(s.startswith(f"events.csv: row {later}, field 'channel'") for s in said), said
    # and in the checks across tables
    assert any(
        s.startswith(f"events.csv: row {last}, field 'customer_id': unknown customer") for s in said
    ), said
    assert not any("line" in s or "tokeniz" in s for s in said), said


def test_a_quote_never_closed_is_named_at_the_row_it_opens(folder: Path, tmp_path: Path) -> None:
    data = corrupted(folder, tmp_path, {120: lambda line: '"' + line})
    result = CliRunner().invoke(app, ["validate", str(data)])
    assert result.exit_code == 2, result.output
    text = " ".join(result.output.split())
    assert "events.csv: row 120: a quoted value opened in this row is not closed" in text, text
    assert "Traceback" not in result.output


def test_a_short_row_reads_as_missing_values_either_way(folder: Path, tmp_path: Path) -> None:
    """A row with fewer values than columns is a row with missing values, whether or not
    another row of the file is malformed (the two readers agree)."""
    short = {50: lambda line: ",".join(line.split(",")[:3])}
    alone = corrupted(folder, tmp_path / "a", short)
    with pytest.raises(DataContractError) as first:
        load_dataset(alone)
    both = corrupted(folder, tmp_path / "b", {**short, 300: lambda line: line + ",x"})
    with pytest.raises(DataContractError) as second:
        load_dataset(both)
    assert {str(p) for p in first.value.problems} < {str(p) for p in second.value.problems}
    assert any("row 50, field 'event_type'" in str(p) for p in first.value.problems)


@pytest.mark.parametrize("table", ["products", "offers"])
def test_the_tables_nba_decide_reads_name_a_malformed_row(
    folder: Path, tmp_path: Path, table: str
) -> None:
    """``--products`` and ``--offers`` (and the API's NBA_PRODUCTS_PATH and
    NBA_OFFERS_PATH, read by the same code) go through the contract reader: a row with a
    value too many is named by its row, not a traceback (products) or the parser's line
    (offers)."""
    from features.batch import build_profiles
    from features.profile_table import profiles_frame

    data = load_dataset(folder)
    audience = tmp_path / "audience.parquet"
    profiles_frame(build_profiles(data, workers=1).profiles[:20]).to_parquet(audience)
    lines = (folder / f"{table}.csv").read_text().split("\n")
    lines[7] += ",one,too many"
    bad = tmp_path / f"{table}.csv"
    bad.write_text("\n".join(lines))
    result = CliRunner().invoke(
        app,
        [
            "decide",
            "--audience",
            str(audience),
            "--out",
            str(tmp_path / "d.parquet"),
            f"--{table}",
            str(bad),
        ],
    )
    assert result.exit_code == 2, result.output
    text = " ".join(result.output.split())
    assert f"--{table}: {bad}" in text and f"{bad}: row 7: more values than the header's" in text, (
        text
    )
    assert "Traceback" not in result.output and "tokenizing" not in text
