"""The ``nba`` command line: one place that wires the packages together.

Every command reports bad input as a short message naming the file, row and
field, and exits with status 2; it never shows a traceback for a user's mistake.
"""

from __future__ import annotations

import datetime as dt
import sys
import time
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

from serving.cli_support import EXIT_UNAVAILABLE, parse_moment
from serving.cli_support import console as _console
from serving.cli_support import fail as _fail
from serving.cli_support import load_data as _load

app = typer.Typer(
    name="nba",
    help="nba: next-best-action engine for multichannel marketing.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
datasets_app = typer.Typer(help="Public data sets converted into the nba data contract.")
app.add_typer(datasets_app, name="datasets")
features_app = typer.Typer(help="Behavioural profiles: batch build, online store, read-out.")
app.add_typer(features_app, name="features")


def _register_model_commands() -> None:
    from serving import cli_models

    app.command("train")(cli_models.train)
    app.command("evaluate")(cli_models.evaluate)
    app.command("recommend")(cli_models.recommend)
    app.add_typer(cli_models.models_app, name="models")


_register_model_commands()


def _register_decision_commands() -> None:
    from serving import cli_decide

    app.command("decide")(cli_decide.decide)
    app.command("decide-examples")(cli_decide.decide_examples)


_register_decision_commands()


def _register_serving_commands() -> None:
    from serving import cli_serve

    app.command("serve")(cli_serve.serve)
    app.command("serve-key")(cli_serve.serve_key)
    app.command("api-demo")(cli_serve.api_demo)


_register_serving_commands()


def _register_experiment_commands() -> None:
    from serving import cli_experiments, cli_ope

    cli_experiments.experiments_app.command("ope")(cli_ope.ope)
    app.add_typer(cli_experiments.experiments_app, name="experiments")


_register_experiment_commands()


def _progress(console: Console) -> Progress:
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        TextColumn("{task.percentage:>3.0f}%"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=False,
    )


@app.command()
def simulate(
    out: Annotated[Path, typer.Option(help="Folder to write the four tables and truth/ to.")],
    customers: Annotated[int, typer.Option(help="Number of customers.")] = 5000,
    days: Annotated[int, typer.Option(help="Days of history to simulate.")] = 90,
    seed: Annotated[int, typer.Option(help="Random seed; the same seed gives the same data.")] = 0,
    products: Annotated[int, typer.Option(help="Number of products in the catalogue.")] = 2000,
) -> None:
    """Simulate a multichannel retailer with known ground truth."""
    import pyarrow.parquet as pq

    from experiments.simulator import SimulatorConfig
    from experiments.simulator.writer import stream_simulation

    console = _console()
    try:
        config = SimulatorConfig(n_customers=customers, days=days, seed=seed, n_products=products)
    except ValueError as exc:
        raise _fail(str(exc)) from None
    started = time.perf_counter()
    with _progress(console) as progress:
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


@app.command()
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


@app.command()
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


def _as_of(value: str | None) -> dt.datetime | None:
    return None if value is None else parse_moment(value, "--as-of")


def _redis_store(redis_url: str | None, data_dir: Path):
    from features.online.connect import connect_redis
    from features.online.redis_store import RedisOnlineStore

    try:
        client = connect_redis(redis_url, data_dir)
        client.ping()
    except Exception as exc:  # the driver raises many kinds; RedisUnavailableError among them
        raise _fail(str(exc), EXIT_UNAVAILABLE) from None
    return RedisOnlineStore(client)


RedisUrl = Annotated[
    str | None,
    typer.Option(envvar="NBA_REDIS_URL", help="Redis URL; an embedded Redis server when unset."),
]
DataDir = Annotated[
    Path, typer.Option(envvar="NBA_DATA_DIR", help="Where embedded services keep their files.")
]


@features_app.command("build")
def features_build(
    data: Annotated[Path, typer.Option(help="Folder with the four contract tables.")],
    out: Annotated[Path, typer.Option(help="Parquet file to write the profiles to.")],
    as_of: Annotated[
        str | None, typer.Option(help="Profiles as known just before this time (default: now).")
    ] = None,
) -> None:
    """Build every customer's profile in batch and write them as Parquet."""
    from features.batch import build_profiles
    from features.profile_table import profiles_frame

    when = _as_of(as_of)
    dataset = _load(data)
    console = _console()
    started = time.perf_counter()
    with _progress(console) as progress:
        task = progress.add_task("building profiles", total=1.0)
        build = build_profiles(
            dataset, as_of=when, progress=lambda d, t: progress.update(task, completed=d, total=t)
        )
    out.parent.mkdir(parents=True, exist_ok=True)
    profiles_frame(build.profiles).to_parquet(out, index=False)
    elapsed = time.perf_counter() - started
    console.print(
        f"{len(build.profiles):,} profiles as of {build.as_of.isoformat()} from "
        f"{len(dataset.events):,} events in {elapsed:.1f} s "
        f"({len(dataset.events) / max(elapsed, 1e-9):,.0f} events/s) -> {out}"
    )


@features_app.command("materialise")
def features_materialise(
    data: Annotated[Path, typer.Option(help="Folder with the four contract tables.")],
    as_of: Annotated[
        str | None, typer.Option(help="Batch cut-off (default: after the last event).")
    ] = None,
    redis_url: RedisUrl = None,
    data_dir: DataDir = Path("data"),
) -> None:
    """Build profiles in batch and load their state into Redis for online serving."""
    from features.batch import build_profiles
    from features.online.profiles import OnlineProfiles

    dataset = _load(data)
    store = _redis_store(redis_url, data_dir)
    console = _console()
    started = time.perf_counter()
    with console.status("building profiles"):
        build = build_profiles(dataset, as_of=_as_of(as_of))
    with console.status("writing to Redis"):
        n = OnlineProfiles(store, dataset.products).materialise(build)
    console.print(
        f"materialised {n:,} customers as of {build.as_of.isoformat()} into "
        f"{redis_url or 'the embedded Redis in ' + str(data_dir)} in "
        f"{time.perf_counter() - started:.1f} s"
    )


def _example_customer(profiles: Path | None) -> str:
    """A customer worth showing: the one with the most recent cart, else the most active."""
    import pandas as pd

    if profiles is None or not profiles.exists():
        raise _fail("give a CUSTOMER_ID, or --profiles FILE ('nba features build') to pick one")
    table = pd.read_parquet(profiles, columns=["customer_id", "cart_age_hours", "events_seen"])
    with_cart = table.dropna(subset=["cart_age_hours"])
    if len(with_cart):
        return str(with_cart.sort_values("cart_age_hours").iloc[0]["customer_id"])
    return str(table.sort_values("events_seen").iloc[-1]["customer_id"])


def _profiles_as_of(profiles: Path | None):
    """The time a batch profile file was built for (simulated data lives in its own time)."""
    import pandas as pd

    if profiles is None or not profiles.exists():
        return None
    return pd.read_parquet(profiles, columns=["as_of"])["as_of"].max().to_pydatetime()


@features_app.command("show")
def features_show(
    data: Annotated[Path, typer.Option(help="Folder with the products table.")],
    customer_id: Annotated[
        str | None, typer.Argument(help="The customer to show (default: one with a cart).")
    ] = None,
    profiles: Annotated[
        Path | None, typer.Option(help="Batch profiles to pick an example customer from.")
    ] = None,
    at: Annotated[
        str | None, typer.Option(help="Read the profile at this time (default: now).")
    ] = None,
    redis_url: RedisUrl = None,
    data_dir: DataDir = Path("data"),
) -> None:
    """Print one customer's online profile in readable form."""
    from features.contract import PRODUCTS
    from features.online.profiles import OnlineProfiles
    from features.validation import DataContractError, find_table_file, read_table

    path = find_table_file(data, "products")
    if path is None:
        raise _fail(f"{data}: no products.parquet or products.csv file")
    try:
        products = read_table(path, PRODUCTS)
    except DataContractError as err:
        raise _fail(str(err)) from None
    if customer_id is None:
        customer_id = _example_customer(profiles)
    store = _redis_store(redis_url, data_dir)
    when = _as_of(at) or _profiles_as_of(profiles) or dt.datetime.now(dt.UTC)
    profile = OnlineProfiles(store, products).profile(customer_id, when)
    if profile is None:
        raise _fail(f"customer {customer_id!r} is not in the online store", 1)
    from serving.render import profile_table

    _console().print(profile_table(profile))


def main() -> None:
    """Console-script entry point."""
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(130)
