"""Rolling caps counted from each contact's time (``ContactHistory.contact_times``): the
policy's own rules, on contact histories as the profile builders write them."""

from __future__ import annotations

import datetime as dt

from nba.channels import Channel
from nba.contact_policy import ContactPolicy, parse_contact_policy
from nba.context import CustomerContext
from nba.profile import ContactHistory, CustomerProfile
from nba.reasons import ReasonCode

NOW = dt.datetime(2026, 3, 9, 10, 0, tzinfo=dt.UTC)
SECOND = dt.timedelta(seconds=1)


def context(times: dict[Channel, list[dt.datetime]], now: dt.datetime = NOW) -> CustomerContext:
    """A customer whose contacts went at ``times`` (all within 7 days of ``NOW``)."""
    counts = {c: len(t) for c, t in times.items()}
    history = ContactHistory(
        last_contact_at={c: max(t) for c, t in times.items()},
        contacts_1d={
            c: sum(1 for m in t if m > NOW - dt.timedelta(days=1)) for c, t in times.items()
        },
        contacts_7d=counts,
        contacts_30d=counts,
        contact_times={c: tuple(sorted(t)) for c, t in times.items()},
    )
    return CustomerContext(CustomerProfile("C1", as_of=NOW, contacts=history), now)


def days_ago(*days: float) -> list[dt.datetime]:
    return [NOW - dt.timedelta(days=d) for d in days]


def test_a_channel_cap_of_several_frees_when_its_oldest_contact_leaves() -> None:
    """Four e-mails in 7 days (the cap): blocked now, free a second after the oldest is 7
    days old (not the newest), and counted to the second at that moment."""
    policy = ContactPolicy()
    emails = days_ago(6.5, 5, 3, 1)
    ctx = context({Channel.EMAIL: emails})
    reason = policy.channel_reason(ctx, Channel.EMAIL)
    assert reason is not None and reason.code is ReasonCode.CHANNEL_WEEKLY_CAP
    frees = policy.caps_free_at(ctx, Channel.EMAIL)
    assert frees == emails[0] + dt.timedelta(days=7) + SECOND
    assert policy.channel_reason(context({Channel.EMAIL: emails}, frees - SECOND), Channel.EMAIL)
    assert policy.channel_reason(context({Channel.EMAIL: emails}, frees), Channel.EMAIL) is None


def test_the_overall_cap_merges_the_channels_times() -> None:
    """Eight contacts in 7 days on three channels (the overall cap): free when the oldest
    of them all leaves, whichever channel it went on."""
    policy = parse_contact_policy("channels: {email: {cap_7d: 9}, push: {cap_7d: 9}}")
    times = {
        Channel.EMAIL: days_ago(5, 4, 2),
        Channel.PUSH: days_ago(6.9, 3, 1.5),
        Channel.SMS: days_ago(6, 2.5),
    }
    ctx = context(times)
    reason = policy.channel_reason(ctx, Channel.EMAIL)
    assert reason is not None and reason.code is ReasonCode.TOTAL_WEEKLY_CAP
    assert policy.caps_free_at(ctx, Channel.EMAIL) == NOW - dt.timedelta(days=6.9) + dt.timedelta(
        days=7, seconds=1
    )


def test_a_cap_of_zero_never_frees_and_says_so() -> None:
    """A channel closed by a cap of zero (a marketer pausing SMS) with past contacts on it,
    and an overall cap of zero: blocked, and no moment when it frees (``None``), not an
    error."""
    policy = parse_contact_policy("channels: {sms: {cap_7d: 0}}")
    ctx = context({Channel.SMS: days_ago(3)})
    reason = policy.channel_reason(ctx, Channel.SMS)
    assert reason is not None and reason.code is ReasonCode.CHANNEL_WEEKLY_CAP
    assert policy.caps_free_at(ctx, Channel.SMS) is None
    closed = parse_contact_policy("cap_7d: 0")
    ctx = context({Channel.EMAIL: days_ago(3)})
    assert closed.channel_reason(ctx, Channel.EMAIL) is not None
    assert closed.caps_free_at(ctx, Channel.EMAIL) is None
