"""Keeping a channel free for the evening's reminder, built from raw events.

A morning e-mail spends the day's only e-mail (the seed policy's cap is one a day) and
opens the 12 hours between messages; a customer who shops most days is likely to leave
products behind that afternoon, and the same evening's browse reminder, worth more
than a weekly picks e-mail, would then have no channel. The engine weighs that per
customer (:mod:`nba.reserve`): for a frequent browser it holds the low-value e-mail and
says so in the reasons; for a rare one the same e-mail goes. Each customer is written as
contract events and profiled by the real feature code; the decision goes through the
example catalog and contact policy with exploration off (:mod:`tests.test_scenarios`).
"""

from __future__ import annotations

import datetime as dt

from features.dataset import RetailDataset
from nba.channels import Channel
from nba.profile import CustomerProfile
from nba.reasons import ReasonCode
from tests.test_scenarios import UTC, customer, decide, events, profile_at

MORNING = dt.datetime(2026, 3, 4, 7, 0, tzinfo=UTC)  # Wednesday 08:00 in Paris
EVENING = dt.datetime(2026, 3, 4, 18, 30, tzinfo=UTC)  # 19:30 in Paris


def _stamp(at: dt.datetime) -> str:
    return at.strftime("%Y-%m-%dT%H:%M:%SZ")


def _browsing(days: list[int], *extra: tuple[object, ...]) -> list[tuple[object, ...]]:
    """Two product views at 18:00 Paris time on each of ``days`` (days after 1 February)."""
    rows: list[tuple[object, ...]] = []
    for day in days:
        at = dt.datetime(2026, 2, 1, 17, 0, tzinfo=UTC) + dt.timedelta(days=day)
        rows.append((_stamp(at), "web", "product_view", "P1"))
        rows.append((_stamp(at + dt.timedelta(minutes=3)), "web", "product_view", "P2"))
    return [*rows, *extra]


def _profile(
    base: RetailDataset, rows: list[tuple[object, ...]], now: dt.datetime
) -> CustomerProfile:
    return profile_at(base, customer(base, consents=("email",)), events(*rows), now)


FREQUENT = list(range(0, 31, 2))  # every other day: 16 days in February and March
RARE = [3]  # once, a month ago


def test_a_frequent_browsers_low_value_morning_email_is_held_for_the_evening_reminder(
    base: RetailDataset,
) -> None:
    """Shops every other day, e-mail only: the weekly picks (priority about 0.1) would
    spend the day's e-mail the evening's browse reminder (about 0.6) is likely to need,
    so nothing goes this morning, and the reasons say what e-mail was kept free for."""
    profile = _profile(base, _browsing(FREQUENT), MORNING)
    assert profile.browse_days_30d >= 12
    decision = decide(profile, MORNING)
    assert "recommendations_weekly" in decision.eligible_action_ids
    assert [a.action_id for a in decision.actions] == ["do_nothing"]
    [held] = [
        r
        for r in decision.rejections
        if r.action_id == "recommendations_weekly" and r.code is ReasonCode.LOST_ARBITRATION
    ]
    assert "kept email free for browse_reminder_evening" in held.message
    assert "opportunity cost" in held.message


def test_the_evening_reminder_then_goes_by_the_email_kept_free(base: RetailDataset) -> None:
    """The same customer looks at two products at 19:00 that evening: the reminder goes
    by e-mail within the evening window. Had the weekly picks gone in the morning, the
    day's e-mail would be spent and the reminder would have no channel that evening."""
    views = (
        ("2026-03-04T18:00:00Z", "web", "product_view", "P1"),
        ("2026-03-04T18:04:00Z", "web", "product_view", "P2"),
    )
    kept = decide(_profile(base, _browsing(FREQUENT, *views), EVENING), EVENING)
    [chosen] = kept.actions
    assert (chosen.action_id, chosen.channel) == ("browse_reminder_evening", Channel.EMAIL)
    assert chosen.send_at_local is not None and 18 <= chosen.send_at_local.hour < 22
    assert chosen.send_at_local.date() == dt.date(2026, 3, 4)

    sent = ("2026-03-04T07:00:00Z", "email", "message_sent", None)
    spent = decide(
        _profile(base, _browsing(FREQUENT, sent, *views), EVENING),
        EVENING,
        history={"recommendations_weekly": MORNING},
    )
    assert "browse_reminder_evening" not in [a.action_id for a in spent.actions]
    assert any(
        r.action_id == "browse_reminder_evening" and r.channel is Channel.EMAIL
        for r in spent.rejections
    )


def test_a_rare_browsers_morning_email_is_sent(base: RetailDataset) -> None:
    """Browsed once, four weeks ago: an evening reminder is unlikely today, the weekly picks
    go by e-mail; the cost of the e-mail it spends is a small term of its priority."""
    profile = _profile(base, _browsing(RARE), MORNING)
    assert profile.browse_days_30d == 1
    decision = decide(profile, MORNING)
    [chosen] = decision.actions
    assert (chosen.action_id, chosen.channel) == ("recommendations_weekly", Channel.EMAIL)
    terms = chosen.terms
    assert terms is not None and 0 < terms.opportunity_cost < 0.25 * chosen.priority
    assert "kept email free for browse_reminder_evening" in terms.kept_free_for


def test_a_customer_who_never_shopped_online_pays_no_opportunity_cost(
    base: RetailDataset,
) -> None:
    """No product view in 30 days: no browsing session is expected, nothing to keep free."""
    rows = [("2025-10-03T17:00:00Z", "web", "product_view", "P1")]
    profile = _profile(base, rows, MORNING)
    assert profile.browse_days_30d == 0
    decision = decide(profile, MORNING)
    for chosen in decision.actions:
        assert chosen.terms is None or chosen.terms.opportunity_cost == 0.0


# ----------------------------------------------- a trigger that already happened

CART_AT = dt.datetime(2026, 3, 4, 9, 50, tzinfo=UTC)  # Wednesday 10:50 in Paris
CART_NOW = CART_AT + dt.timedelta(minutes=10)


def _buyer_with_a_fresh_cart(base: RetailDataset, now: dt.datetime) -> CustomerProfile:
    """Bought twice in February (so the weekly picks have a top category and are due),
    browses rarely, e-mail only; put P2 in the cart at 10:50 Paris time."""
    rows: list[tuple[object, ...]] = [
        ("2026-02-02T17:00:00Z", "web", "product_view", "P1"),
        ("2026-02-02T17:05:00Z", "web", "purchase", "P1"),
        ("2026-02-03T17:00:00Z", "web", "order_delivered", "P1"),
        ("2026-02-10T17:00:00Z", "web", "product_view", "P1"),
        ("2026-02-10T17:05:00Z", "web", "purchase", "P1"),
        ("2026-02-11T17:00:00Z", "web", "order_delivered", "P1"),
        (_stamp(CART_AT - dt.timedelta(minutes=2)), "web", "product_view", "P2"),
        (_stamp(CART_AT), "web", "add_to_cart", "P2"),
    ]
    return _profile(base, rows, now)


def test_a_cart_left_minutes_ago_keeps_the_email_free_for_its_reminder(
    base: RetailDataset,
) -> None:
    """The misfire: a cart added 10 minutes ago is not yet reminded (the reminder waits
    for the cart to be an hour old), and the weekly picks are due now. Sent now, the
    picks would spend the day's only e-mail and open the 12 hours between messages, and
    the cart reminder would go a day late, when a reminder is worth a quarter of what it
    is worth within the hour (SaleCycle). The reminder's trigger already happened: it is
    certain, not a guess, so the picks wait and the reasons say for what."""
    profile = _buyer_with_a_fresh_cart(base, CART_NOW)
    assert profile.cart_items and profile.cart_age_hours is not None
    assert profile.cart_age_hours < 1
    decision = decide(profile, CART_NOW)
    assert "recommendations_weekly" in decision.eligible_action_ids
    assert "cart_reminder_1" not in decision.eligible_action_ids
    assert "recommendations_weekly" not in [a.action_id for a in decision.actions]
    [held] = [
        r
        for r in decision.rejections
        if r.action_id == "recommendations_weekly" and r.code is ReasonCode.LOST_ARBITRATION
    ]
    assert "kept email free for cart_reminder_1" in held.message
    assert "already triggered" in held.message

    # an hour later (nothing sent), the cart reminder goes by e-mail within 12 hours
    later = CART_AT + dt.timedelta(hours=1, minutes=5)
    reminded = decide(_buyer_with_a_fresh_cart(base, later), later)
    [chosen] = reminded.actions
    assert (chosen.action_id, chosen.channel) == ("cart_reminder_1", Channel.EMAIL)
    assert chosen.send_at is not None
    assert chosen.send_at - CART_AT <= dt.timedelta(hours=12)


def test_had_the_picks_gone_the_cart_reminder_would_wait_a_day(base: RetailDataset) -> None:
    """The same customer, with the weekly picks e-mailed when the cart was 10 minutes old:
    the reminder cannot go by e-mail before the day's cap frees, 24 hours after the picks,
    at the very end of its validity: a reminder a day late (what the opportunity cost
    above avoids). It used to be lost: the cap was held until the end of the picks'
    hour, past the reminder's validity."""
    later = CART_AT + dt.timedelta(hours=1, minutes=5)
    sent = (_stamp(CART_NOW), "email", "message_sent", None)
    profile = _profile(
        base,
        [
            ("2026-02-02T17:00:00Z", "web", "product_view", "P1"),
            ("2026-02-02T17:05:00Z", "web", "purchase", "P1"),
            (_stamp(CART_AT), "web", "add_to_cart", "P2"),
            sent,
        ],
        later,
    )
    decision = decide(profile, later, history={"recommendations_weekly": CART_NOW})
    [late] = [a for a in decision.actions if a.action_id == "cart_reminder_1"]
    assert late.channel is Channel.EMAIL and late.send_at is not None
    assert late.send_at >= CART_NOW + dt.timedelta(hours=24)
    assert "once the rolling cap frees (1 email contact(s) in 24 hours" in late.timing_basis


# ------------------------------------------- a fresh cart on a campaign day

#: Tuesday 3 March: the retailer's campaign e-mail went at 19:00 Paris time (not an
#: action of the engine, but it counts in the one-e-mail-a-day cap for 24 hours).
CAMPAIGN = ("2026-03-03T18:00:00Z", "email", "message_sent", None)
CAMPAIGN_CART = (
    ("2026-03-03T20:28:00Z", "web", "product_view", "P2"),
    ("2026-03-03T20:30:00Z", "web", "add_to_cart", "P2"),
)
CAMPAIGN_NIGHT = dt.datetime(2026, 3, 3, 22, 0, tzinfo=UTC)  # 23:00 Paris, cart 1.5 h old


def test_a_campaign_days_cart_goes_by_sms_in_the_morning_not_by_email_tomorrow_night(
    base: RetailDataset,
) -> None:
    """E-mail and SMS consented, two e-mails opened and clicked in February (so the
    scorer expects more from an e-mail than from an SMS). The campaign spent the day's
    e-mail: the cart reminder's e-mail could go only at 20:00 tomorrow, 21 hours on,
    when a cart reminder is worth about a third of one sent now (half-life 12.3 h,
    SaleCycle); the SMS can go at 08:00. Valued at its send time, the SMS wins, within
    12 hours of the cart. Valued as if it went now, the e-mail tomorrow night won."""
    engaged = [
        row
        for day in (9, 21)
        for row in (
            (f"2026-02-{day:02d}T18:00:00Z", "email", "message_sent", None),
            (f"2026-02-{day:02d}T18:30:00Z", "email", "message_opened", None),
            (f"2026-02-{day:02d}T18:31:00Z", "email", "message_clicked", None),
        )
    ]
    rows = [
        ("2026-02-02T17:00:00Z", "web", "product_view", "P1"),
        ("2026-02-02T17:05:00Z", "web", "purchase", "P1"),
        *engaged,
        CAMPAIGN,
        *CAMPAIGN_CART,
    ]
    profile = profile_at(
        base, customer(base, consents=("email", "sms")), events(*rows), CAMPAIGN_NIGHT
    )
    decision = decide(profile, CAMPAIGN_NIGHT)
    [chosen] = decision.actions
    assert (chosen.action_id, chosen.channel) == ("cart_reminder_1", Channel.SMS)
    assert chosen.send_at is not None
    assert chosen.send_at - CAMPAIGN_NIGHT <= dt.timedelta(hours=12)
    [email] = [
        r
        for r in decision.rejections
        if r.action_id == "cart_reminder_1" and r.channel is Channel.EMAIL
    ]
    assert email.code is ReasonCode.OTHER_CHANNEL_PREFERRED


def test_a_campaign_days_cart_keeps_the_email_a_later_cross_sell_would_take(
    base: RetailDataset,
) -> None:
    """E-mail only, a purchase four days ago: the cross-sell is due, at the customer's
    hour tomorrow evening; the campaign spent today's e-mail, so the fresh cart's reminder
    can go by e-mail at 14:00 tomorrow. Scheduled, the cross-sell would keep the e-mail
    (12 hours between messages) past the reminder's day of validity: the reminder would
    be lost. The cross-sell bears that cost, the reminder goes, and the reasons say why."""
    rows = [
        ("2026-02-28T17:00:00Z", "web", "product_view", "P1"),
        ("2026-02-28T17:05:00Z", "web", "purchase", "P1", {"revenue": 100.0}),
        ("2026-03-03T12:00:00Z", "email", "message_sent", None),
        ("2026-03-03T18:58:00Z", "web", "product_view", "P2"),
        ("2026-03-03T19:00:00Z", "web", "add_to_cart", "P2"),
    ]
    now = dt.datetime(2026, 3, 3, 20, 30, tzinfo=UTC)
    profile = profile_at(base, customer(base, consents=("email",)), events(*rows), now)
    decision = decide(profile, now)
    assert "cross_sell_after_purchase" in decision.eligible_action_ids
    [chosen] = decision.actions
    assert (chosen.action_id, chosen.channel) == ("cart_reminder_1", Channel.EMAIL)
    assert chosen.send_at is not None
    assert chosen.send_at - dt.datetime(2026, 3, 3, 19, 0, tzinfo=UTC) <= dt.timedelta(hours=24)
    [held] = [
        r
        for r in decision.rejections
        if r.action_id == "cross_sell_after_purchase" and r.code is ReasonCode.LOST_ARBITRATION
    ]
    assert "kept email free for cart_reminder_1: eligible now" in held.message
