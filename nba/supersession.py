"""Supersession: a message decided and scheduled gives way to a better one that comes up
before it goes.

A decision made at the morning's daily pass may schedule the weekly picks for 13:00 and
so spend the day's e-mail; if the customer then browses at 09:00, the evening's browse
reminder cannot go: the scheduled e-mail holds the channel (its daily cap, the gap
between messages). A journey tool can withdraw a message that has not gone yet (Braze,
Iterable and Salesforce Marketing Cloud all cancel a scheduled send), so the engine may
say "send this instead of that".

:func:`supersede` is the rule, pure: given the customer's **pending** contacts (decided,
due later, not yet sent), the new decision's best contact (decided as if the pending ones
had not been scheduled) and what each pending contact is worth *now* (recomputed with
what is known now), it names the pending contacts to cancel, or none. A pending contact
is replaced only when

* it **blocks** the new contact: the contact policy would refuse the new one's channel
  with the pending one counted (the caller says which ones do);
* it is at least ``lead`` away from its send time (a journey tool needs time to withdraw
  a message; :attr:`~nba.contact_policy.ContactPolicy.supersede_lead_minutes`);
* the new contact is worth more than every blocking pending contact together, by more
  than ``margin`` (:attr:`~nba.contact_policy.ContactPolicy.supersede_margin`: the
  churn of changing one's mind);
* the new contact is not the same action on the same channel (nothing to change).

One level only: a cancelled message is not rescheduled; cool-downs and sequences count
only messages that went (the caller gives their history back).

>>> at = dt.datetime(2026, 3, 2, 9, tzinfo=dt.UTC)
>>> picks = Pending("d-1", "weekly_picks", Channel.EMAIL, at + dt.timedelta(hours=4), 0.05)
>>> new = NewContact("browse_reminder_evening", Channel.EMAIL, 0.31)
>>> s = supersede([picks], new, at, {"d-1": 0.04}, blocking={"d-1"},
...               lead=dt.timedelta(minutes=15), margin=0.01)
>>> s.replaces
('d-1',)
>>> print(s.reason)  # doctest: +NORMALIZE_WHITESPACE
replaces weekly_picks by email due 13:00 UTC (decision d-1): browse_reminder_evening is
worth 0.31 now against 0.04 (margin 0.01), and there are 4 h 0 min left to withdraw it
>>> supersede([picks], new, at + dt.timedelta(hours=3, minutes=50), {"d-1": 0.04},
...           blocking={"d-1"}, lead=dt.timedelta(minutes=15), margin=0.01) is None
True
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass

from nba.channels import Channel

__all__ = [
    "NewContact",
    "Pending",
    "Supersession",
    "supersede",
    "withdraw_passed",
    "withdraw_unsendable",
]


@dataclass(frozen=True, slots=True)
class Pending:
    """A contact decided and scheduled, not yet sent: its decision, action, channel,
    send time and the priority it had when decided."""

    decision_id: str
    action_id: str
    channel: Channel
    send_at: dt.datetime
    priority: float


@dataclass(frozen=True, slots=True)
class NewContact:
    """The best contact of a new decision, decided as if nothing were pending."""

    action_id: str
    channel: Channel
    priority: float


@dataclass(frozen=True, slots=True)
class Supersession:
    """The pending decisions to cancel (ids, in send order) and why, in words."""

    replaces: tuple[str, ...]
    reason: str


def supersede(
    pending: Sequence[Pending],
    new: NewContact,
    now: dt.datetime,
    worth_now: Mapping[str, float],
    *,
    blocking: Collection[str],
    lead: dt.timedelta,
    margin: float,
) -> Supersession | None:
    """The pending contacts ``new`` replaces, or ``None`` when every one stays.

    ``worth_now`` is each pending decision's priority recomputed now (its decided
    priority when missing); ``blocking`` the pending decisions whose contact stops
    ``new`` from going (by the contact policy). Every blocking one must be replaceable,
    else none is: cancelling some of them would not free the channel.
    """
    blockers = sorted((p for p in pending if p.decision_id in blocking), key=lambda p: p.send_at)
    if not blockers:
        return None
    if any(p.action_id == new.action_id and p.channel == new.channel for p in blockers):
        return None
    if any(p.send_at - now < lead for p in blockers):
        return None
    worth = sum(worth_now.get(p.decision_id, p.priority) for p in blockers)
    if not new.priority > worth + margin:
        return None
    named = "; ".join(
        f"{p.action_id} by {p.channel.value} due {p.send_at:%H:%M} UTC (decision {p.decision_id})"
        for p in blockers
    )
    left = min(p.send_at for p in blockers) - now
    hours, minutes = divmod(int(left.total_seconds()) // 60, 60)
    return Supersession(
        tuple(p.decision_id for p in blockers),
        f"replaces {named}: {new.action_id} is worth {new.priority:.3g} now against "
        f"{worth:.3g} (margin {margin:g}), and there are {hours} h {minutes} min left to "
        "withdraw it",
    )


def withdraw_passed(
    pending: Sequence[Pending], why: Mapping[str, str], now: dt.datetime, *, lead: dt.timedelta
) -> Supersession | None:
    """The pending contacts whose reason has passed since they were decided (``why``:
    decision id -> why it could no longer go, e.g. its cart was bought), withdrawn
    whatever else is decided, or ``None``. Only those at least ``lead`` from their send
    time: a journey tool needs the time to withdraw them.

    >>> at = dt.datetime(2026, 3, 5, 5, 10, tzinfo=dt.UTC)
    >>> cart = Pending("d-1", "cart_reminder_1", Channel.EMAIL, at + dt.timedelta(hours=1), 3.4)
    >>> out = withdraw_passed([cart], {"d-1": "not_eligible (no cart)"}, at,
    ...                       lead=dt.timedelta(minutes=15))
    >>> print(out.reason)  # doctest: +NORMALIZE_WHITESPACE
    withdraws cart_reminder_1 by email due 06:10 UTC (decision d-1): it could no longer
    go: not_eligible (no cart)
    """
    passed = sorted(
        (p for p in pending if p.decision_id in why and p.send_at - now >= lead),
        key=lambda p: p.send_at,
    )
    if not passed:
        return None
    named = "; ".join(
        f"{p.action_id} by {p.channel.value} due {p.send_at:%H:%M} UTC (decision "
        f"{p.decision_id}): it could no longer go: {why[p.decision_id]}"
        for p in passed
    )
    return Supersession(tuple(p.decision_id for p in passed), f"withdraws {named}")


def withdraw_unsendable(
    pending: Sequence[tuple[str, Channel, dt.datetime]],
    why: Mapping[tuple[str, Channel], str],
    now: dt.datetime,
) -> Supersession | None:
    """The messages scheduled after ``now`` (``pending``: decision, channel, send time)
    that may no longer go as scheduled (``why``: (decision, channel) -> why not: consent
    gone, the send time now in quiet hours), or ``None``. Withdrawn whatever else is
    decided and however close their send: consent and quiet hours are hard constraints,
    not trade-offs.

    >>> at = dt.datetime(2026, 3, 5, 5, 10, tzinfo=dt.UTC)
    >>> due = [("d-1", Channel.EMAIL, at + dt.timedelta(minutes=50)),
    ...        ("d-2", Channel.PUSH, at + dt.timedelta(hours=3))]
    >>> gone = "consent is gone since it was decided: the customer unsubscribed"
    >>> out = withdraw_unsendable(due, {("d-1", Channel.EMAIL): gone}, at)
    >>> out.replaces
    ('d-1',)
    >>> print(out.reason)  # doctest: +NORMALIZE_WHITESPACE
    withdraws the email message due 06:00 UTC (decision d-1): consent is gone since it was
    decided: the customer unsubscribed
    """
    gone = sorted((p for p in pending if (p[0], p[1]) in why and p[2] > now), key=lambda p: p[2])
    if not gone:
        return None
    named = "; ".join(
        f"the {channel.value} message due {at:%H:%M} UTC (decision {decision_id}): "
        f"{why[decision_id, channel]}"
        for decision_id, channel, at in gone
    )
    return Supersession(tuple(dict.fromkeys(d for d, _, _ in gone)), f"withdraws {named}")
