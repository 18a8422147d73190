"""Batch and point-in-time profiles: correct values, no leakage, table round trip."""

from __future__ import annotations

import dataclasses
import datetime as dt

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from features.batch import build_profiles, point_in_time
from features.columnar import ColumnarState
from features.dataset import RetailDataset
from features.finalise import days_to_birthday
from features.profile_table import profile_to_row, profiles_frame, row_to_profile
from nba.channels import Channel
from nba.profile import JourneyPhase, LifecycleState
from tests.helpers import (
    END,
    PRIORS,
    START,
    assert_profiles_equal,
    event_strategy,
    events_frame,
    with_events,
)

SETTINGS = settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@SETTINGS
@given(
    raw=st.lists(event_strategy, min_size=1, max_size=30),
    cut_offset=st.integers(min_value=0, max_value=5 * 24 * 3600),
    noise=st.lists(event_strategy, max_size=10),
)
def test_point_in_time_sees_only_the_past(base: RetailDataset, raw, cut_offset, noise) -> None:  # type: ignore[no-untyped-def]
    """A row's profile equals the batch profile of events strictly before its time,
    and events at or after that time (however many) do not change it."""
    events = events_frame(raw)
    cut = START + pd.Timedelta(seconds=cut_offset)
    rows = pd.DataFrame({"customer_id": ["C1", "C2"], "timestamp": [cut, cut]})
    got = point_in_time(with_events(base, events), rows, priors=PRIORS)

    past = events[events["timestamp"] < cut]
    expected = {
        p.customer_id: p
        for p in build_profiles(
            with_events(base, past), as_of=cut.to_pydatetime(), priors=PRIORS
        ).profiles
    }
    for profile in got:
        assert_profiles_equal(profile, expected[profile.customer_id])

    # the future, rewritten: more events at or after the cut
    future = events_frame(noise, prefix="f")
    future["timestamp"] = cut + pd.to_timedelta(future.index, unit="s")
    rewritten = pd.concat([past, future], ignore_index=True)
    again = point_in_time(with_events(base, rewritten), rows, priors=PRIORS)
    for a, b in zip(got, again, strict=True):
        assert_profiles_equal(a, b)


@settings(
    max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    raw=st.lists(event_strategy, min_size=1, max_size=40),
    cuts=st.lists(
        st.tuples(st.sampled_from(["C1", "C2"]), st.integers(0, 5 * 24 * 3600)),
        min_size=1,
        max_size=4,
    ),
)
def test_many_rows_cut_in_one_pass_equal_one_batch_build_per_row(
    base: RetailDataset, raw, cuts
) -> None:  # type: ignore[no-untyped-def]
    """Rows of the same customers at different times, in any order and repeated, each
    equal the batch profile of the events strictly before its own time."""
    events = events_frame(raw)
    rows = pd.DataFrame(
        {
            "customer_id": [c for c, _ in cuts],
            "timestamp": [START + pd.Timedelta(seconds=s) for _, s in cuts],
        }
    )
    got = point_in_time(with_events(base, events), rows, priors=PRIORS)
    assert [p.customer_id for p in got] == rows["customer_id"].tolist()
    for profile, cut in zip(got, rows["timestamp"], strict=True):
        past = with_events(base, events[events["timestamp"] < cut])
        build = build_profiles(past, as_of=cut.to_pydatetime(), priors=PRIORS, workers=1)
        expected = {p.customer_id: p for p in build.profiles}
        assert_profiles_equal(profile, expected[profile.customer_id])


def test_point_in_time_rows_keep_their_order_and_own_times(base: RetailDataset) -> None:
    events = events_frame(
        [
            ("C1", 60, ("web", "add_to_cart"), "P1", None),
            ("C1", 3600, ("app", "purchase"), "P1", "O1"),
        ]
    )
    rows = pd.DataFrame(
        {
            "customer_id": ["C1", "C1", "C1"],
            "timestamp": [START + pd.Timedelta(seconds=s) for s in (7200, 120, 3600)],
        }
    )
    after, during, at_purchase = point_in_time(with_events(base, events), rows, priors=PRIORS)
    assert (after.purchases_total, after.cart_items) == (1, ())
    assert (during.purchases_total, during.cart_items) == (0, ("P1",))
    # a row at the purchase's own timestamp must not see the purchase
    assert (at_purchase.purchases_total, at_purchase.cart_items) == (0, ("P1",))


def test_profile_values_on_a_known_history(base: RetailDataset) -> None:
    events = events_frame(
        [
            ("C1", 0, ("web", "product_view"), "P1", None),
            ("C1", 60, ("web", "add_to_cart"), "P1", None),
            ("C1", 120, ("web", "product_view"), "P2", None),
            ("C1", 180, ("web", "add_to_cart"), "P2", None),
            ("C1", 240, ("web", "remove_from_cart"), "P2", None),
            ("C1", 3 * 24 * 3600, ("email", "message_sent"), None, None),
            ("C1", 3 * 24 * 3600 + 10, ("email", "message_delivered"), None, None),
            ("C1", 3 * 24 * 3600 + 600, ("email", "message_opened"), None, None),
            ("C2", 100, ("sms", "sms_stop"), None, None),
        ]
    )
    build = build_profiles(with_events(base, events), as_of=END.to_pydatetime(), priors=PRIORS)
    c1, c2 = sorted(build.profiles, key=lambda p: p.customer_id)
    assert c1.cart_items == ("P1",)
    assert c1.cart_value == pytest.approx(59.9)
    assert c1.cart_age_hours == pytest.approx((5 * 24 * 3600 - 60) / 3600)
    assert c1.journey_phase is JourneyPhase.DECISION
    assert c1.browsed_products == ("P2", "P1")  # most recent first
    # same interest in both (a view and an add each); the more recent one weighs a little more
    assert sum(c1.category_affinity.values()) == pytest.approx(1.0)
    assert 0.5 < c1.category_affinity["shirts"] < 0.5 + 1e-4
    assert c1.top_category == "shirts"
    email = c1.engagement[Channel.EMAIL]
    assert (email.sent, email.delivered, email.opened) == (1, 1, 1)
    # one open in one delivery, shrunk toward the 25% prior with weight 10
    assert email.open_rate == pytest.approx((1 + 0.25 * 10) / (1 + 10))
    assert c1.contacts.contacts_7d == {Channel.EMAIL: 1}
    assert c1.lifecycle_state is LifecycleState.PROSPECT
    assert c1.days_to_birthday == days_to_birthday(
        dt.date(1990, 4, 12), END.tz_convert("Europe/Paris").date()
    )
    assert c1.loyalty_tier == "gold"
    assert c2.consented(Channel.SMS) is False  # STOP after an opt-in
    assert c2.consented(Channel.POSTAL) is True


def test_consent_withdrawn_after_the_cut_is_not_known_before_it(base: RetailDataset) -> None:
    # C2 withdrew e-mail consent on 2025-06-01 (customers table): before that it was never given
    cut = pd.Timestamp("2025-05-01T00:00:00Z")
    (profile,) = point_in_time(
        with_events(base, events_frame([])),
        pd.DataFrame({"customer_id": ["C1"], "timestamp": [cut]}),
    )
    # C1's push consent is stamped 2025-02-01: known on 2025-05-01
    assert profile.consented(Channel.PUSH) is True
    early = pd.Timestamp("2025-01-20T00:00:00Z")
    (before_push,) = point_in_time(
        with_events(base, events_frame([])),
        pd.DataFrame({"customer_id": ["C1"], "timestamp": [early]}),
    )
    assert before_push.consented(Channel.PUSH) is False


def test_profile_rows_round_trip(base: RetailDataset, tmp_path) -> None:  # type: ignore[no-untyped-def]
    events = events_frame(
        [
            ("C1", 0, ("web", "product_view"), "P1", None),
            ("C1", 60, ("web", "add_to_cart"), "P1", None),
            ("C1", 100, ("email", "message_sent"), None, None),
            ("C1", 200, ("email", "message_clicked"), None, None),
            ("C1", 300, ("app", "purchase"), "P2", "O1"),
        ]
    )
    profiles = build_profiles(
        with_events(base, events), as_of=END.to_pydatetime(), priors=PRIORS
    ).profiles
    frame = profiles_frame(profiles)
    frame.to_parquet(tmp_path / "profiles.parquet")
    back = pd.read_parquet(tmp_path / "profiles.parquet")
    for profile, (_, row) in zip(profiles, back.iterrows(), strict=True):
        assert_profiles_equal(row_to_profile(row.to_dict()), profile)
        assert profile_to_row(profile)["consent_email"] == profile.consented(Channel.EMAIL)


def test_customers_created_after_as_of_are_left_out(base: RetailDataset) -> None:
    build = build_profiles(
        with_events(base, events_frame([])), as_of=dt.datetime(2025, 2, 1, tzinfo=dt.UTC)
    )
    assert [p.customer_id for p in build.profiles] == ["C1"]


def test_build_is_deterministic(base: RetailDataset) -> None:
    events = events_frame(
        [("C1", i * 997, t, "P1", None) for i, t in enumerate([("web", "product_view")] * 5)]
    )
    a = build_profiles(with_events(base, events), as_of=END.to_pydatetime())
    b = build_profiles(
        with_events(base, events.sample(frac=1, random_state=3)), as_of=END.to_pydatetime()
    )
    for x, y in zip(a.profiles, b.profiles, strict=True):
        assert dataclasses.asdict(x) == dataclasses.asdict(y)


def test_peak_hour_is_where_the_smoothed_activity_peaks_earliest_on_a_tie() -> None:
    from features.finalise import _peak_hour

    assert _peak_hour({10: 3.0}) == 10
    # 1-2-1 smoothing: hour 21 (2 + 2 * 2 + 2 = 8) beats the lone 3.5 at hour 40 (7)
    assert _peak_hour({20: 2.0, 21: 2.0, 22: 2.0, 40: 3.5}) == 21
    # the week wraps around: Sunday 23:00 and Monday 00:00 are neighbours
    assert _peak_hour({167: 2.0, 0: 2.0, 80: 2.5}) == 0  # 2 + 2 * 2 (+ 0) against 5
    assert _peak_hour({30: 1.0, 90: 1.0}) == 30


def test_a_build_leaves_the_cycle_collector_as_it_found_it(base: RetailDataset) -> None:
    import gc

    events = events_frame([("C1", 0, ("web", "product_view"), "P1", None)])
    data = with_events(base, events)
    assert gc.isenabled()
    build_profiles(data, as_of=END.to_pydatetime())
    assert gc.isenabled()
    gc.disable()
    try:
        build_profiles(data, as_of=END.to_pydatetime())
        assert not gc.isenabled()
    finally:
        gc.enable()
    with pytest.raises(KeyError):
        build_profiles(dataclasses.replace(data, events=data.events.drop(columns="timestamp")))
    assert gc.isenabled()


def test_a_combined_state_without_any_field_has_no_owner_state() -> None:
    # a cut before every event leaves no field: no state, not a zip length error
    none = np.array([], dtype=np.int64)
    text = np.array([], dtype=object)
    empty = ColumnarState(none, none, np.array([], dtype=float), text, text, text)
    assert empty.states(np.array(["C1", "C2"], dtype=object)) == {}
    one = ColumnarState(
        np.array([1, 1]),
        np.array([0, 1]),
        np.array([2.0, 3.0]),
        np.array(["np", "pd:20512"], dtype=object),
        np.array(["np", "pd"], dtype=object),
        np.array(["", "20512"], dtype=object),
    )
    assert one.states(np.array(["C1", "C2"], dtype=object)) == {"C2": {"np": 2.0, "pd:20512": 3.0}}
