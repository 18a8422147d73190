"""The response statistics a decision reads: one table per worker and refresh interval, and
when it goes stale one request reads the next while the requests in flight keep the old."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from serving.app import create_app
from serving.decisions import DecisionService
from serving.schemas import DecisionContext
from tests.api_support import ApiWorld, build_world

LIMIT = 60.0  # seconds: nothing goes stale by itself during the test


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> ApiWorld:
    return build_world(tmp_path_factory.mktemp("api-stats-refresh"), customers=40, days=20)


@pytest.fixture()
def service(world: ApiWorld) -> Iterator[DecisionService]:
    app = create_app(
        world.settings(stats_refresh_seconds=LIMIT), client=world.client, registry=None
    )
    with TestClient(app):
        yield app.state.runtime.decisions


class ReadsStats:
    """Records whether each decision's read asked for the statistics; a read that does can
    be held until released (a request in flight)."""

    def __init__(self, service: DecisionService) -> None:
        self.asked: list[bool] = []
        self.hold = threading.Event()
        self.held = threading.Event()
        self.release = threading.Event()
        read = service.contacts.read_for_decisions

        def recording(reads: Any) -> Any:
            asked = [r.with_stats for r in reads]
            self.asked += asked
            if any(asked) and self.hold.is_set():
                self.held.set()
                assert self.release.wait(10)
            return read(reads)

        service.contacts.read_for_decisions = recording  # type: ignore[method-assign]


def decide(service: DecisionService, world: ApiWorld) -> None:
    customer = str(world.data.customers["customer_id"].iloc[0])
    service.answer_logged(customer, DecisionContext())


def age(service: DecisionService, seconds: float) -> None:
    assert service._stats is not None
    fetched, table = service._stats
    service._stats = (fetched - seconds, table)


def test_a_fresh_table_is_not_read_again(service: DecisionService, world: ApiWorld) -> None:
    reads = ReadsStats(service)
    for _ in range(3):
        decide(service, world)
    assert reads.asked == [True, False, False]


def test_a_stale_table_is_read_by_one_request_while_the_others_keep_the_old(
    service: DecisionService, world: ApiWorld
) -> None:
    reads = ReadsStats(service)
    decide(service, world)
    assert service._stats is not None
    old = service._stats[1]
    age(service, LIMIT + 1)
    reads.hold.set()
    first = threading.Thread(target=decide, args=(service, world))
    first.start()
    assert reads.held.wait(10), "the first request after the table went stale reads it"
    for _ in range(3):  # started while the first one's read is in flight
        decide(service, world)
    reads.release.set()
    first.join(10)
    assert reads.asked == [True, True, False, False, False]
    assert service._stats is not None and service._stats[1] is not old  # the new table
    decide(service, world)
    assert reads.asked[-1] is False


def test_a_refresh_that_never_came_back_is_tried_again(
    service: DecisionService, world: ApiWorld
) -> None:
    reads = ReadsStats(service)
    decide(service, world)
    age(service, LIMIT + 1)
    assert service._fresh_stats(service.clock()) is None  # a request set out to read it...
    decide(service, world)  # ...and has not come back: this one keeps the old table
    age(service, LIMIT)  # twice the interval without a new table: read it again
    decide(service, world)
    assert reads.asked == [True, False, True]


def test_a_request_for_a_nearby_moment_shares_the_table_a_distant_one_reads_its_own(
    service: DecisionService, world: ApiWorld
) -> None:
    """A journey tool that sends the triggering event's time (minutes ago) decides with the
    worker's table; a moment days away (a replay) reads a table of its own."""
    import datetime as dt

    reads = ReadsStats(service)
    customer = str(world.data.customers["customer_id"].iloc[0])
    decide(service, world)
    now = service.clock()
    for minutes in (5, 15):  # within a thousandth of the 14-day half-life (20 minutes)
        moment = now - dt.timedelta(minutes=minutes)
        service.answer_logged(customer, DecisionContext(timestamp=moment))
    assert reads.asked == [True, False, False]
    service.answer_logged(customer, DecisionContext(timestamp=now - dt.timedelta(days=2)))
    assert reads.asked[-1] is True
