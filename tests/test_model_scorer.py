"""The model-backed scorer in the engine: learned propensities and uplifts, rule fallback, speed."""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from features.batch import point_in_time
from features.dataset import RetailDataset
from nba.actions import Action
from nba.budgets import UsageCounts
from nba.catalog import parse_catalog
from nba.channels import Channel
from nba.contact_policy import ContactPolicy
from nba.context import CustomerContext
from nba.engine import NextBestActionPolicy
from nba.profile import CustomerProfile
from nba.scoring import RuleBasedScorer, Scorer, check_scores
from nba.screening import ActionCandidate, ChannelSlot, screen
from nba.timing import SendTime
from simulator import SimulatorConfig, simulate
from training.examples import ContactExamples, contact_examples, message_sends, sample_rows
from training.model_scorer import ModelScorer
from training.offers import OfferSpec, OfferUpliftModel, offer_examples
from training.propensity import ChannelPropensityModel
from training.send_time import SendTimeModel

EXAMPLES = Path(__file__).resolve().parents[1] / "nba" / "examples"


@pytest.fixture(scope="module")
def data() -> RetailDataset:
    sim = simulate(SimulatorConfig(n_customers=500, days=40, seed=3, n_products=200))
    return RetailDataset(sim.customers, sim.products, sim.offers, sim.events)


@pytest.fixture(scope="module")
def sends(data: RetailDataset) -> ContactExamples:
    return contact_examples(data, sample_rows(message_sends(data.events), 2000, 0))


@pytest.fixture(scope="module")
def scorer(data: RetailDataset, sends: ContactExamples) -> ModelScorer:
    propensity = ChannelPropensityModel().fit(sends)
    uplift = OfferUpliftModel().fit(offer_examples(data, max_examples=1200), data.offers)
    return ModelScorer(propensity, uplift, SendTimeModel().fit(data))


@pytest.fixture(scope="module")
def live(data: RetailDataset, sends: ContactExamples) -> list[CustomerProfile]:
    """Profiles of the first sends' customers as serving builds them (one at a time)."""
    return point_in_time(data, sends.rows.iloc[:60])


def _contexts(live: list[CustomerProfile], n: int = 40) -> list[CustomerContext]:
    out = []
    for profile in live[:n]:
        everything = {c: True for c in Channel if c.needs_consent}
        rich = dataclasses.replace(
            profile,
            consents=everything,
            cart_items=("P00001",),
            cart_value=80.0,
            cart_age_hours=3.0,
        )
        assert profile.as_of is not None
        out.append(CustomerContext(rich, profile.as_of))
    return out


CATALOG = parse_catalog((EXAMPLES / "retailer_catalog.yaml").read_text())
#: An offer every customer may get, on the channels the history tested offers on.
TEN_PERCENT = Action.model_validate(
    {
        "id": "ten_percent",
        "type": "offer",
        "channels": ["email", "sms", "push", "postal"],
        "value": 8.0,
        "offer": {"id": "ten", "kind": "percent_discount", "value": 10, "cost": 6.0},
    }
)


def _candidates(context: CustomerContext) -> list[ActionCandidate]:
    screening = screen(CATALOG, ContactPolicy(), context, UsageCounts())
    found = [c for c in screening.candidates if not c.action.is_do_nothing]
    slots = tuple(
        ChannelSlot(Channel(c), SendTime(context.now, context.now, "test"))
        for c in TEN_PERCENT.channels
    )
    return [*found, ActionCandidate(TEN_PERCENT, 8.0, None, slots)]


def test_is_a_scorer_and_its_scores_pass_the_engines_checks(
    scorer: ModelScorer, live: list[CustomerProfile]
) -> None:
    assert isinstance(scorer, Scorer)
    seen_offer = False
    for context in _contexts(live):
        candidates = _candidates(context)
        scores = scorer.score(context, candidates)
        check_scores(scorer, candidates, scores)
        for candidate, score in zip(candidates, scores, strict=True):
            assert all(0 <= p <= 0.95 for p in score.propensity.values())
            if candidate.action.offer is not None:
                seen_offer = True
                assert score.uplift is not None
                assert set(score.uplift) == set(candidate.channels)
                assert all(-1 <= u <= 1 for u in score.uplift.values())
            else:
                assert score.uplift is None
    assert seen_offer


def test_learned_channels_follow_the_propensity_model(
    scorer: ModelScorer, live: list[CustomerProfile]
) -> None:
    assert scorer.propensity is not None
    rule = RuleBasedScorer()
    slot_at = dt.datetime(2026, 2, 3, 18, tzinfo=dt.UTC)
    action = Action.model_validate(
        {"id": "content", "type": "content", "channels": ["email", "postal"], "value": 1.0}
    )
    model = scorer.propensity
    learned = []
    for context in _contexts(live, 60):
        slots = tuple(
            ChannelSlot(c, SendTime(slot_at, slot_at, "test"))
            for c in (Channel.EMAIL, Channel.POSTAL)
        )
        candidate = ActionCandidate(action, 1.0, None, slots)
        [score] = scorer.score(context, [candidate])
        [plain] = rule.score(context, [candidate])
        # postal mail records no engagement: the rule-based value is kept
        assert score.propensity[Channel.POSTAL] == plain.propensity[Channel.POSTAL]
        # e-mail: the rule's action terms x the learned engagement relative to the average
        without_history = dataclasses.replace(
            context, profile=dataclasses.replace(context.profile, engagement={})
        )
        [neutral] = rule.score(without_history, [candidate])
        [p] = model.predict(context.profile, [Channel.EMAIL], [slot_at])
        factor = p / model.channel_rates[Channel.EMAIL] * rule.channel_reach[Channel.EMAIL]
        expected = min(0.95, neutral.propensity[Channel.EMAIL] * factor)
        assert score.propensity[Channel.EMAIL] == pytest.approx(expected)
        learned.append(p)
    assert np.std(learned) > 0.01


def test_offer_uplift_comes_from_the_uplift_model(
    scorer: ModelScorer, live: list[CustomerProfile]
) -> None:
    assert scorer.uplift is not None
    offer_action = TEN_PERCENT
    at = dt.datetime(2026, 2, 3, 18, tzinfo=dt.UTC)
    candidate = ActionCandidate(
        offer_action, 5.0, None, (ChannelSlot(Channel.EMAIL, SendTime(at, at, "test")),)
    )
    for context in _contexts(live, 10):
        [score] = scorer.score(context, [candidate])
        assert offer_action.offer is not None
        spec = OfferSpec(offer_action.offer.kind, offer_action.offer.cost)
        _, expected = scorer.uplift.predict(context.profile, [Channel.EMAIL], [spec])
        assert score.uplift is not None
        assert score.uplift[Channel.EMAIL] == pytest.approx(float(expected[0]))


def test_the_engine_decides_with_it(scorer: ModelScorer, live: list[CustomerProfile]) -> None:
    policy = NextBestActionPolicy(CATALOG, scorer=scorer)
    decided = 0
    for context in _contexts(live, 20):
        decision = policy.decide(scorer.prepare(context), seed=1)
        decided += bool(decision.actions)
    assert decided > 0


def test_send_time_hook_puts_the_learned_pattern_in_the_profile(
    scorer: ModelScorer, live: list[CustomerProfile]
) -> None:
    assert scorer.send_time is not None
    context = _contexts(live, 1)[0]
    personal = scorer.prepare(context)
    expected = scorer.send_time.pattern(context.profile.customer_id)
    assert np.argmax(personal.profile.activity_by_hour) == np.argmax(expected)
    assert ModelScorer().prepare(context) is context


def test_unfitted_models_are_refused() -> None:
    with pytest.raises(ValueError, match="not fitted"):
        ModelScorer(propensity=ChannelPropensityModel())
    with pytest.raises(ValueError, match="not fitted"):
        ModelScorer(uplift=OfferUpliftModel())


def test_predict_hours_equals_predict_at_each_hour_to_the_bit(
    scorer: ModelScorer, live: list[CustomerProfile]
) -> None:
    model = scorer.propensity
    assert model is not None
    profiles = [scorer.prepare(c).profile for c in _contexts(live, 30)]
    profiles.append(dataclasses.replace(profiles[0], activity_by_hour=()))  # no pattern
    grid = model.predict_hours(profiles)
    assert grid.shape == (len(profiles), len(model.channels), 24)
    day = dt.datetime(2026, 2, 3, tzinfo=dt.UTC)
    for n, profile in enumerate(profiles):
        for hour in range(24):
            alone = model.predict(
                profile, list(model.channels), [day.replace(hour=hour)] * len(model.channels)
            )
            assert np.array_equal(grid[n, :, hour], alone)
    assert np.std(grid[:, 0, :], axis=1).max() > 0  # the hour matters


def test_a_chunk_scores_every_customer_as_alone_without_a_model_call_each(
    scorer: ModelScorer, live: list[CustomerProfile], monkeypatch: pytest.MonkeyPatch
) -> None:
    model = scorer.propensity
    assert model is not None
    contexts = [scorer.prepare(c) for c in _contexts(live, 40)]
    batches = []
    for k, context in enumerate(contexts):  # sends at every hour of the day and the week
        at = context.now + dt.timedelta(hours=5 * k)
        slots = tuple(
            ChannelSlot(c, SendTime(at + dt.timedelta(hours=i), at, "test"))
            for i, c in enumerate(TEN_PERCENT.channels)
        )
        batches.append(
            (context, [*_candidates(context), ActionCandidate(TEN_PERCENT, 8.0, None, slots)])
        )
    alone = [scorer.score(c, cands) for c, cands in batches]
    calls = 0
    predict = model.predict

    def counted(*args, **kwargs):
        nonlocal calls
        calls += 1
        return predict(*args, **kwargs)

    monkeypatch.setattr(model, "predict", counted)
    with scorer.chunk([c.profile for c, _ in batches]):
        together = [scorer.score(c, cands) for c, cands in batches]
        # a profile not of the chunk (an equal copy) is scored alone, and the same
        other = dataclasses.replace(
            batches[0][0], profile=dataclasses.replace(batches[0][0].profile)
        )
        assert scorer.score(other, batches[0][1]) == alone[0]
    assert calls == 1
    assert together == alone
    assert scorer.score(*batches[1]) == alone[1] and calls == 2  # the chunk is forgotten


def test_batch_decisions_with_the_models_equal_those_decided_one_by_one(
    scorer: ModelScorer, data: RetailDataset, monkeypatch: pytest.MonkeyPatch
) -> None:
    import serving.batch_decisions as batch
    from features.batch import build_profiles
    from nba.pipeline import build_pipeline

    profiles = build_profiles(data, workers=1).profiles
    assert profiles[0].as_of is not None
    now = profiles[0].as_of
    pipeline = build_pipeline(CATALOG, ContactPolicy(), scorer=scorer)
    monkeypatch.setattr(batch, "CHUNK_SIZE", 150)
    chunked = batch.decide_audience(profiles, CATALOG, now=now, policy=pipeline, seed=4)

    @contextlib.contextmanager
    def each_alone(self: ModelScorer, profiles: object) -> Iterator[None]:
        yield

    monkeypatch.setattr(ModelScorer, "chunk", each_alone)
    alone = batch.decide_audience(profiles, CATALOG, now=now, policy=pipeline, seed=4)
    pd.testing.assert_frame_equal(chunked, alone, check_exact=True)
    contacts = batch.contacts_only(chunked)
    assert scorer.propensity is not None
    assert contacts["channel"].isin([c.value for c in scorer.propensity.channels]).sum() > 20


def test_learned_scores_keep_the_open_rate_ceiling_exploration_is_held_to(
    scorer: ModelScorer, live: list[CustomerProfile]
) -> None:
    """With the champions, as with the rules, a message is answered no more often than it
    is opened: each learned score carries the rule scorer's ceiling per channel (without
    it Thompson sampling drew pushes and e-mails above their open rate: cells9)."""
    rule = RuleBasedScorer()
    capped = 0
    for context in _contexts(live):
        candidates = _candidates(context)
        learned = scorer.score(context, candidates)
        fallback = rule.score(context, candidates)
        for candidate, score, plain in zip(candidates, learned, fallback, strict=True):
            assert plain.ceiling is not None
            assert score.ceiling == plain.ceiling
            capped += sum(1 for c in candidate.channels if plain.ceiling[c] < 0.95)
    assert capped > 0  # some channel reports opens: the ceiling is below the plain cap
