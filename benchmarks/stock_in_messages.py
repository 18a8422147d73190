"""Issue 12 (misfire, gap 1): products out of stock in the messages a batch run decides.

Simulates a retailer (the simulator sells out ``OUT_OF_STOCK_SHARE`` of the products),
builds every profile at the end of its history and decides each customer with the
example catalog, once as before (no stock) and once with the products table's stock
(:class:`features.online.stock.StockLevels`, as the API and ``nba decide`` now decide),
and counts the cart and browse reminders chosen whose message shows a product out of
stock (the first four of the cart or of the browsed products, as the API attaches
them), and those chosen although everything the customer left is out of stock.

Run: ``PYTHONPATH=. python benchmarks/stock_in_messages.py --customers 5000 --days 30``
"""

from __future__ import annotations

from benchmarks.channel_exploration import simulated
from features.batch import build_profiles
from features.online.stock import StockLevels
from nba.actions import ActionType
from serving.batch_decisions import decide_audience

REMINDERS = {ActionType.CART_REMINDER.value, ActionType.BROWSE_REMINDER.value}


def main() -> None:
    args, data, catalog, policy = simulated(__doc__, 5000, 30)
    build = build_profiles(data, workers=1)
    stock = StockLevels(None, "", data.products)
    out = stock.out_of_stock
    original = {p.customer_id: p for p in build.profiles}
    print(
        f"{len(build.profiles)} customers at {build.as_of}; {len(out)} of "
        f"{len(data.products)} products out of stock"
    )
    print(
        "| decided | cart/browse reminders | showing a product out of stock "
        "| for items all out of stock |"
    )
    print("|---|---:|---:|---:|")
    for name, profiles in (
        ("without stock (before)", build.profiles),
        ("with the table's stock (now)", [stock.sellable(p) for p in build.profiles]),
    ):
        shown = {p.customer_id: p for p in profiles}
        table = decide_audience(profiles, catalog, policy, now=build.as_of, seed=args.seed)
        chosen = table[table["action_type"].isin(REMINDERS)]
        some = every = 0
        for row in chosen.itertuples():
            seen, raw = shown[row.customer_id], original[row.customer_id]
            cart = row.action_type == "cart_reminder"
            products = (seen.cart_items if cart else seen.browsed_products)[:4]  # the message's
            items = raw.cart_items if cart else raw.browsed_products  # what the customer left
            some += any(p in out for p in products)
            every += bool(items) and all(p in out for p in items)
        print(f"| {name} | {len(chosen)} | {some} | {every} |")


if __name__ == "__main__":
    main()
