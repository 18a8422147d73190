"""The policies a closed loop compares, built by name for a world.

All of them share the world's catalog and contact policy, and so the rules, and
are built as every decider is (:func:`nba.pipeline.build_pipeline`).

=============  ==============================================================
``random``     :class:`~nba.baselines.RandomPolicy`: a random eligible action
``rules``      :class:`~nba.baselines.RuleBasedPolicy`: fixed journey priorities
``nba``        :class:`~nba.engine.NextBestActionPolicy` with exploration and
               the default rule-based scorer (profile fields only)
``nba+truth``  the same engine fed true scores
               (:class:`~simulator.closed_loop.oracle.TruthScorer`)
``oracle``     :class:`~simulator.closed_loop.oracle.OraclePolicy`: the
               highest true incremental margin
=============  ==============================================================

A name ``A~B`` (e.g. ``oracle~nba``) is policy ``A`` held to ``B``'s contact
volume: at each tick it sends at most as many messages as ``B`` did, its
highest-priority ones (see :func:`~simulator.closed_loop.runner.run_policy`).
"""

from __future__ import annotations

from collections.abc import Callable

from nba.experiment import ArmKind
from nba.pipeline import DecisionPipeline, build_pipeline
from nba.scoring import Scorer
from simulator.closed_loop.oracle import OraclePolicy, TruthScorer
from simulator.closed_loop.world import ClosedLoopWorld

#: The four policies of the issue's benchmark, in table order.
DEFAULT_POLICIES: tuple[str, ...] = ("random", "rules", "nba", "oracle")

PolicyFactory = Callable[[ClosedLoopWorld], DecisionPipeline]


class _TruthScorer(TruthScorer, Scorer):
    """The truth scorer with the scorers' default preparation (none)."""


POLICY_FACTORIES: dict[str, PolicyFactory] = {
    "random": lambda w: build_pipeline(w.catalog, w.contact_policy, policy=ArmKind.RANDOM),
    "rules": lambda w: build_pipeline(w.catalog, w.contact_policy, policy=ArmKind.RULE_BASED),
    "nba": lambda w: build_pipeline(w.catalog, w.contact_policy),
    "nba+truth": lambda w: build_pipeline(
        w.catalog, w.contact_policy, scorer=_TruthScorer(w.truth, w.mapping)
    ),
    "oracle": lambda w: build_pipeline(
        w.catalog,
        w.contact_policy,
        policy=OraclePolicy(w.catalog, w.contact_policy, truth=w.truth, mapping=w.mapping),
    ),
}


def split_matched(name: str) -> tuple[str, str | None]:
    """``("oracle", "nba")`` for ``"oracle~nba"``, ``(name, None)`` otherwise.

    >>> split_matched("oracle~nba"), split_matched("nba")
    (('oracle', 'nba'), ('nba', None))
    """
    policy, _, reference = name.partition("~")
    return policy, reference or None


def make_policy(name: str, world: ClosedLoopWorld) -> DecisionPipeline:
    """The policy called ``name`` (see the module doc; a ``~`` suffix is ignored)."""
    name, _ = split_matched(name)
    try:
        factory = POLICY_FACTORIES[name]
    except KeyError:
        known = ", ".join(POLICY_FACTORIES)
        raise ValueError(f"unknown policy {name!r} (expected one of: {known})") from None
    return factory(world)
