"""The policies a closed loop compares, built by name for a world.

All of them share the world's catalog and contact policy, and so the rules, and
are built as every decider is (:func:`nba.pipeline.build_pipeline`).

=================  ==========================================================
``nothing``        :class:`~nba.baselines.ControlPolicy`: never contacts (the
                   do-nothing counterfactual; its incremental margin is 0)
``random``         uniform over every eligible (action, channel, send time):
                   the engine with ``explore_share=1`` over a catalog without
                   do-nothing, and send times drawn uniformly among the allowed
                   moments (:class:`~simulator.closed_loop.send_times.UniformSendTimes`)
``random-action``  :class:`~nba.baselines.RandomPolicy`: a random eligible
                   action (do-nothing included) on the screened channel and time
``rules``          :class:`~nba.baselines.RuleBasedPolicy`: fixed journey priorities
``nba``            :class:`~nba.engine.NextBestActionPolicy` with exploration and
                   the default rule-based scorer (profile fields only)
``nba-greedy``     the same engine without exploration: always its highest
                   expected priority (a diagnostic: what exploration costs or
                   earns within the horizon)
``nba+truth``      the same engine fed true scores
                   (:class:`~simulator.closed_loop.oracle.TruthScorer`)
``oracle``         :class:`~simulator.closed_loop.oracle.LookaheadOraclePolicy`:
                   the true response model with a value of waiting (fatigue,
                   caps and better moments in the coming days)
``oracle-myopic``  :class:`~simulator.closed_loop.oracle.OraclePolicy`: the
                   highest true incremental margin now
=================  ==========================================================

A name ``A~B`` (e.g. ``oracle~nba``) is policy ``A`` held to ``B``'s contact
volume: at each tick it sends at most as many messages as ``B`` did, its
highest-priority ones, or for the random policies a uniformly drawn subset
(see :func:`~simulator.closed_loop.runner.run_policy`). ``random~nba`` is the
random baseline at the engine's contact volume.
"""

from __future__ import annotations

from collections.abc import Callable

from nba.catalog import Catalog
from nba.engine import NextBestActionPolicy
from nba.experiment import ArmKind
from nba.pipeline import DecisionPipeline, build_pipeline, policy_of_kind
from nba.scoring import Scorer
from simulator.closed_loop.oracle import (
    FutureTriggers,
    LookaheadOraclePolicy,
    OraclePolicy,
    TruthScorer,
)
from simulator.closed_loop.send_times import UniformSendTimes
from simulator.closed_loop.world import ClosedLoopWorld

#: The four policies of the issue's benchmark, in table order.
DEFAULT_POLICIES: tuple[str, ...] = ("random", "rules", "nba", "oracle")
#: Policies whose volume-matched variant keeps a uniform subset, not the highest priorities.
RANDOM_POLICIES: frozenset[str] = frozenset({"random", "random-action"})

PolicyFactory = Callable[[ClosedLoopWorld], DecisionPipeline]


class _TruthScorer(TruthScorer, Scorer):
    """The truth scorer with the scorers' default preparation (none)."""


def uniform_random(world: ClosedLoopWorld) -> DecisionPipeline:
    """Uniform over every eligible (action, channel, send time), never doing nothing."""
    catalog = Catalog([a for a in world.catalog if not a.is_do_nothing])
    rules = UniformSendTimes.of(world.contact_policy, seed=world.config.seed)
    return build_pipeline(
        catalog,
        rules,
        policy=policy_of_kind(ArmKind.CHAMPION, catalog, rules, explore_share=1.0),
    )


def lookahead_oracle(world: ClosedLoopWorld) -> DecisionPipeline:
    policy = LookaheadOraclePolicy(
        world.catalog,
        world.contact_policy,
        truth=world.truth,
        mapping=world.mapping,
        triggers=FutureTriggers.of(world.background),
        horizon_end=world.end,
    )
    return build_pipeline(world.catalog, world.contact_policy, policy=policy)


POLICY_FACTORIES: dict[str, PolicyFactory] = {
    "nothing": lambda w: build_pipeline(w.catalog, w.contact_policy, policy=ArmKind.CONTROL),
    "random": uniform_random,
    "random-action": lambda w: build_pipeline(w.catalog, w.contact_policy, policy=ArmKind.RANDOM),
    "rules": lambda w: build_pipeline(w.catalog, w.contact_policy, policy=ArmKind.RULE_BASED),
    "nba": lambda w: build_pipeline(w.catalog, w.contact_policy),
    "nba-greedy": lambda w: build_pipeline(
        w.catalog,
        w.contact_policy,
        policy=NextBestActionPolicy(w.catalog, w.contact_policy, exploration=False),
    ),
    "nba+truth": lambda w: build_pipeline(
        w.catalog, w.contact_policy, scorer=_TruthScorer(w.truth, w.mapping)
    ),
    "oracle": lookahead_oracle,
    "oracle-myopic": lambda w: build_pipeline(
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
