"""Arbitration: the priority formula, Thompson sampling and the propensities it logs."""

from __future__ import annotations

import datetime as dt
import itertools
import math
import random
from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import nba.arbitration as arbitration
from nba.actions import Action
from nba.arbitration import (
    BetaPosterior,
    ChannelAssessment,
    Option,
    PriorityTerms,
    _Arm,
    greedy_pick,
    priority,
    thompson_pick,
    thompson_probabilities,
    uniform_pick,
)
from nba.catalog import parse_catalog
from nba.channels import Channel
from nba.context import CustomerContext
from nba.engine import NextBestActionPolicy
from nba.profile import ChannelEngagement, CustomerProfile
from nba.screening import ActionCandidate, ChannelSlot
from nba.timing import SendTime

NOW = dt.datetime(2026, 3, 4, 9, 0, tzinfo=dt.UTC)

unit = st.floats(min_value=0.0, max_value=1.0)
money = st.floats(min_value=0.0, max_value=1e4)
lever = st.floats(min_value=0.0, max_value=100.0)


@settings(max_examples=300, deadline=None)
@given(
    p=unit,
    value=money,
    more_value=money,
    lev=lever,
    more_lever=lever,
    uplift=st.none() | st.floats(min_value=-1.0, max_value=1.0),
    channel_cost=money,
    offer_cost=money,
    fatigue=unit,
)
def test_priority_never_decreases_when_value_or_lever_increases(
    p: float,
    value: float,
    more_value: float,
    lev: float,
    more_lever: float,
    uplift: float | None,
    channel_cost: float,
    offer_cost: float,
    fatigue: float,
) -> None:
    def prio(v: float, lv: float) -> float:
        return priority(
            p,
            v,
            lv,
            uplift=uplift,
            channel_cost=channel_cost,
            offer_cost=offer_cost,
            fatigue=fatigue,
        )

    base = prio(value, lev)
    assert prio(value + more_value, lev) >= base
    assert prio(value, lev + more_lever) >= base
    assert prio(value + more_value, lev + more_lever) >= base
    terms = PriorityTerms(p, value, lev, uplift, channel_cost, offer_cost, fatigue)
    for scale in (0.0, 0.5, 1.0, 3.0):
        bigger = PriorityTerms(
            p, value + more_value, lev + more_lever, uplift, channel_cost, offer_cost, fatigue
        )
        assert bigger.priority(scale) >= terms.priority(scale)


@settings(max_examples=40, deadline=None)
@given(
    value=st.floats(min_value=0.0, max_value=500.0),
    more=st.floats(min_value=0.0, max_value=500.0),
    lev=st.floats(min_value=0.0, max_value=5.0),
    more_lever=st.floats(min_value=0.0, max_value=5.0),
    click_rate=unit,
    promo=unit,
)
def test_engine_priority_never_decreases_with_catalog_value_or_lever(
    value: float, more: float, lev: float, more_lever: float, click_rate: float, promo: float
) -> None:
    profile = CustomerProfile(
        "C1",
        consents={Channel.EMAIL: True},
        promo_sensitivity=promo,
        engagement={Channel.EMAIL: ChannelEngagement(sent=10, click_rate=click_rate)},
    )
    context = CustomerContext(profile, NOW)

    def chosen_priority(v: float, lv: float) -> float:
        catalog = parse_catalog(
            f"actions: [{{id: a, type: offer, channels: [email], value: {v!r}, lever: {lv!r},"
            " offer: {id: o, kind: percent_discount, value: 10, cost: 3}}]"
        )
        actions = NextBestActionPolicy(catalog, exploration=False).decide(context).actions
        # an offer whose uplift does not pay for it is not sent: the lowest priority of all;
        # a higher value can only make it pay
        return actions[0].priority if actions else -math.inf

    base = chosen_priority(value, lev)
    assert chosen_priority(value + more, lev) >= base
    assert chosen_priority(value, lev + more_lever) >= base


def test_an_offer_is_valued_as_its_message_plus_its_uplift_less_its_cost_on_every_redemption() -> (
    None
):
    # 20 % respond, 5 % because of the offer: the message's 15 % plus the offer's 5 %, and
    # every responder redeems it
    terms = PriorityTerms(0.2, 40.0, offer_uplift=0.05, offer_cost=6.0, channel_cost=0.1)
    assert terms.priority() == pytest.approx(0.15 * 40 + 0.05 * 40 - 0.2 * 6 - 0.1)
    assert terms.offer_pays  # 0.05 x 40 = 2 >= 0.2 x 6 = 1.2
    assert not PriorityTerms(0.2, 40.0, offer_uplift=0.02, offer_cost=6.0).offer_pays
    assert PriorityTerms(0.2, 40.0, offer_uplift=0.0).offer_pays  # a free offer costs nothing
    with pytest.raises(ValueError, match="offer_uplift"):
        PriorityTerms(0.2, 40.0, offer_uplift=1.5)


def test_uplift_replaces_propensity_and_negative_uplift_is_never_worth_its_value() -> None:
    assert priority(0.5, 10.0, uplift=0.1) == pytest.approx(1.0)
    assert priority(0.5, 10.0, uplift=-0.2) == 0.0
    assert priority(0.5, 10.0, uplift=-0.2, offer_cost=2.0) == pytest.approx(-1.0)
    with pytest.raises(ValueError, match="propensity"):
        PriorityTerms(1.5, 1.0)
    with pytest.raises(ValueError, match="lever"):
        PriorityTerms(0.5, 1.0, lever=-1)


@pytest.mark.parametrize(
    ("bad", "name"),
    [
        ({"propensity": -0.1}, "propensity"),
        ({"value": float("inf")}, "value"),
        ({"value": -1.0}, "value"),
        ({"lever": float("nan")}, "lever"),
        ({"uplift": -1.5}, "uplift"),
        ({"channel_cost": -0.1}, "channel_cost"),
        ({"offer_cost": float("inf")}, "offer_cost"),
        ({"fatigue": 1.1}, "fatigue"),
        ({"offer_uplift": 2.0}, "offer_uplift"),
        ({"opportunity_cost": -0.1}, "opportunity_cost"),
        ({"opportunity_cost": float("nan")}, "opportunity_cost"),
    ],
)
def test_every_priority_term_is_checked_and_named(bad: dict[str, float], name: str) -> None:
    terms = {"propensity": 0.5, "value": 10.0, **bad}
    with pytest.raises(ValueError, match=f"priority term {name} is out of range"):
        PriorityTerms(**terms)  # type: ignore[arg-type]


def test_beta_posterior() -> None:
    assert BetaPosterior.from_counts(3, 7).mean == pytest.approx(4 / 12)
    for bad in ((0, 1), (1, -1), (float("inf"), 1)):
        with pytest.raises(ValueError, match="positive"):
            BetaPosterior(*bad)


# ---------------------------------------------------------------- picks


def option(
    action_id: str, propensity: float, value: float = 10.0, *, do_nothing: bool = False
) -> Option:
    if do_nothing:
        action = Action(id=action_id, type="do_nothing", value=value)
        return Option(
            ActionCandidate(action, value, None, ()), None, ChannelAssessment(None, value)
        )
    action = Action(id=action_id, type="content", channels=["email"], value=value)
    slot = ChannelSlot(Channel.EMAIL, SendTime(NOW, NOW, ""))
    terms = PriorityTerms(propensity, value)
    return Option(
        ActionCandidate(action, value, None, (slot,)),
        slot,
        ChannelAssessment(Channel.EMAIL, terms.priority(), terms),
    )


def test_greedy_and_uniform_picks() -> None:
    options = [option("a", 0.1), option("b", 0.3), option("c", 0.3)]
    assert greedy_pick(options).index == 1 and greedy_pick(options).propensity == 1.0
    pick = uniform_pick(options, random.Random(1))
    assert pick.propensity == pytest.approx(1 / 3)
    with pytest.raises(ValueError, match="no option"):
        greedy_pick([])


def test_thompson_propensity_matches_the_empirical_pick_frequency() -> None:
    options = [
        option("a", 0.10),
        option("b", 0.08),
        option("c", 0.05),
        option("nothing", 0, 0.4, do_nothing=True),  # below c's expected 0.5
    ]
    posteriors = {"a": BetaPosterior(30, 270), "b": BetaPosterior(2, 20)}  # c is new: Beta(1, 1)
    runs = 1000
    picks: Counter[int] = Counter()
    logged: dict[int, list[float]] = {}
    for seed in range(runs):
        pick = thompson_pick(options, posteriors, random.Random(seed), draws=100)
        picks[pick.index] += 1
        logged.setdefault(pick.index, []).append(pick.propensity)
    # every option has its chance, the new one included (doing nothing wins only in the
    # posteriors' far tails, which the discretised posteriors leave out: below 1 %)
    assert {0, 1, 2} <= set(picks)
    chances = thompson_probabilities(options, posteriors)
    assert all(p > 0 for p in chances[:3]) and chances[3] < 0.01
    assert sum(chances) == pytest.approx(1.0)
    for index, count in picks.items():
        frequency = count / runs
        mean_propensity = sum(logged[index]) / len(logged[index])
        # the frequency's standard error is at most 0.016 here: allow 3
        assert abs(frequency - mean_propensity) < 0.048, (index, frequency, mean_propensity)
    assert all(0.0 < p <= 1.0 for ps in logged.values() for p in ps)
    # exact: the logged propensity is the option's probability, whatever the seed
    assert all(len(set(ps)) == 1 for ps in logged.values())
    assert all(logged[i][0] == chances[i] for i in logged)


def test_options_that_cannot_win_have_probability_zero_and_the_winner_one() -> None:
    hopeless = option("hopeless", 0.01, 1.0)  # at best 0.01 / mean x 1.0, far below 5
    nothing = option("nothing", 0, 5.0, do_nothing=True)
    pick = thompson_pick([hopeless, nothing], {"hopeless": BetaPosterior(50, 50)}, random.Random(0))
    assert (pick.index, pick.propensity) == (1, 1.0)
    # the same decision and the same probability whether or not pruning kicks in
    open_race = [option("a", 0.2), option("b", 0.1), hopeless]
    pick = thompson_pick(open_race, {"hopeless": BetaPosterior(50, 50)}, random.Random(0))
    assert pick.index in (0, 1) and 0 < pick.propensity < 1


def test_thompson_is_deterministic_for_a_seed() -> None:
    options = [option("a", 0.10), option("b", 0.09), option("c", 0.08)]
    first = [thompson_pick(options, {}, random.Random(s)) for s in range(20)]
    again = [thompson_pick(options, {}, random.Random(s)) for s in range(20)]
    assert first == again


def test_engine_logged_propensity_matches_its_pick_frequency() -> None:
    """End to end: the propensity in the decision log is the probability of the pick."""
    catalog = parse_catalog(
        """
actions:
  - {id: a, type: content, channels: [email], value: 10, timing: asap}
  - {id: b, type: review_request, channels: [email], value: 3, timing: asap}
  - {id: c, type: cart_reminder, channels: [email], value: 2, timing: asap}
  - {id: nothing, type: do_nothing, value: 0.2}
"""
    )
    profile = CustomerProfile("C1", consents={Channel.EMAIL: True}, days_since_last_visit=2.0)
    context = CustomerContext(profile, NOW)
    stats = {"a": BetaPosterior(3, 97), "b": BetaPosterior(10, 90)}
    engine = NextBestActionPolicy(catalog, propensity_draws=100)
    runs = 800
    picks: Counter[str | None] = Counter()
    logged: dict[str | None, float] = {}
    for seed in range(runs):
        decision = engine.decide(context, stats=stats, seed=seed)
        picks[decision.action_id] += 1
        logged[decision.action_id] = logged.get(decision.action_id, 0.0) + decision.propensity
    assert len(picks) >= 3
    for action_id, count in picks.items():
        assert abs(count / runs - logged[action_id] / count) < 0.05, (
            action_id,
            count / runs,
            logged[action_id] / count,
        )


def test_exact_probabilities_equal_the_enumeration_of_every_draw_ties_included() -> None:
    """The sweep that gives the exact probabilities against brute force: every
    combination of equally likely values, ties going to the first option as in the draw."""
    import itertools

    from nba.arbitration import _Arm, _exact

    rng = random.Random(1)
    for _ in range(300):
        arms = []
        for i in range(rng.randint(2, 4)):
            values = tuple(
                sorted(rng.choice([0.0, 0.5, 1.0, 1.5]) for _ in range(rng.randint(1, 3)))
            )
            arms.append(_Arm(i, None, values[0], values[-1], values))
        enumerated = [0.0] * len(arms)
        for combo in itertools.product(*[range(len(a.values)) for a in arms]):
            drawn = [a.values[q] for a, q in zip(arms, combo, strict=True)]
            weight = 1.0
            for a in arms:
                weight /= len(a.values)
            enumerated[drawn.index(max(drawn))] += weight
        assert _exact(arms, len(arms)) == pytest.approx(enumerated, abs=1e-12)


def test_an_option_expected_to_lose_to_doing_nothing_is_not_drawn() -> None:
    """A new option (Beta(1, 1): draws up to twice its estimate) whose expected priority is
    below do-nothing's is not drawn, although its optimistic draws would beat do-nothing;
    the same option expected above the bar is. The probabilities stay exact."""
    new = option("letter", 0.05)  # expected 0.5, draws from 0 to about 1
    keep = [option("a", 0.10), new, option("nothing", 0, 0.6, do_nothing=True)]
    chances = thompson_probabilities(keep, {"a": BetaPosterior(30, 270)})
    assert chances[1] == 0.0 and sum(chances) == pytest.approx(1.0)
    picks = {thompson_pick(keep, {}, random.Random(seed)).index for seed in range(300)}
    assert 1 not in picks
    # with do-nothing's bar below its expectation it has its chance again
    low = [option("a", 0.10), new, option("nothing", 0, 0.4, do_nothing=True)]
    assert thompson_probabilities(low, {"a": BetaPosterior(30, 270)})[1] > 0.0


def test_an_opportunity_cost_lowers_every_draw_and_the_propensities_stay_exact() -> None:
    """The opportunity cost of a send (:mod:`nba.reserve`) is a fixed term of its priority:
    every one of its equally likely values moves down by it, so it moves the pick's chances
    (here below do-nothing's bar: never drawn) and the logged probabilities stay exact."""
    slot = ChannelSlot(Channel.EMAIL, SendTime(NOW, NOW, ""))
    action = Action(id="weekly", type="content", channels=["email"], value=10)
    plain = PriorityTerms(0.03, 10.0, channel_cost=0.002)
    kept = PriorityTerms(0.03, 10.0, channel_cost=0.002, opportunity_cost=0.35)
    assert kept.priority() == pytest.approx(plain.priority() - 0.35)
    assert kept.priority(1.7) == pytest.approx(plain.priority(1.7) - 0.35)
    with pytest.raises(ValueError, match="opportunity_cost"):
        PriorityTerms(0.03, 10.0, opportunity_cost=-0.1)

    def weekly(terms: PriorityTerms) -> Option:
        candidate = ActionCandidate(action, 10.0, None, (slot,))
        return Option(candidate, slot, ChannelAssessment(Channel.EMAIL, terms.priority(), terms))

    nothing = option("nothing", 0, 0.01, do_nothing=True)
    other = option("other", 0.02)
    for terms, drawn in ((plain, True), (kept, False)):
        options = [weekly(terms), other, nothing]
        chances = thompson_probabilities(options, {})
        assert sum(chances) == pytest.approx(1.0)
        assert (chances[0] > 0) is drawn
        for seed in range(50):
            pick = thompson_pick(options, {}, random.Random(seed))
            assert pick.propensity == chances[pick.index]


@settings(max_examples=200, deadline=None)
@given(
    arms=st.lists(
        st.lists(st.sampled_from([-1.0, 0.0, 0.25, 0.5, 2.0]), min_size=1, max_size=4),
        min_size=2,
        max_size=3,
    ),
    distinct=st.booleans(),
)
def test_exact_thompson_chances_are_those_of_every_draw(
    arms: list[list[float]], distinct: bool
) -> None:
    """The exact chance of each arm winning the draw, with values shared by several arms
    (the grouped sweep) or all distinct (the plain loop, bit for bit the grouped
    sweep's): what enumerating every equally likely draw gives."""
    if distinct:  # shift each value apart: no two equal anywhere
        arms = [[v + 0.001 * (7 * a + i) for i, v in enumerate(vs)] for a, vs in enumerate(arms)]
    built = [
        _Arm(index, None, min(vs), max(vs), tuple(sorted(vs))) for index, vs in enumerate(arms)
    ]
    chances = arbitration._exact(built, len(built))
    expected = [0.0] * len(built)
    for draw in itertools.product(*(range(len(a.values)) for a in built)):
        best, best_value = -1, -math.inf
        for arm, k in zip(built, draw, strict=True):
            if arm.values[k] > best_value:
                best, best_value = arm.index, arm.values[k]
        expected[best] += math.prod(1 / len(a.values) for a in built)
    assert chances == pytest.approx(expected, abs=1e-12)
    points = sorted((v, p) for p, arm in enumerate(built) for v in arm.values)
    plain = arbitration._exact_distinct(built, len(built), points)
    assert (plain is None) is (len({v for v, _ in points}) < len(points))
    if plain is not None:
        assert plain == arbitration._exact_grouped(built, len(built), points)
