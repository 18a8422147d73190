"""The playbook's scenarios in closed loop: what each policy earns in each of them.

A contact belongs to the scenario of the action it sends, defined by the
action's trigger, i.e. what makes it eligible: its type, and for a milestone or
a recommendation the message it becomes in the simulator
(:class:`~simulator.closed_loop.mapping.MessageMapping`: the birthday milestone
is a ``birthday`` message, the collection launch a ``new_collection`` one).

===============  ============================================================
``cart``         cart reminders (an abandoned cart)
``browse``       browse reminders (products viewed, not carted)
``birthday``     the birthday milestone (the birthday is near)
``seasonal``     seasonal actions (the customer's season is coming)
``cross-sell``   cross-sell, after a purchase or a click-and-collect order
``reactivation`` reactivation (at risk or lapsed)
``launch``       the new-collection launch (early adopters)
``review``       review requests (an order delivered)
``welcome``      the welcome series (a new customer)
``other``        anything else (loyalty tier, up-sell, content, offers...)
===============  ============================================================

:func:`scenario_table` adds up the true incremental margin of each policy's
contacts per scenario (the headline's yardstick, :mod:`.metrics`) and compares
the engine with the rule-based journeys with a paired bootstrap interval;
:func:`action_table` breaks it down by action and channel, to show where one
policy earns what another does not; :func:`exploration_lines` what each policy's
exploratory picks (Thompson sampling's, not its highest expected priority) earned.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from nba.actions import Action, ActionType
from nba.catalog import Catalog
from simulator.closed_loop.mapping import MessageMapping
from simulator.closed_loop.metrics import bootstrap_weights
from simulator.closed_loop.runner import PolicyRun

SCENARIOS: tuple[str, ...] = (
    "cart",
    "browse",
    "birthday",
    "seasonal",
    "cross-sell",
    "reactivation",
    "launch",
    "review",
    "welcome",
    "other",
)

_BY_TYPE: Mapping[ActionType, str] = {
    ActionType.CART_REMINDER: "cart",
    ActionType.BROWSE_REMINDER: "browse",
    ActionType.SEASONAL: "seasonal",
    ActionType.CROSS_SELL: "cross-sell",
    ActionType.REACTIVATION: "reactivation",
    ActionType.REVIEW_REQUEST: "review",
    ActionType.WELCOME: "welcome",
}
_BY_KIND: Mapping[str, str] = {"birthday": "birthday", "new_collection": "launch"}


def scenario_of(action: Action, mapping: MessageMapping) -> str:
    """The scenario of ``action`` (see the module doc).

    >>> from simulator.closed_loop.world import example_catalog
    >>> catalog, mapping = example_catalog(), MessageMapping(pd.DataFrame({"product_id": []}))
    >>> [scenario_of(catalog[a], mapping) for a in ("birthday", "cross_sell_click_collect")]
    ['birthday', 'cross-sell']
    """
    if action.is_do_nothing:
        raise ValueError("do_nothing belongs to no scenario: it sends nothing")
    by_kind = _BY_KIND.get(mapping.kind(action))
    return by_kind or _BY_TYPE.get(action.type, "other")


def contact_scenarios(
    contacts: pd.DataFrame, catalog: Catalog, mapping: MessageMapping
) -> pd.Series:
    """The scenario of each contact (a row of a run's ``contacts``)."""
    return contacts["action_id"].map(scenario_names(catalog, mapping))


def scenario_names(catalog: Catalog, mapping: MessageMapping) -> dict[str, str]:
    """The scenario of every action of ``catalog`` that sends something, by action id."""
    return {a.id: scenario_of(a, mapping) for a in catalog if not a.is_do_nothing}


def scenario_table(
    runs: Mapping[str, PolicyRun],
    customers: Sequence[str],
    catalog: Catalog,
    mapping: MessageMapping,
    *,
    policies: Sequence[str] = ("rules", "nba", "oracle"),
    engine: str = "nba",
    journeys: str = "rules",
    seed: int = 0,
) -> str:
    """Per scenario: contacts and true incremental margin per 1,000 customers of each
    policy, and the engine minus the journeys with a paired 95 % interval."""
    shown = [p for p in policies if p in runs]
    index = {cid: i for i, cid in enumerate(customers)}
    totals: dict[str, dict[str, np.ndarray]] = {}
    counts: dict[str, pd.Series] = {}
    for name in {*shown, engine, journeys} & set(runs):
        contacts = runs[name].contacts
        scenario = contact_scenarios(contacts, catalog, mapping)
        counts[name] = scenario.value_counts()
        who = contacts["customer_id"].map(index).to_numpy(dtype=np.intp)
        margin = contacts["margin"].to_numpy(dtype=float)
        totals[name] = {
            s: np.bincount(who[mask], margin[mask], minlength=len(customers))
            for s in SCENARIOS
            for mask in [(scenario == s).to_numpy()]
        }
    per = 1000.0 / max(1, len(customers))
    header = " | ".join(f"{p} contacts | {p} margin" for p in shown)
    lines = [
        f"| scenario | {header} | {engine} - {journeys} (95% CI) | {engine} >= {journeys} |",
        "|---|" + "---:|---:|" * len(shown) + "---:|---|",
    ]
    weights = bootstrap_weights(seed, len(customers))
    for s in SCENARIOS:
        cells = " | ".join(
            f"{int(counts[p].get(s, 0)):,} | {totals[p][s].sum() * per:.1f}" for p in shown
        )
        compare = "n/a | n/a"
        if engine in totals and journeys in totals:
            diff = totals[engine][s] - totals[journeys][s]
            low, high = np.quantile(weights @ diff, [0.025, 0.975]) * per
            verdict = "yes" if diff.sum() >= 0 else "no"
            compare = f"{diff.sum() * per:+.1f} ({low:+.1f} to {high:+.1f}) | {verdict}"
        lines.append(f"| {s} | {cells} | {compare} |")
    return "\n".join(lines)


def action_table(
    runs: Mapping[str, PolicyRun],
    audience: int,
    scenarios: Mapping[str, str],
    policies: Sequence[str] = ("rules", "nba", "oracle~nba"),
) -> str:
    """Per scenario, action and channel: contacts and true incremental margin per 1,000
    of the ``audience`` of each policy (rows any of them sent), so a gap between two
    policies can be traced to the actions and channels it comes from. ``scenarios``:
    each action's scenario (:func:`scenario_names`)."""
    shown = [p for p in policies if p in runs]
    per = 1000.0 / max(1, audience)
    sums: dict[str, pd.DataFrame] = {}
    for name in shown:
        contacts = runs[name].contacts
        frame = contacts.assign(scenario=contacts["action_id"].map(scenarios))
        sums[name] = frame.groupby(["scenario", "action_id", "channel"])["margin"].agg(
            ["size", "sum"]
        )
    keys = sorted(set().union(*(frame.index for frame in sums.values())), key=_action_order)
    header = " | ".join(f"{p} contacts | {p} margin" for p in shown)
    lines = [
        f"| scenario | action | channel | {header} |",
        "|---|---|---|" + "---:|---:|" * len(shown),
    ]
    for key in keys:
        cells = []
        for name in shown:
            count, total = sums[name].loc[key] if key in sums[name].index else (0, 0.0)
            cells.append(f"{int(count):,} | {total * per:.1f}")
        lines.append(f"| {key[0]} | {key[1]} | {key[2]} | {' | '.join(cells)} |")
    return "\n".join(lines)


def _action_order(key: tuple[str, str, str]) -> tuple[int, str, str]:
    return (SCENARIOS.index(key[0]), key[1], key[2])


def exploration_lines(runs: Mapping[str, PolicyRun], customers: Sequence[str]) -> list[str]:
    """For each policy whose decisions explored: its contacts from exploratory picks
    and from its highest expected priority, and the true incremental margin of each
    per 1,000 customers and per contact."""
    per = 1000.0 / max(1, len(customers))
    lines = []
    for name, run in runs.items():
        if run.decisions.empty or not run.decisions["explored"].any():
            continue
        explored = run.decisions.set_index("decision_id")["explored"]
        picked = run.contacts.join(explored, on="decision_id")["explored"]
        was_explored = picked.fillna(False).astype(bool)
        contacts = run.contacts
        parts = []
        for label, mask in (("explored", was_explored), ("greedy", ~was_explored)):
            margin = contacts.loc[mask, "margin"]
            mean = margin.mean() if len(margin) else 0.0
            parts.append(
                f"{label} {len(margin):,} contacts, {margin.sum() * per:.1f} per 1,000 "
                f"customers ({mean:.3f} per contact)"
            )
        lines.append(f"- {name}: " + "; ".join(parts))
    return lines
