"""Batch decisions through the fast paths decide exactly as one customer at a time.

The batch path builds each chunk's profiles in the worker that decides it, and the
core it calls takes shortcuts (a channel's consent and contact-policy verdict taken
once per decision, the send window once per action, the best send hour found by
``max``/``index`` over a preference's scores). Here every customer of a small simulated
audience, at several moments, with action histories and response statistics (so that
sequences, cool-downs and Thompson sampling are in play), gets from the batch the
decision, channel, send time and propensity that the per-customer path (the API's)
gives; and every slot screening keeps or drops is what the plain, unmemoised
:func:`~nba.screening.channel_slot` says for that action and channel.
"""

from __future__ import annotations

import datetime as dt
import random

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import serving.batch_decisions as batch
import tests.test_batch_decisions as batch_tests
from cli.decide import load_contact_policy
from features.profile_table import profiles_frame
from nba.actions import Action
from nba.ageing import fading_of
from nba.arbitration import BetaPosterior
from nba.budgets import UsageCounts
from nba.catalog import Catalog
from nba.channels import Channel
from nba.consent import consent_reason
from nba.contact_policy import ROLLING_CAP_CODES, ContactPolicy
from nba.context import CustomerContext
from nba.pipeline import build_pipeline
from nba.profile import CustomerProfile
from nba.reasons import Reason, ReasonCode
from nba.screening import ChannelSlot, channel_slot, screen
from nba.timing import HourPreference, SendTime
from serving.batch_decisions import AudienceError, decide_audience
from tests.test_nba_timing import preferences as timing_preferences

#: a simulated audience, the seed catalog and contact policy, as the batch tests have them
profiles = batch_tests.profiles
catalog = batch_tests.catalog
contact_policy = batch_tests.contact_policy


@pytest.fixture(scope="module")
def cut(profiles: list[CustomerProfile]) -> dt.datetime:
    as_of = profiles[0].as_of
    assert as_of is not None
    return as_of


@pytest.fixture(scope="module")
def history(
    profiles: list[CustomerProfile], catalog: Catalog, cut: dt.datetime
) -> dict[str, dict[str, dt.datetime]]:
    """Some actions sent to each customer in the last three weeks (sequences, cool-downs
    and the message gap then decide)."""
    rng = random.Random(3)
    ids = [a.id for a in catalog if not a.is_do_nothing]
    return {
        p.customer_id: {
            a: cut - dt.timedelta(hours=rng.uniform(1, 500))
            for a in rng.sample(ids, rng.randint(0, 4))
        }
        for p in profiles
    }


@pytest.fixture(scope="module")
def stats(catalog: Catalog) -> dict[str, BetaPosterior]:
    rng = random.Random(4)
    return {
        a.id: BetaPosterior(1 + rng.randint(0, 30), 1 + rng.randint(0, 300))
        for a in catalog
        if not a.is_do_nothing
    }


LIMITS = {ReasonCode.BUDGET_EXHAUSTED, ReasonCode.VOLUME_LIMIT}
MOMENTS = (dt.timedelta(0), dt.timedelta(hours=31), dt.timedelta(days=3, hours=10))


def test_batch_decides_every_customer_as_the_per_customer_path(
    profiles: list[CustomerProfile],
    catalog: Catalog,
    contact_policy: ContactPolicy,
    cut: dt.datetime,
    history: dict[str, dict[str, dt.datetime]],
    stats: dict[str, BetaPosterior],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(batch, "CHUNK_SIZE", 70)  # four chunks, two workers
    pipeline = build_pipeline(catalog, contact_policy)
    frame = profiles_frame(profiles)
    chosen: set[str] = set()
    for shift in MOMENTS:
        now = cut + shift
        tables = [
            decide_audience(
                audience,
                catalog,
                contact_policy,
                now,
                policy=pipeline,
                seed=7,
                action_history=history,
                stats=stats,
                workers=workers,
            )
            for audience, workers in ((frame, 1), (frame, 2), (profiles, 2))
        ]
        for other in tables[1:]:
            pd.testing.assert_frame_equal(tables[0], other)
        table = tables[0]
        assert table["customer_id"].tolist() == [p.customer_id for p in profiles]
        for profile, row in zip(profiles, table.itertuples(index=False), strict=True):
            context = CustomerContext(
                profile, now, action_history=history.get(profile.customer_id, {})
            )
            decision = pipeline.route(
                context, usage=UsageCounts(), stats=stats, seed=f"7:{profile.customer_id}"
            ).decision
            # budgets do not bind here: the batch's shares cannot differ from no usage
            assert not {r.code for r in decision.rejections} & LIMITS
            (action,) = decision.actions
            assert row.decision_id == decision.decision_id
            assert row.action_id == action.action_id
            channel = None if pd.isna(row.channel) else row.channel
            assert channel == (None if action.channel is None else action.channel.value)
            if action.send_at is None:
                assert pd.isna(row.send_at_utc)
            else:
                assert row.send_at_utc == pd.Timestamp(action.send_at)
            assert row.propensity == action.propensity
            assert row.priority == action.priority
            chosen.add(action.action_id)
    # not vacuous: sequences, reminders, offers and doing nothing all occur
    assert len(chosen) >= 10, chosen


def test_screening_keeps_and_drops_each_slot_as_the_plain_channel_check(
    profiles: list[CustomerProfile],
    catalog: Catalog,
    contact_policy: ContactPolicy,
    cut: dt.datetime,
    history: dict[str, dict[str, dt.datetime]],
) -> None:
    """Each channel's verdict is taken once per decision and shared by the actions: every
    slot kept (with its send time) and every channel rejection must be what the plain
    checks give for that action and channel alone (rolling caps deferring sends and
    dropping channels included)."""
    checked = refused = deferred = 0
    for shift in MOMENTS:
        # every customer: since caps free with their window (not an hour later), a third
        # of them met too few deferred sends (30) to cover the deferral
        for profile in profiles:
            context = CustomerContext(
                profile, cut + shift, action_history=history.get(profile.customer_id, {})
            )
            screening = screen(catalog, contact_policy, context, UsageCounts())
            last = contact_policy.last_message_at(context, _messages(context, catalog))
            kept = {(c.action.id, s.channel): s.send for c in screening.candidates for s in c.slots}
            dropped = {
                (r.action_id, r.channel): (r.code, r.message)
                for r in screening.rejections
                if r.channel is not None
            }
            # the actions that reached the channel checks
            eligible = {c.action.id for c in screening.candidates} | {a for a, _ in dropped}
            for action in catalog:
                if action.id not in eligible:
                    continue
                for channel in action.deliverable_channels:
                    plain = _plain_slot(action, channel, contact_policy, context, last)
                    assert channel_slot(
                        action, channel, contact_policy, context, last_message_at=last
                    ) == (
                        plain
                        if isinstance(plain, Reason)
                        else ChannelSlot(
                            channel, plain, _arrival(channel, contact_policy, context, plain)
                        )
                    )
                    if isinstance(plain, Reason):
                        assert dropped[(action.id, channel)] == (plain.code, plain.message)
                        refused += 1
                    else:
                        assert kept[(action.id, channel)] == plain
                        deferred += "once the rolling cap frees" in plain.basis
                    checked += 1
    assert checked > 500 and refused > 50 and deferred > 50, (checked, refused, deferred)


def _arrival(
    channel: Channel, policy: ContactPolicy, context: CustomerContext, send: SendTime
) -> dt.datetime | None:
    lead = policy.rules(channel).lead_time
    return lead.arrival(send.at, context.zone) if lead.days else None


def _plain_slot(
    action: Action,
    channel: Channel,
    policy: ContactPolicy,
    context: CustomerContext,
    last_message_at: dt.datetime | None,
) -> SendTime | Reason:
    """The slot of one action on one channel, written plainly from the contact policy's
    checks in their order (what screening did per action and channel before it took each
    channel's verdict once per decision)."""
    reason = consent_reason(context.profile, channel) or policy.channel_reason(context, channel)
    now = context.now_utc
    earliest = now + dt.timedelta(hours=action.send_delay_hours)
    latest = action.latest_send(now, context)
    if reason is not None and reason.code not in ROLLING_CAP_CODES:
        return reason
    lead = policy.rules(channel).lead_time  # a letter must be posted days ahead
    deadline = action.arrive_by(now, context) if lead.days else None
    if deadline is not None:
        last_post = lead.latest_send(deadline, context.zone, earliest)
        if last_post is None:
            return Reason(
                ReasonCode.NO_SEND_SLOT,
                f"a {channel.value} message takes {lead.describe()} to arrive (the channel's "
                f"lead time) and this one must arrive by {deadline:%Y-%m-%d %H:%M} UTC (the end "
                "of its validity or its send_by deadline): sent now, it would arrive too late",
            )
        latest = min(latest, last_post)
    capped = None
    if reason is not None and reason.code in ROLLING_CAP_CODES:
        frees = policy.caps_free_at(context, channel)
        if frees is None:
            return reason
        if frees > latest:
            message = f"{reason.message}; the caps free up at {frees:%Y-%m-%d %H:%M} UTC, "
            return Reason(reason.code, message + "after the action expires")
        capped, earliest = reason, max(earliest, frees)
        reason = policy.channel_reason(context, channel, caps=False)
    if reason is not None:
        return reason
    best_hour = action.timing == "best_hour"
    how = {
        "local_hours": action.local_hours,
        "best_hour": best_hour,
        "declared_hours": not action.time_critical,  # a time-critical action does not wait
        # a cart reminder's best hour is weighed against the cart's age
        "fading": fading_of(action.type, context.profile) if best_hour else None,
    }
    send = policy.send_time(
        context, channel, earliest=earliest, latest=latest, last_message_at=last_message_at, **how
    )
    if isinstance(send, Reason):
        return send
    if capped is not None:
        basis = f"{send.basis}, once the rolling cap frees ({capped.message})"
        send = SendTime(send.at, send.local, basis)
    if lead.days:
        arrives = lead.arrival(send.at, context.zone).astimezone(context.zone)
        basis = f"{send.basis}; arrives {arrives:%a %Y-%m-%d} local ({lead.describe()} later)"
        send = SendTime(send.at, send.local, basis)
    return send


def _messages(context: CustomerContext, catalog: Catalog) -> dict[str, dt.datetime]:
    """The sends of the history that are messages (as screening counts them)."""
    policy = load_contact_policy(None)
    placements = {
        a.id
        for a in catalog
        if not any(policy.rules(c).counts_toward_total for c in a.deliverable_channels)
    }
    return {a: at for a, at in context.action_history.items() if a not in placements}


def test_a_bad_row_in_a_later_chunk_is_named_as_when_read_whole(
    profiles: list[CustomerProfile],
    catalog: Catalog,
    cut: dt.datetime,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Chunks build their own profiles; a row that is not a profile still fails the whole
    run, with every problem named by row and customer, whichever chunk it is in."""
    monkeypatch.setattr(batch, "CHUNK_SIZE", 40)
    frame = profiles_frame(profiles[:120])
    frame.loc[97, "consents"] = "{not json"
    frame.loc[12, "lifecycle_state"] = "zombie"
    for workers in (1, 2):
        with pytest.raises(AudienceError) as error:
            decide_audience(frame, catalog, None, cut, workers=workers)
        with pytest.raises(AudienceError) as whole:
            batch.read_audience(frame)
        assert error.value.problems == whole.value.problems
        assert any(p.startswith("row 98 (customer") for p in error.value.problems)
        assert any(p.startswith("row 13 (customer") for p in error.value.problems)


preferences = timing_preferences.filter(lambda p: p is not None) | st.builds(
    lambda profile: HourPreference.declared_first(profile),
    st.builds(CustomerProfile, st.just("C1"), preferred_hours=st.just("07:30-09")),
)


@settings(max_examples=150, deadline=None)
@given(preference=preferences, hours=st.lists(st.integers(0, 167), max_size=200))
def test_scores_at_are_hour_score_of_each_hour(
    preference: HourPreference | None, hours: list[int]
) -> None:
    assert preference is not None
    expected = [preference.hour_score(h) for h in hours]
    assert preference.scores_at(tuple(hours)) == expected
    assert preference.scores_at(tuple(hours), tuple(h % 24 for h in hours)) == expected
