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
  same decision id) are read once. Records of a customer erased since (the erasure
  register in the log's own folder, :class:`features.erasures.ErasureRegister`, which
  ``DELETE /v1/customers/{id}`` and ``nba erase`` write) are never read, whether or
  not a purge has blanked them yet (a segment a writer still holds is not purged).

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

import asyncio
import contextlib
import datetime as dt
import json
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, Protocol

import orjson
import pandas as pd

from features import jsonl_segments
from features.erasures import ErasureRegister, decision_line_erased, is_erased, purge_segments
from features.jsonl_segments import (
    DEFAULT_SEGMENT_BYTES,
    ERASED_LINE,
    FsyncMode,
    SegmentWriter,
)
from nba.decision import LoggedDecision

#: ``decisions-<writer>-<n>.jsonl``; logs written before writers had names lack ``<writer>-``.
PREFIX = "decisions"

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
    "withdrawn",
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
    return jsonl_segments.segment_paths(directory, PREFIX)


class JsonlDecisionLog(DecisionLogSink):
    """Append-only JSON Lines segments in ``directory`` (see the module doc), written by
    :class:`features.jsonl_segments.SegmentWriter`.

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
        self._segments = SegmentWriter(
            directory, PREFIX, fsync=fsync, max_segment_bytes=max_segment_bytes
        )
        self.directory = self._segments.directory
        self.fsync: FsyncMode = fsync
        self.writer = self._segments.writer

    @property
    def current_segment(self) -> Path:
        return self._segments.current_segment

    def append(self, decisions: Sequence[LoggedDecision]) -> None:
        """Write ``decisions`` as one block; with ``fsync="always"`` they are on disk
        when this returns. Thread-safe, with group commit: concurrent appends share
        one fsync (the first to reach the disk syncs everything written before it)."""
        if not decisions:
            return
        try:
            self._segments.append([orjson.dumps(d.to_dict()) for d in decisions])
        except ValueError as error:
            raise ValueError("the decision log is closed") from error

    def rotate(self) -> None:
        """Close the current segment and start the next (what it holds can be purged)."""
        self._segments.rotate()

    def close(self) -> None:
        self._segments.close()


class Appends(Protocol):
    """Anything :class:`GroupCommit` can write to (a :class:`DecisionLogSink`)."""

    def append(self, decisions: Sequence[LoggedDecision]) -> None: ...


#: What :meth:`GroupCommit.submit` calls once the records are stored (``None``) or not.
Written = Callable[[BaseException | None], None]


class GroupCommit:
    """Durable appends from coroutines: one thread writes, many requests share each fsync.

    ``await commit.append(decisions)`` returns once ``sink.append`` has stored the
    decisions (with ``fsync="always"``: on disk), as a synchronous ``append`` would,
    but the event loop keeps serving meanwhile. One writer thread takes every
    record queued since its last write and hands them to ``sink.append`` as one
    batch: one ``write`` and one ``fsync`` for all the requests that waited during
    the previous one. A failed write fails every request of its batch. A thread that
    holds records (the API's decider) queues them with :meth:`submit` and a callback
    instead, and its requests need no turn of the event loop between deciding and
    logging.

    >>> import datetime as dt, tempfile
    >>> from nba.decision import LoggedDecision
    >>> record = LoggedDecision("d-1", "C1", dt.datetime(2026, 3, 6, tzinfo=dt.UTC), "nba",
    ...     None, None, 1.0, (), ())
    >>> folder = tempfile.mkdtemp()
    >>> with JsonlDecisionLog(folder) as log:
    ...     commit = GroupCommit(log)
    ...     asyncio.run(commit.append([record]))
    ...     commit.close()
    >>> [d.decision_id for d in iter_decisions(folder)]
    ['d-1']
    """

    def __init__(self, sink: Appends) -> None:
        self.sink = sink
        self.batches = 0  # sink appends so far (each one fsync with fsync="always")
        #: each append's records, and its future (``append``) or callback (``submit``)
        self._queued: list[tuple[Sequence[LoggedDecision], asyncio.Future[None] | Written]] = []
        self._wake = threading.Condition()
        self._closed = False
        self._thread = threading.Thread(target=self._write, name="decision-log", daemon=True)
        self._thread.start()

    async def append(self, decisions: Sequence[LoggedDecision]) -> None:
        """Store ``decisions``; returns when ``sink.append`` has (raises what it raised)."""
        if not decisions:
            return
        done = asyncio.get_running_loop().create_future()
        with self._wake:
            if self._closed:
                raise ValueError("the decision log is closed")
            self._queued.append((decisions, done))
            self._wake.notify()
        await asyncio.shield(done)  # a cancelled request does not unqueue its record

    def submit(self, decisions: Sequence[LoggedDecision], written: Written) -> None:
        """Queue ``decisions`` from any thread; the writer calls ``written(None)`` once
        ``sink.append`` has stored them, or ``written(error)`` with what it raised (in the
        writer's thread: hand the result on, do not block it). Raises ``ValueError`` once
        closed."""
        with self._wake:
            if self._closed:
                raise ValueError("the decision log is closed")
            self._queued.append((decisions, written))
            self._wake.notify()

    def close(self) -> None:
        """Write what is queued, then stop the writer thread."""
        with self._wake:
            self._closed = True
            self._wake.notify()
        self._thread.join()

    def _write(self) -> None:
        while True:
            with self._wake:
                while not self._queued and not self._closed:
                    self._wake.wait()
                if not self._queued:
                    return
                batch, self._queued = self._queued, []
            error: BaseException | None = None
            try:
                self.sink.append([d for decisions, _ in batch for d in decisions])
            except BaseException as failure:  # handed to every waiting request
                error = failure
            self.batches += 1
            by_loop: dict[asyncio.AbstractEventLoop, list[asyncio.Future[None]]] = {}
            for _, done in batch:
                if isinstance(done, asyncio.Future):
                    by_loop.setdefault(done.get_loop(), []).append(done)
                else:
                    with contextlib.suppress(Exception):  # the caller's own hand-over
                        done(error)
            for loop, waiting in by_loop.items():  # one wake-up per event loop
                with contextlib.suppress(RuntimeError):  # that loop is closed: nobody waits
                    loop.call_soon_threadsafe(_settle, waiting, error)


def _settle(waiting: list[asyncio.Future[None]], error: BaseException | None) -> None:
    for done in waiting:
        if done.done():
            continue
        if error is None:
            done.set_result(None)
        else:
            done.set_exception(error)


@dataclass
class LogReading:
    """What reading a log found: the records, where each was read (``"file: line N"``,
    by decision id) and the torn last lines skipped."""

    decisions: list[LoggedDecision] = field(default_factory=list)
    torn: list[str] = field(default_factory=list)  # "file: line N"
    duplicates: int = 0
    #: records of customers erased since, left out (see the module doc)
    erased: int = 0
    sources: dict[str, str] = field(default_factory=dict)
    #: decisions whose scheduled messages a later decision withdrew (its ``replaces``):
    #: logged, but their messages did not go
    withdrawn: set[str] = field(default_factory=set)


def read_log(directory: str | Path) -> LogReading:
    """Every record of the log in ``directory``, torn last lines skipped and counted, the
    records of customers erased since left out and counted.

    Raises
    ------
    DecisionLogError
        When a line other than a segment's last is not a valid record.
    """
    reading = LogReading()
    seen: set[str] = set()
    erased = ErasureRegister(directory).load()
    for path in segment_paths(directory):
        data = path.read_bytes()
        lines = data.split(b"\n")
        complete = lines[:-1]  # after the last newline: "" or a torn tail
        tail = lines[-1]
        for number, raw in enumerate(complete, start=1):
            if not raw.strip() or raw == ERASED_LINE:  # purged by an erasure
                continue
            record = _parse(raw)
            if record is None:
                if number == len(complete) and not tail:
                    reading.torn.append(f"{path}: line {number}")
                    continue
                raise DecisionLogError(f"{path}: line {number}: not a valid decision record")
            if erased and is_erased(record.customer_id, record.decided_at, erased):
                reading.erased += 1
                continue
            if record.decision_id in seen:
                reading.duplicates += 1
                continue
            seen.add(record.decision_id)
            reading.withdrawn.update(record.replaces)
            reading.decisions.append(record)
            reading.sources[record.decision_id] = f"{path}: line {number}"
        if tail.strip():
            reading.torn.append(f"{path}: line {len(complete) + 1}")
    return reading


def purge_erased(directory: str | Path, erased: Mapping[str, dt.datetime]) -> tuple[int, int]:
    """Blank the decisions of the ``erased`` customers (digest -> erasure moment, from
    :class:`features.erasures.ErasureRegister`) made up to their erasure, in every segment
    no writer holds open; returns (decisions blanked, segments left open for later)."""
    return purge_segments(directory, PREFIX, erased, decision_line_erased)


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
    empty action fields); columns :data:`LOG_COLUMNS`, times in UTC. ``withdrawn`` marks
    the decisions a later one of ``decisions`` replaced (its ``replaces``): logged, but
    their messages never went, so they are no exposure
    (:func:`experiments.attribution.exposures_of`)."""
    withdrawn = {replaced for d in decisions for replaced in d.replaces}
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
            "withdrawn": d.decision_id in withdrawn,
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
    frame["withdrawn"] = frame["withdrawn"].astype(bool)
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
