"""Contact policy: caps, quiet hours, cool-downs and fatigue, per channel and overall.

The policy is configuration a marketer edits (YAML text or a dict, validated;
unknown keys are refused). Its defaults follow French practice:

* SMS: 08:00-20:00, Monday to Saturday (never on Sunday), at most 1 a day, 2 a week;
* call centre: weekdays 10:00-13:00 and 14:00-20:00, never on a public holiday
  (France's, every year: :data:`nba.holidays.FRENCH_PUBLIC_HOLIDAYS`), at most 4 calls
  in 30 days, 60 days of silence after a refusal;
* e-mail 07:00-22:00 (1 a day, 4 a week), push 09:00-21:00 (2 a day, 6 a week),
  postal mail 1 a week and 2 in 30 days, wallet 09:00-21:00;
* on-site and in-app placements (web, app) need a live session on that channel,
  have no caps and do not count toward the overall caps;
* overall: at most 3 contacts a day and 8 a week, and 12 hours between two
  messages on any channels (one decision sends one message; a second call soon
  after an answer defers its message, or drops it if it would expire first);
  30 days of cool-down after a refusal on any channel; fatigue when 5 or more
  contacts in a week met a best open rate below 5 %.

Quiet hours do not filter: :meth:`ContactPolicy.send_time` pushes the send to
the next allowed moment and only reports :attr:`~nba.reasons.ReasonCode.NO_SEND_SLOT`
when none exists before the action's time-to-live runs out. Caps count rolling
windows (the last 24 hours, 7 and 30 days); a cap reached by past contacts defers
the send until it frees up (:meth:`ContactPolicy.caps_free_at`) when that comes
before the action expires, and filters the channel otherwise.

>>> policy = ContactPolicy()
>>> policy.rules(Channel.SMS).allowed_times.allows(dt.datetime(2026, 3, 8, 12))  # a Sunday
False
>>> custom = parse_contact_policy("channels: {sms: {cap_7d: 1}}")
>>> custom.rules(Channel.SMS).cap_7d, custom.rules(Channel.SMS).cap_1d  # merged over defaults
(1, 1)
"""

from __future__ import annotations

import datetime as dt
import zoneinfo
from collections.abc import Mapping, Sequence
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    PrivateAttr,
    ValidationError,
    field_validator,
)
from pydantic_core import ErrorDetails

from nba.budgets import budget_day
from nba.channels import Channel, parse_channel
from nba.config_errors import ConfigError, ConfigIssue, model_fields_at, unknown_key
from nba.context import CustomerContext
from nba.holidays import FRENCH_PUBLIC_HOLIDAYS, ExcludedDays, parse_holiday
from nba.lead_time import LeadTime
from nba.profile import CustomerProfile
from nba.reasons import Reason, ReasonCode
from nba.timing import (
    AllowedTimes,
    Fading,
    HourPreference,
    SendTime,
    TimeWindow,
    find_hourly_send_slot,
)

_WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def _as_weekdays(value: object) -> object:
    if isinstance(value, str):
        value = [part.strip() for part in value.split(",")]
    if not isinstance(value, list | tuple | set | frozenset):
        raise ValueError("weekdays is a list such as [mon, tue, wed, thu, fri]")
    days: set[int] = set()
    for item in value:
        if isinstance(item, int) and not isinstance(item, bool) and 0 <= item <= 6:
            days.add(item)
            continue
        key = str(item).strip().lower()[:3]
        if key not in _WEEKDAYS:
            raise ValueError(f"unknown weekday {item!r} (expected mon..sun or 0..6, Monday = 0)")
        days.add(_WEEKDAYS.index(key))
    return tuple(sorted(days))


def _as_windows(value: object) -> object:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list | tuple):
        raise ValueError("hours is a list of HH:MM-HH:MM windows")
    return tuple(w if isinstance(w, TimeWindow) else TimeWindow.parse(str(w)) for w in value)


Weekdays = Annotated[
    tuple[int, ...],
    BeforeValidator(_as_weekdays),
    PlainSerializer(lambda ds: [_WEEKDAYS[d] for d in ds]),
]
Windows = Annotated[
    tuple[TimeWindow, ...],
    BeforeValidator(_as_windows),
    PlainSerializer(lambda ws: [str(w) for w in ws]),
]


def _as_holidays(value: object) -> object:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list | tuple):
        raise ValueError('holidays is a list such as ["01-01", "easter+1", "07-14"]')
    for entry in value:
        parse_holiday(str(entry))  # a ValueError names the entry
    return tuple(str(entry).strip() for entry in value)


Holidays = Annotated[tuple[str, ...], BeforeValidator(_as_holidays)]


class ChannelRules(BaseModel):
    """Contact rules for one channel. ``None`` caps mean no cap.

    ``hours`` are allowed local windows (empty: any time), ``weekdays`` the
    allowed days (Monday = 0), ``holidays`` public holidays of every year (``"MM-DD"``,
    ``"easter+N"``: :mod:`nba.holidays`) and ``excluded_dates`` one-off days without
    contact. ``cost`` is the cost of one send; ``default_hour`` the local hour
    used when nothing is known of the customer's habits. ``lead_time_days`` is how long
    a send takes to reach the customer (postal mail: days in the post), counted in the
    carrier's delivery days (``lead_time_weekdays``, minus ``lead_time_holidays``;
    :mod:`nba.lead_time`): a message that must arrive by a deadline (the end of its
    offer's validity, a birthday) is sent that much earlier, and not on this channel when
    it could no longer arrive in time; an offer's time limit runs from its arrival.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, arbitrary_types_allowed=True)

    cap_1d: int | None = Field(default=None, ge=0)
    cap_7d: int | None = Field(default=None, ge=0)
    cap_30d: int | None = Field(default=None, ge=0)
    min_gap_hours: float | None = Field(default=None, ge=0)
    hours: Windows = ()
    weekdays: Weekdays = (0, 1, 2, 3, 4, 5, 6)
    holidays: Holidays = ()
    excluded_dates: tuple[dt.date, ...] = ()
    refusal_cooldown_days: float | None = Field(default=None, ge=0)
    cost: float = Field(default=0.0, ge=0)
    default_hour: int = Field(default=12, ge=0, le=23)
    requires_session: bool = False
    counts_toward_total: bool = True
    lead_time_days: float = Field(default=0.0, ge=0, le=30)
    lead_time_weekdays: Weekdays = (0, 1, 2, 3, 4, 5, 6)
    lead_time_holidays: Holidays = ()

    _allowed: AllowedTimes = PrivateAttr()
    _lead_time: LeadTime = PrivateAttr()

    @field_validator("lead_time_weekdays")
    @classmethod
    def _some_delivery_day(cls, value: tuple[int, ...]) -> tuple[int, ...]:
        if not value:
            raise ValueError("a lead time counts delivery days: name at least one weekday")
        return value

    def model_post_init(self, context: Any, /) -> None:
        self._allowed = AllowedTimes(
            windows=self.hours,
            weekdays=frozenset(self.weekdays),
            excluded_dates=self.excluded_days,
        )
        self._lead_time = LeadTime(
            self.lead_time_days,
            frozenset(self.lead_time_weekdays),
            ExcludedDays.parse(self.lead_time_holidays),
        )

    @property
    def lead_time(self) -> LeadTime:
        """How long a send takes to arrive, in the carrier's delivery days."""
        lead: LeadTime = self.__pydantic_private__["_lead_time"]  # type: ignore[index]
        return lead

    @property
    def excluded_days(self) -> ExcludedDays:
        """The days without contact on this channel, in any year."""
        return ExcludedDays.parse(self.holidays, self.excluded_dates)

    @property
    def allowed_times(self) -> AllowedTimes:
        """When this channel may be used, in the customer's local time."""
        # read where pydantic keeps it: ``self._allowed`` goes through the model's
        # ``__getattr__`` (several µs, once per send-time search)
        allowed: AllowedTimes = self.__pydantic_private__["_allowed"]  # type: ignore[index]
        return allowed

    def describe_hours(self) -> str:
        hours = ", ".join(str(w) for w in self.hours) or "any time"
        if len(self.weekdays) == 7:
            return hours
        return f"{hours}, {'/'.join(_WEEKDAYS[d] for d in self.weekdays)}"


def default_channel_rules() -> dict[Channel, ChannelRules]:
    """The default rules per outbound channel (French practice, see the module doc)."""
    weekdays = (0, 1, 2, 3, 4)

    def hours(*texts: str) -> tuple[TimeWindow, ...]:
        return tuple(TimeWindow.parse(t) for t in texts)

    return {
        Channel.EMAIL: ChannelRules(
            cap_1d=1, cap_7d=4, hours=hours("07:00-22:00"), cost=0.002, default_hour=18
        ),
        Channel.SMS: ChannelRules(
            cap_1d=1,
            cap_7d=2,
            hours=hours("08:00-20:00"),
            weekdays=(0, 1, 2, 3, 4, 5),
            cost=0.06,
            default_hour=12,
        ),
        # a dismissed notification is a "not now", not a call refused: a week's rest
        Channel.PUSH: ChannelRules(
            cap_1d=2,
            cap_7d=6,
            hours=hours("09:00-21:00"),
            refusal_cooldown_days=7,
            cost=0.0005,
            default_hour=19,
        ),
        Channel.WALLET: ChannelRules(
            cap_1d=1,
            cap_7d=2,
            hours=hours("09:00-21:00"),
            refusal_cooldown_days=7,
            cost=0.001,
            default_hour=12,
        ),
        # La Poste's published delivery target for a standard letter (Lettre verte) is
        # J+3, three working days after posting: it delivers Monday to Saturday, and
        # Sundays and public holidays do not count
        Channel.POSTAL: ChannelRules(
            cap_7d=1,
            cap_30d=2,
            cost=0.9,
            default_hour=10,
            lead_time_days=3,
            lead_time_weekdays=(0, 1, 2, 3, 4, 5),
            lead_time_holidays=FRENCH_PUBLIC_HOLIDAYS,
        ),
        # content closed on a page or in the app rests until the next day's visits
        Channel.WEB: ChannelRules(
            requires_session=True, counts_toward_total=False, refusal_cooldown_days=1
        ),
        Channel.APP: ChannelRules(
            requires_session=True, counts_toward_total=False, refusal_cooldown_days=1
        ),
        Channel.CALL_CENTRE: ChannelRules(
            cap_1d=1,
            cap_30d=4,
            hours=hours("10:00-13:00", "14:00-20:00"),
            weekdays=weekdays,
            holidays=FRENCH_PUBLIC_HOLIDAYS,
            refusal_cooldown_days=60,
            cost=4.0,
            default_hour=11,
        ),
    }


def _as_channel_key(value: object) -> object:
    if not isinstance(value, Mapping):
        raise ValueError("channels maps a channel name to its rules")
    return {k if isinstance(k, Channel) else parse_channel(str(k)): v for k, v in value.items()}


#: The precision contact times are kept to (whole seconds, rounded down): a contact
#: stamped 09:00:00 may have gone at 09:00:00.9, so it leaves a window a second later.
_STAMP = dt.timedelta(seconds=1)


def _in_window(
    context: CustomerContext, channel: Channel, counts: Mapping[Channel, int], days: int
) -> tuple[int, list[dt.datetime] | None]:
    """How many contacts on ``channel`` lie in the last ``days`` days at the decision's
    moment, and their times (oldest first; ``None`` when the profile has counts only).

    A contact stamped ``t`` (whole seconds) leaves the window at ``t + days`` and a second
    (:data:`_STAMP`). Without contact times the count (made when the profile was built)
    stands until the channel's last contact leaves the window: counts alone cannot
    say when the others did."""
    history = context.contacts
    times = history.contact_times.get(channel)
    since = context.now_utc - dt.timedelta(days=days) - _STAMP
    if times is None:
        last = history.last_contact_at.get(channel)
        if last is not None and last <= since:
            return 0, None
        return counts.get(channel, 0), None
    inside = [t for t in times if t > since]
    return len(inside), inside


class ContactPolicy(BaseModel):
    """Overall caps, refusal cool-down, fatigue, and the rules of each channel.

    ``timezone`` is the retailer's (IANA): the day its offer budgets and action volumes
    count (:func:`nba.budgets.budget_day`), so they reset at its midnight. Quiet hours
    and caps are the customer's, in the customer's own time zone.

    ``message_gap_hours`` is the least time between two messages on channels that
    count toward the overall caps, whatever their channels (``None``: no gap): the
    customer hears one thing at a time, not a cart reminder by SMS and a "we miss
    you" push five minutes later.

    ``best_hour_within_hours`` is how far a message sent at the customer's best hour
    looks for that hour: from the earliest moment it may go or, when nothing is allowed
    that soon (an SMS decided on a Saturday evening), from the first allowed moment after
    (``None``: over its whole validity). A day holds every hour of the day once, so the
    customer's best hour of the day is in reach; looking days further buys only the
    hour-of-week histogram's weekday term, while a message due later holds every channel
    until ``message_gap_hours`` after it (the gap counts messages due): a style guide due
    in 58 hours kept the evening's reminders from going for 70.

    ``supersede_lead_minutes`` lets a new decision replace a message decided earlier and
    not yet sent (:mod:`nba.supersession`) when it is at least that many minutes from its
    send time (the time a journey tool needs to withdraw it; ``None``: a scheduled
    message is never replaced) and the new one is worth more by ``supersede_margin``.

    ``declared_channel`` says what the channel a customer declared as preferred weighs:
    ``"honour"`` (the default) sends an action there wherever it may go there and is worth
    sending (a positive priority), even when another channel scores higher; ``"weigh"``
    only boosts its score (the scorer's ``declared_channel_boost``) and lets the best
    score win (:func:`nba.arbitration.best_channels`).

    ``offer_trial_share`` lets the engine try an incentive its offer-pays test refuses on
    priors on that share of the customers it is refused to, with a held-out share, until
    the outcomes say whether it pays (:mod:`nba.offer_trial`; ``None``, the default: a
    refused incentive is never sent).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    timezone: str = "UTC"
    cap_1d: int | None = Field(default=3, ge=0)
    cap_7d: int | None = Field(default=8, ge=0)
    message_gap_hours: float | None = Field(default=12.0, ge=0)
    best_hour_within_hours: float | None = Field(default=24.0, gt=0)
    refusal_cooldown_days: float = Field(default=30.0, ge=0)
    fatigue_contacts_7d: int | None = Field(default=5, ge=1)
    fatigue_min_open_rate: float = Field(default=0.05, ge=0, le=1)
    fatigue_weight: float = Field(default=0.05, ge=0)
    supersede_lead_minutes: float | None = Field(default=None, ge=0)
    supersede_margin: float = Field(default=0.0, ge=0)
    offer_trial_share: float | None = Field(default=None, gt=0, le=0.5)
    declared_channel: Literal["honour", "weigh"] = "honour"
    channels: Annotated[dict[Channel, ChannelRules], BeforeValidator(_as_channel_key)] = Field(
        default_factory=default_channel_rules
    )

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, name: str) -> str:
        try:
            zoneinfo.ZoneInfo(name)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            raise ValueError(
                f"unknown time zone {name!r} (an IANA name, e.g. Europe/Paris)"
            ) from None
        return name

    @property
    def zone(self) -> zoneinfo.ZoneInfo:
        """The retailer's time zone (:attr:`timezone`)."""
        return zoneinfo.ZoneInfo(self.timezone)

    def budget_day(self, moment: dt.datetime) -> dt.date:
        """The retailer's day ``moment`` falls in: the day its budgets count."""
        return budget_day(moment, self.zone)

    @field_validator("channels")
    @classmethod
    def _outbound_only(cls, channels: dict[Channel, ChannelRules]) -> dict[Channel, ChannelRules]:
        for channel in channels:
            if not channel.is_outbound:
                raise ValueError(f"{channel.value!r} is not an outbound channel")
        return channels

    @classmethod
    def from_dict(
        cls, document: Mapping[str, Any], base: ContactPolicy | None = None
    ) -> ContactPolicy:
        """Build a policy from a document, each key overriding ``base`` (the defaults).

        A channel's rules are merged key by key over the base rules of that channel.
        Raises :class:`ContactPolicyError` naming every bad field.
        """
        if not isinstance(document, Mapping):
            raise ContactPolicyError(
                [ContactPolicyIssue("", "", "the contact policy is a mapping of settings")]
            )
        base = base or cls()
        merged: dict[str, Any] = base.model_dump(exclude={"channels"}) | {
            k: v for k, v in document.items() if k != "channels"
        }
        channels: dict[object, Any] = {c: r.model_dump() for c, r in base.channels.items()}
        raw_channels = document.get("channels") or {}
        problems: list[ContactPolicyIssue] = []
        if not isinstance(raw_channels, Mapping):
            problems.append(ContactPolicyIssue("", "channels", "maps a channel name to its rules"))
            raw_channels = {}
        for key, rules in raw_channels.items():
            try:
                channel = parse_channel(str(key))
            except ValueError as error:
                problems.append(ContactPolicyIssue("", f"channels.{key}", str(error)))
                continue
            if not isinstance(rules, Mapping):
                problems.append(
                    ContactPolicyIssue(
                        "", f"channels.{key}", "rules are a mapping (cap_1d, hours, ...)"
                    )
                )
                continue
            channels[channel] = {**channels.get(channel, {}), **rules}
        merged["channels"] = channels
        if problems:
            raise ContactPolicyError(problems)
        try:
            return cls.model_validate(merged)
        except ValidationError as error:
            raise ContactPolicyError(
                [ContactPolicyIssue("", _path(e["loc"]), _message(e)) for e in error.errors()]
            ) from None

    def rules(self, channel: Channel) -> ChannelRules:
        """The rules of ``channel`` (no restriction when the policy does not list it)."""
        return self.channels.get(channel) or _UNRESTRICTED

    def refusal_cooldown(self, channel: Channel) -> dt.timedelta:
        days = self.rules(channel).refusal_cooldown_days
        return dt.timedelta(days=self.refusal_cooldown_days if days is None else days)

    def channel_reason(
        self,
        context: CustomerContext,
        channel: Channel,
        pending: Mapping[Channel, int] | None = None,
        *,
        caps: bool = True,
    ) -> Reason | None:
        """Why ``channel`` cannot be used now (session, refusal, caps, fatigue), or ``None``.

        ``pending`` counts contacts already chosen in the same decision, so that a
        decision with several actions respects the caps as a whole. Consent is
        checked separately (:mod:`nba.consent`), and quiet hours by :meth:`send_time`.
        With ``caps=False`` the rolling caps reached by past contacts are not checked
        (the caller defers the send until they free up, see :meth:`caps_free_at`).
        """
        pending = pending or {}
        rules = self.rules(channel)
        history = context.contacts
        if rules.requires_session and (
            context.session is None or context.session.channel != channel
        ):
            return Reason(
                ReasonCode.CHANNEL_UNAVAILABLE,
                f"{'an' if channel.value[0] in 'aeiou' else 'a'} {channel.value} placement "
                f"needs a live {channel.value} session",
            )
        refused_at = history.last_refusal_at.get(channel)
        if refused_at is not None:
            until = refused_at + self.refusal_cooldown(channel)
            if context.now_utc < until:
                return Reason(
                    ReasonCode.REFUSAL_COOLDOWN,
                    f"the customer refused a {channel.value} contact on {refused_at:%Y-%m-%d}; "
                    f"silence until {until:%Y-%m-%d}",
                )
        for cap, counts, code, period, days in (
            (rules.cap_1d, history.contacts_1d, ReasonCode.CHANNEL_DAILY_CAP, "24 hours", 1),
            (rules.cap_7d, history.contacts_7d, ReasonCode.CHANNEL_WEEKLY_CAP, "7 days", 7),
            (rules.cap_30d, history.contacts_30d, ReasonCode.CHANNEL_30_DAY_CAP, "30 days", 30),
        ):
            used = (counts.get(channel, 0) if caps else 0) + pending.get(channel, 0)
            if cap is not None and used >= cap and caps:  # counted now, to the second
                used = _in_window(context, channel, counts, days)[0] + pending.get(channel, 0)
            if cap is not None and used >= cap:
                return Reason(
                    code, f"{used} {channel.value} contact(s) in {period}, the cap is {cap}"
                )
        if not rules.counts_toward_total:
            return None
        if self.message_gap_hours is not None and self._total(pending) > 0:
            return Reason(
                ReasonCode.CONTACT_TOO_RECENT,
                f"this decision already sends a message; messages are at least "
                f"{self.message_gap_hours:g} hours apart",
            )
        for cap, counts, code, period, days in (
            (self.cap_1d, history.contacts_1d, ReasonCode.TOTAL_DAILY_CAP, "24 hours", 1),
            (self.cap_7d, history.contacts_7d, ReasonCode.TOTAL_WEEKLY_CAP, "7 days", 7),
        ):
            used = (self._total(counts) if caps else 0) + self._total(pending)
            if cap is not None and used >= cap and caps:
                used = self._total(self._in_window(context, counts, days)) + self._total(pending)
            if cap is not None and used >= cap:
                return Reason(
                    code, f"{used} contact(s) on all channels in {period}, the cap is {cap}"
                )
        return self._fatigue_reason(context.profile)

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
        """The moment to send on ``channel`` between ``earliest`` and ``latest``.

        Session placements go out at once. Otherwise the channel's minimum gap
        since the last contact, and :attr:`message_gap_hours` since
        ``last_message_at`` (the last message on any channel, sent or scheduled,
        see :meth:`last_message_at`), move ``earliest``; quiet hours (and the action's
        ``local_hours``) are honoured in the customer's time zone; with
        ``best_hour`` the customer's preferred moment within
        :attr:`best_hour_within_hours` of the first allowed one wins, else the first
        allowed one (with ``declared_hours``, the first within the customer's
        declared hours when one comes before ``latest``; a time-critical action
        does not wait for them). With ``fading`` (a message whose worth fades as it
        waits: a cart reminder's with the cart's age) the best hour is weighed against the
        worth it would lose by then (:func:`~nba.timing.find_hourly_send_slot`). Returns a
        :class:`~nba.reasons.Reason` when no moment is left.
        """
        rules = self.rules(channel)
        zone = context.zone
        if rules.requires_session:
            now = context.now_utc
            return SendTime(now, now.astimezone(zone), "now, during the live session")
        last = context.contacts.last_contact_at.get(channel)
        if rules.min_gap_hours is not None and last is not None:
            gap_end = last + dt.timedelta(hours=rules.min_gap_hours)
            if gap_end > latest:
                return Reason(
                    ReasonCode.CONTACT_TOO_RECENT,
                    f"last {channel.value} contact at {last:%Y-%m-%d %H:%M} UTC; the next may not "
                    f"come before {gap_end:%Y-%m-%d %H:%M} UTC, after the action expires",
                )
            earliest = max(earliest, gap_end)
        if (
            self.message_gap_hours is not None
            and rules.counts_toward_total
            and last_message_at is not None
        ):
            gap_end = last_message_at + dt.timedelta(hours=self.message_gap_hours)
            if gap_end > latest:
                return Reason(
                    ReasonCode.CONTACT_TOO_RECENT,
                    f"a message went out (or is due) at {last_message_at:%Y-%m-%d %H:%M} UTC; "
                    f"messages are at least {self.message_gap_hours:g} hours apart and this "
                    f"action expires before {gap_end:%Y-%m-%d %H:%M} UTC",
                )
            earliest = max(earliest, gap_end)
        windows = tuple(local_hours)
        preference: HourPreference | None
        if best_hour:
            preference = HourPreference.for_profile(context.profile, rules.default_hour)
        elif declared_hours:  # as soon as possible within the declared hours, if they come
            preference = HourPreference.declared_first(context.profile)
        else:
            preference = None
        allowed = rules.allowed_times
        within = self.best_hour_within_hours if best_hour else None
        day = None if within is None else dt.timedelta(hours=within)
        soon = latest if day is None else min(latest, earliest + day)
        fading = fading if best_hour else None
        at = find_hourly_send_slot(earliest, soon, zone, allowed, windows, preference, fading)
        if at is None and day is not None and soon < latest:
            # nothing allowed that soon: a day from the first allowed moment after it
            first = find_hourly_send_slot(soon, latest, zone, allowed, windows)
            if first is not None:
                end = min(latest, first + day)
                at = find_hourly_send_slot(first, end, zone, allowed, windows, preference, fading)
        if at is None:
            extra = f" within {', '.join(str(w) for w in windows)}" if windows else ""
            return Reason(
                ReasonCode.NO_SEND_SLOT,
                f"no allowed {channel.value} moment ({rules.describe_hours()}{extra}, "
                f"{context.profile.timezone}) before the action expires "
                f"at {latest.astimezone(zone):%Y-%m-%d %H:%M} local time",
            )
        if preference is not None and (best_hour or preference.score(at.astimezone(zone)) > 0):
            basis = preference.describe(at.astimezone(zone))
            if fading is not None:
                basis = f"{basis}, weighed against {fading.what}"
        elif at == earliest.astimezone(dt.UTC):
            basis = "as soon as possible"
        else:
            # which quiet hours, in words: a marketer reads the channel's hours, not a rule
            basis = (
                f"first moment outside quiet hours ({channel.value}: "
                f"{rules.describe_hours()}, the customer's local time)"
            )
        return SendTime(at, at.astimezone(zone), basis)

    def _in_window(
        self, context: CustomerContext, counts: Mapping[Channel, int], days: int
    ) -> Mapping[Channel, int]:
        """``counts`` as counted now: each channel's contacts inside the window."""
        return {c: _in_window(context, c, counts, days)[0] for c in counts}

    def caps_free_at(self, context: CustomerContext, channel: Channel) -> dt.datetime | None:
        """When the rolling caps that past contacts reached on ``channel`` stop blocking it
        (if nothing else is sent): a reached cap of ``n`` frees when its ``n``-th newest
        contact leaves its window (the oldest it must lose), to the second. ``None`` when
        such a contact's time is unknown; a channel known by its counts only (no contact
        times) frees when its last contact leaves the window.

        >>> from nba.profile import ContactHistory
        >>> at = dt.datetime(2026, 3, 6, 10, 20, tzinfo=dt.UTC)
        >>> history = ContactHistory(last_contact_at={Channel.EMAIL: at},
        ...                          contacts_1d={Channel.EMAIL: 1})
        >>> ctx = CustomerContext(CustomerProfile("C1", contacts=history), at)
        >>> ContactPolicy().caps_free_at(ctx, Channel.EMAIL)
        datetime.datetime(2026, 3, 7, 10, 20, 1, tzinfo=datetime.timezone.utc)

        Four e-mails in a week (the e-mail cap): free when the oldest is 7 days old.

        >>> week = [at - dt.timedelta(days=d) for d in (6, 5, 3, 1)]
        >>> history = ContactHistory(last_contact_at={Channel.EMAIL: week[-1]},
        ...                          contacts_7d={Channel.EMAIL: 4},
        ...                          contact_times={Channel.EMAIL: tuple(week)})
        >>> ctx = CustomerContext(CustomerProfile("C1", contacts=history), at)
        >>> frees = ContactPolicy().caps_free_at(ctx, Channel.EMAIL)
        >>> frees == week[0] + dt.timedelta(days=7, seconds=1)
        True
        """
        rules = self.rules(channel)
        history = context.contacts
        frees = context.now_utc
        reached: list[dt.datetime | None] = []
        for cap, counts, days in (
            (rules.cap_1d, history.contacts_1d, 1),
            (rules.cap_7d, history.contacts_7d, 7),
            (rules.cap_30d, history.contacts_30d, 30),
        ):
            if cap is None or counts.get(channel, 0) < cap:
                continue
            used, times = _in_window(context, channel, counts, days)
            if used < cap:
                continue
            if cap <= 0:  # a channel closed by its cap never frees
                return None
            last = history.last_contact_at.get(channel) if times is None else times[used - cap]
            reached.append(None if last is None else last + dt.timedelta(days=days))
        if rules.counts_toward_total:
            for cap, counts, days in (
                (self.cap_1d, history.contacts_1d, 1),
                (self.cap_7d, history.contacts_7d, 7),
            ):
                if cap is None or self._total(counts) < cap:
                    continue
                reached.append(self._total_frees(context, counts, cap, days))
        for moment in reached:
            if moment is None:
                return None
            frees = max(frees, moment.astimezone(dt.UTC) + _STAMP)
        return frees

    def _total_frees(
        self, context: CustomerContext, counts: Mapping[Channel, int], cap: int, days: int
    ) -> dt.datetime | None:
        """When the overall cap ``cap`` over ``days`` stops blocking (``frees`` less the
        second of precision; the moment itself when it does not block now); ``None``
        when a contact it waits for has no known time."""
        window = dt.timedelta(days=days)
        moments: list[dt.datetime] = []
        known = True
        for channel in counts:
            if not self.rules(channel).counts_toward_total:
                continue
            used, times = _in_window(context, channel, counts, days)
            if used and times is None:
                known = False
            moments += times or ()
        used = self._total(self._in_window(context, counts, days))
        if used < cap:
            return context.now_utc - _STAMP
        if cap <= 0:  # closed by the cap: never frees
            return None
        if known:
            return sorted(moments)[used - cap] + window
        counted = [
            at
            for c, at in context.contacts.last_contact_at.items()
            if self.rules(c).counts_toward_total
        ]
        last_any = max(counted, default=None)
        return None if last_any is None else last_any + window

    def last_message_at(
        self, context: CustomerContext, sent: Mapping[str, dt.datetime] | None = None
    ) -> dt.datetime | None:
        """The last message to the customer on channels that count toward the caps:
        the last contact recorded on those channels, or the latest send of ``sent``
        (action id to send time, possibly still due; the caller leaves out actions
        that only place content on a page), whichever is later."""
        moments = [
            at
            for channel, at in context.contacts.last_contact_at.items()
            if self.rules(channel).counts_toward_total
        ]
        moments += (sent or {}).values()
        return max((m.astimezone(dt.UTC) for m in moments), default=None)

    def fatigue_factor(self, profile: CustomerProfile) -> float:
        """A factor in ``(0, 1]`` that lowers priorities as the week's contacts pile up."""
        return 1.0 / (1.0 + self.fatigue_weight * self._total(profile.contacts.contacts_7d))

    def _total(self, counts: Mapping[Channel, int]) -> int:
        """The contacts of ``counts`` on channels that count toward the overall caps."""
        return sum(n for c, n in counts.items() if self.rules(c).counts_toward_total)

    def _fatigue_reason(self, profile: CustomerProfile) -> Reason | None:
        threshold = self.fatigue_contacts_7d
        if threshold is None:
            return None
        contacts = self._total(profile.contacts.contacts_7d)
        if contacts < threshold:
            return None
        rates = opened_shares(profile)
        if not rates or max(rates) >= self.fatigue_min_open_rate:
            return None
        return Reason(
            ReasonCode.FATIGUE,
            f"{contacts} contacts in 7 days and a best open rate of {max(rates):.0%} "
            f"(below {self.fatigue_min_open_rate:.0%})",
        )


_UNRESTRICTED = ChannelRules()


def opened_shares(profile: CustomerProfile) -> list[float]:
    """The share of the messages sent (or delivered) on each channel that the customer
    opened, as counted: fatigue is about what this customer did, not a rate smoothed
    toward the store's (that took some 50 unopened messages to fall below 5 %).

    >>> from nba.profile import ChannelEngagement
    >>> email = ChannelEngagement(sent=20, opened=1, open_rate=0.2)
    >>> opened_shares(CustomerProfile("C1", engagement={Channel.EMAIL: email}))
    [0.05]
    """
    return [
        e.opened / max(e.sent, e.delivered)
        for e in profile.engagement.values()
        if max(e.sent, e.delivered) > 0
    ]


#: Reasons of rolling caps, which a later send may clear.
ROLLING_CAP_CODES: frozenset[ReasonCode] = frozenset(
    {
        ReasonCode.CHANNEL_DAILY_CAP,
        ReasonCode.CHANNEL_WEEKLY_CAP,
        ReasonCode.CHANNEL_30_DAY_CAP,
        ReasonCode.TOTAL_DAILY_CAP,
        ReasonCode.TOTAL_WEEKLY_CAP,
    }
)


class ContactPolicyIssue(ConfigIssue):
    """One bad setting of a contact policy: its dotted path (``channels.sms.hours``) as the
    field, and the message (the scope is unused: a policy is one document)."""

    def where(self) -> str:
        return self.field


class ContactPolicyError(ConfigError[ContactPolicyIssue]):
    """An invalid contact policy; ``issues`` (and ``problems``, as text) list each bad field."""

    document = "the contact policy"

    @property
    def problems(self) -> tuple[str, ...]:
        """Each issue as ``path: message``."""
        return tuple(str(issue) for issue in self.issues)


def parse_contact_policy(text: str, base: ContactPolicy | None = None) -> ContactPolicy:
    """Parse a contact policy written in YAML, merged over ``base`` (the defaults).

    Takes the text, not a path: the decision core does no I/O.
    """
    try:
        document = yaml.safe_load(text) or {}
    except yaml.YAMLError as error:
        raise ContactPolicyError([ContactPolicyIssue("", "", f"not valid YAML: {error}")]) from None
    return ContactPolicy.from_dict(document, base)


def _path(loc: Sequence[int | str]) -> str:
    return ".".join(str(part) for part in loc)


def _message(error: ErrorDetails) -> str:
    """What a validation error says to fix: an unknown setting with the closest known."""
    if error["type"] == "extra_forbidden":
        return unknown_key(
            error["loc"][-1], model_fields_at(ContactPolicy, error["loc"]), "setting"
        )
    return str(error["msg"]).removeprefix("Value error, ")
