"""A reminder whose worth fades is not held for tomorrow's best hour (issue 12, item 2).

The send-time search looked for the customer's best hour within a day of the first
allowed moment by the hour's response alone, though a cart reminder's response falls with
the cart's age (:func:`nba.ageing.cart_age_factor`, SaleCycle's 6.33 % an hour after
abandonment against 1.74 % after a day): the plain second reminder decided on Thursday at
16:30 for a customer seen once at 15:00 went on Friday at 15:00, 22.5 hours later. Now an
action whose worth fades takes the moment of most (the hour's response x the worth left
then): a later hour wins only if it is enough better to pay for the wait. An action whose
worth does not fade keeps the customer's best hour within the day.

Each situation is built from raw contract events posted to the real API on a real Redis
(the harness of ``tests/test_scenarios_api.py``); each answer is the first contact the
API chooses when asked again (exploration may pick doing nothing once).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from tests.test_scenarios_api import (
    DAY,
    HOUR,
    MINUTE,
    PARIS,
    Shop,
    event,
    local,
    send_local,
    shop,
)

__all__ = ["shop"]

CART = ["cart_reminder_1", "cart_reminder_2", "cart_reminder_2_discount"]


def _timing(chosen: dict[str, Any]) -> str:
    """The chosen action's send-time reason, as a marketer reads it."""
    [said] = [r for r in chosen["reasons"] if r.startswith("send_time: ")]
    return str(said)


def _cart_a_day_old(shop: Shop) -> tuple[str, dt.datetime]:
    """Trousers left in the cart on Wednesday at 15:00 (Paris), the first reminder at
    16:00 by e-mail (one e-mail a rolling day): the customer's only habit is 15:00."""
    added = local(PARIS, "2026-03-04 15:00")
    customer = shop.signup(added - 30 * DAY, consents=("email",))
    shop.post(event(customer, added, "add_to_cart", "P1"))
    first = shop.first_contact(customer, added + HOUR)
    assert (first["action_id"], first["channel"]) == ("cart_reminder_1", "email")
    return customer, added


def test_the_second_cart_reminder_on_thursday_afternoon_goes_that_evening(shop: Shop) -> None:
    """On Thursday at 16:30 the cart is a day old: the plain second reminder goes by
    e-mail that evening, not at 15:00 on Friday (22.5 hours later, the cart 48 hours old:
    0.77 of its worth left, for an hour the customer was seen at only once); the timing
    says it weighed the hour against the cart's age."""
    customer, added = _cart_a_day_old(shop)
    asked = added + DAY + 90 * MINUTE  # Thursday 16:30
    chosen = shop.first_contact(customer, asked, actions=CART)
    assert (chosen["action_id"], chosen["channel"]) == ("cart_reminder_2", "email")
    sent = send_local(chosen)
    assert sent.date() == dt.date(2026, 3, 5) and sent.hour >= 16, sent  # Thursday evening
    assert sent - asked.astimezone(sent.tzinfo) < 6 * HOUR
    assert "weighed against the cart's age" in _timing(chosen)


def test_a_cart_reminder_still_waits_half_an_hour_for_the_customers_active_hour(
    shop: Shop,
) -> None:
    """A customer who searches the shop every evening at 19:00, a cart left on Wednesday
    at 14:00: asked on Thursday at 18:30, the second reminder goes at 19:00, their active
    hour, 30 minutes away (all but 1 % of its worth left, answered about twice as well)."""
    added = local(PARIS, "2026-03-04 14:00")
    customer = shop.signup(added - 30 * DAY, consents=("email",))
    evenings = [local(PARIS, "2026-02-18 19:00") + day * DAY for day in range(14)]
    shop.post(*(event(customer, at, "search") for at in evenings))
    shop.post(event(customer, added, "add_to_cart", "P1"))
    asked = local(PARIS, "2026-03-05 18:30")
    chosen = shop.first_contact(customer, asked, actions=["cart_reminder_2"])
    assert (chosen["action_id"], chosen["channel"]) == ("cart_reminder_2", "email")
    assert send_local(chosen) == local(PARIS, "2026-03-05 19:00").astimezone(
        send_local(chosen).tzinfo
    )
    said = _timing(chosen)
    assert "the customer's most active hour in reach, weighed against the cart's age" in said


def test_the_weekly_picks_still_wait_for_the_customers_best_hour(shop: Shop) -> None:
    """The same customer and moment as the second reminder above, the weekly picks (worth
    the same tomorrow): they go at the customer's habitual 15:00 on Friday, as before, and
    their timing says nothing of a wait."""
    customer, added = _cart_a_day_old(shop)
    asked = added + DAY + 90 * MINUTE  # Thursday 16:30
    chosen = shop.first_contact(customer, asked, actions=["recommendations_weekly"])
    assert (chosen["action_id"], chosen["channel"]) == ("recommendations_weekly", "email")
    assert send_local(chosen) == local(PARIS, "2026-03-06 15:00").astimezone(
        send_local(chosen).tzinfo
    )
    assert "weighed against" not in _timing(chosen)
