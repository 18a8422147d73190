"""Send times drawn uniformly among the moments the contact policy allows.

The random baseline of the closed loop chooses its (action, channel) uniformly
(the engine with ``explore_share=1``) and its send time uniformly too:
:class:`UniformSendTimes` is the loop's contact policy with one change, the
moment of a send. Everything that moves or forbids a send (caps, minimum gaps,
the gap between two messages, quiet hours, weekdays, excluded dates, the
action's local hours and time-to-live) is the base policy's own; among the
candidate moments that remain (the earliest allowed one, then the customer's
local top of each hour up to the action's latest send, as
:func:`~nba.timing.find_send_slot` enumerates them) one is drawn with equal
probability, reproducibly for a seed, customer, decision time and channel.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Sequence
from typing import Any, Literal

from nba.channels import Channel
from nba.contact_policy import ContactPolicy
from nba.context import CustomerContext
from nba.reasons import Reason
from nba.timing import (
    MAX_HORIZON_HOURS,
    AllowedTimes,
    Fading,
    SendTime,
    TimeWindow,
    hours_allowed,
)

_HOUR = dt.timedelta(hours=1)
_SECOND = dt.timedelta(seconds=1)
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


class UniformSendTimes(ContactPolicy):
    """``ContactPolicy`` whose send time is uniform among the allowed moments."""

    seed: str = "0"

    @classmethod
    def of(cls, policy: ContactPolicy, seed: object = 0) -> UniformSendTimes:
        """The rules of ``policy`` with uniformly drawn send times."""
        fields = {name: getattr(policy, name) for name in ContactPolicy.model_fields}
        return cls(**fields, seed=str(seed))

    def send_time(
        self,
        context: CustomerContext,
        channel: Channel,
        *,
        earliest: dt.datetime,
        latest: dt.datetime,
        local_hours: Sequence[TimeWindow] = (),
        best_hour: bool = True,
        declared_hours: bool = True,
        last_message_at: dt.datetime | None = None,
        fading: Fading | None = None,
    ) -> SendTime | Reason:
        first = super().send_time(
            context,
            channel,
            earliest=earliest,
            latest=latest,
            local_hours=local_hours,
            best_hour=False,
            declared_hours=False,
            last_message_at=last_message_at,
        )
        if isinstance(first, Reason) or self.rules(channel).requires_session:
            return first
        allowed_times = self.rules(channel).allowed_times
        windows = tuple(local_hours)
        key = f"{self.seed}:{context.customer_id}:{context.now_utc.isoformat()}:{channel.value}"
        # rules look at the weekday, the date and the clock's hour and minute: at minute 0
        # (every candidate but the first) the table of
        # the week's hours answers as they do (see nba.timing.hours_allowed)
        by_hour = hours_allowed(allowed_times, windows)
        zone = context.zone
        # find_send_slot(first.at, latest, zone, allowed, draw) written out as one loop
        # (~90 candidates a call: the calls per candidate cost more than their work), its
        # candidates as nba.timing's: the first allowed moment, then the local top of each
        # hour up to ``latest``; the draw hashes ``{key}:{local.isoformat()}``, the key's
        # part hashed once; the highest draw wins, the earliest among equals. A top's local
        # text, hour of the week and date are looked up by its UTC second (:func:`_top`):
        # converting and formatting it was two thirds of a call
        keyed = hashlib.blake2b(f"{key}:".encode(), digest_size=8)
        earliest = first.at.astimezone(dt.UTC)
        end = min(latest.astimezone(dt.UTC), earliest + dt.timedelta(hours=MAX_HORIZON_HOURS))
        at = _hourly_draw(keyed, earliest, end, zone, allowed_times, windows, by_hour)
        if at is _IRREGULAR:  # a clock change of less than an hour: moment by moment
            at = _draw_by_moments(keyed, earliest, end, zone, allowed_times, windows, by_hour)
        if at is None:  # cannot happen: the first allowed moment is a candidate
            return first
        assert isinstance(at, dt.datetime)
        local = at.astimezone(context.zone)
        return SendTime(at, local, "drawn uniformly among the allowed moments")


#: :func:`_hourly_draw`'s answer when a candidate is not a local top of the hour.
_IRREGULAR = object()
#: A local top of the hour: its ``isoformat()`` (what the draw hashes), its hour of the
#: week (Monday 00:00 is 0) and its date; ``False`` where the local clock is not at a top
#: of the hour (a clock change of less than an hour).
_Top = tuple[bytes, int, dt.date] | Literal[False]
#: Per time zone, the local tops of the hour met so far, by UTC second: the same hours
#: come up in every decision of a day (a customer's draws differ only in their key).
_TOPS: dict[dt.tzinfo, dict[int, _Top]] = {}
_TOPS_KEPT = 200_000


def _tops(zone: dt.tzinfo) -> dict[int, _Top]:
    """The tops of the hour of ``zone`` met so far (:data:`_TOPS`; all forgotten when
    they grow past :data:`_TOPS_KEPT`)."""
    tops = _TOPS.get(zone)
    if tops is None:
        if sum(len(t) for t in _TOPS.values()) > _TOPS_KEPT:
            _TOPS.clear()
        tops = _TOPS[zone] = {}
    return tops


def _top(zone: dt.tzinfo, second: int) -> _Top:
    """The local top of the hour at UTC ``second`` in ``zone`` (see :data:`_Top`)."""
    local = (_EPOCH + dt.timedelta(seconds=second)).astimezone(zone)
    if local.minute or local.second or local.microsecond:
        return False
    return (local.isoformat().encode(), local.weekday() * 24 + local.hour, local.date())


def _allowed(
    local: dt.datetime,
    allowed_times: AllowedTimes,
    windows: tuple[TimeWindow, ...],
    by_hour: tuple[bool, ...],
) -> bool:
    """Whether the rules allow the local moment ``local``: a top of the hour by the
    hour-of-week table (and the excluded dates), any other moment by the rules."""
    if local.minute == 0:
        excluded = allowed_times.excluded_dates
        return by_hour[local.weekday() * 24 + local.hour] and (
            not excluded or local.date() not in excluded
        )
    return allowed_times.allows(local) and (
        not windows or any(w.contains(local.time()) for w in windows)
    )


def _score(keyed: Any, text: bytes) -> float:
    """The draw's score of a moment: its local text hashed after the decision's key."""
    digest = keyed.copy()
    digest.update(text)
    return int.from_bytes(digest.digest(), "big") / 2.0**64


def _hourly_draw(
    keyed: Any,
    earliest: dt.datetime,
    end: dt.datetime,
    zone: dt.tzinfo,
    allowed_times: AllowedTimes,
    windows: tuple[TimeWindow, ...],
    by_hour: tuple[bool, ...],
) -> dt.datetime | object | None:
    """The drawn moment among ``earliest`` and the local tops of the hour up to ``end``
    (those the rules allow), each top a look-up of :func:`_top` by its UTC second, or
    :data:`_IRREGULAR` when one of them is not a local top of the hour (the caller then
    steps moment by moment, :func:`_draw_by_moments`)."""
    if end < earliest:
        return None
    excluded = allowed_times.excluded_dates
    local = earliest.astimezone(zone)
    at: dt.datetime | None = None
    best = -1.0
    if _allowed(local, allowed_times, windows, by_hour):
        at, best = earliest, _score(keyed, local.isoformat().encode())
    past_hour = dt.timedelta(
        minutes=local.minute, seconds=local.second, microseconds=local.microsecond
    )
    top = earliest - past_hour + _HOUR  # the next local top of the hour
    if top.microsecond:
        return _IRREGULAR
    second = (top - _EPOCH) // _SECOND
    last = (end - _EPOCH) // _SECOND  # tops after ``end``'s second are after ``end``
    chosen = -1
    tops = _tops(zone)
    dated = bool(excluded)
    while second <= last:
        found = tops.get(second)
        if found is None:
            found = tops[second] = _top(zone, second)
        if found is False:
            return _IRREGULAR
        text, hour, day = found
        if by_hour[hour] and (not dated or day not in excluded):
            digest = keyed.copy()
            digest.update(text)
            score = int.from_bytes(digest.digest(), "big") / 2.0**64
            if score > best:
                chosen, best = second, score
        second += 3600
    if chosen >= 0:
        at = _EPOCH + dt.timedelta(seconds=chosen)
    return at


def _draw_by_moments(
    keyed: Any,
    earliest: dt.datetime,
    end: dt.datetime,
    zone: dt.tzinfo,
    allowed_times: AllowedTimes,
    windows: tuple[TimeWindow, ...],
    by_hour: tuple[bool, ...],
) -> dt.datetime | None:
    """:func:`_hourly_draw` stepping through local moments, for zones whose clock changes
    by less than an hour (Lord Howe's 30 minutes)."""
    at: dt.datetime | None = None
    best = -1.0
    if end >= earliest:
        local = earliest.astimezone(zone)
        past_hour = dt.timedelta(
            minutes=local.minute, seconds=local.second, microseconds=local.microsecond
        )
        moment = earliest
        top = earliest - past_hour + _HOUR  # the next local top of the hour
        while True:
            if _allowed(local, allowed_times, windows, by_hour):
                score = _score(keyed, local.isoformat().encode())
                if score > best:
                    at, best = moment, score
            if top > end:
                break
            moment, top = top, top + _HOUR
            local = moment.astimezone(zone)
            if local.minute or local.second or local.microsecond:
                # a clock change of less than an hour (Lord Howe's 30 minutes): the
                # next local top of the hour, as nba.timing's candidates step
                moment += _HOUR - dt.timedelta(
                    minutes=local.minute, seconds=local.second, microseconds=local.microsecond
                )
                if moment > end:
                    break
                top = moment + _HOUR
                local = moment.astimezone(zone)
    return at
