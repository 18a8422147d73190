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


def test_actions_stats_shows_the_purchase_scale_beside_the_click_calibration() -> None:
    """Ten cart reminders predicted 0.2 purchases each, clicked four times and bought
    through once: the click calibration reads (2 + 4) / (2 + 2) = 1.50, the purchase scale
    (2 + 1) / (2 + 2) = 0.75 with its interval; a review request (no purchase goal: its
    value is not learned) shows none."""
    url = os.environ.get("NBA_TEST_REDIS_URL")
    if not url:
        pytest.skip("NBA_TEST_REDIS_URL not set (CI sets it to a Debian redis-server)")
    prefix = f"cli{uuid.uuid4().hex[:8]}"
    stats = RedisResponseStats(connect_redis(url), prefix)
    for i in range(10):
        stats.expose(Exposure(f"d{i}", "C1", NOW, "cart_reminder", "email", "active", 0.2, 27.0))
    stats.expose(Exposure("r0", "C2", NOW, "review_request", "email", "active", 0.1))
    stats.attribute([Outcome(f"c{i}", "C1", NOW, "cr", f"d{i}") for i in range(4)])
    stats.attribute([Outcome("p0", "C1", NOW, "pr", "d0", margin=9.0)])
    args = ["actions", "stats", "--redis-url", url, "--redis-prefix", prefix]
    result = CliRunner().invoke(app, [*args, "--at", NOW.isoformat()])
    assert result.exit_code == 0, result.output
    rows = {
        cells[1]: cells
        for line in result.output.splitlines()
        if len(cells := [cell.strip() for cell in line.split("│")]) > 8
    }
    assert rows["cart_reminder"][7:9] == ["1.50", "0.75 (0.20-1.57)"]
    assert rows["review_request"][8] == "-"


def test_actions_stats_reads_with_the_half_life_the_api_runs_with(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The half-life names the keys the evidence is kept under: an API run with
    ``NBA_STATS_HALF_LIFE_DAYS=3`` writes where a 14-day reader finds nothing. With the
    same variable set (and no option), the command reads what the API learned."""
    url = os.environ.get("NBA_TEST_REDIS_URL")
    if not url:
        pytest.skip("NBA_TEST_REDIS_URL not set (CI sets it to a Debian redis-server)")
    prefix = f"cli{uuid.uuid4().hex[:8]}"
    stats = RedisResponseStats(connect_redis(url), prefix, half_life_days=3.0, model="response")
    for i in range(8):
        stats.expose(Exposure(f"d{i}", "C1", NOW, "welcome", "push", "new", 0.1))
    args = [
        "actions",
        "stats",
        "--redis-url",
        url,
        "--redis-prefix",
        prefix,
        "--at",
        NOW.isoformat(),
    ]
    runner = CliRunner()
    default = runner.invoke(app, args)
    assert default.exit_code == 0 and "no statistics yet" in default.output
    monkeypatch.setenv("NBA_STATS_HALF_LIFE_DAYS", "3")
    monkeypatch.setenv("NBA_STATS_MODEL", "response")
    seen = runner.invoke(app, args)
    assert seen.exit_code == 0, seen.output
    assert "welcome" in seen.output and "half-life 3 d, model response" in seen.output
    monkeypatch.setenv("NBA_STATS_MODEL", "guess")
    bad = runner.invoke(app, args)
    assert bad.exit_code == 2 and "NBA_STATS_MODEL" in bad.output, bad.output
    assert "Traceback" not in bad.output
