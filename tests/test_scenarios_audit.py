"""The playbook audited end to end as its users drive it (issue 12, item 2).

Every situation is built from raw contract events or Segment messages posted to the real
API on a real Redis (the journey tool's side, :mod:`tests.test_scenarios_api`), and the
answer is read as a marketer reads it: action, channel, local send time, reasons.

Misfires found and fixed here:

* an ``Order Completed`` in the Segment e-commerce shape (its products in
  ``properties.products``) was one purchase without a product: nothing was known bought
  (no cross-sell, no "add to your pickup", the bought item still in the cart). It is now
  one purchase per line item, the order's revenue shared among them;
* an ``unsubscribe`` (or complaint, opt-in) on a channel that needs no consent (``web``,
  a preference centre) was accepted and changed nothing: the customer kept getting
  e-mails. It is refused with the field to fix (API and files), and Segment's
  ``Unsubscribed`` (the e-mail spec's event) withdraws e-mail;
* the mobile wallet was open to every customer: a customer who refused every consent
  got the birthday wishes on a wallet pass they never added. The wallet now reaches
  only customers with a ``wallet_pass_added``, and the reasons say so.

The other tests cover playbook rows no scenario test covered (far time zones, daylight
saving changes within the horizon, a launch's last day, retried requests, several actions
in one answer, complaints and refused calls, an undeliverable declared channel, a tier
reached, bad input) and fail if those break.
"""

from __future__ import annotations

import datetime as dt
import itertools
import uuid
from pathlib import Path
from typing import Any

import pytest

from features.dataset import load_dataset
from features.validation import DataContractError
from tests.conftest import EVENTS_CSV, WriteDataset
from tests.test_scenarios_api import (
    LOS_ANGELES,
    PARIS,
    Shop,
    channel_priorities,
    codes,
    contacts,
    event,
    identify,
    local,
    message,
    send_local,
    send_utc,
    shop,
    spring_shop,
    the_action,
)

__all__ = ["shop", "spring_shop"]  # the journey scenarios' apps, shared

_ids = itertools.count()


def track(customer: str, at: dt.datetime, name: str, **properties: Any) -> dict[str, Any]:
    """A Segment ``track`` message sent from the web site."""
    return {
        "type": "track",
        "event": name,
        "userId": customer,
        "messageId": f"t-{next(_ids)}-{uuid.uuid4().hex[:6]}",
        "timestamp": at.isoformat(),
        "context": {"channel": "browser"},
        "properties": properties,
    }


def profile_of(shop: Shop, customer: str, at: dt.datetime) -> dict[str, Any]:
    response = shop.api.get(
        f"/v1/customers/{customer}/profile", params={"as_of": at.isoformat()}, headers=shop.headers
    )
    assert response.status_code == 200, response.text
    return response.json()["profile"]  # type: ignore[no-any-return]


def post_raw(shop: Shop, *items: dict[str, Any]) -> dict[str, Any]:
    """``POST /v1/events`` whatever it answers (rejections included): a 200, or a 422
    naming each event when every one was rejected (nothing stored)."""
    response = shop.api.post("/v1/events", json={"events": list(items)}, headers=shop.headers)
    body: dict[str, Any] = response.json()
    everyone = body.get("rejected") == len(items)
    assert response.status_code == (422 if everyone else 200), response.text
    if everyone:
        details = body["error"]["details"]
        assert [d["loc"][2] for d in details] == [r["index"] for r in body["rejections"]]
    return body


# ---------------------------------------------------------------- Segment orders


def test_a_segment_order_of_several_products_is_one_purchase_per_product(shop: Shop) -> None:
    """Trousers and a shirt in the cart, an ``Order Completed`` listing the trousers only
    (the e-commerce spec's ``products``): the trousers are bought, the shirt is still in
    the cart, the order's revenue is counted once; two days later the complementary items
    go, without the trousers (it used to be a purchase of no product: no cross-sell)."""
    added = local(PARIS, "2026-03-02 19:00")
    customer = shop.signup(added - dt.timedelta(days=30), consents=("email",))
    order = track(
        customer,
        added + dt.timedelta(minutes=20),
        "Order Completed",
        order_id="A-1",
        revenue=99.8,
        products=[
            {"product_id": "P1", "price": 59.9, "quantity": 1, "name": "Black trousers"},
            {"product_id": "P1", "price": 59.9, "quantity": 1},
        ],
    )
    body = shop.post(
        track(customer, added, "Product Added", product_id="P1", price=59.9, quantity=1),
        track(customer, added, "Product Added", product_id="P2", price=39.9, quantity=1),
        order,
    )
    assert body["accepted"] == 4  # two adds, the order's two lines
    assert post_raw(shop, order)["duplicate"] == 2  # a replayed order is harmless
    seen = profile_of(shop, customer, added + dt.timedelta(hours=1))
    assert seen["last_purchased_products"] == ["P1"]
    assert seen["cart_items"] == ["P2"]
    assert (seen["purchases_total"], seen["revenue_total"]) == (2, pytest.approx(99.8))
    answer = shop.decide(
        customer, added + dt.timedelta(days=2), actions=["cross_sell_after_purchase"]
    )
    chosen = the_action(answer)
    assert chosen["action_id"] == "cross_sell_after_purchase", answer["rejected"]
    assert "P1" not in chosen["products"]


def test_a_segment_click_and_collect_order_gets_add_to_your_pickup(shop: Shop) -> None:
    """An ``Order Completed`` with its products and ``fulfilment: click_collect``: every
    line carries the order's fulfilment, so "add to your pickup" goes at once."""
    ordered = local(PARIS, "2026-03-04 11:00")
    customer = shop.signup(ordered - dt.timedelta(days=40), consents=("email", "push"))
    shop.post(
        track(
            customer,
            ordered,
            "Order Completed",
            total=59.9,
            fulfilment="click_collect",
            products=[{"product_id": "P1", "price": 59.9}],
        )
    )
    now = ordered + dt.timedelta(hours=3)
    chosen = the_action(shop.decide(customer, now, actions=["cross_sell_click_collect"]))
    assert (chosen["action_id"], chosen["template"]) == (
        "cross_sell_click_collect",
        "add_to_your_pickup",
    )
    assert send_utc(chosen) == now


def test_an_order_line_without_a_product_is_refused_naming_it(shop: Shop) -> None:
    """A line without ``product_id`` refuses that order, naming the line; the product view
    sent with it is kept."""
    at = local(PARIS, "2026-03-04 11:00")
    customer = shop.signup(at - dt.timedelta(days=40), consents=("email",))
    bad = track(customer, at, "Order Completed", products=[{"product_id": "P1"}, {"sku": "X"}])
    body = post_raw(shop, bad, event(customer, at, "product_view", "P2"))
    assert (body["accepted"], body["rejected"]) == (1, 1)
    [rejection] = body["rejections"]
    assert (rejection["index"], rejection["field"]) == (0, "properties.products[1].product_id")


# ---------------------------------------------------------------- consent events


def test_an_unsubscribe_on_a_channel_without_consent_is_refused_not_ignored(shop: Shop) -> None:
    """An ``unsubscribe`` sent on ``web`` (the preference centre's page) used to be
    accepted and change nothing: the customer kept getting the e-mails. It is refused,
    naming the field and the channels it may name; the cart add beside it is kept."""
    at = local(PARIS, "2026-03-04 09:00")
    customer = shop.signup(at - dt.timedelta(days=30), consents=("email",))
    body = post_raw(
        shop,
        event(customer, at, "add_to_cart", "P1"),
        event(customer, at + dt.timedelta(minutes=5), "unsubscribe", channel="web"),
    )
    assert (body["accepted"], body["rejected"]) == (1, 1)
    [rejection] = body["rejections"]
    assert (rejection["index"], rejection["field"]) == (1, "channel")
    assert "name the channel withdrawn (one of: email, sms, push, postal" in rejection["message"]


def test_segment_unsubscribed_from_a_browser_withdraws_email(shop: Shop) -> None:
    """Segment's ``Unsubscribed`` (the e-mail spec's event), clicked in a browser: e-mail
    is withdrawn at once (it was taken as a web event and ignored); push still works."""
    at = local(PARIS, "2026-03-04 09:00")
    customer = shop.signup(at - dt.timedelta(days=30), consents=("email", "push"))
    shop.post(event(customer, at, "add_to_cart", "P1"))
    shop.post(track(customer, at + dt.timedelta(minutes=5), "Unsubscribed"))
    answer = shop.decide(customer, at + dt.timedelta(hours=2), actions=["cart_reminder_1"])
    chosen = the_action(answer)
    assert (chosen["action_id"], chosen["channel"]) == ("cart_reminder_1", "push")
    assert set(channel_priorities(chosen)) == {"push"}
    assert "email (no_consent)" in " ".join(chosen["reasons"])


def test_a_data_set_with_an_unsubscribe_on_web_is_refused_naming_row_and_field(
    write_dataset: WriteDataset,
) -> None:
    """The same rule for files: the row and the field, and nothing loaded."""
    extra = "E5,C1,2026-03-07T10:00:00Z,web,unsubscribe,,,,,,\n"
    extra += "E6,C1,2026-03-07T10:00:00Z,email,sms_stop,,,,,,\n"
    folder: Path = write_dataset(events=EVENTS_CSV + extra)
    with pytest.raises(DataContractError) as info:
        load_dataset(folder)
    problems = [str(p) for p in info.value.problems]
    assert any(
        p.startswith("events.csv: row 5, field 'channel': an unsubscribe changes") for p in problems
    ), problems
    assert any(
        "row 6, field 'channel': an sms_stop is on 'sms', not 'email'" in p for p in problems
    )


def test_a_complaint_about_an_email_closes_email_only(shop: Shop) -> None:
    """A complaint about an e-mail (marked as spam), then a cart: the reminder goes by push,
    e-mail is closed and says why."""
    at = local(PARIS, "2026-03-04 09:00")
    customer = shop.signup(at - dt.timedelta(days=30), consents=("email", "push"))
    shop.post(track(customer, at - dt.timedelta(hours=1), "Email Marked as Spam"))
    shop.post(event(customer, at, "add_to_cart", "P1"))
    answer = shop.decide(customer, at + dt.timedelta(hours=2), actions=["cart_reminder_1"])
    chosen = the_action(answer)
    assert (chosen["action_id"], chosen["channel"]) == ("cart_reminder_1", "push")
    assert "email (no_consent)" in " ".join(chosen["reasons"])


def test_a_refused_call_silences_the_call_centre_for_sixty_days(shop: Shop) -> None:
    """A lapsed high-value customer refuses the win-back call: no call for 60 days (the
    reason gives the date), while e-mail may still win them back."""
    customer = shop.signup(local(PARIS, "2025-06-01 10:00"), consents=("email", "call_centre"))
    for month in ("2025-07-01", "2025-08-01", "2025-09-01"):
        shop.post(event(customer, local(PARIS, f"{month} 11:00"), "purchase", "P1", revenue=400.0))
    refused = local(PARIS, "2026-03-04 11:30")
    shop.post(event(customer, refused, "call_refused", channel="call_centre"))
    answer = shop.decide(
        customer, refused + dt.timedelta(days=3), actions=["reactivation_call", "reactivation"]
    )
    assert codes(answer, "reactivation_call") == ["refusal_cooldown"]
    assert "silence until 2026-05-03" in message(answer, "reactivation_call")
    assert [a["channel"] for a in contacts(answer)] in ([], ["email"])
    later = shop.decide(customer, refused + dt.timedelta(days=61), actions=["reactivation_call"])
    assert "refusal_cooldown" not in codes(later, "reactivation_call")


def test_a_dismissed_push_rests_push_for_a_week_not_email(shop: Shop) -> None:
    """A push swiped away (Segment's "Push Notification Dismissed", the contract's
    ``message_dismissed``), then a cart: push rests for its refusal cool-down of 7 days
    and the reminder goes by e-mail; a week later push may go again. Before, only a
    refused call or a complaint was a refusal: a dismissed push changed nothing."""
    at = local(PARIS, "2026-03-04 09:00")
    customer = shop.signup(at - dt.timedelta(days=30), consents=("email", "push"))
    dismissed = at - dt.timedelta(days=2)
    shop.post(track(customer, dismissed, "Push Notification Dismissed"))
    shop.post(event(customer, at, "add_to_cart", "P1"))
    answer = shop.decide(customer, at + dt.timedelta(hours=2), actions=["cart_reminder_1"])
    chosen = the_action(answer)
    assert (chosen["action_id"], chosen["channel"]) == ("cart_reminder_1", "email")
    assert "push (refusal_cooldown)" in " ".join(chosen["reasons"])
    later = at + dt.timedelta(days=6)
    shop.post(event(customer, later - dt.timedelta(hours=1), "purchase", "P1", revenue=40.0))
    shop.post(event(customer, later, "add_to_cart", "P2"))
    again = shop.decide(
        customer, later + dt.timedelta(hours=1), actions=["cart_reminder_1"], channel="push"
    )
    assert [a["channel"] for a in contacts(again)] == ["push"], again["rejected"]


# ---------------------------------------------------------------- the wallet


def test_no_consent_and_no_wallet_pass_means_nothing_outbound_on_a_birthday(shop: Shop) -> None:
    """Every consent refused, a birthday in four days: nothing goes out (the wishes used to
    go on a wallet pass the customer never added), and every channel says why."""
    now = local(PARIS, "2026-04-08 10:00")
    customer = shop.signup(now - dt.timedelta(days=100), consents=(), birthday=dt.date(1990, 4, 12))
    shop.post(event(customer, now - dt.timedelta(days=40), "purchase", "P1"))
    answer = shop.decide(customer, now)
    assert contacts(answer) == []
    assert codes(answer, "birthday") == ["no_consent"] * 3
    assert "holds no wallet pass" in message(answer, "birthday")


def test_a_wallet_pass_holder_gets_the_birthday_on_the_wallet(shop: Shop) -> None:
    """The same customer with the loyalty card added to their wallet: the wishes go on it,
    within the wallet's hours and before the day."""
    now = local(PARIS, "2026-04-08 10:00")
    customer = shop.signup(now - dt.timedelta(days=100), consents=(), birthday=dt.date(1990, 4, 12))
    shop.post(event(customer, now - dt.timedelta(days=40), "purchase", "P1"))
    shop.post(
        {
            **track(customer, now - dt.timedelta(days=20), "Wallet Pass Added"),
            "context": {"channel": "mobile"},
        }
    )
    assert profile_of(shop, customer, now)["consents"]["wallet"] is True
    chosen = shop.first_contact(customer, now, actions=["birthday"])
    assert (chosen["action_id"], chosen["channel"]) == ("birthday", "wallet")
    assert 9 <= send_local(chosen).hour < 21 and send_local(chosen).date() <= dt.date(2026, 4, 12)


def test_loyalty_tier_reached_goes_by_a_consented_channel(shop: Shop) -> None:
    """A ``Loyalty Tier Reached`` (gold) for an e-mail-only customer without a wallet pass:
    the congratulations by e-mail, the wallet closed."""
    now = local(PARIS, "2026-03-04 11:00")
    customer = shop.signup(now - dt.timedelta(days=300), consents=("email",))
    shop.post(event(customer, now - dt.timedelta(days=30), "purchase", "P1"))
    shop.post(track(customer, now - dt.timedelta(hours=3), "Loyalty Tier Reached", tier="gold"))
    chosen = shop.first_contact(customer, now, actions=["loyalty_tier_reached"])
    assert (chosen["action_id"], chosen["channel"]) == ("loyalty_tier_reached", "email")
    assert "wallet (no_consent)" in " ".join(chosen["reasons"])


# ---------------------------------------------------------------- time


@pytest.mark.parametrize(
    ("zone", "added", "asked", "channel", "sent"),
    [
        # Saturday night before the spring change in Paris: Sunday 09:00 is 07:00 UTC
        (PARIS, "2026-03-28 21:30", "2026-03-28 23:30", "push", "2026-03-29 09:00+02:00"),
        # and before the autumn one: 08:00 UTC
        (PARIS, "2026-10-24 21:30", "2026-10-24 23:30", "push", "2026-10-25 09:00+01:00"),
        # Los Angeles springs forward on 8 March
        (LOS_ANGELES, "2026-03-07 22:15", "2026-03-07 23:20", "push", "2026-03-08 09:00-07:00"),
        # UTC+14: Sunday morning there is Saturday in UTC, and SMS never goes on Sunday
        (
            "Pacific/Kiritimati",
            "2026-03-08 09:00",
            "2026-03-08 10:30",
            "sms",
            "2026-03-09 08:00+14:00",
        ),
        # UTC-10: Saturday evening there is Sunday in UTC; SMS goes at once
        (
            "Pacific/Honolulu",
            "2026-03-07 18:00",
            "2026-03-07 19:30",
            "sms",
            "2026-03-07 19:30-10:00",
        ),
        (
            "Pacific/Tongatapu",
            "2026-03-04 15:00",
            "2026-03-04 17:00",
            "email",
            "2026-03-04 17:00+13:00",
        ),
        (
            "Asia/Kathmandu",
            "2026-03-04 05:00",
            "2026-03-04 06:10",
            "email",
            "2026-03-04 07:00+05:45",
        ),
        (
            "Pacific/Chatham",
            "2026-04-04 22:00",
            "2026-04-04 23:00",
            "email",
            "2026-04-05 07:00+12:45",
        ),
        # after Lord Howe's 30-minute change the local hours, not UTC's, are searched
        (
            "Australia/Lord_Howe",
            "2026-04-04 22:00",
            "2026-04-04 23:00",
            "email",
            "2026-04-05 07:00+10:30",
        ),
    ],
)
def test_a_night_cart_in_a_far_zone_or_across_a_clock_change_goes_at_the_local_opening(
    shop: Shop, zone: str, added: str, asked: str, channel: str, sent: str
) -> None:
    """A cart reminder asked outside the channel's hours goes at its next local opening, on
    the customer's calendar and clock (weekday, offset after a change), or at once."""
    start, now = local(zone, added), local(zone, asked)
    customer = shop.signup(start - dt.timedelta(days=30), timezone=zone, consents=(channel,))
    shop.post(event(customer, start, "add_to_cart", "P1"))
    chosen = the_action(shop.decide(customer, now, actions=["cart_reminder_1"]))
    assert (chosen["action_id"], chosen["channel"]) == ("cart_reminder_1", channel)
    expected = dt.datetime.fromisoformat(sent)
    assert send_local(chosen) == expected
    assert send_local(chosen).utcoffset() == expected.utcoffset()


@pytest.mark.parametrize(
    ("zone", "asked_utc"),
    [
        ("Pacific/Kiritimati", "2026-04-11T21:00:00+00:00"),  # 12 April 11:00 there
        ("Pacific/Honolulu", "2026-04-13T05:00:00+00:00"),  # 12 April 19:00 there
    ],
)
def test_birthday_wishes_on_the_local_day_when_utc_says_another(
    shop: Shop, zone: str, asked_utc: str
) -> None:
    """Asked on the birthday itself, in the customer's calendar, when UTC is the day before
    or after: the wishes go that same local day; the local day after, nothing."""
    now = dt.datetime.fromisoformat(asked_utc)
    customer = shop.signup(
        now - dt.timedelta(days=100),
        timezone=zone,
        consents=("email",),
        birthday=dt.date(1990, 4, 12),
    )
    shop.post(event(customer, now - dt.timedelta(days=40), "purchase", "P1"))
    chosen = the_action(shop.decide(customer, now, actions=["birthday"]))
    assert (chosen["action_id"], chosen["channel"]) == ("birthday", "email")
    assert send_local(chosen).date() == dt.date(2026, 4, 12)
    twin = shop.signup(
        now - dt.timedelta(days=100),
        timezone=zone,
        consents=("email",),
        birthday=dt.date(1990, 4, 12),
    )
    day_after = shop.decide(twin, now + dt.timedelta(days=1), actions=["birthday"])
    assert contacts(day_after) == [] and codes(day_after, "birthday") == ["not_eligible"]


def test_a_launch_is_never_scheduled_after_its_last_day(spring_shop: Shop) -> None:
    """A promotion lover asked at 22:30 on the launch's last day (it ends 23:59 UTC): the
    next e-mail or push moment is the next morning, after the end: nothing, and why. (The
    store's latest new arrival, the linen shorts, launched ten days earlier.)"""
    shop = spring_shop
    now = local(PARIS, "2026-04-30 22:30")
    customer = shop.signup(now - dt.timedelta(days=200), consents=("email", "push"))
    for day in ("2026-01-05", "2026-02-02", "2026-02-20", "2026-03-20"):
        shop.post(event(customer, local(PARIS, f"{day} 19:00"), "purchase", "P2", offer_id="O2"))
    answer = shop.decide(customer, now, actions=["new_collection_launch"])
    assert contacts(answer) == []
    assert codes(answer, "new_collection_launch") == [
        "no_send_slot",
        "no_send_slot",
        "channel_unavailable",
    ]
    assert "before the action expires at 2026-05-01 01:59 local time" in message(
        answer, "new_collection_launch"
    )
    earlier = shop.first_contact(
        customer, local(PARIS, "2026-04-30 10:00"), actions=["new_collection_launch"]
    )
    assert earlier["variant_id"] == "promotion_lover" and earlier["products"] == ["P4"]
    assert send_utc(earlier) <= dt.datetime(2026, 4, 30, 23, 59, 59, tzinfo=dt.UTC)


def test_browse_reminder_never_goes_the_next_morning(shop: Shop) -> None:
    """Twenty minutes on the trousers at 20:30, a push-only customer (push until 21:00):
    asked at 20:58 the reminder goes at once; a twin asked at 21:30 or later gets nothing,
    never a "this evening" message the next morning."""
    viewed = local(PARIS, "2026-03-06 20:30")
    dwell = {"properties": {"dwell_seconds": 600}}
    for asked in ("20:58", "21:30", "22:10"):
        customer = shop.signup(viewed - dt.timedelta(days=40), consents=("push",))
        shop.post(
            event(customer, viewed, "product_view", "P1", **dwell),
            event(customer, viewed + dt.timedelta(minutes=12), "product_view", "P1", **dwell),
        )
        now = local(PARIS, f"2026-03-06 {asked}")
        answer = shop.decide(customer, now, actions=["browse_reminder_evening"])
        if asked == "20:58":
            assert send_utc(the_action(answer)) == now
        else:
            assert contacts(answer) == []
            assert codes(answer, "browse_reminder_evening")[0] in ("no_send_slot", "not_eligible")


# ---------------------------------------------------------------- contact rules


def test_a_retried_decision_is_the_same_answer_and_counts_once(shop: Shop) -> None:
    """The journey tool retries a decision (same ``Idempotency-Key``): the same answer, and
    the e-mail it chose counts once toward the rolling cap."""
    customer = shop.signup(local(PARIS, "2026-02-01 10:00"), consents=("email",))
    added = local(PARIS, "2026-03-04 09:00")
    shop.post(event(customer, added, "add_to_cart", "P1"))
    now = added + dt.timedelta(hours=2)
    first = shop.decide(customer, now, idempotency_key=f"retry-{customer}")
    assert shop.decide(customer, now, idempotency_key=f"retry-{customer}") == first
    assert the_action(first)["channel"] == "email"
    # the cart emptied: its second reminder no longer holds the e-mail (nba.reserve)
    shop.post(event(customer, now + dt.timedelta(seconds=30), "remove_from_cart", "P1"))
    picks = shop.first_contact(
        customer, now + dt.timedelta(minutes=1), actions=["recommendations_weekly"]
    )
    assert "(1 email contact(s) in 24 hours, the cap is 1)" in picks["timing"]


def test_several_actions_in_one_answer_are_never_two_messages_at_once(shop: Shop) -> None:
    """A fresh cart, a purchase two days ago and a birthday in four days, five actions
    asked: at most one message per 12 hours, never two of one journey, and the cart
    reminder first: it loses worth by the hour, the birthday can wait (the reserve charges
    the birthday's send with the reminder's worth; before it, a Thompson draw the
    birthday led decided, so the test depended on the tests run before it)."""
    now = local(PARIS, "2026-04-08 10:00")
    customer = shop.signup(
        now - dt.timedelta(days=100),
        consents=("email", "push", "sms"),
        birthday=dt.date(1990, 4, 12),
    )
    shop.post(event(customer, now - dt.timedelta(days=2), "purchase", "P1"))
    shop.post(event(customer, now - dt.timedelta(hours=2), "add_to_cart", "P2"))
    answer = shop.decide(customer, now, max_actions=5)
    messages = contacts(answer)
    assert messages and messages[0]["action_id"] == "cart_reminder_1"
    for a, b in itertools.combinations(messages, 2):
        assert abs(send_utc(a) - send_utc(b)) >= dt.timedelta(hours=12), answer["actions"]
    ids = [a["action_id"] for a in messages]
    assert sum(i.startswith("cart_reminder") for i in ids) == 1, ids


def test_a_declared_channel_without_consent_is_never_used(shop: Shop) -> None:
    """Declares SMS as preferred but never opted in to SMS: the cart reminder goes by a
    consented channel, SMS says why."""
    now = local(PARIS, "2026-03-04 11:00")
    customer = shop.signup(now - dt.timedelta(days=30), consents=("email", "push"))
    shop.post(identify(customer, now - dt.timedelta(days=1), preferred_channel="sms"))
    shop.post(event(customer, now - dt.timedelta(hours=2), "add_to_cart", "P1"))
    chosen = the_action(shop.decide(customer, now, actions=["cart_reminder_1"]))
    assert chosen["action_id"] == "cart_reminder_1" and chosen["channel"] in ("email", "push")
    assert "sms (no_consent)" in " ".join(chosen["reasons"])


# ---------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    ("context", "named"),
    [
        ({"timestamp": "2026-03-04T10:00:00"}, "timestamp"),
        ({"actions": ["no_such_action"]}, "no_such_action"),
        ({"max_actions": 0}, "max_actions"),
        ({"channel": "fax"}, "channel"),
        ({"channel": "store"}, "'store' delivers no action"),  # was 200 and "do nothing"
    ],
)
def test_a_bad_decision_request_is_a_4xx_naming_the_field(
    shop: Shop, context: dict[str, Any], named: str
) -> None:
    response = shop.api.post(
        "/v1/decisions", json={"customer_id": "C-any", "context": context}, headers=shop.headers
    )
    assert response.status_code == 422, response.text
    assert named in response.text


def test_a_late_opt_in_never_reopens_a_newer_unsubscribe(shop: Shop) -> None:
    """Unsubscribed from e-mail at 10:00; an opt-in stamped 09:00 arrives afterwards (a
    slow system): e-mail stays closed. A new opt-in at 11:00 (an identify) reopens it."""
    at = local(PARIS, "2026-03-04 10:00")
    customer = shop.signup(at - dt.timedelta(days=30), consents=("email",))
    shop.post(event(customer, at - dt.timedelta(hours=3), "add_to_cart", "P1"))
    shop.post(event(customer, at, "unsubscribe", channel="email"))
    shop.post(event(customer, at - dt.timedelta(hours=1), "opt_in", channel="email"))
    closed = shop.decide(customer, at + dt.timedelta(minutes=30), actions=["cart_reminder_1"])
    assert contacts(closed) == [] and "no_consent" in codes(closed, "cart_reminder_1")
    shop.post(identify(customer, at + dt.timedelta(hours=1), consent_email=True))
    now = at + dt.timedelta(hours=1, minutes=5)
    chosen = the_action(shop.decide(customer, now, actions=["cart_reminder_1"]))
    assert (chosen["action_id"], chosen["channel"]) == ("cart_reminder_1", "email")
