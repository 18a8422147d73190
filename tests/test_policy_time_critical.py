"""Exploration does not throw a time-critical action away.

A fresh cart of a customer who bought a few days ago: the cart reminder has the
highest priority, a cross-sell and the weekly picks are eligible too. Thompson
sampling without statistics used to pass the reminder over for them (issue 12: a
reminder at priority 1.3 lost to a cross-sell at 0.58). The reminder is
time-critical: exploration still chooses among its channels due as soon, with
exact probabilities, and never for another action or a later send. Built from raw
contract events through the real feature code, decided with the example catalog.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections import Counter
from collections.abc import Mapping

import pytest

from features.dataset import RetailDataset
from nba.arbitration import Posterior, ResponsePosterior
from nba.catalog import Catalog, parse_catalog
from nba.channels import Channel
from nba.context import CustomerContext
from nba.decision import Decision
from nba.engine import NextBestActionPolicy
from nba.profile import CustomerProfile
from tests.test_scenarios import customer, events, profile_at, retailer, retailer_policy

NOW = dt.datetime(2026, 3, 4, 10, 0, tzinfo=dt.UTC)  # Wednesday 11:00 in Paris


def _cart_after_a_purchase(base: RetailDataset, *rows: tuple[object, ...]) -> CustomerProfile:
    """A large order three days ago (a cross-sell is due), a small cart left two hours ago."""
    people = customer(base, consents=("email", "push", "sms"))
    raw = events(
        ("2026-03-01T10:00:00Z", "web", "purchase", "P1", {"revenue": 140.0}),
        *rows,
        ("2026-03-04T08:00:00Z", "web", "add_to_cart", "P2"),
    )
    return profile_at(base, people, raw, NOW)


@functools.cache
def _engine(time_critical: bool = True) -> NextBestActionPolicy:
    catalog = retailer()
    if not time_critical:
        catalog = Catalog([a.model_copy(update={"time_critical": False}) for a in catalog.actions])
    return NextBestActionPolicy(catalog, retailer_policy())


def _decide(
    profile: CustomerProfile,
    seed: int,
    *,
    time_critical: bool = True,
    stats: Mapping[str, Posterior] | None = None,
) -> Decision:
    return _engine(time_critical).decide(CustomerContext(profile, NOW), seed=seed, stats=stats)


def _distribution(decision: Decision) -> dict[tuple[str, str | None], float]:
    return {(o.action_id, o.channel): o.probability or 0.0 for o in decision.options}


def test_the_cart_reminder_is_not_explored_away_but_its_channels_are(
    base: RetailDataset,
) -> None:
    profile = _cart_after_a_purchase(base)
    assert profile.cart_age_hours == pytest.approx(2.0)
    first = _decide(profile, seed=0)
    assert {"cart_reminder_1", "cross_sell_after_purchase"} <= set(first.eligible_action_ids)
    dist = _distribution(first)
    assert sum(dist.values()) == pytest.approx(1.0)
    reminder = {k: p for k, p in dist.items() if k[0] == "cart_reminder_1"}
    assert sum(reminder.values()) == pytest.approx(1.0)  # every other action: 0
    assert sum(p > 0 for p in reminder.values()) >= 2  # its channels are explored
    runs = 600
    seen: Counter[tuple[str, str | None]] = Counter()
    for seed in range(runs):
        chosen = _decide(profile, seed).actions[0]
        key = (chosen.action_id, None if chosen.channel is None else chosen.channel.value)
        seen[key] += 1
        assert chosen.propensity == pytest.approx(dist[key])  # logged exactly
    for option, p in reminder.items():  # the pick frequencies are the logged probabilities
        assert seen[option] / runs == pytest.approx(p, abs=0.06), option
    assert "is time-critical" in str(_decide(profile, seed=1).explanation)
    # the same catalog without the flag: the other actions take a share of the draws
    plain = _distribution(_decide(profile, seed=0, time_critical=False))
    assert sum(p for (action, _), p in plain.items() if action != "cart_reminder_1") > 0.05


def test_a_later_send_is_not_explored_for_a_time_critical_action(base: RetailDataset) -> None:
    """The morning's campaign e-mail (07:20 in Paris) spent the e-mail cap: the reminder by
    e-mail would wait until 08:20 tomorrow, by push or SMS it goes at 19:20 today (the
    12-hour gap between messages). The later e-mail is not explored."""
    campaign = ("2026-03-04T06:20:00Z", "email", "message_sent", None)
    profile = _cart_after_a_purchase(base, campaign)
    decision = _decide(profile, seed=0)
    by_channel = {
        o.channel: o.probability for o in decision.options if o.action_id == "cart_reminder_1"
    }
    assert by_channel["email"] == 0.0
    assert sum(p or 0.0 for c, p in by_channel.items() if c != "email") == pytest.approx(1.0)
    for seed in range(100):
        chosen = _decide(profile, seed).actions[0]
        assert chosen.action_id == "cart_reminder_1" and chosen.channel != Channel.EMAIL
        assert chosen.send_at == dt.datetime(2026, 3, 4, 18, 20, tzinfo=dt.UTC)
    email = [r for r in decision.rejections if r.action_id == "cart_reminder_1"]
    assert any("2026-03-05 07:20" in r.message or r.channel == Channel.EMAIL for r in email)


def test_statistics_still_settle_the_channel_of_a_time_critical_action(
    base: RetailDataset,
) -> None:
    profile = _cart_after_a_purchase(base)
    keys = ("cart_reminder_1@email", "cart_reminder_1@push", "cart_reminder_1@sms")
    thin = {k: ResponsePosterior.from_counts(1, 1.0) for k in keys}
    thick = {
        "cart_reminder_1@email": ResponsePosterior.from_counts(3000, 2000.0),  # 1.5x its score
        "cart_reminder_1@push": ResponsePosterior.from_counts(1000, 2000.0),
        "cart_reminder_1@sms": ResponsePosterior.from_counts(1000, 2000.0),
    }
    assert max(_distribution(_decide(profile, 0, stats=thin)).values()) < 0.9
    settled = _distribution(_decide(profile, 0, stats=thick))
    assert settled[("cart_reminder_1", "email")] > 0.99


def test_a_time_critical_action_that_does_not_lead_is_sampled_like_any_other() -> None:
    """Protection goes one way: a higher-priority action can still be explored away for a
    time-critical one, and two time-critical actions due together are drawn among."""
    catalog = parse_catalog(
        """
actions:
  - {id: big, type: content, channels: [email], value: 10, timing: asap}
  - {id: urgent, type: content, channels: [email], value: 6, timing: asap,
     time_critical: true}
  - {id: nothing, type: do_nothing, value: 0.05}
"""
    )
    profile = CustomerProfile("C1", consents={Channel.EMAIL: True}, days_since_last_visit=2.0)
    engine = NextBestActionPolicy(catalog)
    decision = engine.decide(CustomerContext(profile, NOW), seed=0)
    dist = {o.action_id: o.probability or 0.0 for o in decision.options}
    assert dist["big"] > dist["urgent"] > 0.05
    both = parse_catalog(
        """
actions:
  - {id: urgent, type: content, channels: [email], value: 6, timing: asap,
     time_critical: true}
  - {id: also_urgent, type: content, channels: [email], value: 5, timing: asap,
     time_critical: true}
  - {id: low, type: content, channels: [email], value: 4, timing: asap}
  - {id: nothing, type: do_nothing, value: 0.05}
"""
    )
    decision = NextBestActionPolicy(both).decide(CustomerContext(profile, NOW), seed=0)
    dist = {o.action_id: o.probability or 0.0 for o in decision.options}
    assert dist["urgent"] > dist["also_urgent"] > 0.05
    assert dist["low"] == dist["nothing"] == 0.0
