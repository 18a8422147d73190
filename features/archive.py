"""The event archive: every event the API accepted, in the data contract, to retrain from.

The API appends each accepted event to the archive before it answers (append-only
JSON Lines segments, :mod:`features.jsonl_segments`, fsynced like the decision log),
so what a journey tool was told was applied is also kept. :func:`compact` turns the
segments into day-partitioned Parquet (``events/day=YYYY-MM-DD/part-*.parquet``) and
remembers how far it read each segment, so it is safe while writers keep appending;
:func:`read_archive` gives every archived event once (Parquet parts and what the
segments hold beyond them). :func:`export_dataset` writes a whole contract data set
(the base customers, products and offers, the base events and the archived ones) that
``nba train --data`` reads.

A line torn by a crash (or any line that is not an event) is skipped with a warning;
the rest is kept.

>>> import datetime as dt, tempfile
>>> from features.contract import EventRecord
>>> folder = tempfile.mkdtemp()
>>> event = EventRecord(event_id="e1", customer_id="C1", channel="web",
...     event_type="product_view", product_id="P1",
...     timestamp=dt.datetime(2026, 3, 6, 9, tzinfo=dt.UTC))
>>> with EventArchive(folder) as archive:
...     archive.append([event])
>>> read_archive(folder)[["event_id", "customer_id", "event_type"]].to_dict("records")
[{'event_id': 'e1', 'customer_id': 'C1', 'event_type': 'product_view'}]
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

import pandas as pd

from features.contract import CUSTOMERS, EVENTS, EventRecord
from features.dataset import RetailDataset, load_dataset, write_dataset
from features.erasures import ErasureRegister, erased_rows, event_line_erased, purge_segments
from features.jsonl_segments import FsyncMode, SegmentWriter, read_lines
from features.validation import DataContractError, validate_table

log = logging.getLogger("nba.archive")

#: Segment name prefix, and the compaction manifest's file name.
PREFIX = "events"
MANIFEST = "compacted.json"
PARTS = "events"


class EventArchive:
    """Appends accepted events to the archive in ``directory`` (thread-safe, durable)."""

    def __init__(self, directory: str | Path, *, fsync: FsyncMode = "always") -> None:
        self.directory = Path(directory)
        self._segments = SegmentWriter(self.directory / "segments", PREFIX, fsync=fsync)

    def append(self, events: Sequence[EventRecord]) -> None:
        """Write ``events``; with ``fsync="always"`` they are on disk when this returns."""
        self._segments.append([e.model_dump_json().encode() for e in events])

    def rotate(self) -> None:
        """Close the current segment and start the next (what it holds can be purged)."""
        self._segments.rotate()

    def close(self) -> None:
        self._segments.close()

    def __enter__(self) -> EventArchive:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


@dataclass(frozen=True)
class Pending:
    """Archived lines not yet compacted: a frame of events and, per segment, the lines
    read (the manifest's next offsets)."""

    events: pd.DataFrame
    read_up_to: dict[str, int]
    skipped: int


def _manifest(directory: Path) -> dict[str, int]:
    path = directory / MANIFEST
    return json.loads(path.read_text()) if path.exists() else {}


def _pending(directory: Path) -> Pending:
    done = _manifest(directory)
    found = read_lines(directory / "segments", PREFIX)
    for torn in found.torn:
        log.warning("event archive: skipped a line torn by a crash (%s)", torn)
    rows: list[dict[str, object]] = []
    read_up_to = dict(done)
    skipped = len(found.torn)
    for path, number, raw in found.lines:
        if number <= done.get(path.name, 0):
            continue
        read_up_to[path.name] = max(read_up_to.get(path.name, 0), number)
        try:
            rows.append(EventRecord.model_validate_json(raw).model_dump())
        except ValueError:
            log.warning("event archive: skipped %s line %d (not an event)", path, number)
            skipped += 1
    frame = pd.DataFrame(rows, columns=EVENTS.names)
    if len(frame):
        frame["properties"] = [
            None if p is None else json.dumps(p, sort_keys=True) for p in frame["properties"]
        ]
        frame["channel"] = [getattr(c, "value", c) for c in frame["channel"]]
        frame["event_type"] = [getattr(t, "value", t) for t in frame["event_type"]]
    frame = frame.drop_duplicates("event_id", keep="first")  # a replay archived twice
    return Pending(_validated(frame, str(directory / "segments")), read_up_to, skipped)


def _validated(frame: pd.DataFrame, source: str) -> pd.DataFrame:
    return validate_table(frame.astype(object).where(frame.notna(), None), EVENTS, source)


def _parts(directory: Path) -> pd.DataFrame:
    files = sorted((directory / PARTS).glob("day=*/*.parquet"))
    if not files:
        return _validated(pd.DataFrame(columns=EVENTS.names), str(directory / PARTS))
    return pd.concat([pd.read_parquet(f) for f in files], ignore_index=True)


def read_archive(directory: str | Path) -> pd.DataFrame:
    """Every archived event once (by event id), in the contract's columns and types; none
    of an erased customer up to their erasure (:mod:`features.erasures`)."""
    folder = Path(directory)
    frames = [_parts(folder), _pending(folder).events]
    events = (
        pd.concat([f for f in frames if len(f)], ignore_index=True)
        if any(len(f) for f in frames)
        else frames[0]
    )
    events = _without_erased(events, ErasureRegister(folder).load())
    return events.drop_duplicates("event_id", keep="first").reset_index(drop=True)


def _without_erased(events: pd.DataFrame, erased: Mapping[str, dt.datetime]) -> pd.DataFrame:
    gone = erased_rows(events["customer_id"], events["timestamp"], erased)
    return events[~gone].reset_index(drop=True) if gone.any() else events


@dataclass(frozen=True)
class Compaction:
    """What :func:`compact` did."""

    events: int
    days: int
    skipped: int
    #: events of erased customers removed from Parquet parts and blanked in segments
    erased: int = 0
    #: segments holding erased customers' events that a writer still appends to (purged
    #: by a later compaction, once the writer has moved on)
    open_segments: int = 0


def compact(directory: str | Path) -> Compaction:
    """Move the events the segments hold beyond the last compaction into day-partitioned
    Parquet parts, then record how far each segment was read (writers may keep going).

    Erasures (:mod:`features.erasures`) are applied on the way: an erased customer's events
    are not written to the new parts, are removed from the parts that hold them, and are
    blanked in every segment no writer holds open."""
    folder = Path(directory)
    erased = ErasureRegister(folder).load()
    pending = _pending(folder)
    removed = _purge_parts(folder, erased)
    known = set(_parts(folder)["event_id"])
    fresh = pending.events[~pending.events["event_id"].isin(known)].drop_duplicates("event_id")
    fresh = _without_erased(fresh, erased)
    token = secrets.token_hex(4)
    days = fresh["timestamp"].dt.strftime("%Y-%m-%d") if len(fresh) else pd.Series(dtype=str)
    for day, part in fresh.groupby(days):
        target = folder / PARTS / f"day={day}"
        target.mkdir(parents=True, exist_ok=True)
        part.to_parquet(target / f"part-{token}.parquet", index=False)
    manifest = folder / MANIFEST
    staged = manifest.with_suffix(".tmp")
    staged.write_text(json.dumps(pending.read_up_to, sort_keys=True))
    staged.replace(manifest)  # the parts are written before the manifest moves on
    blanked, still_open = purge_segments(
        folder / "segments", PREFIX, erased, event_line_erased
    )  # after the manifest: a blanked line is read as nothing either way
    return Compaction(
        events=len(fresh),
        days=int(days.nunique()),
        skipped=pending.skipped,
        erased=removed + blanked,
        open_segments=still_open,
    )


@dataclass(frozen=True)
class Purge:
    """What a purge of erased customers' records removed from a folder's files."""

    records: int
    #: segments holding such records that a writer still appends to (left for later)
    open_segments: int


def purge_erased(directory: str | Path) -> Purge:
    """Remove the events of the customers in the archive's erasure register from its
    Parquet parts and from every segment no writer holds open (what :func:`compact` does
    on its way, without compacting)."""
    folder = Path(directory)
    erased = ErasureRegister(folder).load()
    removed = _purge_parts(folder, erased)
    blanked, still_open = purge_segments(folder / "segments", PREFIX, erased, event_line_erased)
    return Purge(removed + blanked, still_open)


def _purge_parts(folder: Path, erased: Mapping[str, dt.datetime]) -> int:
    """Rewrite the Parquet parts holding erased customers' events without them."""
    if not erased:
        return 0
    removed = 0
    for path in sorted((folder / PARTS).glob("day=*/*.parquet")):
        part = pd.read_parquet(path)
        gone = erased_rows(part["customer_id"], part["timestamp"], erased)
        if not gone.any():
            continue
        removed += int(gone.sum())
        staged = path.with_suffix(".purging")
        part[~gone].to_parquet(staged, index=False)
        staged.replace(path)
    return removed


def export_dataset(
    archive: str | Path, base: str | Path, out: str | Path, default_timezone: str = "UTC"
) -> RetailDataset:
    """Write a contract data set to ``out``: ``base``'s customers, products and offers, and
    its events with the archive's (each event once). Customers seen only in archived
    events (prospects the API accepted) become customers with no consent, in
    ``default_timezone`` (the retailer's, the contact policy's ``timezone``, as the API
    served them: :class:`features.online.profiles.OnlineProfiles`). An
    erased customer (the archive's register) is left out, their row and their events up
    to the erasure, from the base as from the archive."""
    data = load_dataset(base)
    archived = read_archive(archive)
    erased = ErasureRegister(archive).load()
    events = pd.concat([data.events, archived], ignore_index=True).drop_duplicates("event_id")
    events = _without_erased(events, erased)  # the base's events of erased customers too
    events = events.sort_values(["timestamp", "event_id"], kind="stable").reset_index(drop=True)
    customers = data.customers
    customers = customers[
        ~erased_rows(customers["customer_id"], customers["created_at"], erased)
    ].reset_index(drop=True)
    known = set(customers["customer_id"])
    newcomers = events[~events["customer_id"].isin(known)].groupby("customer_id")["timestamp"]
    if len(newcomers):
        first = newcomers.min()
        rows = pd.DataFrame({"customer_id": first.index, "created_at": first.to_numpy()})
        rows["timezone"] = default_timezone
        rows["loyalty_tier"] = "none"
        for column in CUSTOMERS.columns:
            if column.name.startswith("consent_") and not column.name.endswith("_at"):
                rows[column.name] = False
        prospects = validate_table(rows, CUSTOMERS, f"{archive} (prospects)")
        customers = pd.concat([customers, prospects], ignore_index=True)
    dataset = RetailDataset(customers, data.products, data.offers, events)
    write_dataset(dataset, out)
    try:
        return load_dataset(out)  # the export is a valid data set, references included
    except DataContractError as error:
        raise DataContractError(error.problems) from None
