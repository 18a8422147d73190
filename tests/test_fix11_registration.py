"""An identify registers its customer whatever traits it carries, and a prospect is read
once per ingest request (issue 12, fix11 items 2 and 3).

With ``NBA_UNKNOWN_CUSTOMERS=reject`` the API takes events only of customers it knows: the
customers table or an ``identify``. fix10 made a birthday-only identify register again; one
carrying only other traits (a loyalty tier, a sign-up date, preferences) still did not, as
nothing of it was stored where the check reads: the customer's later events were refused as
unknown. Such an identify now stores a one-byte marker among the static attributes
(``_rg``). The situations go through the real API on a real Redis, from Segment
``identify`` messages and contract events; the store-level checks run on every store kind.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from features.contract import EventRecord
from features.dataset import RetailDataset
from features.finalise import CustomerStatic
from features.online import codec
from features.online.profiles import OnlineProfiles
from features.online.redis_store import RedisOnlineStore
from features.online.store import MemoryOnlineStore, OnlineStore
from features.segment import CustomerPatch
from tests.api_support import redis_client
from tests.test_scenarios_api import (
    HOUR,
    PARIS,
    Shop,
    event,
    identify,
    local,
    open_shop,
    purchase,
)
from tests.test_scenarios_audit import post_raw, profile_of

SIGNED = local(PARIS, "2026-03-01 09:00")


@pytest.fixture(scope="module")
def strict_shop(base: RetailDataset, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Shop]:
    """The API of the scenario tests, rejecting events of customers it does not know."""
    root: Path = tmp_path_factory.mktemp("fix11_strict")
    prefix = f"fx11{uuid.uuid4().hex[:8]}"
    with open_shop(base, root, redis_client(root), prefix, unknown_customers="reject") as opened:
        yield opened


@pytest.mark.parametrize(
    "traits",
    [
        {"loyalty_tier": "gold"},
        {"createdAt": SIGNED.isoformat()},
        {"preferred_channel": "email", "preferred_hours": "18-21"},
        {"consent_email": True},
    ],
    ids=["loyalty_tier", "sign_up", "preferences", "consent"],
)
def test_an_identify_with_other_traits_registers_the_customer(
    strict_shop: Shop, traits: dict[str, Any]
) -> None:
    """A journey tool identifies a customer with one trait and no zone nor birthday: their
    purchase an hour later is accepted (before, refused as an unknown customer's), and
    the profile reads the customer in the retailer's zone."""
    customer = f"RG{uuid.uuid4().hex[:8]}"
    strict_shop.post(identify(customer, SIGNED, **traits))
    answer = post_raw(strict_shop, purchase(customer, SIGNED + HOUR))
    assert (answer["accepted"], answer["rejected"]) == (1, 0), answer["rejections"]
    seen = profile_of(strict_shop, customer, SIGNED + 2 * HOUR)
    assert seen["purchases_total"] == 1
    assert seen["timezone"] == PARIS
    if "loyalty_tier" in traits:
        assert seen["loyalty_tier"] == "gold"


def test_a_tier_and_its_purchase_in_one_request_are_both_taken(strict_shop: Shop) -> None:
    """The identify and the purchase in the same request: the identify is applied first."""
    customer = f"RG{uuid.uuid4().hex[:8]}"
    answer = post_raw(
        strict_shop,
        identify(customer, SIGNED, loyalty_tier="silver"),
        purchase(customer, SIGNED + HOUR),
    )
    assert (answer["accepted"], answer["rejected"]) == (1, 0), answer["rejections"]


def test_an_unregistered_customers_purchase_is_refused_naming_them_and_why(
    strict_shop: Shop,
) -> None:
    """Nothing registered the customer (an opt-in event is no identify): the purchase is
    refused in the answer's JSON, naming the event, the field, the customer and the ways to
    register; the good event of the same request is taken."""
    known, stranger = f"RG{uuid.uuid4().hex[:8]}", f"NO{uuid.uuid4().hex[:8]}"
    strict_shop.post(identify(known, SIGNED, loyalty_tier="bronze"))
    bought = purchase(stranger, SIGNED + HOUR)
    answer = post_raw(
        strict_shop,
        event(stranger, SIGNED, "opt_in", channel="email"),
        bought,
        event(known, SIGNED + HOUR, "product_view", "P1"),
    )
    assert (answer["accepted"], answer["rejected"]) == (1, 2), answer
    refused = answer["rejections"][1]
    assert (refused["index"], refused["event_id"], refused["field"]) == (
        1,
        bought["event_id"],
        "customer_id",
    )
    assert stranger in refused["message"]
    assert "unknown customer" in refused["message"] and "identify" in refused["message"]


# ---------------------------------------------------------------- on every store kind


def _stores(tmp_path: Path) -> Iterable[OnlineStore]:
    yield MemoryOnlineStore()
    yield RedisOnlineStore(redis_client(tmp_path), prefix=f"fx11{uuid.uuid4().hex[:8]}")


def _profiles(store: OnlineStore, base: RetailDataset) -> OnlineProfiles:
    return OnlineProfiles(store, base.products, default_timezone=PARIS)


def test_the_marker_is_stored_once_and_read_back_on_every_store(
    base: RetailDataset, tmp_path: Path
) -> None:
    """A tier-only identify registers the customer in another process too (the marker is
    stored, not only cached); a later zone keeps them registered; a customer already
    registered gets no marker (nothing written for an identify without a zone or a
    birthday)."""
    for store in _stores(tmp_path):
        writer = _profiles(store, base)
        patch = CustomerPatch(customer_id="T1", loyalty_tier="gold", declared_at=SIGNED)
        writer.apply_patches([patch], SIGNED)
        assert _profiles(store, base).registered(["T1", "X"]) == {"T1"}, store
        assert store.statics(["T1"])["T1"] == CustomerStatic(zone_known=False, identified=True)
        writer.apply_patches([CustomerPatch(customer_id="T1", timezone="Asia/Tokyo")], SIGNED)
        assert _profiles(store, base).registered(["T1"]) == {"T1"}
        assert store.timezones(["T1"]) == {"T1": "Asia/Tokyo"}
        store.upsert_static("Z1", CustomerStatic(timezone="Europe/Paris"))
        writer.apply_patches([CustomerPatch(customer_id="Z1", loyalty_tier="gold")], SIGNED)
        assert store.statics(["Z1"])["Z1"] == CustomerStatic(timezone="Europe/Paris")


def test_the_marker_costs_two_bytes_and_only_without_a_zone_or_birthday() -> None:
    """Stored only for a customer registered by neither a zone nor a birthday."""
    marked = codec.static_entries(CustomerStatic(zone_known=False, identified=True))
    assert marked == {"_rg": 1}
    assert len(codec.pack({}, marked)) - len(codec.pack({}, {})) == 2
    zoned = CustomerStatic(timezone="Asia/Tokyo", identified=True)
    assert "_rg" not in codec.static_entries(zoned)
    assert codec.static_of(codec.unpack(codec.pack({}, marked))).registered


class _CountingStore(MemoryOnlineStore):
    """The memory store, counting the customers whose static attributes are read."""

    def __init__(self) -> None:
        super().__init__()
        self.static_reads: list[str] = []

    def statics(self, customer_ids: Iterable[str]) -> dict[str, CustomerStatic]:
        ids = list(customer_ids)
        self.static_reads += ids
        return super().statics(ids)


def _record(customer: str, n: int) -> EventRecord:
    return EventRecord(
        event_id=f"{customer}-{n}",
        customer_id=customer,
        timestamp=pd.Timestamp(SIGNED + n * HOUR).to_pydatetime(),
        channel="web",
        event_type="product_view",
        product_id="P1",
    )


def test_a_prospect_is_read_once_per_request(base: RetailDataset) -> None:
    """The registration check reads a prospect's static attributes; the events' ops then
    take the retailer's zone for it without reading them again (a registered customer's
    zone is cached after its first read). The ops are the same as when read twice."""
    store = _CountingStore()
    store.upsert_static("Z1", CustomerStatic(timezone="Asia/Tokyo"))
    store.apply(_profiles(store, base).record_ops([_record("P1x", 0)]))  # a prospect's state
    store.static_reads.clear()
    online = _profiles(store, base)
    records = [_record("P1x", 1), _record("P1x", 2), _record("Z1", 1), _record("NEW", 1)]
    ids = ["P1x", "Z1", "NEW"]
    registered = online.registered(ids)
    assert registered == {"Z1"}
    ops = online.record_ops(records, frozenset(ids) - registered)
    assert sorted(store.static_reads) == ["NEW", "P1x", "Z1"]  # once each
    assert ops == _profiles(store, base).record_ops(records)  # the same zones, read again
