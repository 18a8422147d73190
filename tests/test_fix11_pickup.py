"""A click-and-collect pick-up is the order's fulfilment, not a purchase (issue 12, fix11
item 1).

A pick-up hands over what an earlier ``purchase`` (its properties saying
``{"fulfilment": "click_collect"}``) bought: like ``order_delivered`` it stamps the last
hand-over, the products handed over and the first and last pick-up, and never the
product's latest purchase. Before, it did: a return after a pick-up matched the pick-up's
moment instead of the order (its day held no purchase, so the refund took no revenue off),
and the recent purchases read the pick-up as a new purchase. Each situation is built from
raw contract events, posted to the real API on a real Redis and given to the batch build;
the two profiles must be the same, and say what a marketer expects.
"""

from __future__ import annotations

import uuid

from features.dataset import RetailDataset
from tests.test_fix10_returns import assert_same, batch_profile, online_profile
from tests.test_scenarios_api import (
    COLLECT,
    DAY,
    HOUR,
    PARIS,
    Shop,
    event,
    local,
    purchase,
    shop,
)

__all__ = ["shop"]


def test_a_return_after_a_pick_up_takes_back_the_order_and_its_revenue(
    shop: Shop, base: RetailDataset
) -> None:
    """Trousers ordered for click-and-collect on 2 March (59.90), a shirt bought in store
    on 3 March (59.90), the trousers picked up on 5 March and returned on 12 March. Read on
    14 March: one purchase of 59.90 (the shirt), the trousers sent back and not among the
    last purchases. Before, the return matched the pick-up's moment, a day without a
    purchase: the count fell but the trousers' 59.90 stayed in the revenue."""
    customer = f"PU{uuid.uuid4().hex[:8]}"
    ordered = local(PARIS, "2026-03-02 11:00")
    rows = [
        event(customer, ordered - HOUR, "product_view", "P1"),
        purchase(customer, ordered, "P1", properties=COLLECT),
        purchase(customer, ordered + DAY, "P2", channel="store"),
        event(
            customer, ordered + 3 * DAY + 6 * HOUR, "click_collect_pickup", "P1", channel="store"
        ),
        event(customer, ordered + 10 * DAY, "order_returned", "P1", channel="store"),
    ]
    shop.post(*rows)
    read = local(PARIS, "2026-03-14 10:00")
    online = online_profile(shop, customer, read)
    assert online["purchases_total"] == 1, online
    assert abs(online["revenue_total"] - 59.9) < 1e-6, online
    assert online["returned_products"] == ("P1",), online
    assert online["last_purchased_products"] == ("P2",), online
    assert online["last_delivery_returned"] is True, online  # the trousers handed over went back
    assert_same(online, batch_profile(base, rows, read))


def test_a_pick_up_is_no_new_purchase_moment(shop: Shop, base: RetailDataset) -> None:
    """Trousers ordered for click-and-collect on 2 March, a shirt bought on 3 March, the
    trousers picked up on 4 March. The latest purchase is the shirt, then the trousers
    (the order's moment, not the pick-up's), bought 2 days before the read; nothing went
    back, and the hand-over is the last delivery."""
    customer = f"PN{uuid.uuid4().hex[:8]}"
    ordered = local(PARIS, "2026-03-02 11:00")
    rows = [
        purchase(customer, ordered, "P1", properties=COLLECT),
        purchase(customer, ordered + DAY, "P2"),
        event(customer, ordered + 2 * DAY, "click_collect_pickup", "P1", channel="store"),
    ]
    shop.post(*rows)
    read = ordered + 3 * DAY
    online = online_profile(shop, customer, read)
    assert online["last_purchased_products"] == ("P2", "P1"), online
    assert online["purchases_total"] == 2, online
    assert abs(online["days_since_last_purchase"] - 2.0) < 1e-9, online
    assert online["last_delivery_returned"] is False, online
    assert_same(online, batch_profile(base, rows, read))
