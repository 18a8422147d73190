"""A retailer's data set: the four contract tables, loaded and validated together.

``load_dataset(directory)`` reads ``customers``, ``products``, ``offers`` and
``events`` (each ``.parquet`` or ``.csv``) from one folder, validates every
file and the references between them, and refuses the whole set if anything
is wrong: a data set is never half loaded.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from features.contract import CUSTOMERS, EVENTS, OFFERS, PRODUCTS, TABLES, TableSchema
from features.validation import (
    DataContractError,
    Problem,
    check_references,
    find_table_file,
    read_table,
)

TABLE_ORDER: tuple[TableSchema, ...] = (CUSTOMERS, PRODUCTS, OFFERS, EVENTS)


@dataclass(frozen=True)
class RetailDataset:
    """The four validated tables. Timestamps are UTC; ids are text."""

    customers: pd.DataFrame
    products: pd.DataFrame
    offers: pd.DataFrame
    events: pd.DataFrame

    def table(self, name: str) -> pd.DataFrame:
        return getattr(self, name)


def load_dataset(directory: str | Path) -> RetailDataset:
    """Load and validate the data set in ``directory``.

    Raises :class:`DataContractError` with every problem in every file.
    """
    directory = Path(directory)
    if not directory.is_dir():
        raise DataContractError([Problem(str(directory), None, "is not a directory")])
    problems: list[Problem] = []
    tables: dict[str, pd.DataFrame] = {}
    checked: dict[str, pd.DataFrame] = {}  # with the bad tables' good values
    for schema in TABLE_ORDER:
        path = find_table_file(directory, schema.name)
        if path is None:
            problems.append(
                Problem(str(directory), None, f"no {schema.name}.parquet or {schema.name}.csv file")
            )
            continue
        try:
            tables[schema.name] = checked[schema.name] = read_table(path, schema)
        except DataContractError as err:
            problems.extend(err.problems)
            if err.checked is not None:
                checked[schema.name] = err.checked
    if "events" in checked:  # every problem at once: also those of a table with others
        events_file = find_table_file(directory, "events")
        keyed = {  # a table whose key column is missing or unreadable says nothing
            name: table
            for name, table in checked.items()
            if table[TABLES[name].key].notna().any() or len(table) == 0
        }
        problems.extend(
            check_references(
                checked["events"],
                keyed.get("customers"),
                keyed.get("products"),
                keyed.get("offers"),
                source=events_file.name if events_file else "events",
            )
        )
    if problems:
        raise DataContractError(problems)
    return RetailDataset(**tables)


def write_dataset(dataset: RetailDataset, directory: str | Path, fmt: str = "parquet") -> None:
    """Write the four tables to ``directory`` as Parquet (default) or CSV."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    for schema in TABLE_ORDER:
        write_table(dataset.table(schema.name), directory / f"{schema.name}.{fmt}")


def write_table(frame: pd.DataFrame, path: Path) -> None:
    """Write one table; CSV timestamps are ISO 8601 with their zone."""
    if path.suffix == ".parquet":
        frame.to_parquet(path, index=False)
    else:
        frame.to_csv(path, index=False, date_format="%Y-%m-%dT%H:%M:%S%z")
