"""``POST /v1/decisions`` logs through one group commit shared by concurrent requests.

A decision is in the log before its answer (as ever); while one write (its fsync) is in
progress, the requests decided meanwhile are written together by the next one, and no
request waits for a thread to decide in because others wait for the disk.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from fastapi.testclient import TestClient

from nba.decision import LoggedDecision
from serving.app import create_app
from tests.api_support import ApiWorld, build_world

WAIT = 30.0  # seconds before a test gives up on an event (never reached when it passes)


class HeldSink:
    """A decision log whose first append waits until ``release`` is set."""

    def __init__(self) -> None:
        self.appends: list[list[str]] = []
        self.entered = threading.Event()
        self.release = threading.Event()
        self._lock = threading.Lock()

    def append(self, decisions: Sequence[LoggedDecision]) -> None:
        if not self.entered.is_set():
            self.entered.set()
            assert self.release.wait(WAIT), "the test never released the first append"
        with self._lock:
            self.appends.append([d.decision_id for d in decisions])

    def logged(self) -> set[str]:
        with self._lock:
            return {i for batch in self.appends for i in batch}


class FailingSink:
    def append(self, decisions: Sequence[LoggedDecision]) -> None:
        raise OSError(28, "No space left on device")


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> ApiWorld:
    return build_world(tmp_path_factory.mktemp("commit"), customers=12, days=10)


def serve(world: ApiWorld, sink: Any) -> TestClient:
    app = create_app(
        world.settings(rate_limits={}), client=world.client, registry=world.registry, sink=sink
    )
    return TestClient(app, raise_server_exceptions=False)


@pytest.fixture
def held(world: ApiWorld) -> Iterator[tuple[TestClient, HeldSink]]:
    sink = HeldSink()
    with serve(world, sink) as client:
        yield client, sink
        sink.release.set()


def test_decisions_made_during_a_write_share_the_next_one_and_each_is_logged_first(
    world: ApiWorld, held: tuple[TestClient, HeldSink]
) -> None:
    client, sink = held
    headers = world.headers()
    customers = list(world.data.customers["customer_id"].astype(str))[:6]
    queued = threading.Semaphore(0)
    commit = client.app.state.runtime.commit  # type: ignore[attr-defined]
    submit = commit.submit  # the decider thread queues each batch's records itself

    def counted(decisions: Sequence[LoggedDecision], written: Any) -> None:
        submit(decisions, written)
        for _ in decisions:  # queued
            queued.release()

    commit.submit = counted

    def post(customer_id: str) -> tuple[str, bool]:
        response = client.post("/v1/decisions", json={"customer_id": customer_id}, headers=headers)
        assert response.status_code == 200, response.text
        decision_id = response.json()["decision_id"]
        return decision_id, decision_id in sink.logged()  # logged when answered?

    with ThreadPoolExecutor(len(customers)) as pool:
        first = pool.submit(post, customers[0])
        assert sink.entered.wait(WAIT), "the first decision was never written"
        rest = [pool.submit(post, c) for c in customers[1:]]
        for _ in customers:  # every request is decided while the first write is held
            assert queued.acquire(timeout=WAIT), "a decision waited for the held write"
        assert not any(f.done() for f in [first, *rest])  # none answered before its log
        sink.release.set()
        answers = [f.result(timeout=WAIT) for f in [first, *rest]]

    assert all(logged for _, logged in answers)
    assert len(sink.appends) == 2  # the held write, then one for the five decided meanwhile
    assert sink.appends[0] == [answers[0][0]]
    assert sorted(sink.appends[1]) == sorted(i for i, _ in answers[1:])


def test_a_log_that_cannot_be_written_fails_the_request_with_a_json_500(world: ApiWorld) -> None:
    with serve(world, FailingSink()) as client:
        customer = str(world.data.customers["customer_id"].iloc[0])
        response = client.post(
            "/v1/decisions",
            json={"customer_id": customer},
            headers=world.headers(),
        )
    assert response.status_code == 500
    assert response.headers["content-type"].startswith("application/json")
    assert "decision_id" not in response.text


def test_a_log_that_cannot_be_written_is_the_same_500_through_the_lane_and_the_stack(
    world: ApiWorld, caplog: pytest.LogCaptureFixture
) -> None:
    """The lane in front of the middleware stack (:class:`serving.lane.DecisionLane`) hands an
    unexpected error to the app's 500 handler and raises it on to the server, as Starlette's
    server-error middleware does: the same JSON body, the error logged with the route's
    template (never the customer), and the 500 counted under the route."""
    customer = str(world.data.customers["customer_id"].iloc[0])
    with serve(world, FailingSink()) as client:
        app: Any = client.app
        post = {"json": {"customer_id": customer}, "headers": world.headers()}
        fast = client.post("/v1/decisions", **post)
        app._plain = lambda: False  # the stack's way
        try:
            stacked = client.post("/v1/decisions", **post)
        finally:
            del app._plain
        with pytest.raises(OSError, match="No space left"):  # raised on to the server
            TestClient(app).post("/v1/decisions", **post)
        metrics = client.get("/metrics").text
    assert fast.status_code == stacked.status_code == 500
    assert (
        fast.json()
        == stacked.json()
        == {
            "error": {
                "code": "internal",
                "message": "internal error; the incident was logged",
                "details": [],
            }
        }
    )
    logged = [r.getMessage() for r in caplog.records if r.name == "nba.api"]
    assert logged.count("unexpected error on POST /v1/decisions") >= 2
    assert not any(customer in line for line in logged)
    assert 'endpoint="/v1/decisions",method="POST",status="500"' in metrics
