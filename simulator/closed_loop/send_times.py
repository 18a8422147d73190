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
from nba.timing import SendTime, TimeWindow, find_send_slot, hours_allowed


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
        # (every candidate but the first, a clock change of 30 minutes aside) the table of
        # the week's hours answers as they do (see nba.timing.hours_allowed)
        by_hour = hours_allowed(allowed_times, windows)
        excluded = allowed_times.excluded_dates

        def allowed(local: dt.datetime) -> bool:
            if local.minute == 0:
                if not by_hour[local.weekday() * 24 + local.hour]:
                    return False
                return not excluded or local.date() not in excluded
            if not allowed_times.allows(local):
                return False
            return not windows or any(w.contains(local.time()) for w in windows)

        def draw(local: dt.datetime) -> float:
            digest = hashlib.blake2b(f"{key}:{local.isoformat()}".encode(), digest_size=8)
            return int.from_bytes(digest.digest(), "big") / 2.0**64

        at = find_send_slot(first.at, latest, context.zone, allowed, draw)
        if at is None:  # cannot happen: the first allowed moment is a candidate
            return first
        local = at.astimezone(context.zone)
        return SendTime(at, local, "drawn uniformly among the allowed moments")
