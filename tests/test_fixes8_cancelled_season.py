"""Item 2 of fixes8, not fixed (left for a later pass, see BENCHMARKS.md "fixes8"): a
fully cancelled order still makes its day a shopping day for the seasonal test, so
orders placed and cancelled in one month can make it the customer's season. Built from
raw contract events through the real API on a real Redis. Fixed by season9: a day shopped
by purchases alone is withdrawn while the return window can undo its orders
(features.finalise.withdrawn_days).
"""

from __future__ import annotations

import datetime as dt

from tests.test_scenarios_api import DAY, PARIS, Shop, event, local, purchase, shop
from tests.test_scenarios_audit import profile_of
from tests.test_scenarios_audit4 import view

__all__ = ["shop"]


def _steady_with_december_orders(shop: Shop, cancelled: bool) -> str:
    """Known since February 2025, a visit on the 5th and the 20th of every month; eight
    orders in December 2025 (within the 90 days a cancellation can undo, asked on 5
    March) placed straight from the app (a purchase, nothing else that day), each
    cancelled (or not) the next morning."""
    customer = shop.signup(local(PARIS, "2025-02-01 10:00"), consents=("email",))
    items = []
    day = dt.date(2025, 2, 3)
    n = 0
    while day < dt.date(2026, 3, 1):  # in time order: the store replays a week behind
        if day.day in (5, 20):
            items.append(view(customer, local(PARIS, f"{day} 19:00"), "P2", 60))
        if day.year == 2025 and day.month == 12 and day.day in (6, 7, 9, 11, 13, 15, 17, 19):
            # a product of its own per order: the state keeps each product's latest purchase
            n += 1
            bought = f"X{n}"
            items.append(purchase(customer, local(PARIS, f"{day} 21:00"), bought, channel="app"))
            if cancelled:
                at = local(PARIS, f"{day} 21:00") + DAY / 2
                items.append(event(customer, at, "order_cancelled", bought))
        day += DAY
    shop.post(*items)
    return customer


def test_orders_kept_in_december_make_december_a_season(shop: Shop) -> None:
    """The twin that shows the setting can flag December: the orders were kept."""
    customer = _steady_with_december_orders(shop, cancelled=False)
    profile = profile_of(shop, customer, local(PARIS, "2026-03-05 10:00"))
    assert 12 in profile["seasonal_months"], profile["seasonal_months"]


def test_orders_all_cancelled_in_december_make_no_season(shop: Shop) -> None:
    customer = _steady_with_december_orders(shop, cancelled=True)
    now = local(PARIS, "2026-03-05 10:00")
    profile = profile_of(shop, customer, now)
    assert profile["purchases_total"] == 0
    assert profile["seasonal_months"] == [], profile["seasonal_months"]
