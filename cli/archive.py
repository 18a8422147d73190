"""``nba archive``: the events the API accepted, compacted and exported for retraining."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from cli.decide import ContactPolicyOption, load_contact_policy
from cli.support import console, fail

archive_app = typer.Typer(help="The event archive: compact it, export it for nba train.")


@archive_app.command("compact")
def archive_compact(
    archive: Annotated[Path, typer.Argument(help="The archive folder (NBA_ARCHIVE_DIR).")],
) -> None:
    """Merge the archive's segments into day-partitioned Parquet (safe while the API runs)."""
    from features.archive import compact

    if not archive.is_dir():
        raise fail(f"{archive}: no such archive folder")
    done = compact(archive)
    console().print(
        f"compacted {done.events:,} events into {done.days} day(s) in {archive / 'events'}"
        + (f"; skipped {done.skipped} torn or broken line(s)" if done.skipped else "")
    )


@archive_app.command("export")
def archive_export(
    archive: Annotated[Path, typer.Option(help="The archive folder (NBA_ARCHIVE_DIR).")],
    base: Annotated[Path, typer.Option(help="The data set the profiles were built from.")],
    out: Annotated[Path, typer.Option(help="Folder to write the retraining data set to.")],
    contact_policy: ContactPolicyOption = None,
) -> None:
    """Write a contract data set: the base tables plus every archived event (for nba train);
    customers seen only in events live in the contact policy's timezone, as the API
    served them."""
    from features.archive import export_dataset
    from features.validation import DataContractError

    if not archive.is_dir():
        raise fail(f"{archive}: no such archive folder")
    try:
        zone = load_contact_policy(contact_policy).timezone
        data = export_dataset(archive, base, out, default_timezone=zone)
    except DataContractError as error:
        raise fail(str(error)) from None
    console().print(
        f"wrote {len(data.customers):,} customers and {len(data.events):,} events to {out} "
        f"(train on it: nba train all --data {out})"
    )
