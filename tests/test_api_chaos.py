"""Chaos: Redis is killed and restarted under mixed load on a real API process.

One uvicorn process serves a real ``redis-server`` with ``appendfsync always``.
Three clients run at once: events (fresh ids), decisions and profile reads. In
the middle, Redis is ``kill -9``ed, stays down for a moment, and is started
again on its own files. The API must never answer a server error other than
the documented 503 for events and profile reads while Redis is down (decisions
degrade instead; profile reads may also meet their rate limit, 429), must recover by itself, and every event it acknowledged must
be in Redis at the end.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from features.batch import ProfileBuild
from tests.api_support import ApiWorld
from tests.test_api_durability import (  # noqa: F401 - fixtures
    PERSISTENCE,
    Ingestion,
    Process,
    binary,
    deploy,
    processes,
    profiles,
    stored_event_ids,
    world,
)

#: Events acknowledged before the crash, seconds Redis stays down, requests after recovery.
ACKED_BEFORE_CRASH = 150
DOWN_SECONDS = 1.5
AFTER_RECOVERY = 150
SCENARIO_SECONDS = 90


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
    deployment = deploy(
        binary, PERSISTENCE["aof-always"], world, profiles, tmp_path / "chaos", processes
    )
    deployment.wait_ready()
    ingestion = Ingestion(deployment.base_url, world)
    asker = Asker(deployment.base_url, world)
    threads = [threading.Thread(target=c.run, daemon=True) for c in (ingestion, asker)]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + SCENARIO_SECONDS
    try:
        _wait(lambda: len(ingestion.acked) >= ACKED_BEFORE_CRASH, "no events acked", deadline)
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
    missing = ingestion.acked - stored_event_ids(deployment.server, world)
    assert not missing, f"{len(missing)} acknowledged events lost, e.g. {sorted(missing)[:5]}"
    log = deployment.log.read_text()
    assert "Traceback" not in log, log[-2000:]
