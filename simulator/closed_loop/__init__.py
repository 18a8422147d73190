"""Closed-loop evaluation of decision policies on the simulated retailer.

Simulated history is cut; profiles are built at the cut; then each policy
decides, day after day, for the same customers, whose answers come from the
simulator's true response model and flow back into the policy's online
profiles. An independent checker re-checks every delivered contact against
consent and the contact policy, and the metrics value every contact with the
truth.

* :mod:`~simulator.closed_loop.world`: simulation, cut, profiles, background;
* :mod:`~simulator.closed_loop.mapping`: catalog actions as simulator messages;
* :mod:`~simulator.closed_loop.truth`: the true incremental value of a message;
* :mod:`~simulator.closed_loop.oracle`: the oracles (myopic, and with lookahead)
  and the truth-fed scorer;
* :mod:`~simulator.closed_loop.send_times`: send times drawn uniformly, for the
  random baseline;
* :mod:`~simulator.closed_loop.policies`: the compared policies, by name;
* :mod:`~simulator.closed_loop.runner`: one policy in closed loop;
* :mod:`~simulator.closed_loop.checker`: the independent violation checker;
* :mod:`~simulator.closed_loop.metrics` and
  :mod:`~simulator.closed_loop.comparison`: all policies, checked and measured;
  the headline is the true incremental margin per customer over the horizon;
* :mod:`~simulator.closed_loop.playbook`: that margin per playbook scenario.

>>> world = build_world(ClosedLoopConfig(n_customers=150, history_days=30, days=2, seed=3))
>>> result = compare_policies(world, ["random", "oracle"], workers=1)
>>> [m.violations for m in result.metrics]
[0, 0]
"""

from simulator.closed_loop.checker import Violation, check_contacts
from simulator.closed_loop.comparison import ClosedLoopResult, check_run, compare_policies
from simulator.closed_loop.mapping import Message, MessageMapping
from simulator.closed_loop.metrics import PolicyMetrics, markdown_table
from simulator.closed_loop.oracle import LookaheadOraclePolicy, OraclePolicy, TruthScorer
from simulator.closed_loop.policies import DEFAULT_POLICIES, POLICY_FACTORIES, make_policy
from simulator.closed_loop.runner import PolicyRun, run_policy
from simulator.closed_loop.truth import TrueValue
from simulator.closed_loop.world import ClosedLoopConfig, ClosedLoopWorld, build_world

__all__ = [
    "DEFAULT_POLICIES",
    "POLICY_FACTORIES",
    "ClosedLoopConfig",
    "ClosedLoopResult",
    "ClosedLoopWorld",
    "LookaheadOraclePolicy",
    "Message",
    "MessageMapping",
    "OraclePolicy",
    "PolicyMetrics",
    "PolicyRun",
    "TrueValue",
    "TruthScorer",
    "Violation",
    "build_world",
    "check_contacts",
    "check_run",
    "compare_policies",
    "make_policy",
    "markdown_table",
    "run_policy",
]
