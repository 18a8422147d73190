"""Issue 12 (winback6): the win-back discount the offer-pays test refuses on priors, tried
on a share of the customers it is refused to until outcomes say whether it pays.

Each test builds a lapsed customer from raw contract events through the real feature
code (:mod:`tests.test_scenarios`' helpers), then decides for many customers like them
(the same history under other customer ids: each id has its own fixed trial draw,
:func:`nba.offer_trial.trial_draw`) with the example catalog and contact policy, the
trial switched on by the contact policy's ``offer_trial_share``. Evidence is made the way
the closed loop and the API make it: the engine's own decisions recorded in
:class:`~features.online.response_stats.MemoryResponseStats` and purchase outcomes joined
to them.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
from collections.abc import Mapping

import pytest

from features.dataset import RetailDataset
from features.online.response_stats import (
    TRIAL_UNIT_DAYS,
    MemoryResponseStats,
    Outcome,
    response_segment,
)
from nba.arbitration import Posterior
from nba.channels import Channel
from nba.contact_policy import ContactPolicy
from nba.context import CustomerContext
from nba.decision import Decision
from nba.engine import NextBestActionPolicy
from nba.events import EventType
from nba.offer_trial import trial_draw, trial_key, trial_unit
from nba.pipeline import build_pipeline
from nba.profile import CustomerProfile
from nba.reasons import ReasonCode
from tests.test_scenarios import customer, events, profile_at, retailer, retailer_policy

UTC = dt.UTC
NOW = dt.datetime(2026, 3, 4, 9, 0, tzinfo=UTC)
SHARE = 0.1
OFFER = "reactivation_offer"


def lapsed(base: RetailDataset, consents: tuple[str, ...] = ("email", "sms")) -> CustomerProfile:
    """Two full-price purchases last autumn, silence since: lapsed, and the win-back
    discount refused on priors (it would not move a customer who never bought on offer)."""
    people = customer(base, consents=consents)
    raw = events(
        ("2025-09-01T09:00:00Z", "web", "purchase", "P2"),
        ("2025-10-01T09:00:00Z", "web", "purchase", "P2"),
    )
    profile = profile_at(base, people, raw, NOW)
    assert profile.lifecycle_state.value == "lapsed"
    return profile


def trial_policy(share: float = SHARE) -> ContactPolicy:
    return ContactPolicy.from_dict({"offer_trial_share": share}, base=retailer_policy())


def decide_all(
    profile: CustomerProfile,
    ids: list[str],
    policy: ContactPolicy,
    stats: Mapping[str, Posterior] | None = None,
    now: dt.datetime = NOW,
    *,
    exploration: bool = False,
) -> list[Decision]:
    catalog = retailer()
    engine = NextBestActionPolicy(catalog, policy, exploration=exploration)
    pipeline = build_pipeline(catalog, policy, policy=engine)
    out = []
    for cid in ids:
        context = CustomerContext(dataclasses.replace(profile, customer_id=cid), now)
        out.append(pipeline.route(context, stats=stats, seed=1).decision)
    return out


def explained(decision: Decision) -> str:
    return "\n".join(decision.explanation.lines())


def tried(decision: Decision) -> bool:
    first = decision.contacts[0] if decision.contacts else None
    return first is not None and first.action_id == OFFER


def ids(n: int, prefix: str = "C") -> list[str]:
    return [f"{prefix}{i}" for i in range(n)]


def test_without_the_trial_the_refused_discount_never_goes(base: RetailDataset) -> None:
    """The default contact policy has no trial: "we miss you" without the discount, for
    every customer, and the discount is not among the logged options."""
    decisions = decide_all(lapsed(base), ids(50), retailer_policy())
    assert not any(tried(d) for d in decisions)
    assert all(d.contacts[0].action_id == "reactivation" for d in decisions)
    assert all(OFFER not in {o.action_id for o in d.options} for d in decisions)
    assert all(ReasonCode.UPLIFT_TOO_LOW in d.reasons(OFFER) for d in decisions)


def test_with_no_evidence_the_discount_goes_only_within_the_trial_share(
    base: RetailDataset,
) -> None:
    """No evidence: the discount goes to exactly the customers whose draw is below the
    share (a tenth), logged with probability 0.1, explained as explored; the others get
    "we miss you" at 0.9 and are the held-out arm. The refusal on priors stays in the
    reasons of both."""
    profile = lapsed(base)
    customers = ids(400)
    decisions = decide_all(profile, customers, trial_policy())
    treated = [d for d in decisions if tried(d)]
    assert {d.customer_id for d in treated} == {
        c for c in customers if trial_draw(OFFER, c) < SHARE
    }
    assert 20 <= len(treated) <= 60  # a tenth of 400, within binomial noise
    for d in decisions:
        probabilities = {(o.action_id, o.channel): o.probability for o in d.options}
        assert math.isclose(sum(p or 0.0 for p in probabilities.values()), 1.0)
        assert ReasonCode.UPLIFT_TOO_LOW in d.reasons(OFFER)
        unit = trial_unit(d)
        assert unit is not None and unit.action_id == OFFER
        first = d.contacts[0]
        if tried(d):
            # 15 % of the customer's 59.90 basket, what the discount gives up on an order
            assert unit.treated and unit.offer_cost == pytest.approx(0.15 * 59.90)
            assert first.offer_id == "winback_15" and first.channel == Channel.EMAIL
            assert math.isclose(d.propensity, SHARE)
            assert first.explored
            assert explained(d).count("explored: reactivation_offer (refused on priors")
            assert "no evidence yet" in explained(d)
        else:
            assert not unit.treated
            assert first.action_id == "reactivation"
            assert math.isclose(d.propensity, 1.0 - SHARE)
            assert "held out of the trial of reactivation_offer" in explained(d)


def test_with_thompson_sampling_the_logged_probabilities_stay_exact(base: RetailDataset) -> None:
    """Exploration on (the API's default): every decision's logged options sum to 1, the
    chosen option's probability is the decision's propensity, and the discount's is the
    share where it is on trial."""
    decisions = decide_all(lapsed(base), ids(200), trial_policy(), exploration=True)
    assert any(tried(d) for d in decisions)
    for d in decisions:
        logged = {(o.action_id, o.channel): o.probability or 0.0 for o in d.options}
        assert math.isclose(sum(logged.values()), 1.0)
        first = d.contacts[0]
        assert first.channel is not None
        assert math.isclose(logged[(first.action_id, first.channel.value)], d.propensity)
        on_trial = [p for (a, _), p in logged.items() if a == OFFER]
        assert on_trial == [pytest.approx(SHARE)]


def test_a_purchase_counts_once_for_its_trial_decision(base: RetailDataset) -> None:
    """The same purchase event joined twice, and a second purchase of the same decision:
    the trial counts the decision's first purchase once (its margin less the discount's
    cost and its expected redemptions on orders placed anyway)."""
    profile = lapsed(base)
    stats = MemoryResponseStats()
    decisions = decide_all(profile, ids(60), trial_policy())
    for d in decisions:
        stats.record_decision(d, response_segment(profile))
    d = next(d for d in decisions if tried(d))
    unit = trial_unit(d)
    assert unit is not None and unit.anyway_cost > 0.0
    at = NOW + dt.timedelta(days=1)
    for event in ("e1", "e1", "e2"):
        stats.attribute(
            Outcome.of_event(event, d.customer_id, at, EventType.PURCHASE, d.decision_id, 25.0)
        )
    counts = stats.table(at).trials[trial_key(OFFER)]
    treated = sum(tried(x) for x in decisions)
    assert (counts.treated, counts.held) == (treated, len(decisions) - treated)
    charged = sum(u.anyway_cost for x in decisions if (u := trial_unit(x)) and u.treated)
    assert counts.treated_net == pytest.approx(25.0 - 0.15 * 59.90 - charged)


def test_the_trial_keeps_consent_and_quiet_hours(base: RetailDataset) -> None:
    """Consented to push only: the discount (e-mail, SMS) reaches no one. Decided at
    23:30 in Paris: the tried discount is sent in the morning, within the channel's hours."""
    push_only = lapsed(base, consents=("push",))
    assert not any(tried(d) for d in decide_all(push_only, ids(200), trial_policy()))
    late = dt.datetime(2026, 3, 4, 22, 30, tzinfo=UTC)
    decisions = decide_all(lapsed(base), ids(200), trial_policy(), now=late)
    sent = [d.contacts[0] for d in decisions if tried(d)]
    assert sent
    for action in sent:
        assert action.send_at_local is not None and 8 <= action.send_at_local.hour < 21
        assert action.send_at is not None and action.send_at > late


def evidence(
    base: RetailDataset, *, treated_margin: float, held_margin: float, rounds: int = 3
) -> MemoryResponseStats:
    """Statistics fed by the engine's own trial decisions (``rounds`` of 400 customers,
    a day apart), each decision's purchase joined to it: every treated customer buys with
    ``treated_margin``, every held-out one with ``held_margin`` (none at 0)."""
    profile = lapsed(base)
    stats = MemoryResponseStats()
    segment = response_segment(profile)
    for r in range(rounds):
        now = NOW + dt.timedelta(days=r)
        for d in decide_all(profile, ids(400, prefix=f"R{r}-"), trial_policy(), now=now):
            stats.record_decision(d, segment)
            margin = treated_margin if tried(d) else held_margin
            if margin > 0:
                at = now + dt.timedelta(days=2)
                event = f"{d.decision_id}:purchase"
                stats.attribute(
                    Outcome.of_event(
                        event, d.customer_id, at, EventType.PURCHASE, d.decision_id, margin
                    )
                )
    return stats


def test_with_evidence_that_it_pays_the_discount_goes_out(base: RetailDataset) -> None:
    """Treated customers each bought (margin 30, less the discount's 7), held-out ones did
    not: the discount goes to most of the customers it is refused to, with a held-out
    share kept (at most 90 % get it)."""
    stats = evidence(base, treated_margin=30.0, held_margin=0.0)
    later = NOW + dt.timedelta(days=5)
    table = stats.table(later)
    counts = table.trials[trial_key(OFFER)]
    assert counts.treated > 50 and counts.held > 500
    posteriors = table.posteriors(response_segment(lapsed(base)))
    decisions = decide_all(lapsed(base), ids(300, prefix="N"), trial_policy(), posteriors, later)
    share = sum(tried(d) for d in decisions) / len(decisions)
    assert 0.8 <= share < 0.97
    sample = next(d for d in decisions if tried(d))
    assert "P(it pays) 1.00" in explained(sample)
    assert math.isclose(sample.propensity, 0.9)


def test_with_evidence_that_it_does_not_pay_the_trial_stops(base: RetailDataset) -> None:
    """Treated customers never bought (the discount's expected redemptions on orders placed
    anyway charged to them), held-out ones bought "we miss you"'s way (margin 20 each): no
    one gets the discount any more, and it is no longer among the logged options."""
    stats = evidence(base, treated_margin=0.0, held_margin=20.0, rounds=2)
    later = NOW + dt.timedelta(days=5)
    posteriors = stats.table(later).posteriors(response_segment(lapsed(base)))
    decisions = decide_all(lapsed(base), ids(300, prefix="N"), trial_policy(), posteriors, later)
    assert not any(tried(d) for d in decisions)
    assert all(OFFER not in {o.action_id for o in d.options} for d in decisions)
    assert all(trial_unit(d) is None for d in decisions)


def test_a_bad_trial_share_is_refused_with_the_field_named() -> None:
    for bad in (0.0, -0.1, 0.9):
        with pytest.raises(Exception, match="offer_trial_share"):
            ContactPolicy.from_dict({"offer_trial_share": bad})


def test_a_trial_decision_waits_for_its_purchase_two_weeks_at_most(base: RetailDataset) -> None:
    """A purchase joined to a tried decision more than two weeks after the decisions that
    followed it no longer counts for the trial (the statistics keep trial decisions
    :data:`~features.online.response_stats.TRIAL_UNIT_DAYS` days: memory stays bounded)."""
    profile = lapsed(base)
    segment = response_segment(profile)
    stats = MemoryResponseStats()
    early = decide_all(profile, ids(60), trial_policy())
    for d in early:
        stats.record_decision(d, segment)
    later = NOW + dt.timedelta(days=TRIAL_UNIT_DAYS + 1)
    for d in decide_all(profile, ids(60, prefix="L"), trial_policy(), now=later):
        stats.record_decision(d, segment)
    first = next(d for d in early if tried(d))
    before = stats.table(later).trials[trial_key(OFFER)]
    stats.attribute(
        Outcome.of_event(
            "late", first.customer_id, later, EventType.PURCHASE, first.decision_id, 25.0
        )
    )
    assert stats.table(later).trials[trial_key(OFFER)] == before
