"""Several policies over the same world, checked and measured in the same run.

Each policy gets its own online profiles, contact history and budgets, and the
same background, seeds and truth; policies run in parallel processes when
``workers`` allows (forked, so the world is shared, not rebuilt).
"""

from __future__ import annotations

import ctypes
import datetime as dt
import functools
import gc
import multiprocessing.connection
import os
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import cast

import pyarrow

from features.forked import Forked
from simulator.closed_loop.checker import (
    EarlierContacts,
    Violation,
    check_contacts,
    earlier_contacts,
)
from simulator.closed_loop.metrics import (
    PolicyMetrics,
    headline_table,
    markdown_table,
    policy_metrics,
)
from simulator.closed_loop.playbook import (
    action_table,
    exploration_lines,
    scenario_names,
    scenario_table,
)
from simulator.closed_loop.policies import (
    DEFAULT_POLICIES,
    RANDOM_POLICIES,
    make_policy,
    split_matched,
)
from simulator.closed_loop.runner import LoopStart, PolicyRun, loop_start, run_policy
from simulator.closed_loop.world import ClosedLoopWorld

Progress = Callable[[str, int, int], None]


@dataclass(frozen=True, eq=False)
class ClosedLoopResult:
    """Runs, violations and metrics of each policy, in the order they were asked for."""

    world: ClosedLoopWorld
    runs: dict[str, PolicyRun]
    violations: dict[str, list[Violation]]
    metrics: list[PolicyMetrics]

    def table(self) -> str:
        return markdown_table(self.metrics)

    def headline(self) -> str:
        """True incremental margin per customer and the engine's ratios (:mod:`.metrics`)."""
        return headline_table(
            self.runs, self.metrics, self.world.customer_ids, seed=self.world.config.seed
        )

    def scenarios(self, policies: Sequence[str] = ("rules", "nba", "oracle")) -> str:
        """True incremental margin per scenario (:mod:`.playbook`)."""
        world = self.world
        return scenario_table(
            self.runs,
            world.customer_ids,
            world.catalog,
            world.mapping,
            policies=policies,
            seed=world.config.seed,
        )

    def actions(self, policies: Sequence[str] = ("rules", "nba", "oracle~nba")) -> str:
        """True incremental margin per scenario, action and channel (:mod:`.playbook`)."""
        world = self.world
        names = scenario_names(world.catalog, world.mapping)
        return action_table(self.runs, len(world.customer_ids), names, policies)

    def exploration(self) -> list[str]:
        """What exploratory picks earned, per exploring policy (:mod:`.playbook`)."""
        return exploration_lines(self.runs, self.world.customer_ids)

    def metric(self, policy: str) -> PolicyMetrics:
        return next(m for m in self.metrics if m.policy == policy)


def check_run(
    world: ClosedLoopWorld, run: PolicyRun, history: EarlierContacts | None = None
) -> list[Violation]:
    """The independent checker on one run's delivered contacts (``history``: the world's
    contacts before the cut already read, :func:`~.checker.earlier_contacts`)."""
    return check_contacts(
        run.contacts,
        world.contact_policy,
        consent=world.consent,
        timezones=world.timezones,
        withdrawals=run.withdrawals,
        history=world.history_contacts if history is None else history,
        refusals=world.refusals,
        opt_ins=world.opt_ins,
    )


def compare_policies(
    world: ClosedLoopWorld,
    policies: Sequence[str] = DEFAULT_POLICIES,
    *,
    workers: int | None = None,
    progress: Progress | None = None,
    start: LoopStart | None = None,
) -> ClosedLoopResult:
    """Run each named policy (see :mod:`simulator.closed_loop.policies`) in closed loop.

    Volume-matched policies (``oracle~nba``) run after the policy they match.
    ``workers`` processes run policies side by side (default: one per core, at
    most one per policy; see :func:`_run_forked`); ``progress(policy, done, total)``
    reports ticks when running in this process. The results do not depend on
    ``workers`` (tested). ``start`` (:func:`~.runner.loop_start` of ``world``) is what the
    forked runs start from, built here when omitted (serial runs build one per policy).
    """
    plain = [name for name in policies if split_matched(name)[1] is None]
    matched = [name for name in policies if split_matched(name)[1] is not None]
    for name in matched:
        reference = split_matched(name)[1]
        if reference not in plain:
            raise ValueError(f"{name}: policy {reference!r} must be compared in the same run")
    workers = min(workers or os.cpu_count() or 1, len(policies))
    if workers > 1:  # each run checked in its process, as it ends
        checked = _run_forked(world, policies, workers, start)
        runs = {name: run for name, (run, _) in checked.items()}
        violations = {name: found for name, (_, found) in checked.items()}
    else:
        runs = _run_serial(world, policies, progress)
        violations = {name: check_run(world, run) for name, run in runs.items()}
    metrics = [
        policy_metrics(runs[name], violations[name], world.customer_ids, seed=world.config.seed)
        for name in policies
    ]
    return ClosedLoopResult(world, runs, violations, metrics)


def contacts_per_tick(world: ClosedLoopWorld, run: PolicyRun) -> dict[int, int]:
    """How many contacts ``run`` decided at each tick."""
    if run.contacts.empty:
        return {}
    step = dt.timedelta(hours=world.config.trigger_every_hours)
    ticks = [(t - world.cut) // step for t in run.contacts["decided_at"]]
    return dict(Counter(ticks))


def _run_serial(
    world: ClosedLoopWorld,
    names: Sequence[str],
    progress: Progress | None,
) -> dict[str, PolicyRun]:
    """In this process, one after the other: the plain policies, then the matched ones."""
    runs: dict[str, PolicyRun] = {}
    ordered = sorted(names, key=lambda n: split_matched(n)[1] is not None)  # stable
    for name in ordered:
        reference = split_matched(name)[1]
        limits = None if reference is None else contacts_per_tick(world, runs[reference])

        def report(done: int, total: int, name: str = name) -> None:
            if progress is not None:
                progress(name, done, total)

        runs[name] = _run_one(world, name, limits, report)
    return runs


class TickCounts(Mapping[int, int]):
    """A reference policy's contacts per tick, written by its forked process as each tick
    ends and read, as they come, by the processes of the policies matched to it (shared
    memory made before the fork: the writer never waits for a reader).

    Reading a tick not yet written waits for it, so a matched policy runs alongside its
    reference, at most as far as the reference has got, instead of after it. Every tick
    is written, with 0 when nothing was sent, so the values are those of
    :func:`contacts_per_tick` on the finished run (ticks without contacts read 0 here and
    are absent there; the loop reads both with ``get(tick, 0)``).

    >>> counts = TickCounts(3)
    >>> counts.record(0, 5); counts.record(1, 0)
    >>> counts[0], counts.get(1, 0), counts.get(7, 0)
    (5, 0, 0)
    """

    def __init__(self, n_ticks: int) -> None:
        self._counts = multiprocessing.get_context("fork").RawArray("q", [-1] * n_ticks)

    def record(self, tick: int, contacts: int) -> None:
        self._counts[tick] = contacts

    def __getitem__(self, tick: int) -> int:
        if not 0 <= tick < len(self._counts):
            raise KeyError(tick)
        pause = 0.001
        while (contacts := self._counts[tick]) < 0:  # the reference has not got there yet
            time.sleep(pause)
            pause = min(2 * pause, 0.05)
        return int(contacts)

    def __iter__(self) -> Iterator[int]:
        return iter(range(len(self._counts)))

    def __len__(self) -> int:
        return len(self._counts)


def _run_forked(
    world: ClosedLoopWorld, names: Sequence[str], workers: int, start: LoopStart | None = None
) -> dict[str, tuple[PolicyRun, list[Violation]]]:
    """Each policy in a forked process of its own, at most ``workers`` at a time, and its
    run checked there (:func:`check_run`) as it ends, alongside the runs still going,
    instead of one after the other in this process once all are done (at 100,000
    customers x 30 days millions of contacts each).

    The world and the start of a run (:func:`~.runner.loop_start`: the profiles at the
    cut and the history's sends) are built once here and inherited, not rebuilt per
    policy; a forked process changes only its own copy. The policies that others are
    matched to start first, then the matched ones, then the others. A matched policy may
    start as soon as its reference has started: it reads the reference's contacts per
    tick as they are written (:class:`TickCounts`), so with ``workers`` at least the
    number of policies all of them run at once and the cores stay busy to the end.
    """
    start = start or loop_start(world, workers=workers)
    history = earlier_contacts(world.history_contacts)  # read once for every run's check
    release_free_memory()
    # the objects so far are shared with the children until written: out of the cycle
    # collector's reach, its passes do not write to them (and copy their pages) in each
    gc.freeze()
    try:
        return _run_children(world, names, workers, start, history)
    finally:
        gc.unfreeze()


def release_free_memory() -> None:
    """Give the memory freed so far back to the system before forking: the world's build
    frees more than it keeps (at 20,000 customers 1.3 GB resident after it, 0.8 GB of it
    live), and the allocators (glibc's, Arrow's) keep the freed pages resident; each
    forked process would start from them too."""
    gc.collect()
    pyarrow.default_memory_pool().release_unused()
    try:
        trim = ctypes.CDLL("libc.so.6").malloc_trim
    except (OSError, AttributeError):  # not glibc: nothing to trim by hand
        return
    trim(0)


def _run_children(
    world: ClosedLoopWorld,
    names: Sequence[str],
    workers: int,
    start: LoopStart,
    history: EarlierContacts,
) -> dict[str, tuple[PolicyRun, list[Violation]]]:
    n_ticks = world.config.days * 24 // world.config.trigger_every_hours
    referenced = {split_matched(n)[1] for n in names}
    waiting = sorted(  # stable: references, then matched policies, then the others
        names, key=lambda n: (n not in referenced, split_matched(n)[1] is None)
    )
    counts: dict[str, TickCounts] = {}  # per started reference
    runs: dict[str, tuple[PolicyRun, list[Violation]]] = {}
    running: dict[Connection, tuple[str, Forked[tuple[PolicyRun, list[Violation]]]]] = {}
    while waiting or running:
        for name in list(waiting):
            reference = split_matched(name)[1]
            if len(running) >= workers or (reference is not None and reference not in counts):
                continue
            limits = None if reference is None else counts[reference]
            on_tick = None
            if name in referenced:
                counts[name] = TickCounts(n_ticks)
                on_tick = counts[name].record
            child = Forked(
                functools.partial(_run_checked, world, name, limits, start, on_tick, history)
            )
            running[child.connection] = (name, child)
            waiting.remove(name)
        for ready in multiprocessing.connection.wait(list(running)):
            name, child = running.pop(cast(Connection, ready))
            try:
                runs[name] = child.result()
            except Exception as exc:
                for _, other in running.values():
                    other.terminate()
                raise RuntimeError(f"policy {name!r} failed in its process: {exc!r}") from exc
    return runs


def _run_checked(
    world: ClosedLoopWorld,
    name: str,
    limits: Mapping[int, int] | None,
    start: LoopStart,
    on_tick: Callable[[int, int], None] | None,
    history: EarlierContacts | None = None,
) -> tuple[PolicyRun, list[Violation]]:
    """:func:`_run_one` and the checker's verdict on its run (in a forked process)."""
    run = _run_one(world, name, limits, start=start, on_tick=on_tick)
    return run, check_run(world, run, history)


def _run_one(
    world: ClosedLoopWorld,
    name: str,
    limits: Mapping[int, int] | None,
    progress: Callable[[int, int], None] | None = None,
    start: LoopStart | None = None,
    on_tick: Callable[[int, int], None] | None = None,
) -> PolicyRun:
    return run_policy(
        world,
        make_policy(name, world),
        name=name,
        contact_limits=limits,
        keep_at_random=split_matched(name)[0] in RANDOM_POLICIES,
        progress=progress,
        start=start,
        on_tick=on_tick,
    )
