"""``nba actions stats``: what the engine has learned of each action online;
``nba actions reach``: how many customers of a profile table each action can reach.

Reads the response statistics the API keeps in its Redis
(:mod:`features.online.response_stats`) and prints, per action (or per action,
channel and segment with ``--detail``): decisions sent, responses (clicks or
purchases) and purchases attributed, the response rate with its 90 % interval,
the evidence (effective decisions: counts decay with the half-life) and the
calibration (observed / scorer-predicted responses, the posterior mean the
engine explores with). ``reach`` counts, with :func:`nba.reach.count_reach`, the
customers for whom each action's eligibility (and each wording variant) holds at
some moment, and warns about those that reach nobody. ``cli/main.py`` registers them.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from cli.support import api_response_stats, parse_moment
from cli.support import console as _console
from cli.support import fail as _fail

if TYPE_CHECKING:
    from nba.calibration import PurchaseScale

actions_app = typer.Typer(
    help="What the engine learned of each action, and whom each action can reach.",
    no_args_is_help=True,
)


@actions_app.command("stats")
def stats(
    redis_url: Annotated[str, typer.Option(help="The API's Redis (redis://host:port/db).")],
    redis_prefix: Annotated[
        str, typer.Option(envvar="NBA_REDIS_PREFIX", help="The API's Redis key prefix.")
    ] = "nba",
    at: Annotated[
        str | None, typer.Option(help="Read the statistics as of this time [default: now].")
    ] = None,
    half_life_days: Annotated[
        float | None,
        typer.Option(
            help="The half-life the API runs with [default: NBA_STATS_HALF_LIFE_DAYS, as the "
            "API reads it, else 14]."
        ),
    ] = None,
    detail: Annotated[bool, typer.Option(help="One row per action, channel and segment.")] = False,
) -> None:
    """Per action: decisions, responses, rate with its interval, evidence."""
    import datetime as dt

    from features.online.connect import connect_redis
    from features.online.response_stats import ResponseCounts
    from nba.calibration import PurchaseScale

    if half_life_days is not None and half_life_days <= 0:
        raise _fail(f"--half-life-days: must be positive, got {half_life_days}")
    when = dt.datetime.now(dt.UTC) if at is None else parse_moment(at, "--at")
    try:
        reader = api_response_stats(connect_redis(redis_url), redis_prefix, half_life_days)
        table = reader.table(when)
    except typer.Exit:  # a malformed NBA_ setting, already said
        raise
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
        title=f"response statistics as of {when.isoformat()} "
        f"(half-life {reader.half_life_days:g} d, model {reader.model})"
    )
    for name in ("action", "channel", "segment")[: len(rows[0][0]) if rows else 1]:
        out.add_column(name)
    columns = ("decisions", "responses", "purchases", "rate", "90 % interval", "calibration")
    for name in (*columns, "purchase scale (90 %)", "margin", "margin / stated"):
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
            _purchase_scale(PurchaseScale(c.purchases, c.expected)) if c.valued > 0 else "-",
            f"{c.margin:,.1f}",
            f"{c.value_ratio:.2f}",
        )
    console = _console()
    if not rows:
        console.print("no statistics yet: the API has sent no decision with this prefix")
        return
    console.print(out)
    console.print("decisions and responses decay with the half-life: they are the evidence")


def _purchase_scale(scale: PurchaseScale) -> str:
    """The purchase scale's mean and 90 % interval."""
    low, high = scale.interval()
    return f"{scale.mean:.2f} ({low:.2f}-{high:.2f})"


@actions_app.command("reach")
def reach(
    profiles: Annotated[
        Path, typer.Option(help="Profiles Parquet file, as written by 'nba features build'.")
    ],
    catalog: Annotated[
        Path | None,
        typer.Option(help="Action catalog YAML [default: the example retailer's catalog]."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
) -> None:
    """Per action and variant: customers for whom the eligibility holds at some moment."""
    from cli.decide import load_audience, load_catalog
    from nba.reach import count_reach
    from serving.batch_decisions import AudienceError, read_audience

    rules = load_catalog(catalog)
    frame = load_audience(profiles)
    try:
        customers = read_audience(frame)
    except AudienceError as error:
        raise _fail(f"{profiles}: {error}") from None
    report = count_reach(rules, customers)
    console = _console()
    if as_json:
        document = {
            "customers": report.customers,
            "actions": [
                {
                    "action": a.action_id,
                    "eligibility": a.eligibility,
                    "customers": a.customers,
                    "share": report.share(a.customers),
                    "variants": [
                        {
                            "variant": v.variant_id,
                            "customers": v.customers,
                            "share": report.share(v.customers),
                        }
                        for v in a.variants
                    ],
                }
                for a in report.actions
            ],
            "warnings": list(report.warnings()),
        }
        console.print_json(json.dumps(document))
        return
    out = Table(title=f"reach of each action over {report.customers:,} profiles ({profiles})")
    for name in ("action", "variant"):
        out.add_column(name)
    for name in ("customers", "share"):
        out.add_column(name, justify="right")
    for a in report.actions:
        out.add_row(a.action_id, "", f"{a.customers:,}", f"{report.share(a.customers):.1%}")
        for v in a.variants:
            out.add_row("", v.variant_id, f"{v.customers:,}", f"{report.share(v.customers):.1%}")
    console.print(out)
    console.print(
        "eligibility and variants at some hour, month, session and send history; "
        "consents, contact policy and validity dates not counted"
    )
    for warning in report.warnings():
        console.print(f"[bold yellow]warning:[/] {warning}", soft_wrap=True)
