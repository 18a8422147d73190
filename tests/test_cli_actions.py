"""``nba actions stats`` reads what the API learned from its Redis."""

from __future__ import annotations

import datetime as dt
import os
import uuid

import pytest
from typer.testing import CliRunner

from cli.main import app
from features.online.connect import connect_redis
from features.online.response_stats import Exposure, Outcome, RedisResponseStats

NOW = dt.datetime(2026, 3, 6, 9, tzinfo=dt.UTC)


def test_actions_stats_prints_each_action_with_its_rate_and_interval() -> None:
    url = os.environ.get("NBA_TEST_REDIS_URL")
    if not url:
        pytest.skip("NBA_TEST_REDIS_URL not set (CI sets it to a Debian redis-server)")
    prefix = f"cli{uuid.uuid4().hex[:8]}"
    stats = RedisResponseStats(connect_redis(url), prefix)
    for i in range(10):
        stats.expose(Exposure(f"d{i}", "C1", NOW, "cart_reminder", "email", "active", 0.2))
    stats.attribute([Outcome(f"e{i}", "C1", NOW, "cr", f"d{i}") for i in range(3)])
    runner = CliRunner()
    args = ["actions", "stats", "--redis-url", url, "--redis-prefix", prefix]
    result = runner.invoke(app, [*args, "--at", NOW.isoformat()])
    assert result.exit_code == 0, result.output
    assert "cart_reminder" in result.output and "0.300" in result.output  # 3 of 10
    detail = runner.invoke(app, [*args, "--at", NOW.isoformat(), "--detail"])
    assert detail.exit_code == 0 and "active" in detail.output
    empty = runner.invoke(app, ["actions", "stats", "--redis-url", url, "--redis-prefix", "none"])
    assert empty.exit_code == 0 and "no statistics yet" in empty.output
    bad = runner.invoke(app, ["actions", "stats", "--redis-url", "redis://127.0.0.1:1/0"])
    assert bad.exit_code == 2 and "--redis-url" in bad.output
