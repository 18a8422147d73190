"""Four customers worth showing, and what the engine decides for them.

:func:`scenario_decisions` picks, among simulated profiles, a customer who
just abandoned a cart, one without SMS consent, one who is lapsing and one
whose birthday is within a week, decides for each with the engine, and
:func:`render_scenarios` prints the actions, channels, send times and reasons.
Among the customers who fit, one the engine contacts is preferred. When none
fits, or none that fits can be contacted at ``now`` (a small data set may have
no cart of the right age, or its owner already had their e-mail of the day),
an active customer's profile is adjusted just enough (a cart added two hours
ago, a birthday in three days) and marked ``adjusted``.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from nba.actions import ActionType
from nba.catalog import Catalog
from nba.channels import Channel
from nba.contact_policy import ContactPolicy
from nba.context import CustomerContext
from nba.decision import Decision
from nba.engine import NextBestActionPolicy
from nba.policy import DecisionPolicy
from nba.profile import CustomerProfile, LifecycleState


@dataclass(frozen=True)
class ScenarioDecision:
    """A scenario, the customer chosen for it and the engine's decision."""

    scenario: str
    profile: CustomerProfile
    decision: Decision
    adjusted: str = ""


def _cart(p: CustomerProfile) -> bool:
    return bool(p.cart_items) and p.cart_age_hours is not None and 1 <= p.cart_age_hours <= 12


def _no_sms(p: CustomerProfile) -> bool:
    return not p.consented(Channel.SMS) and p.consented(Channel.EMAIL)


def _lapsing(p: CustomerProfile) -> bool:
    return (
        p.lifecycle_state in (LifecycleState.AT_RISK, LifecycleState.LAPSED)
        and p.purchases_total >= 1
    )


def _birthday(p: CustomerProfile) -> bool:
    return p.days_to_birthday is not None and 0 <= p.days_to_birthday <= 7


def _with_cart(p: CustomerProfile) -> tuple[CustomerProfile, str]:
    items = p.cart_items or p.browsed_products[:1] or p.last_purchased_products[:1] or ("P1",)
    value = p.cart_value or max(p.average_basket, 40.0)
    return (
        dataclasses.replace(p, cart_items=items, cart_value=value, cart_age_hours=2.0),
        "cart set to 2 hours old",
    )


def _with_birthday(p: CustomerProfile) -> tuple[CustomerProfile, str]:
    return dataclasses.replace(p, days_to_birthday=3), "birthday set to 3 days from now"


@dataclass(frozen=True)
class Scenario:
    """Who fits a scenario, who fits best (lowest ``rank`` first), the action types that
    show it off (any contact when empty), and how to make a profile fit."""

    name: str
    fits: Callable[[CustomerProfile], bool]
    rank: Callable[[CustomerProfile], float]
    shows: frozenset[ActionType] = frozenset()
    adjust: Callable[[CustomerProfile], tuple[CustomerProfile, str]] | None = None


SCENARIOS: tuple[Scenario, ...] = (
    Scenario(
        "abandoned cart",
        _cart,
        lambda p: p.cart_age_hours or 0.0,
        frozenset({ActionType.CART_REMINDER}),
        _with_cart,
    ),
    Scenario("no SMS consent", _no_sms, lambda p: -float(p.events_seen)),
    Scenario("lapsing", _lapsing, lambda p: -p.revenue_total, frozenset({ActionType.REACTIVATION})),
    Scenario(
        "birthday next week",
        _birthday,
        lambda p: float(p.days_to_birthday or 0),
        frozenset({ActionType.MILESTONE}),
        _with_birthday,
    ),
)


def scenario_decisions(
    profiles: Sequence[CustomerProfile],
    now: dt.datetime,
    catalog: Catalog,
    contact_policy: ContactPolicy | None = None,
    *,
    policy: DecisionPolicy | None = None,
    seed: int = 0,
    max_tries: int = 50,
) -> list[ScenarioDecision]:
    """One decision per scenario (see the module doc), each for a different customer.

    Among the ``max_tries`` best fits of a scenario, the first customer for whom the
    engine picks an action that shows the scenario is shown, else the first it
    contacts at all (doing nothing is a fine answer, but a less instructive one),
    else the best fit.
    """
    policy = policy or NextBestActionPolicy(catalog, contact_policy)
    taken: set[str] = set()
    out: list[ScenarioDecision] = []
    active = sorted(
        (p for p in profiles if p.consented(Channel.EMAIL)), key=lambda p: -p.events_seen
    )

    def decide(profile: CustomerProfile) -> Decision:
        return policy.decide(CustomerContext(profile, now), seed=f"{seed}:{profile.customer_id}")

    def shows(scenario: Scenario, decision: Decision) -> bool:
        types = {a.action_type for a in decision.contacts}
        return bool(types & scenario.shows) if scenario.shows else bool(types)

    for scenario in SCENARIOS:
        fits = sorted(
            (p for p in profiles if scenario.fits(p) and p.customer_id not in taken),
            key=scenario.rank,
        )
        tried = [(p, decide(p), "") for p in fits[:max_tries]]
        if scenario.adjust is not None and not any(shows(scenario, d) for _, d, _ in tried):
            for original in [p for p in active if p.customer_id not in taken][:max_tries]:
                profile, note = scenario.adjust(original)
                tried.append((profile, decide(profile), note))
        if not tried:
            continue
        profile, decision, note = next(
            (t for t in tried if shows(scenario, t[1])),
            next((t for t in tried if t[1].contacts), tried[0]),
        )
        taken.add(profile.customer_id)
        out.append(ScenarioDecision(scenario.name, profile, decision, note))
    return out


def render_scenarios(scenarios: Sequence[ScenarioDecision], *, max_rejected: int = 3) -> str:
    """The scenarios as readable text: who, what, where, when, why and why not."""
    lines: list[str] = []
    for item in scenarios:
        p = item.profile
        consents = ", ".join(c.value for c, ok in p.consents.items() if ok) or "none"
        adjusted = f" [adjusted: {item.adjusted}]" if item.adjusted else ""
        lines.append(f"== {item.scenario}: customer {p.customer_id} ({p.timezone}){adjusted}")
        birthday = (
            "birthday unknown"
            if p.days_to_birthday is None
            else f"birthday in {p.days_to_birthday} days"
        )
        lines.append(
            f"   {p.lifecycle_state.value}, {p.purchases_total} purchases, cart {len(p.cart_items)}"
            f" item(s), {birthday}, consents: {consents}"
        )
        explanation = item.decision.explanation
        for action, chosen in zip(item.decision.actions, explanation.chosen, strict=False):
            if action.channel is None or action.send_at is None or action.send_at_local is None:
                lines.append(f"   -> {action.action_id}: no contact")
            else:
                lines.append(
                    f"   -> {action.action_id} by {action.channel.value}, "
                    f"{action.send_at_local:%a %d %b %H:%M} local "
                    f"({action.send_at:%H:%M} UTC)"
                )
            lines.extend(f"      {f.name}: {f.detail}" for f in chosen.factors)
        if not item.decision.actions:
            lines.append("   -> nothing eligible")
        for rejected in explanation.rejected[:max_rejected]:
            lines.append(f"      not {rejected}")
    return "\n".join(lines)
