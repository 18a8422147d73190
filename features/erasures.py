"""The erasure register: which customers asked to be forgotten, and when.

``DELETE /v1/customers/{id}`` (and ``nba erase``) appends one line to
``erasures.jsonl`` in the event archive's folder: the SHA-256 of the customer id and
the erasure's moment, never the id itself. What the API wrote to files honours it:

* the **event archive** (:mod:`features.archive`): reading it drops the events of an
  erased customer that happened at or before the erasure; ``nba archive compact``
  rewrites the Parquet parts that hold such events without them and blanks their lines
  in every segment no writer appends to any more (:func:`purge_segments`), so they
  leave the disk, not only the reports;
* the **decision log** (:mod:`experiments.decision_log`): ``nba erase`` blanks the
  customer's decisions up to the erasure the same way (its readers skip blanked lines).
  The API closes its current segments when it erases, so only a segment another worker
  still writes keeps them until a later purge.

A blanked line is ``{"erased": true}``: the segments keep their line count, so the
archive's compaction manifest (lines read per segment) stays right. Events after the
erasure are a new customer's (the online store's record of the erasure says the same).

>>> import datetime as dt, tempfile
>>> register = ErasureRegister(tempfile.mkdtemp())
>>> register.record("C1", dt.datetime(2026, 3, 6, 9, tzinfo=dt.UTC))
>>> register.load() == {customer_digest("C1"): dt.datetime(2026, 3, 6, 9, tzinfo=dt.UTC)}
True
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import threading
from collections.abc import Callable, Mapping
from pathlib import Path

import numpy as np
import pandas as pd

from features.jsonl_segments import ERASED_LINE, in_use, segment_paths

#: The register's file name, in the event archive's folder.
REGISTER = "erasures.jsonl"


def customer_digest(customer_id: str) -> str:
    """The register's pseudonym of a customer id (SHA-256, hex)."""
    return hashlib.sha256(customer_id.encode()).hexdigest()


class ErasureRegister:
    """The append-only register in ``directory`` (thread-safe; each line fsynced)."""

    def __init__(self, directory: str | Path) -> None:
        self.path = Path(directory) / REGISTER
        self._lock = threading.Lock()

    def record(self, customer_id: str, at: dt.datetime) -> None:
        """Register the erasure of ``customer_id`` at ``at``; on disk when this returns."""
        line = json.dumps(
            {"customer_sha256": customer_digest(customer_id), "erased_at": at.isoformat()}
        )
        with self._lock:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self.path.open("a", encoding="utf-8") as out:
                out.write(line + "\n")
                out.flush()
                os.fsync(out.fileno())

    def load(self) -> dict[str, dt.datetime]:
        """The latest erasure moment per customer digest (a torn last line is skipped)."""
        if not self.path.exists():
            return {}
        found: dict[str, dt.datetime] = {}
        for line in self.path.read_text(encoding="utf-8").splitlines():
            try:
                item = json.loads(line)
                digest, at = item["customer_sha256"], dt.datetime.fromisoformat(item["erased_at"])
            except (ValueError, KeyError, TypeError):
                continue
            if digest not in found or at > found[digest]:
                found[digest] = at
        return found


def erased_rows(
    customer_ids: pd.Series, moments: pd.Series, erased: Mapping[str, dt.datetime]
) -> np.ndarray:
    """Which rows belong to an erased customer and happened at or before the erasure."""
    if not erased or len(customer_ids) == 0:
        return np.zeros(len(customer_ids), dtype=bool)
    digests = customer_ids.astype(str).map(customer_digest)
    limit = pd.to_datetime(digests.map(erased), utc=True)
    stamps = pd.to_datetime(moments, utc=True)
    return (limit.notna() & (stamps <= limit)).to_numpy(dtype=bool)


def is_erased(customer_id: str, moment: dt.datetime, erased: Mapping[str, dt.datetime]) -> bool:
    """One record's :func:`erased_rows`."""
    limit = erased.get(customer_digest(customer_id))
    return limit is not None and moment <= limit


def purge_segments(
    directory: str | Path,
    prefix: str,
    erased: Mapping[str, dt.datetime],
    doomed: Callable[[bytes, Mapping[str, dt.datetime]], bool],
) -> tuple[int, int]:
    """Blank the lines ``doomed`` marks in every segment of ``directory`` that no writer
    holds open (:func:`~features.jsonl_segments.in_use`); returns (lines blanked, segments
    left for a later purge because a writer still appends to them). Each segment is
    rewritten beside itself, fsynced, then moved over the original."""
    if not erased:
        return 0, 0
    blanked = open_left = 0
    for path in segment_paths(directory, prefix):
        lines = path.read_bytes().split(b"\n")
        hits = [i for i, line in enumerate(lines) if line and doomed(line, erased)]
        if not hits:
            continue
        if in_use(path):
            open_left += 1
            continue
        for i in hits:
            lines[i] = ERASED_LINE
        staged = path.with_suffix(".purging")
        with staged.open("wb") as out:
            out.write(b"\n".join(lines))
            out.flush()
            os.fsync(out.fileno())
        staged.replace(path)
        blanked += len(hits)
    return blanked, open_left


def event_line_erased(line: bytes, erased: Mapping[str, dt.datetime]) -> bool:
    """Whether an archived event line belongs to an erased customer (up to the erasure)."""
    return _record_erased(line, erased, "customer_id", "timestamp")


def decision_line_erased(line: bytes, erased: Mapping[str, dt.datetime]) -> bool:
    """Whether a decision-log line belongs to an erased customer (up to the erasure)."""
    return _record_erased(line, erased, "customer_id", "decided_at")


def _record_erased(line: bytes, erased: Mapping[str, dt.datetime], who: str, when: str) -> bool:
    try:
        item = json.loads(line)
        customer, moment = item[who], dt.datetime.fromisoformat(item[when])
    except (ValueError, KeyError, TypeError):
        return False
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    return isinstance(customer, str) and is_erased(customer, moment, erased)


__all__ = [
    "ERASED_LINE",
    "REGISTER",
    "ErasureRegister",
    "customer_digest",
    "decision_line_erased",
    "erased_rows",
    "event_line_erased",
    "is_erased",
    "purge_segments",
]
