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


@dataclass(frozen=True, eq=False)
class EarlierContacts:
    """Earlier contacts read once for the checker (:func:`earlier_contacts`), to check
    several runs against the same history without converting it for each (the closed
    loop's four policies share the 30 days before the cut: ~0.9 M rows at 100,000
    customers, ~4 CPU-s a conversion)."""

    records: tuple[_Contact, ...]


def earlier_contacts(history: pd.DataFrame) -> EarlierContacts:
    """``history`` (``customer_id``, ``channel``, ``sent_at``) as :func:`check_contacts`
    reads it."""
    return EarlierContacts(tuple(_records(history, checked=False)))


def check_contacts(
    contacts: pd.DataFrame,
    policy: ContactPolicy,
    *,
    consent: Mapping[str, frozenset[Channel]],
    timezones: Mapping[str, str],
    withdrawals: Mapping[tuple[str, Channel], dt.datetime] | None = None,
    history: pd.DataFrame | EarlierContacts | None = None,
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
        Earlier contacts (``customer_id``, ``channel``, ``sent_at``), counted in the caps
        (or the same read once, :func:`earlier_contacts`).
    refusals
        Last refusal or complaint before the contacts, per customer and channel.
    opt_ins
        Consent given after the contacts start (a new customer's sign-up), per
        customer and channel: a contact counts as consented from then on.
    """
    checked = _records(contacts, checked=True)
    if not checked:
        return []
    if history is None:
        earlier: list[_Contact] | tuple[_Contact, ...] = []
    elif isinstance(history, EarlierContacts):
        earlier = history.records
    else:
        earlier = _records(history, checked=False)
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
    # converted column by column (a Timestamp, an Arrow string and an enum call per row
    # cost ~4 us: at 100,000 customers x 30 days millions of rows): the same values
    moments = stamps.array.to_pydatetime()
    channels = [_CHANNELS.get(ch) or Channel(ch) for ch in _texts(frame["channel"])]
    return [
        _Contact(d, c, ch, t, checked)
        for d, c, ch, t in zip(
            _texts(ids), _texts(frame["customer_id"]), channels, moments, strict=True
        )
    ]


_CHANNELS = {c.value: c for c in Channel}


def _texts(column: pd.Series) -> list[str]:
    """``[str(v) for v in column]``, without iterating an Arrow column value by value
    when it holds strings only."""
    if pd.api.types.is_string_dtype(column.dtype) and not column.isna().any():
        values = column.to_numpy(dtype=object)
        if all(type(v) is str for v in values):
            return values.tolist()
    return [str(v) for v in column]


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
    minute = local.hour * 60 + local.minute
    if local.weekday() not in rules.weekdays:
        allowed = "/".join(_WEEKDAYS[d] for d in rules.weekdays)
        return [contact.violation("quiet_hours", f"{_when(local, zone)}: only {allowed}")]
    if local.date() in rules.allowed_times.excluded_dates:  # holidays of every year too
        detail = f"{_when(local, zone)}: a holiday or excluded date"
        return [contact.violation("quiet_hours", detail)]
    if rules.hours and not any(_in_window(minute, w.start, w.end) for w in rules.hours):
        hours = ", ".join(str(w) for w in rules.hours)
        return [contact.violation("quiet_hours", f"{_when(local, zone)}: outside {hours}")]
    return []


def _when(local: dt.datetime, zone: str) -> str:
    """A contact's local moment in a violation's words (written only for a violation)."""
    return f"{local:%a %Y-%m-%d %H:%M} in {zone}"


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
    # the rules below, contact by contact, only for the customers whose contacts may
    # break one (a vectorised screen that never misses one: typically none)
    suspects = _suspects(contacts, policy, counted)
    for customer, mine in by_customer.items():
        if customer not in suspects:
            continue
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


def _suspects(contacts: list[_Contact], policy: ContactPolicy, counted: set[Channel]) -> set[str]:
    """The customers some of whose checked contacts may break a cap or a minimum gap of
    :func:`_caps`: every customer it would report, maybe more (for a gap, two contacts on
    a channel closer than the gap, whichever was checked). Counts over the same
    timestamps and windows with the same comparisons, for all customers at once."""
    if not contacts:
        return set()
    customer_codes: dict[str, int] = {}
    customers = np.array(
        [customer_codes.setdefault(c.customer_id, len(customer_codes)) for c in contacts],
        dtype=np.int64,
    )
    channel_list = list(Channel)
    channel_codes = {c: i for i, c in enumerate(channel_list)}
    channels = np.array([channel_codes[c.channel] for c in contacts], dtype=np.int64)
    times = np.array([c.sent_at.timestamp() for c in contacts])
    checked = np.array([c.checked for c in contacts])
    names = np.array(list(customer_codes))
    out: set[str] = set()

    def breaches(scope: np.ndarray, groups: np.ndarray, cap: np.ndarray, days: int) -> None:
        counts = _window_counts(groups[scope], times[scope], checked[scope], days * _DAY_SECONDS)
        over = counts > cap[scope][checked[scope]]
        out.update(names[customers[scope][checked[scope]][over]].tolist())

    pairs = customers * len(channel_list) + channels
    ruled = np.array([c in policy.channels for c in channel_list])[channels]
    for attribute, days in (("cap_1d", 1), ("cap_7d", 7), ("cap_30d", 30)):
        caps = [
            getattr(policy.channels[c], attribute) if c in policy.channels else None
            for c in channel_list
        ]
        cap = np.array([np.inf if v is None else v for v in caps], dtype=float)[channels]
        scope = ruled & np.isfinite(cap)
        if scope.any():
            breaches(scope, pairs, cap, days)
    gaps = [
        policy.channels[c].min_gap_hours if c in policy.channels else None for c in channel_list
    ]
    gap = np.array([np.nan if v is None else v * 3600 for v in gaps], dtype=float)[channels]
    scope = ruled & ~np.isnan(gap)
    if scope.any():
        order = np.lexsort((times[scope], pairs[scope]))
        sorted_pairs, sorted_times = pairs[scope][order], times[scope][order]
        close = (sorted_pairs[1:] == sorted_pairs[:-1]) & (
            sorted_times[1:] - sorted_times[:-1] < gap[scope][order][1:]
        )
        out.update(names[customers[scope][order][1:][close]].tolist())
    total = np.array([c in counted for c in channel_list])[channels]
    for total_cap, days in ((policy.cap_1d, 1), (policy.cap_7d, 7)):
        if total_cap is not None and total.any():
            breaches(total, customers, np.full(len(contacts), float(total_cap)), days)
    return out


def _window_counts(
    groups: np.ndarray, times: np.ndarray, query: np.ndarray, window: float
) -> np.ndarray:
    """For each element where ``query``: how many elements of its group lie in
    ``(time - window, time]`` (itself included), as :func:`_over` counts them.

    >>> _window_counts(np.array([0, 0, 0, 1]), np.array([0.0, 5.0, 10.0, 10.0]),
    ...                np.array([True, True, True, True]), 6.0)
    array([1, 2, 2, 1])
    """
    n = groups.size
    query_groups, query_times = groups[query], times[query]
    m = query_groups.size
    keys_group = np.concatenate([groups, query_groups, query_groups])
    keys_time = np.concatenate([times, query_times, query_times - window])
    is_query = np.concatenate([np.zeros(n, dtype=np.int8), np.ones(2 * m, dtype=np.int8)])
    # elements before queries at equal keys: a query counts the elements at or before it
    order = np.lexsort((is_query, keys_time, keys_group))
    at_or_before = np.cumsum(is_query[order] == 0)
    position = np.empty(order.size, dtype=np.int64)
    position[order] = np.arange(order.size)
    counted = at_or_before[position]
    return counted[n : n + m] - counted[n + m :]


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
