"""Durable append-only JSON Lines segments: the storage of the event archive (and of any
record log that must not lose what it acknowledged).

:class:`SegmentWriter` appends blocks of lines to ``<prefix>-<writer>-<n>.jsonl`` in one
directory, where ``<writer>`` (UTC start time, process id, random token) is unique to
each open writer: several processes may share a directory without touching each
other's files.

* ``append(lines)`` writes the whole block with one ``write`` on a file opened in
  append mode, then (``fsync="always"``) ``fsync``: when it returns, the lines are on
  disk. Thread-safe, with group commit: concurrent appends share one ``fsync``.
* ``fsync="never"`` survives a process crash (the bytes are in the page cache), not a
  power loss.
* A segment is closed once it passes ``max_segment_bytes``; opening a writer always
  starts a new segment, so nothing is appended after a line torn by a crash.
* :func:`read_lines` gives every complete line of every segment, skipping (and
  reporting) a torn last line; a broken line elsewhere is the caller's to judge.

>>> import tempfile
>>> folder = tempfile.mkdtemp()
>>> with SegmentWriter(folder, "events") as writer:
...     writer.append([b'{"a": 1}', b'{"a": 2}'])
>>> [line for _, _, line in read_lines(folder, "events").lines]
[b'{"a": 1}', b'{"a": 2}']
"""

from __future__ import annotations

import datetime as dt
import fcntl
import os
import re
import secrets
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Literal

FsyncMode = Literal["always", "never"]
#: What a purged line becomes (:mod:`features.erasures`): readers skip it, and the segment
#: keeps its line count.
ERASED_LINE = b'{"erased": true}'
#: Segments are rotated once they pass this size.
DEFAULT_SEGMENT_BYTES = 64 * 1024 * 1024


def _pattern(prefix: str) -> re.Pattern[str]:
    return re.compile(
        rf"^{re.escape(prefix)}-(?:(?P<writer>[0-9A-Za-z]+(?:-[0-9A-Za-z]+)*)-)?(?P<n>\d{{8}})\.jsonl$"
    )


def segment_paths(directory: str | Path, prefix: str) -> list[Path]:
    """The segments of ``prefix`` in ``directory``: by writer (in the order the writers
    started), then in each writer's write order."""
    folder = Path(directory)
    if not folder.is_dir():
        return []
    pattern = _pattern(prefix)
    found = [
        (m.group("writer") or "", int(m.group("n")), p)
        for p in folder.iterdir()
        if (m := pattern.match(p.name))
    ]
    return [p for _, _, p in sorted(found)]


def new_writer_id() -> str:
    """A name no other open writer has: UTC start time, process id, random token."""
    started = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S%f")
    return f"{started}-{os.getpid()}-{secrets.token_hex(3)}"


class SegmentWriter:
    """Append-only JSON Lines segments ``<prefix>-<writer>-<n>.jsonl`` in ``directory``.

    Parameters
    ----------
    directory
        Created if missing.
    prefix
        The segments' name prefix (``decisions``, ``events``).
    fsync
        ``"always"`` (durable against power loss) or ``"never"`` (process crash only).
    max_segment_bytes
        Size after which the next append goes to a new segment.
    """

    def __init__(
        self,
        directory: str | Path,
        prefix: str,
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
        self.prefix = prefix
        self.fsync: FsyncMode = fsync
        self.max_segment_bytes = max_segment_bytes
        self.writer = new_writer_id()
        self._lock = threading.Lock()  # writes, rotation
        self._sync_lock = threading.Lock()  # fsyncs (group commit), rotation
        self._written = 0  # blocks written so far
        self._synced = 0  # blocks known to be on disk
        self._number = 0
        self._fd: int | None = None
        self._size = 0
        self._open_next()

    @property
    def current_segment(self) -> Path:
        return self.directory / f"{self.prefix}-{self.writer}-{self._number:08d}.jsonl"

    def _open_next(self) -> None:
        with self._sync_lock:  # no group fsync may run on the segment being closed
            if self._fd is not None:
                if self.fsync == "always":
                    os.fsync(self._fd)
                os.close(self._fd)
                self._synced = self._written
            self._number += 1
            flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_EXCL
            self._fd = os.open(self.current_segment, flags, 0o644)
            # held while the segment is open (released when it closes, or by the kernel when
            # the process dies): a purge (:func:`in_use`) leaves a segment alone while held
            fcntl.flock(self._fd, fcntl.LOCK_SH)
            self._size = 0
            if self.fsync == "always":  # make the new file's directory entry durable too
                dir_fd = os.open(self.directory, os.O_RDONLY)
                try:
                    os.fsync(dir_fd)
                finally:
                    os.close(dir_fd)

    def append(self, lines: Sequence[bytes]) -> None:
        """Write ``lines`` (each without its newline) as one block; with
        ``fsync="always"`` they are on disk when this returns."""
        if not lines:
            return
        payload = b"".join(line + b"\n" for line in lines)
        with self._lock:
            if self._fd is None:
                raise ValueError(f"the {self.prefix} log is closed")
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

    def rotate(self) -> None:
        """Close the current segment (when it holds anything) and start the next one, so
        that what was written so far can be purged (:mod:`features.erasures`)."""
        with self._lock:
            if self._fd is not None and self._size:
                self._open_next()

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

    def __enter__(self) -> SegmentWriter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def in_use(path: Path) -> bool:
    """Whether an open writer (of any process on this host) still appends to ``path``."""
    fd = os.open(path, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False


@dataclass
class SegmentLines:
    """The complete lines of some segments, as ``(path, line number, line)``, and the torn
    last lines skipped (``"file: line N"``)."""

    lines: list[tuple[Path, int, bytes]] = field(default_factory=list)
    torn: list[str] = field(default_factory=list)


def read_lines(directory: str | Path, prefix: str) -> SegmentLines:
    """Every complete, non-blank line of the segments of ``prefix`` in ``directory``
    (purged lines, :data:`ERASED_LINE`, skipped).

    A last line without its newline (a write torn by a crash) is skipped and reported
    in ``torn``; deciding whether a complete line is valid is the caller's job.
    """
    out = SegmentLines()
    for path in segment_paths(directory, prefix):
        data = path.read_bytes()
        lines = data.split(b"\n")
        complete, tail = lines[:-1], lines[-1]  # after the last newline: "" or a torn tail
        for number, raw in enumerate(complete, start=1):
            if raw.strip() and raw != ERASED_LINE:
                out.lines.append((path, number, raw))
        if tail.strip():
            out.torn.append(f"{path}: line {len(complete) + 1}")
    return out
