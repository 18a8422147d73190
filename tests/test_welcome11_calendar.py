"""The welcome series counts the customer's local calendar days (issue 12, item 2:
welcome): a step planned "on day 7" goes on the seventh local day after the sign-up,
whatever the hour of the sign-up.

Counted in elapsed days, a customer who signed up at 23:00 was at 6.42 days at 09:00 on
their seventh local day, so the first-order welcome waited for day 8, while a 09:00
sign-up got it that morning. Built from raw contract events posted to the real API on a
real Redis (:mod:`tests.test_scenarios_api`), read as a marketer reads the answer.
"""

from __future__ import annotations

import datetime as dt

import pytest

from features.definitions import time_zone
from features.finalise import calendar_days_since
from tests.test_scenarios_api import HOUR, PARIS, Shop, codes, local, message, send_utc, shop

__all__ = ["shop"]

STEPS = ["welcome_1", "welcome_2", "welcome_3_first_order"]


@pytest.mark.parametrize("hour", ["09:00", "23:00"])
def test_day_7_of_the_welcome_series_is_the_seventh_local_day_whatever_the_sign_up_hour(
    shop: Shop, hour: str
) -> None:
    """Signed up on Monday 2 March (Paris) at 09:00 or at 23:00, the first two welcomes
    sent (the second at 18:00 on day 3 or 4): at 19:00 on Monday 9 March (local day 7;
    6 days 20 hours after a 23:00 sign-up, and 72 hours after the second welcome) the
    first-order welcome is not refused, and at 23:30 on Sunday 8 March (day 6) it is,
    naming ``sign_up_day >= 7`` and the customer's day."""
    signed = local(PARIS, f"2026-03-02 {hour}")
    customer = shop.signup(signed, consents=("email",))
    first = shop.first_contact(customer, signed + HOUR, actions=STEPS)
    assert first["action_id"] == "welcome_1"
    w1 = send_utc(first)
    second = shop.first_contact(customer, w1 + 73 * HOUR, actions=STEPS)
    assert second["action_id"] == "welcome_2"
    day_6 = shop.decide(customer, local(PARIS, "2026-03-08 23:30"), actions=STEPS)
    assert codes(day_6, "welcome_3_first_order") == ["not_eligible"]
    assert "sign_up_day >= 7 is false (sign_up_day is 6)" in message(day_6, "welcome_3_first_order")
    day_7 = shop.decide(customer, local(PARIS, "2026-03-09 19:00"), actions=STEPS)
    assert codes(day_7, "welcome_3_first_order") != ["not_eligible"], message(
        day_7, "welcome_3_first_order"
    )


def test_the_local_day_turns_at_the_customers_midnight_not_utc() -> None:
    """23:30 in Tokyo on 1 March is 14:30 UTC: the next local day starts 30 minutes
    later, 9.5 hours before UTC's."""
    tokyo = time_zone("Asia/Tokyo")
    signed = dt.datetime(2026, 3, 1, 23, 30, tzinfo=tokyo).timestamp()
    assert calendar_days_since(signed, dt.date(2026, 3, 1), tokyo) == 0
    assert calendar_days_since(signed, dt.date(2026, 3, 2), tokyo) == 1
    assert calendar_days_since(signed, dt.date(2026, 3, 2), dt.UTC) == 1
    assert calendar_days_since(signed, dt.date(2026, 3, 1), dt.UTC) == 0
