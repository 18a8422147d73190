"""Supersession (issue 12): a scheduled message gives way to a better one that comes up
before it goes; the rule (nba.supersession) and the closed loop that runs it."""

from __future__ import annotations

import datetime as dt

import pytest

from features.online.response_stats import MemoryResponseStats, margin_rates
from nba.catalog import parse_catalog
from nba.channels import Channel
from nba.contact_policy import ContactPolicy
from nba.context import CustomerContext
from nba.engine import NextBestActionPolicy
from nba.profile import CustomerProfile
from nba.supersession import NewContact, Pending, supersede
from simulator.closed_loop import ClosedLoopConfig, build_world
from simulator.closed_loop.comparison import check_run
from simulator.closed_loop.policies import make_policy
from simulator.closed_loop.runner import PolicyRun, run_policy
from simulator.closed_loop.world import ClosedLoopWorld, example_contact_policy

NOW = dt.datetime(2026, 3, 2, 9, tzinfo=dt.UTC)
LEAD = dt.timedelta(minutes=15)


def picks(due: dt.datetime = NOW + dt.timedelta(hours=4), priority: float = 0.05) -> Pending:
    return Pending("d-picks", "recommendations_weekly", Channel.EMAIL, due, priority)


BROWSE = NewContact("browse_reminder_evening", Channel.EMAIL, 0.31)


def test_a_better_message_replaces_the_scheduled_one_that_blocks_it() -> None:
    verdict = supersede(
        [picks()], BROWSE, NOW, {"d-picks": 0.04}, blocking={"d-picks"}, lead=LEAD, margin=0.01
    )
    assert verdict is not None and verdict.replaces == ("d-picks",)
    assert "recommendations_weekly by email due 13:00 UTC" in verdict.reason
    assert "worth 0.31 now against 0.04" in verdict.reason


@pytest.mark.parametrize(
    ("pending", "worth", "blocking", "why"),
    [
        (picks(NOW + dt.timedelta(minutes=10)), 0.04, {"d-picks"}, "too close to its send"),
        (picks(), 0.35, {"d-picks"}, "worth more now"),
        (picks(), 0.30, {"d-picks"}, "within the margin"),
        (picks(), 0.04, set(), "does not block the new one"),
    ],
)
def test_a_scheduled_message_is_kept(
    pending: Pending, worth: float, blocking: set[str], why: str
) -> None:
    verdict = supersede(
        [pending], BROWSE, NOW, {"d-picks": worth}, blocking=blocking, lead=LEAD, margin=0.02
    )
    assert verdict is None, why


def test_the_same_message_again_replaces_nothing() -> None:
    same = NewContact("recommendations_weekly", Channel.EMAIL, 0.5)
    assert (
        supersede([picks()], same, NOW, {"d-picks": 0.0}, blocking={"d-picks"}, lead=LEAD, margin=0)
        is None
    )


def test_every_blocking_message_must_be_replaceable() -> None:
    """Two scheduled messages block the new one; one is too close to go: neither is
    cancelled (cancelling one would not free the channel)."""
    late = picks()
    soon = Pending("d-soon", "review_request", Channel.PUSH, NOW + dt.timedelta(minutes=5), 0.01)
    verdict = supersede(
        [late, soon],
        BROWSE,
        NOW,
        {},
        blocking={"d-picks", "d-soon"},
        lead=LEAD,
        margin=0.0,
    )
    assert verdict is None


# -- the closed loop ------------------------------------------------------------------

CONFIG = ClosedLoopConfig(n_customers=300, history_days=60, days=8, seed=3, playbook=True)


@pytest.fixture(scope="module")
def world() -> ClosedLoopWorld:
    policy = ContactPolicy.from_dict({"supersede_lead_minutes": 15}, base=example_contact_policy())
    return build_world(CONFIG, contact_policy=policy)


@pytest.fixture(scope="module")
def learned(world: ClosedLoopWorld) -> MemoryResponseStats:
    """The engine's response statistics (as ``run_policy`` builds them), kept to read."""
    return MemoryResponseStats(margin_rates=margin_rates(world.sim.products))


@pytest.fixture(scope="module")
def engine(world: ClosedLoopWorld, learned: MemoryResponseStats) -> PolicyRun:
    return run_policy(world, make_policy("nba", world), learn=learned)


def test_the_loop_drops_a_replaced_message_before_it_goes(
    world: ClosedLoopWorld, engine: PolicyRun
) -> None:
    decisions = engine.decisions.set_index("decision_id")
    replacing = decisions[decisions["replaces"] != ""]
    assert len(replacing) > 0, "no scheduled message was replaced in 8 days"
    replaced = {d for ids in replacing["replaces"] for d in ids.split(",")}
    # the replaced messages did not go: no contact row, so no outcome was drawn for them,
    # and the checker sees only what went
    assert not engine.contacts["decision_id"].isin(replaced).any()
    assert check_run(world, engine) == []
    # each replacement was decided on activity, replaced a message decided earlier,
    # and went (nothing holds it back here)
    assert (replacing["trigger"] == "activity").all()
    # the reason, in words: replaced by a better message, or withdrawn since its reason
    # has passed (a cart bought, a purchase since, a cart emptied)
    better = replacing["replaces_why"].str.contains(" is worth ")
    passed = replacing["replaces_why"].str.contains(" could no longer go: not_eligible ")
    assert (better | passed).all() and better.any() and passed.any()
    for _, row in replacing.iterrows():
        for old in str(row["replaces"]).split(","):
            assert decisions.loc[old, "decided_at"] < row["decided_at"]
    # a better message went; a withdrawal may leave nothing to send (do_nothing)
    assert set(replacing.index[better]) <= set(engine.contacts["decision_id"])
    assert replacing.loc[~better, "action_id"].fillna("do_nothing").eq("do_nothing").any()


def test_the_loop_withdraws_a_replaced_messages_exposure_from_the_statistics(
    world: ClosedLoopWorld, engine: PolicyRun, learned: MemoryResponseStats
) -> None:
    """Every decision that contacts someone counted one exposure when it was made; a
    replaced message never went, so its exposure is taken back: the statistics count
    exactly one exposure per decision whose message went, each weighed at its send time
    (the first contact's), and none of the withdrawn ones."""
    replaced = {d for ids in engine.decisions["replaces"] if ids for d in str(ids).split(",")}
    assert replaced
    end = world.cut + dt.timedelta(days=CONFIG.days)
    first = engine.contacts.sort_values("sent_at").groupby("decision_id")["sent_at"].first()
    half_life = learned.half_life
    expected = sum(2.0 ** ((t.timestamp() - end.timestamp()) / half_life) for t in first)
    counted = sum(c.exposures for c in learned.table(end).counts.values())
    assert counted == pytest.approx(expected, rel=1e-9)
    assert not set(first.index) & replaced


def test_the_rules_journey_never_replaces(world: ClosedLoopWorld) -> None:
    rules = run_policy(world, make_policy("rules", world))
    assert "replaces" not in rules.decisions  # nothing replaced, none asked


def test_off_by_default_the_loop_decides_nobody_in_flight_again() -> None:
    assert example_contact_policy().supersede_lead_minutes is None


def test_worth_now_is_the_priority_the_message_would_have_now() -> None:
    """A scheduled message is weighed by what it would be worth if decided now: the same
    priority a decision gives it, and nothing (None) once it could not go (its cart
    emptied: the customer bought)."""
    catalog = parse_catalog(
        """
actions:
  - {id: cart_reminder, type: cart_reminder, channels: [email], value: "cart_value * 0.3",
     eligibility: "cart_size > 0", timing: asap}
  - {id: nothing, type: do_nothing}
"""
    )
    policy = NextBestActionPolicy(catalog, exploration=False)
    cart = CustomerProfile(
        "C1", cart_items=("P1",), cart_value=80.0, consents={Channel.EMAIL: True}
    )
    decided = policy.decide(CustomerContext(cart, NOW), seed=1).contacts[0]
    worth = policy.worth_now(CustomerContext(cart, NOW), "cart_reminder", Channel.EMAIL)
    assert worth == pytest.approx(decided.priority)
    bought = CustomerProfile("C1", consents={Channel.EMAIL: True})
    assert policy.worth_now(CustomerContext(bought, NOW), "cart_reminder", Channel.EMAIL) is None
    assert policy.worth_now(CustomerContext(cart, NOW), "cart_reminder", Channel.SMS) is None
