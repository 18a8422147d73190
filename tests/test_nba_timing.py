"""Send times: quiet hours in the customer's time zone (DST included), French call-centre
rules, and the customer's best hour."""

from __future__ import annotations

import datetime as dt
import zoneinfo
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nba import timing
from nba.channels import Channel
from nba.contact_policy import ContactPolicy, parse_contact_policy
from nba.context import CustomerContext
from nba.profile import ContactHistory, CustomerProfile
from nba.reasons import Reason, ReasonCode
from nba.timing import (
    AllowedTimes,
    HourPreference,
    SendTime,
    TimeWindow,
    find_hourly_send_slot,
    find_send_slot,
)

EXAMPLES = Path(__file__).resolve().parents[1] / "nba" / "examples"
UTC = dt.UTC
ALL = {c: True for c in Channel}


def ctx(now: dt.datetime, tz: str = "Europe/Paris", **fields: object) -> CustomerContext:
    fields.setdefault("consents", ALL)
    return CustomerContext(CustomerProfile("C1", timezone=tz, **fields), now)  # type: ignore[arg-type]


def send(
    now: dt.datetime,
    channel: Channel,
    *,
    tz: str = "Europe/Paris",
    ttl_hours: float = 96,
    best_hour: bool = False,
    policy: ContactPolicy | None = None,
    local_hours: tuple[TimeWindow, ...] = (),
    **fields: object,
) -> SendTime | Reason:
    return (policy or ContactPolicy()).send_time(
        ctx(now, tz, **fields),
        channel,
        earliest=now,
        latest=now + dt.timedelta(hours=ttl_hours),
        local_hours=local_hours,
        best_hour=best_hour,
    )


def at(result: SendTime | Reason) -> dt.datetime:
    assert isinstance(result, SendTime), result
    return result.at


# ---------------------------------------------------------------- windows


def test_time_window_parsing() -> None:
    assert TimeWindow.parse("08:00-20:00") == TimeWindow(480, 1200)
    assert TimeWindow.parse("8-20") == TimeWindow(480, 1200)
    assert TimeWindow.parse("20:00-24:00") == TimeWindow(1200, 1440)
    overnight = TimeWindow.parse("22:00-06:00")
    assert overnight.contains(dt.time(23, 0)) and overnight.contains(dt.time(5, 59))
    assert not overnight.contains(dt.time(6, 0))
    for bad in ("evening", "25:00-26:00", "10:00-10:00", "10:61-11:00"):
        with pytest.raises(ValueError, match="time window"):
            TimeWindow.parse(bad)


def test_allowed_times() -> None:
    rules = AllowedTimes(
        windows=(TimeWindow.parse("10:00-13:00"), TimeWindow.parse("14:00-20:00")),
        weekdays=frozenset(range(5)),
        excluded_dates=frozenset({dt.date(2026, 5, 1)}),
    )
    assert rules.allows(dt.datetime(2026, 3, 4, 12, 59))  # Wednesday
    assert not rules.allows(dt.datetime(2026, 3, 4, 13, 0))  # lunch break
    assert not rules.allows(dt.datetime(2026, 3, 7, 11, 0))  # Saturday
    assert not rules.allows(dt.datetime(2026, 5, 1, 11, 0))  # public holiday
    assert AllowedTimes().unrestricted and not rules.unrestricted


# ---------------------------------------------------------------- quiet hours push, never filter


def test_quiet_hours_push_the_send_to_the_next_allowed_moment() -> None:
    now = dt.datetime(2026, 3, 4, 21, 30, tzinfo=UTC)  # Wednesday 22:30 in Paris
    assert at(send(now, Channel.SMS)) == dt.datetime(2026, 3, 5, 7, 0, tzinfo=UTC)  # 08:00 local
    assert at(send(now, Channel.EMAIL)) == dt.datetime(2026, 3, 5, 6, 0, tzinfo=UTC)  # 07:00 local
    assert at(send(now, Channel.POSTAL)) == now  # no quiet hours


def test_no_sms_on_sunday_and_filtered_only_when_no_slot_is_left() -> None:
    now = dt.datetime(2026, 3, 7, 19, 30, tzinfo=UTC)  # Saturday 20:30 in Paris
    assert at(send(now, Channel.SMS)) == dt.datetime(2026, 3, 9, 7, 0, tzinfo=UTC)  # Monday 08:00
    short = send(now, Channel.SMS, ttl_hours=24)
    assert isinstance(short, Reason) and short.code == ReasonCode.NO_SEND_SLOT
    assert "08:00-20:00" in short.message and "Europe/Paris" in short.message


def test_inside_the_window_the_send_is_immediate() -> None:
    now = dt.datetime(2026, 3, 4, 10, 17, tzinfo=UTC)  # 11:17 in Paris
    result = send(now, Channel.SMS)
    assert isinstance(result, SendTime)
    assert result.at == now and result.basis == "as soon as possible"
    assert result.local == now.astimezone(zoneinfo.ZoneInfo("Europe/Paris"))


@pytest.mark.parametrize(
    ("tz", "now", "channel", "expected_utc"),
    [
        # Paris, spring forward (2026-03-29 02:00 -> 03:00): 09:00 CEST is 07:00 UTC
        (
            "Europe/Paris",
            dt.datetime(2026, 3, 28, 21, 0, tzinfo=UTC),
            Channel.PUSH,
            dt.datetime(2026, 3, 29, 7, 0, tzinfo=UTC),
        ),
        # Paris, fall back (2026-10-25 03:00 -> 02:00): 09:00 CET is 08:00 UTC
        (
            "Europe/Paris",
            dt.datetime(2026, 10, 24, 20, 0, tzinfo=UTC),
            Channel.PUSH,
            dt.datetime(2026, 10, 25, 8, 0, tzinfo=UTC),
        ),
        # New York, spring forward on Sunday 2026-03-08; no SMS on Sunday: Monday 08:00 EDT
        (
            "America/New_York",
            dt.datetime(2026, 3, 8, 2, 0, tzinfo=UTC),
            Channel.SMS,
            dt.datetime(2026, 3, 9, 12, 0, tzinfo=UTC),
        ),
        # New York, fall back on Sunday 2026-11-01: Monday 08:00 EST is 13:00 UTC
        (
            "America/New_York",
            dt.datetime(2026, 11, 1, 3, 0, tzinfo=UTC),
            Channel.SMS,
            dt.datetime(2026, 11, 2, 13, 0, tzinfo=UTC),
        ),
        # Kolkata (+05:30): the local top of the hour is half past in UTC
        (
            "Asia/Kolkata",
            dt.datetime(2026, 3, 6, 0, 10, tzinfo=UTC),
            Channel.EMAIL,
            dt.datetime(2026, 3, 6, 1, 30, tzinfo=UTC),
        ),
        # Sydney (southern hemisphere DST ends 2026-04-05 03:00 -> 02:00), 07:00 AEST = 21:00 UTC
        (
            "Australia/Sydney",
            dt.datetime(2026, 4, 5, 12, 0, tzinfo=UTC),
            Channel.EMAIL,
            dt.datetime(2026, 4, 5, 21, 0, tzinfo=UTC),
        ),
        # Chatham (+13:45 in summer): Saturday 22:45 local, no SMS on Sunday, Monday 08:00
        (
            "Pacific/Chatham",
            dt.datetime(2026, 1, 10, 9, 0, tzinfo=UTC),
            Channel.SMS,
            dt.datetime(2026, 1, 11, 18, 15, tzinfo=UTC),
        ),
    ],
)
def test_quiet_hours_follow_the_customer_time_zone_across_dst(
    tz: str, now: dt.datetime, channel: Channel, expected_utc: dt.datetime
) -> None:
    result = send(now, channel, tz=tz)
    assert at(result) == expected_utc
    assert isinstance(result, SendTime)
    assert ContactPolicy().rules(channel).allowed_times.allows(result.local)
    assert result.local.utcoffset() == result.at.astimezone(zoneinfo.ZoneInfo(tz)).utcoffset()


def test_skipped_local_hour_at_spring_forward_is_never_produced() -> None:
    zone = zoneinfo.ZoneInfo("Europe/Paris")
    start = dt.datetime(2026, 3, 29, 0, 30, tzinfo=UTC)
    seen = []
    find_send_slot(
        start, start + dt.timedelta(hours=4), zone, lambda local: seen.append(local) or False
    )
    assert [t.hour for t in seen] == [1, 3, 4, 5, 6]  # 02:00 local does not exist that night
    assert all(t.minute == 0 for t in seen[1:])


def test_action_local_hours_are_combined_with_channel_quiet_hours() -> None:
    now = dt.datetime(2026, 3, 6, 13, 0, tzinfo=UTC)  # Friday 14:00 in Paris
    evening = (TimeWindow.parse("18:00-22:00"),)
    result = send(now, Channel.PUSH, local_hours=evening, ttl_hours=10)
    assert at(result) == dt.datetime(2026, 3, 6, 17, 0, tzinfo=UTC)  # 18:00 local
    late = send(
        dt.datetime(2026, 3, 6, 21, 30, tzinfo=UTC), Channel.PUSH, local_hours=evening, ttl_hours=6
    )
    assert isinstance(late, Reason) and "within 18:00-22:00" in late.message


# ---------------------------------------------------------------- call centre (French rules)


@pytest.mark.parametrize(
    ("local_now", "expected_local"),
    [
        (dt.datetime(2026, 3, 4, 13, 30), dt.datetime(2026, 3, 4, 14, 0)),  # Wednesday lunch break
        (dt.datetime(2026, 3, 4, 9, 15), dt.datetime(2026, 3, 4, 10, 0)),  # before opening
        (dt.datetime(2026, 3, 4, 11, 45), dt.datetime(2026, 3, 4, 11, 45)),  # open now
        (
            dt.datetime(2026, 3, 6, 20, 30),
            dt.datetime(2026, 3, 9, 10, 0),
        ),  # Friday evening -> Monday
        (dt.datetime(2026, 3, 7, 11, 0), dt.datetime(2026, 3, 9, 10, 0)),  # Saturday -> Monday
        (dt.datetime(2026, 3, 8, 11, 0), dt.datetime(2026, 3, 9, 10, 0)),  # Sunday -> Monday
    ],
)
def test_call_centre_hours(local_now: dt.datetime, expected_local: dt.datetime) -> None:
    zone = zoneinfo.ZoneInfo("Europe/Paris")
    now = local_now.replace(tzinfo=zone).astimezone(UTC)
    result = send(now, Channel.CALL_CENTRE)
    assert isinstance(result, SendTime)
    assert result.local.replace(tzinfo=None) == expected_local


def test_call_centre_friday_evening_with_a_short_ttl_is_filtered() -> None:
    now = dt.datetime(2026, 3, 6, 19, 30, tzinfo=UTC)  # Friday 20:30 in Paris
    result = send(now, Channel.CALL_CENTRE, ttl_hours=24)
    assert isinstance(result, Reason) and result.code == ReasonCode.NO_SEND_SLOT


def test_call_centre_public_holidays_from_the_example_policy() -> None:
    policy = parse_contact_policy((EXAMPLES / "contact_policy.yaml").read_text())
    now = dt.datetime(2026, 5, 1, 8, 0, tzinfo=UTC)  # Friday 1 May, 10:00 in Paris
    result = send(now, Channel.CALL_CENTRE, policy=policy)
    assert isinstance(result, SendTime)
    assert result.local.date() == dt.date(2026, 5, 4) and result.local.hour == 10


def test_call_centre_caps_and_silence_after_a_refusal() -> None:
    policy = ContactPolicy()
    now = dt.datetime(2026, 3, 4, 10, 0, tzinfo=UTC)
    three = ctx(now, contacts=ContactHistory(contacts_30d={Channel.CALL_CENTRE: 3}))
    four = ctx(now, contacts=ContactHistory(contacts_30d={Channel.CALL_CENTRE: 4}))
    assert policy.channel_reason(three, Channel.CALL_CENTRE) is None
    reason = policy.channel_reason(four, Channel.CALL_CENTRE)
    assert reason is not None and reason.code == ReasonCode.CHANNEL_30_DAY_CAP
    assert "4 call_centre contact(s) in 30 days, the cap is 4" in reason.message

    refused = {c: now - dt.timedelta(days=59) for c in (Channel.CALL_CENTRE, Channel.EMAIL)}
    recent = ctx(now, contacts=ContactHistory(last_refusal_at=refused))
    reason = policy.channel_reason(recent, Channel.CALL_CENTRE)
    assert reason is not None and reason.code == ReasonCode.REFUSAL_COOLDOWN
    assert policy.channel_reason(recent, Channel.EMAIL) is None  # 30 days on other channels
    old = ctx(
        now,
        contacts=ContactHistory(last_refusal_at={Channel.CALL_CENTRE: now - dt.timedelta(days=61)}),
    )
    assert policy.channel_reason(old, Channel.CALL_CENTRE) is None


# ---------------------------------------------------------------- best hour


def test_best_hour_from_activity_by_hour_of_week() -> None:
    activity = [0.0] * 168
    activity[3 * 24 + 20] = 1.0  # Thursday 20:00 local
    now = dt.datetime(2026, 3, 2, 9, 0, tzinfo=UTC)  # Monday 10:00 in Paris
    whole_week = ContactPolicy(best_hour_within_hours=None)
    result = send(
        now,
        Channel.EMAIL,
        best_hour=True,
        ttl_hours=24 * 6,
        policy=whole_week,
        activity_by_hour=tuple(activity),
    )
    assert isinstance(result, SendTime)
    assert (result.local.weekday(), result.local.hour) == (3, 20)
    assert "most active" in result.basis


def test_best_hour_within_a_day_of_the_first_allowed_moment() -> None:
    """By default the best hour is looked for within a day (every hour of the day comes
    once): the customer's evening hour today, not Thursday's, since a message due on
    Thursday would hold every channel until 12 hours after it; when the first day allows
    nothing (an SMS decided on Sunday), a day from the first allowed moment after it."""
    activity = [0.0] * 168
    activity[3 * 24 + 20] = 1.0  # Thursday 20:00 local
    now = dt.datetime(2026, 3, 2, 9, 0, tzinfo=UTC)  # Monday 10:00 in Paris
    result = send(
        now, Channel.EMAIL, best_hour=True, ttl_hours=24 * 6, activity_by_hour=tuple(activity)
    )
    assert isinstance(result, SendTime)
    assert (result.local.weekday(), result.local.hour) == (0, 20)
    assert "most active" in result.basis
    sunday = dt.datetime(2026, 3, 8, 6, 0, tzinfo=UTC)  # Sunday 07:00 in Paris
    noon = [0.0] * 168
    noon[3 * 24 + 12] = 1.0  # Thursday 12:00 local
    sms = send(  # the default SMS rules: 08:00-20:00, never on Sunday
        sunday, Channel.SMS, best_hour=True, ttl_hours=120, activity_by_hour=tuple(noon)
    )
    assert isinstance(sms, SendTime)  # a day from Monday 08:00, the first allowed moment
    assert (sms.local.weekday(), sms.local.hour) == (0, 12)
    whole_week = ContactPolicy(best_hour_within_hours=None)
    later = send(
        sunday,
        Channel.SMS,
        best_hour=True,
        ttl_hours=120,
        policy=whole_week,
        activity_by_hour=tuple(noon),
    )
    assert isinstance(later, SendTime) and (later.local.weekday(), later.local.hour) == (3, 12)


def test_best_hour_from_peak_hour_and_channel_default() -> None:
    now = dt.datetime(2026, 3, 2, 9, 0, tzinfo=UTC)  # Monday 10:00 in Paris
    whole_week = ContactPolicy(best_hour_within_hours=None)
    peak = send(
        now,
        Channel.EMAIL,
        best_hour=True,
        ttl_hours=24 * 6,
        policy=whole_week,
        peak_hour_of_week=2 * 24 + 8,
    )
    assert isinstance(peak, SendTime) and (peak.local.weekday(), peak.local.hour) == (2, 8)
    within_a_day = send(
        now, Channel.EMAIL, best_hour=True, ttl_hours=24 * 6, peak_hour_of_week=2 * 24 + 8
    )
    assert isinstance(within_a_day, SendTime)
    assert (within_a_day.local.weekday(), within_a_day.local.hour) == (1, 8)  # its hour, sooner
    default = send(now, Channel.EMAIL, best_hour=True, ttl_hours=48)
    assert isinstance(default, SendTime) and (default.local.weekday(), default.local.hour) == (
        0,
        18,
    )
    assert "default hour (18:00)" in default.basis
    # the best hour is out of reach within quiet hours: the closest allowed hour wins
    sms = send(now, Channel.SMS, best_hour=True, ttl_hours=48, peak_hour_of_week=23)
    assert isinstance(sms, SendTime) and sms.local.hour == 19


def test_hour_preference_sources() -> None:
    assert HourPreference.for_profile(CustomerProfile("C"), 12).source == "channel_default"
    assert (
        HourPreference.for_profile(CustomerProfile("C", peak_hour_of_week=5), 12).source
        == "peak_hour"
    )
    activity = tuple([1 / 168] * 168)
    assert (
        HourPreference.for_profile(CustomerProfile("C", activity_by_hour=activity), 12).source
        == "activity"
    )


def test_minimum_gap_moves_or_filters_the_send() -> None:
    policy = parse_contact_policy("channels: {email: {min_gap_hours: 24}}")
    now = dt.datetime(2026, 3, 4, 10, 0, tzinfo=UTC)
    history = ContactHistory(last_contact_at={Channel.EMAIL: now - dt.timedelta(hours=20)})
    moved = send(now, Channel.EMAIL, policy=policy, contacts=history)
    assert at(moved) == now + dt.timedelta(hours=4)
    filtered = send(now, Channel.EMAIL, policy=policy, contacts=history, ttl_hours=2)
    assert isinstance(filtered, Reason) and filtered.code == ReasonCode.CONTACT_TOO_RECENT


# ---------------------------------------------------------------- the table look-up search

#: Zones with clock changes (one of 30 minutes), odd offsets and none.
ZONES = (
    "Europe/Paris",
    "America/New_York",
    "Australia/Lord_Howe",
    "Pacific/Chatham",
    "Asia/Kolkata",
    "UTC",
)
windows = st.builds(
    lambda a, b: TimeWindow(a, b if b != a else (a + 60) % 1440 or 1440),
    st.integers(0, 1439),
    st.integers(1, 1440),
)
allowed_times = st.builds(
    AllowedTimes,
    windows=st.lists(windows, max_size=2).map(tuple),
    weekdays=st.frozensets(st.integers(0, 6), min_size=1),
    excluded_dates=st.frozensets(st.dates(dt.date(2026, 3, 1), dt.date(2026, 4, 10)), max_size=3),
)
preferences = st.one_of(
    st.none(),
    st.builds(
        lambda profile, hour: HourPreference.for_profile(profile, hour),
        st.builds(
            CustomerProfile,
            st.just("C1"),
            activity_by_hour=st.one_of(
                st.just(()),
                st.lists(st.sampled_from([0.0, 0.5, 1.0, 2.0]), min_size=168, max_size=168).map(
                    tuple
                ),
            ),
            peak_hour_of_week=st.one_of(st.none(), st.integers(0, 167)),
            preferred_hours=st.one_of(st.none(), st.sampled_from(["18-21", "22:00-06:30"])),
        ),
        st.integers(0, 23),
    ),
)


@settings(max_examples=300, deadline=None)
@given(
    zone=st.sampled_from(ZONES),
    earliest=st.datetimes(
        dt.datetime(2026, 3, 20), dt.datetime(2026, 4, 8), timezones=st.just(UTC)
    ),
    hours=st.floats(-2, 24 * 35),
    allowed=allowed_times,
    local=st.lists(windows, max_size=2).map(tuple),
    preference=preferences,
)
def test_the_table_search_answers_as_the_moment_by_moment_search(
    zone: str,
    earliest: dt.datetime,
    hours: float,
    allowed: AllowedTimes,
    local: tuple[TimeWindow, ...],
    preference: HourPreference | None,
) -> None:
    """Clock changes (Paris, New York, Lord Howe's 30 minutes) fall inside the range."""
    tz = zoneinfo.ZoneInfo(zone)
    latest = earliest + dt.timedelta(hours=hours)

    def allows(moment: dt.datetime) -> bool:
        return allowed.allows(moment) and (
            not local or any(w.contains(moment.time()) for w in local)
        )

    expected = find_send_slot(
        earliest, latest, tz, allows, None if preference is None else preference.score
    )
    assert find_hourly_send_slot(earliest, latest, tz, allowed, local, preference) == expected


def test_a_half_hour_clock_change_just_before_the_first_hour_is_searched_moment_by_moment() -> None:
    """Lord Howe leaves daylight time (+11 to +10:30) at the first candidate hour: whole
    UTC hours from there are half past on the customer's clock, which the hour-of-week
    table does not describe (found by the property test above; the table answered 00:30
    Monday, outside the 00:00-00:01 window). Both searches step the local hours: Monday
    00:00 (+10:30) is a candidate, and the answer."""
    zone = zoneinfo.ZoneInfo("Australia/Lord_Howe")
    mondays = AllowedTimes(weekdays=frozenset({0}))
    window = (TimeWindow(0, 1),)
    earliest = dt.datetime(2026, 4, 4, 14, tzinfo=dt.UTC)
    latest = dt.datetime(2026, 4, 5, 14, tzinfo=dt.UTC)

    def allows(moment: dt.datetime) -> bool:
        return mondays.allows(moment) and window[0].contains(moment.time())

    monday_midnight = dt.datetime(2026, 4, 5, 13, 30, tzinfo=dt.UTC)  # 00:00+10:30
    assert find_send_slot(earliest, latest, zone, allows) == monday_midnight
    assert find_hourly_send_slot(earliest, latest, zone, mondays, window) == monday_midnight


@pytest.mark.parametrize(
    ("earliest", "change"),
    [
        # leaving daylight time: 02:00 (+11) becomes 01:30 (+10:30)
        (
            dt.datetime(2026, 4, 4, 12, 10, tzinfo=dt.UTC),
            dt.datetime(2026, 4, 4, 15, tzinfo=dt.UTC),
        ),
        # entering it: 02:00 (+10:30) becomes 02:30 (+11)
        (
            dt.datetime(2026, 10, 3, 12, 10, tzinfo=dt.UTC),
            dt.datetime(2026, 10, 3, 15, 30, tzinfo=dt.UTC),
        ),
    ],
)
def test_after_a_half_hour_clock_change_the_search_steps_the_local_hours(
    earliest: dt.datetime, change: dt.datetime
) -> None:
    """Lord Howe's 30-minute clock changes: every candidate after the first moment is a
    local top of the hour, on either side of the change, one per local hour; a window
    opening at 07:00 the next morning is met at 07:00, by both searches."""
    zone = zoneinfo.ZoneInfo("Australia/Lord_Howe")
    latest = earliest + dt.timedelta(hours=30)
    seen: list[dt.datetime] = []

    def every(local: dt.datetime) -> bool:
        seen.append(local)
        return False

    assert find_send_slot(earliest, latest, zone, every) is None
    tops = seen[1:]
    assert all((m.minute, m.second) == (0, 0) for m in tops)
    assert any(m < change for m in tops) and any(m > change for m in tops)
    assert len({(m.date(), m.hour, m.utcoffset()) for m in tops}) == len(tops)
    mornings = AllowedTimes(windows=(TimeWindow.parse("07:00-21:00"),))
    opening = find_hourly_send_slot(earliest, latest, zone, mornings)  # asked at night
    assert opening is not None and opening > change
    assert opening.astimezone(zone).time() == dt.time(7, 0)
    assert opening == find_send_slot(earliest, latest, zone, mornings.allows)


def test_a_range_searched_for_many_customers_answers_for_each_of_them() -> None:
    """The search plan of a range (its allowed hours) is shared by the customers decided
    at one moment in one zone: each still gets the hour of their own habits, and rules
    built anew (even where an old object's identity is reused) get their own plan."""
    paris = zoneinfo.ZoneInfo("Europe/Paris")
    earliest = dt.datetime(2026, 3, 6, 8, 20, tzinfo=UTC)
    latest = earliest + dt.timedelta(hours=72)
    evenings = AllowedTimes(windows=(TimeWindow.parse("08:00-21:00"),))
    answers = set()
    for peak in (9, 13, 19, 24 + 9, None):
        profile = CustomerProfile("C1", peak_hour_of_week=peak)
        preference = HourPreference.for_profile(profile, default_hour=11)
        expected = find_send_slot(earliest, latest, paris, evenings.allows, preference.score)
        assert find_hourly_send_slot(earliest, latest, paris, evenings, (), preference) == expected
        answers.add(expected)
    assert len(answers) == 5  # every customer their own hour, from one plan
    # plans are keyed by the rules' identity: a plan left by rules whose id another
    # object now has (ids are reused once an object is freed) is not taken for its own
    mornings = AllowedTimes(windows=(TimeWindow.parse("10:00-11:00"),))
    timing._plan(earliest, latest, paris, evenings, ())
    stale = timing._PLANS.pop((earliest, latest, paris, id(evenings), ()))
    timing._PLANS[(earliest, latest, paris, id(mornings), ())] = stale
    expected = find_send_slot(earliest, latest, paris, mornings.allows)
    assert expected is not None and expected.astimezone(paris).hour == 10
    assert find_hourly_send_slot(earliest, latest, paris, mornings) == expected


@settings(max_examples=300, deadline=None)
@given(
    moment=st.datetimes(min_value=dt.datetime(1, 1, 1), max_value=dt.datetime(9999, 12, 31)),
    zone=st.sampled_from([None, "UTC", "Europe/Paris", "America/New_York", "Asia/Kolkata"]),
)
def test_minute_text_writes_what_strftime_writes(moment: dt.datetime, zone: str | None) -> None:
    """Explanations and messages write minutes by integer formatting: the text
    strftime gives, with and without the weekday, naive or in a zone, any year."""
    if zone is not None:
        moment = moment.replace(tzinfo=zoneinfo.ZoneInfo(zone))
    assert timing.minute_text(moment) == f"{moment:%Y-%m-%d %H:%M}"
    assert timing.minute_text(moment, weekday=True) == f"{moment:%a %Y-%m-%d %H:%M}"
