"""Experiments in the decision core: configuration, assignment, control group, router."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest
from scipy import stats

from experiments.config import EXAMPLE_EXPERIMENT, load_experiment
from nba.baselines import RuleBasedPolicy
from nba.catalog import parse_catalog
from nba.channels import Channel
from nba.context import CustomerContext
from nba.decision import LoggedDecision
from nba.engine import NextBestActionPolicy
from nba.experiment import (
    ArmKind,
    ControlPolicy,
    ExperimentConfig,
    ExperimentError,
    ExperimentRouter,
    GuardrailMetric,
    PrimaryMetric,
    assignment_unit,
    parse_experiment,
    parse_experiment_text,
)
from nba.profile import CustomerProfile
from nba.reasons import ReasonCode

UTC = dt.UTC
DURING = dt.datetime(2026, 3, 4, 14, 0, tzinfo=UTC)
CATALOG = parse_catalog(
    """
actions:
  - {id: cart_reminder, type: cart_reminder, channels: [email, sms],
     eligibility: "cart_size > 0", value: "cart_value * 0.3", timing: asap}
  - {id: nothing, type: do_nothing}
"""
)


def document(**changes: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "name": "spring",
        "salt": "s-1",
        "start": "2026-03-01T00:00:00Z",
        "end": "2026-03-31T00:00:00Z",
        "arms": [
            {"name": "engine", "kind": "champion", "allocation": 0.45},
            {"name": "journeys", "kind": "rule_based", "allocation": 0.45},
            {"name": "control", "kind": "control", "allocation": 0.10},
        ],
        "guardrails": [{"metric": "unsubscribe_rate", "max_increase": 0.01}],
    }
    doc.update(changes)
    return doc


def issues_of(doc: Any) -> list[str]:
    with pytest.raises(ExperimentError) as caught:
        parse_experiment(doc, source="exp.yaml")
    return [str(i) for i in caught.value.issues]


def test_example_file_loads_with_every_field() -> None:
    config = load_experiment(EXAMPLE_EXPERIMENT)
    assert config.name == "spring_reactivation"
    assert [(a.name, a.kind) for a in config.arms] == [
        ("engine", ArmKind.CHAMPION),
        ("journeys", ArmKind.RULE_BASED),
        ("control", ArmKind.CONTROL),
    ]
    assert config.allocation == {"engine": 0.45, "journeys": 0.45, "control": 0.10}
    assert config.start == dt.datetime(2026, 3, 1, tzinfo=UTC)
    assert config.primary_metric == PrimaryMetric.REVENUE_PER_CUSTOMER
    assert config.attribution_window == dt.timedelta(days=7)
    assert {g.metric for g in config.guardrails} == {
        GuardrailMetric.UNSUBSCRIBE_RATE,
        GuardrailMetric.COMPLAINT_RATE,
    }
    assert config.control is not None and config.control.name == "control"


def test_round_trip_through_a_plain_document() -> None:
    config = parse_experiment(document())
    again = parse_experiment(json.loads(json.dumps(config.to_dict())))
    assert again == config


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"colour": "red"}, "exp.yaml: field 'colour': unknown key"),
        ({"start": "2026-03-01T00:00:00"}, "field 'start': 2026-03-01T00:00:00 has no time zone"),
        ({"start": dt.date(2026, 3, 1)}, "field 'start': 2026-03-01 is a date"),
        ({"end": "2026-02-01T00:00:00Z"}, "field 'end': must be after start"),
        ({"salt": ""}, "field 'salt': required"),
        ({"primary_metric": "clicks"}, "field 'primary_metric': unknown primary metric 'clicks'"),
        ({"attribution_window_days": 0}, "field 'attribution_window_days'"),
        ({"arms": [{"name": "a", "kind": "champion", "allocation": 1.0}]}, "list at least two"),
        (
            {"guardrails": [{"metric": "bounces", "max_increase": 0.1}]},
            "field 'guardrails[0].metric': unknown metric 'bounces'",
        ),
        (
            {"guardrails": [{"metric": "complaint_rate", "max_increase": -1}]},
            "field 'guardrails[0].max_increase'",
        ),
    ],
)
def test_bad_fields_are_named(changes: dict[str, Any], expected: str) -> None:
    assert any(expected in issue for issue in issues_of(document(**changes))), issues_of(
        document(**changes)
    )


def test_arm_problems_name_the_arm_path_and_are_all_reported() -> None:
    arms = [
        {"name": "engine", "kind": "champion", "allocation": 0.5},
        {"name": "engine", "kind": "controll", "allocation": 0.3},
        {"name": "c", "kind": "control", "allocation": 1.5, "weight": 1},
    ]
    issues = issues_of(document(arms=arms))
    assert any("arms[1].kind': unknown arm kind 'controll'" in i for i in issues)
    assert any("arms[2].allocation': a share of customers in (0, 1], got 1.5" in i for i in issues)
    assert any("arms[2].weight': unknown field" in i for i in issues)


def test_allocations_must_sum_to_one_and_names_and_controls_be_unique() -> None:
    arms = [
        {"name": "a", "kind": "champion", "allocation": 0.5},
        {"name": "a", "kind": "control", "allocation": 0.3},
        {"name": "b", "kind": "control", "allocation": 0.1},
    ]
    issues = issues_of(document(arms=arms))
    assert any(
        "field 'arms': allocations must sum to 1, got 0.5 + 0.3 + 0.1 = 0.9" in i for i in issues
    )
    assert any("arms[1].name': duplicate arm name 'a'" in i for i in issues)
    assert any("arms[2].kind': only one control arm" in i for i in issues)


def test_yaml_errors_and_unreadable_files_name_the_file(tmp_path: Path) -> None:
    with pytest.raises(ExperimentError, match=r"x.yaml: not valid YAML at line 2"):
        parse_experiment_text("name: a\n  bad: [", source="x.yaml")
    missing = tmp_path / "nope.yaml"
    with pytest.raises(ExperimentError, match=r"nope\.yaml: cannot read"):
        load_experiment(missing)
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: a b\n")
    with pytest.raises(ExperimentError) as caught:
        load_experiment(bad)
    assert all(str(bad) in str(i) for i in caught.value.issues)
    assert any("field 'name'" in str(i) for i in caught.value.issues)


# ---------------------------------------------------------------- assignment

IDS = [f"C{i:07d}" for i in range(100_000)]


def test_assignment_is_deterministic_and_sticky_across_instances() -> None:
    a, b = parse_experiment(document()), parse_experiment(document())
    assert [a.assign(c).name for c in IDS[:2000]] == [b.assign(c).name for c in IDS[:2000]]
    other_salt = parse_experiment(document(salt="s-2"))
    moved = sum(a.assign(c).name != other_salt.assign(c).name for c in IDS[:2000])
    assert moved > 500  # a new salt reshuffles


def test_assignment_is_balanced_on_100k_ids() -> None:
    config = parse_experiment(document())
    counts = {a.name: 0 for a in config.arms}
    for cid in IDS:
        counts[config.assign(cid).name] += 1
    expected = [a.allocation * len(IDS) for a in config.arms]
    observed = [counts[a.name] for a in config.arms]
    chi2 = stats.chisquare(observed, expected)
    assert chi2.pvalue > 0.001, (observed, expected)
    for o, e in zip(observed, expected, strict=True):
        assert abs(o - e) / e < 0.03


def test_units_are_uniform() -> None:
    units = [assignment_unit("s", c) for c in IDS[:20_000]]
    assert stats.kstest(units, "uniform").pvalue > 0.001


def test_adding_an_arm_at_the_end_moves_only_customers_of_the_arm_that_gave_its_share() -> None:
    before = parse_experiment(document())
    arms = [
        {"name": "engine", "kind": "champion", "allocation": 0.45},
        {"name": "journeys", "kind": "rule_based", "allocation": 0.45},
        {"name": "control", "kind": "control", "allocation": 0.05},
        {"name": "random", "kind": "random", "allocation": 0.05},
    ]
    after = parse_experiment(document(arms=arms))
    moves = {(before.assign(c).name, after.assign(c).name) for c in IDS[:20_000]}
    assert moves == {
        ("engine", "engine"),
        ("journeys", "journeys"),
        ("control", "control"),
        ("control", "random"),
    }


def test_outside_the_window_nobody_is_in_an_arm() -> None:
    config = parse_experiment(document())
    assert config.arm_at("C1", dt.datetime(2026, 2, 28, 23, 59, tzinfo=UTC)) is None
    assert config.arm_at("C1", dt.datetime(2026, 3, 31, tzinfo=UTC)) is None  # end is excluded
    assert config.arm_at("C1", dt.datetime(2026, 3, 1, tzinfo=UTC)) == config.assign("C1")


# ---------------------------------------------------------------- control and router


def cart_context(cid: str, now: dt.datetime = DURING) -> CustomerContext:
    profile = CustomerProfile(
        cid,
        timezone="Europe/Paris",
        cart_items=("P1",),
        cart_value=80.0,
        consents={Channel.EMAIL: True, Channel.SMS: True},
    )
    return CustomerContext(profile, now)


def test_control_policy_does_nothing_through_the_template_and_explains_why() -> None:
    decision = ControlPolicy(CATALOG).decide(cart_context("C1"), seed=3)
    assert decision.policy == "control"
    assert decision.contacts == ()
    assert decision.action_id == "nothing"
    assert decision.propensity == 1.0
    assert set(decision.reasons("cart_reminder")) == {ReasonCode.NOT_ELIGIBLE}
    assert any("control group" in r.message for r in decision.rejections)
    # the same customer under the engine would be contacted: control really withholds
    assert NextBestActionPolicy(CATALOG).decide(cart_context("C1"), seed=3).contacts
    # without a do_nothing action, control chooses nothing at all
    bare = parse_catalog("actions: [{id: a, type: offer, channels: [email], value: 1}]")
    assert ControlPolicy(bare).decide(cart_context("C1")).actions == ()


def router() -> ExperimentRouter:
    config = parse_experiment(document())
    return ExperimentRouter(
        config,
        {"champion": NextBestActionPolicy(CATALOG), "rule_based": RuleBasedPolicy(CATALOG)},
    )


def test_router_sends_each_customer_to_their_arm_and_logs_the_arm() -> None:
    r = router()
    seen: dict[str, set[str]] = {}
    for cid in IDS[:300]:
        decision = r.decide(cart_context(cid), seed=1)
        logged = r.log(decision)
        assert isinstance(logged, LoggedDecision)
        arm = r.config.assign(cid)
        assert logged.arm == arm.name
        seen.setdefault(arm.name, set()).add(decision.policy)
        if arm.kind == ArmKind.CONTROL:
            assert decision.contacts == ()
        else:
            assert decision.contacts  # a cart reminder
        # the logged record survives its dict form with the arm
        assert LoggedDecision.from_dict(logged.to_dict()).arm == arm.name
    assert seen == {"engine": {"nba"}, "journeys": {"rules"}, "control": {"control"}}


def test_outside_the_window_everyone_gets_the_champion_without_arm() -> None:
    r = router()
    later = dt.datetime(2026, 4, 2, 9, tzinfo=UTC)
    for cid in IDS[:100]:
        routed = r.route(cart_context(cid, later))
        assert routed.arm is None and routed.decision.policy == "nba"
        assert routed.log().arm is None


def test_model_version_comes_from_the_arm_or_the_caller() -> None:
    arms = [
        {"name": "engine", "kind": "champion", "allocation": 0.5, "model_version": "7"},
        {"name": "control", "kind": "control", "allocation": 0.5},
    ]
    config = parse_experiment(document(arms=arms))
    r = ExperimentRouter(config, {"engine": NextBestActionPolicy(CATALOG)})
    engine_customer = next(c for c in IDS if config.assign(c).name == "engine")
    decision = r.decide(cart_context(engine_customer))
    assert r.log(decision).model_version == "7"
    assert r.log(decision, model_version="8").model_version == "8"


def test_router_refuses_arms_without_policy() -> None:
    config: ExperimentConfig = parse_experiment(document())
    with pytest.raises(ValueError, match=r"no policy for arm\(s\) journeys \(rule_based\)"):
        ExperimentRouter(config, {"champion": NextBestActionPolicy(CATALOG)})
    with pytest.raises(ValueError, match="give a policy for the champion"):
        ExperimentRouter(config, {"rule_based": RuleBasedPolicy(CATALOG)})
