"""The playbook audited a fourth time (issue 12, item 2): lifecycle states and journey
phases as a marketer reads them off a customer's raw history, browse abandonment by
dwell time, seasonal anticipation across the year's end, milestones on awkward days,
products in messages without a recommender, Segment's ``track`` events against native
ones, inbound placements, and explanations for a customer many actions want.

As in :mod:`tests.test_scenarios_audit`, every situation is built from raw contract
events or Segment messages posted to the real API on a real Redis, and the answer is
read as a marketer reads it: action, channel, local send time, products, reasons.

Misfires found and fixed here (each test fails before its fix):

* a loyal customer (five orders) who looked at two products this week was in the
  "consideration" phase: no premium line, and the style guide "for browsers still
  discovering the brand" instead. Repeat buyers stay in the loyalty phase
  (``features.finalise``, ``features.profile_columns``);
* a gold customer requalified to silver (an event or the CRM's ``identify``) was
  congratulated "on a new loyalty tier". A tier below the highest held is a tier lost,
  not reached (state field ``lm``);
* twenty minutes on the black trousers then five seconds on the white shirt: the
  evening reminder led with the shirt (the last viewed). It leads with the longest view
  of the latest day (state field ``vs``);
* without a recommender, the weekly picks "in your top category" showed the store's
  best sellers of any category, and "complete the look" after black trousers showed
  more trousers first. The popular fallback is fitted to the action
  (``serving.products.fitted``).

The other tests found the product right and guard it: at risk gets the plain "we miss
you" and only the lapsed the win-back discount, a new customer's month-old first order
is no lapse, a lapsed customer who buys again gets the follow-up, a glance is no
browse, a browse in Los Angeles told that Friday evening local, short views add up,
push when e-mail was withdrawn, the cart reminder names the cart, seasonal previews a
month ahead (also December in November and January in December, across the year), no
season from four months, none right after an order, a 29 February birthday wished by 1
March in a common year, a tier reached a week ago is no news, Segment's cart, browse
with dwell and click-and-collect events decide as native ones, an app session at night
answered at once, and why this action, channel and time.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from features.dataset import RetailDataset
from tests.api_support import redis_client
from tests.test_scenarios_api import (
    COLLECT,
    DAY,
    HOUR,
    LOS_ANGELES,
    MINUTE,
    PARIS,
    Shop,
    codes,
    contacts,
    event,
    identify,
    local,
    message,
    open_shop,
    purchase,
    send_local,
    send_utc,
    shop,
    the_action,
)
from tests.test_scenarios_audit import profile_of, track

__all__ = ["shop"]  # the journey scenarios' app, shared


def view(customer: str, at: dt.datetime, product: str, seconds: float) -> dict[str, Any]:
    """A product page viewed for ``seconds`` (the site's dwell time)."""
    return event(customer, at, "product_view", product, properties={"dwell_seconds": seconds})


def regular(shop: Shop, first: dt.datetime, orders: int, every_days: int, **kw: Any) -> str:
    """A customer who ordered ``orders`` times, every ``every_days`` days from ``first``."""
    customer = shop.signup(first - 10 * DAY, **kw)
    shop.post(*(purchase(customer, first + i * every_days * DAY, "P2") for i in range(orders)))
    return customer


# ---------------------------------------------------------------- lifecycle and phase


def test_at_risk_gets_the_plain_we_miss_you_and_only_the_lapsed_the_win_back_offer(
    shop: Shop,
) -> None:
    """A customer who ordered every 30 days: 20 days after the last order, active (no
    win-back at all, the reason names the lifecycle clause); 60 days (two gaps), at risk:
    the plain "we miss you", the discount refused as for lapsed customers only; 120 days
    (four gaps), lapsed: the discount is now a candidate."""
    first = local(PARIS, "2025-06-02 12:00")
    customer = regular(shop, first, orders=4, every_days=30, consents=("email", "sms"))
    last = first + 90 * DAY
    asked = ["reactivation", "reactivation_offer"]
    active = shop.decide(customer, last + 20 * DAY, actions=asked)
    assert profile_of(shop, customer, last + 20 * DAY)["lifecycle_state"] == "active"
    assert contacts(active) == []
    assert "lifecycle_state in ['at_risk', 'lapsed'] is false" in message(active, "reactivation")
    at_risk = shop.decide(customer, last + 60 * DAY, actions=asked)
    assert profile_of(shop, customer, last + 60 * DAY)["lifecycle_state"] == "at_risk"
    assert the_action(at_risk)["action_id"] == "reactivation"
    assert the_action(at_risk)["offer_id"] is None
    assert codes(at_risk, "reactivation_offer") == ["not_eligible"]
    assert "lifecycle_state == 'lapsed'" in message(at_risk, "reactivation_offer")
    lapsed = profile_of(shop, customer, last + 120 * DAY)
    assert lapsed["lifecycle_state"] == "lapsed"
    answer = shop.decide(customer, last + 120 * DAY, actions=asked)
    assert codes(answer, "reactivation_offer") != ["not_eligible"]


def test_a_new_customer_s_first_order_a_month_ago_is_no_lapse(shop: Shop) -> None:
    """Signed up 25 days ago, one order on the first day: new, not lapsing; no "we miss
    you" (the lifecycle clause says why), while the weekly picks may go."""
    signed = local(PARIS, "2026-03-02 10:00")
    customer = shop.signup(signed, consents=("email",))
    shop.post(purchase(customer, signed + HOUR))
    now = signed + 25 * DAY
    seen = profile_of(shop, customer, now)
    assert seen["lifecycle_state"] == "new"
    answer = shop.decide(customer, now, actions=["reactivation", "recommendations_weekly"])
    assert codes(answer, "reactivation") == ["not_eligible"]
    assert "lifecycle_state" in message(answer, "reactivation")


def test_a_lapsed_customer_who_buys_again_is_active_and_gets_the_follow_up_not_a_win_back(
    shop: Shop,
) -> None:
    """Lapsed for five months, the customer orders today: at once active, in the
    recommendation phase; two days later the complementary items, not "we miss you"."""
    first = local(PARIS, "2025-05-05 12:00")
    customer = regular(shop, first, orders=3, every_days=30, consents=("email",))
    back = first + 60 * DAY + 150 * DAY
    assert profile_of(shop, customer, back - HOUR)["lifecycle_state"] == "lapsed"
    shop.post(purchase(customer, back, "P1"))
    seen = profile_of(shop, customer, back + 2 * DAY)
    assert (seen["lifecycle_state"], seen["journey_phase"]) == ("active", "recommendation")
    answer = shop.decide(
        customer,
        back + 2 * DAY,
        actions=["reactivation", "reactivation_offer", "cross_sell_after_purchase"],
    )
    assert the_action(answer)["action_id"] == "cross_sell_after_purchase"
    assert codes(answer, "reactivation") == ["not_eligible"]
    assert codes(answer, "reactivation_offer") == ["not_eligible"]


def test_a_loyal_high_basket_customer_who_browses_still_gets_the_premium_line(
    shop: Shop,
) -> None:
    """Five orders of 120 a month apart, the last three weeks ago: a loyal customer. They
    looked at two products this week without buying: still loyal (browsing is what loyal
    customers do), and the premium line goes."""
    first = local(PARIS, "2025-10-06 12:00")
    customer = shop.signup(first - 30 * DAY, consents=("email",))
    shop.post(*(purchase(customer, first + i * 30 * DAY, "P2", revenue=120.0) for i in range(5)))
    now = first + 120 * DAY + 21 * DAY
    assert profile_of(shop, customer, now)["journey_phase"] == "loyalty"
    shop.post(
        view(customer, now - 3 * DAY, "P1", 90), view(customer, now - 3 * DAY + MINUTE, "P2", 60)
    )
    seen = profile_of(shop, customer, now)
    assert seen["lifecycle_state"] == "active"
    assert seen["journey_phase"] == "loyalty", seen["journey_phase"]
    chosen = the_action(shop.decide(customer, now, actions=["up_sell_premium"]))
    assert (chosen["action_id"], chosen["channel"]) == ("up_sell_premium", "email")


# ---------------------------------------------------------------- browse abandonment


def test_twenty_minutes_on_the_trousers_then_a_glance_at_the_shirt_names_the_trousers(
    shop: Shop,
) -> None:
    """Friday 18:00: twenty minutes on the black trousers, then five seconds on the white
    shirt. The browse reminder that evening leads with the trousers, what they looked at."""
    at = local(PARIS, "2026-03-06 18:00")
    customer = shop.signup(at - 60 * DAY, consents=("email", "push"))
    shop.post(view(customer, at, "P1", 1200), view(customer, at + 21 * MINUTE, "P2", 5))
    chosen = the_action(
        shop.decide(customer, at + 40 * MINUTE, actions=["browse_reminder_evening"])
    )
    assert chosen["action_id"] == "browse_reminder_evening"
    assert chosen["products"][0] == "P1", chosen["products"]
    assert send_local(chosen).strftime("%a") == "Fri" and send_local(chosen).hour < 22


def test_a_five_second_glance_is_no_browse_abandonment_and_says_so(shop: Shop) -> None:
    """A glance (two product pages, five seconds each) is not browsing: no reminder, and
    the reason names the dwell clause with the customer's minutes."""
    at = local(PARIS, "2026-03-06 18:00")
    customer = shop.signup(at - 60 * DAY, consents=("email", "push"))
    shop.post(view(customer, at, "P1", 5), view(customer, at + MINUTE, "P2", 5))
    answer = shop.decide(customer, at + 30 * MINUTE, actions=["browse_reminder_evening"])
    assert contacts(answer) == []
    assert "browse_minutes_24h >= 2 is false" in message(answer, "browse_reminder_evening")


def test_an_afternoon_browse_in_los_angeles_is_told_that_evening_local(shop: Shop) -> None:
    """Friday 14:00 in Los Angeles (22:00 UTC, night in Paris): twenty minutes on the
    trousers. Asked at once, the reminder is for that Friday evening, local, naming them."""
    at = local(LOS_ANGELES, "2026-03-06 14:00")
    customer = shop.signup(at - 60 * DAY, timezone=LOS_ANGELES, consents=("email",))
    shop.post(view(customer, at, "P1", 1200))
    chosen = the_action(
        shop.decide(customer, at + 25 * MINUTE, actions=["browse_reminder_evening"])
    )
    assert chosen["action_id"] == "browse_reminder_evening" and chosen["products"] == ["P1"]
    sent = send_local(chosen)
    assert sent.strftime("%a") == "Fri" and 18 <= sent.hour < 22, sent


def test_several_short_views_add_up_and_every_product_is_named(shop: Shop) -> None:
    """Two products a minute and a half each: three minutes of browsing, a reminder naming
    both."""
    at = local(PARIS, "2026-03-06 18:00")
    customer = shop.signup(at - 60 * DAY, consents=("email",))
    shop.post(view(customer, at, "P1", 90), view(customer, at + 2 * MINUTE, "P2", 90))
    chosen = the_action(
        shop.decide(customer, at + 30 * MINUTE, actions=["browse_reminder_evening"])
    )
    assert sorted(chosen["products"]) == ["P1", "P2"]


def test_unsubscribed_from_email_the_browser_is_told_by_push_that_evening(shop: Shop) -> None:
    """Twenty minutes on the trousers at 17:00 from a customer who unsubscribed from
    e-mail last month and allows push: the reminder goes by push that evening, e-mail
    refused for its consent."""
    at = local(PARIS, "2026-03-06 17:00")
    customer = shop.signup(at - 60 * DAY, consents=("email", "push"))
    shop.post(event(customer, at - 30 * DAY, "unsubscribe", channel="email"))
    shop.post(view(customer, at, "P1", 1200))
    answer = shop.decide(customer, at + 20 * MINUTE, actions=["browse_reminder_evening"])
    chosen = the_action(answer)
    assert (chosen["action_id"], chosen["channel"]) == ("browse_reminder_evening", "push")
    sent = send_local(chosen)
    assert sent.strftime("%a") == "Fri" and 18 <= sent.hour < 21, sent
    factor = " ".join(chosen["reasons"]) + message(answer, "browse_reminder_evening")
    assert "email" in factor and "consent" in factor, chosen["reasons"]


def test_the_cart_reminder_names_the_cart_not_what_was_looked_at_longer(shop: Shop) -> None:
    """Twenty minutes on the shirt, then the trousers put in the cart: the cart reminder
    names the trousers (what is in the cart), not the shirt looked at longer."""
    at = local(PARIS, "2026-03-04 14:00")
    customer = shop.signup(at - 60 * DAY, consents=("email",))
    shop.post(view(customer, at, "P2", 1200), view(customer, at + 25 * MINUTE, "P1", 30))
    shop.post(event(customer, at + 26 * MINUTE, "add_to_cart", "P1"))
    chosen = the_action(shop.decide(customer, at + 2 * HOUR, actions=["cart_reminder_1"]))
    assert (chosen["action_id"], chosen["products"]) == ("cart_reminder_1", ["P1"])


# ---------------------------------------------------------------- seasonal anticipation


def shopped_in(shop: Shop, customer: str, months: tuple[int, ...], years: tuple[int, ...]) -> None:
    """Six shopping days (views, an order) in each of ``months`` of ``years``, and a
    visit every other month otherwise."""
    rows = []
    for year in years:
        for month in range(1, 13):
            if month in months:
                rows += [
                    view(customer, local(PARIS, f"{year}-{month:02d}-{d:02d} 18:00"), "P1", 60)
                    for d in (2, 5, 9, 14, 20, 26)
                ]
                rows.append(purchase(customer, local(PARIS, f"{year}-{month:02d}-26 18:10")))
            elif month % 2:
                rows.append(view(customer, local(PARIS, f"{year}-{month:02d}-15 18:00"), "P2", 60))
    shop.post(*rows)


def seasonal(shop: Shop, months: tuple[int, ...]) -> str:
    customer = shop.signup(local(PARIS, "2024-01-03 10:00"), consents=("email",))
    shopped_in(shop, customer, months, (2024, 2025))
    return customer


def test_the_april_and_october_buyer_hears_in_march_and_september(shop: Shop) -> None:
    """Two years of shopping in April and October: on 5 March 2026 the seasonal preview,
    not on 5 May (the reason names next month); again on 5 September."""
    customer = seasonal(shop, (4, 10))
    march = local(PARIS, "2026-03-05 10:00")
    assert profile_of(shop, customer, march)["seasonal_months"] == [4, 10]
    chosen = the_action(shop.decide(customer, march, actions=["seasonal_anticipation"]))
    assert (chosen["action_id"], chosen["channel"]) == ("seasonal_anticipation", "email")
    may = shop.decide(customer, local(PARIS, "2026-05-05 10:00"), actions=["seasonal_anticipation"])
    assert contacts(may) == []
    assert "next_month in seasonal_months is false" in message(may, "seasonal_anticipation")
    september = local(PARIS, "2026-09-05 10:00")
    chosen = the_action(shop.decide(customer, september, actions=["seasonal_anticipation"]))
    assert chosen["action_id"] == "seasonal_anticipation"


def test_a_december_buyer_is_reached_in_november(shop: Shop) -> None:
    """Two Decembers of shopping: on 10 November 2026, the preview; not in October."""
    customer = seasonal(shop, (12,))
    november = local(PARIS, "2026-11-10 10:00")
    assert 12 in profile_of(shop, customer, november)["seasonal_months"]
    chosen = the_action(shop.decide(customer, november, actions=["seasonal_anticipation"]))
    assert chosen["action_id"] == "seasonal_anticipation"
    october = shop.decide(
        customer, local(PARIS, "2026-10-10 10:00"), actions=["seasonal_anticipation"]
    )
    assert contacts(october) == []


def test_a_january_buyer_is_reached_in_december_across_the_year(shop: Shop) -> None:
    """Shopping every January (2025, 2026): on 5 December 2026 "next month" is January
    of the next year, and the preview goes."""
    customer = shop.signup(local(PARIS, "2024-11-03 10:00"), consents=("email",))
    shopped_in(shop, customer, (1,), (2025, 2026))
    shop.post(view(customer, local(PARIS, "2026-11-15 18:00"), "P2", 60))
    december = local(PARIS, "2026-12-05 10:00")
    assert 1 in profile_of(shop, customer, december)["seasonal_months"]
    chosen = the_action(shop.decide(customer, december, actions=["seasonal_anticipation"]))
    assert chosen["action_id"] == "seasonal_anticipation"


def test_a_customer_known_for_four_months_has_no_season_yet(shop: Shop) -> None:
    """Known since November, busy in December: one December is no season of the year.
    No preview in March, and the reason names next month's clause."""
    customer = shop.signup(local(PARIS, "2025-11-03 10:00"), consents=("email",))
    shop.post(
        *(view(customer, local(PARIS, f"2025-12-{d:02d} 18:00"), "P1", 60) for d in range(1, 25))
    )
    march = local(PARIS, "2026-03-05 10:00")
    assert profile_of(shop, customer, march)["seasonal_months"] == []
    answer = shop.decide(customer, march, actions=["seasonal_anticipation"])
    assert contacts(answer) == []
    assert "next_month in seasonal_months is false" in message(answer, "seasonal_anticipation")


# ---------------------------------------------------------------- milestones


def test_a_29_february_birthday_is_wished_in_a_common_year_by_1_march(shop: Shop) -> None:
    """Born on 29 February: in 2027 (no 29th) the wishes come in the week before 1 March
    and never after it; on 2 March the birthday is a year away."""
    born = dt.date(1992, 2, 29)
    customer = shop.signup(local(PARIS, "2026-01-10 10:00"), consents=("email",), birthday=born)
    before = local(PARIS, "2027-02-25 10:00")
    assert profile_of(shop, customer, before)["days_to_birthday"] == 4
    chosen = the_action(shop.decide(customer, before, actions=["birthday"]))
    assert chosen["action_id"] == "birthday"
    assert send_local(chosen).date() <= dt.date(2027, 3, 1)
    twin = shop.signup(local(PARIS, "2026-01-10 10:00"), consents=("email",), birthday=born)
    after = shop.decide(twin, local(PARIS, "2027-03-02 10:00"), actions=["birthday"])
    assert contacts(after) == [] and codes(after, "birthday") == ["not_eligible"]


def test_a_tier_lost_gets_no_congratulations(shop: Shop) -> None:
    """A gold customer whose tier fell to silver at the yearly requalification: no
    "congratulations on your new tier" (that is for a tier reached), and the reason says
    why; a silver customer who reaches gold is congratulated."""
    signed = local(PARIS, "2025-01-10 10:00")
    at = local(PARIS, "2026-03-02 10:00")
    down = shop.signup(signed, consents=("email",))
    shop.post(identify(down, signed, loyalty_tier="gold"))
    shop.post(event(down, at, "loyalty_tier_reached", properties={"tier": "silver"}))
    answer = shop.decide(down, at + HOUR, actions=["loyalty_tier_reached"])
    assert contacts(answer) == [], answer["actions"]
    assert codes(answer, "loyalty_tier_reached") == ["not_eligible"]
    up = shop.signup(signed, consents=("email",))
    shop.post(identify(up, signed, loyalty_tier="silver"))
    shop.post(event(up, at, "loyalty_tier_reached", properties={"tier": "gold"}))
    chosen = the_action(shop.decide(up, at + HOUR, actions=["loyalty_tier_reached"]))
    assert chosen["action_id"] == "loyalty_tier_reached"


def test_a_tier_lost_by_identify_gets_no_congratulations(shop: Shop) -> None:
    """The same requalification told by the CRM's ``identify`` traits."""
    signed = local(PARIS, "2025-01-10 10:00")
    at = local(PARIS, "2026-03-02 10:00")
    customer = shop.signup(signed, consents=("email",))
    shop.post(identify(customer, signed, loyalty_tier="gold"))
    shop.post(identify(customer, at, loyalty_tier="silver"))
    answer = shop.decide(customer, at + HOUR, actions=["loyalty_tier_reached"])
    assert contacts(answer) == [], answer["actions"]
    # a CRM that sends every trait with every identify: the tier at sign-up, then silver
    twin = shop.signup(signed, consents=("email",))
    shop.post(identify(twin, signed, createdAt=signed.isoformat(), loyalty_tier="gold"))
    shop.post(identify(twin, at, createdAt=signed.isoformat(), loyalty_tier="silver"))
    assert profile_of(shop, twin, at + HOUR)["loyalty_tier"] == "silver"
    answer = shop.decide(twin, at + HOUR, actions=["loyalty_tier_reached"])
    assert contacts(answer) == [], answer["actions"]
    assert codes(answer, "loyalty_tier_reached") == ["not_eligible"]


# ---------------------------------------------------------------- Segment against native


def test_segment_viewed_and_added_make_the_same_cart_reminder_as_native_events(
    shop: Shop,
) -> None:
    """The same afternoon told twice, by contract events and by Segment's e-commerce
    ``track`` events: the same reminder, channel, moment and products."""
    added = local(PARIS, "2026-03-04 15:00")
    native = shop.signup(added - 20 * DAY, consents=("email", "push"))
    segment = shop.signup(added - 20 * DAY, consents=("email", "push"))
    shop.post(
        event(native, added - 10 * MINUTE, "product_view", "P1"),
        event(native, added, "add_to_cart", "P1"),
    )
    shop.post(
        track(segment, added - 10 * MINUTE, "Product Viewed", product_id="P1"),
        track(segment, added, "Product Added", product_id="P1", quantity=1, price=59.9),
    )
    now = added + 2 * HOUR
    a, b = (the_action(shop.decide(c, now)) for c in (native, segment))
    keys = ("action_id", "offer_id", "products", "template", "send_at")
    assert {k: a[k] for k in keys} == {k: b[k] for k in keys}
    assert a["action_id"] == "cart_reminder_1"


def test_segment_browse_with_dwell_makes_the_same_browse_reminder(shop: Shop) -> None:
    """Twenty minutes on the trousers told by a Segment ``Product Viewed`` carrying the
    site's dwell time: the same evening reminder as the native view."""
    at = local(PARIS, "2026-03-06 18:00")
    native = shop.signup(at - 60 * DAY, consents=("email",))
    segment = shop.signup(at - 60 * DAY, consents=("email",))
    shop.post(view(native, at, "P1", 1200))
    shop.post(track(segment, at, "Product Viewed", product_id="P1", dwell_seconds=1200))
    now = at + 30 * MINUTE
    asked = ["browse_reminder_evening"]
    a, b = (the_action(shop.decide(c, now, actions=asked)) for c in (native, segment))
    keys = ("action_id", "products", "send_at")
    assert {k: a[k] for k in keys} == {k: b[k] for k in keys}
    assert a["action_id"] == "browse_reminder_evening"


def test_segment_click_and_collect_order_and_pick_up_end_the_pickup_cross_sell(
    shop: Shop,
) -> None:
    """A click-and-collect ``Order Completed`` gets "add to your pickup"; once Segment's
    ``Order Picked Up`` arrives, no more."""
    at = local(PARIS, "2026-03-04 11:00")
    customer = shop.signup(at - 40 * DAY, consents=("email", "push"))
    shop.post(track(customer, at, "Order Completed", products=[{"product_id": "P1"}], **COLLECT))
    asked = ["cross_sell_click_collect"]
    chosen = the_action(shop.decide(customer, at + HOUR, actions=asked))
    assert chosen["action_id"] == "cross_sell_click_collect"
    twin = shop.signup(at - 40 * DAY, consents=("email", "push"))
    shop.post(
        track(twin, at, "Order Completed", products=[{"product_id": "P1"}], **COLLECT),
        track(twin, at + 2 * HOUR, "Order Picked Up", product_id="P1"),
    )
    answer = shop.decide(twin, at + 3 * HOUR, actions=asked)
    assert contacts(answer) == [] and codes(answer, "cross_sell_click_collect") == ["not_eligible"]


# ---------------------------------------------------------------- inbound and products


def test_an_app_session_at_night_is_answered_now_in_the_app(shop: Shop) -> None:
    """A customer who consented only to e-mail opens the app at 23:30 on a product page:
    the in-app placement answers now (no send time later, no quiet hours), in the app,
    showing what goes with the trousers and not the trousers; nothing outbound tonight."""
    now = local(PARIS, "2026-03-04 23:30")
    customer = shop.signup(now - 40 * DAY, consents=("email",))
    session = {"channel": "app", "started_at": (now - 5 * MINUTE).isoformat(), "product_id": "P1"}
    answer = shop.decide(customer, now, channel="app", session=session)
    chosen = the_action(answer)
    assert chosen["channel"] == "app" and chosen["action_id"] in (
        "cross_sell_on_site",
        "popular_on_site",
    )
    assert send_utc(chosen) == now
    assert "P1" not in chosen["products"] and chosen["products"]


def test_a_tier_reached_last_week_is_no_longer_news(shop: Shop) -> None:
    """Gold reached five days ago and never congratulated (the e-mail consent came
    later): no congratulations now, the reason names the three days."""
    signed = local(PARIS, "2025-01-10 10:00")
    reached = local(PARIS, "2026-03-02 10:00")
    customer = shop.signup(signed, consents=("email",))
    shop.post(event(customer, reached, "loyalty_tier_reached", properties={"tier": "gold"}))
    answer = shop.decide(customer, reached + 5 * DAY, actions=["loyalty_tier_reached"])
    assert contacts(answer) == []
    assert "days_since_loyalty_tier <= 3 is false" in message(answer, "loyalty_tier_reached")


def test_no_season_preview_to_a_seasonal_buyer_who_just_bought(shop: Shop) -> None:
    """The April-and-October buyer who ordered ten days ago: no March preview (they are
    in the follow-up of that order), and the reason names the purchase clause."""
    customer = seasonal(shop, (4, 10))
    march = local(PARIS, "2026-03-05 10:00")
    shop.post(purchase(customer, march - 10 * DAY, "P2"))
    answer = shop.decide(customer, march, actions=["seasonal_anticipation"])
    assert contacts(answer) == []
    assert "days_since_last_purchase >= 20" in message(answer, "seasonal_anticipation")


@pytest.fixture(scope="module")
def wardrobe(base: RetailDataset, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Shop]:
    """The journeys' app, no recommender, a products table of trousers, shirts and a belt
    whose order (the popularity before any sale) leads with chinos: P3 chinos, P2 white
    shirt, P4 polo, P5 linen shirt, P6 belt, P1 black trousers."""
    rows = [
        ("P3", "Chinos", "trousers", 69.0),
        ("P2", "White shirt", "shirts", 39.9),
        ("P4", "Polo", "shirts", 35.0),
        ("P5", "Linen shirt", "shirts", 49.0),
        ("P6", "Leather belt", "accessories", 29.0),
        ("P1", "Black trousers", "trousers", 59.9),
    ]
    products = pd.DataFrame(
        {
            "product_id": [r[0] for r in rows],
            "name": [r[1] for r in rows],
            "category": [r[2] for r in rows],
            "brand": ["Atelier"] * len(rows),
            "price": [r[3] for r in rows],
            "margin": [r[3] * 0.4 for r in rows],
            "stock": pd.array([20] * len(rows), dtype="Int64"),
            "launch_date": pd.to_datetime(["2025-01-01"] * len(rows)),
            "attributes": [None] * len(rows),
        }
    )
    root: Path = tmp_path_factory.mktemp("scenarios_wardrobe")
    with open_shop(
        dataclasses.replace(base, products=products),
        root,
        redis_client(root),
        f"wardrobe{uuid.uuid4().hex[:8]}",
    ) as opened:
        yield opened


def test_the_weekly_picks_without_a_model_lead_with_the_customer_s_category(
    wardrobe: Shop,
) -> None:
    """A trousers customer (two trousers orders in the autumn, trousers viewed since),
    no recommender registered: the picks "in your top category" lead with trousers, the
    chinos and the black trousers, before the shirts that sell more."""
    now = local(PARIS, "2026-03-04 10:00")
    customer = wardrobe.signup(now - 300 * DAY, consents=("email",))
    wardrobe.post(
        purchase(customer, now - 150 * DAY, "P1"),
        purchase(customer, now - 120 * DAY, "P3"),
        view(customer, now - 100 * DAY, "P1", 120),
    )
    assert profile_of(wardrobe, customer, now)["top_category"] == "trousers"
    chosen = the_action(wardrobe.decide(customer, now, actions=["recommendations_weekly"]))
    assert chosen["action_id"] == "recommendations_weekly"
    assert chosen["products"][:2] == ["P3", "P1"], chosen["products"]


def test_complete_the_look_after_trousers_shows_shirts_and_a_belt_not_more_trousers(
    wardrobe: Shop,
) -> None:
    """Black trousers bought three days ago, no recommender: "complete the look" shows
    the shirts and the belt (complementary items), not the chinos that sell most."""
    now = local(PARIS, "2026-03-04 10:00")
    customer = wardrobe.signup(now - 300 * DAY, consents=("email",))
    wardrobe.post(purchase(customer, now - 3 * DAY, "P1"))
    chosen = the_action(wardrobe.decide(customer, now, actions=["cross_sell_after_purchase"]))
    assert chosen["action_id"] == "cross_sell_after_purchase"
    assert chosen["products"] == ["P2", "P4", "P5", "P6"], chosen["products"]


# ---------------------------------------------------------------- explanations


def test_why_this_action_channel_and_time_for_a_review_birthday_and_cross_sell(
    shop: Shop,
) -> None:
    """Delivered two days ago, bought five days ago, a birthday in five days, e-mail and
    push consented, asked at 23:00: the chosen action says why this channel and why this
    time (the morning, quiet hours); each action eligible but not chosen names the one
    chosen."""
    now = local(PARIS, "2026-04-07 23:00")
    customer = shop.signup(
        now - 300 * DAY, consents=("email", "push"), birthday=dt.date(1990, 4, 12)
    )
    shop.post(
        purchase(customer, now - 5 * DAY, "P2"),
        event(customer, now - 2 * DAY, "order_delivered", "P2"),
    )
    answer = shop.decide(customer, now)
    chosen = the_action(answer)
    assert 7 <= send_local(chosen).hour < 22 and send_local(chosen).date() > now.date()
    assert any(r.startswith("channel: ") for r in chosen["reasons"])
    [why_time] = [r for r in chosen["reasons"] if r.startswith("send_time: ")]
    assert send_local(chosen).strftime("%a %Y-%m-%d %H:%M local") in why_time, why_time
    eligible = {"birthday", "review_request", "cross_sell_after_purchase"} - {chosen["action_id"]}
    for other in eligible:
        assert codes(answer, other), other
        assert "not_eligible" not in codes(answer, other), message(answer, other)
        assert chosen["action_id"] in message(answer, other), message(answer, other)
