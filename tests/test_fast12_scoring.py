"""The rule-based scorer's one pass for a learned model (fast12): the scores and the
propensities without engagement history from one pass equal those of two passes (the
profile's, then the same profile with ``engagement={}``), to the bit, for every kind of
action, offer, channel, engagement and declared channel; and the model scorer decides
alike whichever way its fallback gives them."""

from __future__ import annotations

import dataclasses
import datetime as dt

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nba.actions import Action
from nba.channels import Channel
from nba.context import CustomerContext
from nba.profile import ChannelEngagement, CustomerProfile
from nba.scoring import ActionScore, RuleBasedScorer
from nba.screening import ActionCandidate, ChannelSlot
from nba.timing import SendTime

NOW = dt.datetime(2026, 3, 4, 9, tzinfo=dt.UTC)
OUTBOUND = [
    Channel.EMAIL,
    Channel.SMS,
    Channel.PUSH,
    Channel.POSTAL,
    Channel.WEB,
    Channel.CALL_CENTRE,
]
OFFERS = [
    None,
    {"id": "pct", "kind": "percent_discount", "value": 15, "cost": 7.0},
    {"id": "fixed", "kind": "fixed_discount", "value": 10, "cost": 10.0},
    {"id": "ship", "kind": "free_shipping", "value": 0, "cost": 4.5},
    {"id": "points", "kind": "loyalty_points", "value": 500, "cost": 2.5},
    {
        "id": "points_limited",
        "kind": "loyalty_points",
        "value": 200,
        "cost": 1.0,
        "expires_after_hours": 72,
    },
    {"id": "guide", "kind": "content", "value": 0, "cost": 0.0},
]
TYPES = ["cart_reminder", "offer", "reactivation", "milestone", "cross_sell", "content"]

rates = st.floats(0.0, 1.0, allow_nan=False)
engagements = st.builds(
    ChannelEngagement,
    sent=st.integers(0, 30),
    opened=st.integers(0, 10),
    clicked=st.integers(0, 5),
    open_rate=rates,
    click_rate=rates,
)
profiles = st.builds(
    CustomerProfile,
    customer_id=st.just("C1"),
    days_since_last_visit=st.none() | st.floats(0.0, 400.0),
    days_since_last_purchase=st.none() | st.floats(0.0, 400.0),
    days_since_first_seen=st.none() | st.floats(0.0, 900.0),
    purchases_total=st.integers(0, 40),
    purchases_90d=st.integers(0, 10),
    orders_total=st.integers(0, 40),
    orders_90d=st.integers(0, 10),
    promo_sensitivity=st.floats(-0.5, 1.5),
    average_basket=st.floats(-10.0, 400.0),
    cart_age_hours=st.none() | st.floats(0.0, 200.0),
    category_affinity=st.dictionaries(st.sampled_from(["shoes", "tops"]), rates, max_size=2),
    engagement=st.dictionaries(st.sampled_from(OUTBOUND), engagements, max_size=5),
    preferred_channel=st.none() | st.sampled_from([c.value for c in OUTBOUND]),
)


@st.composite
def candidates(draw: st.DrawFn) -> list[ActionCandidate]:
    out = []
    for k in range(draw(st.integers(1, 6))):
        channels = draw(st.lists(st.sampled_from(OUTBOUND), min_size=1, max_size=4, unique=True))
        action = Action.model_validate(
            {
                "id": f"a{k}",
                "type": draw(st.sampled_from(TYPES)),
                "channels": [c.value for c in channels],
                "value": 10,
                "category": draw(st.sampled_from([None, "shoes", "bags"])),
                "offer": draw(st.sampled_from(OFFERS)),
            }
        )
        value = draw(st.floats(0.0, 200.0))
        slots = tuple(ChannelSlot(c, SendTime(NOW, NOW, "")) for c in channels)
        out.append(ActionCandidate(action, value, None, slots))
    return out


def _two_passes(
    scorer: RuleBasedScorer, context: CustomerContext, found: list[ActionCandidate]
) -> tuple[list[ActionScore], list[dict[Channel, float]]]:
    """What the model scorer computed before: the profile's scores, then the scores of
    the same profile without engagement history."""
    plain = context.with_profile(dataclasses.replace(context.profile, engagement={}))
    return scorer.score(context, found), [dict(s.propensity) for s in scorer.score(plain, found)]


@settings(max_examples=300, deadline=None)
@given(profile=profiles, found=candidates())
def test_one_pass_equals_two_to_the_bit(
    profile: CustomerProfile, found: list[ActionCandidate]
) -> None:
    scorer = RuleBasedScorer()
    context = CustomerContext(profile, NOW)
    scores, neutral = scorer.score_with_neutral(context, found)
    expected_scores, expected_neutral = _two_passes(scorer, context, found)
    assert scores == expected_scores
    assert neutral == expected_neutral
    # and in the same channel order (the propensities are read by channel)
    assert [list(n) for n in neutral] == [list(n) for n in expected_neutral]


def test_a_gift_held_anyway_is_valued_on_the_profile_without_engagement() -> None:
    """Loyalty points for a frequent buyer with a high open rate: the points' pull on the
    orders placed anyway is P(seen) x ..., and P(seen) without engagement history is the
    channel's default, not the customer's open rate: the neutral propensities differ from
    the profile's and equal those of the profile without engagement."""
    profile = CustomerProfile(
        "C1",
        days_since_last_visit=2.0,
        days_since_last_purchase=3.0,
        days_since_first_seen=300.0,
        purchases_total=30,
        purchases_90d=9,
        orders_total=30,
        orders_90d=9,
        promo_sensitivity=0.9,
        average_basket=60.0,
        engagement={Channel.EMAIL: ChannelEngagement(sent=20, opened=15, open_rate=0.75)},
    )
    action = Action.model_validate(
        {"id": "bday", "type": "milestone", "channels": ["email"], "value": 5, "offer": OFFERS[4]}
    )
    slot = ChannelSlot(Channel.EMAIL, SendTime(NOW, NOW, ""))
    found = [ActionCandidate(action, 5.0, None, (slot,))]
    context = CustomerContext(profile, NOW)
    scores, neutral = RuleBasedScorer().score_with_neutral(context, found)
    expected_scores, expected_neutral = _two_passes(RuleBasedScorer(), context, found)
    assert (scores, neutral) == (expected_scores, expected_neutral)
    assert neutral[0][Channel.EMAIL] != scores[0].propensity[Channel.EMAIL]


class _Doubling(RuleBasedScorer):
    """A fallback that overrides :meth:`score`: the model scorer must ask it twice, as
    before, rather than the base class's one pass."""

    def score(self, context: CustomerContext, candidates: object) -> list[ActionScore]:  # type: ignore[override]
        scores = super().score(context, candidates)  # type: ignore[arg-type]
        return [
            ActionScore(
                {c: p / 2 for c, p in s.propensity.items()}, s.expected_value, s.uplift, s.ceiling
            )
            for s in scores
        ]


@pytest.mark.parametrize("fallback", [RuleBasedScorer(), _Doubling()], ids=["base", "override"])
def test_the_model_scorer_reads_neutral_propensities_of_its_own_fallback(
    fallback: RuleBasedScorer,
) -> None:
    """The model scorer's scores equal those computed with two passes of its fallback,
    whether that is the base scorer (one pass) or a subclass overriding ``score`` (asked
    twice): see tests/test_model_scorer.py for the fitted models' side."""
    from training.model_scorer import ModelScorer

    scorer = ModelScorer(fallback=fallback)
    profile = CustomerProfile(
        "C1",
        days_since_last_visit=5.0,
        engagement={Channel.EMAIL: ChannelEngagement(sent=9, opened=4, open_rate=0.44)},
        preferred_channel="email",
    )
    action = Action.model_validate(
        {"id": "x", "type": "offer", "channels": ["email", "sms"], "value": 10, "offer": OFFERS[1]}
    )
    slots = (
        ChannelSlot(Channel.EMAIL, SendTime(NOW, NOW, "")),
        ChannelSlot(Channel.SMS, SendTime(NOW, NOW, "")),
    )
    found = [ActionCandidate(action, 10.0, None, slots)]
    context = CustomerContext(profile, NOW)
    rule, neutral = scorer._rule_scores(context, found, learned=True)
    expected_rule, expected_neutral = _two_passes(fallback, context, found)
    assert rule == expected_rule
    assert [dict(n) for n in neutral] == expected_neutral
    rule, same = scorer._rule_scores(context, found, learned=False)
    assert rule == expected_rule and [dict(n) for n in same] == [r.propensity for r in rule]
