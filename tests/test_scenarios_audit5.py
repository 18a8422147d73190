"""The playbook audited a fifth time (issue 12, item 2): journey steps and their timing,
channel choice as consents change mid-journey, offers, explanations and bad input,
each situation built from raw contract events (or Segment messages) posted to the real
API on a real Redis, and the answer read as a marketer reads it: action, channel, local
send time, products, offer, reasons.

Misfires found and fixed here (each test fails before its fix):

* the spring launch showed the store's best sellers of any age, not the collection it
  launches: an action may now show the new arrivals (``shows: new_arrivals``, the
  example catalog's launch does), the products launched in the last 30 days up to the
  customer's local day and in stock (``serving.products.new_arrivals``);
* the contract had no return nor cancellation: a returned order was followed by "how
  did you like it?" and a cancelled one by "complete the look". ``order_returned`` and
  ``order_cancelled`` (Segment's ``Order Refunded`` and ``Order Cancelled``) end the
  review request and the cross-sell of the order before them;
* a click-and-collect order was never asked for a review: only ``order_delivered``
  opened the window. The pick-up is the hand-over and dates the delivery too;
* a visitor who browsed three weeks before signing up got no welcome (the series
  counted from the first event seen). It counts from the sign-up now
  (``days_since_sign_up``: the customer record's ``created_at``, an identify's
  ``createdAt``);
* silver congratulated in January, gold reached in March: never congratulated (the
  rule said "never sent before"). A tier is news until congratulated since it was
  reached;
* an event of a product the products table does not list was accepted without a word
  (the answer's ``warnings`` now names it), and a refused event type did not say which
  value was sent.

Also fixed in this pass, with their tests beside the code they guard:
``tests/test_api_erasure.py`` (a decision asked for an erased customer keeps nothing,
the decision log reads none of their records) and ``tests/test_closed_loop.py`` (the
closed loop's profiles at the cut hold the tier of the cut, not the horizon's).

The other tests found the product right and guard it: no second cart reminder once
the cart is emptied or bought in a store, the second reminder on e-mail after an SMS
STOP or push turned off, a soft bounce changes nothing and a hard one closes e-mail,
the welcome moves to push after an e-mail unsubscribe and starts with a late opt-in,
no wishes the day after a birthday, a browse on the day Los Angeles changes its
clocks told that evening on the new clock, Segment's refund and cancellation, and bad
input refused naming its field (a future or zone-less timestamp, an unknown action,
a catalog asking a cart reminder for new arrivals).
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
from nba.catalog import CatalogError, parse_catalog
from tests.api_support import redis_client
from tests.test_scenarios_api import (
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
from tests.test_scenarios_audit import post_raw, profile_of, track

__all__ = ["shop"]  # the journey scenarios' app, shared


# ---------------------------------------------------------------- a launch's products


@pytest.fixture(scope="module")
def arrivals(base: RetailDataset, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Shop]:
    """The journeys' app with a spring collection beside the tiny data set's trousers
    (P1, on sale since September) and shirt (P2, since 15 February): a dress launched on
    1 March, a jacket on 5 March, a skirt on 3 March already sold out, and a coat that
    goes on sale on 12 March."""
    collection = pd.DataFrame(
        {
            "product_id": ["N1", "N2", "N3", "N4"],
            "name": ["Spring jacket", "Spring dress", "Spring skirt", "Spring coat"],
            "category": ["jackets", "dresses", "skirts", "coats"],
            "brand": ["Atelier"] * 4,
            "price": [89.0, 69.0, 49.0, 149.0],
            "margin": [35.0, 28.0, 20.0, 60.0],
            "stock": pd.array([40, 25, 0, 30], dtype="Int64"),
            "launch_date": pd.to_datetime(["2026-03-05", "2026-03-01", "2026-03-03", "2026-03-12"]),
            "attributes": [None] * 4,
        }
    )
    products = pd.concat([base.products, collection], ignore_index=True)
    root: Path = tmp_path_factory.mktemp("scenarios_arrivals")
    with open_shop(
        dataclasses.replace(base, products=products),
        root,
        redis_client(root),
        f"arrive{uuid.uuid4().hex[:8]}",
    ) as opened:
        yield opened


def test_the_launch_shows_the_new_collection_not_the_best_sellers(arrivals: Shop) -> None:
    """An early adopter (three orders, each of the shirt in its launch month) hears
    of the spring launch on 10 March: the message shows the collection, newest first
    (the jacket, then the dress), not the trousers that sell best (three orders from
    other customers this week), not the sold-out skirt, not the coat on sale only from
    the 12th, not the shirt just bought. Misfire: it showed the best sellers of any age."""
    for i in range(3):
        other = arrivals.signup(local(PARIS, "2026-02-01 10:00"))
        arrivals.post(purchase(other, local(PARIS, f"2026-03-0{6 + i} 12:00"), "P1"))
    customer = arrivals.signup(local(PARIS, "2026-01-10 10:00"), consents=("email",))
    arrivals.post(
        purchase(customer, local(PARIS, "2026-02-20 18:00"), "P2"),
        purchase(customer, local(PARIS, "2026-02-25 18:00"), "P2"),
        purchase(customer, local(PARIS, "2026-03-01 18:00"), "P2"),
    )
    now = local(PARIS, "2026-03-10 09:00")
    assert profile_of(arrivals, customer, now)["early_adopter_score"] >= 0.3
    answer = arrivals.decide(customer, now, actions=["new_collection_launch"])
    chosen = the_action(answer)
    assert (chosen["action_id"], chosen["variant_id"]) == ("new_collection_launch", "early_adopter")
    assert chosen["products"] == ["N1", "N2"]


def test_a_launch_seen_from_tokyo_shows_what_is_on_sale_on_the_local_day(
    arrivals: Shop,
) -> None:
    """On 11 March at 22:30 UTC it is already the 12th in Tokyo: the coat launched on the
    12th is on sale there and leads the launch's products; in Paris, still the 11th, it
    is not shown."""
    now = dt.datetime(2026, 3, 11, 22, 30, tzinfo=dt.UTC)
    shown = {}
    for zone in ("Asia/Tokyo", PARIS):
        customer = arrivals.signup(now - 60 * DAY, timezone=zone, consents=("email",))
        arrivals.post(
            purchase(customer, dt.datetime(2026, 2, 20, 9, tzinfo=dt.UTC), "P2"),
            purchase(customer, dt.datetime(2026, 2, 25, 9, tzinfo=dt.UTC), "P2"),
            purchase(customer, dt.datetime(2026, 3, 1, 9, tzinfo=dt.UTC), "P2"),
        )
        answer = arrivals.decide(customer, now, actions=["new_collection_launch"])
        shown[zone] = the_action(answer)["products"]
    assert shown["Asia/Tokyo"][0] == "N4"
    assert "N4" not in shown[PARIS] and shown[PARIS][:2] == ["N1", "N2"]


# ---------------------------------------------------------------- returns and cancellations


def test_no_review_request_for_an_order_sent_back(shop: Shop) -> None:
    """Two customers order the trousers on 1 March, delivered on the 2nd; one sends them
    back on the 3rd. On the 4th the other is asked for a review; the one who returned
    them is not, and the refusal names the return. Misfire: the contract had no return,
    and "how did you like it?" followed a returned order."""
    bought, delivered = local(PARIS, "2026-03-01 12:00"), local(PARIS, "2026-03-02 10:00")
    now = local(PARIS, "2026-03-04 10:00")
    kept, returned = (shop.signup(bought - 30 * DAY) for _ in range(2))
    for customer in (kept, returned):
        shop.post(purchase(customer, bought), event(customer, delivered, "order_delivered", "P1"))
    shop.post(event(returned, local(PARIS, "2026-03-03 09:00"), "order_returned", "P1"))
    assert the_action(shop.decide(kept, now, actions=["review_request"]))["action_id"] == (
        "review_request"
    )
    answer = shop.decide(returned, now, actions=["review_request"])
    assert contacts(answer) == []
    assert codes(answer, "review_request") == ["not_eligible"]
    assert "last_delivery_returned" in message(answer, "review_request")


def test_a_segment_order_refunded_is_a_return(shop: Shop) -> None:
    """Segment's ``Order Refunded`` is the contract's ``order_returned``: the profile
    dates it, and no review request follows the refunded order."""
    bought = local(PARIS, "2026-03-01 12:00")
    customer = shop.signup(bought - 30 * DAY)
    shop.post(
        purchase(customer, bought),
        event(customer, local(PARIS, "2026-03-02 10:00"), "order_delivered", "P1"),
        track(customer, local(PARIS, "2026-03-02 20:00"), "Order Refunded", order_id="A-9"),
    )
    now = local(PARIS, "2026-03-04 20:00")
    assert profile_of(shop, customer, now)["hours_since_last_return"] == pytest.approx(48.0)
    assert codes(shop.decide(customer, now, actions=["review_request"]), "review_request") == [
        "not_eligible"
    ]


def test_no_complete_the_look_after_a_cancelled_order_until_the_next_order(shop: Shop) -> None:
    """An order placed on 1 March and cancelled two hours later: no "complete the look"
    on the 3rd (the refusal says nothing was bought: the cancelled order is no purchase);
    a new order on the 5th brings the complementary items back on the 7th."""
    bought = local(PARIS, "2026-03-01 12:00")
    customer = shop.signup(bought - 30 * DAY)
    shop.post(
        purchase(customer, bought),
        event(customer, bought + 2 * HOUR, "order_cancelled", "P1"),
    )
    asked = ["cross_sell_after_purchase"]
    answer = shop.decide(customer, local(PARIS, "2026-03-03 10:00"), actions=asked)
    assert contacts(answer) == []
    assert codes(answer, "cross_sell_after_purchase") == ["not_eligible"]
    assert "last_purchased_products" in message(answer, "cross_sell_after_purchase")
    shop.post(purchase(customer, local(PARIS, "2026-03-05 12:00"), "P2"))
    again = shop.decide(customer, local(PARIS, "2026-03-07 10:00"), actions=asked)
    assert the_action(again)["action_id"] == "cross_sell_after_purchase"


# ---------------------------------------------------------------- the cart's steps


def cart_reminded(shop: Shop, consents: tuple[str, ...]) -> tuple[str, dt.datetime]:
    """A customer who left the trousers in the cart on a Wednesday afternoon and got
    the first reminder an hour later (the API's own decision, recorded)."""
    added = local(PARIS, "2026-03-04 15:00")
    customer = shop.signup(added - 30 * DAY, consents=consents)
    shop.post(event(customer, added, "add_to_cart", "P1"))
    first = shop.first_contact(customer, added + HOUR, actions=["cart_reminder_1"])
    assert first["action_id"] == "cart_reminder_1"
    return customer, added


def test_no_second_reminder_once_the_cart_was_emptied(shop: Shop) -> None:
    """The first reminder went; two hours later the customer took the trousers out of
    the cart. The next day neither the plain second reminder nor the discount goes,
    and the refusals name the empty cart."""
    customer, added = cart_reminded(shop, ("email",))
    shop.post(event(customer, added + 3 * HOUR, "remove_from_cart", "P1"))
    asked = ["cart_reminder_2", "cart_reminder_2_discount"]
    answer = shop.decide(customer, added + 26 * HOUR, actions=asked)
    assert contacts(answer) == []
    for action in asked:
        assert codes(answer, action) == ["not_eligible"], action
        assert "cart_size > 0 is false" in message(answer, action)


def test_no_second_reminder_once_the_cart_was_bought_in_store(shop: Shop) -> None:
    """The first reminder went; the customer bought the trousers in a store that
    evening: no second reminder the next day (a purchase on any channel ends the cart)."""
    customer, added = cart_reminded(shop, ("email",))
    shop.post(purchase(customer, added + 5 * HOUR, "P1", channel="store"))
    answer = shop.decide(customer, added + 26 * HOUR, actions=["cart_reminder_2"])
    assert contacts(answer) == []
    assert codes(answer, "cart_reminder_2") == ["not_eligible"]


@pytest.mark.parametrize(
    ("withdrawn", "event_type"), [("sms", "sms_stop"), ("push", "unsubscribe")]
)
def test_a_channel_closed_mid_journey_carries_the_second_reminder_on_another(
    shop: Shop, withdrawn: str, event_type: str
) -> None:
    """An SMS STOP (or push turned off) after the first reminder: the second reminder,
    a day later, goes by e-mail, and the closed channel's refusal says the consent is
    gone."""
    customer, added = cart_reminded(shop, ("email", withdrawn))
    shop.post(event(customer, added + 2 * HOUR, event_type, channel=withdrawn))
    answer = shop.decide(customer, added + 26 * HOUR, actions=["cart_reminder_2"])
    chosen = the_action(answer)
    assert (chosen["action_id"], chosen["channel"]) == ("cart_reminder_2", "email")
    consents = profile_of(shop, customer, added + 26 * HOUR)["consents"]
    assert consents["email"] and not consents[withdrawn]


def test_a_soft_bounce_keeps_email_and_a_hard_one_closes_it(shop: Shop) -> None:
    """A mailbox full (a soft bounce) changes nothing: the reminder still goes by
    e-mail; an address that does not exist (hard) closes e-mail, and the reminder takes
    push."""
    soft, added = cart_reminded(shop, ("email", "push"))
    hard, _ = cart_reminded(shop, ("email", "push"))
    for customer, kind in ((soft, "soft"), (hard, "hard")):
        shop.post(
            event(
                customer,
                added + 2 * HOUR,
                "message_bounced",
                channel="email",
                properties={"bounce_type": kind},
            )
        )
    consents = {c: profile_of(shop, c, added + 26 * HOUR)["consents"] for c in (soft, hard)}
    assert consents[soft]["email"] and not consents[hard]["email"]
    answer = shop.decide(hard, added + 26 * HOUR, actions=["cart_reminder_2"])
    assert the_action(answer)["channel"] == "push"


# ---------------------------------------------------------------- welcome and consent


def test_an_email_unsubscribe_after_the_first_welcome_moves_the_series_to_push(
    shop: Shop,
) -> None:
    """Signed up on Monday with e-mail and push; the first welcome went; on Tuesday the
    customer unsubscribed from e-mail (the CRM's identify). Thursday's second welcome
    goes by push, never e-mail."""
    signed = local(PARIS, "2026-03-02 10:00")
    customer = shop.signup(signed, consents=("email", "push"))
    first = shop.first_contact(customer, signed + 5 * MINUTE, actions=["welcome_1"])
    assert first["action_id"] == "welcome_1"
    shop.post(identify(customer, signed + DAY, consent_email=False))
    answer = shop.decide(customer, signed + 4 * DAY, actions=["welcome_2"])
    chosen = the_action(answer)
    assert (chosen["action_id"], chosen["channel"]) == ("welcome_2", "push")


def test_an_opt_in_the_day_after_sign_up_starts_the_welcome(shop: Shop) -> None:
    """Signed up without any consent (nothing outbound, the refusal says why); the next
    morning the customer opts in to e-mail: the first welcome goes that morning."""
    signed = local(PARIS, "2026-03-02 10:00")
    customer = shop.signup(signed, consents=())
    none = shop.decide(customer, signed + 5 * MINUTE, actions=["welcome_1"])
    assert contacts(none) == []
    assert "no_consent" in codes(none, "welcome_1")
    shop.post(event(customer, signed + DAY - HOUR, "opt_in", channel="email"))
    chosen = the_action(shop.decide(customer, signed + DAY, actions=["welcome_1"]))
    assert (chosen["action_id"], chosen["channel"]) == ("welcome_1", "email")
    assert send_local(chosen).date() == dt.date(2026, 3, 3)


# ---------------------------------------------------------------- milestones


def test_no_birthday_wishes_the_day_after_the_birthday(shop: Shop) -> None:
    """Born on 3 March: on the 2nd the wishes go (by the day); on the 4th, the day after,
    nothing, and the refusal says the birthday is 364 days away."""
    customer = shop.signup(
        local(PARIS, "2025-06-01 10:00"), consents=("email",), birthday=dt.date(1990, 3, 3)
    )
    before = the_action(
        shop.decide(customer, local(PARIS, "2026-03-02 09:00"), actions=["birthday"])
    )
    assert before["action_id"] == "birthday"
    assert send_local(before).date() <= dt.date(2026, 3, 3)
    after = shop.decide(customer, local(PARIS, "2026-03-04 09:00"), actions=["birthday"])
    assert contacts(after) == []
    assert "days_to_birthday" in message(after, "birthday")


def test_a_review_is_asked_after_a_click_and_collect_pick_up(shop: Shop) -> None:
    """Ordered for click-and-collect on Monday, picked up in store on Tuesday (no
    delivery event: the pick-up is the hand-over): on Thursday the review request goes.
    Misfire: only an ``order_delivered`` opened the review window, so a click-and-collect
    order was never asked about."""
    ordered = local(PARIS, "2026-03-02 12:00")
    customer = shop.signup(ordered - 30 * DAY, consents=("email",))
    shop.post(
        purchase(customer, ordered, "P1", properties={"fulfilment": "click_collect"}),
        event(customer, ordered + DAY, "click_collect_pickup", "P1", channel="store"),
    )
    answer = shop.decide(customer, ordered + 3 * DAY, actions=["review_request"])
    assert the_action(answer)["action_id"] == "review_request"


# ---------------------------------------------------------------- bad input


def test_an_event_dated_in_the_future_is_refused_naming_the_timestamp(shop: Shop) -> None:
    """A cart add stamped a year ahead (a device clock gone wrong) is refused, naming
    the field; it never makes a cart."""
    customer = shop.signup(local(PARIS, "2026-03-01 10:00"))
    ahead = dt.datetime.now(dt.UTC) + 365 * DAY
    body = post_raw(shop, event(customer, ahead, "add_to_cart", "P1"))
    assert (body["accepted"], body["rejected"]) == (0, 1)
    [rejection] = body["rejections"]
    assert rejection["field"] == "timestamp" and "future" in rejection["message"]


def test_an_event_for_an_unknown_product_is_accepted_with_a_warning_naming_it(
    shop: Shop,
) -> None:
    """A cart add of a product the products table does not list: the API accepts unknown
    products by default (a catalogue that lags), but the answer warns, naming the event,
    the field and the product. Misfire: it was accepted without a word."""
    customer = shop.signup(local(PARIS, "2026-03-01 10:00"))
    at = local(PARIS, "2026-03-04 15:00")
    body = post_raw(
        shop,
        event(customer, at, "add_to_cart", "NOPE-9"),
        event(customer, at, "product_view", "P1"),
    )
    assert (body["accepted"], body["rejected"]) == (2, 0)
    [warning] = body["warnings"]
    assert (warning["index"], warning["field"]) == (0, "product_id")
    assert "unknown product 'NOPE-9'" in warning["message"]


def test_a_decision_for_an_unknown_action_is_a_422_naming_it(shop: Shop) -> None:
    """A journey tool asks for an action the catalog does not have: 422, the JSON body
    names the id and where it was given."""
    customer = shop.signup(local(PARIS, "2026-03-01 10:00"))
    response = shop.api.post(
        "/v1/decisions",
        json={"customer_id": customer, "context": {"actions": ["cart_reminder_9"]}},
        headers=shop.headers,
    )
    assert response.status_code == 422
    assert "cart_reminder_9" in response.text and "actions" in response.text


def test_a_catalog_that_asks_a_cart_reminder_to_show_new_arrivals_is_refused() -> None:
    """``shows: new_arrivals`` on a cart reminder (whose products are the cart's) is a
    load-time error naming the action and the field."""
    text = """
actions:
  - id: cart_new
    type: cart_reminder
    channels: [email]
    shows: new_arrivals
"""
    with pytest.raises(CatalogError) as raised:
        parse_catalog(text)
    assert "cart_new" in str(raised.value) and "shows" in str(raised.value)


def test_a_segment_order_cancelled_is_a_cancellation(shop: Shop) -> None:
    """Segment's ``Order Cancelled`` is the contract's ``order_cancelled``: no "complete
    the look" for the cancelled order."""
    bought = local(PARIS, "2026-03-01 12:00")
    customer = shop.signup(bought - 30 * DAY)
    shop.post(
        purchase(customer, bought),
        track(customer, bought + HOUR, "Order Cancelled", order_id="A-10"),
    )
    now = local(PARIS, "2026-03-03 10:00")
    assert profile_of(shop, customer, now)["hours_since_last_return"] == pytest.approx(45.0)
    answer = shop.decide(customer, now, actions=["cross_sell_after_purchase"])
    assert codes(answer, "cross_sell_after_purchase") == ["not_eligible"]


# ---------------------------------------------------------------- time zones and clocks


def test_a_browse_on_the_day_the_clocks_change_is_told_that_evening_local(shop: Shop) -> None:
    """Sunday 8 March 2026, the day Los Angeles moves to summer time (UTC-7 from 02:00):
    twenty minutes on the trousers at 15:00 local. The reminder is for that evening,
    18:00-22:00 on the new clock, not an hour off."""
    at = local(LOS_ANGELES, "2026-03-08 15:00")
    customer = shop.signup(at - 60 * DAY, timezone=LOS_ANGELES, consents=("email",))
    shop.post(
        event(customer, at, "product_view", "P1", properties={"dwell_seconds": 1200}),
    )
    chosen = the_action(
        shop.decide(customer, at + 25 * MINUTE, actions=["browse_reminder_evening"])
    )
    assert chosen["action_id"] == "browse_reminder_evening"
    sent = send_local(chosen)
    assert sent.date() == dt.date(2026, 3, 8) and 18 <= sent.hour < 22, sent
    assert sent.utcoffset() == dt.timedelta(hours=-7)
    assert send_utc(chosen) == sent.astimezone(dt.UTC)


# ---------------------------------------------------------------- more bad input


def test_an_event_without_a_time_zone_is_refused_naming_the_timestamp(shop: Shop) -> None:
    """``2026-03-04T15:00:00`` without a zone could be any of 24 moments: refused, naming
    the field, not guessed."""
    customer = shop.signup(local(PARIS, "2026-03-01 10:00"))
    row = event(customer, local(PARIS, "2026-03-04 15:00"), "add_to_cart", "P1")
    row["timestamp"] = "2026-03-04T15:00:00"
    body = post_raw(shop, row)
    assert (body["accepted"], body["rejected"]) == (0, 1)
    assert body["rejections"][0]["field"] == "timestamp"


def test_an_unknown_event_type_is_refused_naming_it(shop: Shop) -> None:
    """``order_refund`` (a typo of ``order_returned``) is refused, naming the field and
    the value sent, and the batch's good event is accepted. Misfire: the message listed
    the valid types but not the one sent."""
    customer = shop.signup(local(PARIS, "2026-03-01 10:00"))
    at = local(PARIS, "2026-03-04 15:00")
    body = post_raw(
        shop, event(customer, at, "order_refund", "P1"), event(customer, at, "product_view", "P1")
    )
    assert (body["accepted"], body["rejected"]) == (1, 1)
    [rejection] = body["rejections"]
    assert rejection["field"] == "event_type"
    assert "(got 'order_refund')" in rejection["message"]
    assert "order_returned" in rejection["message"]


# ---------------------------------------------------------------- probes


def test_a_shopper_who_browsed_before_signing_up_is_welcomed(shop: Shop) -> None:
    """A visitor known by their id browsed three weeks ago, then signs up today (the
    CRM's identify, with its sign-up time and e-mail consent): the first welcome goes
    today."""
    signed = local(PARIS, "2026-03-04 10:00")
    customer = f"S{uuid.uuid4().hex[:10]}"
    shop.post(event(customer, signed - 21 * DAY, "product_view", "P1"))
    shop.post(
        identify(customer, signed, timezone=PARIS, createdAt=signed.isoformat(), consent_email=True)
    )
    chosen = shop.first_contact(customer, signed + 5 * MINUTE, actions=["welcome_1"])
    assert chosen["action_id"] == "welcome_1"


def tier(customer: str, at: dt.datetime, name: str) -> dict[str, Any]:
    return event(customer, at, "loyalty_tier_reached", properties={"tier": name})


def test_each_new_tier_is_congratulated_once(shop: Shop) -> None:
    """Silver reached in January (congratulated), gold in March: gold is congratulated
    too; asked again the next day, nothing more."""
    customer = shop.signup(local(PARIS, "2025-06-01 10:00"), consents=("email",))
    silver = local(PARIS, "2026-01-10 12:00")
    shop.post(tier(customer, silver, "silver"))
    first = shop.first_contact(customer, silver + HOUR, actions=["loyalty_tier_reached"])
    assert first["action_id"] == "loyalty_tier_reached"
    gold = local(PARIS, "2026-03-03 12:00")
    shop.post(tier(customer, gold, "gold"))
    second = shop.first_contact(customer, gold + HOUR, actions=["loyalty_tier_reached"])
    assert second["action_id"] == "loyalty_tier_reached"
    again = shop.decide(customer, gold + DAY, actions=["loyalty_tier_reached"])
    assert contacts(again) == []
