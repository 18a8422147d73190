"""The decision log: durable appends, rotation, concurrency, crashes, reading back."""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Sequence
from pathlib import Path

import pandas as pd
import pytest

from experiments.decision_log import (
    LOG_COLUMNS,
    DecisionLogError,
    GroupCommit,
    JsonlDecisionLog,
    export_parquet,
    read_decision_log,
    read_log,
    segment_paths,
)
from nba.decision import LoggedAction, LoggedDecision

ROOT = Path(__file__).resolve().parents[1]
T0 = dt.datetime(2026, 3, 6, 9, 0, tzinfo=dt.UTC)


def record(i: int, *, arm: str | None = "engine", actions: int = 1) -> LoggedDecision:
    return LoggedDecision(
        decision_id=f"d-{i:06d}",
        customer_id=f"C{i % 97}",
        decided_at=T0 + dt.timedelta(minutes=i),
        policy="nba",
        arm=arm,
        model_version="3",
        propensity=0.5,
        eligible_action_ids=("cart", "nothing"),
        actions=tuple(
            LoggedAction(
                f"a{k}", "email", T0 + dt.timedelta(minutes=i, hours=1), 0.5 + k / 10, "cart10"
            )
            for k in range(actions)
        ),
    )


def test_round_trip_one_row_per_decision_and_action(tmp_path: Path) -> None:
    records = [record(0, actions=2), record(1, arm=None, actions=0), record(2)]
    with JsonlDecisionLog(tmp_path) as log:
        log.append(records)
    frame = read_decision_log(tmp_path)
    assert list(frame.columns) == list(LOG_COLUMNS)
    assert list(frame["decision_id"]) == ["d-000000", "d-000000", "d-000001", "d-000002"]
    assert list(frame["rank"]) == [0, 1, 0, 0]
    assert list(frame["action_id"].fillna("-")) == ["a0", "a1", "-", "a0"]
    assert frame["arm"].isna().tolist() == [False, False, True, False]
    assert str(frame["decided_at"].dt.tz) == "UTC"
    assert frame.loc[0, "send_at"] == pd.Timestamp(T0 + dt.timedelta(hours=1))
    assert frame.loc[1, "propensity"] == pytest.approx(0.6)
    assert read_log(tmp_path).decisions == records


def test_segments_rotate_by_size_and_reopening_starts_a_new_one(tmp_path: Path) -> None:
    with JsonlDecisionLog(tmp_path, max_segment_bytes=2_000) as log:
        for i in range(40):
            log.append([record(i)])
    first = segment_paths(tmp_path)
    assert len(first) > 5
    assert all(p.stat().st_size <= 2_000 + 600 for p in first)
    with JsonlDecisionLog(tmp_path) as log:
        log.append([record(40)])
    assert len(segment_paths(tmp_path)) == len(first) + 1
    assert list(read_decision_log(tmp_path)["decision_id"]) == [f"d-{i:06d}" for i in range(41)]


def test_concurrent_appends_lose_nothing_and_never_interleave(tmp_path: Path) -> None:
    log = JsonlDecisionLog(tmp_path, fsync="never", max_segment_bytes=50_000)

    def writer(w: int) -> None:
        for k in range(100):
            log.append([record(w * 1000 + k, actions=2), record(w * 1000 + 500 + k)])

    threads = [threading.Thread(target=writer, args=(w,)) for w in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    log.close()
    reading = read_log(tmp_path)
    assert reading.torn == [] and reading.duplicates == 0
    assert len(reading.decisions) == 8 * 200
    assert len({d.decision_id for d in reading.decisions}) == 1600


def test_a_torn_last_line_is_skipped_and_earlier_lines_kept(tmp_path: Path) -> None:
    with JsonlDecisionLog(tmp_path) as log:
        log.append([record(i) for i in range(5)])
    segment = segment_paths(tmp_path)[-1]
    whole = segment.read_bytes()
    with segment.open("ab") as f:  # a crash in the middle of the next write
        f.write(whole.splitlines(keepends=True)[0][:37])
    reading = read_log(tmp_path)
    assert [d.decision_id for d in reading.decisions] == [f"d-{i:06d}" for i in range(5)]
    assert reading.torn == [f"{segment}: line 6"]
    # the next writer starts a fresh segment: nothing is glued to the torn line
    with JsonlDecisionLog(tmp_path) as log:
        log.append([record(5)])
    assert len(read_log(tmp_path).decisions) == 6


def test_a_broken_line_in_the_middle_is_an_error_naming_file_and_line(tmp_path: Path) -> None:
    with JsonlDecisionLog(tmp_path) as log:
        log.append([record(i) for i in range(3)])
    segment = segment_paths(tmp_path)[-1]
    lines = segment.read_bytes().splitlines(keepends=True)
    segment.write_bytes(lines[0] + b'{"decision_id": "x"\n' + lines[2])
    with pytest.raises(DecisionLogError, match=rf"{segment.name}: line 2: not a valid"):
        read_log(tmp_path)


def test_a_retried_decision_is_read_once(tmp_path: Path) -> None:
    with JsonlDecisionLog(tmp_path) as log:
        log.append([record(1), record(2)])
        log.append([record(2)])
    reading = read_log(tmp_path)
    assert [d.decision_id for d in reading.decisions] == ["d-000001", "d-000002"]
    assert reading.duplicates == 1


def test_export_parquet(tmp_path: Path) -> None:
    with JsonlDecisionLog(tmp_path / "log") as log:
        log.append([record(i, actions=2) for i in range(10)])
    out = tmp_path / "out" / "decisions.parquet"
    assert export_parquet(tmp_path / "log", out) == 20
    back = pd.read_parquet(out)
    pd.testing.assert_frame_equal(back, read_decision_log(tmp_path / "log"), check_dtype=False)


def test_bad_options_and_closed_log(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="fsync must be 'always' or 'never'"):
        JsonlDecisionLog(tmp_path, fsync="sometimes")  # type: ignore[arg-type]
    log = JsonlDecisionLog(tmp_path)
    log.close()
    with pytest.raises(ValueError, match="closed"):
        log.append([record(1)])


CHILD = textwrap.dedent(
    """
    import sys, datetime as dt
    sys.path.insert(0, {root!r})
    from experiments.decision_log import JsonlDecisionLog
    from tests.test_decision_log import record
    log = JsonlDecisionLog({folder!r}, fsync="always", max_segment_bytes=20_000)
    i = 0
    while True:
        log.append([record(i), record(i + 1)])
        print(i + 1, flush=True)  # acknowledged up to i + 1
        i += 2
    """
)


@pytest.mark.skipif(sys.platform == "win32", reason="uses SIGKILL")
def test_acknowledged_decisions_survive_a_killed_writer(tmp_path: Path) -> None:
    folder = tmp_path / "log"
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD.format(root=str(ROOT), folder=str(folder))],
        stdout=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )
    assert child.stdout is not None
    acknowledged = -1
    deadline = time.monotonic() + 20
    while acknowledged < 300 and time.monotonic() < deadline:
        line = child.stdout.readline()
        if not line:
            break
        acknowledged = int(line)
    os.kill(child.pid, signal.SIGKILL)
    child.wait()
    acknowledged = max([acknowledged, *(int(x) for x in child.stdout.read().split())])
    assert acknowledged >= 300, "the writer did not get going"
    ids = {d.decision_id for d in read_log(folder).decisions}
    assert {f"d-{i:06d}" for i in range(acknowledged + 1)} <= ids


def test_concurrent_appends_with_group_commit_and_rotation_lose_nothing(tmp_path: Path) -> None:
    log = JsonlDecisionLog(tmp_path, fsync="always", max_segment_bytes=20_000)

    def work(start: int) -> None:
        for i in range(start, start + 150):
            log.append([record(i)])

    threads = [threading.Thread(target=work, args=(k * 1000,)) for k in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    log.close()
    reading = read_log(tmp_path)
    assert len(reading.decisions) == 1_200 and not reading.torn
    assert {d.decision_id for d in reading.decisions} == {
        record(k * 1000 + i).decision_id for k in range(8) for i in range(150)
    }
    assert len(segment_paths(tmp_path)) > 1  # rotation happened under concurrency


class SlowLog(JsonlDecisionLog):
    """A real log whose appends take long enough for requests to pile up behind them, and
    that says what each append held."""

    def __init__(self, folder: Path) -> None:
        super().__init__(folder, fsync="always")
        self.sizes: list[int] = []

    def append(self, decisions: Sequence[LoggedDecision]) -> None:
        time.sleep(0.02)
        super().append(decisions)
        self.sizes.append(len(decisions))


def test_group_commit_answers_each_request_after_its_record_is_written(tmp_path: Path) -> None:
    log = SlowLog(tmp_path)
    commit = GroupCommit(log)

    async def request(i: int) -> None:
        await commit.append([record(i)])
        # acknowledged: the record is in the log now, not later
        assert record(i).decision_id in {d.decision_id for d in read_log(tmp_path).decisions}

    async def traffic() -> None:
        await asyncio.gather(*(request(i) for i in range(60)))

    asyncio.run(traffic())
    commit.close()
    log.close()
    assert sum(log.sizes) == 60 and len(read_log(tmp_path).decisions) == 60
    # the requests that waited during a write shared the next one (one fsync each)
    assert commit.batches == len(log.sizes) < 30 and max(log.sizes) > 1


def test_a_failed_write_fails_every_request_of_its_batch(tmp_path: Path) -> None:
    log = JsonlDecisionLog(tmp_path)
    commit = GroupCommit(log)
    log.close()  # every append now raises

    async def traffic() -> list[BaseException | None]:
        return await asyncio.gather(
            *(commit.append([record(i)]) for i in range(5)), return_exceptions=True
        )

    outcomes = asyncio.run(traffic())
    assert all(isinstance(o, ValueError) and "closed" in str(o) for o in outcomes)
    commit.close()
    with pytest.raises(ValueError, match="closed"):
        asyncio.run(commit.append([record(9)]))


def test_submit_calls_back_from_the_writer_once_the_records_are_stored(tmp_path: Path) -> None:
    """The API's decider queues a batch's records from its own thread."""
    log = SlowLog(tmp_path)
    commit = GroupCommit(log)
    seen: list[tuple[BaseException | None, set[str]]] = []
    done = threading.Event()

    def written(error: BaseException | None) -> None:
        # in the log already when called back
        seen.append((error, {d.decision_id for d in read_log(tmp_path).decisions}))
        if len(seen) == 3:
            done.set()

    for i in range(3):
        commit.submit([record(2 * i), record(2 * i + 1)], written)
    assert done.wait(30)
    commit.close()
    log.close()
    assert [error for error, _ in seen] == [None, None, None]
    for i, (_, stored) in enumerate(seen):
        assert {record(2 * i).decision_id, record(2 * i + 1).decision_id} <= stored
    assert sum(log.sizes) == 6


def test_submit_passes_on_a_failed_write_and_refuses_once_closed(tmp_path: Path) -> None:
    log = JsonlDecisionLog(tmp_path)
    commit = GroupCommit(log)
    log.close()  # every append now raises
    outcome: list[BaseException | None] = []
    called = threading.Event()

    def written(error: BaseException | None) -> None:
        outcome.append(error)
        called.set()

    commit.submit([record(1)], written)
    assert called.wait(30)
    assert isinstance(outcome[0], ValueError) and "closed" in str(outcome[0])
    commit.close()
    with pytest.raises(ValueError, match="closed"):
        commit.submit([record(2)], lambda error: None)


OPENER = textwrap.dedent(
    """
    import sys
    sys.path.insert(0, {root!r})
    from tests.test_decision_log import record
    from experiments.decision_log import JsonlDecisionLog
    base = int(sys.argv[1])
    for i in range(20):  # open, write, close: every open starts a segment
        with JsonlDecisionLog({folder!r}, fsync="never") as log:
            log.append([record(base + i)])
    """
)


def test_processes_sharing_a_directory_never_collide(tmp_path: Path) -> None:
    """``nba serve --workers N`` opens one directory from N processes at the same moment."""
    folder = tmp_path / "shared"
    script = OPENER.format(root=str(ROOT), folder=str(folder))
    children = [
        subprocess.Popen(
            [sys.executable, "-c", script, str(base)], cwd=ROOT, stderr=subprocess.PIPE
        )
        for base in (0, 1000, 2000)
    ]
    errors = [c.communicate(timeout=60)[1].decode() for c in children]
    assert [c.returncode for c in children] == [0, 0, 0], errors
    assert len(segment_paths(folder)) == 60  # one segment per open, none shared
    ids = {d.decision_id for d in read_log(folder).decisions}
    assert ids == {f"d-{b + i:06d}" for b in (0, 1000, 2000) for i in range(20)}
