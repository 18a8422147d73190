"""Batch decisions on Spark: the chunks of :mod:`serving.batch_decisions`, one task each.

For audiences beyond one machine. Nothing here decides: each customer's chunk
is the same stable hash of their id as on one machine
(:func:`~serving.batch_decisions.chunk_numbers`, run by Spark in a pandas UDF),
Spark counts the chunks' sizes, the driver splits today's budgets over them
(:func:`~serving.batch_decisions.chunk_shares`), and each chunk's customers
meet in one pandas frame (``groupBy`` + ``applyInPandas``) where
:class:`~serving.batch_decisions.BatchJob` decides them in customer-id order
with their chunk's share, exactly as :func:`~serving.batch_decisions.decide_audience`
does. So the Spark run gives every customer the decision of the local run
(tested in local mode), and budgets hold across partitions.

The job (pipeline, champions and recommender, statistics, action history, stock
and popularity) is shipped to the executors with the task, so the action history
of ``--redis-url`` must fit in the driver's memory. Times enter the pandas side as
epoch microseconds and leave it as UTC instants (Spark hands timestamps to pandas
as session-local wall-clock times). pyspark is imported lazily: it is the optional
extra ``nba[spark]``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pandas as pd

from nba.budgets import UsageCounts
from nba.catalog import Catalog
from serving.batch_decisions import (
    TIME_COLUMNS,
    TIME_DTYPE,
    AudienceError,
    BatchJob,
    chunk_count,
    chunk_numbers,
    chunk_shares,
    read_audience,
)

if TYPE_CHECKING:
    from pyspark.sql import DataFrame

#: Spark type of each column of :data:`~serving.batch_decisions.DECISION_COLUMNS`.
DECISION_SCHEMA = (
    "customer_id string, decision_id string, policy string, arm string, decided_at timestamp, "
    "rank bigint, action_id string, action_type string, channel string, "
    "send_at_utc timestamp, send_at_local string, timezone string, offer_id string, "
    "offer_expires_at timestamp, products array<string>, template string, "
    "variant_id string, priority double, propensity double, explored boolean, "
    "eligible_actions bigint, reasons string"
)
_CHUNK = "__nba_chunk"


def decide_audience_spark(
    audience: DataFrame, job: BatchJob, catalog: Catalog, usage: UsageCounts | None = None
) -> DataFrame:
    """Decide for every customer of ``audience`` (profile rows, as ``nba features build``
    writes them) with ``job``; one row per chosen action (columns of
    :data:`DECISION_SCHEMA`), the same rows as
    :func:`~serving.batch_decisions.decide_audience` gives for the same audience.

    ``catalog`` and ``usage`` (today's counts) set each chunk's budget share.
    Raises :class:`~serving.batch_decisions.AudienceError` for a missing
    ``customer_id`` column; a bad row fails its task with an ``AudienceError``
    naming the chunk, the customer and the field.
    """
    from pyspark.sql import functions as sf
    from pyspark.sql import types
    from pyspark.sql.functions import pandas_udf

    if "customer_id" not in audience.columns:
        raise AudienceError(
            ["column 'customer_id' is missing (profiles from 'nba features build')"]
        )
    if "as_of" in audience.columns and isinstance(
        audience.schema["as_of"].dataType, types.TimestampType | types.TimestampNTZType
    ):
        audience = audience.withColumn("as_of", sf.unix_micros(sf.col("as_of")))
    chunks = chunk_count(audience.count())

    @pandas_udf("bigint")  # type: ignore[call-overload]
    def chunk_of(ids: pd.Series) -> pd.Series:
        return pd.Series(chunk_numbers(ids, chunks))

    keyed = audience.withColumn(_CHUNK, chunk_of(sf.col("customer_id")))
    sizes = {int(r[_CHUNK]): int(r["count"]) for r in keyed.groupBy(_CHUNK).count().collect()}
    shares = chunk_shares(catalog, usage or UsageCounts(), sizes)

    def decide_chunk(key: tuple[int], rows: pd.DataFrame) -> pd.DataFrame:
        k = int(key[0])
        rows = rows.drop(columns=_CHUNK).sort_values("customer_id", ignore_index=True)
        if "as_of" in rows.columns and rows["as_of"].dtype.kind in "if":
            rows["as_of"] = pd.to_datetime(rows["as_of"], unit="us", utc=True)
        try:
            profiles = read_audience(rows)
        except AudienceError as error:
            raise AudienceError([f"chunk {k}: {p}" for p in error.problems]) from None
        table = job.decide(profiles, shares[k]).drop(columns="position")
        for name in TIME_COLUMNS:  # Arrow wants one unit, the local run's
            table[name] = table[name].astype(TIME_DTYPE)
        return table

    return keyed.groupBy(_CHUNK).applyInPandas(decide_chunk, DECISION_SCHEMA)


def write_decisions(decisions: DataFrame, out: str) -> None:
    """Write ``decisions`` as Parquet to ``out`` (overwritten), instants as int64 UTC
    microseconds, which pandas and pyarrow read back as aware timestamps."""
    spark = decisions.sparkSession
    setting = "spark.sql.parquet.outputTimestampType"
    previous = spark.conf.get(setting, None)
    spark.conf.set(setting, "TIMESTAMP_MICROS")
    try:
        decisions.write.mode("overwrite").parquet(out)
    finally:
        if previous is None:
            spark.conf.unset(setting)
        else:
            spark.conf.set(setting, previous)
