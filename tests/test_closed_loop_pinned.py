"""The closed loop's outcomes, pinned: speed work must not change what any policy does.

A small playbook world runs the benchmark's policies (the engine, the rules, the
oracle, and the random policy and the oracle held to the engine's volume); each
policy's decisions and contacts (who, what, when, on which channel, the sampled
outcomes, the true margins) are summarised and hashed, and compared with
``fixtures/closed_loop_pinned.json``, recorded before the loop was made faster
(main at a1249d3), then re-recorded once for a change of the engine's decisions (the
incentive valuation and do-nothing bar of the "offers" merge: the rules' and the
oracle's outcomes were identical, only the engine and the policies matched to its
volume changed), and again for the "reach" branch: the simulator's push answers at
published rates (every policy's outcomes change) and the engine weighs what a send costs
the next time-critical reminder (nba.reserve), and for the "scen" branch: that cost from
the customer's own triggers and for reminders already triggered (the rules and the oracle
identical; the engine and the policies matched to its volume changed), for the second
"offers" branch: an incentive whose plain message cannot come back (a cart's discount
reminder once the plain ones are spent) is valued as a message of its own, for the
"welcome" branch (a deferral credit for an action whose window closes) and for the
"reserve" branch: that rate shrunk toward the store's (empirical Bayes), a fading cart
reminder valued at its send time, and a reminder eligible now kept by the reserve (in
each, the rules and the oracle identical; only the engine and the policies matched to its
volume changed), and for the "quality3" branch: a message sent at the customer's best
hour looks for it within a day of its first allowed moment, not over its whole validity
(every policy's send times change), and for the "calib5" branch: a cart's last message
carries the discount only where the offer pays for itself (the rules and the oracle
identical; only the engine and the policies matched to its volume changed), and for
"value10": a percent discount costs its share of the order, a late reminder keeps its
costs (only the engine's logged decisions changed; every policy's contacts and margins
identical). One process and two processes must both give the recorded result.

Re-record (only for a change that is *meant* to alter the outcomes, and say why
in the commit)::

    PYTHONPATH=. .venv/bin/python tests/test_closed_loop_pinned.py --record
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from simulator.closed_loop import (
    ClosedLoopConfig,
    ClosedLoopResult,
    build_world,
    compare_policies,
    runner,
)

FIXTURE = Path(__file__).parent / "fixtures" / "closed_loop_pinned.json"
POLICIES = ["random~nba", "rules", "nba", "oracle", "oracle~nba"]
CONFIG = ClosedLoopConfig(
    n_customers=120, history_days=30, days=4, seed=5, n_products=300, playbook=True
)
#: Contact columns hashed (the action's type follows from its id), floats to 9 digits
#: (a vectorised sum may differ in its last bit).
CONTACT_COLUMNS = tuple(c for c in runner.CONTACT_COLUMNS if c != "action_type")
DECISION_COLUMNS = (
    "decision_id",
    "customer_id",
    "decided_at",
    "trigger",
    "action_id",
    "channel",
    "propensity",
    "explored",
    "eligible",
    "held_back",
)


def _digest(frame: pd.DataFrame, columns: tuple[str, ...]) -> str:
    text = []
    for row in frame[list(columns)].itertuples(index=False):
        text.append(
            "|".join(f"{v:.9g}" if isinstance(v, float) else str(v) for v in row)  # 9 digits
        )
    return hashlib.sha256("\n".join(text).encode()).hexdigest()


def summary(result: ClosedLoopResult) -> dict[str, Any]:
    """Per policy: counts, the total true margin, violations and hashes of the tables."""
    out: dict[str, Any] = {}
    for name, run in result.runs.items():
        out[name] = {
            "decisions": len(run.decisions),
            "contacts": len(run.contacts),
            "margin": round(float(run.contacts["margin"].sum()), 9),
            "violations": len(result.violations[name]),
            "events": run.events,
            "withdrawals": len(run.withdrawals),
            "contacts_sha256": _digest(run.contacts, CONTACT_COLUMNS),
            "decisions_sha256": _digest(run.decisions, DECISION_COLUMNS),
        }
    return out


@pytest.mark.parametrize("workers", [1, 2])
def test_the_loop_gives_the_recorded_outcomes(workers: int) -> None:
    recorded = json.loads(FIXTURE.read_text())
    assert recorded["config"] == repr(CONFIG), "the fixture was recorded for another world"
    result = compare_policies(build_world(CONFIG), POLICIES, workers=workers)
    got = summary(result)
    assert sorted(got) == sorted(recorded["policies"])
    for name, expected in recorded["policies"].items():
        assert got[name] == expected, name
    # not a degenerate world: every policy contacts someone, and the engine explores
    assert all(v["contacts"] > 0 for v in got.values())


if __name__ == "__main__":
    if sys.argv[1:] != ["--record"]:
        raise SystemExit("usage: test_closed_loop_pinned.py --record")
    result = compare_policies(build_world(CONFIG), POLICIES, workers=1)
    FIXTURE.write_text(
        json.dumps({"config": repr(CONFIG), "policies": summary(result)}, indent=2) + "\n"
    )
    print(json.dumps(summary(result), indent=2))
