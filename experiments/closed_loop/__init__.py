"""Closed-loop evaluation of decision policies on the simulated retailer.

Simulated history is cut; profiles are built at the cut; then each policy
decides, day after day, for the same customers, whose answers come from the
simulator's true response model and flow back into the policy's online
profiles. An independent checker re-checks every delivered contact against
consent and the contact policy, and the metrics value every contact with the
truth.

* :mod:`~experiments.closed_loop.world`: simulation, cut, profiles, background;
* :mod:`~experiments.closed_loop.mapping`: catalog actions as simulator messages;
* :mod:`~experiments.closed_loop.truth`: the true incremental value of a message;
* :mod:`~experiments.closed_loop.oracle`: the oracle and the truth-fed scorer;
* :mod:`~experiments.closed_loop.policies`: the compared policies, by name;
* :mod:`~experiments.closed_loop.runner`: one policy in closed loop;
* :mod:`~experiments.closed_loop.checker`: the independent violation checker;
* :mod:`~experiments.closed_loop.metrics` and
  :mod:`~experiments.closed_loop.comparison`: all policies, checked and measured.

>>> world = build_world(ClosedLoopConfig(n_customers=150, history_days=30, days=2, seed=3))
>>> result = compare_policies(world, ["random", "oracle"], workers=1)
>>> [m.violations for m in result.metrics]
[0, 0]
"""

from experiments.closed_loop.checker import Violation, check_contacts
from experiments.closed_loop.comparison import ClosedLoopResult, check_run, compare_policies
from experiments.closed_loop.mapping import Message, MessageMapping
from experiments.closed_loop.metrics import PolicyMetrics, markdown_table
from experiments.closed_loop.oracle import OraclePolicy, TruthScorer
from experiments.closed_loop.policies import DEFAULT_POLICIES, POLICY_FACTORIES, make_policy
from experiments.closed_loop.runner import PolicyRun, run_policy
from experiments.closed_loop.truth import TrueValue
from experiments.closed_loop.world import ClosedLoopConfig, ClosedLoopWorld, build_world

__all__ = [
    "DEFAULT_POLICIES",
    "POLICY_FACTORIES",
    "ClosedLoopConfig",
    "ClosedLoopResult",
    "ClosedLoopWorld",
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
