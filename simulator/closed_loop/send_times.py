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

from nba.channels import Channel
from nba.contact_policy import ContactPolicy
from nba.context import CustomerContext
from nba.reasons import Reason
from nba.timing import MAX_HORIZON_HOURS, SendTime, TimeWindow, hours_allowed

_HOUR = dt.timedelta(hours=1)


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
        excluded = allowed_times.excluded_dates
        zone = context.zone
        # find_send_slot(first.at, latest, zone, allowed, draw) written out as one loop
        # (~90 candidates a call: the calls per candidate cost more than their work), its
        # candidates as nba.timing's: the first allowed moment, then the local top of each
        # hour up to ``latest``; the draw hashes ``{key}:{local.isoformat()}``, the key's
        # part hashed once; the highest draw wins, the earliest among equals
        keyed = hashlib.blake2b(f"{key}:".encode(), digest_size=8)
        earliest = first.at.astimezone(dt.UTC)
        end = min(latest.astimezone(dt.UTC), earliest + dt.timedelta(hours=MAX_HORIZON_HOURS))
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
                if local.minute == 0:
                    allowed = by_hour[local.weekday() * 24 + local.hour] and (
                        not excluded or local.date() not in excluded
                    )
                else:
                    allowed = allowed_times.allows(local) and (
                        not windows or any(w.contains(local.time()) for w in windows)
                    )
                if allowed:
                    digest = keyed.copy()
                    digest.update(local.isoformat().encode())
                    score = int.from_bytes(digest.digest(), "big") / 2.0**64
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
        if at is None:  # cannot happen: the first allowed moment is a candidate
            return first
        local = at.astimezone(context.zone)
        return SendTime(at, local, "drawn uniformly among the allowed moments")
