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
the engine with the rule-based journeys with a paired bootstrap interval.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from nba.actions import Action, ActionType
from nba.catalog import Catalog
from simulator.closed_loop.mapping import MessageMapping
from simulator.closed_loop.metrics import BOOTSTRAP_DRAWS
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
    names = {a.id: scenario_of(a, mapping) for a in catalog if not a.is_do_nothing}
    return contacts["action_id"].map(names)


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
    weights = np.random.default_rng(seed).poisson(1.0, size=(BOOTSTRAP_DRAWS, len(customers)))
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
