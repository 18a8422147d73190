"""Returns and cancellations read the same online and in batch, at any moment (issue 12,
fix10 items 1 and 2).

Each situation is built from raw contract events: posted to the real API on a real Redis
(the profile read back through ``GET /v1/customers/{id}/profile``), and given to the batch
build; the two profiles must be the same, and say what a marketer expects.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import pandas as pd

from features.batch import build_profiles
from features.contract import EVENTS
from features.dataset import RetailDataset
from features.validation import validate_table
from tests.helpers import PRIORS, with_events
from tests.test_scenarios_api import DAY, HOUR, PARIS, Shop, event, local, purchase, shop
from tests.test_scenarios_audit import profile_of

__all__ = ["shop"]

#: The profile fields a return or a cancellation changes.
RETURN_FIELDS = (
    "purchases_total",
    "revenue_total",
    "days_since_last_purchase",
    "last_purchased_products",
    "returned_products",
    "last_delivery_returned",
)


def batch_profile(
    base: RetailDataset, rows: list[dict[str, Any]], at: dt.datetime
) -> dict[str, Any]:
    """``customer``'s profile at ``at`` from the batch build of ``rows`` (API events), read
    as the tiny data set's customer ``C1``'s (the customers table's)."""
    frame = pd.DataFrame(
        [
            {
                **{name: None for name in EVENTS.names},
                **row,
                "customer_id": "C1",
                "timestamp": pd.Timestamp(row["timestamp"]),
            }
            for row in rows
        ],
        columns=EVENTS.names,
    )
    events = validate_table(frame, EVENTS, "fix10")
    build = build_profiles(with_events(base, events), as_of=at, priors=PRIORS)
    [profile] = [p for p in build.profiles if p.customer_id == "C1"]
    return {name: getattr(profile, name) for name in RETURN_FIELDS}


def online_profile(shop: Shop, customer: str, at: dt.datetime) -> dict[str, Any]:
    seen = profile_of(shop, customer, at)
    return {
        name: tuple(seen[name]) if isinstance(seen[name], list) else seen[name]
        for name in RETURN_FIELDS
    }


def assert_same(online: dict[str, Any], batch: dict[str, Any]) -> None:
    for name in RETURN_FIELDS:
        got, want = online[name], batch[name]
        if isinstance(want, float):
            assert abs(got - want) < 1e-6, (name, got, want)
        else:
            assert got == want, (name, got, want)


def test_a_refund_older_than_the_window_does_not_hide_a_later_cancellation(
    shop: Shop, base: RetailDataset
) -> None:
    """Trousers bought on 5 January, 10.00 refunded on 17 January (a price adjustment: the
    trousers are kept). Bought again on 15 April and the order cancelled that evening (a
    cancellation naming no product: the latest order). Read on 20 April, when the January
    refund is older than the 90-day return window: the April trousers are cancelled, not
    among the last purchases, and the profile online is the batch build's. The online
    store still held the January refund (it compacts once a day of event time), and read
    it as the moment the trousers went back: before their April purchase, so they showed
    as bought."""
    customer = f"RF{uuid.uuid4().hex[:8]}"
    first = local(PARIS, "2026-01-05 12:00")
    again = local(PARIS, "2026-04-15 12:00")
    rows = [
        event(customer, first - 30 * DAY, "product_view", "P2"),
        purchase(customer, first, "P1"),
        event(customer, first + 12 * DAY, "order_returned", "P1", revenue=10.0),
        purchase(customer, first + 30 * DAY, "P2"),
        purchase(customer, again, "P1"),
        event(customer, again + 8 * HOUR, "order_cancelled", None, channel="app"),
    ]
    shop.post(*rows)
    read = local(PARIS, "2026-04-20 10:00")
    online = online_profile(shop, customer, read)
    assert online["returned_products"] == ("P1",), online
    assert "P1" not in online["last_purchased_products"], online
    assert online["purchases_total"] == 2, online  # January's trousers and the shirt
    assert_same(online, batch_profile(base, rows, read))


def test_an_order_cancelled_then_placed_again_counts_once(shop: Shop, base: RetailDataset) -> None:
    """Trousers ordered on 2 March and the order cancelled the next morning (naming the
    product); ordered again on 9 March and kept. One purchase counts, 59.90 of revenue;
    the trousers are among the last purchases, not among the products sent back. Before,
    the second order replaced the first as the product's latest purchase, and the
    cancellation no longer found the order it cancelled: two purchases counted."""
    customer = f"CX{uuid.uuid4().hex[:8]}"
    ordered = local(PARIS, "2026-03-02 20:00")
    rows = [
        event(customer, ordered - HOUR, "product_view", "P1"),
        purchase(customer, ordered, "P1"),
        event(customer, ordered + 12 * HOUR, "order_cancelled", "P1", channel="app"),
        purchase(customer, ordered + 7 * DAY, "P1"),
    ]
    shop.post(*rows)
    read = ordered + 10 * DAY
    online = online_profile(shop, customer, read)
    assert online["purchases_total"] == 1, online
    assert abs(online["revenue_total"] - 59.9) < 1e-6, online
    assert online["last_purchased_products"] == ("P1",), online
    assert online["returned_products"] == (), online
    assert_same(online, batch_profile(base, rows, read))


def test_a_cancellation_of_the_earlier_of_two_orders_keeps_the_later_one(
    shop: Shop, base: RetailDataset
) -> None:
    """Shirts ordered on 2 March and on 5 March; the journey tool reports, late, the
    cancellation of the 2 March order on 3 March (it arrives after the second order). The
    5 March order is the last purchase (a win-back clock from 5 March), one purchase
    counts, and the shirt is not among the products sent back."""
    customer = f"CX{uuid.uuid4().hex[:8]}"
    ordered = local(PARIS, "2026-03-02 20:00")
    again = ordered + 3 * DAY
    rows = [
        event(customer, ordered - HOUR, "product_view", "P2"),
        purchase(customer, ordered, "P2"),
        purchase(customer, again, "P2"),
        event(customer, ordered + 14 * HOUR, "order_cancelled", "P2", channel="app"),
    ]
    shop.post(*rows)
    read = again + 2 * DAY
    online = online_profile(shop, customer, read)
    assert online["purchases_total"] == 1, online
    assert abs(online["days_since_last_purchase"] - 2.0) < 1e-6, online
    assert online["returned_products"] == (), online
    assert online["last_purchased_products"] == ("P2",), online
    assert_same(online, batch_profile(base, rows, read))


def test_an_order_level_cancellation_finds_the_latest_order_of_any_product(
    shop: Shop, base: RetailDataset
) -> None:
    """Trousers on 2 March, the shirt on 4 March, trousers again on 8 March; a
    cancellation naming no product dated 5 March (the latest order before it: the
    shirt's) undoes the shirt; both trouser orders count."""
    customer = f"CX{uuid.uuid4().hex[:8]}"
    first = local(PARIS, "2026-03-02 12:00")
    rows = [
        purchase(customer, first, "P1"),
        purchase(customer, first + 2 * DAY, "P2"),
        purchase(customer, first + 6 * DAY, "P1"),
        event(customer, first + 3 * DAY, "order_cancelled", None, channel="app"),
    ]
    shop.post(*rows)
    read = first + 9 * DAY
    online = online_profile(shop, customer, read)
    assert online["purchases_total"] == 2, online
    assert online["returned_products"] == ("P2",), online
    assert_same(online, batch_profile(base, rows, read))
