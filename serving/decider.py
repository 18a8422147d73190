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
"""

from __future__ import annotations

import asyncio
import contextlib
import threading

from serving.decisions import Answer, Asked, DecisionService

#: The most requests one batch decides (their answers wait for the whole batch: at
#: ~1 ms a decision, 16 keep a batch's last answer within ~16 ms of its first).
MAX_BATCH = 16

_Queued = tuple[Asked, asyncio.Future[Answer]]


class Decider:
    """Decides the requests queued by :meth:`answer` in batches of at most ``max_batch``,
    in ``threads`` threads (each takes the next batch; one is the default), in the order
    they came; two requests for one customer are never decided at once (the second reads
    what the first recorded)."""

    def __init__(
        self, service: DecisionService, max_batch: int = MAX_BATCH, threads: int = 1
    ) -> None:
        if max_batch < 1 or threads < 1:
            raise ValueError(f"max_batch {max_batch}, threads {threads}: must be at least 1")
        self.service = service
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
            by_loop: dict[asyncio.AbstractEventLoop, list[tuple[asyncio.Future[Answer], object]]]
            by_loop = {}
            for (_, done), result in zip(batch, results, strict=True):
                by_loop.setdefault(done.get_loop(), []).append((done, result))
            for loop, settled in by_loop.items():  # one wake-up per event loop
                with contextlib.suppress(RuntimeError):  # that loop is closed: nobody waits
                    loop.call_soon_threadsafe(_settle, settled)


def _settle(settled: list[tuple[asyncio.Future[Answer], object]]) -> None:
    for done, result in settled:
        if done.done():  # the request was cancelled (its client went away)
            continue
        if isinstance(result, BaseException):
            done.set_exception(result)
        else:
            done.set_result(result)  # type: ignore[arg-type]
