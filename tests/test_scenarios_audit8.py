"""The playbook audited an eighth time (issue 12, item 2)."""

from __future__ import annotations

from pathlib import Path

from tests.test_scenarios_api import (
    DAY,
    MINUTE,
    PARIS,
    Shop,
    contacts,
    event,
    local,
    send_local,
    shop,
    the_action,
)
from tests.test_scenarios_supersession_api import shop_on

__all__ = ["shop", "shop_on"]


def test_an_unsubscribe_minutes_before_the_send_withdraws_it_with_supersession_on(
    shop_on: tuple[Shop, Path, str],
) -> None:
    """With supersession on (15 minutes' lead), a cart reminder scheduled by e-mail for
    07:00; the customer unsubscribes from e-mail at 06:50 and the journey tool asks at
    06:52 (8 minutes before the send): the reminder is withdrawn all the same."""
    shop = shop_on[0]
    left = local(PARIS, "2026-03-04 23:10")
    customer = shop.signup(left - 30 * DAY, consents=("email",))
    shop.post(event(customer, left, "add_to_cart", "P1"))
    first = shop.decide(customer, left + 70 * MINUTE)
    chosen = the_action(first)
    assert (chosen["action_id"], chosen["channel"]) == ("cart_reminder_1", "email")
    assert send_local(chosen).hour == 7
    shop.post(event(customer, local(PARIS, "2026-03-05 06:50"), "unsubscribe", channel="email"))
    again = shop.decide(customer, local(PARIS, "2026-03-05 06:52"))
    assert again["replaces"] == [first["decision_id"]], again
    assert contacts(again) == []
