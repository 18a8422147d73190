"""What every ``nba`` command shares: output, failing with a message, loading a data
set, reading a moment. Bad input ends a command with status 2 and a message that
says what is wrong and where, never a traceback."""

from __future__ import annotations

import datetime as dt
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

if TYPE_CHECKING:
    from features.dataset import RetailDataset
    from features.online.response_stats import RedisResponseStats

EXIT_BAD_INPUT = 2
EXIT_UNAVAILABLE = 3
#: Problems listed before "... and N more".
MAX_PROBLEMS_SHOWN = 40


#: Width of the output when it is not a terminal (a pipe, a file): wide enough that no
#: table column is cut and no line (an API key, a configuration line) is wrapped.
PIPED_WIDTH = 1_000


def console() -> Console:
    """Standard output: the terminal's width, or :data:`PIPED_WIDTH` when piped."""
    piped = not sys.stdout.isatty()
    return Console(stderr=False, highlight=False, width=PIPED_WIDTH if piped else None)


def fail(message: str, code: int = EXIT_BAD_INPUT) -> typer.Exit:
    """Print ``message`` as an error and return the exit to raise."""
    Console(stderr=True, highlight=False).print(f"[bold red]error:[/] {message}", soft_wrap=True)
    return typer.Exit(code)


def load_data(data: Path) -> RetailDataset:
    """The validated data set in ``data``, or exit 2 listing its problems."""
    from features.dataset import load_dataset
    from features.validation import DataContractError

    try:
        return load_dataset(data)
    except DataContractError as err:
        shown = err.problems[:MAX_PROBLEMS_SHOWN]
        lines = "\n".join(f"  - {p}" for p in shown)
        more = len(err.problems) - len(shown)
        tail = f"\n  ... and {more} more" if more > 0 else ""
        raise fail(f"{data} breaks the data contract; nothing was loaded:\n{lines}{tail}") from None


def parse_moment(value: str, option: str) -> dt.datetime:
    """The UTC moment ``value`` given to ``option``; it must carry its time zone."""
    import pandas as pd

    try:
        stamp = pd.Timestamp(value)
    except ValueError:
        raise fail(f"{option}: not a timestamp: {value!r} (e.g. 2026-03-06T09:00:00Z)") from None
    if stamp.tzinfo is None:
        raise fail(f"{option}: {value!r} has no time zone (add Z or an offset)")
    return stamp.tz_convert("UTC").to_pydatetime()


def progress_bar(console: Console) -> Progress:
    """A progress bar for long work (elapsed and remaining time)."""
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        TextColumn("{task.percentage:>3.0f}%"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=False,
    )


#: MLflow's notes on how every model is logged, said at WARNING each time: the wrapper is
#: pickled by CloudPickle (ours, loaded only by us), and a signature not inferred from
#: type hints (a DataFrame in, a DataFrame out).
_MLFLOW_LOGGING_NOTES = (
    "Passing a Python object as `python_model`",
    "Failed to infer model signature",
)


def _not_a_logging_note(record: Any) -> bool:
    return not str(record.msg).startswith(_MLFLOW_LOGGING_NOTES)


def quiet_libraries() -> None:
    """Keep third-party chatter out of the commands' output: MLflow's and Alembic's INFO
    lines (store creation, migrations), MLflow's hints and notes when a model is logged
    (integer schema columns, serialisation) and its artifact download progress bars.
    Their other warnings and errors still show."""
    import logging
    import os
    import warnings

    os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "WARNING")  # read when mlflow is imported
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    for name in ("mlflow", "alembic", "py4j"):
        logging.getLogger(name).setLevel(logging.WARNING)
    logging.getLogger("mlflow.pyfunc").addFilter(_not_a_logging_note)
    warnings.filterwarnings("ignore", category=UserWarning, module=r"mlflow(\.|$)")
    warnings.filterwarnings("ignore", category=FutureWarning, module=r"mlflow(\.|$)")


def api_response_stats(
    client: Any, prefix: str, half_life_days: float | None = None
) -> RedisResponseStats:
    """The response statistics the API learns in ``client``, read the way the API reads
    them: the half-life (which names the keys its evidence is kept under), the
    statistics model and the attribution window come from the same ``NBA_`` variables as
    ``nba serve``'s (``NBA_STATS_HALF_LIFE_DAYS``, ``NBA_STATS_MODEL``,
    ``NBA_ATTRIBUTION_WINDOW_HOURS``), so a batch run or a report next to the API sees
    what it sees; ``half_life_days`` overrides the environment's.

    A malformed variable ends the command with a message naming it.
    """
    from pydantic import ValidationError

    from features.online.response_stats import RedisResponseStats
    from serving.settings import Settings

    try:
        settings = Settings(api_keys=[], allow_anonymous=True)
    except ValidationError as error:
        problems = "; ".join(
            f"NBA_{'_'.join(str(p) for p in e['loc']).upper()}: {e['msg']}" for e in error.errors()
        )
        raise fail(f"the API's settings: {problems}") from None
    return RedisResponseStats(
        client,
        prefix,
        half_life_days=settings.stats_half_life_days if half_life_days is None else half_life_days,
        window_hours=settings.attribution_window_hours,
        model=settings.stats_model,
    )
