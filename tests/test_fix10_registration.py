"""Who is a registered customer when the API rejects unknown ones (issue 12, fix10 item 3).

With ``NBA_UNKNOWN_CUSTOMERS=reject`` the API takes events only of customers it knows: the
customers table or an ``identify`` registers them. audit8 stopped pinning a customer whose
``identify`` gives no time zone to UTC (the retailer's zone stands in), and with that a
customer whose identify carried only a birthday was no longer registered: their next
event was refused as an unknown customer's. Each situation goes through the real API on a
real Redis, from Segment ``identify`` messages and contract events.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from features.dataset import RetailDataset
from tests.api_support import redis_client
from tests.test_scenarios_api import HOUR, PARIS, Shop, event, identify, local, open_shop
from tests.test_scenarios_audit import post_raw, profile_of


@pytest.fixture(scope="module")
def strict_shop(base: RetailDataset, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Shop]:
    """The API of the scenario tests, rejecting events of customers it does not know."""
    root: Path = tmp_path_factory.mktemp("fix10_strict")
    prefix = f"fx10{uuid.uuid4().hex[:8]}"
    with open_shop(base, root, redis_client(root), prefix, unknown_customers="reject") as opened:
        yield opened


def _view(customer: str, hours: float) -> dict[str, Any]:
    return event(customer, local(PARIS, "2026-03-02 10:00") + hours * HOUR, "product_view", "P1")


def test_an_identify_with_only_a_birthday_registers_the_customer(strict_shop: Shop) -> None:
    """A journey tool identifies a customer with their birthday alone (no time zone, no
    sign-up date): their next view is accepted, and the profile knows the birthday and
    reads the customer in the retailer's zone (no zone pinned)."""
    customer = f"BD{uuid.uuid4().hex[:8]}"
    signed = local(PARIS, "2026-03-01 09:00")
    strict_shop.post(identify(customer, signed, birthday="1990-03-09"))
    answer = post_raw(strict_shop, _view(customer, 1))
    assert (answer["accepted"], answer["rejected"]) == (1, 0), answer["rejections"]
    seen = profile_of(strict_shop, customer, local(PARIS, "2026-03-02 12:00"))
    assert seen["days_to_birthday"] == 7
    assert seen["timezone"] == PARIS


def test_a_birthday_and_its_view_in_one_request_are_both_taken(strict_shop: Shop) -> None:
    """The identify and the event in the same request: the identify is applied first."""
    customer = f"BD{uuid.uuid4().hex[:8]}"
    signed = local(PARIS, "2026-03-01 09:00")
    answer = post_raw(
        strict_shop, identify(customer, signed, birthday="1985-07-14"), _view(customer, 2)
    )
    assert answer["rejected"] == 0, answer["rejections"]
    assert answer["accepted"] == 1


def test_a_stranger_is_still_refused_naming_how_to_register(strict_shop: Shop) -> None:
    """Nothing registered the customer: the event is refused, naming the field and the
    ways to register (the birthday among them)."""
    answer = post_raw(strict_shop, _view(f"NO{uuid.uuid4().hex[:8]}", 1))
    assert (answer["accepted"], answer["rejected"]) == (0, 1)
    [refused] = answer["rejections"]
    assert refused["field"] == "customer_id"
    assert "birthday" in refused["message"] and "timezone" in refused["message"]


def test_a_zone_given_later_keeps_the_customer_registered(strict_shop: Shop) -> None:
    """Birthday first, time zone later (Tokyo): registered throughout, read in Tokyo."""
    customer = f"BD{uuid.uuid4().hex[:8]}"
    signed = local(PARIS, "2026-03-01 09:00")
    strict_shop.post(identify(customer, signed, birthday="1990-03-09"))
    strict_shop.post(_view(customer, 1))
    strict_shop.post(identify(customer, signed + HOUR, timezone="Asia/Tokyo"))
    strict_shop.post(_view(customer, 3))
    seen = profile_of(strict_shop, customer, local(PARIS, "2026-03-02 12:00"))
    assert seen["timezone"] == "Asia/Tokyo"
    assert seen["days_to_birthday"] is not None
