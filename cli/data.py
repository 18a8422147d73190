"""``nba simulate``, ``nba validate``, ``nba contract`` and ``nba datasets``: data in."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from cli.support import EXIT_UNAVAILABLE, progress_bar
from cli.support import console as _console
from cli.support import fail as _fail
from cli.support import load_data as _load

datasets_app = typer.Typer(help="Public data sets converted into the nba data contract.")


def simulate(
    out: Annotated[Path, typer.Option(help="Folder to write the four tables and truth/ to.")],
    customers: Annotated[int, typer.Option(help="Number of customers.")] = 5000,
    days: Annotated[int, typer.Option(help="Days of history to simulate.")] = 90,
    seed: Annotated[int, typer.Option(help="Random seed; the same seed gives the same data.")] = 0,
    products: Annotated[int, typer.Option(help="Number of products in the catalogue.")] = 2000,
) -> None:
    """Simulate a multichannel retailer with known ground truth."""
    import pyarrow.parquet as pq

    from simulator import SimulatorConfig
    from simulator.writer import stream_simulation

    console = _console()
    try:
        config = SimulatorConfig(n_customers=customers, days=days, seed=seed, n_products=products)
    except ValueError as exc:
        raise _fail(str(exc)) from None
    started = time.perf_counter()
    with progress_bar(console) as progress:
        task = progress.add_task("simulating customers", total=customers)

        def report(done: float, total: float) -> None:
            progress.update(task, completed=done, total=total)

        stream_simulation(config, out, progress=report)
    elapsed = time.perf_counter() - started
    counts = {
        name: pq.ParquetFile(out / f"{name}.parquet").metadata.num_rows
        for name in ("customers", "products", "offers", "events")
    }
    console.print(
        f"wrote {counts['customers']:,} customers, {counts['products']:,} products, "
        f"{counts['offers']:,} offers and {counts['events']:,} events to {out} "
        f"in {elapsed:.1f} s (hidden ground truth in {out / 'truth'})"
    )


def validate(
    data: Annotated[Path, typer.Argument(help="Folder with customers, products, offers, events.")],
) -> None:
    """Validate a data set against the contract and print its summary."""
    from features.summary import summarise

    started = time.perf_counter()
    dataset = _load(data)
    summary = summarise(dataset)
    console = _console()
    console.print(f"[green]valid[/]: {data} ({time.perf_counter() - started:.1f} s)")
    overview = Table(title="data set", show_header=False)
    for label, value in (
        ("customers", f"{summary.customers:,}"),
        ("products", f"{summary.products:,}"),
        ("offers", f"{summary.offers:,}"),
        ("events", f"{summary.events:,}"),
        ("from", str(summary.first_event)),
        ("to", str(summary.last_event)),
        ("purchases", f"{summary.purchases:,} by {summary.purchasing_customers:,} customers"),
        ("revenue", f"{summary.revenue:,.2f}"),
    ):
        overview.add_row(label, value)
    console.print(overview)
    consent = Table(title="consent (share opted in)")
    for ch in summary.consent_rates:
        consent.add_column(ch, justify="right")
    consent.add_row(*(f"{r:.1%}" for r in summary.consent_rates.values()))
    console.print(consent)
    for title, counts in (
        ("events by channel", summary.events_by_channel),
        ("events by type", summary.events_by_type),
    ):
        table = Table(title=title)
        table.add_column("value")
        table.add_column("events", justify="right")
        table.add_column("share", justify="right")
        for key, n in counts.items():
            table.add_row(key, f"{n:,}", f"{n / max(summary.events, 1):.1%}")
        console.print(table)


def contract(
    table: Annotated[str | None, typer.Argument(help="One table; all when omitted.")] = None,
) -> None:
    """Print the data contract as Markdown tables (the README's tables come from here)."""
    from features.contract import TABLES
    from features.docs import contract_markdown

    if table is not None and table not in TABLES:
        raise _fail(f"unknown table {table!r} (expected one of: {', '.join(TABLES)})")
    typer.echo(contract_markdown([table] if table else list(TABLES)))


@datasets_app.command("movielens-100k")
def movielens_100k(
    out: Annotated[Path, typer.Option(help="Folder to write the converted tables to.")],
    cache: Annotated[
        Path | None,
        typer.Option(
            help="Where the recbole wheel is kept [default: $NBA_CACHE_DIR or ~/.cache/nba]."
        ),
    ] = None,
    fmt: Annotated[str, typer.Option("--format", help="parquet or csv.")] = "parquet",
) -> None:
    """Convert MovieLens-100k (carried by the recbole wheel on PyPI) into the data contract."""
    from features.dataset import write_dataset
    from features.datasets.movielens import (
        DatasetUnavailableError,
        default_cache_dir,
        fetch_wheel,
        load_movielens_100k,
    )

    if fmt not in ("parquet", "csv"):
        raise _fail(f"--format must be parquet or csv, not {fmt!r}")
    console = _console()
    try:
        with console.status("fetching the recbole wheel"):
            wheel = fetch_wheel(cache or default_cache_dir())
        with console.status("converting MovieLens-100k"):
            dataset = load_movielens_100k(wheel)
    except DatasetUnavailableError as exc:
        raise _fail(str(exc), EXIT_UNAVAILABLE) from None
    write_dataset(dataset, out, fmt=fmt)
    console.print(
        f"wrote {len(dataset.customers):,} customers, {len(dataset.products):,} products and "
        f"{len(dataset.events):,} rating events to {out}"
    )
