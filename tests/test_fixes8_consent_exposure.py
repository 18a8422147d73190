"""A message withdrawn because its channel's consent was withdrawn before it went leaves
the response statistics, as a superseded one does: with the contact policy as shipped
(supersession off, no scheduled record kept) the withdrawing decision's write takes back
the exposure the statistics counted for it, read by its decision id. Misfire: the
withdrawn cart reminder stayed an exposure without response (the reminder looked worse
than it is), and a click naming it was still credited to it.

Built from raw contract events through the real API on a real Redis.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from features.dataset import RetailDataset
from features.online.response_stats import MemoryResponseStats
from tests.api_support import redis_client
from tests.test_scenarios_api import (
    DAY,
    MINUTE,
    PARIS,
    Shop,
    contacts,
    event,
    local,
    open_shop,
    send_local,
    the_action,
)


@pytest.fixture(scope="module")
def learning(
    base: RetailDataset, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Shop, Any, str]]:
    """The API with its response statistics on and the example contact policy as shipped
    (supersession off)."""
    root: Path = tmp_path_factory.mktemp("fixes8_consent")
    prefix = f"f8{uuid.uuid4().hex[:8]}"
    client = redis_client(root)
    with contextlib.ExitStack() as stack:
        opened = stack.enter_context(open_shop(base, root, client, prefix, response_stats=True))
        yield opened, client, prefix


def _counts(client: Any, prefix: str, kind: str, action: str) -> float:
    """The statistics' raw weights of ``kind`` (``e`` exposures, ``x`` expected, ``c``
    clicks) of ``action`` by e-mail, over every era and segment."""
    total = 0.0
    for key in client.scan_iter(f"{prefix}:rs:*"):
        for name, value in client.hgetall(key).items():
            k, _, channel, action_id = name.decode().split("|", 3)
            if k == kind and channel == "email" and action_id == action:
                total += float(value)
    return total


def _scheduled_reminder(shop: Shop) -> tuple[str, dict[str, Any]]:
    """A cart left at 23:10; asked at 00:20, the e-mail reminder is due at 07:00."""
    left = local(PARIS, "2026-03-04 23:10")
    customer = shop.signup(left - 30 * DAY, consents=("email",))
    shop.post(event(customer, left, "add_to_cart", "P1"))
    first = shop.decide(customer, left + 70 * MINUTE)
    chosen = the_action(first)
    assert (chosen["action_id"], chosen["channel"]) == ("cart_reminder_1", "email")
    assert send_local(chosen).hour == 7
    return customer, first


def test_the_reminder_withdrawn_for_consent_leaves_the_statistics(
    learning: tuple[Shop, Any, str],
) -> None:
    shop, client, prefix = learning
    customer, first = _scheduled_reminder(shop)
    sends = f"{prefix}:d:{{{customer}}}"
    counted = _counts(client, prefix, "e", "cart_reminder_1")
    assert counted > 0 and client.hexists(sends, first["decision_id"])
    assert not client.exists(f"{prefix}:cd:{{{customer}}}")  # no scheduled record kept

    shop.post(event(customer, local(PARIS, "2026-03-05 06:00"), "unsubscribe", channel="email"))
    again = shop.decide(customer, local(PARIS, "2026-03-05 06:10"))
    assert again["replaces"] == [first["decision_id"]], again
    assert contacts(again) == []
    # the whole exposure (and its expected responses) taken back, to the bit's noise
    assert _counts(client, prefix, "e", "cart_reminder_1") == pytest.approx(0.0, abs=1e-9)
    assert _counts(client, prefix, "x", "cart_reminder_1") == pytest.approx(0.0, abs=1e-9)
    assert not client.hexists(sends, first["decision_id"])

    # withdrawn once: a later decision takes nothing back again
    later = shop.decide(customer, local(PARIS, "2026-03-05 06:30"))
    assert later["replaces"] == []
    assert _counts(client, prefix, "e", "cart_reminder_1") == pytest.approx(0.0, abs=1e-9)
    # a click naming the withdrawn reminder is nobody's
    shop.post(
        event(
            customer,
            local(PARIS, "2026-03-05 07:05"),
            "message_clicked",
            channel="email",
            decision_id=first["decision_id"],
        )
    )
    assert _counts(client, prefix, "c", "cart_reminder_1") == 0.0


def test_a_twin_who_kept_email_keeps_the_exposure(learning: tuple[Shop, Any, str]) -> None:
    shop, client, prefix = learning
    customer, first = _scheduled_reminder(shop)
    before = _counts(client, prefix, "e", "cart_reminder_1")
    again = shop.decide(customer, local(PARIS, "2026-03-05 06:10"))
    assert again["replaces"] == []
    assert _counts(client, prefix, "e", "cart_reminder_1") >= before
    assert client.hexists(f"{prefix}:d:{{{customer}}}", first["decision_id"])


def test_counted_exposures_read_back_what_was_counted() -> None:
    """In memory as on Redis (the Redis side is the API test above): the exposures kept
    for a customer's decisions, none for an unknown or withdrawn one."""
    import datetime as dt

    from features.online.response_stats import Exposure

    stats = MemoryResponseStats()
    at = dt.datetime(2026, 3, 5, 6, 0, 0, 123456, tzinfo=dt.UTC)
    exposure = Exposure("d-1", "C1", at, "cart_reminder_1", "email", "active", 0.2, 3.0)
    stats.expose(exposure)
    assert stats.counted_exposures("C1", ["d-1", "d-2", "d-1"]) == [exposure]
    stats.withdraw(stats.counted_exposures("C1", ["d-1"]))
    assert stats.counted_exposures("C1", ["d-1"]) == []
    assert stats.table(at).by_action()["cart_reminder_1"].exposures == pytest.approx(0.0)
