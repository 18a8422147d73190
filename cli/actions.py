"""``nba actions stats``: what the engine has learned of each action online.

Reads the response statistics the API keeps in its Redis
(:mod:`features.online.response_stats`) and prints, per action (or per action,
channel and segment with ``--detail``): decisions sent, responses (clicks or
purchases) and purchases attributed, the response rate with its 90 % interval,
the evidence (effective decisions: counts decay with the half-life) and the
calibration (observed / scorer-predicted responses, the posterior mean the
engine explores with). ``cli/main.py`` registers it.
"""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from cli.support import console as _console
from cli.support import fail as _fail
from cli.support import parse_moment

actions_app = typer.Typer(help="What the engine learned of each action.", no_args_is_help=True)


@actions_app.command("stats")
def stats(
    redis_url: Annotated[str, typer.Option(help="The API's Redis (redis://host:port/db).")],
    redis_prefix: Annotated[str, typer.Option(help="The API's Redis key prefix.")] = "nba",
    at: Annotated[
        str | None, typer.Option(help="Read the statistics as of this time [default: now].")
    ] = None,
    half_life_days: Annotated[
        float, typer.Option(help="The half-life the API runs with (NBA_STATS_HALF_LIFE_DAYS).")
    ] = 14.0,
    detail: Annotated[bool, typer.Option(help="One row per action, channel and segment.")] = False,
) -> None:
    """Per action: decisions, responses, rate with its interval, evidence."""
    import datetime as dt

    from features.online.connect import connect_redis
    from features.online.response_stats import RedisResponseStats, ResponseCounts

    if half_life_days <= 0:
        raise _fail(f"--half-life-days: must be positive, got {half_life_days}")
    when = dt.datetime.now(dt.UTC) if at is None else parse_moment(at, "--at")
    try:
        client = connect_redis(redis_url)
        table = RedisResponseStats(client, redis_prefix, half_life_days=half_life_days).table(when)
    except Exception as error:  # a wrong URL is the user's mistake: say so, no traceback
        raise _fail(f"--redis-url: cannot read the statistics from {redis_url}: {error}") from None
    rows: list[tuple[tuple[str, ...], ResponseCounts]]
    if detail:
        rows = [
            ((k.action_id, k.channel, k.segment), c)
            for k, c in sorted(table.counts.items(), key=lambda kv: -kv[1].exposures)
        ]
    else:
        rows = [
            ((action,), c)
            for action, c in sorted(table.by_action().items(), key=lambda kv: -kv[1].exposures)
        ]
    out = Table(
        title=f"response statistics as of {when.isoformat()} (half-life {half_life_days:g} d)"
    )
    for name in ("action", "channel", "segment")[: len(rows[0][0]) if rows else 1]:
        out.add_column(name)
    for name in ("decisions", "responses", "purchases", "rate", "90 % interval", "calibration"):
        out.add_column(name, justify="right")
    for labels, c in rows:
        low, high = c.rate_interval()
        out.add_row(
            *labels,
            f"{c.exposures:,.1f}",
            f"{c.responses:,.1f}",
            f"{c.purchases:,.1f}",
            f"{c.rate:.3f}",
            f"{low:.3f}-{high:.3f}",
            f"{c.posterior().mean:.2f}",
        )
    console = _console()
    if not rows:
        console.print("no statistics yet: the API has sent no decision with this prefix")
        return
    console.print(out)
    console.print("decisions and responses decay with the half-life: they are the evidence")
