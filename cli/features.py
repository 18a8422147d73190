"""``nba features``: batch build, online store, read-out."""

from __future__ import annotations

import datetime as dt
import time
from pathlib import Path
from typing import Annotated

import typer

from cli.decide import ContactPolicyOption, load_contact_policy
from cli.support import EXIT_UNAVAILABLE, parse_moment, progress_bar
from cli.support import console as _console
from cli.support import fail as _fail
from cli.support import load_data as _load

features_app = typer.Typer(help="Behavioural profiles: batch build, online store, read-out.")


def _as_of(value: str | None) -> dt.datetime | None:
    return None if value is None else parse_moment(value, "--as-of")


def _redis_store(redis_url: str | None, data_dir: Path, prefix: str = "nba"):
    from features.online.connect import connect_redis
    from features.online.redis_store import RedisOnlineStore

    try:
        client = connect_redis(redis_url, data_dir)
        client.ping()
    except Exception as exc:  # the driver raises many kinds; RedisUnavailableError among them
        raise _fail(str(exc), EXIT_UNAVAILABLE) from None
    return RedisOnlineStore(client, prefix=prefix)


RedisUrl = Annotated[
    str | None,
    typer.Option(envvar="NBA_REDIS_URL", help="Redis URL; an embedded Redis server when unset."),
]
DataDir = Annotated[
    Path, typer.Option(envvar="NBA_DATA_DIR", help="Where embedded services keep their files.")
]
RedisPrefix = Annotated[
    str,
    typer.Option(
        envvar="NBA_REDIS_PREFIX", help="The API's Redis key prefix (its NBA_REDIS_PREFIX)."
    ),
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
    with progress_bar(console) as progress:
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
    redis_prefix: RedisPrefix = "nba",
) -> None:
    """Build profiles in batch and load their state into Redis for online serving (with
    the seasonal verdicts of the cut-off's day: run `nba features verdicts` each day)."""
    from features.batch import build_profiles
    from features.online.profiles import OnlineProfiles

    dataset = _load(data)
    store = _redis_store(redis_url, data_dir, redis_prefix)
    console = _console()
    started = time.perf_counter()
    with console.status("building profiles"):
        build = build_profiles(dataset, as_of=_as_of(as_of))
    with console.status("writing to Redis"):
        n = OnlineProfiles(store, dataset.products).materialise(build, season_verdicts=True)
    console.print(
        f"materialised {n:,} customers as of {build.as_of.isoformat()} into "
        f"{redis_url or 'the embedded Redis in ' + str(data_dir)} in "
        f"{time.perf_counter() - started:.1f} s"
    )


@features_app.command("verdicts")
def features_verdicts(
    day: Annotated[
        str | None, typer.Option(help="The UTC day (YYYY-MM-DD) to compute (default: today).")
    ] = None,
    redis_url: RedisUrl = None,
    data_dir: DataDir = Path("data"),
    redis_prefix: RedisPrefix = "nba",
) -> None:
    """Store every customer's seasonal verdict for a day (run daily, after midnight UTC):
    decisions of that day read it instead of running the seasonal test."""
    from features.online.profiles import write_season_verdicts

    try:
        date = dt.datetime.now(dt.UTC).date() if day is None else dt.date.fromisoformat(day)
    except ValueError:
        raise _fail(f"--day: not a day: {day!r} (e.g. 2026-03-06)") from None
    when = dt.datetime.combine(date, dt.time(), dt.UTC)
    store = _redis_store(redis_url, data_dir, redis_prefix)
    started = time.perf_counter()
    with _console().status("seasonal verdicts"):
        n = write_season_verdicts(store, store.read_priors(), when)
    _console().print(
        f"{n:,} seasonal verdicts for {when.date().isoformat()} (UTC) in "
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
    redis_prefix: RedisPrefix = "nba",
    contact_policy: ContactPolicyOption = None,
) -> None:
    """Print one customer's online profile in readable form; a customer whose time zone
    nothing gave lives in the contact policy's, as the API serves them."""
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
    store = _redis_store(redis_url, data_dir, redis_prefix)
    when = _as_of(at) or _profiles_as_of(profiles) or dt.datetime.now(dt.UTC)
    zone = load_contact_policy(contact_policy).timezone
    profile = OnlineProfiles(store, products, default_timezone=zone).profile(customer_id, when)
    if profile is None:
        raise _fail(f"customer {customer_id!r} is not in the online store", 1)
    from cli.render import profile_table

    _console().print(profile_table(profile))
