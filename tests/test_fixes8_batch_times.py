"""The decisions file's instants (``decided_at``, ``send_at_utc``, ``offer_expires_at``)
are one type: UTC microseconds, in Parquet and as CSV text, on one machine and on Spark,
whatever the file holds (a file where no offer was chosen wrote ``offer_expires_at`` in
milliseconds, the others in microseconds). Read back with pandas and with pyarrow, they
are the API's instants for the same customers and moment.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd
import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq
import pytest
import typer
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from cli.decide import decide
from features.online.profiles import OnlineProfiles
from features.online.redis_store import RedisOnlineStore
from features.profile_table import profiles_frame
from serving.app import create_app
from serving.batch_decisions import TIME_COLUMNS
from tests.api_support import ApiWorld, build_world
from tests.redis_servers import RedisServer, free_port, redis_server_binary
from tests.test_spark import spark  # noqa: F401  (the local session fixture)

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

SEED = 8
#: An offer with a time limit for everyone, and a message without one.
OFFER_CATALOG = """
actions:
  - id: gift
    type: offer
    channels: [email]
    value: 50
    timing: asap
    offer: {id: gift10, kind: fixed_discount, value: 10, cost: 1, expires_after_hours: 36}
  - id: hello
    type: content
    channels: [email]
    value: 2
  - {id: nothing, type: do_nothing}
"""
#: No offer at all: ``offer_expires_at`` holds no value in the whole file.
PLAIN_CATALOG = """
actions:
  - id: hello
    type: content
    channels: [email]
    value: 2
  - {id: nothing, type: do_nothing}
"""
MICROS_UTC = pa.timestamp("us", tz="UTC")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    binary = redis_server_binary()
    if binary is None:
        pytest.skip("no redis-server binary")
    running = RedisServer(binary, free_port(), tmp_path_factory.mktemp("redis")).start()
    yield running
    running.stop()


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory, server: RedisServer) -> ApiWorld:
    return build_world(
        tmp_path_factory.mktemp("fixes8"), customers=120, days=30, client=server.client()
    )


def _cli() -> typer.Typer:
    cli = typer.Typer()
    cli.command("decide")(decide)
    cli.command("unused")(lambda: None)  # a group, so that 'decide' is a subcommand
    return cli


def _customers(world: ApiWorld, n: int) -> list[str]:
    c = world.data.customers
    ok = c[c["consent_email"].fillna(False)]
    return sorted(str(x) for x in ok["customer_id"].iloc[:n])


def _audience(world: ApiWorld, customers: list[str], now: dt.datetime, path: Path) -> Path:
    online = OnlineProfiles(
        RedisOnlineStore(world.client, prefix=world.prefix), world.data.products
    )
    found = [p for p in online.profiles(customers, now) if p is not None]
    assert len(found) == len(customers)
    profiles_frame(found).to_parquet(path, index=False)
    return path


def _decide(
    world: ApiWorld, catalog: Path, audience: Path, now: dt.datetime, out: Path, *extra: str
) -> None:
    args = [
        "decide",
        "--audience",
        str(audience),
        "--catalog",
        str(catalog),
        "--now",
        now.isoformat(),
        "--seed",
        str(SEED),
        "--workers",
        "1",
        "--tracking-uri",
        f"sqlite:///{world.root / 'mlflow.db'}",
        "--products",
        str(world.products_path),
        "--redis-prefix",
        world.prefix,
        "--out",
        str(out),
        *extra,
    ]
    result = CliRunner().invoke(_cli(), args)
    assert result.exit_code == 0, result.output


def _instants(table: pd.DataFrame, customer: str) -> list[tuple[Any, ...]]:
    """``(decided_at, action, send_at_utc, offer_expires_at)`` per row, as aware datetimes."""

    def moment(value: Any) -> dt.datetime | None:
        if value is None or value is pd.NaT or (isinstance(value, float) and value != value):
            return None
        return pd.Timestamp(value).to_pydatetime()

    rows = table[table["customer_id"] == customer].sort_values("rank")
    return [
        (moment(r.decided_at), r.action_id, moment(r.send_at_utc), moment(r.offer_expires_at))
        for r in rows.itertuples()
    ]


def _served(answer: dict[str, Any]) -> list[tuple[Any, ...]]:
    decided = dt.datetime.fromisoformat(answer["decided_at"])
    return [
        (
            decided,
            a["action_id"],
            None if a["send_at"] is None else dt.datetime.fromisoformat(a["send_at"]),
            None
            if a["offer_expires_at"] is None
            else dt.datetime.fromisoformat(a["offer_expires_at"]),
        )
        for a in answer["actions"]
    ]


def _readings(path: Path) -> dict[str, pd.DataFrame]:
    """The file read by pandas and by pyarrow (the CSV's instants parsed from their text)."""
    if path.suffix == ".parquet":
        return {"pandas": pd.read_parquet(path), "pyarrow": pq.read_table(path).to_pandas()}
    by_pandas = pd.read_csv(path)
    for name in TIME_COLUMNS:
        by_pandas[name] = pd.to_datetime(by_pandas[name], utc=True)
    return {"pandas": by_pandas, "pyarrow": pa_csv.read_csv(path).to_pandas()}


def _time_types(path: Path) -> dict[str, pa.DataType]:
    schema = pq.read_schema(path) if path.suffix == ".parquet" else pa_csv.read_csv(path).schema
    return {name: schema.field(name).type for name in TIME_COLUMNS}


def test_the_files_instants_are_the_apis_in_one_unit_and_zone(
    world: ApiWorld, server: RedisServer, tmp_path: Path
) -> None:
    now = world.at(9.25)  # 09:15 UTC
    customers = _customers(world, 12)
    audience = _audience(world, customers, now, tmp_path / "audience.parquet")
    catalog = tmp_path / "catalog.yaml"
    catalog.write_text(OFFER_CATALOG)
    outs = [tmp_path / "decisions.parquet", tmp_path / "decisions.csv"]
    for out in outs:
        _decide(world, catalog, audience, now, out)

    app = create_app(
        world.settings(response_stats=False, catalog_path=catalog),
        client=world.client,
        registry=world.registry,
    )
    answers: dict[str, dict[str, Any]] = {}
    with TestClient(app) as api:
        for customer in customers:
            response = api.post(
                "/v1/decisions",
                json={"customer_id": customer, "context": {"timestamp": now.isoformat()}},
                headers={**world.headers(), "Idempotency-Key": f"{SEED}:{customer}"},
            )
            assert response.status_code == 200, response.text
            answers[customer] = response.json()
    offers = [a for answer in answers.values() for a in answer["actions"] if a["offer_id"]]
    assert offers, "the comparison covers a time-limited offer"
    assert all(a["offer_expires_at"] is not None for a in offers)

    for out in outs:
        types = _time_types(out)
        assert len(set(types.values())) == 1, (out.name, types)
        [kind] = set(types.values())
        assert pa.types.is_timestamp(kind) and kind.tz == "UTC", (out.name, kind)
        if out.suffix == ".parquet":
            assert kind == MICROS_UTC
        for reader, table in _readings(out).items():
            for name in TIME_COLUMNS:
                assert str(table[name].dtype).endswith(", UTC]"), (out.name, reader, name)
            for customer in customers:
                assert _instants(table, customer) == _served(answers[customer]), (
                    out.name,
                    reader,
                    customer,
                )


def test_a_file_without_an_offer_keeps_microseconds(
    world: ApiWorld, server: RedisServer, tmp_path: Path
) -> None:
    """The column that holds no value is the one that changed unit."""
    now = world.at(9.25)
    customers = _customers(world, 6)
    audience = _audience(world, customers, now, tmp_path / "audience.parquet")
    catalog = tmp_path / "catalog.yaml"
    catalog.write_text(PLAIN_CATALOG)
    out = tmp_path / "decisions.parquet"
    _decide(world, catalog, audience, now, out)
    table = pd.read_parquet(out)
    assert table["offer_expires_at"].isna().all()
    assert _time_types(out) == {name: MICROS_UTC for name in TIME_COLUMNS}
    assert {str(table[name].dtype) for name in TIME_COLUMNS} == {"datetime64[us, UTC]"}


@pytest.mark.integration
@pytest.mark.filterwarnings("ignore:PySpark does not yet fully support pandas:FutureWarning")
@pytest.mark.filterwarnings("ignore:The copy keyword is deprecated")
def test_spark_writes_the_same_instants_in_the_same_unit(
    spark: SparkSession,  # noqa: F811
    world: ApiWorld,
    server: RedisServer,
    tmp_path: Path,
) -> None:
    """On Spark (a session in another time zone than UTC) the folder's instants are the
    local run's, of the same type, with and without an offer in the file."""
    now = world.at(9.25)
    customers = _customers(world, 12)
    audience = _audience(world, customers, now, tmp_path / "audience.parquet")
    for text in (OFFER_CATALOG, PLAIN_CATALOG):
        catalog = tmp_path / "catalog.yaml"
        catalog.write_text(text)
        here, there = tmp_path / "here.parquet", tmp_path / "there"
        _decide(world, catalog, audience, now, here)
        _decide(world, catalog, audience, now, there, "--spark")
        assert _time_types(here) == {name: MICROS_UTC for name in TIME_COLUMNS}
        assert pq.read_table(there).schema.field("offer_expires_at").type == MICROS_UTC
        local, remote = pd.read_parquet(here), pd.read_parquet(there)
        for customer in customers:
            assert _instants(remote, customer) == _instants(local, customer), customer
