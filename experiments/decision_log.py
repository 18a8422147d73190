"""The decision log: every :class:`~nba.decision.LoggedDecision`, durably, without loss.

:class:`DecisionLogSink` is the interface the API and the batch mode write to;
:class:`JsonlDecisionLog` the file implementation: append-only JSON Lines
segments in one directory, ``decisions-<writer>-00000001.jsonl``,
``decisions-<writer>-00000002.jsonl``, ..., where ``<writer>`` (start time, process
id and a random token) is unique to each open log: several processes (``nba serve
--workers N``, replicas on a shared volume) may write to one directory without
ever touching each other's files.

* ``append(decisions)`` writes the whole batch with one ``write`` system call
  on a file opened in append mode, then (``fsync="always"``) ``fsync``: when it
  returns, the records are on disk (a durable acknowledgement). It is
  thread-safe (one lock per log), so request handlers in a thread pool may
  share one log; pass batches to pay one ``fsync`` for many decisions.
* ``fsync="always"`` survives a process crash, a kernel crash and a power
  loss (as far as the disk honours ``fsync``). ``fsync="never"`` survives a
  process crash (the bytes are in the kernel's page cache when ``append``
  returns) but may lose the last few seconds of records on a power loss or
  kernel crash; it is 10-100x faster.
* A segment is closed once it passes ``max_segment_bytes`` and a new one is
  started. Opening a log always starts a new segment, so a record is never
  appended after a line torn by a crash.
* Reading (:func:`iter_decisions`, :func:`read_decision_log`) detects a torn
  last line (no final newline, or not valid JSON) in any segment, skips it and
  counts it; a broken line anywhere else is an error naming the file and line,
  since it cannot come from a crash. Records logged twice (a retried request,
  same decision id) are read once.

>>> import datetime as dt, tempfile
>>> from nba.decision import LoggedAction, LoggedDecision
>>> record = LoggedDecision("d-1", "C1", dt.datetime(2026, 3, 6, tzinfo=dt.UTC), "nba", "engine",
...     "3", 0.8, ("a",), (LoggedAction("a", "email", None, 0.8),))
>>> folder = tempfile.mkdtemp()
>>> with JsonlDecisionLog(folder) as log:
...     log.append([record])
>>> read_decision_log(folder)[["decision_id", "arm", "action_id", "channel"]].to_dict("records")
[{'decision_id': 'd-1', 'arm': 'engine', 'action_id': 'a', 'channel': 'email'}]
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import secrets
import threading
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, Literal

import pandas as pd

from nba.decision import LoggedDecision

FsyncMode = Literal["always", "never"]
#: Segments are rotated once they pass this size.
DEFAULT_SEGMENT_BYTES = 64 * 1024 * 1024
#: ``decisions-<writer>-<n>.jsonl``; logs written before writers had names lack ``<writer>-``.
_SEGMENT = re.compile(
    r"^decisions-(?:(?P<writer>[0-9A-Za-z]+(?:-[0-9A-Za-z]+)*)-)?(?P<n>\d{8})\.jsonl$"
)

#: Columns of :func:`read_decision_log`, one row per decision and chosen action.
LOG_COLUMNS = (
    "decision_id",
    "customer_id",
    "decided_at",
    "arm",
    "policy",
    "model_version",
    "rank",
    "action_id",
    "offer_id",
    "channel",
    "send_at",
    "propensity",
    "decision_propensity",
)


class DecisionLogError(ValueError):
    """A decision log that cannot be read: names the file and line."""


class DecisionLogSink(ABC):
    """Where logged decisions go. Implementations must make ``append`` durable
    (or say what they guarantee) and thread-safe."""

    @abstractmethod
    def append(self, decisions: Sequence[LoggedDecision]) -> None:
        """Write ``decisions``; when this returns, they are stored."""

    def close(self) -> None:  # noqa: B027 - optional for sinks without resources
        """Release the sink's resources."""

    def __enter__(self) -> DecisionLogSink:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def segment_paths(directory: str | Path) -> list[Path]:
    """The log's segments: by writer (in the order the writers started), then in each
    writer's write order."""
    folder = Path(directory)
    if not folder.is_dir():
        return []
    found = [
        (m.group("writer") or "", int(m.group("n")), p)
        for p in folder.iterdir()
        if (m := _SEGMENT.match(p.name))
    ]
    return [p for _, _, p in sorted(found)]


def new_writer_id() -> str:
    """A name no other open log has: UTC start time, process id, random token."""
    started = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S%f")
    return f"{started}-{os.getpid()}-{secrets.token_hex(3)}"


class JsonlDecisionLog(DecisionLogSink):
    """Append-only JSON Lines segments in ``directory`` (see the module doc).

    Parameters
    ----------
    directory
        Created if missing.
    fsync
        ``"always"`` (durable against power loss) or ``"never"`` (durable against
        a process crash only).
    max_segment_bytes
        Size after which the next append goes to a new segment.
    """

    def __init__(
        self,
        directory: str | Path,
        *,
        fsync: FsyncMode = "always",
        max_segment_bytes: int = DEFAULT_SEGMENT_BYTES,
    ) -> None:
        if fsync not in ("always", "never"):
            raise ValueError(f"fsync must be 'always' or 'never', got {fsync!r}")
        if max_segment_bytes < 1:
            raise ValueError(f"max_segment_bytes must be positive, got {max_segment_bytes}")
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.fsync: FsyncMode = fsync
        self.max_segment_bytes = max_segment_bytes
        self._lock = threading.Lock()  # writes, rotation
        self._sync_lock = threading.Lock()  # fsyncs (group commit), rotation
        self._written = 0  # blocks written so far
        self._synced = 0  # blocks known to be on disk
        self.writer = new_writer_id()
        self._number = 0
        self._fd: int | None = None
        self._size = 0
        self._open_next()

    @property
    def current_segment(self) -> Path:
        return self.directory / f"decisions-{self.writer}-{self._number:08d}.jsonl"

    def _open_next(self) -> None:
        with self._sync_lock:  # no group fsync may run on the segment being closed
            self._rotate()

    def _rotate(self) -> None:
        if self._fd is not None:
            if self.fsync == "always":
                os.fsync(self._fd)
            os.close(self._fd)
            self._synced = self._written
        self._number += 1
        path = self.current_segment
        self._fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_EXCL, 0o644)
        self._size = 0
        if self.fsync == "always":  # make the new file's directory entry durable too
            dir_fd = os.open(self.directory, os.O_RDONLY)
            try:
                os.fsync(dir_fd)
            finally:
                os.close(dir_fd)

    def append(self, decisions: Sequence[LoggedDecision]) -> None:
        """Write ``decisions`` as one block; with ``fsync="always"`` they are on disk
        when this returns. Thread-safe, with group commit: concurrent appends share
        one fsync (the first to reach the disk syncs everything written before it)."""
        if not decisions:
            return
        payload = "".join(
            json.dumps(d.to_dict(), separators=(",", ":"), ensure_ascii=False) + "\n"
            for d in decisions
        ).encode()
        with self._lock:
            if self._fd is None:
                raise ValueError("the decision log is closed")
            if self._size and self._size + len(payload) > self.max_segment_bytes:
                self._open_next()
            assert self._fd is not None
            view = memoryview(payload)
            while view:
                written = os.write(self._fd, view)
                view = view[written:]
            self._size += len(payload)
            self._written += 1
            mine = self._written
        if self.fsync == "always":
            self._sync(mine)

    def _sync(self, block: int) -> None:
        with self._sync_lock:
            if self._synced >= block:
                return  # another append's fsync covered this block
            target = self._written  # every block up to here was written before this fsync
            assert self._fd is not None
            os.fsync(self._fd)
            self._synced = max(self._synced, target)

    def close(self) -> None:
        with self._lock, self._sync_lock:
            if self._fd is not None:
                if self.fsync == "always":
                    os.fsync(self._fd)
                os.close(self._fd)
                self._fd = None
                self._synced = self._written


@dataclass
class LogReading:
    """What reading a log found: the records and the torn last lines skipped."""

    decisions: list[LoggedDecision] = field(default_factory=list)
    torn: list[str] = field(default_factory=list)  # "file: line N"
    duplicates: int = 0


def read_log(directory: str | Path) -> LogReading:
    """Every record of the log in ``directory``, torn last lines skipped and counted.

    Raises
    ------
    DecisionLogError
        When a line other than a segment's last is not a valid record.
    """
    reading = LogReading()
    seen: set[str] = set()
    for path in segment_paths(directory):
        data = path.read_bytes()
        lines = data.split(b"\n")
        complete = lines[:-1]  # after the last newline: "" or a torn tail
        tail = lines[-1]
        for number, raw in enumerate(complete, start=1):
            if not raw.strip():
                continue
            record = _parse(raw)
            if record is None:
                if number == len(complete) and not tail:
                    reading.torn.append(f"{path}: line {number}")
                    continue
                raise DecisionLogError(f"{path}: line {number}: not a valid decision record")
            if record.decision_id in seen:
                reading.duplicates += 1
                continue
            seen.add(record.decision_id)
            reading.decisions.append(record)
        if tail.strip():
            reading.torn.append(f"{path}: line {len(complete) + 1}")
    return reading


def _parse(raw: bytes) -> LoggedDecision | None:
    try:
        data = json.loads(raw)
        return LoggedDecision.from_dict(data)
    except (ValueError, KeyError, TypeError):
        return None


def iter_decisions(directory: str | Path) -> Iterator[LoggedDecision]:
    """The log's records in write order (torn last lines skipped)."""
    yield from read_log(directory).decisions


def decisions_frame(decisions: Sequence[LoggedDecision]) -> pd.DataFrame:
    """One row per decision and chosen action (a decision without action: one row with
    empty action fields); columns :data:`LOG_COLUMNS`, times in UTC."""
    rows: list[dict[str, Any]] = []
    for d in decisions:
        base = {
            "decision_id": d.decision_id,
            "customer_id": d.customer_id,
            "decided_at": d.decided_at,
            "arm": d.arm,
            "policy": d.policy,
            "model_version": d.model_version,
            "decision_propensity": d.propensity,
        }
        if not d.actions:
            rows.append({**base, "rank": 0})
        for rank, a in enumerate(d.actions):
            rows.append(
                {
                    **base,
                    "rank": rank,
                    "action_id": a.action_id,
                    "offer_id": a.offer_id,
                    "channel": a.channel,
                    "send_at": a.send_at,
                    "propensity": a.propensity,
                }
            )
    frame = pd.DataFrame(rows, columns=list(LOG_COLUMNS))
    for column in ("decided_at", "send_at"):
        frame[column] = pd.to_datetime(frame[column], utc=True)
    for column in ("propensity", "decision_propensity"):
        frame[column] = frame[column].astype(float)
    frame["rank"] = frame["rank"].astype("int64")
    for column in ("decision_id", "customer_id", "arm", "policy", "model_version", "action_id"):
        frame[column] = frame[column].astype(object)
    for column in ("offer_id", "channel"):
        frame[column] = frame[column].astype(object)
    return frame


def read_decision_log(directory: str | Path) -> pd.DataFrame:
    """The log in ``directory`` as a frame, one row per decision and chosen action
    (columns :data:`LOG_COLUMNS`)."""
    return decisions_frame(read_log(directory).decisions)


def export_parquet(directory: str | Path, out_path: str | Path) -> int:
    """Write the log in ``directory`` to one Parquet file; return its number of rows."""
    frame = read_decision_log(directory)
    out = Path(out_path)
    out.parent.mkdir(parents=True, exist_ok=True)
    frame.to_parquet(out, index=False)
    return len(frame)
