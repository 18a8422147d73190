"""Response statistics contract: the same tests for every implementation, against real Redis.

Implementations under test: in-memory, the embedded Redis server and, when
``NBA_TEST_REDIS_URL`` is set, a system Redis (each beside a store of that kind,
through :func:`~features.online.contact_state.contact_state_for`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

import pytest

from features.online.contact_state import ContactState, contact_state_for
from features.online.redis_store import RedisOnlineStore
from features.online.response_stats import (
    Exposure,
    MemoryResponseStats,
    Outcome,
    RedisResponseStats,
    ResponseCounts,
    ResponseStats,
    ResponseTable,
    StatsKey,
    margin_rates,
)
from nba.arbitration import ResponsePosterior
from nba.events import EventType
from tests.test_contact_state import a_decision
from tests.test_online_store import (  # noqa: F401 - fixtures
    NewStore,
    embedded_redis,
    new_store,
    system_redis,
)

NOW = dt.datetime(2026, 3, 6, 9, 30, tzinfo=dt.UTC)
KEY = StatsKey("cart", "email", "active")

NewStats = Callable[..., ResponseStats]


@pytest.fixture
def new_stats(new_store: NewStore) -> NewStats:  # noqa: F811 - the fixture above
    def make(**options: float) -> ResponseStats:
        contacts = contact_state_for(new_store(), response_stats=True, **options)
        assert contacts.stats is not None
        return contacts.stats

    return make


def sent(decision_id: str, customer: str = "C1", at: dt.datetime = NOW, **kw: object) -> Exposure:
    fields: dict[str, object] = {
        "action_id": "cart",
        "channel": "email",
        "segment": "active",
        "expected": 0.2,
    }
    fields.update(kw)
    return Exposure(decision_id, customer, at, **fields)  # type: ignore[arg-type]


def counts(stats: ResponseStats, at: dt.datetime = NOW, key: StatsKey = KEY) -> ResponseCounts:
    return stats.table(at).counts.get(key, ResponseCounts())


def test_nothing_is_known_at_first(new_stats: NewStats) -> None:
    stats = new_stats()
    assert stats.table(NOW).counts == {}
    assert stats.table(NOW).posteriors("active") == {}


def test_exposures_and_expected_responses_are_counted(new_stats: NewStats) -> None:
    stats = new_stats()
    for i in range(3):
        stats.expose(sent(f"d{i}"))
    c = counts(stats)
    assert c.exposures == pytest.approx(3.0) and c.expected == pytest.approx(0.6)
    assert c.responses == 0.0


def test_an_outcome_naming_its_decision_is_counted_once(new_stats: NewStats) -> None:
    stats = new_stats()
    stats.expose(sent("d1"))
    later = NOW + dt.timedelta(hours=1)
    outcome = Outcome("e1", "C1", later, "r", "d1")
    assert stats.attribute([outcome]).attributed == 1
    again = stats.attribute([outcome, Outcome("e2", "C1", later, "r", "d1")])
    assert (again.attributed, again.duplicate) == (0, 2)  # one purchase per decision
    c = counts(stats)
    assert c.responses == pytest.approx(1.0) and c.exposures == pytest.approx(1.0)
    assert stats.attribute([Outcome("e3", "C1", later, "c", "d1")]).attributed == 1
    assert counts(stats).clicks == pytest.approx(1.0)


def test_a_withdrawn_exposure_counts_no_more_and_earns_no_outcome(new_stats: NewStats) -> None:
    """A message withdrawn before it went (nba.supersession) is no exposure without
    response: its exposure, expected responses and valued exposure leave the counts, an
    outcome naming it is nobody's, and one without a decision id goes to the send that
    went, not to it (it was later)."""
    stats = new_stats(window_hours=48.0)
    kept = sent("d-kept", at=NOW - dt.timedelta(hours=2), expected=0.3, value=4.0)
    gone = sent("d-gone", at=NOW, expected=0.2, value=2.0)
    stats.expose(kept)
    stats.expose(gone)
    stats.expose(sent("d-other", customer="C2"))
    assert counts(stats).exposures == pytest.approx(3.0, rel=1e-2)

    stats.withdraw([gone])
    c = counts(stats)
    assert c.exposures == pytest.approx(2.0, rel=1e-2)
    assert c.expected == pytest.approx(0.5, rel=1e-2)  # 0.3 + C2's 0.2
    assert c.valued == pytest.approx(1.0, rel=1e-2)  # only the kept one is valued
    later = NOW + dt.timedelta(hours=1)
    assert stats.attribute([Outcome("e1", "C1", later, "r", "d-gone")]).unattributed == 1
    assert stats.attribute([Outcome("e2", "C1", later, "c")]).attributed == 1
    assert counts(stats).clicks == pytest.approx(1.0, rel=1e-2)
    assert stats.attribute([Outcome("e3", "C1", later, "r", "d-kept")]).attributed == 1
    assert counts(stats).response_value == pytest.approx(4.0, rel=1e-2)


def test_a_click_and_a_purchase_are_one_response(new_stats: NewStats) -> None:
    stats = new_stats()
    stats.expose(sent("d1"))
    later = NOW + dt.timedelta(hours=1)
    click = Outcome.of_event("e1", "C1", later, EventType.MESSAGE_CLICKED, "d1")
    purchase = Outcome.of_event("e2", "C1", later, EventType.PURCHASE, "d1")
    assert stats.attribute(click + purchase).attributed == 2
    c = counts(stats)
    assert (c.clicks, c.purchases, c.responses) == pytest.approx((1.0, 1.0, 1.0))
    assert Outcome.of_event("e3", "C1", later, EventType.PRODUCT_VIEW, "d1") == []


def test_an_outcome_without_decision_id_goes_to_the_latest_send_in_the_window(
    new_stats: NewStats,
) -> None:
    stats = new_stats(window_hours=48.0)
    stats.expose(sent("d-old", at=NOW - dt.timedelta(hours=30), action_id="old"))
    stats.expose(sent("d-new", at=NOW - dt.timedelta(hours=2)))
    result = stats.attribute([Outcome("e1", "C1", NOW, "n")])
    assert result.attributed == 1
    assert counts(stats).negatives == pytest.approx(1.0, rel=1e-2)
    assert counts(stats, key=StatsKey("old", "email", "active")).negatives == 0.0
    # outside the window: nobody's
    late = stats.attribute([Outcome("e2", "C1", NOW + dt.timedelta(days=3), "r")])
    assert late.unattributed == 1


def test_unknown_and_foreign_decision_ids_are_unattributed(new_stats: NewStats) -> None:
    stats = new_stats()
    stats.expose(sent("d1", customer="C1"))
    result = stats.attribute(
        [
            Outcome("e1", "C2", NOW, "r", "d1"),  # another customer's decision
            Outcome("e2", "C1", NOW, "r", "nope"),
            Outcome("e3", "C1", NOW, "r", "d1|r"),  # looks like a mark
            Outcome("e4", "C9", NOW, "c"),  # nobody was contacted
        ]
    )
    assert (result.attributed, result.unattributed) == (0, 4)
    assert counts(stats).responses == 0.0


def test_evidence_halves_every_half_life(new_stats: NewStats) -> None:
    stats = new_stats(half_life_days=7.0)
    stats.expose(sent("d1"))
    stats.attribute([Outcome("e1", "C1", NOW, "r", "d1")])
    week = counts(stats, NOW + dt.timedelta(days=7))
    assert week.exposures == pytest.approx(0.5) and week.responses == pytest.approx(0.5)
    assert counts(stats, NOW + dt.timedelta(days=70)).exposures == pytest.approx(2**-10)


def test_evidence_survives_the_turn_of_an_era(new_stats: NewStats) -> None:
    stats = new_stats(half_life_days=0.01)  # an era is 0.64 days
    era = stats.era(NOW.timestamp())
    boundary = dt.datetime.fromtimestamp((era + 1) * stats.half_life * 64, dt.UTC)
    stats.expose(sent("d1", at=boundary - dt.timedelta(minutes=1)))
    after = counts(stats, boundary + dt.timedelta(minutes=1))
    assert after.exposures == pytest.approx(2 ** (-120 / stats.half_life))


def test_posteriors_are_per_segment_and_move_with_evidence(new_stats: NewStats) -> None:
    stats = new_stats()
    for i in range(50):
        stats.expose(sent(f"d{i}", expected=0.2))  # 10 responses expected
    stats.attribute([Outcome(f"e{i}", "C1", NOW, "r", f"d{i}") for i in range(2)])
    table = stats.table(NOW)
    alone = table.posteriors("active", pooled=False)["cart@email"]
    assert isinstance(alone, ResponsePosterior)
    assert alone.mean == pytest.approx((2 + 2) / (2 + 10))  # the scorer is 3x too hopeful
    # pooled: the prior is centred on the segment's calibration (here this one pair's)
    posterior = table.posteriors("active")["cart@email"]
    assert posterior.mean == pytest.approx((2 * alone.mean + 2) / (2 + 10))
    assert table.posteriors("new") == {}
    assert table.posteriors("new").get("cart@email") is None  # no evidence: the policy's prior
    summary = table.by_action()["cart"]
    assert summary.rate == pytest.approx(2 / 50)
    low, high = summary.rate_interval()
    assert low < 2 / 50 < high


def test_recorded_decisions_are_exposures_and_read_with_the_decision(
    new_store: NewStore,  # noqa: F811
) -> None:
    contacts: ContactState = contact_state_for(new_store(), response_stats=True)
    decision = a_decision()
    contacts.record(decision, segment="active")
    contacts.record(a_decision("C2"), segment=None)  # no segment: not counted
    read = contacts.read_for_decision("C1", NOW)
    assert read.stats is not None
    [(key, c)] = read.stats.counts.items()
    assert (key.action_id, key.channel, key.segment) == ("cart_reminder", "email", "active")
    assert c.exposures == pytest.approx(1.0, rel=1e-2)  # decayed from its send time to NOW
    assert c.expected == pytest.approx(decision.actions[0].terms.propensity, rel=1e-2)  # type: ignore[union-attr]
    assert contacts.stats is not None
    result = contacts.stats.attribute([Outcome("e1", "C1", NOW, "r", decision.decision_id)])
    assert result.attributed == 1


class CountingClient:
    """A real Redis client that counts round trips (commands and pipeline executions)."""

    def __init__(self, client: object) -> None:
        self.client = client
        self.round_trips = 0

    def pipeline(self, *args: object, **kwargs: object) -> object:
        pipe = self.client.pipeline(*args, **kwargs)  # type: ignore[attr-defined]
        execute = pipe.execute

        def counted(*a: object, **k: object) -> object:
            self.round_trips += 1
            return execute(*a, **k)

        pipe.execute = counted
        return pipe

    def __getattr__(self, name: str) -> object:
        self.round_trips += 1
        return getattr(self.client, name)


def test_redis_reads_what_a_decision_needs_in_one_round_trip(
    new_redis_store: NewStore,
) -> None:
    store = new_redis_store()
    assert isinstance(store, RedisOnlineStore)
    counting = CountingClient(store.client)
    store.client = counting
    contacts = contact_state_for(store, response_stats=True)
    contacts.record(a_decision(), segment="active")
    counting.round_trips = 0
    read = contacts.read_for_decision("C1", NOW)
    assert counting.round_trips == 1
    assert read.stats is not None and len(read.stats.counts) == 1


def test_redis_cluster_mode_gives_the_same_counts(
    new_redis_store: NewStore,
) -> None:
    """Without the statistics keys in the script (Redis Cluster), the increments follow."""
    store = new_redis_store()
    assert isinstance(store, RedisOnlineStore)
    stats = RedisResponseStats(store.client, store.prefix, cluster=True)
    stats.expose(sent("d1"))
    assert stats.attribute([Outcome("e1", "C1", NOW, "r", "d1")]).attributed == 1
    assert stats.attribute([Outcome("e1", "C1", NOW, "r", "d1")]).duplicate == 1
    assert counts(stats).responses == pytest.approx(1.0)


@pytest.fixture(params=["embedded_redis", "system_redis"])
def new_redis_store(request: pytest.FixtureRequest) -> NewStore:
    from tests.test_online_store import make_store

    return lambda: make_store(request.param, request)


def test_an_unseen_pair_starts_from_its_segments_calibration(new_stats: NewStats) -> None:
    """A new action has no statistics; it competes with what the segment learned of the
    scorer (here: twice as many responses as predicted), not with a prior of 1."""
    stats = new_stats()
    for i in range(100):
        stats.expose(sent(f"d{i}", f"C{i}", expected=0.1))  # 10 responses expected
    stats.attribute([Outcome(f"e{i}", f"C{i}", NOW, "r", f"d{i}") for i in range(20)])
    posteriors = stats.table(NOW).posteriors("active")
    seen = posteriors.get("cart@email")
    unseen = posteriors.get("brand_new@email")
    assert "brand_new@email" not in posteriors
    assert unseen is not None and seen is not None
    assert unseen.mean == pytest.approx((2 + 20) / (2 + 10))
    assert unseen.rate == 2.0  # the prior's weight: two expected responses
    assert seen.mean == pytest.approx((2 * unseen.mean + 20) / (2 + 10))


# the value: attributed margins and the stated value of responses ----------------------


def test_a_purchase_counts_its_margin_and_a_response_its_stated_value(
    new_stats: NewStats,
) -> None:
    stats = new_stats()
    stats.expose(sent("d1", value=5.0))
    stats.expose(sent("d2", "C2", value=0.0))  # a review request: its value is not learned
    later = NOW + dt.timedelta(hours=1)
    outcomes = [
        *Outcome.of_event("e1", "C1", later, EventType.MESSAGE_CLICKED, "d1"),
        *Outcome.of_event("e2", "C1", later, EventType.PURCHASE, "d1", margin=12.0),
        *Outcome.of_event("e3", "C2", later, EventType.PURCHASE, "d2", margin=30.0),
    ]
    assert stats.attribute(outcomes).attributed == 3
    assert stats.attribute(outcomes).duplicate == 3  # replayed: nothing counts twice
    c = counts(stats)
    assert c.exposures == pytest.approx(2.0) and c.valued == pytest.approx(1.0)
    assert c.responses == pytest.approx(2.0)
    # one response of the valued send (its stated value once), one purchase's margin
    assert (c.response_value, c.margin, c.margin_sq) == pytest.approx((5.0, 12.0, 144.0))


def test_the_value_model_ranks_by_margin_the_response_model_does_not(
    new_stats: NewStats,
) -> None:
    """Two actions answered alike, one of whose responses buy ten times the margin: only
    the value model tells them apart; a review request keeps its response calibration."""
    stats = new_stats()
    outcomes = []
    for action, margin in (("rich", 20.0), ("poor", 2.0)):
        for i in range(100):
            did, customer = f"{action}{i}", f"{action}-C{i}"
            stats.expose(sent(did, customer, action_id=action, expected=0.1, value=5.0))
            if i < 10:
                outcomes.append(Outcome(f"e{did}", customer, NOW, "cr", did))
            if i < 5:
                outcomes.append(Outcome(f"p{did}", customer, NOW, "pr", did, margin))
    for i in range(50):
        stats.expose(sent(f"rv{i}", f"rv-C{i}", action_id="review", expected=0.1))
    assert stats.attribute(outcomes).attributed == len(outcomes)
    table = stats.table(NOW)
    value = ResponseTable(table.as_of, table.counts, "value").posteriors("active")
    response = ResponseTable(table.as_of, table.counts, "response").posteriors("active")
    assert response["rich@email"].mean == pytest.approx(response["poor@email"].mean)
    assert value["rich@email"].mean > 2 * value["poor@email"].mean
    # relative to the segment's pooled margin per stated value: one above 1, one below
    assert value["rich@email"].mean > response["rich@email"].mean
    assert value["poor@email"].mean < response["poor@email"].mean
    assert value["review@email"] == response["review@email"]
    # the value as a shrunk estimate: the same ranking, the response's spread
    shrunk = ResponseTable(table.as_of, table.counts, "value_mean").posteriors("active")
    assert shrunk["rich@email"].mean == pytest.approx(value["rich@email"].mean)
    assert shrunk["rich@email"].shape == response["rich@email"].shape
    # a new action: the segment's calibration, with the value's spread added
    unseen, unseen_response = value.get("new@email"), response.get("new@email")
    assert unseen.mean == pytest.approx(unseen_response.mean)
    assert unseen.shape < unseen_response.shape
    assert shrunk.get("new@email") == unseen_response
    # more evidence, narrower: exploration settles
    assert value["rich@email"].shape > unseen.shape


def test_a_purchases_margin_is_what_was_paid_times_its_products_rate() -> None:
    import pandas as pd

    products = pd.DataFrame(
        {"product_id": ["P1", "P2", "P3"], "price": [50.0, 20.0, 0.0], "margin": [20.0, 5.0, 1.0]}
    )
    rates = margin_rates(products)
    assert rates == pytest.approx({"P1": 0.4, "P2": 0.25})
    stats = MemoryResponseStats(margin_rates=rates, default_margin_rate=0.1)
    assert stats.margin("P1", 45.0) == pytest.approx(18.0)  # a discounted order
    assert stats.margin("P9", 45.0) == pytest.approx(4.5)  # not in the catalogue
    assert stats.margin("P1", None) == 0.0
    with pytest.raises(ValueError, match="model"):
        MemoryResponseStats(model="clicks")


def test_redis_attributes_sends_recorded_before_values_were_learned(
    new_redis_store: NewStore,
) -> None:
    store = new_redis_store()
    assert isinstance(store, RedisOnlineStore)
    stats = RedisResponseStats(store.client, store.prefix)
    stats.expose(sent("d1", value=4.0))
    # a send in the old format (no value): attributed, its value not learned
    sent_at = int(NOW.timestamp())
    store.client.hset(stats.sends_key("C2"), "d0", f"{sent_at}|cart|email|active|0.2")
    outcomes = [
        Outcome("e1", "C1", NOW, "pr", "d1", 10.0),
        Outcome("e0", "C2", NOW, "pr", "d0", 8.0),
    ]
    assert stats.attribute(outcomes).attributed == 2
    c = counts(stats)
    assert c.responses == pytest.approx(2.0) and c.purchases == pytest.approx(2.0)
    assert (c.response_value, c.margin) == pytest.approx((4.0, 10.0))


def test_an_exposure_keeps_the_stated_value_of_a_purchase_goal_only() -> None:
    import dataclasses

    from nba.actions import ActionType

    decision = a_decision()
    [first] = decision.contacts
    assert first.terms is not None
    exposure = Exposure.of(decision, "active")
    assert exposure is not None
    assert exposure.value == pytest.approx(
        first.terms.value * first.terms.lever * first.terms.fatigue
    )
    review = dataclasses.replace(first, action_type=ActionType.REVIEW_REQUEST)
    reviewed = Exposure.of(dataclasses.replace(decision, actions=(review,)), "active")
    assert reviewed is not None and reviewed.value == 0.0


def test_the_same_outcome_twice_in_one_batch_counts_once(new_stats: NewStats) -> None:
    stats = new_stats()
    stats.expose(sent("d1"))
    stats.expose(sent("d2", "C2"))
    later = NOW + dt.timedelta(hours=1)
    result = stats.attribute(
        [
            Outcome("e1", "C1", later, "cr", "d1"),
            Outcome("e2", "C1", later, "cr", "d1"),  # the same click, sent twice
            Outcome("e3", "C2", later, "c"),  # through the window
            Outcome("e4", "C2", later, "cr"),  # only its response is new
            Outcome("e5", "C2", later, "c"),
        ]
    )
    assert (result.attributed, result.duplicate) == (3, 2)
    c = counts(stats)
    assert (c.clicks, c.responses) == pytest.approx((2.0, 2.0))
