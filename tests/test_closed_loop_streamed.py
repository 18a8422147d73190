"""Policies matched to another one's contact volume run alongside it, not after it.

The outcomes of every policy, in one process and in several, are pinned by
``test_closed_loop_pinned.py``; these tests cover how the reference's contacts per tick
reach the matched policies' processes (:class:`~simulator.closed_loop.comparison.TickCounts`).
"""

from __future__ import annotations

import os
import time

import pytest

from features.forked import Forked
from simulator.closed_loop import ClosedLoopConfig, build_world, compare_policies
from simulator.closed_loop.comparison import TickCounts, contacts_per_tick


def test_a_tick_not_yet_written_is_waited_for() -> None:
    counts = TickCounts(4)

    def reference() -> int:
        for tick, contacts in enumerate([3, 0, 7, 1]):
            time.sleep(0.02)
            counts.record(tick, contacts)
        return os.getpid()

    child = Forked(reference)  # writes into the shared counts from its own process
    assert [counts.get(tick, 0) for tick in range(4)] == [3, 0, 7, 1]
    assert child.result() != os.getpid()
    assert counts.get(4, 0) == 0 and list(counts) == [0, 1, 2, 3]


def test_streamed_limits_are_the_finished_runs_counts() -> None:
    world = build_world(
        ClosedLoopConfig(n_customers=60, history_days=20, days=2, seed=2, n_products=200)
    )
    together = compare_policies(world, ["nba", "random~nba"], workers=2)  # side by side
    after = compare_policies(world, ["nba", "random~nba"], workers=1)  # one after the other
    for name in ("nba", "random~nba"):
        assert together.runs[name].contacts.equals(after.runs[name].contacts), name
        assert together.runs[name].decisions.equals(after.runs[name].decisions), name
    limits = contacts_per_tick(world, together.runs["nba"])
    sent = contacts_per_tick(world, together.runs["random~nba"])
    assert sum(limits.values()) > 0
    assert all(sent.get(tick, 0) <= limits.get(tick, 0) for tick in sent)


def test_a_failing_reference_stops_the_policies_waiting_for_it() -> None:
    world = build_world(ClosedLoopConfig(n_customers=30, history_days=14, days=1, seed=1))
    with pytest.raises(RuntimeError, match="policy 'no-such-policy' failed"):
        compare_policies(world, ["no-such-policy", "rules~no-such-policy"], workers=2)
