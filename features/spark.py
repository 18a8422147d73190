"""Batch profiles on Spark: the pandas build of :mod:`features.batch`, sharded by customer.

Nothing here defines a feature. Customers are hashed into buckets; each bucket's
customers and events meet in one pandas frame (``cogroup`` + ``applyInPandas``)
and go through :func:`features.batch.compute_states`, exactly as the whole data
set does in the pandas build. Ops never cross customers, so a bucket's states
are those customers' states. Priors are the population sums that
:func:`features.batch.estimate_priors` forms, added up by Spark per loyalty
tier; ``estimate_priors`` itself turns them into rates. A second pass per
bucket reads each state with :func:`features.finalise.build_profile` and writes
it with :func:`features.profile_table.profile_to_row`.

Why buckets and not one group per customer: ``compute_states`` costs about the
same for one customer as for a few hundred (it is vectorised), so per-customer
groups would be two orders of magnitude slower.

Time columns are passed to the pandas side as epoch microseconds and rebuilt as
UTC there, because Spark hands timestamps to pandas as naive wall-clock times
in the session's time zone. pyspark is imported lazily: it is the optional
extra ``nba[spark]``.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import math
from collections import Counter, defaultdict
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import pandas as pd

from features.batch import (
    LEFT_DAY_FIELDS,
    SHOPPING_DAY_FIELDS,
    compute_states,
    estimate_priors,
    settled_left_days,
    settling_time,
    statics_of,
    with_trigger_priors,
    withdrawn_day_fields,
)
from features.contract import CUSTOMERS, EVENTS, PRODUCTS, TableSchema
from features.definitions import (
    EVENT_COLUMNS_READ,
    FAMILIES,
    SECONDS_PER_DAY,
    TIERS,
    KeyKind,
    decode_register,
    encode_register,
)
from features.finalise import FeaturePriors, build_profile
from features.profile_table import DERIVED_COLUMNS, profile_to_row
from features.seasonality import (
    PRIOR_SAMPLE,
    QUIET_DAYS,
    exposure_of_spans,
    month_of_day,
    state_months,
    store_month_factors,
    store_season_prior,
)
from features.state import State, states_by_customer, trim_state
from features.validation import DataContractError, Problem
from nba.channels import CONSENT_CHANNELS
from nba.profile import CustomerProfile

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame, SparkSession

#: Target number of customers per bucket when the caller does not choose.
CUSTOMERS_PER_BUCKET = 20_000

#: Columns the definitions read (``properties`` may be absent from a file).
EVENT_COLUMNS = ("event_id", *EVENT_COLUMNS_READ)
CUSTOMER_TIMES = ("created_at", *(f"consent_{c.value}_at" for c in CONSENT_CHANNELS))
CUSTOMER_COLUMNS = (
    "customer_id",
    "timezone",
    "birth_date",
    "loyalty_tier",
    *(f"consent_{c.value}" for c in CONSENT_CHANNELS),
    *CUSTOMER_TIMES,
)
#: Optional customer columns the definitions read when present (declared preferences).
OPTIONAL_CUSTOMER_COLUMNS = ("preferred_channel", "preferred_hours")
PRODUCT_COLUMNS = ("product_id", "category", "brand", "price", "launch_date")

#: State fields that :func:`features.batch.estimate_priors` reads (``kd:*`` is
#: read too but does not change the priors).
_RATE_FAMILIES = ("ed", "es", "eo", "ek")
_PROMO_FIELDS = ("pp", "pn", "np")
PRIOR_FIELDS = (
    "lt",
    *_PROMO_FIELDS,
    *(f"{f}:{c.value}" for f in _RATE_FAMILIES for c in CONSENT_CHANNELS),
)

STATE_SCHEMA = "customer_id string, field string, value double"

#: The keyed families and the scalars of :data:`features.batch.LEFT_DAY_FIELDS`.
LEFT_DAY_FAMILIES = tuple(sorted(f for f in LEFT_DAY_FIELDS if FAMILIES[f].key is not KeyKind.NONE))
LEFT_DAY_SCALARS = tuple(sorted(f for f in LEFT_DAY_FIELDS if FAMILIES[f].key is KeyKind.NONE))
SHOPPING_DAY_FAMILIES = tuple(
    sorted(f for f in SHOPPING_DAY_FIELDS if FAMILIES[f].key is not KeyKind.NONE)
)

NANOS_HINT = (
    "nanosecond timestamps, which Spark does not read by default: run with "
    "--conf spark.sql.legacy.parquet.nanosAsLong=true, or write microsecond timestamps"
)

_SPARK_TYPES = {
    "str": "string",
    "str | None": "string",
    "float": "double",
    "float | None": "double",
    "int": "bigint",
    "int | None": "bigint",
    "bool": "boolean",
    "dt.datetime | None": "timestamp",
    "LifecycleState": "string",
    "JourneyPhase": "string",
    "tuple[str, ...]": "array<string>",
    "tuple[float, ...]": "array<double>",
    "tuple[int, ...]": "array<bigint>",
}
_PYTHON_TYPES = {bool: "boolean", float: "double", int: "bigint", str: "string"}


def profile_columns() -> list[tuple[str, str]]:
    """``(column, Spark type)`` of each column of :func:`~features.profile_table.profile_to_row`.

    Nested values (affinities, engagement, consents, contacts) are JSON text.

    >>> dict(profile_columns())["cart_items"], dict(profile_columns())["engagement"]
    ('array<string>', 'string')
    """
    columns = []
    for f in dataclasses.fields(CustomerProfile):
        kind = str(f.type)
        if kind.startswith("dict[") or kind == "ContactHistory":
            spark_type = "string"
        elif kind in _SPARK_TYPES:
            spark_type = _SPARK_TYPES[kind]
        else:
            raise TypeError(
                f"profile field {f.name!r} has type {kind!r}, which has no Spark column type: "
                "add it to features.spark._SPARK_TYPES"
            )
        columns.append((f.name, spark_type))
    sample = profile_to_row(CustomerProfile(customer_id=""))
    columns += [(name, _PYTHON_TYPES[type(sample[name])]) for name in DERIVED_COLUMNS]
    return columns


def profile_schema() -> str:
    """Spark DDL schema of the profile rows.

    >>> profile_schema().split(", ")[:2]
    ['`customer_id` string', '`as_of` timestamp']
    """
    return ", ".join(f"`{name}` {kind}" for name, kind in profile_columns())


def build_profiles_spark(
    spark: SparkSession,
    customers: DataFrame,
    events: DataFrame,
    products: pd.DataFrame,
    as_of: dt.datetime,
    priors: FeaturePriors | None = None,
    buckets: int | None = None,
) -> DataFrame:
    """Profiles of every customer created before ``as_of``, one row per customer.

    Equal to :func:`features.batch.build_profiles` (same states, priors and
    profiles) on the same data. Only events and customer changes strictly before
    ``as_of`` count.

    Parameters
    ----------
    customers, events : DataFrame
        Contract tables (``spark.read.parquet`` of the contract files, or
        ``spark.createDataFrame`` of contract frames). Timestamps may be
        ``timestamp``, ``timestamp_ntz`` (taken as UTC) or ``bigint`` epoch
        nanoseconds (Parquet nanosecond timestamps read with
        ``spark.sql.legacy.parquet.nanosAsLong=true``).
    products : pandas.DataFrame
        The product table (small: shipped to every task).
    as_of : datetime
        Timezone-aware moment of the profiles.
    priors : FeaturePriors, optional
        Population rates; estimated from the states when not given.
    buckets : int, optional
        Number of customer shards processed as one pandas frame each; by default
        one per :data:`CUSTOMERS_PER_BUCKET` customers, at least the default
        parallelism.

    Returns
    -------
    DataFrame
        Columns of :func:`profile_columns`; read a row back with
        :func:`features.profile_table.row_to_profile`. When the priors are
        estimated, the states they are estimated from are persisted so that
        they are computed once; they stay cached for the session
        (:func:`build_profiles_from_parquet` releases them after writing).
    """
    return _build(spark, customers, events, products, as_of, priors, buckets)[0]


def _build(
    spark: SparkSession,
    customers: DataFrame,
    events: DataFrame,
    products: pd.DataFrame,
    as_of: dt.datetime,
    priors: FeaturePriors | None,
    buckets: int | None,
) -> tuple[DataFrame, DataFrame | None]:
    """Profiles, and the states persisted for estimating the priors (None when given)."""
    from pyspark import StorageLevel
    from pyspark.sql import functions as sf

    _check_as_of(as_of)
    customers, events = _known_before(customers, events, as_of)
    buckets = buckets or _default_buckets(spark, customers)
    states = _states(customers, events, products, as_of, buckets)
    persisted = None
    if priors is None:
        persisted = states = states.persist(StorageLevel.MEMORY_AND_DISK)
        priors = with_trigger_priors(
            estimate_priors_spark(states, as_of.timestamp()),
            customers.count(),
            _left_day_sums(states, as_of),
        )
    statics = customers.select("customer_id", "timezone", "birth_date")

    def finalise(state_rows: pd.DataFrame, static_rows: pd.DataFrame) -> pd.DataFrame:
        by_customer = _state_dicts(state_rows)  # already trimmed
        static = statics_of(static_rows)
        rows = [
            profile_to_row(build_profile(cid, by_customer.get(cid, {}), as_of, static[cid], priors))
            for cid in sorted(static)
        ]
        return _profile_frame(rows)

    profiles = (
        states.groupBy(_bucket(sf.col("customer_id"), buckets))
        .cogroup(statics.groupBy(_bucket(sf.col("customer_id"), buckets)))
        .applyInPandas(finalise, profile_schema())
    )
    return profiles, persisted


def compute_states_spark(
    customers: DataFrame,
    events: DataFrame,
    products: pd.DataFrame,
    as_of: dt.datetime,
    buckets: int | None = None,
) -> DataFrame:
    """Long state ``(customer_id, field, value)`` of everything known before ``as_of``,
    without expired fields: what :func:`features.batch.build_profiles` holds in
    ``states`` and the online store keeps in Redis."""
    _check_as_of(as_of)
    customers, events = _known_before(customers, events, as_of)
    buckets = buckets or _default_buckets(customers.sparkSession, customers)
    return _states(customers, events, products, as_of, buckets)


def estimate_priors_spark(states: DataFrame, now: float | None = None) -> FeaturePriors:
    """:func:`features.batch.estimate_priors` of a long state frame, summed by Spark.

    Each customer adds ``max(delivered, sent)``, opens and clicks per channel to
    its loyalty tier, and promo, new-product and all purchases to the totals.
    One synthetic state per tier carries the tier's sums, so thresholds and
    ratios stay in ``estimate_priors``; the counts are whole numbers, so the
    sums are exact in any order. The store's seasonality comes from the shopping days
    and the customers' shopping spans, counted by Spark.
    """
    from pyspark.sql import functions as sf
    from pyspark.sql.functions import pandas_udf

    @pandas_udf("string")  # type: ignore[call-overload]
    def tier_of(register: pd.Series) -> pd.Series:
        return register.map(lambda r: "none" if pd.isna(r) else TIERS[decode_register(r)[1]])

    wide = (
        states.where(sf.col("field").isin(list(PRIOR_FIELDS)))
        .groupBy("customer_id")
        .pivot("field", list(PRIOR_FIELDS))
        .agg(sf.first("value"))
    )

    def value(name: str) -> Column:
        return sf.coalesce(wide[f"`{name}`"], sf.lit(0.0))

    sums = [sf.sum(value(f)).alias(f) for f in _PROMO_FIELDS]
    for c in (ch.value for ch in CONSENT_CHANNELS):
        sums.append(sf.sum(sf.greatest(value(f"ed:{c}"), value(f"es:{c}"))).alias(f"base:{c}"))
        sums += [sf.sum(value(f"{f}:{c}")).alias(f"{f}:{c}") for f in ("eo", "ek")]
    totals = wide.groupBy(tier_of(wide["lt"]).alias("tier")).agg(*sums).collect()

    synthetic: dict[str, State] = {}
    for row in totals:
        total = row.asDict()
        state = {f: total[f] for f in _PROMO_FIELDS}
        state["lt"] = float(encode_register(0.0, TIERS.index(total["tier"])))
        for c in (ch.value for ch in CONSENT_CHANNELS):
            state[f"ed:{c}"] = state[f"es:{c}"] = total[f"base:{c}"]
            state[f"eo:{c}"] = total[f"eo:{c}"]
            state[f"ek:{c}"] = total[f"ek:{c}"]
        synthetic[total["tier"]] = state
    states = _without_withdrawn_days(states, now)
    month_activity, until = _store_seasons(states)
    return dataclasses.replace(
        estimate_priors(synthetic),
        month_activity=month_activity,
        season_prior=_store_season_prior(states, month_activity, until),
    )


def _without_withdrawn_days(states: DataFrame, now: float | None) -> DataFrame:
    """:func:`features.batch.settled_shopping_states` of a long state frame: the shopping
    days that returns withdrew (:func:`features.batch.withdrawn_day_fields`, at ``now``:
    the build's moment, else :func:`features.batch.settling_time`) left out, the few
    customers with a return and a day shopped by purchases alone settled in pandas."""
    from pyspark.sql import functions as sf

    days = states.where(sf.col("field").startswith("ad:"))
    returns = states.where(sf.col("field").startswith("rt:"))
    if now is None:
        last = days.agg(sf.max(sf.substring("field", 4, 20).cast("long"))).collect()[0][0]
        latest = returns.agg(sf.max("value")).collect()[0][0]
        now = settling_time(
            [] if last is None else [int(last)], [] if latest is None else [latest], None
        )
    marked = days.where(sf.col("value") < 0).select("customer_id").distinct()
    returning = returns.select("customer_id").distinct()
    candidates = marked.join(returning, "customer_id")
    if candidates.isEmpty():  # no customer with both: nothing to settle, no join
        return states
    read = sf.col("field").rlike(f"^({'|'.join(SHOPPING_DAY_FAMILIES)}):") | sf.col("field").isin(
        list(LEFT_DAY_SCALARS)
    )

    def withdrawn(rows: pd.DataFrame) -> pd.DataFrame:
        out = [
            (cid, field)
            for cid, state in _state_dicts(rows).items()
            for field in withdrawn_day_fields(state, now)
        ]
        return pd.DataFrame(out, columns=["customer_id", "field"])

    gone = (
        states.join(candidates, "customer_id")
        .where(read)
        .select("customer_id", "field", "value")
        .groupBy("customer_id")
        .applyInPandas(withdrawn, "customer_id string, field string")
    )
    return states.join(sf.broadcast(gone), ["customer_id", "field"], "left_anti")


def _left_day_sums(
    states: DataFrame, as_of: dt.datetime
) -> tuple[tuple[float, float], tuple[float, float]]:
    """:func:`features.batch.settled_left_day_sums` of a long state frame: every
    customer's ``browse_left_days_30d`` and ``cart_left_days_30d`` as their profile reads
    them (from the families they read, with returns and cancellations settled:
    :func:`features.batch.settled_left_days`), added up with their squares (whole
    numbers: exact in any order)."""
    from pyspark.sql import functions as sf

    now = as_of.timestamp()
    read = sf.col("field").rlike(f"^({'|'.join(LEFT_DAY_FAMILIES)}):") | sf.col("field").isin(
        list(LEFT_DAY_SCALARS)
    )

    def count(rows: pd.DataFrame) -> pd.DataFrame:
        out = [(cid, *settled_left_days(state, now)) for cid, state in _state_dicts(rows).items()]
        return pd.DataFrame(out, columns=["customer_id", "browse", "cart"])

    counts = (
        states.where(read)
        .select("customer_id", "field", "value")
        .groupBy("customer_id")
        .applyInPandas(count, "customer_id string, browse long, cart long")
    )
    row = counts.agg(
        sf.sum("browse"),
        sf.sum(sf.col("browse") * sf.col("browse")),
        sf.sum("cart"),
        sf.sum(sf.col("cart") * sf.col("cart")),
    ).collect()[0]
    browse, browse_squares, cart, cart_squares = (float(x or 0) for x in row)
    return (browse, browse_squares), (cart, cart_squares)


def _store_season_prior(
    states: DataFrame, store: tuple[float, ...], until: int
) -> tuple[float, ...]:
    """:func:`features.seasonality.store_season_prior` of the customers who shopped, from
    the :data:`~features.seasonality.PRIOR_SAMPLE` first by CRC-32 of their id (the
    sample the pandas build draws), their ``ad``, ``am`` and ``t0`` fields collected."""
    from pyspark.sql import functions as sf

    shopping = sf.col("field").startswith("ad:") | sf.col("field").startswith("am:")
    sample = (
        states.where(shopping)
        .select("customer_id")
        .distinct()
        .orderBy(sf.crc32(sf.col("customer_id").cast("binary")), "customer_id")
        .limit(PRIOR_SAMPLE)
    )
    fields = states.join(sample, "customer_id").where(shopping | (sf.col("field") == "t0"))
    by_customer: dict[str, dict[str, float]] = defaultdict(dict)
    for row in fields.select("customer_id", "field", "value").collect():
        by_customer[row["customer_id"]][row["field"]] = float(row["value"])
    customers = (
        (
            customer_id,
            state_months(state),
            state.get("t0"),
        )
        for customer_id, state in by_customer.items()
    )
    return store_season_prior(customers, until * SECONDS_PER_DAY, store)


def _store_seasons(states: DataFrame) -> tuple[tuple[float, ...], int]:
    """:func:`features.seasonality.store_month_factors` of a long state frame (shopping
    days per day, and customers' shopping spans (``shopping_span``) counted by Spark),
    and the day after the last shopping day."""
    from pyspark.sql import functions as sf

    day = sf.substring("field", 4, 20).cast("long")
    shopped_days = states.where(sf.col("field").startswith("ad:")).select(
        "customer_id", day.alias("day")
    )
    shopped: Counter[int] = Counter()
    for row in shopped_days.groupBy("day").count().collect():
        shopped[month_of_day(int(row["day"]))] += int(row["count"])
    first_seen = states.where(sf.col("field") == "t0").select(
        "customer_id", sf.floor(sf.col("value") / SECONDS_PER_DAY).alias("t0")
    )
    spans = (
        shopped_days.groupBy("customer_id")
        .agg(sf.min("day").alias("first"), sf.max("day").alias("last"))
        .join(first_seen, "customer_id", "left")
        .select(
            sf.when(sf.col("t0").isNull(), sf.col("first"))
            .otherwise(sf.least(sf.greatest("first", "t0"), sf.col("last")))
            .alias("start"),
            (sf.col("last") + QUIET_DAYS).alias("end"),
            (sf.col("last") + 1).alias("after"),
        )
        .cache()
    )
    starts = {int(r["start"]): int(r["count"]) for r in spans.groupBy("start").count().collect()}
    ends = {int(r["end"]): int(r["count"]) for r in spans.groupBy("end").count().collect()}
    until = int(spans.agg(sf.max("after")).collect()[0][0] or 0)
    spans.unpersist()
    return store_month_factors(shopped, exposure_of_spans(starts, ends, until)), until


def build_profiles_from_parquet(
    spark: SparkSession,
    data_dir: str,
    as_of: dt.datetime,
    out_path: str,
    priors: FeaturePriors | None = None,
    buckets: int | None = None,
) -> None:
    """Read ``customers``, ``events`` and ``products`` Parquet from ``data_dir`` (any
    path Spark reads: local, ``hdfs://``, ``s3a://``...) and write the profiles as
    ``as_of`` to ``out_path`` as Parquet (overwritten)."""
    from pyspark.errors import AnalysisException
    from pyspark.sql import functions as sf

    base = data_dir.rstrip("/")

    def table(name: str) -> DataFrame:
        path = f"{base}/{name}.parquet"
        try:
            return spark.read.parquet(path)
        except AnalysisException as err:
            if "NANOS" not in str(err):
                raise
            raise DataContractError([Problem(path, None, NANOS_HINT)]) from err

    products = table("products")
    _require_columns(products, PRODUCTS, PRODUCT_COLUMNS)
    catalog = products.select(
        *(
            _date(products, c, PRODUCTS.name) if c == "launch_date" else sf.col(c)
            for c in PRODUCT_COLUMNS
        )
    ).toPandas()
    profiles, persisted = _build(
        spark, table("customers"), table("events"), catalog, as_of, priors, buckets
    )
    # int64 UTC instants, which pandas and pyarrow read back as aware timestamps
    # (Spark's default INT96 reads back naive)
    setting = "spark.sql.parquet.outputTimestampType"
    previous = spark.conf.get(setting, None)
    spark.conf.set(setting, "TIMESTAMP_MICROS")
    try:
        profiles.write.mode("overwrite").parquet(out_path)
    finally:
        if previous is None:
            spark.conf.unset(setting)
        else:
            spark.conf.set(setting, previous)
        if persisted is not None:
            persisted.unpersist()


def main(argv: Sequence[str] | None = None) -> None:
    """``spark-submit features/spark.py --data DIR --as-of 2026-03-01T00:00:00Z --out PATH``."""
    parser = argparse.ArgumentParser(description="Build nba customer profiles with Spark.")
    parser.add_argument("--data", required=True, help="folder of the contract Parquet files")
    parser.add_argument("--as-of", required=True, help="moment of the profiles, with time zone")
    parser.add_argument("--out", required=True, help="where to write the profiles (Parquet)")
    parser.add_argument("--buckets", type=int, default=None, help="customer shards")
    args = parser.parse_args(argv)
    as_of = dt.datetime.fromisoformat(args.as_of)
    if as_of.tzinfo is None:
        parser.error(f"--as-of {args.as_of!r} has no time zone (add Z or an offset)")

    from pyspark.sql import SparkSession

    spark = SparkSession.builder.appName("nba-profiles").getOrCreate()
    try:
        build_profiles_from_parquet(spark, args.data, as_of, args.out, buckets=args.buckets)
    finally:
        spark.stop()


# ------------------------------------------------------------------ internals


def _states(
    customers: DataFrame,
    events: DataFrame,
    products: pd.DataFrame,
    as_of: dt.datetime,
    buckets: int,
) -> DataFrame:
    from pyspark.sql import functions as sf

    stamp = pd.Timestamp(as_of)
    cut = stamp.timestamp()

    def states_of_bucket(event_rows: pd.DataFrame, customer_rows: pd.DataFrame) -> pd.DataFrame:
        bucket_events = _with_times(event_rows, ("timestamp",)).sort_values(
            ["customer_id", "timestamp", "event_id"], kind="stable", ignore_index=True
        )
        bucket_customers = _with_times(customer_rows, CUSTOMER_TIMES)
        long = compute_states(bucket_customers, bucket_events, products, before=stamp)
        ids, fields, values = [], [], []
        for cid, state in states_by_customer(long).items():
            kept = trim_state(state, cut)
            ids += [cid] * len(kept)
            fields += list(kept)
            values += list(kept.values())
        return pd.DataFrame({"customer_id": ids, "field": fields, "value": values})

    return (
        events.groupBy(_bucket(sf.col("customer_id"), buckets))
        .cogroup(customers.groupBy(_bucket(sf.col("customer_id"), buckets)))
        .applyInPandas(states_of_bucket, STATE_SCHEMA)
    )


def _bucket(customer_id: Column, buckets: int) -> Column:
    from pyspark.sql import functions as sf

    return sf.pmod(sf.xxhash64(customer_id), sf.lit(buckets)).alias("bucket")


def _default_buckets(spark: SparkSession, customers: DataFrame) -> int:
    wanted = math.ceil(customers.count() / CUSTOMERS_PER_BUCKET)
    return max(1, wanted, spark.sparkContext.defaultParallelism)


def _check_as_of(as_of: dt.datetime) -> float:
    if as_of.tzinfo is None:
        raise ValueError(f"as_of {as_of} has no time zone: pass an aware datetime (e.g. tz=UTC)")
    return as_of.timestamp()


def _micros(moment: dt.datetime) -> int:
    return (moment - dt.datetime(1970, 1, 1, tzinfo=dt.UTC)) // dt.timedelta(microseconds=1)


def _known_before(
    customers: DataFrame, events: DataFrame, as_of: dt.datetime
) -> tuple[DataFrame, DataFrame]:
    """Customers created and events that happened strictly before ``as_of``: the
    columns the definitions read, times as UTC epoch microseconds, birth dates as dates."""
    from pyspark.sql import functions as sf

    _require_columns(customers, CUSTOMERS, CUSTOMER_COLUMNS)
    _require_columns(events, EVENTS, [c for c in EVENT_COLUMNS if c != "properties"])
    if "properties" not in events.columns:
        events = events.withColumn("properties", sf.lit(None).cast("string"))
    for column in OPTIONAL_CUSTOMER_COLUMNS:
        if column not in customers.columns:
            customers = customers.withColumn(column, sf.lit(None).cast("string"))
    events = events.select(
        *(
            _epoch_micros(events, c, EVENTS.name) if c == "timestamp" else sf.col(c)
            for c in EVENT_COLUMNS
        )
    )
    customers = customers.select(
        *(
            _epoch_micros(customers, c, CUSTOMERS.name)
            if c in CUSTOMER_TIMES
            else _date(customers, c, CUSTOMERS.name)
            if c == "birth_date"
            else sf.col(c)
            for c in (*CUSTOMER_COLUMNS, *OPTIONAL_CUSTOMER_COLUMNS)
        )
    )
    limit = _micros(as_of)
    return customers.where(sf.col("created_at") < limit), events.where(sf.col("timestamp") < limit)


def _require_columns(frame: DataFrame, schema: TableSchema, names: Sequence[str]) -> None:
    missing = [n for n in names if n not in frame.columns]
    if missing:
        raise DataContractError(
            [Problem(schema.name, n, "column missing (the profiles need it)") for n in missing]
        )


def _epoch_micros(frame: DataFrame, name: str, table: str) -> Column:
    from pyspark.sql import functions as sf
    from pyspark.sql import types

    kind = frame.schema[name].dataType
    col = sf.col(f"`{name}`")
    if isinstance(kind, types.TimestampType):
        micros = sf.unix_micros(col)
    elif isinstance(kind, types.TimestampNTZType):  # wall-clock time meaning UTC
        micros = sf.expr(
            f"timestampdiff(MICROSECOND, TIMESTAMP_NTZ'1970-01-01 00:00:00', `{name}`)"
        )
    elif isinstance(kind, types.LongType):  # nanoseconds (spark.sql.legacy.parquet.nanosAsLong)
        micros = sf.expr(f"(`{name}` - pmod(`{name}`, 1000)) div 1000")
    else:
        raise DataContractError(
            [Problem(table, name, f"not a timestamp column (Spark type {kind.simpleString()})")]
        )
    return micros.alias(name)


def _date(frame: DataFrame, name: str, table: str) -> Column:
    from pyspark.sql import functions as sf
    from pyspark.sql import types

    kind = frame.schema[name].dataType
    if isinstance(kind, types.LongType):  # nanoseconds (spark.sql.legacy.parquet.nanosAsLong)
        day = 86_400 * 10**9
        return sf.expr(f"date_from_unix_date((`{name}` - pmod(`{name}`, {day})) div {day})").alias(
            name
        )
    # an instant (TimestampType) gives its date in the session time zone
    dated = (types.DateType, types.TimestampNTZType, types.TimestampType, types.StringType)
    if isinstance(kind, dated):
        return sf.to_date(sf.col(f"`{name}`")).alias(name)
    raise DataContractError(
        [Problem(table, name, f"not a date column (Spark type {kind.simpleString()})")]
    )


def _state_dicts(rows: pd.DataFrame) -> dict[str, State]:
    """Long ``(customer_id, field, value)`` rows as one state dict per customer."""
    states: dict[str, State] = {}
    columns = (rows["customer_id"].tolist(), rows["field"].tolist(), rows["value"].tolist())
    for cid, field, value in zip(*columns, strict=True):
        states.setdefault(cid, {})[field] = value
    return states


def _with_times(frame: pd.DataFrame, names: Sequence[str]) -> pd.DataFrame:
    """``frame`` with epoch-microsecond columns turned back into UTC timestamps."""
    return frame.assign(**{n: pd.to_datetime(frame[n], unit="us", utc=True) for n in names})


def _profile_frame(rows: list[dict[str, Any]]) -> pd.DataFrame:
    """Profile rows as a frame Arrow converts without guessing (nullable integers
    stay integers, an empty bucket keeps its columns)."""
    columns = profile_columns()
    frame = pd.DataFrame(rows, columns=[name for name, _ in columns])
    for name, kind in columns:
        if kind == "bigint":
            frame[name] = pd.array(frame[name].tolist(), dtype="Int64")
    return frame


if __name__ == "__main__":
    main()
