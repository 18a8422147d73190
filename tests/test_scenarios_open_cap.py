"""A message is answered only once it is opened: on a channel that reports opens (e-mail,
push, calls answered) the scorer's P(response) never exceeds the customer's open rate there.

A push's open is its tap, and its tap is its response: the scorer multiplied a triggered
message's base rate (a cart reminder's 12 %, a cross-sell's 5 %, rates of e-mails) by the
customer's push taps relative to a typical push's, so a customer whose pushes are tapped
as often as the store's (4 %) was rated to answer a fresh cart's push 20 % of the time,
five times their taps, and the reminder went by push where the e-mail earns more. In the
closed loop's simulated retailer the engine valued triggered pushes at 2.4-6.6 times their
e-mail's relative worth (``benchmarks/action_valuation.py``, BENCHMARKS.md, cells7).

The scenarios are built from raw contract events through the real feature build and decided
with the example catalog and contact policy (helpers of :mod:`tests.test_scenarios`).
"""

from __future__ import annotations

import datetime as dt

import pytest

from features.dataset import RetailDataset
from nba.actions import Action, Offer
from nba.channels import Channel
from nba.context import CustomerContext
from nba.profile import ChannelEngagement, CustomerProfile
from nba.scoring import MAX_PROPENSITY, RuleBasedScorer
from nba.screening import ActionCandidate, ChannelSlot
from nba.timing import SendTime
from tests.test_scenarios import UTC, customer, decide, events, profile_at

NOW = dt.datetime(2026, 3, 4, 10, 0, tzinfo=UTC)  # Wednesday 11:00 in Paris


def _messages(channel: str, sent: int, opened: int, clicked: int = 0) -> list[tuple[object, ...]]:
    """``sent`` campaign messages on ``channel`` in January and February, the first
    ``opened`` of them opened (and the first ``clicked`` clicked) twenty minutes later."""
    rows: list[tuple[object, ...]] = []
    for k in range(sent):
        at = dt.datetime(2026, 1, 5, 10, tzinfo=UTC) + dt.timedelta(days=2 * k)
        rows.append((at, channel, "message_sent", None))
        if k < opened:
            rows.append((at + dt.timedelta(minutes=20), channel, "message_opened", None))
        if k < clicked:
            rows.append((at + dt.timedelta(minutes=21), channel, "message_clicked", None))
    return rows


def test_a_fresh_cart_goes_by_email_not_by_a_push_tapped_as_rarely_as_the_stores(
    base: RetailDataset,
) -> None:
    """A customer never messaged (e-mail and push consented) added a product two hours ago:
    their push is rated at the store's tap rate (4 %), their e-mail at its open rate (20 %).
    The reminder goes by e-mail. Before, the push was rated to answer at 20 % (the cart
    reminder's 12 % x the two-hour cart's 1.57 x push's reach 1.1) and went first."""
    people = customer(base, consents=("email", "push"))
    raw = events(
        ("2025-09-01T18:00:00Z", "web", "purchase", "P2"),
        (NOW - dt.timedelta(hours=2), "app", "add_to_cart", "P1"),
    )
    profile = profile_at(base, people, raw, NOW)
    push = profile.engagement[Channel.PUSH]
    assert push.sent == 0 and push.open_rate == pytest.approx(0.04)
    decision = decide(profile, NOW)
    [chosen] = decision.actions
    assert (chosen.action_id, chosen.channel) == ("cart_reminder_1", Channel.EMAIL)
    assert chosen.terms is not None and chosen.terms.propensity > push.open_rate
    [why] = [
        r
        for r in decision.rejections
        if r.action_id == "cart_reminder_1" and r.channel is Channel.PUSH
    ]
    assert "below" in why.message  # the push's priority, below the e-mail's


def _cross_sell_customer(base: RetailDataset, pushes_tapped: int) -> CustomerProfile:
    """Bought three days ago; 25 e-mails this winter, 14 opened (2 clicked); 25 pushes,
    ``pushes_tapped`` of them tapped (opened and clicked)."""
    people = customer(base, consents=("email", "push"))
    raw = events(
        ("2025-11-20T18:00:00Z", "web", "purchase", "P2"),
        (NOW - dt.timedelta(days=3), "web", "purchase", "P1"),
        *_messages("email", 25, 14, 2),
        *_messages("push", 25, pushes_tapped, pushes_tapped),
    )
    return profile_at(base, people, raw, NOW)


def test_a_cross_sell_goes_by_email_to_a_customer_who_opens_emails_and_seldom_taps_pushes(
    base: RetailDataset,
) -> None:
    """The customer taps 3 of 25 pushes (their smoothed rate 9.7 %) and opens 14 of 25
    e-mails: the cross-sell goes by e-mail (P(response) 10.8 %), its push rated at their
    taps. Before, the push was rated at the cross-sell's 5 % x recency x push's reach 1.1
    x their taps over a typical push's 4 %: 12.6 %, above the taps, and went."""
    profile = _cross_sell_customer(base, pushes_tapped=3)
    push, email = profile.engagement[Channel.PUSH], profile.engagement[Channel.EMAIL]
    assert push.open_rate < 0.1 < 0.4 < email.open_rate
    decision = decide(profile, NOW, only="cross_sell_after_purchase")
    [chosen] = decision.actions
    assert (chosen.action_id, chosen.channel) == ("cross_sell_after_purchase", Channel.EMAIL)
    [why] = [
        r
        for r in decision.rejections
        if r.action_id == "cross_sell_after_purchase" and r.channel is Channel.PUSH
    ]
    assert "below" in why.message


def test_the_same_cross_sell_goes_by_push_to_a_customer_who_taps_most_pushes(
    base: RetailDataset,
) -> None:
    """The same customer tapping 18 of their 25 pushes: the push, tapped more often than the
    e-mails are opened, carries the cross-sell (the cap takes nothing from a channel the
    customer does answer)."""
    profile = _cross_sell_customer(base, pushes_tapped=18)
    assert profile.engagement[Channel.PUSH].open_rate > profile.engagement[Channel.EMAIL].open_rate
    decision = decide(profile, NOW, only="cross_sell_after_purchase")
    [chosen] = decision.actions
    assert (chosen.action_id, chosen.channel) == ("cross_sell_after_purchase", Channel.PUSH)


def _propensity(
    channel: Channel,
    engagement: ChannelEngagement | None,
    *,
    offer: Offer | None = None,
    cart_age_hours: float = 1.0,
) -> tuple[float, float | None]:
    """The scorer's P(response) and uplift of a cart's reminder on ``channel``."""
    profile = CustomerProfile(
        "C1",
        engagement={} if engagement is None else {channel: engagement},
        days_since_last_visit=0.0,
        cart_items=("P1",),
        cart_age_hours=cart_age_hours,
        promo_sensitivity=1.0,
        average_basket=50.0,
    )
    action = Action(
        id="cart", type="cart_reminder", channels=[channel.value], value=20, offer=offer
    )
    slot = ChannelSlot(channel, SendTime(NOW, NOW, ""))
    [score] = RuleBasedScorer().score(
        CustomerContext(profile, NOW), [ActionCandidate(action, 20.0, None, (slot,))]
    )
    uplift = None if score.uplift is None else score.uplift[channel]
    return score.propensity[channel], uplift


def test_the_response_is_capped_at_the_open_rate_on_channels_that_report_opens() -> None:
    """Unit: a fresh cart's reminder (base 12 % x 2.07 for its age) on a push tapped 4 % of
    the time answers 4 %, not 27 %; an e-mail opened 20 % of the time answers a six-hour
    cart's reminder at the base 12 %, below its cap, and the fresh cart's at 20 %, not 25 %; clicks above the reported opens (opens the channel did not see) lift the
    cap to the clicks; SMS reports no opens and keeps the 0.95 ceiling; a profile without
    engagement (built by hand) has no cap; an incentive cannot lift a capped push (its
    uplift is 0: an offer does not make a push more often tapped than the customer taps)."""
    push = ChannelEngagement(sent=50, opened=2, clicked=2, open_rate=0.04, click_rate=0.04)
    assert _propensity(Channel.PUSH, push)[0] == pytest.approx(0.04)
    email = ChannelEngagement(sent=50, opened=10, clicked=2, open_rate=0.2, click_rate=0.04)
    assert _propensity(Channel.EMAIL, email, cart_age_hours=6.0)[0] == pytest.approx(0.12)
    assert _propensity(Channel.EMAIL, email)[0] == pytest.approx(0.2)  # 0.248 uncapped
    hidden = ChannelEngagement(sent=50, opened=1, clicked=5, open_rate=0.02, click_rate=0.1)
    assert _propensity(Channel.PUSH, hidden)[0] == pytest.approx(0.1)
    sms = ChannelEngagement(sent=50, clicked=10, open_rate=0.0, click_rate=0.2)
    assert _propensity(Channel.SMS, sms)[0] == pytest.approx(0.12 * 2.0697 * 3, rel=1e-3)
    assert _propensity(Channel.SMS, sms)[0] < MAX_PROPENSITY
    assert _propensity(Channel.PUSH, None)[0] == pytest.approx(0.12 * 2.0697 * 1.1, rel=1e-3)
    discount = Offer(id="d", kind="percent_discount", value=10, cost=5)
    capped, uplift = _propensity(Channel.PUSH, push, offer=discount)
    assert capped == pytest.approx(0.04) and uplift == pytest.approx(0.0)


def test_a_push_the_customer_taps_often_keeps_a_high_response() -> None:
    """Guard: the cap is the customer's own rate, never a constant: a push tapped 30 % of
    the time keeps a response well above a typical push's 4 %."""
    push = ChannelEngagement(sent=50, opened=15, clicked=15, open_rate=0.3, click_rate=0.3)
    assert _propensity(Channel.PUSH, push)[0] == pytest.approx(0.3)
