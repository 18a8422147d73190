"""Erasure ("forget me"): what Redis holds of one customer goes, the erasure is kept;
the event archive and the decision log drop and purge their records.

The Redis tests run on the embedded server, a system Redis (``NBA_TEST_REDIS_URL``) and,
collected again by tests/test_redis_cluster.py, a Redis Cluster. The API's route is
tested in tests/test_api_erasure.py.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from experiments.decision_log import JsonlDecisionLog, purge_erased, read_decision_log
from features.archive import EventArchive, compact, read_archive
from features.contract import EventRecord
from features.erasures import ErasureRegister, customer_digest
from features.online.contact_state import OwnContact, RedisContactState
from features.online.erasure import RedisErasure
from features.online.redis_store import RedisOnlineStore
from features.online.response_stats import RedisResponseStats
from nba.budgets import Consumption
from nba.channels import Channel
from nba.decision import LoggedAction, LoggedDecision
from tests.test_contact_state import NOW, a_decision
from tests.test_online_store import (  # noqa: F401 - fixtures
    NewStore,
    embedded_redis,
    new_redis_store,
    system_redis,
)

#: An id with glob characters, and one its unescaped pattern would match.
ERASED, NEIGHBOUR = "C*1", "CX1"


def _contacts(new_redis_store: NewStore) -> RedisContactState:  # noqa: F811
    store = new_redis_store()
    assert isinstance(store, RedisOnlineStore)
    stats = RedisResponseStats(store.client, store.prefix)
    return RedisContactState(store, stats=stats)


def _keys_of(contacts: RedisContactState, customer_id: str) -> set[str]:
    """Every key of the prefix that names the customer's hash tag."""
    tag = "{" + customer_id + "}"
    return {
        k.decode()
        for k in contacts.client.scan_iter(match=f"{contacts.prefix}:*", count=1000)
        if tag in k.decode()
    }


def _a_customer_everywhere(contacts: RedisContactState, customer_id: str) -> None:
    """A decision with a cached answer, a decided contact, a send kept for attribution
    (the response statistics' exposure), an action history and a stored profile."""
    from features.finalise import CustomerStatic

    contacts.store.upsert_static(customer_id, CustomerStatic(timezone="Europe/Paris"))
    decision = a_decision(customer_id)
    contacts.record(decision, idempotency_key="retry-1", answer="{}", segment="all")
    contacts.record_contacts(
        customer_id, [OwnContact("d-later", Channel.EMAIL, NOW + dt.timedelta(hours=2))]
    )
    contacts.count_usage(NOW.date(), Consumption({"o10": 1}, {"cart_reminder": 1}))


def test_erasure_deletes_every_key_of_the_customer_and_no_one_elses(
    new_redis_store: NewStore,  # noqa: F811
) -> None:
    contacts = _contacts(new_redis_store)
    for cid in (ERASED, NEIGHBOUR):
        _a_customer_everywhere(contacts, cid)
    held = _keys_of(contacts, ERASED)
    kinds = {k.split(":")[1] for k in held}
    assert {"s", "h", "c", "i", "d"} <= kinds, held
    neighbour = _keys_of(contacts, NEIGHBOUR)
    erasure = RedisErasure(contacts)
    at = NOW + dt.timedelta(days=1)
    erased = erasure.erase(ERASED, at, keep_seconds=3600)
    assert erased.keys == len(held)
    assert _keys_of(contacts, ERASED) == set()  # the erasure is kept under a pseudonym
    assert _keys_of(contacts, NEIGHBOUR) == neighbour  # the glob in the id matched no one
    assert contacts.store.read([ERASED]) == [None]
    assert contacts.read_for_decision(ERASED, NOW, "retry-1").answer is None
    assert dict(contacts.history(ERASED)) == {}
    assert contacts.usage(NOW.date()).offers_given == {"o10": 4}  # counts of no one: kept
    assert erasure.erased([ERASED, NEIGHBOUR, "C9"]) == {ERASED: at}
    assert 0 < contacts.client.ttl(erasure.erasures_key) <= 3600
    assert ERASED.encode() not in b"".join(contacts.client.zrange(erasure.erasures_key, 0, -1))
    again = erasure.erase(ERASED, at + dt.timedelta(minutes=5), keep_seconds=3600)
    assert again.keys == 0
    assert erasure.erased([ERASED]) == {ERASED: at + dt.timedelta(minutes=5)}


def test_no_erasure_kept_no_lookup(new_redis_store: NewStore) -> None:  # noqa: F811
    """Without a live erasure, screening a batch reads one key, whatever its size."""
    contacts = _contacts(new_redis_store)
    assert RedisErasure(contacts).erased([f"C{i}" for i in range(500)]) == {}


# ------------------------------------------------------------------ the files


def _event(event_id: str, customer: str, at: dt.datetime) -> EventRecord:
    return EventRecord(
        event_id=event_id,
        customer_id=customer,
        timestamp=at,
        channel="web",
        event_type="product_view",
        product_id="P1",
    )


def _decision(decision_id: str, customer: str, at: dt.datetime) -> LoggedDecision:
    return LoggedDecision(
        decision_id, customer, at, "nba", "engine", "3", 0.8, ("a",),
        (LoggedAction("a", "email", None, 0.8),),
    )  # fmt: skip


def _bytes_under(folder: Path) -> bytes:
    return b"".join(p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file())


def test_the_archive_drops_and_purges_an_erased_customers_events(tmp_path: Path) -> None:
    """Events up to the erasure leave what the archive reads at once, and its files at the
    next compaction: from the Parquet parts and from every segment no writer holds; the
    segment a writer still appends to is left for a later compaction. Events after the
    erasure (a new customer) and other customers' are kept."""
    folder = tmp_path / "archive"
    erased_at = NOW + dt.timedelta(hours=1)
    with EventArchive(folder, fsync="never") as archive:
        archive.append([_event("e1", ERASED, NOW), _event("e2", NEIGHBOUR, NOW)])
    compact(folder)  # e1 is now in a Parquet part too
    writer = EventArchive(folder, fsync="never")
    writer.append([_event("e3", ERASED, NOW + dt.timedelta(minutes=30))])
    ErasureRegister(folder).record(ERASED, erased_at)
    writer.append([_event("e4", ERASED, erased_at + dt.timedelta(hours=1))])
    assert set(read_archive(folder)["event_id"]) == {"e2", "e4"}
    done = compact(folder)
    assert (done.erased, done.open_segments) == (2, 1)  # e1 (part and segment); e3 waits
    assert b'"e1"' not in _bytes_under(folder) and b"e1" not in b"".join(
        p.read_bytes() for p in (folder / "events").rglob("*.parquet")
    )
    writer.rotate()
    done = compact(folder)
    assert done.erased == 1 and done.open_segments == 0
    files = _bytes_under(folder)
    assert b'"e3"' not in files and b'"e4"' in files
    assert set(read_archive(folder)["event_id"]) == {"e2", "e4"}
    writer.close()
    register = (folder / "erasures.jsonl").read_text()
    assert ERASED not in register and customer_digest(ERASED) in register


def test_the_decision_log_purges_an_erased_customers_decisions(tmp_path: Path) -> None:
    folder = tmp_path / "log"
    erased_at = NOW + dt.timedelta(hours=1)
    with JsonlDecisionLog(folder, fsync="never") as log:
        log.append([_decision("d1", ERASED, NOW), _decision("d2", NEIGHBOUR, NOW)])
    live = JsonlDecisionLog(folder, fsync="never")
    live.append([_decision("d3", ERASED, NOW)])
    register = ErasureRegister(tmp_path / "archive")
    register.record(ERASED, erased_at)
    assert purge_erased(folder, register.load()) == (1, 1)  # d3's segment is still written
    live.rotate()
    live.append([_decision("d4", ERASED, erased_at + dt.timedelta(hours=1))])
    assert purge_erased(folder, register.load()) == (1, 0)
    live.close()
    assert set(read_decision_log(folder)["decision_id"]) == {"d2", "d4"}
    assert b'"d1"' not in _bytes_under(folder) and b'"d3"' not in _bytes_under(folder)
