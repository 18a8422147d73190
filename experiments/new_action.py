"""A new action added mid-run: does the engine find out that it is the best one?

The scenario of issue 13: on day ``add_day`` of a closed loop a marketer adds an
action to the catalog that is truly the best for one segment, with the
expectation a marketer would write for something new, below the incumbent's
(the catalog's ``value``), while the simulator's truth answers it better. The
engine has no statistics about it: it must explore it (Thompson sampling with
the prior of an unseen option), count its responses, and choose it for most of
that segment's decisions where it is eligible within ``window_days``.

:func:`run_new_action` runs the engine over one world with the catalog switched
at ``add_day`` (before: the catalog without the action; after: with it), and
measures on the segment's decisions where the new action was eligible, from
``add_day`` for ``window_days``:

* ``share``: the share of those decisions that chose it (the goal: at least 0.5);
* ``truly_best``: the share of those decisions at which, under the simulator's
  true response model, it had the highest incremental margin of the decision's
  options (do-nothing counts as 0): that it is *truly* the best is measured, not
  assumed.

``learn=False`` runs the same engine, catalog switch and seeds without the
response statistics (every option keeps its prior); ``model`` chooses what the
statistics give the policy (:data:`~features.online.response_stats.MODELS`: the
learned value of a message, or the response calibration alone).

>>> NEW_ACTION.id, NEW_ACTION_SEGMENT
('new_collection_active', 'active')
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from features.online.response_stats import (
    DEFAULT_HALF_LIFE_DAYS,
    DEFAULT_MODEL,
    MemoryResponseStats,
    ResponseCounts,
    StatsKey,
    margin_rates,
)
from nba.actions import Action
from nba.arbitration import Posterior
from nba.budgets import UsageCounts
from nba.catalog import Catalog, parse_catalog
from nba.channels import Channel
from nba.context import CustomerContext
from nba.decision import RoutedDecision
from nba.pipeline import DecisionPipeline, build_pipeline
from nba.screening import Restriction
from simulator.closed_loop import ClosedLoopConfig, build_world, run_policy
from simulator.closed_loop.mapping import KIND_BY_ACTION, MessageMapping
from simulator.closed_loop.world import ClosedLoopWorld, example_catalog

#: The action added mid-run: a collection preview in the customer's favourite category
#: for active customers (a ``new_collection`` message to the simulator), written with a
#: lower expected margin of a response than the weekly picks it competes with.
NEW_ACTION: Action = next(
    iter(
        parse_catalog(
            """
actions:
  - id: new_collection_active
    type: product_recommendation
    description: Preview of the new collection in the customer's top category.
    channels: [email]
    eligibility: >-
      lifecycle_state == 'active' and events_seen > 0 and known(top_category)
      and journey_phase != 'recommendation'
    value: max(average_basket, 30) * 0.07
    ttl_hours: 96
    cooldown_hours: 168
    template: new_collection_preview
"""
        )
    )
)
#: The segment (lifecycle state, as the statistics are kept) the new action is for.
NEW_ACTION_SEGMENT = "active"
#: Its message kind in the simulator.
NEW_ACTION_KIND = "new_collection"


@dataclass
class _Seen:
    """A decision of the segment where the new action was eligible."""

    customer_id: str
    at: dt.datetime
    chosen: str | None
    propensity: float
    options: list[tuple[str, str | None]]
    profile: Any


@dataclass
class CatalogSwitch:
    """A decider that decides with ``before`` until ``at``, then with ``after``, and
    records the decisions of ``segment`` where ``action_id`` was eligible."""

    before: DecisionPipeline
    after: DecisionPipeline
    at: dt.datetime
    action_id: str
    segment: str
    seen: list[_Seen] = field(default_factory=list)

    @property
    def name(self) -> str:
        return self.after.name

    def route(
        self,
        context: CustomerContext,
        *,
        usage: UsageCounts | None = None,
        stats: Mapping[str, Posterior] | None = None,
        seed: int | str = 0,
        decision_id: str | None = None,
        restriction: Restriction | None = None,
    ) -> RoutedDecision:
        pipeline = self.before if context.now < self.at else self.after
        routed = pipeline.route(
            context,
            usage=usage,
            stats=stats,
            seed=seed,
            decision_id=decision_id,
            restriction=restriction,
        )
        decision = routed.decision
        if (
            context.now >= self.at
            and context.profile.lifecycle_state.value == self.segment
            and self.action_id in decision.eligible_action_ids
        ):
            first = decision.actions[0] if decision.actions else None
            self.seen.append(
                _Seen(
                    context.customer_id,
                    context.now,
                    None if first is None else first.action_id,
                    decision.propensity,
                    [(o.action_id, o.channel) for o in decision.options],
                    context.profile,
                )
            )
        return routed


@dataclass(frozen=True)
class NewActionResult:
    """What the engine did with the new action in the window after it was added."""

    learn: bool
    model: str
    decisions: int
    chosen: int
    truly_best: float
    by_day: tuple[tuple[int, int, int], ...]  # (day since added, eligible, chosen)
    #: Mean logged propensity of those decisions (1: exploration settled).
    propensity: float
    #: Messages of the new action sent in the whole run, and how many of them were answered
    #: (a click or a purchase through it: what the statistics count as a response).
    sent: int
    answered: int
    #: The statistics of the new action on e-mail in the segment at the run's end
    #: (``None`` without statistics, or if it was never sent).
    counts: ResponseCounts | None
    seconds: float

    @property
    def share(self) -> float:
        return self.chosen / self.decisions if self.decisions else 0.0


def new_action_world(config: ClosedLoopConfig, kind: str = NEW_ACTION_KIND) -> ClosedLoopWorld:
    """The world with :data:`NEW_ACTION` in its catalog (the loop delivers it), mapped to
    a message of ``kind`` about the customer's top category."""
    catalog = Catalog([*example_catalog(), NEW_ACTION])
    world = build_world(config, catalog)
    mapping = MessageMapping(
        world.sim.products, kind_by_action={**KIND_BY_ACTION, NEW_ACTION.id: kind}
    )
    return dataclasses.replace(world, mapping=mapping)


def catalog_switch(world: ClosedLoopWorld, at: dt.datetime) -> CatalogSwitch:
    """The engine on the world's catalog without :data:`NEW_ACTION` until ``at``, with it
    from then on."""
    without = Catalog([a for a in world.catalog if a.id != NEW_ACTION.id])
    return CatalogSwitch(
        build_pipeline(without, world.contact_policy),
        build_pipeline(world.catalog, world.contact_policy),
        at,
        NEW_ACTION.id,
        NEW_ACTION_SEGMENT,
    )


def run_new_action(
    world: ClosedLoopWorld,
    *,
    add_day: int = 10,
    window_days: int = 3,
    learn: bool = True,
    half_life_days: float = DEFAULT_HALF_LIFE_DAYS,
    model: str = DEFAULT_MODEL,
) -> NewActionResult:
    """Run the engine with :data:`NEW_ACTION` added on ``add_day``; see the module doc."""
    if not 0 < add_day < world.config.days:
        raise ValueError(f"add_day must be within the run's {world.config.days} days")
    at = world.cut + dt.timedelta(days=add_day)
    switch = catalog_switch(world, at)
    stats = None
    if learn:
        stats = MemoryResponseStats(
            half_life_days=half_life_days,
            margin_rates=margin_rates(world.sim.products),
            model=model,
        )
    run = run_policy(world, switch, learn=stats or False)
    end = at + dt.timedelta(days=window_days)
    mine = run.contacts[run.contacts["action_id"] == NEW_ACTION.id]
    counts = None
    if stats is not None:
        key = StatsKey(NEW_ACTION.id, Channel.EMAIL.value, NEW_ACTION_SEGMENT)
        counts = stats.table(world.cut + dt.timedelta(days=world.config.days)).counts.get(key)
    seen = [s for s in switch.seen if s.at < end]
    days: dict[int, list[int]] = {}
    for s in seen:
        day = days.setdefault((s.at - at).days, [0, 0])
        day[0] += 1
        day[1] += s.chosen == NEW_ACTION.id
    return NewActionResult(
        learn=learn,
        model=model if learn else "",
        decisions=len(seen),
        chosen=sum(s.chosen == NEW_ACTION.id for s in seen),
        truly_best=_truly_best(world, seen),
        by_day=tuple((d, n, c) for d, (n, c) in sorted(days.items())),
        propensity=float(np.mean([s.propensity for s in seen])) if seen else 0.0,
        sent=len(mine),
        answered=int((mine["clicked"] | mine["converted"]).sum()),
        counts=counts,
        seconds=run.seconds,
    )


def _truly_best(world: ClosedLoopWorld, seen: list[_Seen]) -> float:
    """The share of ``seen`` where the new action has the highest true incremental margin
    of the decision's options, each valued at the decision's moment (do-nothing: 0)."""
    if not seen:
        return 0.0
    rows: list[tuple[int, str, Channel, dt.datetime, Any]] = []
    for i, s in enumerate(seen):
        for action_id, channel in s.options:
            if channel is None:
                continue
            message = world.mapping.message(world.catalog[action_id], s.profile)
            rows.append((i, action_id, Channel(channel), s.at, message))
    value = world.truth.incremental(
        [seen[i].customer_id for i, *_ in rows],
        [r[2] for r in rows],
        [r[3] for r in rows],
        [r[4] for r in rows],
        [0] * len(rows),
    )
    best_other = np.zeros(len(seen))
    new = np.full(len(seen), -np.inf)
    for (i, action_id, *_), margin in zip(rows, value.margin, strict=True):
        if action_id == NEW_ACTION.id:
            new[i] = max(new[i], margin)
        else:
            best_other[i] = max(best_other[i], margin)
    return float(np.mean(new > best_other))


__all__ = [
    "NEW_ACTION",
    "NEW_ACTION_SEGMENT",
    "CatalogSwitch",
    "NewActionResult",
    "catalog_switch",
    "new_action_world",
    "run_new_action",
]
