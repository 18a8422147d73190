"""Shared test helpers: generated contract events and profile comparison."""

from __future__ import annotations

import dataclasses
import math

import pandas as pd
from hypothesis import strategies as st

from features.contract import EVENTS
from features.dataset import RetailDataset
from features.finalise import ChannelPrior, FeaturePriors
from features.validation import validate_table

START = pd.Timestamp("2026-03-01T00:00:00Z")
END = START + pd.Timedelta(days=5)
PRIORS = FeaturePriors(
    channels={"*": {"email": ChannelPrior(0.25, 0.05, 0.1)}}, promo_share=0.3, new_product_share=0.1
)


EVENT_TYPES = [
    ("web", "product_view"),
    ("app", "product_view"),
    ("web", "add_to_cart"),
    ("web", "remove_from_cart"),
    ("app", "purchase"),
    ("web", "checkout_started"),
    ("email", "message_sent"),
    ("email", "message_delivered"),
    ("email", "message_opened"),
    ("email", "message_clicked"),
    ("sms", "message_sent"),
    ("sms", "sms_stop"),
    ("email", "unsubscribe"),
    ("email", "opt_in"),
    ("web", "order_delivered"),
    ("store", "click_collect_pickup"),
    # returns and cancellations: of a product, or of the latest order (no product); with
    # an offer drawn, a partial refund of 10.0, else the whole
    ("web", "order_returned"),
    ("app", "order_cancelled"),
]

event_strategy = st.tuples(
    st.sampled_from(["C1", "C2"]),
    st.integers(min_value=0, max_value=5 * 24 * 3600 - 1),
    st.sampled_from(EVENT_TYPES),
    st.sampled_from(["P1", "P2", None]),
    st.sampled_from(["O1", None]),
)


def events_frame(raw: list[tuple], prefix: str = "h") -> pd.DataFrame:  # type: ignore[type-arg]
    rows = []
    for i, (cid, offset, (channel, etype), product, offer) in enumerate(raw):
        purchase = etype == "purchase"
        undo = etype in ("order_returned", "order_cancelled")
        rows.append(
            {
                "event_id": f"{prefix}{i}",
                "customer_id": cid,
                "timestamp": START + pd.Timedelta(seconds=offset),
                "channel": channel,
                "event_type": etype,
                "product_id": product
                if etype not in ("message_sent", "sms_stop", "opt_in", "unsubscribe")
                else None,
                "offer_id": offer if purchase else None,
                "decision_id": None,
                "quantity": 1 if purchase else None,
                "revenue": 42.5 if purchase else (10.0 if undo and offer else None),
                "properties": None,
            }
        )
    frame = pd.DataFrame(rows, columns=EVENTS.names)
    return validate_table(frame, EVENTS, "generated")


def with_events(base: RetailDataset, events: pd.DataFrame) -> RetailDataset:
    return dataclasses.replace(base, events=events)


def assert_profiles_equal(a: object, b: object) -> None:
    da, db = dataclasses.asdict(a), dataclasses.asdict(b)  # type: ignore[call-overload]
    assert da.keys() == db.keys()
    for key in da:
        _assert_close(da[key], db[key], key)


def _assert_close(x: object, y: object, where: str) -> None:
    if isinstance(x, float) and isinstance(y, float | int):
        assert math.isclose(x, y, rel_tol=1e-9, abs_tol=1e-9), f"{where}: {x} != {y}"
    elif isinstance(x, dict) and isinstance(y, dict):
        assert x.keys() == y.keys(), f"{where}: {sorted(map(str, x))} != {sorted(map(str, y))}"
        for k in x:
            _assert_close(x[k], y[k], f"{where}.{k}")
    elif isinstance(x, list | tuple) and isinstance(y, list | tuple):
        assert len(x) == len(y), f"{where}: {x} != {y}"
        for i, (u, v) in enumerate(zip(x, y, strict=True)):
            _assert_close(u, v, f"{where}[{i}]")
    else:
        assert x == y, f"{where}: {x!r} != {y!r}"
