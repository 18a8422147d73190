"""The playbook audited a seventh time (issue 12, item 2).

Each situation is built from raw contract events (or Segment messages) posted to the
real API on a real Redis, and the answer is read as a marketer reads it: action,
channel, local send time, products, offer, reasons. The areas: seasonal anticipation from
13 months of raw history; a launch worded for early adopters, promotion lovers and
neither; the welcome series over its first two weeks, and a first order on day 2; review
requests after a delivery and after returns; reactivation once e-mail is withdrawn;
consent withdrawn between a decision and its send; declared channel and hours against
learned ones; a busy week's rolling caps across channels; the products a message shows;
bad input at the API's doors; an erased customer asked about; catalog actions that can
never fire.

Fixed here (each test failed before its fix):

* a product sent back was recommended again, first (``returned_products``, held out of
  every recommendation); a product bought again after its return left the last purchased
  products;
* a return of an earlier order, or a partial refund (a price adjustment), after the last
  delivery refused that delivery's review (``last_delivery_returned``: what the delivery
  handed over, returned whole since);
* a message scheduled on a channel whose consent was withdrawn before it went was not
  withdrawn by the next decision with the contact policy as shipped (supersession off):
  it is now, named in ``replaces`` and said in the reasons;
* the API named actions that can never fire only at its first decision; an action on
  placements whose eligibility needs no live session, or on a channel capped at 0, was
  never named (:mod:`nba.reachability`);
* an identify with several bad traits named the first only; an event that is no JSON
  object made the whole batch a 422, losing the good events beside it.

Left as a strict xfail (valuation, ``nba/scoring.py``): a declared e-mail loses to a
channel the customer's taps favour (the declaration is a x1.5 boost on an engagement
factor of up to x3).
"""

from __future__ import annotations

import datetime as dt
import uuid
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from features.dataset import RetailDataset
from nba.reachability import CatalogWarning
from serving.app import create_app
from serving.auth import new_api_key
from serving.settings import Settings
from tests.api_support import redis_client
from tests.test_scenarios_api import (
    DAY,
    HOUR,
    MINUTE,
    PARIS,
    Shop,
    best_channel,
    best_of,
    channel_priorities,
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
    spring_shop,
    the_action,
)
from tests.test_scenarios_audit import post_raw, profile_of
from tests.test_scenarios_audit4 import view, wardrobe
from tests.test_scenarios_supersession_api import shop_on
from training.registry import ModelRegistry

__all__ = ["shop", "shop_on", "spring_shop", "wardrobe"]  # the journey scenarios' apps, shared


# ---------------------------------------------------------------- seasonal anticipation


def test_thirteen_months_of_history_mark_april_and_the_preview_goes_in_march(shop: Shop) -> None:
    """Known since February 2025: a visit or two a month, and eight shopping days in
    April 2025 with an order. On 5 March 2026 (13 months of raw history, one April seen)
    the seasonal preview goes; on 5 May, April is over and the reason names next month."""
    customer = shop.signup(local(PARIS, "2025-02-01 10:00"), consents=("email",))
    items = []
    day = dt.date(2025, 2, 3)
    while day < dt.date(2026, 3, 1):  # in time order: the store replays a week behind
        if day.month == 4 and day.year == 2025 and day.day <= 16 and day.day % 2 == 0:
            items.append(view(customer, local(PARIS, f"{day} 19:00"), "P1", 90))
        elif day.day in (5, 20):
            items.append(view(customer, local(PARIS, f"{day} 19:00"), "P2", 60))
        if day == dt.date(2025, 4, 16):
            items.append(purchase(customer, local(PARIS, "2025-04-16 19:30"), "P1"))
        day += DAY
    shop.post(*items)
    assert profile_of(shop, customer, local(PARIS, "2026-03-01 10:00"))["purchases_total"] == 1
    march = local(PARIS, "2026-03-05 10:00")
    profile = profile_of(shop, customer, march)
    assert profile["seasonal_months"] == [4], profile["seasonal_months"]
    answer = shop.decide(customer, march, actions=["seasonal_anticipation"])
    assert the_action(answer)["action_id"] == "seasonal_anticipation", answer
    may = local(PARIS, "2026-05-05 10:00")
    answer = shop.decide(customer, may, actions=["seasonal_anticipation"])
    assert contacts(answer) == []
    assert "next_month" in message(answer, "seasonal_anticipation")


def test_thirteen_months_of_steady_shopping_mark_no_season(shop: Shop) -> None:
    """Known since February 2025, two visits every month and an order every quarter,
    April no busier than the rest: on 5 March 2026 no month is this customer's season,
    no preview goes, and the reason names next month's clause with the customer's
    values."""
    customer = shop.signup(local(PARIS, "2025-02-01 10:00"), consents=("email",))
    items = []
    day = dt.date(2025, 2, 3)
    while day < dt.date(2026, 3, 1):  # in time order: the store replays a week behind
        if day.day in (5, 20):
            items.append(view(customer, local(PARIS, f"{day} 19:00"), "P2", 60))
        if day.day == 6 and day.month % 3 == 0:
            items.append(purchase(customer, local(PARIS, f"{day} 19:30"), "P2"))
        day += DAY
    shop.post(*items)
    march = local(PARIS, "2026-03-05 10:00")
    assert profile_of(shop, customer, march)["seasonal_months"] == []
    answer = shop.decide(customer, march, actions=["seasonal_anticipation"])
    assert contacts(answer) == []
    assert codes(answer, "seasonal_anticipation") == ["not_eligible"]
    assert "next_month in seasonal_months" in message(answer, "seasonal_anticipation")


# ---------------------------------------------------------------- launch wording


def test_the_launch_speaks_to_early_adopters_and_promotion_lovers_and_not_to_others(
    spring_shop: Shop,
) -> None:
    """The spring launch on 10 March: "be the first" for a customer whose three orders
    were each of the shirt in its launch month, showing the new jacket (not the shirt
    they own); "launch week deals" for one whose three orders all used an offer; nothing
    for one who bought three times at full price, long after launch, and the reason names
    both scores with the customer's values."""
    shop = spring_shop
    now = local(PARIS, "2026-03-10 10:00")
    adopter = shop.signup(now - 200 * DAY, consents=("email",))
    shop.post(
        *(purchase(adopter, local(PARIS, "2026-02-20 12:00") + i * DAY, "P2") for i in range(3))
    )
    lover = shop.signup(now - 200 * DAY, consents=("email",))
    shop.post(
        *(
            purchase(lover, now - (100 - 20 * i) * DAY, "P1", offer_id="cart_10pct_48h")
            for i in range(3)
        )
    )
    neither = shop.signup(now - 200 * DAY, consents=("email",))
    shop.post(*(purchase(neither, now - (100 - 20 * i) * DAY, "P1") for i in range(3)))

    first = the_action(shop.decide(adopter, now, actions=["new_collection_launch"]))
    assert (first["action_id"], first["variant_id"]) == ("new_collection_launch", "early_adopter")
    assert first["template"] == "launch_be_the_first" and first["products"] == ["P3"]
    deals = the_action(shop.decide(lover, now, actions=["new_collection_launch"]))
    assert (deals["action_id"], deals["variant_id"]) == ("new_collection_launch", "promotion_lover")
    assert deals["template"] == "launch_launch_week_deals"
    answer = shop.decide(neither, now, actions=["new_collection_launch"])
    assert contacts(answer) == []
    assert codes(answer, "new_collection_launch") == ["not_eligible"]
    why = message(answer, "new_collection_launch")
    assert "early_adopter_score" in why and "promo_sensitivity" in why, why


# ---------------------------------------------------------------- welcome series


WELCOME = ["welcome_1", "welcome_2", "welcome_3_first_order"]


def test_the_welcome_series_day_by_day_over_its_first_two_weeks(shop: Shop) -> None:
    """Signed up on Monday 2 March at 09:00 (e-mail), asked every morning at 10:00 for
    two weeks: the first welcome at once on day 0; the second on day 3, 72 hours after
    the first, sent at the customer's hour that evening; the first-order offer on day 7
    (audit8: it counts from the sign-up, no longer 96 hours from the second's evening
    send, which a morning ask reached on day 8); nothing on the other days, and never a
    step twice."""
    signed = local(PARIS, "2026-03-02 09:00")
    customer = shop.signup(signed, consents=("email",))
    shop.post(view(customer, signed + 10 * MINUTE, "P1", 60))
    got: dict[int, str] = {}
    sent: dict[str, dt.datetime] = {}
    for day in range(14):
        answer = shop.decide(customer, signed + day * DAY + HOUR, actions=WELCOME)
        for chosen in contacts(answer):
            got[day] = chosen["action_id"]
            sent[chosen["action_id"]] = send_utc(chosen)
            assert chosen["channel"] == "email"
    assert got == {0: "welcome_1", 3: "welcome_2", 7: "welcome_3_first_order"}, got
    assert sent["welcome_1"] == signed + HOUR
    assert sent["welcome_2"] - sent["welcome_1"] >= 72 * HOUR
    assert sent["welcome_3_first_order"] - sent["welcome_2"] >= 72 * HOUR


def test_a_new_customer_who_buys_on_day_two_leaves_the_welcome_series(shop: Shop) -> None:
    """The first welcome went on day 0; the customer orders the trousers on day 2 at
    noon. On day 3 the second welcome does not go (its reason names the purchase clause);
    on day 4 the follow-up of the order takes over (complementary items); on day 8 no
    first-order offer."""
    signed = local(PARIS, "2026-03-02 09:00")
    customer = shop.signup(signed, consents=("email",))
    assert (
        the_action(shop.decide(customer, signed + HOUR, actions=WELCOME))["action_id"]
        == "welcome_1"
    )
    shop.post(purchase(customer, signed + 2 * DAY + 3 * HOUR, "P1"))
    answer = shop.decide(customer, signed + 3 * DAY + HOUR)
    assert codes(answer, "welcome_2") == ["not_eligible"]
    assert "orders_total" in message(answer, "welcome_2")
    assert best_of(shop.decide(customer, signed + 4 * DAY + HOUR)) == "cross_sell_after_purchase"
    later = shop.decide(customer, signed + 8 * DAY + HOUR, actions=WELCOME)
    assert contacts(later) == []
    assert "orders_total" in message(later, "welcome_3_first_order")


# ---------------------------------------------------------------- review requests


def test_a_return_of_an_earlier_order_leaves_the_review_of_the_order_kept(shop: Shop) -> None:
    """The shirt ordered in February was delivered on the 22nd; the trousers ordered on 1
    March were delivered on the 3rd at 10:00 and kept; that evening the shirt goes back.
    On the 5th the review of the trousers is asked: the return was of another order."""
    customer = shop.signup(local(PARIS, "2026-01-10 10:00"), consents=("email",))
    shop.post(
        purchase(customer, local(PARIS, "2026-02-20 12:00"), "P2"),
        event(customer, local(PARIS, "2026-02-22 10:00"), "order_delivered", "P2"),
        purchase(customer, local(PARIS, "2026-03-01 12:00"), "P1"),
        event(customer, local(PARIS, "2026-03-03 10:00"), "order_delivered", "P1"),
        event(customer, local(PARIS, "2026-03-03 18:00"), "order_returned", "P2"),
    )
    answer = shop.decide(customer, local(PARIS, "2026-03-05 10:00"), actions=["review_request"])
    assert the_action(answer)["action_id"] == "review_request", answer["rejected"]


def test_a_return_of_the_delivered_order_asks_no_review(shop: Shop) -> None:
    """The same customer sends back the trousers delivered on the 3rd: no review on the
    5th, and the reason names the return."""
    customer = shop.signup(local(PARIS, "2026-01-10 10:00"), consents=("email",))
    shop.post(
        purchase(customer, local(PARIS, "2026-02-20 12:00"), "P2"),
        event(customer, local(PARIS, "2026-02-22 10:00"), "order_delivered", "P2"),
        purchase(customer, local(PARIS, "2026-03-01 12:00"), "P1"),
        event(customer, local(PARIS, "2026-03-03 10:00"), "order_delivered", "P1"),
        event(customer, local(PARIS, "2026-03-03 18:00"), "order_returned", "P1"),
    )
    answer = shop.decide(customer, local(PARIS, "2026-03-05 10:00"), actions=["review_request"])
    assert contacts(answer) == []
    assert "return" in message(answer, "review_request")


# ---------------------------------------------------------------- reactivation without e-mail


def lapsed(shop: Shop, consents: tuple[str, ...]) -> tuple[str, dt.datetime]:
    """Two orders last autumn, silence since; e-mail withdrawn in January."""
    customer = shop.signup(local(PARIS, "2025-08-01 10:00"), consents=consents)
    shop.post(
        purchase(customer, local(PARIS, "2025-09-01 11:00"), "P2"),
        purchase(customer, local(PARIS, "2025-10-01 11:00"), "P2"),
        event(customer, local(PARIS, "2026-01-15 11:00"), "unsubscribe", channel="email"),
    )
    return customer, local(PARIS, "2026-03-04 10:00")


def test_a_lapsed_customer_who_withdrew_email_is_won_back_by_push(shop: Shop) -> None:
    """E-mail withdrawn in January, push still allowed: "we miss you" by push, in push
    hours; the win-back discount, which goes by e-mail or SMS only, says that neither
    channel has consent."""
    customer, now = lapsed(shop, ("email", "push"))
    chosen = shop.first_contact(customer, now, actions=["reactivation", "reactivation_offer"])
    assert (chosen["action_id"], chosen["channel"]) == ("reactivation", "push"), chosen
    assert 9 <= send_local(chosen).hour < 21
    answer = shop.decide(customer, now, actions=["reactivation_offer"])
    assert contacts(answer) == [] and set(codes(answer, "reactivation_offer")) == {"no_consent"}
    assert "email" in message(answer, "reactivation_offer")


def test_a_lapsed_customer_whose_only_channel_was_email_gets_nothing_and_says_why(
    shop: Shop,
) -> None:
    """E-mail was the only channel, withdrawn: nothing outbound; "we miss you" says that
    e-mail's consent is gone and that the customer allows no other channel."""
    customer, now = lapsed(shop, ("email",))
    answer = shop.decide(customer, now)
    assert contacts(answer) == []
    found = codes(answer, "reactivation")
    assert found and set(found) == {"no_consent"}, (found, message(answer, "reactivation"))
    assert "email" in message(answer, "reactivation")


# ---------------------------------------------------------------- consent withdrawn before the send


def test_an_unsubscribe_before_the_morning_send_withdraws_the_scheduled_reminder(
    shop: Shop,
) -> None:
    """A cart left at 23:10, asked at 00:20: the reminder is due at 07:00 by e-mail. At
    06:00 the customer unsubscribes from e-mail; asked again at 06:10, the answer names
    the 07:00 reminder among the messages to withdraw and says the consent is gone, with
    the contact policy as shipped (supersession off). Misfire: the answer said nothing,
    and the journey tool sent the reminder to a customer who had unsubscribed."""
    left = local(PARIS, "2026-03-04 23:10")
    customer = shop.signup(left - 30 * DAY, consents=("email",))
    shop.post(event(customer, left, "add_to_cart", "P1"))
    first = shop.decide(customer, left + 70 * MINUTE)
    chosen = the_action(first)
    assert (chosen["action_id"], chosen["channel"]) == ("cart_reminder_1", "email")
    assert send_local(chosen).hour == 7
    shop.post(event(customer, local(PARIS, "2026-03-05 06:00"), "unsubscribe", channel="email"))
    again = shop.decide(customer, local(PARIS, "2026-03-05 06:10"))
    assert again["replaces"] == [first["decision_id"]], again
    assert contacts(again) == []
    [why] = [r for r in the_action(again)["reasons"] if r.startswith("withdraws")]
    assert "email" in why and "consent" in why and first["decision_id"] in why, why
    later = shop.decide(customer, local(PARIS, "2026-03-05 06:30"))
    assert later["replaces"] == [] and contacts(later) == []  # withdrawn once
    kept = shop.signup(left - 30 * DAY, consents=("email",))
    shop.post(event(kept, left, "add_to_cart", "P1"))
    scheduled = shop.decide(kept, left + 70 * MINUTE)
    assert send_local(the_action(scheduled)).hour == 7
    assert shop.decide(kept, local(PARIS, "2026-03-05 06:10"))["replaces"] == []


# ---------------------------------------------------------------- declared against learned


def lunchtime_tappers(shop: Shop, now: dt.datetime) -> tuple[str, str]:
    """Two customers who tap their pushes at lunchtime (ten sent, eight opened and
    followed, browsing at 12:00) and bought the trousers three days ago; the second has
    declared e-mail, 18-21, in the preference centre."""
    twins = [shop.signup(now - 120 * DAY, consents=("email", "push")) for _ in range(2)]
    for customer in twins:  # in time order: the store replays a week behind the latest
        items = []
        for i in range(10):
            at = local(PARIS, "2026-02-10 12:00") + i * 2 * DAY
            items.append(event(customer, at, "message_sent", channel="push"))
            if i < 8:  # tapped: opened, and the link followed
                items.append(event(customer, at + 5 * MINUTE, "message_opened", channel="push"))
                items.append(event(customer, at + 5 * MINUTE, "message_clicked", channel="push"))
                items.append(view(customer, at + 6 * MINUTE, "P2", 60))
        items.append(purchase(customer, now - 3 * DAY, "P1"))
        shop.post(*items)
    learned, declared = twins
    shop.post(identify(declared, now - DAY, preferred_channel="email", preferred_hours="18-21"))
    assert profile_of(shop, learned, now)["engagement"]["push"]["clicked"] == 8
    return learned, declared


def test_declared_evening_hours_hold_over_the_learned_lunchtime(shop: Shop) -> None:
    """The lunchtime tappers: "complete the look" goes to the one who declared 18-21
    between 18:00 and 21:00 local, the timing naming the declared hours; the twin who
    declared nothing gets it by push, as learned."""
    now = local(PARIS, "2026-03-04 10:00")
    learned, declared = lunchtime_tappers(shop, now)
    asked = ["cross_sell_after_purchase"]
    as_learned = shop.first_contact(learned, now, actions=asked)
    assert best_channel(as_learned) == "push", as_learned["reasons"]
    chosen = shop.first_contact(declared, now, actions=asked)
    assert 18 <= send_local(chosen).hour < 21, chosen["send_at_local"]
    assert "declared hours (18:00-21:00)" in chosen["timing"], chosen["timing"]


def test_a_declared_email_is_honoured_over_pushes_tapped(shop: Shop) -> None:
    """The lunchtime tapper who declared e-mail in the preference centre gets "complete
    the look" by e-mail: the customer's stated channel, consented, is honoured over the
    channel their taps favour (the product brief: the engine honours each customer's
    preferred channel), though push scores about twice the e-mail's priority; the reasons
    say so. The twin who declared nothing gets it by push. Was: push, the declaration only
    a x1.5 boost on a learned engagement that reaches x3."""
    now = local(PARIS, "2026-03-04 10:00")
    learned, declared = lunchtime_tappers(shop, now)
    asked = ["cross_sell_after_purchase"]
    chosen = shop.first_contact(declared, now, actions=asked)
    assert chosen["channel"] == "email" and not chosen["explored"], chosen["reasons"]
    ranked = channel_priorities(chosen)
    assert ranked["push"] > ranked["email"] > 0, ranked
    [factor] = [r for r in chosen["reasons"] if r.startswith("channel: ")]
    assert "email, the customer's declared preferred channel" in factor, factor
    assert "on push" in factor, factor
    assert shop.first_contact(learned, now, actions=asked)["channel"] == "push"


# ---------------------------------------------------------------- a busy week


def test_a_busy_week_keeps_every_rolling_cap_across_channels(shop: Shop) -> None:
    """A customer reachable by e-mail, SMS and push has a busy week: a cart every other
    day, orders, deliveries, evenings of browsing, a birthday on Sunday. The journey tool
    asks every three hours and sends what the API schedules. In every rolling 24 hours
    and 7 days the messages stay within each channel's caps and the overall ones (3 a
    day, 8 a week), 12 hours apart, and the week is not silent."""
    start = local(PARIS, "2026-03-02 08:00")  # a Monday
    customer = shop.signup(
        start - 200 * DAY, consents=("email", "sms", "push"), birthday=dt.date(1990, 3, 8)
    )
    shop.post(
        purchase(customer, start - 40 * DAY, "P2"),
        purchase(customer, start - 90 * DAY, "P1"),
    )
    sent: list[tuple[dt.datetime, str, str]] = []
    for step in range(9 * 8):
        now = start + step * 3 * HOUR
        day, slot = divmod(step, 8)
        if slot == 3:  # 17:00: browsing, a cart every other day
            shop.post(view(customer, now - 20 * MINUTE, "P1", 300))
            if day % 2 == 0:
                shop.post(event(customer, now - 10 * MINUTE, "add_to_cart", "P2"))
        if slot == 6 and day % 4 == 1:  # an order the next morning, delivered two days on
            shop.post(purchase(customer, now, "P2"))
            shop.post(event(customer, now + 2 * DAY, "order_delivered", "P2"))
        for chosen in contacts(shop.decide(customer, now)):
            if chosen["channel"] not in ("web", "app"):
                sent.append((send_utc(chosen), chosen["channel"], chosen["action_id"]))
    assert len(sent) >= 5, sent
    caps = {"email": (1, 4), "sms": (1, 2), "push": (2, 6)}
    moments = sorted(sent)
    for i, (at, _, _) in enumerate(moments):
        day = [m for m in moments if at <= m[0] < at + DAY]
        week = [m for m in moments if at <= m[0] < at + 7 * DAY]
        assert len(day) <= 3 and len(week) <= 8, moments
        for channel, (per_day, per_week) in caps.items():
            assert sum(m[1] == channel for m in day) <= per_day, (channel, moments)
            assert sum(m[1] == channel for m in week) <= per_week, (channel, moments)
        if i:
            assert at - moments[i - 1][0] >= 12 * HOUR, moments


# ---------------------------------------------------------------- products in a message


def put_stock(shop: Shop, product: str, units: int) -> None:
    response = shop.api.put(
        f"/v1/products/{product}/stock", json={"stock": units}, headers=shop.headers
    )
    assert response.status_code == 200, response.text


def test_the_picks_show_nothing_bought_sent_back_or_sold_out(wardrobe: Shop) -> None:
    """A shirts customer bought the white shirt (kept) and the linen shirt (sent back);
    the polo sold out this morning. Their weekly picks show shirts and more, never the
    shirt they own, the one they returned, nor the polo no one can buy."""
    now = local(PARIS, "2026-03-04 10:00")
    customer = wardrobe.signup(now - 300 * DAY, consents=("email",))
    wardrobe.post(
        purchase(customer, now - 80 * DAY, "P2"),
        purchase(customer, now - 60 * DAY, "P5"),
        event(customer, now - 55 * DAY, "order_returned", "P5"),
        view(customer, now - 50 * DAY, "P4", 120),
    )
    put_stock(wardrobe, "P4", 0)
    try:
        chosen = the_action(wardrobe.decide(customer, now, actions=["recommendations_weekly"]))
    finally:
        put_stock(wardrobe, "P4", 20)
    assert chosen["action_id"] == "recommendations_weekly"
    assert chosen["products"], chosen
    assert not {"P2", "P5", "P4"} & set(chosen["products"]), chosen["products"]


def test_complete_the_look_leaves_out_what_waits_in_the_cart(wardrobe: Shop) -> None:
    """The trousers and the belt went into the cart; the trousers were ordered three days
    ago, the belt left in the cart. "Complete the look" (by e-mail) and "goes well with"
    on the white shirt's page show shirts and chinos: not the trousers bought, not the
    belt waiting in the cart, not the page's own shirt."""
    now = local(PARIS, "2026-03-04 10:00")
    customer = wardrobe.signup(now - 300 * DAY, consents=("email",))
    wardrobe.post(
        event(customer, now - 3 * DAY - HOUR, "add_to_cart", "P1"),
        event(customer, now - 3 * DAY - HOUR, "add_to_cart", "P6"),
        purchase(customer, now - 3 * DAY, "P1"),
    )
    assert profile_of(wardrobe, customer, now)["cart_items"] == ["P6"]
    chosen = the_action(wardrobe.decide(customer, now, actions=["cross_sell_after_purchase"]))
    assert chosen["action_id"] == "cross_sell_after_purchase"
    assert chosen["products"] and not {"P1", "P6"} & set(chosen["products"]), chosen["products"]
    page = {"channel": "web", "product_id": "P2"}
    shown = the_action(wardrobe.decide(customer, now, session=page, actions=["cross_sell_on_site"]))
    assert shown["channel"] == "web" and shown["products"], shown
    assert not {"P1", "P2", "P6"} & set(shown["products"]), shown["products"]


# ---------------------------------------------------------------- bad input at the doors


def test_a_batch_of_events_names_every_bad_one_and_keeps_the_good(shop: Shop) -> None:
    """Six events from a retailer's systems, four of them wrong in different ways (a
    timestamp without a zone, an unknown type, no customer, a negative revenue): each is
    refused naming its position and field; the view and the cart add are applied."""
    at = local(PARIS, "2026-03-04 15:00")
    customer = shop.signup(at - 10 * DAY)
    good_view = view(customer, at, "P1", 60)
    good_cart = event(customer, at + MINUTE, "add_to_cart", "P2")
    no_zone = {**event(customer, at, "product_view", "P2"), "timestamp": "2026-03-04T15:00:00"}
    typo = event(customer, at, "add_to_kart", "P2")
    nobody = {
        k: v for k, v in event(customer, at, "product_view", "P2").items() if k != "customer_id"
    }
    negative = purchase(customer, at, "P1", revenue=-5.0)
    body = post_raw(shop, good_view, no_zone, typo, nobody, negative, good_cart)
    assert (body["accepted"], body["rejected"]) == (2, 4), body
    fields = {r["index"]: r["field"] for r in body["rejections"]}
    assert fields == {1: "timestamp", 2: "event_type", 3: "customer_id", 4: "revenue"}, body
    for rejection in body["rejections"]:
        assert rejection["message"], rejection
    profile = profile_of(shop, customer, at + 2 * MINUTE)
    assert profile["cart_items"] == ["P2"] and "P1" in profile["browsed_products"]


def test_a_decision_request_wrong_in_three_places_names_all_three(shop: Shop) -> None:
    """A journey tool's request with an empty customer id, a timestamp in words and a
    fax channel: one 422 whose JSON names the three fields, not only the first."""
    response = shop.api.post(
        "/v1/decisions",
        json={
            "customer_id": "",
            "context": {"timestamp": "yesterday evening", "channel": "fax", "max_actions": 0},
        },
        headers=shop.headers,
    )
    assert response.status_code == 422, response.text
    text = response.text
    for field in ("customer_id", "timestamp", "channel", "max_actions"):
        assert field in text, (field, text)


# ---------------------------------------------------------------- a catalog that cannot fire


MARKETER_CATALOG = """
version: 1
actions:
  - id: cart_rescue
    type: cart_reminder
    channels: [email, push]
    eligibility: cart_size > 0 and cart_age_hours >= 1
    value: 5
  - id: app_banner_between_visits
    type: content
    description: A banner in the app for customers who are not in the app.
    channels: [web, app]
    eligibility: not in_session
    value: 2
  - id: catalogue_by_post
    type: content
    channels: [postal]
    value: 20
    ttl_hours: 240
  - id: sunday_sms
    type: content
    channels: [sms]
    eligibility: local_weekday == 6
    value: 3
    ttl_hours: 6
  - id: do_nothing
    type: do_nothing
    value: 0.01
"""

PAUSED_POST = """
channels:
  postal: {cap_7d: 0, cost: 0.9}
"""


def test_actions_that_can_never_fire_are_named_when_the_api_starts(
    base: RetailDataset, tmp_path: Path
) -> None:
    """A marketer's catalog with three actions that can never fire: an app banner for
    customers *not* in a session (placements answer only during one), a catalogue by
    post while the contact policy pauses post (a cap of 0), an SMS decided only on
    Sundays and valid six hours (SMS never goes on Sunday). The API starts and warns, naming each action and why; the
    cart reminder, which can fire, is not named."""
    catalog, policy = tmp_path / "catalog.yaml", tmp_path / "policy.yaml"
    catalog.write_text(MARKETER_CATALOG)
    policy.write_text(PAUSED_POST)
    with (
        pytest.warns(CatalogWarning) as caught,
        open_shop(
            base,
            tmp_path,
            redis_client(tmp_path),
            "neverfire",
            catalog_path=catalog,
            contact_policy_path=policy,
        ),
    ):
        pass
    said = [str(w.message) for w in caught if issubclass(w.category, CatalogWarning)]
    named = {text.split("'")[1] for text in said}
    assert named == {"app_banner_between_visits", "catalogue_by_post", "sunday_sms"}, said
    [banner] = [t for t in said if "app_banner_between_visits" in t]
    assert "in_session" in banner and "session" in banner, banner
    [post] = [t for t in said if "catalogue_by_post" in t]
    assert "postal" in post and "cap" in post, post


# ---------------------------------------------------------------- erased, then asked about


def test_an_erased_customer_asked_about_is_a_stranger_and_can_start_again(
    base: RetailDataset, tmp_path: Path
) -> None:
    """A customer with a fresh cart and e-mail consent asks to be forgotten; the journey
    tool still asks for them an hour later: a 200 marked cold start, nothing outbound
    (no consent is known any more), no cart reminder, and the profile reads as unknown.
    When they sign up again after the erasure, they are a new customer, welcomed at
    once."""
    products = tmp_path / "products.parquet"
    base.products.to_parquet(products)
    journeys, journeys_spec = new_api_key("journeys", ("decide", "ingest", "profiles"))
    dpo, dpo_spec = new_api_key("dpo", ("erase",))
    settings = Settings(
        api_keys=[journeys_spec, dpo_spec],
        data_dir=tmp_path,
        products_path=products,
        redis_prefix=f"erased7{uuid.uuid4().hex[:8]}",  # the shared test Redis: its own keys
        model_poll_seconds=0,
        redis_retry_seconds=0.2,
        archive_fsync="never",
        decision_log_fsync="never",
        response_stats=False,
    )
    registry = ModelRegistry(f"sqlite:///{tmp_path / 'mlflow.db'}", tmp_path / "artifacts")
    with TestClient(create_app(settings, client=redis_client(tmp_path), registry=registry)) as api:
        shop = Shop(api, {"Authorization": f"Bearer {journeys}"})
        left = local(PARIS, "2026-03-04 15:00")
        customer = shop.signup(left - 40 * DAY, consents=("email", "push"))
        shop.post(event(customer, left, "add_to_cart", "P1"))
        assert the_action(shop.decide(customer, left + HOUR))["action_id"] == "cart_reminder_1"
        erased = api.delete(f"/v1/customers/{customer}", headers={"Authorization": f"Bearer {dpo}"})
        assert erased.status_code == 204, erased.text
        asked = {"customer_id": customer, "context": {"timestamp": (left + 2 * HOUR).isoformat()}}
        response = api.post("/v1/decisions", json=asked, headers=shop.headers)
        assert response.status_code == 200, response.text
        answer = response.json()
        assert answer["cold_start"] is True and contacts(answer) == []
        assert "cart_reminder_1" not in {a["action_id"] for a in answer["actions"]}
        assert "P1" not in response.text
        read = api.get(f"/v1/customers/{customer}/profile", headers=shop.headers)
        assert read.status_code == 200 and read.json()["known"] is False, read.text
        # the erasure holds back every event stamped before it (by the server's clock), and
        # the API takes no event from the future: the customer comes back just after it
        back = dt.datetime.now(dt.UTC) + 2 * dt.timedelta(seconds=1)
        shop.post(
            identify(
                customer,
                back,
                timezone=PARIS,
                createdAt=back.isoformat(),
                consent_email=True,
            )
        )
        again = shop.decide(customer, back + 10 * MINUTE)
        assert best_of(again) == "welcome_1", again


def test_an_identify_with_four_bad_traits_names_all_four(shop: Shop) -> None:
    """A CRM sync sends an identify whose consent is "maybe", time zone Mars/Olympus,
    birthday 1990-13-45 and hours 25-26: the refusal names the four traits at once (it
    named the first only, so the CRM learned of the next one per round trip), and the
    product view sent with it is kept."""
    at = local(PARIS, "2026-03-04 15:00")
    customer = shop.signup(at - 10 * DAY)
    bad = identify(
        customer,
        at,
        consent_email="maybe",
        timezone="Mars/Olympus",
        birthday="1990-13-45",
        preferred_hours="25-26",
    )
    body = post_raw(shop, bad, view(customer, at, "P1", 60))
    assert (body["accepted"], body["rejected"]) == (1, 1), body
    [refused] = body["rejections"]
    assert refused["index"] == 0 and refused["field"] == "traits.consent_email", refused
    for trait in ("consent_email", "timezone", "birthday", "preferred_hours"):
        assert f"traits.{trait}" in refused["message"], (trait, refused["message"])
    assert "P1" in profile_of(shop, customer, at + MINUTE)["browsed_products"]


def test_an_event_that_is_not_an_object_is_refused_alone(shop: Shop) -> None:
    """A batch of three from a tag manager: a cart add, a bare text (a template that
    printed its variable) and a number. The two are refused, each at its position, in a
    200 whose JSON says why; the cart add is applied. Misfire: one item that is no JSON
    object made the whole request a 422, and the cart add was lost."""
    at = local(PARIS, "2026-03-04 15:00")
    customer = shop.signup(at - 10 * DAY)
    body = post_raw(shop, event(customer, at, "add_to_cart", "P2"), "{{event}}", 42)  # type: ignore[arg-type]
    assert (body["accepted"], body["rejected"]) == (1, 2), body
    assert sorted(r["index"] for r in body["rejections"]) == [1, 2], body
    for rejection in body["rejections"]:
        assert rejection["field"] == "" and "JSON object" in rejection["message"], rejection
    assert "'{{event}}'" in body["rejections"][0]["message"]
    assert profile_of(shop, customer, at + MINUTE)["cart_items"] == ["P2"]


def test_a_price_adjustment_after_delivery_still_asks_for_the_review(shop: Shop) -> None:
    """The trousers delivered on the 3rd; on the 4th the shop refunds 10.00 of their
    59.90 (a price adjustment: the customer keeps them). On the 5th the review is asked:
    a partial refund is no return. Misfire: any return event after the delivery refused
    it."""
    customer = shop.signup(local(PARIS, "2026-01-10 10:00"), consents=("email",))
    shop.post(
        purchase(customer, local(PARIS, "2026-03-01 12:00"), "P1"),
        event(customer, local(PARIS, "2026-03-03 10:00"), "order_delivered", "P1"),
        event(customer, local(PARIS, "2026-03-04 11:00"), "order_returned", "P1", revenue=10.0),
    )
    now = local(PARIS, "2026-03-05 10:00")
    assert profile_of(shop, customer, now)["purchases_total"] == 1
    answer = shop.decide(customer, now, actions=["review_request"])
    assert the_action(answer)["action_id"] == "review_request", answer["rejected"]


def test_a_return_naming_no_product_after_the_delivery_asks_no_review(shop: Shop) -> None:
    """The trousers delivered on the 3rd, then an ``order_returned`` naming no product
    (the latest order: the trousers): no review on the 5th."""
    customer = shop.signup(local(PARIS, "2026-01-10 10:00"), consents=("email",))
    shop.post(
        purchase(customer, local(PARIS, "2026-02-10 12:00"), "P2"),
        purchase(customer, local(PARIS, "2026-03-01 12:00"), "P1"),
        event(customer, local(PARIS, "2026-03-03 10:00"), "order_delivered", "P1"),
        event(customer, local(PARIS, "2026-03-04 11:00"), "order_returned"),
    )
    now = local(PARIS, "2026-03-05 10:00")
    assert profile_of(shop, customer, now)["returned_products"] == ["P1"]
    answer = shop.decide(customer, now, actions=["review_request"])
    assert contacts(answer) == [] and "last_delivery_returned" in message(answer, "review_request")
