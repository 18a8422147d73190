"""``nba decide``: decisions for a whole audience, written to a file.

The decisions are the API's: the same pipeline (:func:`nba.pipeline.build_pipeline`)
with the registry's champion models, loaded as the API loads them
(:func:`serving.models.champion_models`), rule-based scores when there are none;
each row's products are the API's (:func:`serving.products.products_for`: the
champion recommender's, else the API's popularity list).

The command function is registered on the ``nba`` application by
:mod:`cli.main`. Bad input (a catalog, contact policy or audience file that
does not validate, an unknown option value) is reported as a short message
naming the file and the field, with exit status 2 and no traceback.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, TypeVar

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from cli.support import EXIT_UNAVAILABLE, api_response_stats, load_data, parse_moment
from cli.support import fail as _fail

if TYPE_CHECKING:
    import pandas as pd
    from pyspark.sql import DataFrame as SparkDataFrame
    from pyspark.sql import SparkSession

    from features.online.stock import StockLevels
    from nba.budgets import UsageCounts
    from nba.catalog import Catalog
    from nba.contact_policy import ContactPolicy
    from nba.experiment import ExperimentConfig
    from nba.scoring import Scorer
    from serving.batch_decisions import BatchJob
    from serving.models import ModelSet

EXAMPLES = Path(__file__).resolve().parents[1] / "nba" / "examples"
ConfigT = TypeVar("ConfigT")
CatalogOption = Annotated[
    Path | None,
    typer.Option(help="Action catalog YAML [default: the example retailer's catalog]."),
]
ContactPolicyOption = Annotated[
    Path | None,
    typer.Option(help="Contact policy YAML [default: the example retailer's policy]."),
]
POLICIES = ("nba", "rules", "random")


def load_catalog(path: Path | None) -> Catalog:
    """The catalog in ``path`` (the example retailer's when ``None``), or exit 2."""
    from nba.catalog import parse_catalog

    return _read_config(path or EXAMPLES / "retailer_catalog.yaml", parse_catalog, "action catalog")


def with_offers_table(catalog: Catalog, path: Path | None) -> Catalog:
    """``catalog`` with the offers table at ``path`` (else the API's, when it has one)
    applied, or exit 2 naming the file, row and field."""
    from serving.settings import Settings
    from serving.startup import StartupError, with_offer_table

    try:
        return with_offer_table(catalog, path or Settings().offers_file, "--offers")
    except StartupError as error:
        raise _fail(str(error)) from None


def load_experiment(path: Path | None) -> ExperimentConfig | None:
    """The experiment at ``path``, else the API's (``NBA_EXPERIMENT_PATH``, else
    ``<NBA_DATA_DIR>/experiment.yaml`` when it exists), ``None`` without one; or exit 2
    naming the file and the field. A batch list then routes each customer to their arm as
    the API does: the global control group receives nothing, whichever door it is asked by."""
    from serving.settings import Settings
    from serving.startup import StartupError, load_experiment_setting

    try:
        return load_experiment_setting(path or Settings().experiment_file, "--experiment")
    except StartupError as error:
        raise _fail(str(error)) from None


def load_contact_policy(path: Path | None) -> ContactPolicy:
    """The contact policy in ``path`` (the example retailer's when ``None``), or exit 2."""
    from nba.contact_policy import parse_contact_policy

    return _read_config(
        path or EXAMPLES / "contact_policy.yaml", parse_contact_policy, "contact policy"
    )


def _read_config(path: Path, parse: Callable[[str], ConfigT], what: str) -> ConfigT:
    from serving.startup import StartupError, read_config

    try:
        return read_config(path, parse, what)
    except StartupError as error:
        raise _fail(str(error)) from None


def load_audience(path: Path) -> pd.DataFrame:
    """The profiles frame in the Parquet file ``path``, or exit 2."""
    import pandas as pd
    import pyarrow as pa

    if not path.is_file():
        raise _fail(f"{path}: no such file (write one with 'nba features build')")
    try:
        return pd.read_parquet(path)
    except (OSError, ValueError, pa.ArrowException) as error:
        raise _fail(f"{path}: not a Parquet file of profiles ({error})") from None


def load_scorer(tracking_uri: str | None) -> tuple[Scorer | None, str]:
    """The scorer of the registry's champions, as the API builds it, and the models'
    label (``rules`` without any); see :func:`load_models`."""
    models = load_models(tracking_uri)
    return models.scorer, models.label


def load_models(tracking_uri: str | None) -> ModelSet:
    """The registry's champions as the API loads them (the scorer built from them, the
    recommender), empty without a registry. The registry is ``tracking_uri``, else the
    API's (``NBA_MLFLOW_TRACKING_URI``, ``MLFLOW_TRACKING_URI``, or
    ``<NBA_DATA_DIR>/mlflow.db`` when that file exists)."""
    from serving.models import ModelSet, champion_models
    from serving.settings import Settings
    from serving.startup import open_registry

    settings = Settings()
    uri = tracking_uri or settings.mlflow_tracking_uri or os.environ.get("MLFLOW_TRACKING_URI")
    if uri is None and (settings.data_dir / "mlflow.db").is_file():
        uri = settings.tracking_uri
    if uri is None:
        return ModelSet()
    registry = open_registry(uri)
    return champion_models(registry, use_uplift_model=settings.use_uplift_model).current


def _moment(value: str | None, audience: pd.DataFrame) -> dt.datetime:
    import pandas as pd

    if value is None:
        if "as_of" in audience.columns and audience["as_of"].notna().any():
            return pd.Timestamp(audience["as_of"].max()).tz_convert("UTC").to_pydatetime()
        return dt.datetime.now(dt.UTC)
    return parse_moment(value, "--now")


def decide(
    audience: Annotated[
        str,
        typer.Option(
            help="Profiles Parquet file, as written by 'nba features build' (with --spark: "
            "any path Spark reads, a file or a folder)."
        ),
    ],
    out: Annotated[
        str,
        typer.Option(
            help="File to write the decisions to: .parquet or .csv (with --spark: a Parquet "
            "folder, overwritten)."
        ),
    ],
    catalog: CatalogOption = None,
    contact_policy: ContactPolicyOption = None,
    now: Annotated[
        str | None,
        typer.Option(help="Decision time, ISO 8601 with zone [default: the profiles' as_of]."),
    ] = None,
    policy: Annotated[str, typer.Option(help="nba (the engine), rules or random.")] = "nba",
    seed: Annotated[
        int, typer.Option(help="Seed; the same inputs and seed give the same file.")
    ] = 0,
    workers: Annotated[
        int | None, typer.Option(help="Processes to decide with [default: one per core].")
    ] = None,
    contacts_only: Annotated[
        bool, typer.Option(help="Write only actions that reach the customer (no do_nothing).")
    ] = False,
    tracking_uri: Annotated[
        str | None,
        typer.Option(
            help="MLflow registry whose champions score [default: the API's, when it exists; "
            "rule-based scores without one]."
        ),
    ] = None,
    redis_url: Annotated[
        str | None,
        typer.Option(
            help="The API's Redis: decide with the response statistics it learned (each "
            "customer with their segment's), the actions it sent (cool-downs, sequences), the "
            "contacts it decided and no message_sent reported yet (caps, message gap) and "
            "today's budgets [default: none: priors, no history]."
        ),
    ] = None,
    redis_prefix: Annotated[
        str, typer.Option(envvar="NBA_REDIS_PREFIX", help="The API's Redis key prefix.")
    ] = "nba",
    products: Annotated[
        Path | None,
        typer.Option(
            help="Contract products table: a product out of stock is no cart or browse item "
            "to remind of nor a product shown; with --redis-url, at the levels the API was "
            "given (PUT /v1/products/{id}/stock); its order is the popularity list when the "
            "API's Redis has none [default: the API's NBA_PRODUCTS_PATH when it exists]."
        ),
    ] = None,
    rejected: Annotated[
        int,
        typer.Option(
            min=0,
            help="Explain on each row why the N best rejected actions were not chosen, as "
            "the API does: a 'rejected' column, a JSON array of {action_id, channel, code, "
            "message} [default: 0, no column].",
        ),
    ] = 0,
    offers: Annotated[
        Path | None,
        typer.Option(
            help="Contract offers table: the catalog's offers take its terms (an offer it "
            "says has ended is not given; its cost is the one valued) [default: the API's "
            "NBA_OFFERS_PATH, else <NBA_DATA_DIR>/retailer/offers.parquet when it exists]."
        ),
    ] = None,
    history: Annotated[
        list[Path] | None,
        typer.Option(
            help="Earlier decision files of 'nba decide' (repeat for several days): when "
            "each action was last sent (cool-downs, sequences), the contacts they decided "
            "since the profiles' as_of (caps, message gap) and today's budgets, as the "
            "API's Redis keeps them; for runs without --redis-url [default: none]."
        ),
    ] = None,
    archive: Annotated[
        Path | None,
        typer.Option(
            help="The API's event archive, whose erasure register ('nba erase', DELETE "
            "/v1/customers/{id}) names the customers forgotten: a profile built before "
            "their erasure is decided as an unknown visitor's, as the API does [default: "
            "NBA_ARCHIVE_DIR, else <NBA_DATA_DIR>/archive, when it exists]."
        ),
    ] = None,
    experiment: Annotated[
        Path | None,
        typer.Option(
            help="Experiment YAML: each customer decided by their arm, as the API does (the "
            "control group gets do_nothing; an 'arm' column names it) [default: the API's "
            "NBA_EXPERIMENT_PATH, else <NBA_DATA_DIR>/experiment.yaml when it exists]."
        ),
    ] = None,
    spark: Annotated[
        bool,
        typer.Option(
            help="Decide on Spark, one task per chunk of customers: the same decisions as "
            "without (needs pyspark and Java 17; under spark-submit, the cluster's session)."
        ),
    ] = False,
    spark_master: Annotated[
        str | None,
        typer.Option(help="Spark master with --spark [default: spark-submit's, else local[*]]."),
    ] = None,
) -> None:
    """Decide the next best action for every customer of an audience and write them to a file."""
    from nba.pipeline import build_pipeline
    from serving.batch_decisions import AudienceError, BatchJob, check_audience
    from serving.products import POPULAR_KEPT

    # text, not Path: with --spark these may be URIs (s3a://...), which Path would mangle
    if out.endswith(".csv") and spark:
        raise _fail(f"--out: {out}: with --spark the decisions are written as a Parquet folder")
    if Path(out).suffix not in (".parquet", ".csv") and not spark:
        raise _fail(f"--out: {out} must end in .parquet or .csv")
    if policy not in POLICIES:
        raise _fail(f"--policy: unknown policy {policy!r} (expected one of: {', '.join(POLICIES)})")
    if rejected and spark:
        raise _fail("--rejected: not available with --spark (the Spark schema has no such column)")
    rules = with_offers_table(load_catalog(catalog), offers)
    contacts = load_contact_policy(contact_policy)
    arms = load_experiment(experiment)
    if spark:
        session = _spark_session(spark_master)
        frame = _spark_audience(session, audience)
        when = parse_moment(now, "--now") if now is not None else _spark_moment(frame)
    else:
        profiles = load_audience(Path(audience))
        try:  # before the progress bar: bad ids and time zones fail at once (the workers
            check_audience(profiles)  # build the profiles and name any other bad row)
        except AudienceError as error:
            raise _fail(f"{audience}: {error}") from None
        when = _moment(now, profiles)
    champions = load_models(tracking_uri)
    models = champions.label
    try:
        pipeline = build_pipeline(
            rules, contacts, scorer=champions.scorer, experiment=arms, policy=policy
        )
    except ValueError as error:  # an arm the batch cannot build (a challenger's model)
        raise _fail(f"--experiment: {error}") from None
    job = BatchJob(
        pipeline,
        when,
        seed,
        recommender=champions.recommender,
        rejected=rejected,
    )
    usage = None
    if history and redis_url is not None:
        raise _fail(
            "--history: give it or --redis-url, not both (the API's Redis holds what it "
            "decided; the files what earlier batch runs did)"
        )
    if redis_url is not None:
        job, usage = _with_redis(job, redis_url, redis_prefix, contacts)
    elif history:
        since = _spark_moment(frame, earliest=True) if spark else _earliest_as_of(profiles, when)
        job, usage = _with_history(job, history, rules, contacts, since)
    job = _with_register(job, archive)
    table = load_products_table(products)
    if table is not None:
        stock = load_stock(table, redis_url, redis_prefix)
        # the API's popularity list before any event counted: the table's first products
        popular = job.popular or tuple(table["product_id"].astype(str).head(POPULAR_KEPT))
        job = dataclasses.replace(job, stock=stock, popular=popular)
    console = Console(highlight=False)
    started = time.perf_counter()
    if spark:
        customers, reached, rows = _decide_on_spark(frame, job, rules, usage, out, contacts_only)
    else:
        customers = len(profiles)
        try:
            decisions = _decide_here(profiles, job, rules, usage, workers, contacts_only, console)
        except AudienceError as error:
            raise _fail(f"{audience}: {error}") from None
        path = Path(out)
        path.parent.mkdir(parents=True, exist_ok=True)
        write_table(decisions, path)
        reached, rows = int(decisions["channel"].notna().sum()), len(decisions)
    elapsed = time.perf_counter() - started
    console.print(
        f"{customers:,} customers decided as of {when.isoformat()} in {elapsed:.1f} s "
        f"({customers / max(elapsed, 1e-9):,.0f} customers/s): {reached:,} contacts, "
        f"{rows:,} rows -> {out} (models: {models})"
    )


def write_table(decisions: pd.DataFrame, path: Path) -> None:
    """Write the decisions to ``path``: Parquet (``products`` a list of strings, instants
    UTC microseconds) or CSV (``products`` as a JSON array, ``[]`` for none; instants as
    ISO 8601 text with microseconds and ``+00:00``, one form in every column, so that a
    reader infers one type for all of them)."""
    import orjson
    import pyarrow as pa
    import pyarrow.parquet as pq

    from serving.batch_decisions import TIME_COLUMNS, TIME_DTYPE

    if path.suffix == ".parquet":
        frame = pa.Table.from_pandas(decisions, preserve_index=False)
        at = frame.schema.get_field_index("products")
        if at >= 0:  # a list of strings even when every list is empty
            frame = frame.set_column(at, "products", frame.column(at).cast(pa.list_(pa.string())))
        pq.write_table(frame, path)
        return
    if "products" in decisions.columns:
        decisions = decisions.assign(
            products=[orjson.dumps(list(p)).decode() for p in decisions["products"]]
        )
    decisions = decisions.assign(
        **{
            name: decisions[name].astype(TIME_DTYPE).dt.strftime("%Y-%m-%dT%H:%M:%S.%f+00:00")
            for name in TIME_COLUMNS
            if name in decisions.columns
        }
    )
    decisions.to_csv(path, index=False)


def load_products_table(path: Path | None) -> pd.DataFrame | None:
    """The contract products table at ``path`` (else the API's when it exists; ``None``
    without one), or exit 2."""
    from serving.settings import Settings
    from serving.startup import StartupError, load_products

    if path is None:
        path = Settings().products_file
        if not path.is_file():
            return None
    try:
        return load_products(path)
    except StartupError as error:
        raise _fail(f"--products: {error}") from None


def load_stock(table: pd.DataFrame, redis_url: str | None, prefix: str) -> StockLevels:
    """The stock levels of the products ``table``, at the levels the API's Redis holds
    (with ``redis_url``), or exit."""
    from features.online.connect import connect_redis
    from features.online.stock import StockLevels

    if redis_url is None:
        return StockLevels(None, prefix, table)
    try:
        client = connect_redis(redis_url)
        stock = StockLevels(client, prefix, table, refresh_seconds=0)
        stock.refresh()
    except Exception as exc:  # the driver raises many kinds
        raise _fail(f"--redis-url: {exc}", EXIT_UNAVAILABLE) from None
    frozen = stock.snapshot()
    client.close()
    return frozen


def _with_redis(
    job: BatchJob, url: str, prefix: str, budget_policy: ContactPolicy
) -> tuple[BatchJob, UsageCounts]:
    """``job`` with the response statistics the API learned and the action history it
    keeps (read per chunk, by the worker that decides it), and today's usage."""
    from features.online.connect import connect_redis
    from features.online.contact_state import RedisContactState
    from features.online.redis_store import RedisOnlineStore
    from serving.batch_decisions import RedisHistories
    from serving.products import POPULAR_KEPT

    try:
        client = connect_redis(url)
        # read as the API reads them (its NBA_STATS_* settings), or a half-life or model
        # other than the defaults would read other keys or other values
        stats = api_response_stats(client, prefix).table(job.now)
        # what the API sent and counted: cool-downs, sequences and caps hold in batch too
        online = RedisContactState(RedisOnlineStore(client, prefix=prefix))
        usage = online.usage(budget_policy.budget_day(job.now))  # the retailer's day
        popular = tuple(online.top_products(POPULAR_KEPT))  # the API's popularity list
    except typer.Exit:  # a malformed NBA_ setting, already said
        raise
    except Exception as exc:  # the driver raises many kinds
        raise _fail(f"--redis-url: {exc}", EXIT_UNAVAILABLE) from None
    # and the contacts it decided that no message_sent has reported: caps and message gap
    readers = RedisHistories(url, prefix)
    job = dataclasses.replace(
        job,
        stats=stats,
        action_history=readers,
        own_contacts=readers.own_contacts,
        popular=popular,
        erasures=readers.erased,  # decided as the API decides them: unknown visitors
    )
    return job, usage


def _with_register(job: BatchJob, archive: Path | None) -> BatchJob:
    """``job`` reading the erasure register of ``archive`` (else the API's archive) too,
    when there is one."""
    from features.erasures import REGISTER, ErasureRegister
    from serving.batch_decisions import RegisteredErasures
    from serving.settings import Settings

    folder = archive or Settings().archive_path
    if archive is not None and not archive.is_dir():
        raise _fail(f"--archive: {archive}: no such folder")
    if not (folder / REGISTER).is_file():
        return job
    found = ErasureRegister(folder).load()
    if not found:
        return job
    return dataclasses.replace(job, erasures=RegisteredErasures(found, job.erasures))


def _earliest_as_of(audience: pd.DataFrame, default: dt.datetime) -> dt.datetime:
    """The earliest ``as_of`` of the audience's profiles (``default`` without one): the
    contacts decided from then on are not in every profile's ``message_sent`` counts."""
    import pandas as pd

    if "as_of" in audience.columns and audience["as_of"].notna().any():
        return pd.Timestamp(audience["as_of"].min()).tz_convert("UTC").to_pydatetime()
    return default


def _with_history(
    job: BatchJob,
    paths: list[Path],
    rules: Catalog,
    budget_policy: ContactPolicy,
    since: dt.datetime,
) -> tuple[BatchJob, UsageCounts]:
    """``job`` with what the decision files at ``paths`` sent (the contacts from ``since``,
    the audience's ``as_of``, counted as the API counts its unreported ones), and today's
    usage; or exit 2 naming the file, row and field."""
    from serving.batch_history import DecidedHistory, HistoryError, read_history

    try:
        found = DecidedHistory.of(
            [(str(p), read_history(p)) for p in paths], {a.id for a in rules}, job.now
        )
    except HistoryError as error:
        raise _fail(f"--history: {error}") from None
    job = dataclasses.replace(
        job, action_history=found.sent, own_contacts=found.own_contacts_since(since)
    )
    return job, found.usage(budget_policy.budget_day(job.now), budget_policy.zone)


def _decide_here(
    items: pd.DataFrame,
    job: BatchJob,
    rules: Catalog,
    usage: UsageCounts | None,
    workers: int | None,
    contacts_only: bool,
    console: Console,
) -> pd.DataFrame:
    from serving.batch_decisions import contacts_only as keep_contacts
    from serving.batch_decisions import decide_audience

    with Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        TextColumn("{task.completed:,}/{task.total:,} customers"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=console,
    ) as progress:
        task = progress.add_task("deciding", total=len(items))
        try:
            table = decide_audience(
                items,
                rules,
                now=job.now,
                policy=job.policy,
                seed=job.seed,
                stats=job.stats,
                usage=usage,
                action_history=job.action_history,
                own_contacts=job.own_contacts,
                stock=job.stock,
                recommender=job.recommender,
                popular=job.popular,
                rejected=job.rejected,
                erasures=job.erasures,
                workers=workers or os.cpu_count() or 1,
                progress=lambda done, total: progress.update(task, completed=done, total=total),
            )
        except Exception as exc:  # the Redis driver raises many kinds
            if "redis" not in type(exc).__module__:
                raise
            raise _fail(f"--redis-url: {exc}", EXIT_UNAVAILABLE) from None
    return keep_contacts(table) if contacts_only else table


# ------------------------------------------------------------------ Spark


def _spark_session(master: str | None) -> SparkSession:
    try:
        from pyspark.sql import SparkSession
    except ImportError:
        raise _fail("--spark needs pyspark: pip install 'nba[spark]' (and Java 17)") from None
    builder = SparkSession.builder.appName("nba-decide")
    if master is not None:
        builder = builder.master(master)
    try:
        return builder.getOrCreate()
    except Exception as exc:  # no Java, a master that does not answer...
        raise _fail(f"--spark: cannot start Spark ({exc})", EXIT_UNAVAILABLE) from None


def _spark_audience(session: SparkSession, audience: str) -> SparkDataFrame:
    from pyspark.errors import AnalysisException

    try:
        return session.read.parquet(audience)
    except AnalysisException as error:
        raise _fail(f"{audience}: not a Parquet file of profiles ({error})") from None


def _spark_moment(frame: SparkDataFrame, earliest: bool = False) -> dt.datetime:
    """The latest (or ``earliest``) ``as_of`` of the audience (now when it has none)."""
    from pyspark.sql import functions as sf

    if "as_of" not in frame.columns:
        return dt.datetime.now(dt.UTC)
    pick = sf.min if earliest else sf.max
    micros = frame.agg(pick(sf.unix_micros(sf.col("as_of")))).first()[0]  # type: ignore[index]
    if micros is None:
        return dt.datetime.now(dt.UTC)
    return dt.datetime(1970, 1, 1, tzinfo=dt.UTC) + dt.timedelta(microseconds=int(micros))


def _decide_on_spark(
    frame: SparkDataFrame,
    job: BatchJob,
    rules: Catalog,
    usage: UsageCounts | None,
    out: str,
    contacts_only: bool,
) -> tuple[int, int, int]:
    """Decide on Spark and write ``out``; (customers, contacts, rows)."""
    from pyspark.errors import PySparkException
    from pyspark.sql import functions as sf

    from nba.actions import ActionType
    from serving.batch_decisions import AudienceError
    from serving.batch_spark import decide_audience_spark, write_decisions

    try:
        decisions = decide_audience_spark(frame, job, rules, usage)
        if contacts_only:
            decisions = decisions.where(
                sf.col("channel").isNotNull()
                & (sf.col("action_type") != ActionType.DO_NOTHING.value)
            )
        write_decisions(decisions, out)
        written = frame.sparkSession.read.parquet(out)
        counts = written.agg(
            sf.count_distinct("customer_id"), sf.count("channel"), sf.count(sf.lit(1))
        ).first()
    except AudienceError as error:
        raise _fail(f"{frame.inputFiles()[:1]}: {error}") from None
    except PySparkException as error:  # a task's AudienceError arrives as its text
        text = str(error)
        if "AudienceError" not in text:
            raise
        detail = text[text.index("the audience is invalid") :].split("\n\n")[0]
        raise _fail(f"--audience: {detail}") from None
    assert counts is not None
    return int(counts[0]), int(counts[1]), int(counts[2])


def _daytime_before(last_event: dt.datetime, hour_utc: int = 9) -> dt.datetime:
    """``hour_utc`` o'clock UTC on the day of ``last_event``, or the day before if later."""
    moment = last_event.replace(hour=hour_utc, minute=0, second=0, microsecond=0)
    return moment if moment <= last_event else moment - dt.timedelta(days=1)


def decide_examples(
    data: Annotated[Path, typer.Option(help="Folder with the four contract tables.")],
    at: Annotated[
        str | None,
        typer.Option(
            help="Decide at this time, ISO 8601 with zone [default: 09:00 UTC on the "
            "last day of data]."
        ),
    ] = None,
    catalog: CatalogOption = None,
    contact_policy: ContactPolicyOption = None,
    offers: Annotated[
        Path | None,
        typer.Option(
            help="Contract offers table: the catalog's offers take its terms, as with "
            "`nba decide` [default: the offers table of --data]."
        ),
    ] = None,
) -> None:
    """Show the engine's decisions for four telling customers: an abandoned cart, no SMS
    consent, a lapsing customer and a birthday next week."""
    import pandas as pd

    from features.batch import build_profiles
    from features.online.stock import StockLevels
    from features.validation import find_table_file
    from simulator.closed_loop.scenarios import render_scenarios, scenario_decisions

    rules = with_offers_table(load_catalog(catalog), offers or find_table_file(data, "offers"))
    contacts = load_contact_policy(contact_policy)
    dataset = load_data(data)
    if dataset.events.empty:
        raise _fail(f"{data}: no events to build profiles from")
    last = pd.Timestamp(dataset.events["timestamp"].max()).floor("us").to_pydatetime()
    when = _moment(at, pd.DataFrame()) if at is not None else _daytime_before(last)
    console = Console(highlight=False)
    with console.status(f"building profiles as of {when.isoformat()}"):
        profiles = build_profiles(dataset, as_of=when).profiles
    stock = StockLevels(None, "", dataset.products)  # only what can be bought is reminded of
    profiles = [stock.sellable(p) for p in profiles]
    console.print(
        render_scenarios(scenario_decisions(profiles, when, rules, contacts)), soft_wrap=True
    )
