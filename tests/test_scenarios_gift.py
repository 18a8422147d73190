"""A gift the message carries (the birthday's points) is worth what it brings, not only
what it costs: a customer holding points buys more often while they are held, and the
engine credits that pull on the orders it already charges the gift's cost on (the orders
the customer would place anyway while holding it, :mod:`nba.redemption`).

A weekly buyer who reaches only by SMS (read almost always, so the points are held) and
whose birthday is five days away: bought half their orders on an offer, the points pull
them and the birthday goes by SMS; bought every order at full price, the points would be
redeemed on orders placed anyway and nothing is sent, with the reason saying so. Both are
built from raw contract events through the real feature build and decided with the
example catalog and contact policy (helpers of :mod:`tests.test_scenarios`).
"""

from __future__ import annotations

import datetime as dt

import pandas as pd

from features.dataset import RetailDataset
from nba.actions import Action, Offer
from nba.channels import Channel
from nba.context import CustomerContext
from nba.profile import CustomerProfile
from nba.reasons import ReasonCode
from nba.scoring import RuleBasedScorer
from nba.screening import ActionCandidate, ChannelSlot
from nba.timing import SendTime
from tests.test_scenarios import UTC, customer, decide, events, profile_at

NOW = dt.datetime(2026, 4, 7, 8, 0, tzinfo=UTC)  # Tuesday 10:00 in Paris; birthday on the 12th


def _weekly_buyer(*, on_offer: bool) -> pd.DataFrame:
    """Twenty-six weekly purchases up to ten days ago (every other one with the 10 % offer
    when ``on_offer``) and twelve SMS campaigns received this winter, none clicked."""
    start = dt.datetime(2025, 10, 4, 17, tzinfo=UTC)
    rows: list[tuple[object, ...]] = []
    for week in range(26):
        at = (start + dt.timedelta(days=7 * week)).strftime("%Y-%m-%dT%H:%M:%SZ")
        if on_offer and week % 2 == 0:
            rows.append((at, "web", "purchase", "P1", {"offer_id": "O1"}))
        else:
            rows.append((at, "web", "purchase", "P1"))
    for k in range(12):
        sent = dt.datetime(2026, 1, 10, 11, tzinfo=UTC) + dt.timedelta(days=5 * k)
        rows.append((sent.strftime("%Y-%m-%dT%H:%M:%SZ"), "sms", "message_sent", None))
    return events(*rows)


def _profile(base: RetailDataset, *, on_offer: bool) -> CustomerProfile:
    people = customer(base, birth_date="1990-04-12", consents=("sms",))
    profile = profile_at(base, people, _weekly_buyer(on_offer=on_offer), NOW)
    assert profile.days_to_birthday == 5 and profile.purchases_total == 26
    return profile


def test_a_weekly_offer_buyers_birthday_goes_by_sms_for_what_its_points_bring(
    base: RetailDataset,
) -> None:
    profile = _profile(base, on_offer=True)
    assert profile.promo_sensitivity >= 0.4
    decision = decide(profile, NOW)
    [chosen] = decision.actions
    assert chosen.action_id == "birthday"
    assert chosen.channel == Channel.SMS and chosen.offer_id == "birthday_points"
    assert chosen.priority > 0.01  # above doing nothing, its points' cost on every order paid


def test_a_weekly_full_price_buyers_birthday_points_would_go_on_orders_placed_anyway(
    base: RetailDataset,
) -> None:
    profile = _profile(base, on_offer=False)
    assert profile.promo_sensitivity == 0.0
    decision = decide(profile, NOW)
    [chosen] = decision.actions
    assert chosen.action_id == "do_nothing"
    [why] = [r for r in decision.rejections if r.action_id == "birthday" and r.channel is None]
    assert why.code == ReasonCode.LOST_ARBITRATION
    assert "P(redeemed on an order placed anyway)" in why.message


def test_a_gifts_pull_grows_with_promotion_sensitivity_and_is_nothing_without_a_cost() -> None:
    """The scorer's gift term alone: ``pull x P(redeemed anyway)`` added to the message's
    response, nothing for a customer no offer moves or for a gift that costs nothing."""
    now = dt.datetime(2026, 4, 7, 8, tzinfo=UTC)
    slot = ChannelSlot(Channel.SMS, SendTime(now, now, ""))

    def propensity(promo: float, cost: float) -> float:
        profile = CustomerProfile(
            "C1",
            promo_sensitivity=promo,
            purchases_total=26,
            orders_total=26,
            days_since_first_seen=182.0,
            days_since_last_purchase=3.0,
            average_basket=50.0,
        )
        offer = Offer(id="pts", kind="loyalty_points", value=500, cost=cost)
        action = Action(id="bday", type="milestone", channels=["sms"], value=10, offer=offer)
        [score] = RuleBasedScorer().score(
            CustomerContext(profile, now), [ActionCandidate(action, 10.0, None, (slot,))]
        )
        assert score.uplift is None  # a gift is not an incentive: no offer-pays test
        return score.propensity[Channel.SMS]

    assert propensity(0.0, 2.5) == propensity(0.0, 0.0) == propensity(1.0, 0.0)
    assert propensity(0.0, 2.5) < propensity(0.5, 2.5) < propensity(1.0, 2.5)
