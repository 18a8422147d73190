"""The playbook audited a second time (issue 12, item 2), from the parts no scenario
drove end to end: lifecycle and journey phase, inbound placements, postal mail and the
call centre, offers' budgets and validity, products not yet launched, experiments from
configuration, explanations and bad input.

As in :mod:`tests.test_scenarios_audit`, every situation is built from raw contract
events or Segment messages posted to the real API on a real Redis, and the answer is read
as a marketer reads it: action, channel, local send time, offer, products, reasons.

Misfires found and fixed here:

* (none yet)
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from tests.test_scenarios_api import (
    PARIS,
    TOKYO,
    Shop,
    codes,
    contacts,
    event,
    local,
    message,
    send_local,
    send_utc,
    shop,
    the_action,
)
from tests.test_scenarios_audit import profile_of

__all__ = ["shop"]  # the journey scenarios' app, shared


def purchase(customer: str, at: dt.datetime, product: str = "P1", revenue: float = 59.9) -> Any:
    return event(customer, at, "purchase", product, revenue=revenue)


# ---------------------------------------------------------------- lifecycle and phase


def test_lifecycle_and_journey_phase_follow_the_customer(shop: Shop) -> None:
    """The profile read-out walks the journey: a sign-up is new and discovering; two
    products viewed, considering; a cart, deciding; a first order, recommending (review,
    cross-sell); a second order a month later and two quiet weeks, active and loyal; then
    quiet for 1.5 and 3 purchase gaps, at risk, then lapsed."""
    start = local(PARIS, "2026-01-05 10:00")
    customer = shop.signup(start, consents=("email",))
    seen = profile_of(shop, customer, start + dt.timedelta(hours=1))
    assert (seen["lifecycle_state"], seen["journey_phase"]) == ("new", "discovery")
    shop.post(
        event(customer, start + dt.timedelta(days=1), "product_view", "P1"),
        event(customer, start + dt.timedelta(days=1, minutes=3), "product_view", "P2"),
    )
    seen = profile_of(shop, customer, start + dt.timedelta(days=1, hours=1))
    assert (seen["lifecycle_state"], seen["journey_phase"]) == ("new", "consideration")
    shop.post(event(customer, start + dt.timedelta(days=1, minutes=5), "add_to_cart", "P1"))
    seen = profile_of(shop, customer, start + dt.timedelta(days=1, hours=1))
    assert seen["journey_phase"] == "decision"
    first = start + dt.timedelta(days=2)
    shop.post(purchase(customer, first))
    seen = profile_of(shop, customer, first + dt.timedelta(days=1))
    assert (seen["lifecycle_state"], seen["journey_phase"]) == ("new", "recommendation")
    second = first + dt.timedelta(days=30)
    shop.post(purchase(customer, second, "P2", 39.9))
    seen = profile_of(shop, customer, second + dt.timedelta(days=20))
    assert (seen["lifecycle_state"], seen["journey_phase"]) == ("active", "loyalty")
    seen = profile_of(shop, customer, second + dt.timedelta(days=50))
    assert seen["lifecycle_state"] == "at_risk"
    seen = profile_of(shop, customer, second + dt.timedelta(days=95))
    assert (seen["lifecycle_state"], seen["journey_phase"]) == ("lapsed", "lapse")


def test_reactivation_only_once_the_customer_is_lapsing(shop: Shop) -> None:
    """"We miss you" is for customers drifting away: not for an active customer two weeks
    after their order (the reason names the rule), yes once they are at risk."""
    customer = shop.signup(local(PARIS, "2025-10-01 10:00"), consents=("email",))
    bought = local(PARIS, "2025-11-03 12:00")
    shop.post(purchase(customer, bought - dt.timedelta(days=30)), purchase(customer, bought))
    active = shop.decide(customer, bought + dt.timedelta(days=20), actions=["reactivation"])
    assert contacts(active) == []
    assert codes(active, "reactivation") == ["not_eligible"]
    assert "lifecycle_state" in message(active, "reactivation")
    at_risk = shop.decide(customer, bought + dt.timedelta(days=60), actions=["reactivation"])
    chosen = the_action(at_risk)
    assert (chosen["action_id"], chosen["channel"]) == ("reactivation", "email")


def test_up_sell_after_purchases_for_a_loyal_high_basket_customer(shop: Shop) -> None:
    """Two orders of 120 a month apart, then three quiet weeks: a loyal customer with a
    high basket gets the premium line (up-sell); a customer of 40 baskets does not, and
    the reason names the basket rule."""
    bought = local(PARIS, "2026-02-02 12:00")
    rich, modest = (shop.signup(bought - dt.timedelta(days=90)) for _ in "ab")
    for customer, revenue in ((rich, 120.0), (modest, 40.0)):
        shop.post(
            purchase(customer, bought - dt.timedelta(days=30), revenue=revenue),
            purchase(customer, bought, "P2", revenue=revenue),
        )
    now = bought + dt.timedelta(days=21)
    assert profile_of(shop, rich, now)["journey_phase"] == "loyalty"
    chosen = the_action(shop.decide(rich, now, actions=["up_sell_premium"]))
    assert (chosen["action_id"], chosen["channel"]) == ("up_sell_premium", "email")
    assert 7 <= send_local(chosen).hour < 22
    answer = shop.decide(modest, now, actions=["up_sell_premium"])
    assert contacts(answer) == [] and codes(answer, "up_sell_premium") == ["not_eligible"]
    assert "average_basket" in message(answer, "up_sell_premium")


# ---------------------------------------------------------------- inbound placements


def visit(at: dt.datetime, channel: str = "web", product: str | None = None) -> dict[str, Any]:
    session: dict[str, Any] = {"channel": channel, "started_at": at.isoformat()}
    if product is not None:
        session["product_id"] = product
    return session


def test_an_on_site_placement_at_night_answers_at_once_without_consent(shop: Shop) -> None:
    """A customer who refused every outbound channel browses the site at 23:30 (every
    outbound channel is in its quiet hours): the placement answers now, on the web,
    with products, no consent needed for what they are looking at."""
    now = local(PARIS, "2026-03-04 23:30")
    customer = shop.signup(now - dt.timedelta(days=40), consents=())
    shop.post(event(customer, now - dt.timedelta(minutes=2), "product_view", "P1"))
    answer = shop.decide(customer, now, channel="web", session=visit(now, product="P1"))
    chosen = the_action(answer)
    assert chosen["channel"] == "web"
    assert chosen["action_id"] in {"cross_sell_on_site", "popular_on_site"}
    assert send_utc(chosen) == now
    assert send_local(chosen).strftime("%H:%M") == "23:30"
    assert chosen["products"], chosen


def test_a_placement_is_not_capped_by_the_days_messages_nor_counts_as_one(shop: Shop) -> None:
    """An app visit an hour after a cart is left gets its placement at once, and the
    placement is no message: the cart reminder still goes at once after it (no 12-hour
    gap between messages); once the day's e-mail has gone, a second visit still gets its
    placement at once."""
    added = local(PARIS, "2026-03-04 09:00")
    customer = shop.signup(added - dt.timedelta(days=40), consents=("email",))
    shop.post(event(customer, added, "add_to_cart", "P1"))
    first = added + dt.timedelta(minutes=90)
    placed = the_action(shop.decide(customer, first, channel="app", session=visit(first, "app")))
    assert placed["channel"] == "app" and send_utc(placed) == first
    now = added + dt.timedelta(hours=2)
    reminder = the_action(shop.decide(customer, now))
    assert (reminder["action_id"], reminder["channel"]) == ("cart_reminder_1", "email")
    assert send_utc(reminder) == now
    later = now + dt.timedelta(hours=1)
    again = the_action(shop.decide(customer, later, channel="app", session=visit(later, "app")))
    assert again["channel"] == "app" and send_utc(again) == later
