"""The draw audit (tests/tools/draw_audit.py) turns unseeded draws only, and as it says:
the least likely possible option, or each possible option in turn, or none changed."""

from __future__ import annotations

import inspect

import pytest

from nba.decision import Decision
from nba.engine import NextBestActionPolicy
from tests.test_exploration import CATALOG, CONTEXT
from tests.tools.draw_audit import AuditRandom, active, audited

ENGINE = NextBestActionPolicy(CATALOG)  # no statistics: every option drawn on the prior


def first(decision: Decision) -> tuple[str, str | None, float]:
    action = decision.actions[0]
    channel = None if action.channel is None else action.channel.value
    return action.action_id, channel, action.propensity


def likeliest_first(decision: Decision) -> list[tuple[str, str | None]]:
    """The decision's possible first picks, most likely first."""
    options = sorted(decision.options, key=lambda o: -o.probability)
    return [(o.action_id, o.channel) for o in options if o.probability > 0.0]


def test_least_draws_the_least_likely_option_of_an_unseeded_decision_only() -> None:
    seeded = ENGINE.decide(CONTEXT, seed=0)  # an explicit seed: the same under the audit
    possible = likeliest_first(seeded)
    assert len(possible) == 4  # a contested draw: every option can win
    with audited("least"):
        unseeded = ENGINE.decide(CONTEXT)
        assert ENGINE.decide(CONTEXT, seed=0) == seeded
        assert ENGINE.route(CONTEXT, seed=7).decision == ENGINE.decide(CONTEXT, seed=7)
    action, channel, propensity = first(unseeded)
    assert (action, channel) == possible[-1] != first(seeded)[:2]
    least = min(o.probability for o in seeded.options if o.probability > 0.0)
    assert propensity == pytest.approx(least)  # logged as the product logs any draw
    assert unseeded.options == seeded.options  # the distribution itself is untouched
    if not active():  # gone after the block (unless the whole run is audited)
        assert ENGINE.decide(CONTEXT) == seeded


def test_rotate_draws_each_possible_option_in_turn_second_likeliest_first() -> None:
    possible = likeliest_first(ENGINE.decide(CONTEXT, seed=0))
    with audited("rotate"):
        drawn = [first(ENGINE.decide(CONTEXT))[:2] for _ in range(len(possible))]
    assert drawn == possible[1:] + possible[:1]


def test_observe_changes_no_draw() -> None:
    with audited("observe"):
        assert ENGINE.decide(CONTEXT) == ENGINE.decide(CONTEXT, seed=0)


def test_an_unkeyed_api_seed_is_unseeded_and_a_key_is_not() -> None:
    """The API seeds an unkeyed decision with ``random.getrandbits(64)`` in hexadecimal
    (the audit recognises those seeds) and a keyed one with its key."""
    from nba import policy
    from serving import decisions

    assert 'f"{random.getrandbits(64):016x}"' in inspect.getsource(decisions)
    with audited("least"):
        unkeyed = f"{decisions.random.getrandbits(64):016x}"
        assert isinstance(policy.random.Random(unkeyed), AuditRandom)
        assert not isinstance(policy.random.Random("retry-me"), AuditRandom)
    if not active():
        assert not isinstance(policy.random.Random(unkeyed), AuditRandom)


def test_an_unknown_mode_is_refused_naming_the_modes() -> None:
    with pytest.raises(ValueError, match="observe"), audited("worst"):
        pass
