"""The decision's read path built differently, giving the same results.

The online store decodes a customer's MessagePack straight into a
:class:`~features.finalise.SplitState` (no flat ``family:key`` names built to be split
again), and screening reads each action through a plan built once per catalog
(:mod:`nba.screening`). On simulated customers both must give exactly what the
plain path gives: the same flat state, the same profile, the same rejections.
"""

from __future__ import annotations

import datetime as dt

import pytest
import yaml

from cli.decide import EXAMPLES, load_catalog, load_contact_policy
from features.batch import ProfileBuild, build_profiles
from features.dataset import RetailDataset
from features.finalise import SplitState, build_profile, split_state
from features.online import codec
from nba.actions import INCENTIVE_KINDS
from nba.budgets import UsageCounts, budget_reason
from nba.catalog import Catalog
from nba.contact_policy import ContactPolicy
from nba.context import ContextScope, CustomerContext
from nba.profile import CustomerProfile
from nba.reasons import Reason, ReasonCode
from nba.screening import channel_slot, screen
from simulator import SimulatorConfig, simulate


@pytest.fixture(scope="module")
def built() -> ProfileBuild:
    sim = simulate(SimulatorConfig(n_customers=300, days=30, seed=11, n_products=200))
    data = RetailDataset(sim.customers, sim.products, sim.offers, sim.events)
    cut = sim.config.start + dt.timedelta(days=30, hours=-15)
    return build_profiles(data, as_of=cut, workers=1)


def test_decoded_split_state_is_the_flat_state_and_gives_the_same_profile(
    built: ProfileBuild,
) -> None:
    as_of = built.profiles[0].as_of
    assert as_of is not None
    checked = 0
    for cid, state in built.states.items():
        static = built.statics.get(cid)
        raw = codec.pack(state, codec.static_entries(static))
        decoded = codec.state_of(codec.unpack(raw))
        assert isinstance(decoded, SplitState)
        flat = dict(decoded)
        assert flat == state and len(decoded) == len(state)
        assert split_state(flat) == (decoded.scalars, decoded.keyed)
        for name in list(state)[:5]:
            assert decoded[name] == state[name]
        with pytest.raises(KeyError):
            decoded["pd:not-a-day"]
        with pytest.raises(KeyError):
            decoded["no_such_scalar"]
        for moment in (as_of, as_of + dt.timedelta(days=9, hours=5)):
            split = build_profile(cid, decoded, moment, static, built.priors)
            assert split == build_profile(cid, flat, moment, static, built.priors)
            assert split == build_profile(cid, state, moment, static, built.priors)
        checked += 1
    assert checked == 300


def _reference_reason(
    action_index: int, catalog: Catalog, context: CustomerContext, usage: UsageCounts
) -> Reason | None:
    """The action-level checks written plainly, from the actions' public API and the
    rules' trees (not their closures)."""
    action = catalog.actions[action_index]
    scope = ContextScope(context)
    offer = action.offer
    if not action.valid_at(context.now_utc):
        dated = [action] if offer is None else [action, offer]
        starts = [d.valid_from for d in dated if d.valid_from is not None]
        ends = [d.valid_to for d in dated if d.valid_to is not None]
        window = ([f"from {max(starts).isoformat()}"] if starts else []) + (
            [f"until {min(ends).isoformat()}"] if ends else []
        )
        return Reason(
            ReasonCode.OUTSIDE_VALIDITY,
            f"outside the action's and offer's validity dates (valid {' '.join(window)})",
        )
    for name, rule in (
        ("eligibility", action.eligibility),
        ("offer eligibility", None if offer is None else offer.eligibility),
    ):
        if rule is None:
            continue
        result = rule._tree.evaluate(scope)
        if result is not True:  # said by its failing clause (tests/test_nba_rules.py)
            return Reason(ReasonCode.NOT_ELIGIBLE, f"{name}: {rule.why_not(scope)}")
    if action.cooldown_hours is not None:
        hours = context.hours_since_sent(action.id)
        if hours is not None and hours < action.cooldown_hours:
            return Reason(
                ReasonCode.ACTION_COOLDOWN,
                f"sent {hours:.0f} hours ago; the cool-down is {action.cooldown_hours:g} hours",
            )
    if offer is not None and offer.kind in INCENTIVE_KINDS:  # one live incentive at a time
        for other in catalog.actions:
            held = other.offer
            if other is action or held is None or held.kind not in INCENTIVE_KINDS:
                continue
            if held.expires_after_hours is None:
                continue
            hours = context.hours_since_sent(other.id)
            if hours is not None and hours < held.expires_after_hours:
                return Reason(
                    ReasonCode.OFFER_HELD,
                    f"the customer holds {held.id} ({other.id}, sent {hours:.0f} hours ago, "
                    f"valid {held.expires_after_hours:g} hours): one live incentive at a time",
                )
    return budget_reason(action, usage)


def test_screening_plans_reject_as_the_plain_checks(built: ProfileBuild) -> None:
    """Every simulated customer at moments inside and outside the validity of the dated
    actions, with and without past sends (cool-downs) and exhausted budgets: each
    action is rejected at the action level exactly when, and as, the plain checks say,
    and each channel's send time is the one the plain count of past messages gives."""
    policy = load_contact_policy(None)
    for catalog in (load_catalog(None), _with_offer_rules()):
        _check_screening(built, catalog, policy)


def _with_offer_rules() -> Catalog:
    """The example catalog with an offer eligibility rule and offer validity dates (the
    example has neither)."""
    document = yaml.safe_load((EXAMPLES / "retailer_catalog.yaml").read_text())
    for action in document["actions"]:
        if action["id"] in ("recommendations_weekly", "style_guide_content"):  # often eligible
            action["offer"] = {
                "id": f"{action['id']}_shipping",
                "kind": "free_shipping",
                "value": 0,
                "cost": 1.0,
                "eligibility": "purchases_total >= 2 or lifecycle_state == 'new'",
                "valid_from": "2026-03-01T00:00:00Z",
                "valid_to": "2026-03-04T12:00:00Z",
            }
    return Catalog.from_dict(document)


def _check_screening(built: ProfileBuild, catalog: Catalog, policy: ContactPolicy) -> None:
    dated = [a for a in catalog.actions if a.valid_from is not None]
    assert dated, "the example catalog has a dated action"
    inside = dated[0].valid_from + dt.timedelta(days=3)  # type: ignore[operator]
    outside = dated[0].valid_from - dt.timedelta(days=30)  # type: ignore[operator]
    offers = {a.offer.id: 10**6 for a in catalog.actions if a.offer is not None}
    volumes = {a.id: 10**6 for a in catalog.actions if a.daily_volume is not None}
    usages = [UsageCounts(), UsageCounts(offers, volumes)]
    known = {a.id: a for a in catalog.actions}

    def counts(action_id: str) -> bool:
        action = known.get(action_id)
        return action is None or any(
            policy.rules(c).counts_toward_total for c in action.deliverable_channels
        )

    profiles: list[CustomerProfile] = built.profiles
    rejected_at_action_level = 0
    for i, profile in enumerate(profiles):
        for now in (inside, outside, inside + dt.timedelta(hours=i % 24)):
            history = {}
            if i % 3 == 1:  # past sends of all kinds, some within their cool-downs
                history = {
                    a.id: now - dt.timedelta(hours=(i * 7 + k) % 200)
                    for k, a in enumerate(catalog.actions)
                    if (i + k) % 4 == 0
                }
            elif i % 3 == 2:  # recent placements (not messages) and an old message
                history = {
                    a.id: now - dt.timedelta(hours=1 + (i + k) % 11)
                    for k, a in enumerate(catalog.actions)
                    if not counts(a.id)
                }
                history["retired_action"] = now - dt.timedelta(hours=30 + i % 5)
            context = CustomerContext(profile, now, action_history=history)
            usage = usages[i % 2]
            got = screen(catalog, policy, context, usage)
            by_action = {
                (r.action_id, r.code, r.message) for r in got.rejections if r.channel is None
            }
            candidates = {c.action.id for c in got.candidates}
            sends = {a: at for a, at in history.items() if counts(a)}
            last_message_at = policy.last_message_at(context, sends)
            for candidate in got.candidates:
                for slot in candidate.slots:
                    again = channel_slot(
                        candidate.action,
                        slot.channel,
                        policy,
                        context,
                        last_message_at=last_message_at,
                    )
                    assert again == slot, (candidate.action.id, slot.channel)
            for index, action in enumerate(catalog.actions):
                expected = _reference_reason(index, catalog, context, usage)
                if expected is None:
                    assert not any(a == action.id for a, _, _ in by_action), action.id
                else:
                    assert (action.id, expected.code, expected.message) in by_action, action.id
                    assert action.id not in candidates
                    rejected_at_action_level += 1
    assert rejected_at_action_level > 1000
