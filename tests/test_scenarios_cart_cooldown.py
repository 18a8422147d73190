"""A cart reminder's cool-down holds back the same cart, not the next one (issue 12, item 2).

``cart_reminder_1`` has a 72-hour cool-down. A marketer reads it as "never remind the
same cart twice", not "no reminder for any cart for three days": a cart the customer
adds to after the reminder went (the reminded one bought, or left and added to again)
is a new trigger and gets its first reminder; the contact caps and the gap between
messages still bound the pressure. The scope is the catalog's ``cooldown_scope``
(``cart`` by default for cart reminders, ``customer`` for the others).

Every situation is built from raw contract events posted to the real API on a real
Redis, as in :mod:`tests.test_scenarios_audit3`.
"""

from __future__ import annotations

import datetime as dt

import pytest

from tests.test_scenarios_api import PARIS, Shop, codes, event, local, send_utc, shop, the_action

__all__ = ["shop"]  # the journey scenarios' app, shared

HOUR = dt.timedelta(hours=1)


def reminded(shop: Shop, customer: str, added: dt.datetime) -> dt.datetime:
    """The first reminder of the cart left at ``added``, asked an hour later: when it goes."""
    chosen = the_action(shop.decide(customer, added + HOUR, actions=["cart_reminder_1"]))
    assert (chosen["action_id"], chosen["channel"]) == ("cart_reminder_1", "email")
    return send_utc(chosen)


@pytest.mark.parametrize("previous", ["bought", "left"])
def test_a_new_cart_within_the_cool_down_gets_its_first_reminder(shop: Shop, previous: str) -> None:
    """Monday 09:00 a cart, reminded at 10:00; the customer buys it in the afternoon (or
    leaves it). Tuesday 11:00 they add another product and leave: asked at 13:00, 27
    hours after the first reminder (within its 72-hour cool-down), the new cart gets its
    own first reminder, at once (the day's e-mail cap and the 12-hour gap have passed)."""
    customer = shop.signup(local(PARIS, "2026-01-10 10:00"), consents=("email",))
    first_cart = local(PARIS, "2026-03-02 09:00")
    shop.post(event(customer, first_cart, "add_to_cart", "P1"))
    first_sent = reminded(shop, customer, first_cart)
    if previous == "bought":
        shop.post(event(customer, local(PARIS, "2026-03-02 15:00"), "purchase", "P1"))
    second_cart = local(PARIS, "2026-03-03 11:00")
    shop.post(event(customer, second_cart, "add_to_cart", "P2"))
    now = second_cart + 2 * HOUR
    assert now - first_sent < dt.timedelta(hours=72)
    chosen = the_action(shop.decide(customer, now, actions=["cart_reminder_1"]))
    assert (chosen["action_id"], chosen["channel"]) == ("cart_reminder_1", "email")
    assert send_utc(chosen) == now


def test_the_same_cart_is_not_reminded_twice(shop: Shop) -> None:
    """The cart reminded at 10:00, nothing added since: asked again at 17:00 (seven hours
    old, still within the reminder's eligibility), the cool-down holds it back and says
    it is the same cart."""
    customer = shop.signup(local(PARIS, "2026-01-10 10:00"), consents=("email",))
    added = local(PARIS, "2026-03-02 09:00")
    shop.post(event(customer, added, "add_to_cart", "P1"))
    reminded(shop, customer, added)
    answer = shop.decide(customer, added + 8 * HOUR, actions=["cart_reminder_1"])
    assert codes(answer, "cart_reminder_1") == ["action_cooldown"]
    [rejection] = [r for r in answer["rejected"] if r["action_id"] == "cart_reminder_1"]
    assert "same cart" in rejection["message"]
