"""Exploration the logs can trust: exact probabilities for every (action, channel) option,
channels explored, an explicit share per experiment arm, settling as evidence grows."""

from __future__ import annotations

import datetime as dt
from collections import Counter

import pytest

from nba.arbitration import ResponsePosterior
from nba.catalog import parse_catalog
from nba.channels import Channel
from nba.context import CustomerContext
from nba.engine import NextBestActionPolicy
from nba.experiment import parse_experiment
from nba.pipeline import build_pipeline
from nba.profile import CustomerProfile

CATALOG = parse_catalog(
    """
actions:
  - {id: a, type: content, channels: [email, push], value: 10, timing: asap}
  - {id: b, type: review_request, channels: [email], value: 6, timing: asap}
  - {id: nothing, type: do_nothing, value: 0.05}
"""
)
NOW = dt.datetime(2026, 3, 6, 9, tzinfo=dt.UTC)
PROFILE = CustomerProfile(
    "C1", consents={Channel.EMAIL: True, Channel.PUSH: True}, days_since_last_visit=2.0
)
CONTEXT = CustomerContext(PROFILE, NOW)


def distribution(engine: NextBestActionPolicy, stats: dict, seed: int = 0) -> dict:  # type: ignore[type-arg]
    decision = engine.decide(CONTEXT, stats=stats, seed=seed)
    return {(o.action_id, o.channel): o.probability for o in decision.options}


def test_every_option_is_logged_with_its_exact_probability() -> None:
    engine = NextBestActionPolicy(CATALOG)
    dist = distribution(engine, {})
    assert set(dist) == {("a", "email"), ("a", "push"), ("b", "email"), ("nothing", None)}
    assert sum(dist.values()) == pytest.approx(1.0)
    assert dist == distribution(engine, {}, seed=99)  # exact: the same for every seed
    runs = 3000
    seen: Counter[tuple[str | None, str | None]] = Counter()
    for seed in range(runs):
        d = engine.decide(CONTEXT, seed=seed)
        first = d.actions[0]
        seen[(first.action_id, None if first.channel is None else first.channel.value)] += 1
        assert first.propensity == pytest.approx(
            dist[(first.action_id, None if first.channel is None else first.channel.value)]
        )
    for option, p in dist.items():  # the pick frequencies are the logged probabilities
        assert seen[option] / runs == pytest.approx(p, abs=0.03), option
    assert seen[("a", "email")] and seen[("a", "push")]  # channels are explored


def test_exploration_settles_as_evidence_grows() -> None:
    engine = NextBestActionPolicy(CATALOG)
    thin = {k: ResponsePosterior.from_counts(1, 1.0) for k in ("a@email", "a@push", "b@email")}
    thick = {
        "a@email": ResponsePosterior.from_counts(2000, 2000.0),
        "a@push": ResponsePosterior.from_counts(1500, 2000.0),  # push is 25 % below its score
        "b@email": ResponsePosterior.from_counts(2000, 2000.0),
    }
    top_thin = max(distribution(engine, thin).values())
    top_thick = max(distribution(engine, thick).values())
    assert top_thin < 0.9 < top_thick  # with evidence, nearly greedy
    assert distribution(engine, thick)[("a", "push")] < 0.01  # evidence moves the priority


def test_an_explore_share_gives_every_option_its_floor() -> None:
    engine = NextBestActionPolicy(CATALOG, explore_share=0.2)
    thick = {"a@email": ResponsePosterior.from_counts(5000, 5000.0)}
    dist = distribution(engine, thick)
    assert sum(dist.values()) == pytest.approx(1.0)
    assert min(dist.values()) >= 0.2 / 4 - 1e-12
    runs = 3000
    seen: Counter[tuple[str | None, str | None]] = Counter()
    for seed in range(runs):
        first = engine.decide(CONTEXT, stats=thick, seed=seed).actions[0]
        key = (first.action_id, None if first.channel is None else first.channel.value)
        seen[key] += 1
        assert first.propensity == pytest.approx(dist[key])
    for option, p in dist.items():
        assert seen[option] / runs == pytest.approx(p, abs=0.03), option
    with pytest.raises(ValueError, match="explore_share"):
        NextBestActionPolicy(CATALOG, explore_share=1.5)


def test_the_explore_share_is_set_per_experiment_arm() -> None:
    config = parse_experiment(
        {
            "name": "learn",
            "salt": "s",
            "start": "2026-01-01T00:00:00Z",
            "end": "2026-12-31T00:00:00Z",
            "arms": [
                {"name": "bold", "kind": "champion", "allocation": 0.5, "explore_share": 0.3},
                {"name": "journeys", "kind": "rule_based", "allocation": 0.5},
            ],
        }
    )
    assert [a.explore_share for a in config.arms] == [0.3, 0.0]
    plain = build_pipeline(CATALOG).decider
    assert isinstance(plain, NextBestActionPolicy) and plain.explore_share == 0.0
    assert parse_experiment(config.to_dict()) == config
    router = build_pipeline(CATALOG, experiment=config).decider
    shares = {name: getattr(p, "explore_share", None) for name, p in router.policies.items()}  # type: ignore[attr-defined]
    assert shares == {"bold": 0.3, "journeys": None}
    arms = config.to_dict()["arms"]
    bad = {**config.to_dict(), "arms": [{**arms[0], "explore_share": 2}, arms[1]]}
    with pytest.raises(ValueError, match="explore_share"):
        parse_experiment(bad)
