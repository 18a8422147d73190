"""Seasonal verdicts computed once a day outside the request path, stored and read back.

The Bayesian seasonal test costs a few hundred microseconds; the verdict of a day is
written for every customer by a daily job (``nba features verdicts``, and the batch
load for its own day) and read with the customer's state by the API. A stored verdict
must be used only for the inputs and the day it was computed from: anything else
(the next day, one more shopping day, other store priors) runs the test again.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import uuid
from pathlib import Path

import pytest

from features.batch import build_profiles
from features.dataset import RetailDataset
from features.finalise import CustomerStatic, FeaturePriors
from features.online.contact_state import RedisContactState
from features.online.profiles import OnlineProfiles
from features.online.redis_store import RedisOnlineStore
from features.online.store import OnlineStore
from features.seasonality import (
    flat_season_prior,
    seasonal_months,
    shopping_months,
    stored_verdict,
    verdict_digest,
    verdict_inputs,
)
from tests.api_support import redis_client
from tests.conftest import WriteDataset
from tests.test_online_store import (  # noqa: F401 - fixtures
    NewStore,
    embedded_redis,
    new_store,
    system_redis,
)
from tests.test_scenarios import customer, seasonal_shopper

DAY = 86_400.0
FLAT_YEAR = (1.0,) * 12
_EPOCH = dt.date(1970, 1, 1)


def april_and_october() -> tuple[dict[str, float], float, float]:
    """Two years of a customer who shops ten days in April and October, one day in the
    other months: their ``ad`` fields, first seen and the moment read (2026-01-01)."""
    start = dt.date(2024, 1, 1)
    days = [start + dt.timedelta(days=d) for d in range(731)]
    shopped = [d for d in days if d.day <= (10 if d.month in (4, 10) else 1)]
    ad = {str((d - _EPOCH).days): 1.0 for d in shopped}
    return ad, 1704067200.0, 1767225600.0 + 9 * 3600


def test_a_stored_verdict_is_used_only_for_its_inputs_and_day() -> None:
    ad, first_seen, now = april_and_october()
    inputs = verdict_inputs(shopping_months(ad, {}), first_seen, now, (FLAT_YEAR, None))
    assert inputs is not None
    assert stored_verdict(inputs) == f"{verdict_digest(inputs)}:4,10"
    assert seasonal_months(ad, first_seen, now, FLAT_YEAR, stored=stored_verdict(inputs)) == (
        4,
        10,
    )
    # a verdict stored for these inputs is what is read (here a forged one: July)
    forged = f"{verdict_digest(inputs)}:7"
    assert seasonal_months(ad, first_seen, now, FLAT_YEAR, stored=forged) == (7,)
    # later the same UTC day: still the day's verdict
    assert seasonal_months(ad, first_seen, now + 3600, FLAT_YEAR, stored=forged) == (7,)
    # anything else runs the test: the next day, one more shopping day, other priors
    assert seasonal_months(ad, first_seen, now + DAY, FLAT_YEAR, stored=forged) == (4, 10)
    more = {**ad, str(int(now // DAY)): 1.0}
    assert seasonal_months(more, first_seen, now, FLAT_YEAR, stored=forged) == (4, 10)
    busy_april = tuple(2.0 if m == 3 else 1.0 for m in range(12))
    assert seasonal_months(ad, first_seen, now, busy_april, stored=forged) != (7,)
    other_prior = (0.5, *(p * 2.5 for p in flat_season_prior()[1:]))
    assert seasonal_months(ad, first_seen, now, FLAT_YEAR, other_prior, stored=forged) != (7,)
    assert seasonal_months(ad, first_seen, now, FLAT_YEAR, stored="not a verdict") == (4, 10)
    assert verdict_inputs(shopping_months({}, {}), first_seen, now, (FLAT_YEAR, None)) is None


def test_stores_keep_verdicts_list_their_customers_and_forget_them(
    new_store: NewStore,  # noqa: F811 - the fixture
) -> None:
    store: OnlineStore = new_store()
    store.upsert_static("C1", CustomerStatic(timezone="Europe/Paris"))
    store.upsert_static("C2", CustomerStatic())
    store.write_verdicts({"C1": "abc:4,10"})
    one, two = store.read(["C1", "C2"])
    assert one is not None and one.season == "abc:4,10"
    assert two is not None and two.season is None
    assert sorted(store.customer_ids()) == ["C1", "C2"]
    assert store.delete("C1")
    store.upsert_static("C1", CustomerStatic())
    [again] = store.read(["C1"])
    assert again is not None and again.season is None


def test_the_daily_verdicts_reach_the_decision_read(base: RetailDataset, tmp_path: Path) -> None:
    """The job stores the verdict the test gives; the API's read for a decision returns it
    with the state, and the profile takes its months from it."""
    now = dt.datetime(2026, 3, 5, 9, 0, tzinfo=dt.UTC)
    people = customer(base, created_at="2024-01-10T09:00:00Z", consents=("email",))
    data = dataclasses.replace(base, customers=people, events=seasonal_shopper())
    store = RedisOnlineStore(redis_client(tmp_path), prefix=f"sv{uuid.uuid4().hex[:8]}")
    online = OnlineProfiles(store, base.products)
    build = build_profiles(data, as_of=now - dt.timedelta(hours=1), priors=FeaturePriors())
    online.materialise(build, season_verdicts=True)  # the build's day: today
    [stored] = store.read(["C1"])
    assert stored is not None and stored.season is not None
    assert stored.season.endswith(":4,10")
    got = online.from_stored("C1", stored, now)
    assert got is not None and got.seasonal_months == (4, 10)

    # the decision's read returns the stored verdict: a forged one for the same inputs
    # shows that the profile takes it instead of testing again
    digest = stored.season.partition(":")[0]
    store.write_verdicts({"C1": f"{digest}:7"})
    read = RedisContactState(store).read_for_decision("C1", now)
    profile = online.from_stored("C1", read.stored, now)
    assert profile is not None and profile.seasonal_months == (7,)
    # a day later the stored verdict no longer applies
    later = now + dt.timedelta(days=1)
    tomorrow = online.from_stored("C1", read.stored, later)
    assert tomorrow is not None and tomorrow.seasonal_months == (4, 10)
    assert online.write_season_verdicts(later) == 1
    [kept] = store.read(["C1"])
    assert kept is not None and kept.season is not None and kept.season.endswith(":4,10")
    assert not kept.season.startswith(digest)  # tomorrow's inputs


@pytest.mark.parametrize("day", ["2026-03-05", None])
def test_the_verdicts_command_stores_a_days_verdicts(
    base: RetailDataset, tmp_path: Path, day: str | None
) -> None:
    from typer.testing import CliRunner

    from cli.main import app

    now = dt.datetime(2026, 3, 5, 9, 0, tzinfo=dt.UTC)
    people = customer(base, created_at="2024-01-10T09:00:00Z", consents=("email",))
    data = dataclasses.replace(base, customers=people, events=seasonal_shopper())
    from features.online.connect import connect_redis

    store = RedisOnlineStore(connect_redis(None, tmp_path))  # the command's embedded Redis
    online = OnlineProfiles(store, base.products)
    online.materialise(
        build_profiles(data, as_of=now - dt.timedelta(days=3), priors=FeaturePriors())
    )
    [before] = store.read(["C1"])
    assert before is not None and before.season is None  # a simulation's load: no verdicts
    args = ["features", "verdicts", "--data-dir", str(tmp_path)]
    if day is not None:
        args += ["--day", day]
    result = CliRunner().invoke(app, args, env={"NBA_REDIS_URL": None})
    assert result.exit_code == 0, result.output
    assert "1 seasonal verdicts" in result.output
    [stored] = store.read(["C1"])
    assert stored is not None and stored.season is not None and stored.season.endswith(":4,10")
    bad = CliRunner().invoke(app, [*args[:4], "--day", "5 March"], env={"NBA_REDIS_URL": None})
    assert bad.exit_code != 0 and "--day: not a day" in bad.output


def test_the_features_commands_write_under_the_apis_key_prefix(
    write_dataset: WriteDataset, tmp_path: Path
) -> None:
    """An API run with ``NBA_REDIS_PREFIX`` reads its keys under that prefix: the
    materialise and verdicts commands take the same variable (or ``--redis-prefix``) and
    write there, not under the default ``nba``, where that API would never look."""
    from typer.testing import CliRunner

    from cli.main import app
    from features.online.connect import connect_redis

    data = write_dataset()
    env = {"NBA_REDIS_URL": None, "NBA_REDIS_PREFIX": "shop1"}
    where = ["--data-dir", str(tmp_path)]
    made = CliRunner().invoke(
        app, ["features", "materialise", "--data", str(data), *where], env=env
    )
    assert made.exit_code == 0, made.output
    client = connect_redis(None, tmp_path)  # the commands' embedded Redis
    shop = RedisOnlineStore(client, prefix="shop1")
    assert sorted(shop.customer_ids()) and not list(RedisOnlineStore(client).customer_ids())
    verdicts = CliRunner().invoke(
        app, ["features", "verdicts", *where, "--redis-prefix", "shop2"], env=env
    )
    assert verdicts.exit_code == 0, verdicts.output
    assert "0 seasonal verdicts" in verdicts.output  # the option wins: nothing under shop2
    again = CliRunner().invoke(app, ["features", "verdicts", *where], env=env)
    assert again.exit_code == 0, again.output
    written = int(again.output.split(" seasonal verdicts")[0].split()[-1].replace(",", ""))
    assert 0 < written <= len(list(shop.customer_ids()))
    seasons = [s.season for s in shop.read(list(shop.customer_ids())) if s is not None]
    assert any(seasons), (written, seasons, again.output)
