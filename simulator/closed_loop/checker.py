"""An independent check of delivered contacts against consent and the contact policy.

The checker shares no code with the decision core's screening: it reads the
contact policy as data (caps, hours, weekdays, excluded dates, cool-downs) and
re-checks every *delivered* contact, at the moment it went out:

* consent: opted in at the cut (read from raw data), or since (a sign-up's
  opt-in) before the send, and not withdrawn since;
* quiet hours: the local time (customer's zone) falls in an allowed window,
  weekday and date of the channel;
* caps, over rolling windows ending at the send (the strict reading: a cap of
  one a day allows no two contacts within 24 hours), per channel (24 hours,
  7 and 30 days) and over all channels that count toward the total (24 hours,
  7 days), history before the cut included;
* cool-downs after a refusal or complaint, and the channel's minimum gap;
* on-site and in-app placements only during a live session (the closed loop
  has none).

>>> import datetime as dt
>>> from nba.contact_policy import ContactPolicy
>>> at = dt.datetime(2026, 3, 8, 11, tzinfo=dt.UTC)  # a Sunday, noon in Paris
>>> contacts = pd.DataFrame({"customer_id": ["C1"], "channel": ["sms"], "sent_at": [at],
...                          "decision_id": ["d-1"]})
>>> found = check_contacts(contacts, ContactPolicy(), consent={"C1": frozenset({Channel.SMS})},
...                        timezones={"C1": "Europe/Paris"})
>>> [v.rule for v in found]
['quiet_hours']
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd

from nba.channels import Channel
from nba.contact_policy import ContactPolicy

_DAY_SECONDS = 86_400.0
_WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


@dataclass(frozen=True)
class Violation:
    """One delivered contact that broke a rule."""

    decision_id: str
    customer_id: str
    channel: str
    sent_at: dt.datetime
    rule: str
    detail: str

    def __str__(self) -> str:
        return (
            f"{self.customer_id} {self.channel} at {self.sent_at.isoformat()} "
            f"({self.decision_id}): {self.rule} - {self.detail}"
        )


@dataclass(frozen=True, slots=True)
class _Contact:
    decision_id: str
    customer_id: str
    channel: Channel
    sent_at: dt.datetime
    checked: bool  # False for earlier contacts that only count toward caps

    def violation(self, rule: str, detail: str) -> Violation:
        return Violation(
            self.decision_id, self.customer_id, self.channel.value, self.sent_at, rule, detail
        )


def check_contacts(
    contacts: pd.DataFrame,
    policy: ContactPolicy,
    *,
    consent: Mapping[str, frozenset[Channel]],
    timezones: Mapping[str, str],
    withdrawals: Mapping[tuple[str, Channel], dt.datetime] | None = None,
    history: pd.DataFrame | None = None,
    refusals: Mapping[tuple[str, Channel], dt.datetime] | None = None,
    opt_ins: Mapping[tuple[str, Channel], dt.datetime] | None = None,
) -> list[Violation]:
    """Every rule broken by ``contacts`` (columns ``customer_id``, ``channel``, ``sent_at``
    (aware), ``decision_id``).

    Parameters
    ----------
    consent
        Opted-in consent channels of each customer when the contacts start.
    timezones
        Each customer's IANA time zone.
    withdrawals
        First withdrawal (unsubscribe, complaint, STOP) per customer and channel.
    history
        Earlier contacts (``customer_id``, ``channel``, ``sent_at``), counted in the caps.
    refusals
        Last refusal or complaint before the contacts, per customer and channel.
    opt_ins
        Consent given after the contacts start (a new customer's sign-up), per
        customer and channel: a contact counts as consented from then on.
    """
    checked = _records(contacts, checked=True)
    if not checked:
        return []
    earlier = [] if history is None else _records(history, checked=False)
    found: list[Violation] = []
    for contact in checked:
        found += _consent(contact, consent, withdrawals or {}, opt_ins or {})
        found += _quiet_hours(contact, policy, timezones)
        found += _cooldown(contact, policy, refusals or {})
    found += _caps([*checked, *earlier], policy)
    return found


def _records(frame: pd.DataFrame, *, checked: bool) -> list[_Contact]:
    if frame.empty:
        return []
    ids = frame["decision_id"] if "decision_id" in frame else pd.Series("", index=frame.index)
    stamps = pd.to_datetime(frame["sent_at"], utc=True).dt.floor("us")
    return [
        _Contact(str(d), str(c), Channel(str(ch)), t.to_pydatetime(), checked)
        for d, c, ch, t in zip(ids, frame["customer_id"], frame["channel"], stamps, strict=True)
    ]


def _consent(
    contact: _Contact,
    consent: Mapping[str, frozenset[Channel]],
    withdrawals: Mapping[tuple[str, Channel], dt.datetime],
    opt_ins: Mapping[tuple[str, Channel], dt.datetime],
) -> list[Violation]:
    channel = contact.channel
    if not channel.needs_consent:
        return []
    if channel not in consent.get(contact.customer_id, frozenset()):
        given = opt_ins.get((contact.customer_id, channel))
        if given is None:
            return [contact.violation("consent", f"no {channel.value} opt-in")]
        if contact.sent_at < given:
            return [
                contact.violation(
                    "consent", f"{channel.value} opt-in only at {given:%Y-%m-%d %H:%M:%S}"
                )
            ]
    withdrawn = withdrawals.get((contact.customer_id, channel))
    if withdrawn is not None and withdrawn <= contact.sent_at:
        return [
            contact.violation("consent", f"{channel.value} withdrawn at {withdrawn:%Y-%m-%d %H:%M}")
        ]
    return []


def _quiet_hours(
    contact: _Contact, policy: ContactPolicy, timezones: Mapping[str, str]
) -> list[Violation]:
    rules = policy.channels.get(contact.channel)
    if rules is None:
        return []
    if rules.requires_session:
        return [contact.violation("session", f"{contact.channel.value} needs a live session")]
    zone = timezones.get(contact.customer_id)
    if zone is None:
        raise ValueError(f"no time zone for customer {contact.customer_id!r}")
    local = contact.sent_at.astimezone(ZoneInfo(zone))
    when = f"{local:%a %Y-%m-%d %H:%M} in {zone}"
    minute = local.hour * 60 + local.minute
    if local.weekday() not in rules.weekdays:
        allowed = "/".join(_WEEKDAYS[d] for d in rules.weekdays)
        return [contact.violation("quiet_hours", f"{when}: only {allowed}")]
    if local.date() in rules.allowed_times.excluded_dates:  # holidays of every year too
        return [contact.violation("quiet_hours", f"{when}: a holiday or excluded date")]
    if rules.hours and not any(_in_window(minute, w.start, w.end) for w in rules.hours):
        hours = ", ".join(str(w) for w in rules.hours)
        return [contact.violation("quiet_hours", f"{when}: outside {hours}")]
    return []


def _in_window(minute: int, start: int, end: int) -> bool:
    if start < end:
        return start <= minute < end
    return minute >= start or minute < end


def _cooldown(
    contact: _Contact,
    policy: ContactPolicy,
    refusals: Mapping[tuple[str, Channel], dt.datetime],
) -> list[Violation]:
    refused = refusals.get((contact.customer_id, contact.channel))
    if refused is None:
        return []
    rules = policy.channels.get(contact.channel)
    days = policy.refusal_cooldown_days
    if rules is not None and rules.refusal_cooldown_days is not None:
        days = rules.refusal_cooldown_days
    if contact.sent_at < refused + dt.timedelta(days=days):
        return [contact.violation("refusal_cooldown", f"refused {refused:%Y-%m-%d}, {days:g} days")]
    return []


def _caps(contacts: list[_Contact], policy: ContactPolicy) -> list[Violation]:
    """Rolling-window caps per customer, over the checked and the earlier contacts."""
    out: list[Violation] = []
    counted = {c for c, r in policy.channels.items() if r.counts_toward_total}
    counted |= {c for c in Channel if c not in policy.channels}
    by_customer: dict[str, list[_Contact]] = {}
    for contact in contacts:
        by_customer.setdefault(contact.customer_id, []).append(contact)
    for mine in by_customer.values():
        if not any(c.checked for c in mine):
            continue
        mine.sort(key=lambda c: c.sent_at)
        times = np.array([c.sent_at.timestamp() for c in mine])
        channels = [c.channel for c in mine]
        checked = np.array([c.checked for c in mine])
        for channel in {c.channel for c in mine if c.checked}:
            rules = policy.channels.get(channel)
            if rules is None:
                continue
            same = np.array([c == channel for c in channels])
            for cap, days, rule in (
                (rules.cap_1d, 1, "channel_cap_1d"),
                (rules.cap_7d, 7, "channel_cap_7d"),
                (rules.cap_30d, 30, "channel_cap_30d"),
            ):
                out += _over(mine, times, same, checked, cap, days, rule, channel.value)
            if rules.min_gap_hours is not None:
                out += _gaps(mine, times, same, checked, rules.min_gap_hours)
        total = np.array([c in counted for c in channels])
        for cap, days, rule in (
            (policy.cap_1d, 1, "total_cap_1d"),
            (policy.cap_7d, 7, "total_cap_7d"),
        ):
            out += _over(mine, times, total, checked, cap, days, rule, "all channels")
    return out


def _over(
    contacts: list[_Contact],
    times: np.ndarray,
    scope: np.ndarray,
    checked: np.ndarray,
    cap: int | None,
    days: int,
    rule: str,
    what: str,
) -> list[Violation]:
    """Checked contacts in ``scope`` with more than ``cap`` in scope over the ``days``
    ending at them (themselves included)."""
    if cap is None:
        return []
    window = days * _DAY_SECONDS
    in_scope = times[scope]
    out = []
    for i in np.flatnonzero(checked & scope):
        n = int(((in_scope > times[i] - window) & (in_scope <= times[i])).sum())
        if n > cap:
            detail = f"{n} contacts on {what} within {days} day(s), cap {cap}"
            out.append(contacts[i].violation(rule, detail))
    return out


def _gaps(
    contacts: list[_Contact],
    times: np.ndarray,
    same: np.ndarray,
    checked: np.ndarray,
    hours: float,
) -> list[Violation]:
    out = []
    for i in np.flatnonzero(checked & same):
        before = times[same & (times < times[i])]
        if before.size and times[i] - before.max() < hours * 3600:
            out.append(
                contacts[i].violation("min_gap", f"less than {hours:g} hours after the last")
            )
    return out
