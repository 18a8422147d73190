"""The playbook audited an eighth time (issue 12, item 2).

Each situation is built from raw contract events (or Segment messages) posted to the
real API on a real Redis, and the answer is read as a marketer reads it: action,
channel, local send time, products, offer, reasons. The areas: consent withdrawn minutes
before a scheduled send with supersession on (unsubscribe, spam complaint, SMS STOP),
and the reminder carried by push; an unsubscribe clicked in the e-mail itself; a cart
sold out overnight; a journey tool asking twenty times a minute, and a campaign run
listing a customer three times; three actions asked at once; a 29 February birthday in
a leap year; customers with no time zone (Paris and Los Angeles retailers, a birthday
given without a zone); the evening the clocks go forward and the night they go back; a
second cart after an order; a browse of a category with nothing in stock; an order in
another currency; a private sale for one loyalty tier; the welcome series' third step;
an experiment file with typos.

Fixed here (each test failed before its fix):

* with ``supersede_lead_minutes`` set, a message scheduled on a channel whose consent was
  withdrawn less than the lead before its send was kept and went: unconsented sends are
  now withdrawn however close their send, with supersession on or off; with the
  scheduled record at hand its cool-down is given back, so a cart reminder withdrawn
  from e-mail goes by push (it kept the cool-down, and the cart was never reminded);
* the welcome series' first-order offer counted 96 hours from the second step's evening
  send, so a journey tool asking each morning reached it on day 8: it counts from the
  sign-up (day 7), at least 72 hours after the second step;
* a customer whose time zone no identify gave was served in UTC (a Paris night cart
  reminded at 08:00, quiet hours an hour late): the retailer's zone (the contact policy's
  ``timezone``) stands in;
* an order in another currency was added to the store's revenue: with ``NBA_CURRENCY``
  set it is refused naming ``properties.currency``;
* a rule comparing ``loyalty_tier`` with a tier there is not (``'Gold'``) loaded and
  reached no one: refused at load with the tier meant;
* the experiment file's unknown keys got no "did you mean" (the catalog's and the
  contact policy's do).
"""

from __future__ import annotations

import datetime as dt
import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from features.dataset import RetailDataset
from nba.catalog import CatalogError, parse_catalog
from serving.settings import EXAMPLES
from serving.startup import StartupError, load_experiment_setting
from tests.api_support import redis_client
from tests.test_scenarios_api import (
    DAY,
    HOUR,
    LOS_ANGELES,
    MINUTE,
    PARIS,
    SECOND,
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
from tests.test_scenarios_audit4 import view, wardrobe
from tests.test_scenarios_misfire import put_stock
from tests.test_scenarios_supersession_api import shop_on

__all__ = ["shop", "shop_on", "wardrobe"]


@pytest.mark.parametrize(
    ("channel", "opens", "withdrawal"),
    [
        ("email", "07:00", "unsubscribe"),
        ("email", "07:00", "complaint"),
        ("sms", "08:00", "sms_stop"),
    ],
)
def test_consent_withdrawn_minutes_before_the_send_withdraws_it_with_supersession_on(
    shop_on: tuple[Shop, Path, str], channel: str, opens: str, withdrawal: str
) -> None:
    """With supersession on (15 minutes' lead), a cart left at 23:10 is reminded when the
    channel opens in the morning. Ten minutes before, the customer unsubscribes (or marks
    an e-mail as spam, or answers STOP to an SMS); the journey tool asks two minutes
    later, eight minutes before the send: the reminder is withdrawn all the same, the
    answer names it and says the consent is gone, and nothing is sent instead on the
    channel withdrawn. Misfire: within the lead the scheduled message was kept, and went
    to a customer who had withdrawn their consent."""
    shop = shop_on[0]
    left = local(PARIS, "2026-03-04 23:10")
    customer = shop.signup(left - 30 * DAY, consents=(channel,))
    shop.post(event(customer, left, "add_to_cart", "P1"))
    first = shop.decide(customer, left + 70 * MINUTE)
    chosen = the_action(first)
    assert (chosen["action_id"], chosen["channel"]) == ("cart_reminder_1", channel)
    due = local(PARIS, f"2026-03-05 {opens}")
    assert send_utc(chosen) == due
    shop.post(event(customer, due - 10 * MINUTE, withdrawal, channel=channel))
    again = shop.decide(customer, due - 8 * MINUTE)
    assert again["replaces"] == [first["decision_id"]], again
    assert contacts(again) == []
    [why] = [r for r in the_action(again)["reasons"] if r.startswith("withdraws")]
    assert f"the {channel} message due" in why and "consent is gone" in why, why
    later = shop.decide(customer, due - 5 * MINUTE)
    assert later["replaces"] == [] and contacts(later) == []  # withdrawn once


def test_a_cart_sold_out_overnight_is_withdrawn_before_its_morning_send(
    shop_on: tuple[Shop, Path, str],
) -> None:
    """With supersession on, a cart reminder for the trousers due at 07:00; the stock
    system says they sold out at 06:00; asked at 06:10, the answer withdraws it, saying it
    could no longer go, and sends nothing about the trousers."""
    shop = shop_on[0]
    left = local(PARIS, "2026-03-04 23:10")
    customer = shop.signup(left - 30 * DAY, consents=("email",))
    shop.post(event(customer, left, "add_to_cart", "P1"))
    first = shop.decide(customer, left + 70 * MINUTE)
    assert send_local(the_action(first)).hour == 7
    try:
        assert put_stock(shop, "P1", 0).status_code == 200
        again = shop.decide(customer, local(PARIS, "2026-03-05 06:10"))
        assert again["replaces"] == [first["decision_id"]], again
        why = " ".join(again["actions"][0]["reasons"])
        assert "withdraws cart_reminder_1 by email" in why and "could no longer go" in why
        assert all("P1" not in a["products"] for a in again["actions"])
    finally:
        assert put_stock(shop, "P1", 10).status_code == 200


def test_twenty_asks_in_a_minute_send_one_message(shop: Shop) -> None:
    """A journey tool that asks on every page event: twenty requests within one minute
    (each its own key) for a customer whose cart was left an hour ago, every channel
    consented. One message in all; each later answer sends nothing and says why."""
    added = local(PARIS, "2026-03-04 15:00")
    customer = shop.signup(added - 30 * DAY, consents=("email", "sms", "push"))
    shop.post(event(customer, added, "add_to_cart", "P1"))
    sent = []
    for i in range(20):
        answer = shop.decide(customer, added + HOUR + i * 3 * SECOND)
        sent += contacts(answer)
        if i and not contacts(answer):
            assert answer["rejected"], answer
    assert len(sent) == 1, [(c["action_id"], c["channel"]) for c in sent]
    assert sent[0]["action_id"] == "cart_reminder_1"


def test_a_leap_day_birthday_is_wished_on_29_february_in_a_leap_year(shop: Shop) -> None:
    """Born on 29 February: in 2024 (a leap year) the wishes go in the week before the
    29th and land by it; on 1 March 2024 the day is past and no wishes go."""
    customer = shop.signup(
        local(PARIS, "2023-06-01 10:00"), consents=("email",), birthday=dt.date(1992, 2, 29)
    )
    shop.post(purchase(customer, local(PARIS, "2023-12-01 12:00"), "P2"))
    before = local(PARIS, "2024-02-26 10:00")
    chosen = shop.first_contact(customer, before, actions=["birthday"])
    assert chosen["action_id"] == "birthday"
    assert send_local(chosen).date() <= dt.date(2024, 2, 29)
    late = shop.signup(
        local(PARIS, "2023-06-01 10:00"), consents=("email",), birthday=dt.date(1992, 2, 29)
    )
    after = shop.decide(late, local(PARIS, "2024-03-01 10:00"), actions=["birthday"])
    assert contacts(after) == []
    assert codes(after, "birthday") == ["not_eligible"]


def test_a_customer_with_no_time_zone_gets_quiet_hours_of_the_retailer(shop: Shop) -> None:
    """Identified with no time zone: a cart left at 23:10 Paris time (the retailer's zone)
    is reminded at 07:00 Paris time the next morning, not at 23:10 (UTC's 22:10)."""
    customer = f"NZ{uuid.uuid4().hex[:8]}"
    left = local(PARIS, "2026-03-04 23:10")
    shop.post(
        identify(
            customer,
            left - 30 * DAY,
            createdAt=(left - 30 * DAY).isoformat(),
            consent_email=True,
        )
    )
    shop.post(event(customer, left, "add_to_cart", "P1"))
    chosen = shop.first_contact(customer, left + 70 * MINUTE)
    assert chosen["action_id"] == "cart_reminder_1"
    at = send_utc(chosen).astimezone(ZoneInfo(PARIS))
    assert at.strftime("%Y-%m-%d %H:%M") == "2026-03-05 07:00", chosen


def test_three_actions_asked_are_one_message_and_never_contradict(shop: Shop) -> None:
    """Asked for three actions at once, for customers in four situations (a day-old cart
    of a promotion lover, with a birthday in three days or not; a first order two days
    ago and the shirt browsed; a sign-up this morning), over several requests (whatever
    exploration draws): never two messages in one answer (one message per decision, the
    twelve hours between messages), never two actions on one channel at one hour, and
    never a full-price message showing a product the answer discounts."""
    added = local(PARIS, "2026-03-03 15:00")
    now = added + 26 * HOUR
    customers = []
    for birthday in (None, dt.date(1990, 3, 7)):
        lover = shop.signup(added - 200 * DAY, consents=("email", "push", "sms"), birthday=birthday)
        shop.post(
            *(
                purchase(lover, added - (120 - 20 * i) * DAY, "P2", offer_id="cart_10pct_48h")
                for i in range(4)
            ),
            event(lover, added, "add_to_cart", "P1"),
        )
        assert shop.first_contact(lover, added + HOUR)["action_id"] == "cart_reminder_1"
        customers.append(lover)
    buyer = shop.signup(added - 60 * DAY, consents=("email", "push"))
    shop.post(purchase(buyer, now - 2 * DAY, "P1"), view(buyer, now - 3 * HOUR, "P2", 900))
    customers += [buyer, shop.signup(now - 2 * HOUR, consents=("email", "push"))]
    for customer in customers:
        for _ in range(3):
            answer = shop.decide(customer, now, max_actions=3)
            chosen = contacts(answer)
            assert len(chosen) <= 1, [(c["action_id"], c["channel"]) for c in chosen]
            slots = [(c["channel"], send_utc(c).replace(minute=0, second=0)) for c in chosen]
            assert len(slots) == len(set(slots)), slots
            offered = {p for c in chosen if c["offer_id"] for p in c["products"]}
            assert all(c["offer_id"] or not offered & set(c["products"]) for c in chosen)
            if chosen:  # the message goes: the next requests see it sent
                break


def test_an_evening_shopper_hears_at_seven_on_the_new_clock_the_day_it_changes(
    shop: Shop,
) -> None:
    """All winter the customer shops at 19:00 Paris time (CET) and bought the trousers on
    Friday; asked on Sunday 29 March 2026 at 10:00, the morning the clocks go forward, the
    follow-up goes at 19:00 on the new clock (17:00 UTC), not at 20:00 (UTC's hour of
    their winter evenings)."""
    customer = shop.signup(local(PARIS, "2025-12-01 10:00"), consents=("email",))
    day = dt.date(2026, 1, 5)
    items = []
    while day < dt.date(2026, 3, 27):
        items.append(view(customer, local(PARIS, f"{day} 19:00"), "P2", 120))
        day += 3 * DAY
    items.append(purchase(customer, local(PARIS, "2026-03-27 19:10"), "P1"))
    shop.post(*items)
    now = local(PARIS, "2026-03-29 10:00")
    chosen = shop.first_contact(customer, now, actions=["cross_sell_after_purchase"])
    assert chosen["action_id"] == "cross_sell_after_purchase"
    assert send_local(chosen).strftime("%Y-%m-%d %H:%M %z") == "2026-03-29 19:00 +0200", chosen
    assert send_utc(chosen).hour == 17


def test_a_second_cart_after_an_order_is_reminded_and_an_order_ends_the_first(
    shop: Shop,
) -> None:
    """Two carts in a morning. The first: a shirt added at 09:00 and ordered at 09:30.
    The second: the trousers added at 10:00 and left. At 12:00 the reminder names the
    trousers alone. Another customer orders the shirt at 10:30 out of a cart holding both:
    an order placed since the cart was filled ends its journey, as journey tools end a
    cart flow on any order (the customer chose what to buy), and the reason names it."""
    morning = local(PARIS, "2026-03-04 09:00")
    customer = shop.signup(morning - 30 * DAY, consents=("email",))
    shop.post(
        event(customer, morning, "add_to_cart", "P2"),
        purchase(customer, morning + 30 * MINUTE, "P2"),
        event(customer, morning + HOUR, "add_to_cart", "P1"),
    )
    answer = shop.decide(customer, morning + 3 * HOUR, actions=["cart_reminder_1"])
    chosen = the_action(answer)
    assert (chosen["action_id"], chosen["products"]) == ("cart_reminder_1", ["P1"]), answer
    other = shop.signup(morning - 30 * DAY, consents=("email",))
    shop.post(
        event(other, morning, "add_to_cart", "P1"),
        event(other, morning + MINUTE, "add_to_cart", "P2"),
        purchase(other, morning + 90 * MINUTE, "P2"),
    )
    done = shop.decide(other, morning + 3 * HOUR, actions=["cart_reminder_1"])
    assert contacts(done) == []
    assert codes(done, "cart_reminder_1") == ["not_eligible"]
    assert "hours_since_last_purchase > cart_age_hours" in message(done, "cart_reminder_1")


def test_a_browse_of_trousers_none_in_stock_is_no_reminder_and_no_trousers_shown(
    wardrobe: Shop,
) -> None:
    """Twenty minutes on the black trousers this afternoon; the shop has no trousers left
    (black trousers and chinos sold out): no browse reminder this evening (the reason names
    the browse clause) and the picks show shirts and the belt, no trousers."""
    shop = wardrobe
    now = local(PARIS, "2026-03-06 16:00")
    customer = shop.signup(now - 60 * DAY, consents=("email",))
    shop.post(view(customer, now - 2 * HOUR, "P1", 1200))
    try:
        for product in ("P1", "P3"):
            assert put_stock(shop, product, 0).status_code == 200
        answer = shop.decide(customer, now, actions=["browse_reminder_evening"])
        assert contacts(answer) == []
        assert codes(answer, "browse_reminder_evening") == ["not_eligible"]
        assert "browsed_products" in message(answer, "browse_reminder_evening")
        picks = shop.decide(customer, now, actions=["recommendations_weekly"], channel="app")
        shown = {p for a in picks["actions"] for p in a["products"]}
        assert shown and not shown & {"P1", "P3"}, picks["actions"]
    finally:
        for product in ("P1", "P3"):
            assert put_stock(shop, product, 20).status_code == 200


def test_an_experiment_file_with_typos_names_each_with_the_key_meant(tmp_path: Path) -> None:
    """A marketer's experiment with a key, an arm's field, a guardrail's field and an arm
    kind misspelt: the API refuses to start, naming each and the key they meant, as the
    catalog and the contact policy do; a key like no known one lists the known ones."""
    text = (EXAMPLES / "experiment.yaml").read_text()
    for right, wrong in (
        ("salt:", "slat:"),
        (
            "allocation: 0.45\n    description: NextBestAction",
            "alocation: 0.45\n    description: NextBestAction",
        ),
        ("kind: control ", "kind: controll "),
        ("max_increase: 0.01", "max_increse: 0.01"),
    ):
        assert right in text, right
        text = text.replace(right, wrong, 1)
    text += "colour: red\n"
    path = tmp_path / "experiment.yaml"
    path.write_text(text)
    with pytest.raises(StartupError) as caught:
        load_experiment_setting(path)
    said = str(caught.value)
    for expected in (
        "field 'slat': unknown key (did you mean 'salt'?)",
        "field 'arms[0].alocation': unknown field (did you mean 'allocation'?)",
        "field 'arms[2].kind': unknown arm kind 'controll' (did you mean 'control'?)",
        "field 'guardrails[0].max_increse': unknown field (did you mean 'max_increase'?)",
        "field 'colour': unknown key (expected one of: version, name,",
    ):
        assert expected in said, said


@pytest.fixture(scope="module")
def euro_shop(base: RetailDataset, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Shop]:
    """The journeys' app of a retailer that sells in euros (``currency: EUR``)."""
    root = tmp_path_factory.mktemp("scenarios_euro")
    prefix = f"eur{uuid.uuid4().hex[:8]}"
    with open_shop(base, root, redis_client(root), prefix, currency="EUR") as opened:
        yield opened


def test_an_order_in_another_currency_is_refused_not_added_to_the_euros(euro_shop: Shop) -> None:
    """A euro store's Segment source sends one order in euros and one in dollars (a
    marketplace's), and the order system a purchase in pounds: the dollar and pound
    orders are refused one by one naming ``properties.currency`` and what to do, the
    euro order counts, so the revenue and the basket stay in euros."""
    shop = euro_shop
    at = local(PARIS, "2026-03-02 19:00")
    customer = shop.signup(at - 30 * DAY, consents=("email",))
    line = {"product_id": "P1", "price": 59.9, "quantity": 1}
    euros = track(
        customer,
        at,
        "Order Completed",
        order_id="A-1",
        revenue=59.9,
        currency="EUR",
        products=[line],
    )
    dollars = track(
        customer,
        at + HOUR,
        "Order Completed",
        order_id="A-2",
        revenue=6500.0,
        currency="USD",
        products=[line],
    )
    pounds = purchase(customer, at + 2 * HOUR, "P2", revenue=34.0, properties={"currency": "GBP"})
    body = post_raw(shop, euros, dollars, pounds)
    assert (body["accepted"], body["rejected"]) == (1, 2), body
    refused = {r["index"]: r for r in body["rejections"]}
    assert set(refused) == {1, 2}
    for r, said in ((refused[1], "'USD'"), (refused[2], "'GBP'")):
        assert r["field"] == "properties.currency", r
        assert said in r["message"] and "EUR" in r["message"] and "convert" in r["message"]
    seen = profile_of(shop, customer, at + 3 * HOUR)
    assert (seen["purchases_total"], seen["revenue_total"]) == (1, pytest.approx(59.9))


# ---------------------------------------------------------------- a segment's own action

VIP = """
version: 1
actions:
  - id: vip_private_sale
    type: offer
    description: Private sale for the gold tier only.
    channels: [email]
    eligibility: loyalty_tier == 'gold'
    value: 6
    template: vip_private_sale
  - id: newsletter
    type: content
    description: The monthly newsletter, for everyone.
    channels: [email]
    value: 0.5
    template: newsletter
  - {id: do_nothing, type: do_nothing, channels: [], value: 0}
"""


@pytest.fixture(scope="module")
def vip_shop(base: RetailDataset, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Shop]:
    """The journeys' app with a marketer's catalog whose private sale is for gold only."""
    root = tmp_path_factory.mktemp("scenarios_vip")
    catalog = root / "catalog.yaml"
    catalog.write_text(VIP)
    prefix = f"vip{uuid.uuid4().hex[:8]}"
    with open_shop(base, root, redis_client(root), prefix, catalog_path=catalog) as opened:
        yield opened


def test_a_private_sale_for_the_gold_tier_reaches_gold_only_and_says_why(
    vip_shop: Shop,
) -> None:
    """The private sale is written for the gold tier: a gold customer gets it; a silver
    one never does, and the sale's reason names the tier clause with their tier;
    the same catalog with the tier written 'Gold' is refused when loaded, naming the
    action, the value and the tier meant (misfire: it loaded, and the sale reached
    no one)."""
    shop = vip_shop
    now = local(PARIS, "2026-03-04 10:00")
    gold, silver = (shop.signup(now - 90 * DAY, consents=("email",)) for _ in range(2))
    shop.post(
        identify(gold, now - 30 * DAY, loyalty_tier="gold"),
        identify(silver, now - 30 * DAY, loyalty_tier="silver"),
    )
    assert shop.first_contact(gold, now)["action_id"] == "vip_private_sale"
    answer = shop.decide(silver, now)
    assert all(a["action_id"] != "vip_private_sale" for a in answer["actions"])
    assert codes(answer, "vip_private_sale") == ["not_eligible"]
    why = message(answer, "vip_private_sale")
    assert "loyalty_tier == 'gold'" in why and "silver" in why, why
    with pytest.raises(CatalogError) as caught:
        parse_catalog(VIP.replace("'gold'", "'Gold'"))
    said = str(caught.value)
    assert "action 'vip_private_sale', field 'eligibility'" in said, said
    assert "'Gold' is not a value of loyalty_tier (did you mean 'gold'?" in said, said


# ---------------------------------------------------------------- clocks and calendars


def test_a_cart_left_in_the_hour_that_happens_twice_goes_at_seven_after_the_change(
    shop: Shop,
) -> None:
    """Paris, the night of 25 October 2026: the clocks go back at 03:00 and 02:00-03:00
    happens twice. A cart left at 02:30 the second time (01:30 UTC), asked at 03:40: the
    reminder goes at 07:00 on the winter clock (06:00 UTC), not at 08:00."""
    left = dt.datetime(2026, 10, 25, 1, 30, tzinfo=dt.UTC)
    assert left.astimezone(ZoneInfo(PARIS)).strftime("%H:%M %z") == "02:30 +0100"
    customer = shop.signup(left - 30 * DAY, consents=("email",))
    shop.post(event(customer, left, "add_to_cart", "P1"))
    chosen = the_action(shop.decide(customer, left + 70 * MINUTE, actions=["cart_reminder_1"]))
    assert chosen["action_id"] == "cart_reminder_1"
    assert send_local(chosen).strftime("%Y-%m-%d %H:%M %z") == "2026-10-25 07:00 +0100"
    assert send_utc(chosen) == dt.datetime(2026, 10, 25, 6, tzinfo=dt.UTC)


# ---------------------------------------------------------------- the welcome series


WELCOME = ["welcome_1", "welcome_2", "welcome_3_first_order"]


def test_a_second_welcome_sent_late_keeps_three_days_before_the_offer(shop: Shop) -> None:
    """The first-order offer goes on day 7 after the sign-up (audit7's series), but not on
    the heels of a second step that went late: the journey tool did not ask on days 1-4,
    the second welcome went on day 5, and the offer waits three days after it."""
    signed = local(PARIS, "2026-03-02 09:00")
    customer = shop.signup(signed, consents=("email",))
    sent: dict[str, dt.datetime] = {}
    days: dict[str, int] = {}
    for day in (0, 5, 6, 7, 8, 9, 10, 11):
        for chosen in contacts(shop.decide(customer, signed + day * DAY + HOUR, actions=WELCOME)):
            sent[chosen["action_id"]] = send_utc(chosen)
            days[chosen["action_id"]] = day
    assert days["welcome_1"] == 0 and days["welcome_2"] == 5, days
    assert sent["welcome_3_first_order"] - sent["welcome_2"] >= 72 * HOUR, sent
    assert days["welcome_3_first_order"] <= 9, days


def test_a_birthday_given_without_a_zone_counts_the_retailer_s_days(shop: Shop) -> None:
    """An identify gives the birthday (12 April) but no time zone. At 00:30 on 12 April in
    Paris (22:30 UTC on the 11th), the retailer's day, the birthday is today, not
    tomorrow, and the wishes go today; the identify did not pin the customer to UTC."""
    customer = f"NZ{uuid.uuid4().hex[:8]}"
    signed = local(PARIS, "2025-10-01 10:00")
    shop.post(
        identify(
            customer,
            signed,
            createdAt=signed.isoformat(),
            birthday="1990-04-12",
            consent_email=True,
        )
    )
    shop.post(purchase(customer, local(PARIS, "2026-02-01 12:00"), "P2"))
    night = local(PARIS, "2026-04-12 00:30")
    seen = profile_of(shop, customer, night)
    assert (seen["timezone"], seen["days_to_birthday"]) == (PARIS, 0), seen["timezone"]
    chosen = shop.first_contact(customer, night, actions=["birthday"])
    assert chosen["action_id"] == "birthday"
    assert send_local(chosen).date() == dt.date(2026, 4, 12)


def test_a_campaign_run_listing_a_customer_three_times_sends_one_message(shop: Shop) -> None:
    """A journey tool's batch request lists the same customer three times (a campaign
    audience built from three segments): one answer sends the cart reminder, the two
    others send nothing and say why; retried with one key, the three answers are the same
    decision (one decision id: one message)."""
    added = local(PARIS, "2026-03-04 15:00")
    customer = shop.signup(added - 30 * DAY, consents=("email", "push"))
    shop.post(event(customer, added, "add_to_cart", "P1"))
    body = {"customer_ids": [customer] * 3, "context": {"timestamp": (added + HOUR).isoformat()}}
    response = shop.api.post("/v1/decisions/batch", json=body, headers=shop.headers)
    assert response.status_code == 200, response.text
    answers = response.json()["decisions"]
    sent = [c for a in answers for c in contacts(a)]
    assert [c["action_id"] for c in sent] == ["cart_reminder_1"], sent
    assert all(a["rejected"] for a in answers if not contacts(a))
    other = shop.signup(added - 30 * DAY, consents=("email", "push"))
    shop.post(event(other, added, "add_to_cart", "P1"))
    body["customer_ids"] = [other] * 3
    headers = {**shop.headers, "Idempotency-Key": f"campaign-{other}"}
    keyed = shop.api.post("/v1/decisions/batch", json=body, headers=headers).json()["decisions"]
    assert len({a["decision_id"] for a in keyed if contacts(a)}) == 1, keyed


def test_a_reminder_withdrawn_for_e_mail_goes_by_push_when_push_is_consented(
    shop_on: tuple[Shop, Path, str],
) -> None:
    """With supersession on, the same night cart of a customer who also takes pushes: the
    07:00 e-mail is withdrawn when they unsubscribe from e-mail at 06:50, and the same
    answer carries the reminder by push when push opens (09:00): the e-mail never went,
    so the cart was never reminded."""
    shop = shop_on[0]
    left = local(PARIS, "2026-03-04 23:10")
    customer = shop.signup(left - 30 * DAY, consents=("email", "push"))
    shop.post(event(customer, left, "add_to_cart", "P1"))
    first = shop.decide(customer, left + 70 * MINUTE)
    sent = the_action(first)
    assert (sent["action_id"], sent["channel"]) == ("cart_reminder_1", "email")
    due = local(PARIS, "2026-03-05 07:00")
    assert send_utc(sent) == due
    shop.post(event(customer, due - 10 * MINUTE, "unsubscribe", channel="email"))
    again = shop.decide(customer, due - 8 * MINUTE)
    assert again["replaces"] == [first["decision_id"]], again
    chosen = the_action(again)
    assert (chosen["action_id"], chosen["channel"]) == ("cart_reminder_1", "push"), again
    assert send_local(chosen).strftime("%H:%M") == "09:00"


@pytest.fixture(scope="module")
def la_shop(base: RetailDataset, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Shop]:
    """The journeys' app of a retailer in Los Angeles (its contact policy's timezone)."""
    root = tmp_path_factory.mktemp("scenarios_la")
    text = (EXAMPLES / "contact_policy.yaml").read_text()
    assert "timezone: Europe/Paris" in text
    policy = root / "contact_policy.yaml"
    policy.write_text(text.replace("timezone: Europe/Paris", f"timezone: {LOS_ANGELES}", 1))
    prefix = f"la{uuid.uuid4().hex[:8]}"
    with open_shop(base, root, redis_client(root), prefix, contact_policy_path=policy) as opened:
        yield opened


def test_a_los_angeles_retailer_s_customer_with_no_zone_is_not_e_mailed_at_night(
    la_shop: Shop,
) -> None:
    """A Los Angeles retailer's customer identified with no time zone leaves a cart at
    22:10 local time (06:10 UTC): the reminder waits for 07:00 in Los Angeles, never goes
    at 23:10 local (UTC's morning). Misfire: taken for a UTC customer, they were e-mailed
    an hour before midnight."""
    shop = la_shop
    customer = f"NZ{uuid.uuid4().hex[:8]}"
    left = local(LOS_ANGELES, "2026-03-04 22:10")
    signed = left - 30 * DAY
    shop.post(identify(customer, signed, createdAt=signed.isoformat(), consent_email=True))
    shop.post(event(customer, left, "add_to_cart", "P1"))
    chosen = the_action(shop.decide(customer, left + 70 * MINUTE, actions=["cart_reminder_1"]))
    assert (chosen["action_id"], chosen["channel"]) == ("cart_reminder_1", "email")
    assert send_local(chosen).strftime("%Y-%m-%d %H:%M") == "2026-03-05 07:00", chosen
    assert send_utc(chosen).astimezone(ZoneInfo(LOS_ANGELES)).hour == 7


def test_features_show_reads_a_customer_with_no_zone_in_the_retailer_s(
    la_shop: Shop, tmp_path: Path
) -> None:
    """``nba features show`` of a customer the API knows with no time zone shows the
    retailer's zone (the contact policy's, as the API serves them), not UTC: the hours a
    marketer reads there are the hours the decisions use."""
    from typer.testing import CliRunner

    from cli.main import app

    shop = la_shop
    customer = f"NZ{uuid.uuid4().hex[:8]}"
    signed = local(LOS_ANGELES, "2026-03-04 12:00")
    shop.post(identify(customer, signed, createdAt=signed.isoformat(), consent_email=True))
    settings = shop.api.app.state.runtime.settings  # type: ignore[attr-defined]
    url = os.environ.get("NBA_TEST_REDIS_URL")
    where = ["--redis-url", url] if url else ["--data-dir", str(settings.data_dir / "redis")]
    products = tmp_path / "shop"
    products.mkdir()
    (products / "products.parquet").write_bytes(settings.products_path.read_bytes())
    args = ["features", "show", customer, "--data", str(products), *where]
    args += ["--redis-prefix", settings.redis_prefix, "--at", "2026-03-05T12:00:00Z"]
    shown = CliRunner().invoke(app, [*args, "--contact-policy", str(settings.contact_policy_path)])
    assert shown.exit_code == 0, shown.output
    assert _zone_row(shown.output) == LOS_ANGELES, shown.output
    in_paris = CliRunner().invoke(app, args)  # the example retailer's policy: Paris
    assert in_paris.exit_code == 0 and _zone_row(in_paris.output) == PARIS, in_paris.output


def _zone_row(table: str) -> str:
    """The time zone row's value in ``nba features show``'s table."""
    row = next(line for line in table.splitlines() if "time zone" in line)
    return row.split("time zone")[1].strip(" │|").strip()


def test_an_unsubscribe_clicked_in_the_e_mail_closes_e_mail_not_push(shop: Shop) -> None:
    """The customer clicks "unsubscribe" in Tuesday's e-mail (Segment's ``Unsubscribed``,
    sent by the e-mail platform with no context channel, naming the decision it
    answers): e-mail's consent is withdrawn, push's, which they still take, stays, and
    the next day nothing goes by e-mail."""
    now = local(PARIS, "2026-03-04 10:00")
    customer = shop.signup(now - 90 * DAY, consents=("email", "push"))
    shop.post(purchase(customer, now - 2 * DAY, "P1"))
    sent = shop.decide(customer, now - DAY, actions=["cross_sell_after_purchase"], channel="email")
    [mail] = contacts(sent)
    shop.post(
        event(
            customer,
            send_utc(mail),
            "message_sent",
            channel="email",
            decision_id=sent["decision_id"],
        ),
        {
            "type": "track",
            "event": "Unsubscribed",
            "userId": customer,
            "messageId": f"u-{uuid.uuid4().hex[:8]}",
            "timestamp": (send_utc(mail) + HOUR).isoformat(),
            "properties": {"decision_id": sent["decision_id"]},
        },
    )
    consents = profile_of(shop, customer, now + DAY)["consents"]
    assert (consents["email"], consents["push"]) == (False, True), consents
    answer = shop.decide(customer, now + DAY)
    assert all(c["channel"] != "email" for c in contacts(answer)), answer
