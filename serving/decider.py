"""One thread that decides ``POST /v1/decisions`` in batches: :class:`Decider`.

A request handed to the thread pool per decision waits for a free thread, then for the
interpreter lock at each of its two Redis round trips, among up to 40 threads that all
want it; under an open loop of 500 requests a second these waits, not the decisions,
made the slowest 1 % (BENCHMARKS.md, "Issue 15, items 1-2, fourth pass"). Here the event
loop queues each request and one thread takes every request queued since its last
batch: their states read in one round trip, each decided in turn, their records written
in one more (:meth:`serving.decisions.DecisionService.answer_all`), and the answers handed
back to the loop with one wake-up. At a low rate a batch is one request; as requests
queue up, batches grow and the round trips and hand-overs per request shrink, as the
decision log's group commit does for its fsync.

Given the decision log's group commit (``commit``), the thread queues a batch's records
to it itself and the answers go back to the loop once the writer has stored them
(durable before the answer, as before): one wake-up of the loop per batch instead of
two, and no turn of the loop between deciding and logging.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import threading
from collections.abc import Callable, Sequence
from typing import Protocol

from nba.decision import LoggedDecision
from serving.decisions import Answer, Asked, DecisionService

#: The most requests one batch decides (their answers wait for the whole batch: at
#: ~1 ms a decision, 16 keep a batch's last answer within ~16 ms of its first).
MAX_BATCH = 16

_Queued = tuple[Asked, asyncio.Future[Answer]]
_Settled = list[tuple[asyncio.Future[Answer], object]]


class Commit(Protocol):
    """Where a batch's records go before their answers: stored, then ``written(None)``
    (or ``written(error)``) in the writer's thread
    (:meth:`experiments.decision_log.GroupCommit.submit`)."""

    def submit(
        self,
        decisions: Sequence[LoggedDecision],
        written: Callable[[BaseException | None], None],
    ) -> None: ...


class Decider:
    """Decides the requests queued by :meth:`answer` in batches of at most ``max_batch``,
    in ``threads`` threads (each takes the next batch; one is the default), in the order
    they came; two requests for one customer are never decided at once (the second reads
    what the first recorded). With ``commit``, an answer comes back once its record is
    stored, its ``logged`` then ``None`` (nothing left to log); without, the caller logs
    it."""

    def __init__(
        self,
        service: DecisionService,
        max_batch: int = MAX_BATCH,
        threads: int = 1,
        commit: Commit | None = None,
    ) -> None:
        if max_batch < 1 or threads < 1:
            raise ValueError(f"max_batch {max_batch}, threads {threads}: must be at least 1")
        self.service = service
        self.commit = commit
        self.max_batch = max_batch
        self.batches = 0  # batches decided so far
        self._queued: list[_Queued] = []
        self._deciding: set[str] = set()  # the customers of the batches being decided
        self._wake = threading.Condition()
        self._closed = False
        self._threads = [
            threading.Thread(target=self._run, name=f"decider-{i}", daemon=True)
            for i in range(threads)
        ]
        for thread in self._threads:
            thread.start()

    async def answer(self, asked: Asked) -> Answer:
        """The service's answer to ``asked`` (raises what :meth:`DecisionService.answer`
        would raise)."""
        done: asyncio.Future[Answer] = asyncio.get_running_loop().create_future()
        with self._wake:
            if self._closed:
                raise RuntimeError("the decider is closed")
            self._queued.append((asked, done))
            self._wake.notify()
        return await done

    def close(self) -> None:
        """Decide what is queued, then stop the thread."""
        with self._wake:
            self._closed = True
            self._wake.notify_all()
        for thread in self._threads:
            thread.join()

    def _take(self) -> list[_Queued] | None:
        """The next batch (``None`` once closed and empty): the oldest requests, one per
        customer; the others stay queued, in order."""
        with self._wake:
            while True:
                if not self._queued and self._closed:
                    return None
                batch: list[_Queued] = []
                kept: list[_Queued] = []
                for queued in self._queued:
                    customer = queued[0].customer_id
                    if len(batch) < self.max_batch and customer not in self._deciding:
                        self._deciding.add(customer)
                        batch.append(queued)
                    else:
                        kept.append(queued)
                self._queued = kept
                if batch:
                    return batch
                self._wake.wait()  # nothing queued, or only customers being decided

    def _done(self, batch: list[_Queued]) -> None:
        with self._wake:
            self._deciding.difference_update(asked.customer_id for asked, _ in batch)
            if self._queued:
                self._wake.notify()

    def _run(self) -> None:
        while (batch := self._take()) is not None:
            results: list[Answer | BaseException]
            try:
                results = list(self.service.answer_all([asked for asked, _ in batch]))
                if len(results) != len(batch):
                    raise RuntimeError(f"{len(results)} answers to {len(batch)} requests")
            except BaseException as failure:  # a bug: every request of the batch fails
                results = [failure] * len(batch)
            self._done(batch)
            self.batches += 1
            now: _Settled = []
            logged: list[tuple[asyncio.Future[Answer], Answer]] = []
            for (_, done), result in zip(batch, results, strict=True):
                if (
                    self.commit is not None
                    and isinstance(result, Answer)
                    and result.logged is not None
                ):
                    logged.append((done, result))
                else:
                    now.append((done, result))
            if logged and self.commit is not None:
                self._log(self.commit, logged)
            _hand_back(now)

    def _log(self, commit: Commit, logged: list[tuple[asyncio.Future[Answer], Answer]]) -> None:
        """Queue the records of ``logged`` to ``commit``; their answers go back once
        stored (each fails with the write's error otherwise)."""

        def written(error: BaseException | None) -> None:
            _hand_back(
                [
                    (done, error if error is not None else dataclasses.replace(answer, logged=None))
                    for done, answer in logged
                ]
            )

        records = [answer.logged for _, answer in logged if answer.logged is not None]
        try:
            commit.submit(records, written)
        except Exception as error:  # the log is closed: these requests fail
            written(error)


def _hand_back(settled: _Settled) -> None:
    """Settle each future with its result on its own event loop: one wake-up per loop."""
    by_loop: dict[asyncio.AbstractEventLoop, _Settled] = {}
    for done, result in settled:
        by_loop.setdefault(done.get_loop(), []).append((done, result))
    for loop, own in by_loop.items():
        with contextlib.suppress(RuntimeError):  # that loop is closed: nobody waits
            loop.call_soon_threadsafe(_settle, own)


def _settle(settled: _Settled) -> None:
    for done, result in settled:
        if done.done():  # the request was cancelled (its client went away)
            continue
        if isinstance(result, BaseException):
            done.set_exception(result)
        else:
            done.set_result(result)  # type: ignore[arg-type]
