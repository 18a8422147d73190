"""Send time: allowed hours in the customer's time zone, and the best moment to send.

Quiet hours never filter an action by themselves: they push its send time to
the next allowed moment. :func:`find_send_slot` scans the moments between the
earliest and the latest allowed send (the action's time-to-live) at the
customer's local top of each hour, keeps those the rules allow (evaluated in
the customer's time zone with :mod:`zoneinfo`, so daylight-saving changes are
handled), and returns the first one, or the one the customer prefers. Only
when no moment is allowed does the caller filter the action out. A message whose worth
fades as it waits (:class:`Fading`: a cart reminder's, with the cart's age) weighs the
customer's preferred hour against the worth it would lose by then.

>>> import datetime as dt, zoneinfo
>>> paris = zoneinfo.ZoneInfo("Europe/Paris")
>>> sms = AllowedTimes(windows=(TimeWindow.parse("08:00-20:00"),), weekdays=frozenset(range(6)))
>>> now = dt.datetime(2026, 3, 6, 20, 30, tzinfo=dt.UTC)  # Friday 21:30 in Paris
>>> find_send_slot(now, now + dt.timedelta(hours=48), paris, sms.allows)
datetime.datetime(2026, 3, 7, 7, 0, tzinfo=datetime.timezone.utc)
"""

from __future__ import annotations

import datetime as dt
import functools
import operator
import re
import zoneinfo
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Literal

from nba.frozen import fast_init
from nba.holidays import ExcludedDays
from nba.profile import HOURS_PER_WEEK, CustomerProfile

#: Longest horizon a send-time search scans (hours): a time-to-live is capped to it.
MAX_HORIZON_HOURS = 24 * 31

_WINDOW_RE = re.compile(r"^\s*(\d{1,2})(?::(\d{2}))?\s*-\s*(\d{1,2})(?::(\d{2}))?\s*$")


@dataclass(frozen=True, slots=True)
class TimeWindow:
    """Local clock times ``[start, end)``, in minutes after midnight.

    ``end`` may be 1440 (midnight at the end of the day); a window whose end is
    before its start spans midnight (``22:00-06:00``).

    >>> TimeWindow.parse("10:00-13:00").contains(dt.time(12, 59))
    True
    >>> TimeWindow.parse("10-13").contains(dt.time(13, 0))
    False
    >>> str(TimeWindow.parse("22:00-06:00"))
    '22:00-06:00'
    """

    start: int
    end: int

    def __post_init__(self) -> None:
        if not (0 <= self.start < 1440 and 0 < self.end <= 1440) or self.start == self.end:
            raise ValueError(f"invalid time window {self.start}-{self.end} (minutes)")

    @classmethod
    def parse(cls, text: str) -> TimeWindow:
        """Read ``HH:MM-HH:MM`` or ``HH-HH``; raise ``ValueError`` saying what to write."""
        match = _WINDOW_RE.match(str(text))
        if match is None:
            raise ValueError(f"time window {text!r} is not HH:MM-HH:MM (e.g. 08:00-20:00)")
        h1, m1, h2, m2 = (int(g) if g else 0 for g in match.groups())
        if h1 > 23 or h2 > 24 or m1 > 59 or m2 > 59 or (h2 == 24 and m2 != 0):
            raise ValueError(f"time window {text!r} has an impossible time")
        start, end = h1 * 60 + m1, h2 * 60 + m2
        if start == end:
            raise ValueError(f"time window {text!r} is empty")
        return cls(start, end if end else 1440)

    def contains(self, clock: dt.time) -> bool:
        return self.contains_minute(clock.hour * 60 + clock.minute)

    def contains_minute(self, minute: int) -> bool:
        """:meth:`contains` for the clock time ``minute`` minutes after midnight."""
        if self.start < self.end:
            return self.start <= minute < self.end
        return minute >= self.start or minute < self.end

    def __str__(self) -> str:
        def hhmm(m: int) -> str:
            return f"{m // 60:02d}:{m % 60:02d}"

        return f"{hhmm(self.start)}-{hhmm(self.end)}"


@dataclass(frozen=True, slots=True)
class AllowedTimes:
    """When contact is allowed, in local time: clock windows, weekdays, excluded dates.

    Empty ``windows`` mean any time of day; ``weekdays`` count from Monday = 0.
    """

    windows: tuple[TimeWindow, ...] = ()
    weekdays: frozenset[int] = frozenset(range(7))
    #: days without contact (public holidays of every year, one-off dates)
    excluded_dates: ExcludedDays | frozenset[dt.date] = frozenset()

    def allows(self, local: dt.datetime) -> bool:
        """True when a message may be sent at the local moment ``local``."""
        if local.weekday() not in self.weekdays or local.date() in self.excluded_dates:
            return False
        clock = local.time()
        return not self.windows or any(w.contains(clock) for w in self.windows)

    @property
    def unrestricted(self) -> bool:
        return not self.windows and len(self.weekdays) == 7 and not self.excluded_dates


@functools.lru_cache(maxsize=256)
def hours_allowed(allowed: AllowedTimes, windows: tuple[TimeWindow, ...] = ()) -> tuple[bool, ...]:
    """Whether ``allowed`` (excluded dates aside) and ``windows`` (any of them, when
    given) allow the local top of each hour of the week, Monday 00:00 being hour 0:
    the table :func:`find_hourly_send_slot` looks moments up in, built once per rule set.

    >>> sms = AllowedTimes(windows=(TimeWindow.parse("08:00-20:00"),), weekdays=frozenset(range(6)))
    >>> table = hours_allowed(sms)
    >>> table[7], table[8], table[19], table[20], table[6 * 24 + 12]  # Sunday noon
    (False, True, True, False, False)
    """
    table = []
    for hour_of_week in range(HOURS_PER_WEEK):
        weekday, minute = hour_of_week // 24, (hour_of_week % 24) * 60
        table.append(
            weekday in allowed.weekdays
            and (not allowed.windows or any(w.contains_minute(minute) for w in allowed.windows))
            and (not windows or any(w.contains_minute(minute) for w in windows))
        )
    return tuple(table)


def find_send_slot(
    earliest: dt.datetime,
    latest: dt.datetime,
    zone: zoneinfo.ZoneInfo,
    allowed: Callable[[dt.datetime], bool],
    preference: Callable[[dt.datetime], float] | None = None,
) -> dt.datetime | None:
    """The moment to send, in UTC, or ``None`` when no allowed moment exists.

    Candidates are ``earliest`` itself and then the customer's local top of each
    hour up to ``latest`` (inclusive). ``allowed`` and ``preference`` receive
    local times. Without a preference the first allowed candidate wins;
    otherwise the most preferred, the earliest among equals.
    """
    earliest = earliest.astimezone(dt.UTC)
    latest = min(latest.astimezone(dt.UTC), earliest + dt.timedelta(hours=MAX_HORIZON_HOURS))
    best: dt.datetime | None = None
    best_score = float("-inf")
    for moment in _candidates(earliest, latest, zone):
        local = moment.astimezone(zone)
        if not allowed(local):
            continue
        if preference is None:
            return moment
        score = preference(local)
        if score > best_score:
            best, best_score = moment, score
    return best


def find_hourly_send_slot(
    earliest: dt.datetime,
    latest: dt.datetime,
    zone: zoneinfo.ZoneInfo,
    allowed: AllowedTimes,
    windows: tuple[TimeWindow, ...] = (),
    preference: HourPreference | None = None,
    fading: Fading | None = None,
) -> dt.datetime | None:
    """:func:`find_send_slot` for rules given as data, by table look-ups.

    The same answer as ``find_send_slot(earliest, latest, zone, f, preference.score)``
    where ``f(local)`` is ``allowed.allows(local)`` and, when ``windows`` are given, one
    of them contains ``local``. Between clock changes the customer's local top of each
    hour is a fixed hour of the week, so each candidate is an index into
    :func:`hours_allowed` and :meth:`HourPreference.hour_score` instead of a time-zone
    conversion and a rule evaluation; a range with a clock change in it is searched
    moment by moment.

    >>> paris = zoneinfo.ZoneInfo("Europe/Paris")
    >>> sms = AllowedTimes(windows=(TimeWindow.parse("08:00-20:00"),), weekdays=frozenset(range(6)))
    >>> now = dt.datetime(2026, 3, 6, 20, 30, tzinfo=dt.UTC)  # Friday 21:30 in Paris
    >>> find_hourly_send_slot(now, now + dt.timedelta(hours=48), paris, sms)
    datetime.datetime(2026, 3, 7, 7, 0, tzinfo=datetime.timezone.utc)

    With ``fading`` (a message whose worth fades as it waits: a cart reminder's with the
    cart's age, :func:`nba.ageing.fading_of`) and a preference, the moment maximises the
    hour's response (:meth:`HourPreference.response_at`) times the worth left then
    (:meth:`Fading.left`): a later hour wins only if it is enough better to pay for the
    wait. A customer seen once, on Wednesday at 15:00, asked on Thursday at 16:30 with
    their cart 25.5 hours old: the second reminder goes now rather than at Friday's 15:00
    (22.5 hours later, 0.77 of its worth left for an hour only a little better); the
    weekly picks, whose worth does not fade, wait for it.

    >>> habit = [0.0] * HOURS_PER_WEEK
    >>> habit[2 * 24 + 15] = 1.0  # Wednesday 15:00 local
    >>> seen = HourPreference.for_profile(CustomerProfile("C1", activity_by_hour=habit), 18)
    >>> now = dt.datetime(2026, 3, 5, 15, 30, tzinfo=dt.UTC)  # Thursday 16:30 in Paris
    >>> day, email = now + dt.timedelta(hours=24), AllowedTimes()
    >>> cart = Fading(25.5, lambda age: (age / 6.0) ** -0.41, "the cart's age")
    >>> find_hourly_send_slot(now, day, paris, email, (), seen, cart) == now
    True
    >>> find_hourly_send_slot(now, day, paris, email, (), seen)
    datetime.datetime(2026, 3, 6, 14, 0, tzinfo=datetime.timezone.utc)
    """
    plan = _plan(earliest, latest, zone, allowed, windows)
    if plan is None:
        return None
    if preference is not None and fading is not None:
        return _fading_best(plan, zone, allowed, windows, preference, fading)
    best: dt.datetime | None = None
    best_score = float("-inf")
    if plan.first_allowed:  # ``earliest`` itself is rarely a top of the hour
        if preference is None:
            return plan.earliest
        best, best_score = plan.earliest, preference.score(plan.local)
    first = plan.first
    if first is None:
        return best
    steps = plan.steps
    if steps is None:
        # a clock change in the range (or just before its first hour, which a
        # 30-minute change takes off the top of the hour): moment by moment, as
        # find_send_slot does
        for moment, at_local in _local_tops(first, plan.end, zone):
            if not _allows(allowed, windows, at_local):
                continue
            if preference is None:
                return moment
            score = preference.score(at_local)
            if score > best_score:
                best, best_score = moment, score
        return best
    if preference is None:
        return first + steps[0] * _HOUR if steps else best
    if not steps:
        return best
    # the first of the best-scored hours, if it beats ``earliest``: max and index run
    # in C over the scores, which hold no NaN (see HourPreference.scores_at)
    scores = preference.scores_at(plan.hours_of_week, plan.hours_of_day)
    top = max(scores)
    if not top > best_score:
        return best
    return first + steps[scores.index(top)] * _HOUR


#: How a customer answers at their least active hour of the week, as a share of their most
#: active: an assumption (no public per-customer figure; aggregate studies of send hours
#: put the day's open rates within about a factor of two). A message whose worth fades
#: waits for a better hour only while it keeps more than this share of its worth.
HOUR_RESPONSE_FLOOR = 0.5


@dataclass(frozen=True, slots=True)
class Fading:
    """How a message's worth fades while it waits: its response goes with its trigger's
    age as ``response(age_hours)`` does (:func:`nba.ageing.cart_age_factor` for a cart
    reminder), the trigger being ``age_hours`` old now; ``what`` names the age in words.

    >>> halving = Fading(0.0, lambda age: 0.5 ** (age / 12.0), "the offer's age")
    >>> halving.left(12.0), halving.left(-1.0)
    (0.5, 1.0)
    """

    age_hours: float
    response: Callable[[float], float]
    what: str
    #: ``response(age_hours)``, computed once: the reserve asks :meth:`left` for every
    #: stretch of time it weighs
    now: float = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "now", self.response(self.age_hours))

    def left(self, wait_hours: float) -> float:
        """The share of its worth left after it waits ``wait_hours`` (all of it before it
        could go)."""
        now = self.now
        if not wait_hours > 0.0 or not now > 0.0:
            return 1.0
        return self.response(self.age_hours + wait_hours) / now

    def lefts(self, waits_hours: Sequence[float]) -> list[float]:
        """:meth:`left` of each of ``waits_hours``."""
        return [self.left(wait) for wait in waits_hours]


def _fading_best(
    plan: _SearchPlan,
    zone: zoneinfo.ZoneInfo,
    allowed: AllowedTimes,
    windows: tuple[TimeWindow, ...],
    preference: HourPreference,
    fading: Fading,
) -> dt.datetime | None:
    """:func:`find_hourly_send_slot`'s moment for a message whose worth fades: the most
    of (the declared hours' bonus, first) + the hour's response x the worth left then,
    the earliest among equals."""
    start = plan.earliest
    best: dt.datetime | None = None
    best_value = float("-inf")
    if plan.first_allowed:
        bonus, response = preference.response_at(plan.local)
        best, best_value = start, bonus + response
    first = plan.first
    if first is None:
        return best
    if plan.steps is None:  # a clock change in the range: moment by moment
        moments = [
            (moment, local)
            for moment, local in _local_tops(first, plan.end, zone)
            if _allows(allowed, windows, local)
        ]
        parts = [preference.response_at(local) for _, local in moments]
        lefts = fading.lefts([(moment - start) / _HOUR for moment, _ in moments])
        for (moment, _), (bonus, response), left in zip(moments, parts, lefts, strict=True):
            value = bonus + response * left
            if value > best_value:
                best, best_value = moment, value
        return best
    steps = plan.steps
    bonuses, responses = preference.responses_at(plan.hours_of_week, plan.hours_of_day)
    lead = (first - start) / _HOUR
    lefts = fading.lefts([lead + step for step in steps])
    values = list(map(operator.mul, responses, lefts))
    if bonuses is not None:
        values = list(map(operator.add, bonuses, values))
    if not values:
        return best
    top = max(values)
    if not top > best_value:
        return best
    return first + steps[values.index(top)] * _HOUR


def _allows(allowed: AllowedTimes, windows: tuple[TimeWindow, ...], local: dt.datetime) -> bool:
    clock = local.time()
    return allowed.allows(local) and (not windows or any(w.contains(clock) for w in windows))


@fast_init
@dataclass(frozen=True, slots=True)
class _SearchPlan:
    """What a send-time search over one range is, whoever the customer: the range in
    UTC, whether ``earliest`` itself is allowed (and it in local time), the next local
    top of the hour (``None`` past ``latest``) and the number of hours from it, and the
    allowed hours among them (:func:`_allowed_steps`; ``None`` with a clock change in
    the range, searched moment by moment)."""

    allowed: AllowedTimes  # held: the plans are keyed by its identity
    earliest: dt.datetime
    local: dt.datetime
    first_allowed: bool
    first: dt.datetime | None
    end: dt.datetime
    count: int
    steps: tuple[int, ...] | None
    hours_of_week: tuple[int, ...]
    hours_of_day: tuple[int, ...]


#: Search plans by (earliest, latest, zone, id of the allowed times, windows): the
#: customers of a zone decided at one moment share them (bounded: cleared when full).
_PLANS: dict[tuple[object, ...], _SearchPlan | None] = {}
_MAX_PLANS = 4096


def _plan(
    earliest: dt.datetime,
    latest: dt.datetime,
    zone: zoneinfo.ZoneInfo,
    allowed: AllowedTimes,
    windows: tuple[TimeWindow, ...],
) -> _SearchPlan | None:
    """The search plan of a range (``None`` when the range is empty), cached."""
    key = (earliest, latest, zone, id(allowed), windows)
    try:
        plan = _PLANS[key]
    except KeyError:
        pass
    else:
        if plan is None or plan.allowed is allowed:
            return plan
    plan = None  # an empty range
    start = earliest.astimezone(dt.UTC)
    end = min(latest.astimezone(dt.UTC), start + dt.timedelta(hours=MAX_HORIZON_HOURS))
    if end >= start:
        local = start.astimezone(zone)
        first_allowed = _allows(allowed, windows, local)
        past_hour = dt.timedelta(
            minutes=local.minute, seconds=local.second, microseconds=local.microsecond
        )
        first = start - past_hour + _HOUR  # the next local top of the hour
        if first > end:
            plan = _SearchPlan(allowed, start, local, first_allowed, None, end, 0, (), (), ())
        else:
            count = (end - first) // _HOUR + 1
            offset = local.utcoffset()  # ``first`` is a local top of the hour at this offset
            if (
                not offset
                == first.astimezone(zone).utcoffset()
                == (first + (count - 1) * _HOUR).astimezone(zone).utcoffset()
            ):
                plan = _SearchPlan(
                    allowed, start, local, first_allowed, first, end, count, None, (), ()
                )
            else:
                steps, hours_of_week, hours_of_day = _allowed_steps(
                    first, count, zone, allowed, windows
                )
                plan = _SearchPlan(
                    allowed,
                    start,
                    local,
                    first_allowed,
                    first,
                    end,
                    count,
                    steps,
                    hours_of_week,
                    hours_of_day,
                )
    if len(_PLANS) >= _MAX_PLANS:
        _PLANS.clear()
    _PLANS[key] = plan
    return plan


@functools.lru_cache(maxsize=4096)
def _allowed_steps(
    first: dt.datetime,
    count: int,
    zone: zoneinfo.ZoneInfo,
    allowed: AllowedTimes,
    windows: tuple[TimeWindow, ...],
) -> tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...]]:
    """The hours ``first + step`` (``step < count``, no clock change among them) that
    ``allowed`` and ``windows`` allow: their steps, their local hours of the week
    (Monday 00:00 is 0) and of the day; the same for every customer of a zone at a given
    moment, hence cached."""
    table = hours_allowed(allowed, windows)
    first_local = first.astimezone(zone)
    start = first_local.weekday() * 24 + first_local.hour
    excluded = allowed.excluded_dates
    steps = []
    for step in range(count):
        hour_of_week = (start + step) % HOURS_PER_WEEK
        if not table[hour_of_week]:
            continue
        if excluded and (
            first_local.date() + dt.timedelta(days=(first_local.hour + step) // 24) in excluded
        ):
            continue
        steps.append((step, hour_of_week))
    hours = tuple(how for _, how in steps)
    return tuple(step for step, _ in steps), hours, tuple(how % 24 for how in hours)


_HOUR = dt.timedelta(hours=1)

#: Weekday abbreviations as ``strftime("%a")`` writes them (Monday first), read once.
_WEEKDAYS = tuple(dt.date(2024, 1, 1 + day).strftime("%a") for day in range(7))


def minute_text(moment: dt.datetime, *, weekday: bool = False) -> str:
    """``f"{moment:%Y-%m-%d %H:%M}"`` (with ``weekday``, ``"%a %Y-%m-%d %H:%M"``) by
    integer formatting: ``strftime`` converts the moment to a time tuple first, and a
    decision's explanation writes several (the same text; years before 1000, which
    ``strftime`` writes unpadded, go through it).

    >>> moment = dt.datetime(2026, 3, 6, 9, 5, tzinfo=dt.UTC)
    >>> minute_text(moment), minute_text(moment, weekday=True)
    ('2026-03-06 09:05', 'Fri 2026-03-06 09:05')
    """
    if moment.year < 1000:
        return moment.strftime("%a %Y-%m-%d %H:%M" if weekday else "%Y-%m-%d %H:%M")
    text = "%d-%02d-%02d %02d:%02d" % (  # noqa: UP031 (%-formatting: the fastest here)
        moment.year,
        moment.month,
        moment.day,
        moment.hour,
        moment.minute,
    )
    return f"{_WEEKDAYS[moment.weekday()]} {text}" if weekday else text


def _candidates(
    earliest: dt.datetime, latest: dt.datetime, zone: zoneinfo.ZoneInfo
) -> list[dt.datetime]:
    if latest < earliest:
        return []
    moments = [earliest]
    local = earliest.astimezone(zone)
    past_hour = dt.timedelta(
        minutes=local.minute, seconds=local.second, microseconds=local.microsecond
    )
    first = earliest - past_hour + _HOUR  # next local top of the hour
    moments.extend(moment for moment, _ in _local_tops(first, latest, zone))
    return moments


def _local_tops(
    first: dt.datetime, end: dt.datetime, zone: zoneinfo.ZoneInfo
) -> Iterator[tuple[dt.datetime, dt.datetime]]:
    """The customer's local tops of the hour from ``first`` to ``end`` (UTC, inclusive),
    each with its local time: whole UTC hours apart, but a clock change of less than an
    hour (Lord Howe's 30 minutes) moves the local clock off the hour, and the next local
    top of the hour is taken from there (the clock's hours, not UTC's, are the
    candidates: a window opening at 07:00 is met at 07:00, not 07:30).

    >>> lord_howe = zoneinfo.ZoneInfo("Australia/Lord_Howe")  # +11 to +10:30 at 02:00 local
    >>> first = dt.datetime(2026, 4, 4, 14, tzinfo=dt.UTC)
    >>> [f"{local:%H:%M%z}" for _, local in _local_tops(first, first + 3 * _HOUR, lord_howe)]
    ['01:00+1100', '02:00+1030', '03:00+1030']
    """
    moment = first
    while moment <= end:
        local = moment.astimezone(zone)
        if local.minute or local.second or local.microsecond:
            moment += _HOUR - dt.timedelta(
                minutes=local.minute, seconds=local.second, microseconds=local.microsecond
            )
            continue
        yield moment, local
        moment += _HOUR


HourSource = Literal["declared", "activity", "peak_hour", "channel_default", "first"]

#: Score bonus of a moment within the customer's declared hours: above any habit.
DECLARED_HOURS_BONUS = 100.0


@fast_init
@dataclass(frozen=True)
class HourPreference:
    """How much a customer likes to be reached at a local moment (higher is better).

    Built from the profile: the activity-by-hour-of-week histogram when known,
    else the peak hour of week, else the channel's default hour. Hours the customer
    declared (``preferred_hours``) come first: among them, the habits decide.

    >>> declared = CustomerProfile("C1", preferred_hours="18-21")
    >>> pref = HourPreference.for_profile(declared, default_hour=12)
    >>> evening, noon = dt.datetime(2026, 3, 6, 19), dt.datetime(2026, 3, 6, 12)
    >>> pref.source, pref.score(evening) > pref.score(noon)
    ('declared', True)

    >>> pref = HourPreference.for_profile(CustomerProfile("C1"), default_hour=18)
    >>> evening, morning = dt.datetime(2026, 3, 6, 18), dt.datetime(2026, 3, 6, 9)
    >>> pref.source, pref.score(evening) > pref.score(morning)
    ('channel_default', True)
    """

    source: HourSource
    activity: tuple[float, ...] = ()
    hour_of_day: tuple[float, ...] = ()
    peak_hour_of_week: int | None = None
    default_hour: int = 12
    declared: TimeWindow | None = None
    habit: HourSource = "channel_default"

    @classmethod
    def for_profile(cls, profile: CustomerProfile, default_hour: int) -> HourPreference:
        global _LAST_PREFERENCE
        last = _LAST_PREFERENCE  # a decision asks again for each channel of the customer
        if last[0] is profile and last[1] == default_hour and type(last[2]) is cls:
            return last[2]
        habits = cls._habits(profile, default_hour)
        declared = _declared_window(profile.preferred_hours)
        preference = (
            habits
            if declared is None  # else the habits under the declared hours (no replace():
            else cls(  # it walks the fields by name)
                "declared",
                habits.activity,
                habits.hour_of_day,
                habits.peak_hour_of_week,
                habits.default_hour,
                declared,
                habits.source,
            )
        )
        _LAST_PREFERENCE = (profile, default_hour, preference)
        return preference

    @classmethod
    def declared_first(cls, profile: CustomerProfile) -> HourPreference | None:
        """For an ``asap`` action: every moment within the customer's declared hours
        above every other, and no habit (the earliest among equals wins), so the send is
        the first allowed moment within them, else the first allowed moment; ``None``
        when the customer declared no hours.

        >>> first = HourPreference.declared_first(CustomerProfile("C1", preferred_hours="18-21"))
        >>> [first.score(dt.datetime(2026, 3, 6, h)) for h in (9, 12, 18)]
        [0.0, 0.0, 100.0]
        >>> HourPreference.declared_first(CustomerProfile("C1")) is None
        True
        """
        declared = _declared_window(profile.preferred_hours)
        if declared is None:
            return None
        return cls("declared", declared=declared, habit="first")

    @classmethod
    def _habits(cls, profile: CustomerProfile, default_hour: int) -> HourPreference:
        activity = profile.activity_by_hour
        if len(activity) == HOURS_PER_WEEK:
            by_hour = _hour_of_day(tuple(activity))
            if by_hour is not None:
                return cls("activity", tuple(activity), by_hour, default_hour=default_hour)
        peak = profile.peak_hour_of_week
        if peak is not None and 0 <= peak < HOURS_PER_WEEK:
            return cls("peak_hour", peak_hour_of_week=peak, default_hour=default_hour)
        return cls("channel_default", default_hour=default_hour)

    def score(self, local: dt.datetime) -> float:
        return self._score(local.weekday() * 24 + local.hour, local.hour * 60 + local.minute)

    def hour_score(self, hour_of_week: int) -> float:
        """:meth:`score` of the local top of the hour ``hour_of_week`` (Monday 00:00 is 0)."""
        return self._score(hour_of_week, (hour_of_week % 24) * 60)

    def scores_at(
        self, hours_of_week: Sequence[int], hours_of_day: Sequence[int] | None = None
    ) -> list[float]:
        """:meth:`hour_score` of each of ``hours_of_week`` (Monday 00:00 is 0; their hours
        of the day may be given, else they are computed), with the
        same float operations, in C: the habit is read from the activity histogram and its
        average day, or from a table per peak or default hour, and the declared hours'
        bonus added from a table per window. Never NaN: a histogram with a NaN has no
        average day (its source is not ``activity``); the other habits are whole numbers
        and halves."""
        habit = self._habits_at(hours_of_week, hours_of_day)
        if self.source != "declared":
            return habit
        if self.declared is None:
            return [self.hour_score(how) for how in hours_of_week]
        bonus = _declared_bonus(self.declared).__getitem__
        return list(map(operator.add, habit, map(bonus, hours_of_week)))

    def response_at(self, local: dt.datetime) -> tuple[float, float]:
        """The declared hours' bonus at the local moment ``local`` (0 outside them, or
        without any) and the customer's response then relative to their most active hour
        of the week (:meth:`relative_response`)."""
        hour_of_week, minute_of_day = local.weekday() * 24 + local.hour, local.minute
        minute_of_day += local.hour * 60
        habit, bonus = self._parts(hour_of_week, minute_of_day)
        return (0.0 if bonus is None else bonus), self.relative_response(habit)

    def responses_at(
        self, hours_of_week: Sequence[int], hours_of_day: Sequence[int] | None = None
    ) -> tuple[list[float] | None, list[float]]:
        """:meth:`response_at` of the local top of each of ``hours_of_week``: the declared
        hours' bonuses (``None`` without declared hours) and the relative responses."""
        habits = self._habits_at(hours_of_week, hours_of_day)
        low, high = self._habit_range()
        if high > low:
            floor, scale = HOUR_RESPONSE_FLOOR, (1.0 - HOUR_RESPONSE_FLOOR) / (high - low)
            responses = [floor + scale * min(high - low, max(0.0, h - low)) for h in habits]
        else:
            responses = [1.0] * len(habits)
        if self.source == "declared" and self.declared is not None:
            bonus = _declared_bonus(self.declared).__getitem__
            return list(map(bonus, hours_of_week)), responses
        return None, responses

    def relative_response(self, habit: float) -> float:
        """How a customer answers at an hour whose habit score is ``habit``, as a share of
        their most active hour of the week: from :data:`HOUR_RESPONSE_FLOOR` at their
        least active hour up to 1, in proportion to the habit (1 when every hour is alike).

        >>> pref = HourPreference.for_profile(CustomerProfile("C1"), default_hour=18)
        >>> [pref.relative_response(pref.hour_score(h)) for h in (18, 12, 6)]
        [1.0, 0.75, 0.5]
        """
        low, high = self._habit_range()
        if not high > low:
            return 1.0
        scale = (1.0 - HOUR_RESPONSE_FLOOR) / (high - low)  # as responses_at computes it
        return HOUR_RESPONSE_FLOOR + scale * min(high - low, max(0.0, habit - low))

    def _habit_range(self) -> tuple[float, float]:
        """The lowest and highest habit score over the hours of the week."""
        global _LAST_RANGE
        last = _LAST_RANGE
        if last[0] is self:
            return last[1]
        habits = self._habits_at(_WEEK_HOURS, _WEEK_HOURS_OF_DAY)
        bounds = (min(habits), max(habits))
        _LAST_RANGE = (self, bounds)
        return bounds

    def _habits_at(
        self, hours_of_week: Sequence[int], hours_of_day: Sequence[int] | None = None
    ) -> list[float]:
        """The habit's score (without the declared hours' bonus) of each of ``hours_of_week``."""
        source = self.habit if self.source == "declared" else self.source
        get = _week_table(self, source).__getitem__
        if source == "activity":  # this hour of the week, plus the same hour on an average day
            day = self.hour_of_day.__getitem__
            hours = [how % 24 for how in hours_of_week] if hours_of_day is None else hours_of_day
            return list(map(operator.add, map(get, hours_of_week), map(day, hours)))
        return list(map(get, hours_of_week))

    def _score(self, hour_of_week: int, minute_of_day: int) -> float:
        habit, bonus = self._parts(hour_of_week, minute_of_day)
        return habit if bonus is None else habit + bonus

    def _parts(self, hour_of_week: int, minute_of_day: int) -> tuple[float, float | None]:
        """The habit's score and the declared hours' bonus (``None`` without declared hours)."""
        source, bonus = self.source, None
        if source == "declared" and self.declared is not None:
            source = self.habit
            declared = self.declared.contains_minute(minute_of_day)
            bonus = DECLARED_HOURS_BONUS if declared else 0.0
        hour = hour_of_week % 24
        habit: float
        if source == "activity":
            # this exact hour of the week, plus the same hour on an average day
            habit = self.activity[hour_of_week] + self.hour_of_day[hour]
        elif source == "peak_hour" and self.peak_hour_of_week is not None:
            same_day = 0.5 if hour_of_week // 24 == self.peak_hour_of_week // 24 else 0.0
            habit = same_day - _hour_distance(hour, self.peak_hour_of_week % 24)
        elif source == "first":
            habit = 0.0
        else:
            habit = float(-_hour_distance(hour, self.default_hour))  # float, as declared
        return habit, bonus

    def describe(self, local: dt.datetime | None = None) -> str:
        """Why a moment was chosen; ``local`` is the moment (local time), when known: one
        outside the declared hours (none of them allowed in reach) is said to be."""
        if self.source == "declared" and self.declared is not None:
            if local is not None and not self.declared.contains_minute(
                local.hour * 60 + local.minute
            ):
                habit = (
                    "as soon as possible"
                    if self.habit == "first"
                    else HourPreference(
                        self.habit,
                        self.activity,
                        self.hour_of_day,
                        self.peak_hour_of_week,
                        self.default_hour,
                    ).describe()
                )
                return (
                    f"{habit}: no allowed moment in reach within the customer's declared "
                    f"hours ({self.declared})"
                )
            first = "as soon as possible " if self.habit == "first" else ""
            return f"{first}within the customer's declared hours ({self.declared})"
        if self.source == "activity":
            return "the customer's most active hour in reach"
        if self.source == "peak_hour":
            return "closest to the customer's peak hour"
        return f"closest to the channel's default hour ({self.default_hour:02d}:00)"


def _week_table(preference: HourPreference, source: HourSource) -> tuple[float, ...]:
    """The habit's table by hour of the week (the histogram itself for ``activity``)."""
    if source == "activity":
        return preference.activity
    if source == "peak_hour" and preference.peak_hour_of_week is not None:
        return _peak_hour_scores(preference.peak_hour_of_week)
    if source == "first":
        return _NO_HABIT
    return _default_hour_scores(preference.default_hour)


_NO_HABIT = (0.0,) * HOURS_PER_WEEK

#: The hours of the week (Monday 00:00 is 0) and their hours of the day.
_WEEK_HOURS = tuple(range(HOURS_PER_WEEK))
_WEEK_HOURS_OF_DAY = tuple(how % 24 for how in _WEEK_HOURS)

#: The last preference whose habit range :meth:`HourPreference._habit_range` computed, and
#: the range (a decision asks for each of the customer's channels and fading actions).
_LAST_RANGE: tuple[HourPreference | None, tuple[float, float]] = (None, (0.0, 0.0))


#: The last preference :meth:`HourPreference.for_profile` built, with its profile (held, so
#: that its identity is not reused) and default hour: one tuple, replaced whole.
_LAST_PREFERENCE: tuple[CustomerProfile | None, int, HourPreference | None] = (None, -1, None)


@functools.lru_cache(maxsize=32)
def _peak_hour_scores(peak: int) -> tuple[float, ...]:
    """The peak-hour habit's score of each hour of the week (as in ``HourPreference._score``)."""
    return tuple(
        (0.5 if how // 24 == peak // 24 else 0.0) - _hour_distance(how % 24, peak % 24)
        for how in range(HOURS_PER_WEEK)
    )


@functools.lru_cache(maxsize=32)
def _default_hour_scores(default: int) -> tuple[float, ...]:
    """The channel default's score of each hour of the week (as in ``HourPreference._score``)."""
    return tuple(-_hour_distance(how % 24, default) for how in range(HOURS_PER_WEEK))


@functools.lru_cache(maxsize=64)
def _declared_bonus(declared: TimeWindow) -> tuple[float, ...]:
    """The declared hours' bonus at the top of each hour of the week."""
    return tuple(
        DECLARED_HOURS_BONUS if declared.contains_minute((how % 24) * 60) else 0.0
        for how in range(HOURS_PER_WEEK)
    )


def _hour_of_day(activity: tuple[float, ...]) -> tuple[float, ...] | None:
    """The average day of a week's activity (``None`` without any): one customer's
    channels share it within a decision, hence the last one is kept, with the
    histogram it was computed from (compared by identity: no hashing of 168 floats)."""
    global _LAST_DAY
    last = _LAST_DAY
    if last[0] is activity:
        return last[1]
    day = None if not sum(activity) > 0 else tuple(sum(activity[h::24]) / 7 for h in range(24))
    _LAST_DAY = (activity, day)  # days 0..6 summed in order
    return day


_LAST_DAY: tuple[tuple[float, ...], tuple[float, ...] | None] = ((), None)


@functools.lru_cache(maxsize=256)
def _declared_window(text: str | None) -> TimeWindow | None:
    if not text:
        return None
    try:
        return TimeWindow.parse(text)
    except ValueError:
        return None


def _hour_distance(a: int, b: int) -> int:
    d = abs(a - b) % 24
    return min(d, 24 - d)


@fast_init
@dataclass(frozen=True, slots=True)
class SendTime:
    """When to send: the UTC instant, the same moment in the customer's time zone,
    and in words why this moment."""

    at: dt.datetime
    local: dt.datetime
    basis: str
