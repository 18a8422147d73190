"""``POST /v1/decisions`` decided in batches by the decider (:mod:`serving.decider`).

The requests queued while a batch is decided are decided together: their states read in
one Redis round trip, their records written in one more; a request's own error is its
answer alone; one customer is never decided twice at once; and a later decision of a
batch reads the day's usage as the earlier ones left it.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from fastapi.testclient import TestClient

from serving.app import create_app
from serving.decisions import Asked, DecisionService
from serving.schemas import DecisionContext
from tests.api_support import ApiWorld, build_world

WAIT = 30.0  # seconds before a test gives up on an event (never reached when it passes)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> ApiWorld:
    return build_world(tmp_path_factory.mktemp("decider"), customers=12, days=10)


class Held:
    """Holds the decider's first batch until released; records every batch's customers and
    every round trip's size."""

    def __init__(self, service: DecisionService) -> None:
        self.batches: list[list[str]] = []
        self.reads: list[int] = []
        self.records: list[int] = []
        self.entered = threading.Event()
        self.release = threading.Event()
        answer_all, read, record = (
            service.answer_all,
            service.contacts.read_for_decisions,
            service.contacts.record_all,
        )

        def held(asked: Sequence[Asked]) -> Any:
            self.batches.append([a.customer_id for a in asked])
            if not self.entered.is_set():
                self.entered.set()
                assert self.release.wait(WAIT), "the test never released the first batch"
            return answer_all(asked)

        def reading(reads: Sequence[Any]) -> Any:
            self.reads.append(len(reads))
            return read(reads)

        def recording(records: Sequence[Any]) -> Any:
            self.records.append(len(records))
            return record(records)

        service.answer_all = held  # type: ignore[method-assign]
        service.contacts.read_for_decisions = reading  # type: ignore[method-assign]
        service.contacts.record_all = recording  # type: ignore[method-assign]


@contextlib.contextmanager
def serve_held(world: ApiWorld, threads: int) -> Iterator[tuple[TestClient, Held]]:
    settings = world.settings(rate_limits={}, decision_threads=threads)
    app = create_app(settings, client=world.client, registry=world.registry)
    with TestClient(app) as client:
        held = Held(app.state.runtime.decisions)
        yield client, held
        held.release.set()


def queued(client: TestClient, n: int) -> None:
    """Wait until ``n`` requests wait in the decider's queue."""
    decider = client.app.state.runtime.decider  # type: ignore[attr-defined]
    deadline = time.monotonic() + WAIT
    while len(decider._queued) < n:
        assert time.monotonic() < deadline, "the requests never reached the decider"
        time.sleep(0.01)


def post(client: TestClient, world: ApiWorld, customer: str, **context: Any) -> Any:
    return client.post(
        "/v1/decisions",
        json={"customer_id": customer, "context": context},
        headers=world.headers(),
    )


def test_requests_queued_during_a_batch_are_decided_together(world: ApiWorld) -> None:
    with serve_held(world, threads=1) as (client, batches):
        decided_together(world, client, batches)


def decided_together(world: ApiWorld, client: TestClient, batches: Held) -> None:
    customers = list(world.data.customers["customer_id"].astype(str))[:7]
    with ThreadPoolExecutor(len(customers)) as pool:
        first = pool.submit(post, client, world, customers[0])
        assert batches.entered.wait(WAIT)
        rest = [pool.submit(post, client, world, c) for c in customers[1:6]]
        bad = pool.submit(post, client, world, customers[6], actions=["no_such_action"])
        queued(client, 6)
        batches.release.set()
        answers = [f.result(timeout=WAIT) for f in [first, *rest]]
        refused = bad.result(timeout=WAIT)

    assert [a.status_code for a in answers] == [200] * 6
    assert [a.json()["customer_id"] for a in answers] == customers[:6]
    assert len({a.json()["decision_id"] for a in answers}) == 6
    assert refused.status_code == 422 and "no_such_action" in refused.text
    # the held batch, then the six queued meanwhile: one read and one write for five
    assert len(batches.batches) == 2 and batches.batches[0] == customers[:1]
    assert sorted(batches.batches[1]) == customers[1:7]
    assert batches.reads == [1, 5]
    assert batches.records == [1, 5]


def test_one_customer_is_never_decided_twice_at_once(world: ApiWorld) -> None:
    a, b = list(world.data.customers["customer_id"].astype(str))[:2]
    with serve_held(world, threads=2) as (client, batches), ThreadPoolExecutor(4) as pool:
        first = pool.submit(post, client, world, a)
        assert batches.entered.wait(WAIT)  # a's first decision, held in one thread
        again = pool.submit(post, client, world, a)
        queued(client, 1)  # the other thread leaves a's second decision queued...
        other = pool.submit(post, client, world, b)
        assert other.result(timeout=WAIT).status_code == 200  # ...and decides b's meanwhile
        third = pool.submit(post, client, world, a)
        queued(client, 2)
        batches.release.set()
        answers = [f.result(timeout=WAIT) for f in (first, again, third)]

    assert [r.status_code for r in answers] == [200] * 3
    assert batches.batches == [[a], [b], [a], [a]]


def test_a_batch_reads_the_usage_its_earlier_decisions_consumed(world: ApiWorld) -> None:
    app = create_app(world.settings(rate_limits={}), client=world.client, registry=world.registry)
    with TestClient(app):
        service: DecisionService = app.state.runtime.decisions
        seen: list[tuple[Counter[str], Counter[str]]] = []  # (usage read, consumed)
        policy = service.policy

        def watched(models: Any, max_actions: int) -> Any:
            route = policy(models, max_actions).route

            class Watched:
                def route(self, ctx: Any, *, usage: Any, **kwargs: Any) -> Any:
                    routed = route(ctx, usage=usage, **kwargs)
                    spent = routed.decision.consumed.actions_sent
                    seen.append((Counter(usage.actions_sent), Counter(spent)))
                    return routed

            return Watched()

        service.policy = watched  # type: ignore[method-assign]
        customers = list(world.data.customers["customer_id"].astype(str))
        results = service.answer_all([Asked(c, DecisionContext(max_actions=3)) for c in customers])

    assert not [r for r in results if isinstance(r, Exception)]
    assert len(seen) == len(customers)
    stored = seen[0][0]  # the day's usage as read, once for the whole batch
    before = Counter[str]()
    for usage, spent in seen:
        assert usage - stored == +before  # what the batch sent earlier is in what it reads
        before.update(spent)
    assert sum(before.values()) > 0  # the batch did send something
