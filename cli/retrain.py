"""``nba retrain``: archive -> data set -> train every model -> gated promotion, one command.

For cron or an orchestrator: it compacts the API's event archive, exports a contract
data set of the base tables and every archived event, trains the models on it as
``nba train`` does (evaluated against their baselines, registered in MLflow) and, with
``--promote``, makes them champions through ``nba train``'s promotion. The running API
picks new champions up on its next registry poll (``NBA_MODEL_POLL_SECONDS``) or at
``POST /v1/admin/models/reload``.

Example schedule (every night at 02:30, the API's data directory in /srv/nba)::

    30 2 * * *  cd /srv/nba && nba retrain --archive data/archive \\
        --base data/retailer --work data/retrain --data-dir data --promote
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Annotated

import typer

from cli.decide import ContactPolicyOption, load_contact_policy
from cli.support import console, fail


def retrain(
    archive: Annotated[Path, typer.Option(help="The API's event archive (NBA_ARCHIVE_DIR).")],
    base: Annotated[Path, typer.Option(help="The data set the current models came from.")],
    work: Annotated[
        Path, typer.Option(help="Folder for the exported data sets (one per run, dated).")
    ],
    data_dir: Annotated[
        Path, typer.Option(envvar="NBA_DATA_DIR", help="Where the MLflow store lives.")
    ] = Path("data"),
    target: Annotated[str, typer.Option(help="What to train (as nba train).")] = "all",
    promote: Annotated[bool, typer.Option(help="Promote the new models (gated).")] = False,
    contact_policy: ContactPolicyOption = None,
) -> None:
    """Retrain on what the API saw: compact the archive, export, train, promote."""
    from cli.models import train
    from features.archive import compact, export_dataset
    from features.validation import DataContractError

    if not archive.is_dir():
        raise fail(f"{archive}: no such archive folder (the API writes it: NBA_ARCHIVE_DIR)")
    out = console()
    done = compact(archive)
    out.print(f"archive: {done.events:,} new events compacted into {done.days} day(s)")
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    data = work / f"data-{stamp}"
    try:
        # customers seen only in events live in the retailer's zone, as the API served them
        zone = load_contact_policy(contact_policy).timezone
        dataset = export_dataset(archive, base, data, default_timezone=zone)
    except DataContractError as error:
        raise fail(str(error)) from None
    out.print(
        f"data set: {len(dataset.customers):,} customers, {len(dataset.events):,} events -> {data}"
    )
    train(target=target, data=data, data_dir=data_dir, promote=promote)
