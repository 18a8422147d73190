"""The random baseline's send times: uniform among the allowed moments, whatever the rules.

:class:`~simulator.closed_loop.send_times.UniformSendTimes` looks most candidates up in
the week's table of allowed hours; these tests hold it to the rules evaluated moment by
moment (every weekday, excluded dates, the action's own hours, time zones with clock
changes of an hour and of 30 minutes, offsets of 30 and 45 minutes).
"""

from __future__ import annotations

import datetime as dt
import hashlib

import pytest

from nba.channels import Channel
from nba.contact_policy import ContactPolicy
from nba.context import CustomerContext
from nba.profile import CustomerProfile
from nba.timing import SendTime, TimeWindow, find_send_slot
from simulator.closed_loop.send_times import UniformSendTimes

RULES = ContactPolicy.from_dict(
    {
        "channels": {
            "sms": {"hours": ["08:00-20:00"], "weekdays": ["mon", "tue", "wed", "thu", "fri"]},
            "call_centre": {
                "hours": ["10:00-13:00", "14:30-20:00"],
                "excluded_dates": ["2026-04-06", "2026-10-05", "2026-10-06"],
            },
            "email": {"hours": ["22:00-06:00"]},  # across midnight
        }
    }
)
ZONES = [
    "Europe/Paris",
    "America/New_York",
    "Australia/Lord_Howe",  # a clock change of 30 minutes
    "Asia/Kolkata",  # +05:30
    "Asia/Kathmandu",  # +05:45
    "UTC",
]
#: Around the spring and autumn clock changes of both hemispheres, and ordinary days.
STARTS = [
    dt.datetime(2026, 3, 27, 17, 23, tzinfo=dt.UTC),
    dt.datetime(2026, 4, 3, 21, 0, tzinfo=dt.UTC),
    dt.datetime(2026, 10, 2, 9, 41, 7, tzinfo=dt.UTC),
    dt.datetime(2026, 10, 24, 23, 59, tzinfo=dt.UTC),
    dt.datetime(2026, 6, 10, 4, 30, tzinfo=dt.UTC),
    dt.datetime(2026, 6, 10, 14, 45, tzinfo=dt.UTC),  # within an hour partly allowed
]


def moment_by_moment(
    policy: UniformSendTimes,
    context: CustomerContext,
    channel: Channel,
    latest: dt.datetime,
    windows: tuple[TimeWindow, ...],
) -> dt.datetime | None:
    """The definition: the first allowed moment, then every local top of the hour,
    each checked by the rules themselves; the highest draw wins."""
    first = ContactPolicy.send_time(
        policy,
        context,
        channel,
        earliest=context.now_utc,
        latest=latest,
        local_hours=windows,
        best_hour=False,
        declared_hours=False,
    )
    if not isinstance(first, SendTime):
        return None
    rules = policy.rules(channel).allowed_times
    key = f"{policy.seed}:{context.customer_id}:{context.now_utc.isoformat()}:{channel.value}"

    def allowed(local: dt.datetime) -> bool:
        return rules.allows(local) and (
            not windows or any(w.contains(local.time()) for w in windows)
        )

    def draw(local: dt.datetime) -> float:
        digest = hashlib.blake2b(f"{key}:{local.isoformat()}".encode(), digest_size=8)
        return int.from_bytes(digest.digest(), "big") / 2.0**64

    return find_send_slot(first.at, latest, context.zone, allowed, draw)


@pytest.mark.parametrize("zone", ZONES)
def test_table_look_ups_draw_the_moment_the_rules_allow(zone: str) -> None:
    profile = CustomerProfile(customer_id="C1", timezone=zone)
    checked = 0
    for seed in range(10):
        policy = UniformSendTimes.of(RULES, seed=seed)
        for start in STARTS:
            context = CustomerContext(profile, start)
            for channel in (Channel.SMS, Channel.CALL_CENTRE, Channel.EMAIL):
                for windows in ((), (TimeWindow.parse("09:15-18:00"),)):
                    latest = start + dt.timedelta(hours=96)
                    got = policy.send_time(
                        context, channel, earliest=start, latest=latest, local_hours=windows
                    )
                    expected = moment_by_moment(policy, context, channel, latest, windows)
                    assert (got.at if isinstance(got, SendTime) else None) == expected, (
                        zone,
                        seed,
                        start,
                        channel,
                        windows,
                    )
                    checked += expected is not None
    assert checked > 250  # most combinations have an allowed moment
