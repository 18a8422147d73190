"""The playbook audited a ninth time (issue 12, item 2).

Each situation is built from raw contract events posted to the real API on a real Redis,
and the answer is read as a marketer reads it: action, channel, local send time,
products, reasons. The areas: a journey tool asking at 08:00, 12:00, 16:00 and 19:00
local through one day while a cart, an order and a browse arrive between its calls; a
customer whose ``identify`` moves them to another time zone between a decision and its
send (with supersession on and off); what a cool-down says of a message scheduled and
not yet sent; a look at a product bought last week, a browse followed by an order of
another product of the same category; a birthday given without a year; customer ids a journey tool
really sends (a space around them, blank, a name, unicode).

Fixed here (each test failed before its fix):

* a cart reminder set for 07:00 in Paris still went at 07:00 Paris time after the CRM
  moved the customer to New York: 01:00 there, inside the e-mail's quiet hours. A
  scheduled message whose send now falls outside its channel's hours in the customer's
  zone is withdrawn by their next decision, like one whose consent is gone
  (``features.online.supersession.unsendable_sends``); with supersession on its record
  gives everything back and the same answer sends it at an hour of the new zone;
* a message decided for later and not yet sent was "sent -5 hours ago" in the
  cool-down's reason; it is "scheduled to go in 5.3 hours";
* a look at the trousers bought last week (the care label, the size guide) was reminded
  that evening as a browse left behind, showing the trousers: products bought lately
  (``last_purchased_products``) are no browsed products to remind of, as the picks leave
  them out (``StockLevels.sellable``, which the API, ``nba decide`` and the OPE replay
  all decide through);
* a customer id with a space around it (``" C1"``) was accepted as another customer than
  the files' ``C1`` (files are read stripped), and a blank one (``"  "``) as a customer
  at all: both are refused naming ``customer_id``, the good events beside them kept.

Left as a strict xfail (the example catalog's browse eligibility): a customer who looked
at the black trousers and then bought the chinos is reminded of the trousers that
evening. An order since the last view ending the reminder (as an order ends the cart
reminders, and as the browse-abandonment flows' standard exit, "placed order since
starting this flow", does) cost the engine 1.1-4.4 % of its true incremental margin in
the closed loop (600 customers x 30 days, seeds 0-3), whose truth gives a browse
reminder after an order the same response as any other: the world would need to say
first whether an order ends the intent a browse showed.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import uuid
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from cli.main import app as nba_cli
from features.dataset import RetailDataset, write_dataset
from tests.test_scenarios import customer as customers_row
from tests.test_scenarios_api import (
    DAY,
    HOUR,
    MINUTE,
    PARIS,
    Shop,
    codes,
    contacts,
    event,
    identify,
    local,
    message,
    purchase,
    send_local,
    send_utc,
    shop,
    the_action,
)
from tests.test_scenarios_audit import post_raw
from tests.test_scenarios_audit4 import view, wardrobe
from tests.test_scenarios_audit6 import _contract_rows, _ruled_out
from tests.test_scenarios_supersession_api import shop_on

__all__ = ["shop", "shop_on", "wardrobe"]

NEW_YORK = "America/New_York"


def test_a_journey_tool_asking_four_times_a_day_sends_one_message_and_says_why_not_more(
    shop: Shop,
) -> None:
    """A journey tool asks at 08:00, 12:00, 16:00 and 19:00 (Paris) on a Wednesday; a cart
    is left at 07:30, bought at 13:00, and a shirt looked at for ten minutes at 15:00. At
    08:00 the cart is too fresh and nothing else may take the channel it needs; at 12:00
    the plain reminder goes at once; at 16:00 and 19:00 the evening's browse reminder has
    no send slot (twelve hours between messages) and nothing else goes: one message in
    the day, no action twice, nothing withdrawn."""
    z = PARIS
    customer = shop.signup(local(z, "2026-02-01 10:00"), consents=("email", "push", "sms"))
    shop.post(event(customer, local(z, "2026-03-04 07:30"), "add_to_cart", "P1"))
    morning = shop.decide(customer, local(z, "2026-03-04 08:00"))
    assert contacts(morning) == []
    assert codes(morning, "cart_reminder_1") == ["not_eligible"]
    noon = shop.decide(customer, local(z, "2026-03-04 12:00"))
    reminder = the_action(noon)
    assert reminder["action_id"] == "cart_reminder_1" and reminder["offer_id"] is None
    assert send_utc(reminder) == local(z, "2026-03-04 12:00")
    shop.post(purchase(customer, local(z, "2026-03-04 13:00"), "P1"))
    shop.post(view(customer, local(z, "2026-03-04 15:00"), "P2", 600))
    sent = [reminder]
    for hour in ("16:00", "19:00"):
        later = shop.decide(customer, local(z, f"2026-03-04 {hour}"))
        assert later["replaces"] == []
        sent += contacts(later)
        assert set(codes(later, "browse_reminder_evening")) == {"no_send_slot"}, hour
    assert [s["action_id"] for s in sent] == ["cart_reminder_1"]


def test_a_move_to_new_york_before_a_morning_send_sends_it_at_an_hour_of_the_new_zone(
    shop_on: tuple[Shop, object, str],
) -> None:
    """With supersession on: a cart left at 23:10 in Paris is reminded by e-mail at 07:00
    Paris. At 02:00 Paris the CRM moves the customer to New York (their ``identify``'s
    zone), where 07:00 Paris is 01:00. Asked again, the answer withdraws the 07:00 e-mail,
    saying it would reach them at 01:00 outside the e-mail's hours, and sends the reminder
    now, on the New York evening (19:40 there), once. Misfire: the e-mail stayed, and went
    at 01:00 New York time."""
    shop = shop_on[0]
    left = local(PARIS, "2026-03-04 23:10")
    customer = shop.signup(left - 30 * DAY, consents=("email",))
    shop.post(event(customer, left, "add_to_cart", "P1"))
    first = shop.decide(customer, left + 70 * MINUTE)
    assert send_utc(the_action(first)) == local(PARIS, "2026-03-05 07:00")
    shop.post(identify(customer, left + 2 * HOUR, timezone=NEW_YORK))
    again = shop.decide(customer, left + 150 * MINUTE)
    assert again["replaces"] == [first["decision_id"]], again
    chosen = the_action(again)
    assert (chosen["action_id"], chosen["channel"]) == ("cart_reminder_1", "email")
    sent_at = send_local(chosen)
    assert str(sent_at.tzinfo) != "UTC" and 7 <= sent_at.hour < 22, sent_at
    assert sent_at.utcoffset() == dt.timedelta(hours=-5)
    [why] = [r for r in chosen["reasons"] if r.startswith("withdraws")]
    assert "01:00" in why and NEW_YORK in why and "email's hours (07:00-22:00)" in why, why
    after = shop.decide(customer, left + 160 * MINUTE)
    assert after["replaces"] == [] and contacts(after) == []


def test_a_move_to_new_york_withdraws_the_night_send_with_supersession_off(shop: Shop) -> None:
    """The same move with the contact policy as shipped (supersession off): the 07:00 Paris
    e-mail, 01:00 in New York, is withdrawn (named in ``replaces``, the reason says why)
    and nothing goes at night; the cart's first reminder keeps its cool-down (without the
    scheduled record the engine cannot tell what it changed, and errs on sending less)."""
    left = local(PARIS, "2026-03-04 23:10")
    customer = shop.signup(left - 30 * DAY, consents=("email",))
    shop.post(event(customer, left, "add_to_cart", "P1"))
    first = shop.decide(customer, left + 70 * MINUTE)
    due = send_utc(the_action(first))
    shop.post(identify(customer, left + 2 * HOUR, timezone=NEW_YORK))
    again = shop.decide(customer, left + 150 * MINUTE)
    assert again["replaces"] == [first["decision_id"]], again
    why = " ".join(again["actions"][0]["reasons"])
    assert "outside email's hours" in why and NEW_YORK in why, why
    assert all(send_utc(c) != due for c in contacts(again))


def test_a_message_scheduled_for_the_morning_is_not_said_sent_hours_ago(shop: Shop) -> None:
    """A cart left at 23:10 is reminded at 07:00; asked again at 01:40, the reminder's
    cool-down says it is scheduled to go in 5.3 hours, not that it was "sent -5 hours
    ago"."""
    left = local(PARIS, "2026-03-04 23:10")
    customer = shop.signup(left - 30 * DAY, consents=("email",))
    shop.post(event(customer, left, "add_to_cart", "P1"))
    first = shop.decide(customer, left + 70 * MINUTE)
    assert send_local(the_action(first)).hour == 7
    again = shop.decide(customer, local(PARIS, "2026-03-05 01:40"))
    said = message(again, "cart_reminder_1")
    assert codes(again, "cart_reminder_1") == ["action_cooldown"]
    assert "scheduled to go in 5.3 hours" in said and "-" not in said.split(";")[0], said


def test_a_look_at_trousers_bought_last_week_is_no_browse_reminder(shop: Shop) -> None:
    """Trousers bought on Sunday, delivered on Tuesday; on Wednesday afternoon the customer
    looks at their page for ten minutes (the care label): no browse reminder that evening,
    and no message shows the trousers. The shirt looked at next is a browse left behind:
    the reminder is eligible again, and shows the shirt alone. Misfire: "still thinking about the black
    trousers?" to the customer who owns them."""
    z = PARIS
    customer = shop.signup(local(z, "2026-02-01 10:00"), consents=("email", "push"))
    shop.post(purchase(customer, local(z, "2026-03-01 10:00"), "P1"))
    shop.post(event(customer, local(z, "2026-03-03 10:00"), "order_delivered", "P1"))
    shop.post(view(customer, local(z, "2026-03-04 15:00"), "P1", 600))
    answer = shop.decide(customer, local(z, "2026-03-04 16:00"))
    assert codes(answer, "browse_reminder_evening") == ["not_eligible"], answer
    assert "len(browsed_products) is 0" in message(answer, "browse_reminder_evening")
    assert all("P1" not in a["products"] for a in answer["actions"])
    shop.post(view(customer, local(z, "2026-03-04 16:10"), "P2", 300))
    later = shop.decide(customer, local(z, "2026-03-04 16:20"))
    browse = [a for a in later["actions"] if a["action_id"] == "browse_reminder_evening"]
    if browse:
        assert browse[0]["products"] == ["P2"]
    else:  # eligible now (the shirt), whatever won
        assert "not_eligible" not in codes(later, "browse_reminder_evening"), later


def test_nba_decide_leaves_the_trousers_bought_out_of_the_browse_as_the_api_does(
    shop: Shop, base: RetailDataset, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same raw history posted to the API and written as a data set (trousers bought
    and delivered, their page looked at for ten minutes the next afternoon):
    ``nba features build`` then ``nba decide`` rule out the browse reminder as the API
    does, and neither shows the trousers."""
    z = PARIS
    now = local(z, "2026-03-04 16:00")
    signed = now - 60 * DAY
    customer = shop.signup(signed, consents=("email", "push"))
    posted = [
        purchase(customer, local(z, "2026-03-01 10:00"), "P1"),
        event(customer, local(z, "2026-03-03 10:00"), "order_delivered", "P1"),
        view(customer, local(z, "2026-03-04 15:00"), "P1", 600),
    ]
    shop.post(*posted)
    answer = shop.decide(customer, now, idempotency_key=f"owned-{customer}")
    row = customers_row(base, consents=("email", "push"), created_at=signed.isoformat())
    data = dataclasses.replace(
        base,
        customers=row.assign(customer_id=customer),
        events=_contract_rows(posted),
    )
    folder = tmp_path / "shop"
    write_dataset(data, folder)
    profiles, decided = tmp_path / "profiles.parquet", tmp_path / "decisions.parquet"
    monkeypatch.setenv("NBA_DATA_DIR", str(tmp_path))  # no registry: rule-based scores
    cli = CliRunner()
    build = ["features", "build", "--data", str(folder), "--out", str(profiles)]
    built = cli.invoke(nba_cli, [*build, "--as-of", now.isoformat()])
    assert built.exit_code == 0, built.output
    decide = ["decide", "--audience", str(profiles), "--now", now.isoformat()]
    ran = cli.invoke(
        nba_cli, [*decide, "--out", str(decided), "--workers", "1", "--rejected", "40"]
    )
    assert ran.exit_code == 0, ran.output
    batch = pd.read_parquet(decided).set_index("customer_id").loc[customer]
    assert "browse_reminder_evening" in _ruled_out(answer["rejected"])
    assert "browse_reminder_evening" in _ruled_out(json.loads(batch["rejected"]))
    assert all("P1" not in a["products"] for a in answer["actions"])
    assert "P1" not in list(batch["products"])


@pytest.mark.xfail(
    strict=True,
    reason="left open: the closed loop's truth values a browse reminder after an order as "
    "any other (no exit on a purchase): the exit cost the engine 1.1-4.4 % of its margin "
    "on seeds 0-3 (BENCHMARKS.md, issue 12, audit9)",
)
def test_an_order_placed_after_a_browse_ends_its_evening_reminder(wardrobe: Shop) -> None:
    """Friday: fifteen minutes on the black trousers at 14:00, then the chinos bought at
    15:00. The customer found their trousers: no browse reminder that evening, the reason
    names the clause (an order since the last view ends it, as an order ends the cart
    reminders). Back at 16:30 for five minutes on the black trousers: a new browse, and
    its reminder shows them. Misfire: "still thinking about the black trousers?" an hour
    after the chinos were bought."""
    shop, z = wardrobe, PARIS
    customer = shop.signup(local(z, "2026-02-01 10:00"), consents=("email", "push"))
    shop.post(view(customer, local(z, "2026-03-06 14:00"), "P1", 900))
    shop.post(purchase(customer, local(z, "2026-03-06 15:00"), "P3"))
    answer = shop.decide(customer, local(z, "2026-03-06 16:00"))
    assert codes(answer, "browse_reminder_evening") == ["not_eligible"], answer
    said = message(answer, "browse_reminder_evening")
    assert "hours_since_last_purchase > hours_since_last_browse is false" in said, said
    assert all("P1" not in a["products"] for a in answer["actions"])
    shop.post(view(customer, local(z, "2026-03-06 16:30"), "P1", 300))
    again = shop.first_contact(customer, local(z, "2026-03-06 16:40"))
    assert again["action_id"] == "browse_reminder_evening", again
    assert again["products"] == ["P1"] and send_local(again).hour >= 18


def test_a_birthday_given_without_a_year_is_wished_in_the_week_before_the_day(
    shop: Shop,
) -> None:
    """The CRM collects day and month only and sends ``--04-12`` (vCard's and ISO 8601's
    way), or ``04-12``: the identify is accepted with its zone and consents, and six days
    before the day the wishes go by e-mail, on or before 12 April (the action that
    ``days_to_birthday`` allows only in its week; the reasons' clause shows it). A day
    that is none (``02-30``) is refused naming ``traits.birthday``. Misfire: the identify
    was refused whole ("input is too short"), its consents and zone lost with it."""
    now = local(PARIS, "2026-04-06 10:00")
    for written in ("--04-12", "04-12"):
        customer = f"yearless-{uuid.uuid4().hex[:10]}"
        shop.post(
            identify(
                customer,
                now - 60 * DAY,
                timezone=PARIS,
                consent_email=True,
                createdAt=(now - 60 * DAY).isoformat(),
                birthday=written,
            )
        )
        shop.post(purchase(customer, now - 40 * DAY, "P1"))
        answer = shop.decide(customer, now, actions=["birthday"])
        wishes = the_action(answer)
        assert (wishes["action_id"], wishes["channel"]) == ("birthday", "email"), answer
        assert send_local(wishes).date() <= dt.date(2026, 4, 12)
        later = shop.decide(customer, now + 8 * DAY, actions=["birthday"])
        assert "days_to_birthday is 363" in message(later, "birthday"), later
    body = post_raw(shop, identify("yearless-bad", now, timezone=PARIS, birthday="02-30"))
    [refused] = body["rejections"]
    assert refused["field"] == "traits.birthday" and "'02-30'" in refused["message"], refused


def test_a_customer_id_with_a_space_around_it_or_blank_is_refused_naming_it(shop: Shop) -> None:
    """A journey tool's template pads an id (``" C1"``) or leaves it blank: each event is
    refused naming ``customer_id`` and what is wrong, the good events of the same batch
    are kept; a decision asked for a padded id is a 422 naming the field. A name with a
    space inside, or unicode, is an id like any other."""
    at = local(PARIS, "2026-03-04 10:00")
    good = shop.signup(at - DAY)
    body = post_raw(
        shop,
        event(f" {good}", at, "product_view", "P1"),
        event("   ", at, "product_view", "P1"),
        event(good, at, "product_view", "P1"),
        event("Jean Dupont", at, "product_view", "P1"),
        event("José-✓", at, "product_view", "P1"),
    )
    assert (body["accepted"], body["rejected"]) == (3, 2), body
    padded, blank = body["rejections"]
    assert (padded["index"], padded["field"]) == (0, "customer_id")
    assert "space" in padded["message"] and repr(f" {good}") in padded["message"]
    assert (blank["index"], blank["field"]) == (1, "customer_id")
    assert "blank" in blank["message"]
    response = shop.api.post(
        "/v1/decisions", json={"customer_id": f"{good} ", "context": {}}, headers=shop.headers
    )
    assert response.status_code == 422, response.text
    assert "customer_id" in response.text
    for customer in ("Jean Dupont", "José-✓"):
        assert shop.decide(customer, at + MINUTE, max_actions=1)["customer_id"] == customer
