"""The send-time search for a message whose worth fades (issue 12, item 2).

:func:`nba.timing.find_hourly_send_slot` with a :class:`~nba.timing.Fading` takes the
moment of most (declared hours first) the hour's relative response x the worth left then.
Checked over the same random rules, zones (clock changes among them) and habits as the
plain search: it never goes later than the plain search, it waits for a better hour only
while the message keeps more than :data:`~nba.timing.HOUR_RESPONSE_FLOOR` of its worth
(past the first allowed moment), and a message that hardly fades gets the plain search's
moment (so one whose worth does not fade keeps it).
"""

from __future__ import annotations

import datetime as dt
import zoneinfo

from hypothesis import given, settings
from hypothesis import strategies as st

from nba.actions import ActionType
from nba.ageing import cart_age_factor, fading_of
from nba.profile import HOURS_PER_WEEK, CustomerProfile
from nba.timing import (
    HOUR_RESPONSE_FLOOR,
    AllowedTimes,
    Fading,
    HourPreference,
    TimeWindow,
    find_hourly_send_slot,
)
from tests.test_nba_timing import ZONES, allowed_times, preferences, windows

UTC = dt.UTC
PARIS = zoneinfo.ZoneInfo("Europe/Paris")

fadings = st.one_of(
    st.builds(lambda age: Fading(age, cart_age_factor, "the cart's age"), st.floats(0.0, 96.0)),
    st.builds(
        lambda half_life: Fading(0.0, lambda age: 0.5 ** (age / half_life), "its age"),
        st.sampled_from([1.0, 6.0, 12.3, 48.0]),
    ),
)

search = given(
    zone=st.sampled_from(ZONES),
    earliest=st.datetimes(
        dt.datetime(2026, 3, 20), dt.datetime(2026, 4, 8), timezones=st.just(UTC)
    ),
    hours=st.floats(0, 48),
    allowed=allowed_times,
    local=st.lists(windows, max_size=2).map(tuple),
    preference=preferences.filter(lambda p: p is not None),
    fading=fadings,
)


@settings(max_examples=200, deadline=None)
@search
def test_a_fading_message_never_goes_later_than_its_best_hour(
    zone: str,
    earliest: dt.datetime,
    hours: float,
    allowed: AllowedTimes,
    local: tuple[TimeWindow, ...],
    preference: HourPreference,
    fading: Fading,
) -> None:
    tz = zoneinfo.ZoneInfo(zone)
    latest = earliest + dt.timedelta(hours=hours)
    plain = find_hourly_send_slot(earliest, latest, tz, allowed, local, preference)
    chosen = find_hourly_send_slot(earliest, latest, tz, allowed, local, preference, fading)
    assert (plain is None) == (chosen is None)
    if plain is None or chosen is None:
        return
    assert chosen <= plain
    first = find_hourly_send_slot(earliest, latest, tz, allowed, local)
    assert first is not None and first <= chosen
    if preference.declared is None:  # no declared hours to wait for
        hour = dt.timedelta(hours=1)
        kept = fading.left((chosen - earliest) / hour) / fading.left((first - earliest) / hour)
        assert kept >= HOUR_RESPONSE_FLOOR - 1e-9


@settings(max_examples=200, deadline=None)
@search
def test_a_message_that_hardly_fades_keeps_the_plain_searchs_moment(
    zone: str,
    earliest: dt.datetime,
    hours: float,
    allowed: AllowedTimes,
    local: tuple[TimeWindow, ...],
    preference: HourPreference,
    fading: Fading,
) -> None:
    tz = zoneinfo.ZoneInfo(zone)
    latest = earliest + dt.timedelta(hours=hours)
    plain = find_hourly_send_slot(earliest, latest, tz, allowed, local, preference)
    slow = Fading(0.0, lambda age: 0.5 ** (age / 1e9), "nothing")
    assert find_hourly_send_slot(earliest, latest, tz, allowed, local, preference, slow) == plain


def _active_at(*hours: int) -> HourPreference:
    activity = [0.0] * HOURS_PER_WEEK
    for day in range(7):
        for hour in hours:
            activity[day * 24 + hour] = 1.0
    profile = CustomerProfile("C1", timezone="Europe/Paris", activity_by_hour=activity)
    return HourPreference.for_profile(profile, default_hour=18)


def test_a_fresh_cart_goes_now_a_day_old_one_waits_for_the_evening() -> None:
    """A customer active at 19:00 every day, asked at 09:00: ten hours to their best
    hour. A cart an hour old would keep 0.37 of its worth by then (a power law of the
    cart's age, SaleCycle's): less than the morning's relative response of 0.5, it goes
    now. A cart 20 hours old keeps 0.85: it waits for the evening."""
    now = dt.datetime(2026, 3, 5, 8, tzinfo=UTC)  # Thursday 09:00 in Paris
    day = now + dt.timedelta(hours=24)
    evening = dt.datetime(2026, 3, 5, 18, tzinfo=UTC)
    for age, expected in ((1.0, now), (20.0, evening)):
        cart = fading_of(ActionType.CART_REMINDER, CustomerProfile("C1", cart_age_hours=age))
        assert cart is not None
        at = find_hourly_send_slot(now, day, PARIS, AllowedTimes(), (), _active_at(19), cart)
        assert at == expected, age
    assert fading_of(ActionType.CART_REMINDER, CustomerProfile("C1")) is None  # no cart age


def test_declared_hours_come_before_the_wait() -> None:
    """A customer who declared 18-21 is reached within those hours, even by a message
    that fades: the first of them, unless a later one is enough better."""
    profile = CustomerProfile("C1", timezone="Europe/Paris", preferred_hours="18-21")
    preference = HourPreference.for_profile(profile, default_hour=12)
    now = dt.datetime(2026, 3, 5, 8, tzinfo=UTC)  # Thursday 09:00 in Paris
    day = now + dt.timedelta(hours=24)
    cart = Fading(1.0, cart_age_factor, "the cart's age")
    at = find_hourly_send_slot(now, day, PARIS, AllowedTimes(), (), preference, cart)
    assert at == dt.datetime(2026, 3, 5, 17, tzinfo=UTC)  # 18:00 in Paris
