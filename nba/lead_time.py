"""How long a message takes to reach the customer, counted in the carrier's delivery days.

A channel's lead time (:attr:`nba.contact_policy.ChannelRules.lead_time_days`) counts
the days its carrier delivers, not calendar days: La Poste's J+3 for a standard letter
means the third working day after the day it is posted (La Poste delivers Monday to
Saturday), and Sundays and public holidays do not count. So a letter posted on a Friday
arrives on Tuesday (Saturday, Monday, Tuesday), not on Monday; one posted on Good Friday
arrives on Wednesday, Easter Monday being a holiday.

The general rule, for every channel with a lead time:

* the message **arrives** on the ``days``-th delivery day after the local day it is sent
  (a delivery day: one of ``weekdays``, not one of ``holidays``; a fraction of a day
  counts as a whole one), by :data:`DELIVERY_HOUR` local time (letters are delivered in
  the morning rounds). The arrival depends on the day of the send, not its hour: a
  letter posted on Saturday evening lands with one posted on Sunday;
* a message that must **arrive by** a deadline (its offer's end, a birthday) is sent no
  later than the last day whose post still arrives in time (:meth:`LeadTime.latest_send`);
* an offer's time limit (``expires_after_hours``) runs **from the arrival**: the customer
  cannot use a coupon before it is in their hands (:mod:`nba.policy`).

>>> import zoneinfo
>>> from nba.holidays import ExcludedDays, FRENCH_PUBLIC_HOLIDAYS
>>> paris = zoneinfo.ZoneInfo("Europe/Paris")
>>> post = LeadTime(3, frozenset(range(6)), ExcludedDays.parse(FRENCH_PUBLIC_HOLIDAYS))
>>> friday = dt.datetime(2026, 3, 13, 9, 0, tzinfo=dt.UTC)  # 10:00 in Paris
>>> post.arrival(friday, paris).astimezone(paris).strftime("%a %d %b %H:%M")
'Tue 17 Mar 12:00'
>>> before_easter = dt.datetime(2026, 4, 3, 8, 0, tzinfo=dt.UTC)  # Good Friday, 10:00
>>> post.arrival(before_easter, paris).astimezone(paris).strftime("%a %d %b")
'Wed 08 Apr'
>>> birthday_ends = dt.datetime(2026, 4, 9, tzinfo=paris)  # the end of Wednesday 8 April
>>> post.latest_send(birthday_ends, paris, before_easter).astimezone(paris).strftime("%a %H:%M")
'Fri 23:59'
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass, field

from nba.holidays import ExcludedDays

#: Local hour by which a message with a lead time is delivered on its arrival day.
DELIVERY_HOUR = 12
#: How far back :meth:`LeadTime.latest_send` looks for a day whose post still arrives.
_SEARCH_DAYS = 120


@dataclass(frozen=True)
class LeadTime:
    """``days`` of delivery (``weekdays``, Monday = 0, minus ``holidays``) between a send
    and its arrival."""

    days: float
    weekdays: frozenset[int] = frozenset(range(7))
    holidays: ExcludedDays = field(default_factory=ExcludedDays)

    def __post_init__(self) -> None:
        if self.days > 0 and not self.weekdays:
            raise ValueError("a lead time needs at least one delivery weekday")

    def delivers_on(self, day: dt.date) -> bool:
        return day.weekday() in self.weekdays and day not in self.holidays

    def arrival_day(self, sent_on: dt.date) -> dt.date:
        """The local day a message sent on ``sent_on`` arrives."""
        day, counted = sent_on, 0
        while counted < math.ceil(self.days):
            day += dt.timedelta(days=1)
            counted += self.delivers_on(day)
        return day

    def arrival(self, sent: dt.datetime, zone: dt.tzinfo) -> dt.datetime:
        """When a message sent at ``sent`` (aware) reaches a customer in ``zone`` (UTC)."""
        if self.days <= 0:
            return sent
        day = self.arrival_day(sent.astimezone(zone).date())
        return _local(day, zone, dt.time(DELIVERY_HOUR))

    def latest_send(
        self, deadline: dt.datetime, zone: dt.tzinfo, not_before: dt.datetime
    ) -> dt.datetime | None:
        """The latest send from ``not_before`` on that arrives by ``deadline`` (both aware):
        the end of the last local day whose post arrives in time; ``None`` when even a
        send at ``not_before`` arrives too late."""
        if self.days <= 0:
            return deadline if deadline >= not_before else None
        day = deadline.astimezone(zone).date()
        first = not_before.astimezone(zone).date()
        for _ in range(_SEARCH_DAYS):
            if day < first:
                return None
            if _local(self.arrival_day(day), zone, dt.time(DELIVERY_HOUR)) <= deadline:
                end = _local(day + dt.timedelta(days=1), zone, dt.time())
                return end - dt.timedelta(minutes=1)
            day -= dt.timedelta(days=1)
        return None

    def describe(self) -> str:
        """``3 delivery days`` or ``3 days`` (every day counts)."""
        unit = "days" if len(self.weekdays) == 7 and not self.holidays else "delivery days"
        return f"{self.days:g} {unit}"


def _local(day: dt.date, zone: dt.tzinfo, at: dt.time) -> dt.datetime:
    return dt.datetime.combine(day, at, tzinfo=zone).astimezone(dt.UTC)
