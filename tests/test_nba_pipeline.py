"""The decision pipeline: one constructor, preparation before routing, the Decider protocol,
and the policy template's exploration hook."""

from __future__ import annotations

import dataclasses
import datetime as dt
import random
from collections.abc import Mapping, Sequence

import pytest

from nba.arbitration import BetaPosterior, ChannelAssessment, Option, Pick
from nba.baselines import RuleBasedPolicy
from nba.channels import Channel
from nba.context import CustomerContext
from nba.engine import NextBestActionPolicy
from nba.experiment import ArmKind, ExperimentRouter, parse_experiment
from nba.pipeline import DecisionPipeline, build_pipeline, policy_of_kind
from nba.policy import Exploration
from nba.scoring import RuleBasedScorer
from nba.screening import ChannelSlot
from tests.test_nba_experiment import CATALOG, DURING, IDS, cart_context, document


class GrantsEmail(RuleBasedScorer):
    """A scorer whose preparation grants e-mail consent (to see where it applies)."""

    def prepare(self, context: CustomerContext) -> CustomerContext:
        profile = dataclasses.replace(context.profile, consents={Channel.EMAIL: True})
        return dataclasses.replace(context, profile=profile)


def unconsented(cid: str, now: dt.datetime = DURING) -> CustomerContext:
    context = cart_context(cid, now)
    return dataclasses.replace(context, profile=dataclasses.replace(context.profile, consents={}))


def test_without_an_experiment_the_pipeline_is_the_policy_of_the_kind() -> None:
    for kind, name in [("champion", "nba"), ("rules", "rules"), (ArmKind.RANDOM, "random")]:
        pipeline = build_pipeline(CATALOG, policy=kind)
        assert pipeline.name == name
        routed = pipeline.route(cart_context("C1"), seed=1)
        assert routed.arm is None and routed.decision.policy == name
    # the same decision as the policy's own
    engine = NextBestActionPolicy(CATALOG)
    routed = build_pipeline(CATALOG).route(cart_context("C1"), seed=4)
    assert routed.decision == engine.decide(cart_context("C1"), seed=4)
    assert engine.route(cart_context("C1"), seed=4) == routed


def test_with_an_experiment_every_customer_gets_their_arms_policy() -> None:
    config = parse_experiment(document())
    pipeline = build_pipeline(CATALOG, experiment=config)
    assert isinstance(pipeline.decider, ExperimentRouter)
    assert pipeline.name == "experiment:spring"
    seen: dict[str, set[str]] = {}
    for cid in IDS[:200]:
        routed = pipeline.route(cart_context(cid), seed=1)
        assert routed.arm is not None and routed.arm_name == config.assign(cid).name
        assert routed.log().arm == routed.arm_name
        seen.setdefault(routed.arm.name, set()).add(routed.decision.policy)
    assert seen == {"engine": {"nba"}, "journeys": {"rules"}, "control": {"control"}}


def test_every_arm_decides_on_the_prepared_context() -> None:
    config = parse_experiment(document())
    pipeline = build_pipeline(CATALOG, experiment=config, scorer=GrantsEmail())
    for cid in IDS[:100]:
        routed = pipeline.route(unconsented(cid), seed=1)
        channels = {a.channel for a in routed.decision.contacts}
        assert channels == (set() if routed.arm_name == "control" else {Channel.EMAIL})
    # unprepared, nobody could be contacted
    plain = build_pipeline(CATALOG, experiment=config)
    assert not any(plain.route(unconsented(c), seed=1).decision.contacts for c in IDS[:100])


def test_challengers_and_unknown_kinds_are_refused() -> None:
    arms = [
        {"name": "engine", "kind": "champion", "allocation": 0.5},
        {"name": "new_model", "kind": "challenger", "allocation": 0.5},
    ]
    with pytest.raises(ValueError, match="'new_model' is a challenger"):
        build_pipeline(CATALOG, experiment=parse_experiment(document(arms=arms)))
    with pytest.raises(ValueError, match="unknown policy kind 'best'"):
        policy_of_kind("best", CATALOG)


def test_a_policy_built_elsewhere_decides_behind_the_same_pipeline() -> None:
    rules = RuleBasedPolicy(CATALOG)
    pipeline = build_pipeline(CATALOG, policy=rules, scorer=GrantsEmail())
    assert isinstance(pipeline, DecisionPipeline) and pipeline.decider is rules
    assert pipeline.route(unconsented("C1"), seed=1).decision.contacts


class LastOption(NextBestActionPolicy):
    """Explores through the hook: every action on every viable channel, the last one."""

    name = "last"

    def explore(
        self,
        context: CustomerContext,
        options: Sequence[Option],
        viable: Mapping[str, Sequence[tuple[ChannelSlot, ChannelAssessment]]],
        stats: Mapping[str, BetaPosterior],
        rng: random.Random,
    ) -> Exploration | None:
        widened = [
            Option(o.candidate, slot, a) if o.slot is not None else o
            for o in options
            for slot, a in (viable.get(o.action_id) or [(o.slot, o.assessment)])
        ]
        if not widened:
            return None
        return Exploration(widened, Pick(len(widened) - 1, 0.25, explored=True))


def test_the_exploration_hook_chooses_among_its_options_with_its_propensity() -> None:
    context = cart_context("C1")
    greedy = NextBestActionPolicy(CATALOG, exploration=False).decide(context, seed=1)
    # e-mail is the best channel here: as likely as an SMS without history, far cheaper
    assert greedy.contacts[0].channel == Channel.EMAIL
    decision = LastOption(CATALOG, exploration=False).decide(context, seed=1)
    [chosen] = decision.actions
    # cart_reminder by sms is listed after e-mail, then do_nothing: the last is do_nothing
    assert chosen.action_id == "nothing" and chosen.explored
    assert decision.propensity == chosen.propensity == 0.25
