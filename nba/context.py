"""The customer context: everything one decision is made from.

A :class:`CustomerContext` bundles the behavioural profile (which carries the
consents and the contact history), the moment of the decision, the current
session if the customer is on the site or in the app right now, and when each
action was last sent to them. Eligibility rules read it through a
:class:`ContextScope`; they may use every profile field of
:data:`nba.profile.PROFILE_FIELDS` plus the context fields of
:data:`CONTEXT_FIELDS` (local time, session).

>>> import datetime as dt
>>> from nba.profile import CustomerProfile
>>> now = dt.datetime(2026, 3, 6, 17, 30, tzinfo=dt.UTC)
>>> ctx = CustomerContext(CustomerProfile("C1", timezone="Europe/Paris"), now)
>>> scope = ContextScope(ctx)
>>> scope.field("local_hour"), scope.field("local_weekday"), scope.field("next_month")
(18, 4, 4)
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import zoneinfo
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from operator import attrgetter

from nba.channels import OUTBOUND_CHANNELS, Channel
from nba.frozen import computed_once, fast_init
from nba.profile import (
    DERIVED_FIELDS,
    FIELD_READERS,
    LOYALTY_TIERS,
    PROFILE_FIELDS,
    ContactHistory,
    CustomerProfile,
    JourneyPhase,
    LifecycleState,
)
from nba.rules import RuleSchema, Value, ValueType, field_type


@dataclass(frozen=True, slots=True)
class Session:
    """The customer's current visit, when the decision is asked from a live page or app.

    On-site and in-app placements (channels ``web`` and ``app``) can only be
    delivered during a session on that channel.
    """

    channel: Channel
    started_at: dt.datetime
    page: str | None = None
    product_id: str | None = None

    def __post_init__(self) -> None:
        if self.started_at.tzinfo is None:
            raise ValueError("Session.started_at must carry a time zone")


@fast_init
@dataclass(frozen=True)
class CustomerContext:
    """One customer at one moment: the input of a decision.

    Parameters
    ----------
    profile
        The behavioural profile; ``profile.consents`` and ``profile.contacts``
        are the current consent state and contact history.
    now
        The moment of the decision, time-zone aware.
    session
        The live session, if any.
    action_history
        When each action (by id) was last sent to this customer, for action
        cool-downs and sequences (``hours_since_sent('welcome_1') >= 72``).
    has_new_arrivals
        Whether a launch (an action that ``shows: new_arrivals``) has anything to show
        this customer: a product launched lately, in stock, not already theirs (False:
        nothing to show, the launch is not given). ``None`` when the caller does not
        know (no products table with launch dates): a launch is screened by its rules.
    """

    profile: CustomerProfile
    now: dt.datetime
    session: Session | None = None
    action_history: Mapping[str, dt.datetime] = field(default_factory=dict)
    has_new_arrivals: bool | None = None

    def __post_init__(self) -> None:
        if self.now.tzinfo is None:
            raise ValueError("CustomerContext.now must carry a time zone (e.g. datetime.UTC)")
        try:
            zoneinfo.ZoneInfo(self.profile.timezone)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError) as error:
            raise ValueError(
                f"customer {self.profile.customer_id!r} has an unknown time zone "
                f"{self.profile.timezone!r}"
            ) from error
        for action_id, sent_at in self.action_history.items():
            if sent_at.tzinfo is None:
                raise ValueError(f"action_history[{action_id!r}] must carry a time zone")

    @property
    def customer_id(self) -> str:
        return self.profile.customer_id

    @property
    def consents(self) -> Mapping[Channel, bool]:
        return self.profile.consents

    @property
    def contacts(self) -> ContactHistory:
        return self.profile.contacts

    @computed_once
    def zone(self) -> zoneinfo.ZoneInfo:
        """The customer's time zone."""
        return zoneinfo.ZoneInfo(self.profile.timezone)

    @computed_once
    def now_utc(self) -> dt.datetime:
        return self.now.astimezone(dt.UTC)

    @computed_once
    def local_now(self) -> dt.datetime:
        """The decision moment in the customer's time zone."""
        return self.now.astimezone(self.zone)

    def later(self, hours: float) -> CustomerContext:
        """The same customer ``hours`` from now with no live session: what
        ``CustomerContext(profile, now_utc + hours, None, action_history, has_new_arrivals)``
        gives, without checking again the zone and history this context was checked with.

        >>> now = dt.datetime(2026, 3, 6, 17, 30, tzinfo=dt.UTC)
        >>> ctx = CustomerContext(CustomerProfile("C1", timezone="Europe/Paris"), now)
        >>> ctx.later(2.0) == CustomerContext(ctx.profile, now + dt.timedelta(hours=2))
        True
        """
        moved = object.__new__(CustomerContext)
        at = self.now_utc + hours * _HOUR
        moved.__dict__.update(
            profile=self.profile,
            now=at,
            session=None,
            action_history=self.action_history,
            has_new_arrivals=self.has_new_arrivals,
            zone=self.zone,
            now_utc=at,
        )
        return moved

    def with_profile(self, profile: CustomerProfile) -> CustomerContext:
        """The same moment, session and history with ``profile`` (the same customer's,
        e.g. a copy with other engagement): what ``dataclasses.replace(context,
        profile=profile)`` gives, without checking again the moment and history this
        context was checked with (the zone is checked when it is another).

        >>> now = dt.datetime(2026, 3, 6, 17, 30, tzinfo=dt.UTC)
        >>> ctx = CustomerContext(CustomerProfile("C1", timezone="Europe/Paris"), now)
        >>> other = CustomerProfile("C1", timezone="Europe/Paris", events_seen=3)
        >>> ctx.with_profile(other) == dataclasses.replace(ctx, profile=other)
        True
        """
        if profile.timezone != self.profile.timezone:
            return dataclasses.replace(self, profile=profile)
        moved = object.__new__(CustomerContext)
        moved.__dict__.update(
            profile=profile,
            now=self.now,
            session=self.session,
            action_history=self.action_history,
            has_new_arrivals=self.has_new_arrivals,
        )
        return moved

    def hours_since_sent(self, action_id: str) -> float | None:
        """Hours since ``action_id`` was last sent (``None`` when never)."""
        sent_at = self.action_history.get(action_id)
        if sent_at is None:
            return None
        return (self.now_utc - sent_at).total_seconds() / 3600.0

    def cart_added_since_sent(self, action_id: str) -> bool:
        """True when the customer holds a cart last added to after ``action_id`` was last
        sent: a new cart (the reminded one bought or left, or topped up since), which a
        cool-down scoped to the cart does not hold back. False without a cart or a send.

        >>> import datetime as dt
        >>> now = dt.datetime(2026, 3, 6, 12, tzinfo=dt.UTC)
        >>> cart = CustomerProfile("C1", as_of=now, cart_items=("P1",), cart_age_hours=2.0)
        >>> sent = {"cart_reminder_1": now - dt.timedelta(hours=30)}
        >>> CustomerContext(cart, now, action_history=sent).cart_added_since_sent("cart_reminder_1")
        True
        >>> sent = {"cart_reminder_1": now - dt.timedelta(hours=1)}
        >>> CustomerContext(cart, now, action_history=sent).cart_added_since_sent("cart_reminder_1")
        False
        """
        sent_at = self.action_history.get(action_id)
        profile = self.profile
        age = profile.cart_age_hours
        if sent_at is None or age is None or not profile.cart_items:
            return False
        as_of = profile.as_of or self.now_utc
        if as_of.tzinfo is None:  # a naive moment means UTC, as everywhere in the profile
            as_of = as_of.replace(tzinfo=dt.UTC)
        return as_of - dt.timedelta(hours=age) > sent_at


_HOUR = dt.timedelta(hours=1)


def _session_minutes(ctx: CustomerContext) -> float | None:
    if ctx.session is None:
        return None
    return (ctx.now_utc - ctx.session.started_at).total_seconds() / 60.0


_CONTEXT_VALUES: dict[str, Callable[[CustomerContext], Value]] = {
    "local_hour": lambda c: c.local_now.hour,
    "local_weekday": lambda c: c.local_now.weekday(),
    "local_day": lambda c: c.local_now.day,
    "local_month": lambda c: c.local_now.month,
    "next_month": lambda c: c.local_now.month % 12 + 1,
    "in_session": lambda c: c.session is not None,
    "session_channel": lambda c: None if c.session is None else c.session.channel.value,
    "session_minutes": _session_minutes,
    "session_product": lambda c: None if c.session is None else c.session.product_id,
}

#: Fields about the moment and the session that rules may use besides profile fields.
#: Local time is the customer's; weekdays count from Monday = 0.
CONTEXT_FIELDS: dict[str, ValueType] = {
    "local_hour": ValueType.NUMBER,
    "local_weekday": ValueType.NUMBER,
    "local_day": ValueType.NUMBER,
    "local_month": ValueType.NUMBER,
    "next_month": ValueType.NUMBER,
    "in_session": ValueType.BOOL,
    "session_channel": ValueType.TEXT,
    "session_minutes": ValueType.NUMBER,
    "session_product": ValueType.TEXT,
}


def _profile_field_types() -> dict[str, ValueType]:
    hints = {f.name: str(f.type) for f in dataclasses.fields(CustomerProfile)}
    types: dict[str, ValueType] = {}
    for name, kind in PROFILE_FIELDS.items():
        element = ValueType.NUMBER if "int" in hints.get(name, "") else ValueType.TEXT
        types[name] = field_type(kind, element)
    return types


_CHANNEL_VALUES = frozenset(c.value for c in Channel)

#: The schema every catalog rule is checked against: profile and context fields, with
#: the closed sets of values of enumerated text fields.
RULE_SCHEMA = RuleSchema(
    types={**_profile_field_types(), **CONTEXT_FIELDS},
    domains={
        "lifecycle_state": frozenset(s.value for s in LifecycleState),
        "journey_phase": frozenset(p.value for p in JourneyPhase),
        "session_channel": _CHANNEL_VALUES,
        "consented_channels": frozenset(c.value for c in OUTBOUND_CHANNELS),
        "loyalty_tier": frozenset(LOYALTY_TIERS),
    },
)


_MISSING = object()


class ContextScope:
    """Reads rule fields from a :class:`CustomerContext`, caching each value once."""

    __slots__ = ("_cache", "context")

    def __init__(self, context: CustomerContext) -> None:
        self.context = context
        self._cache: dict[str, Value] = {}

    def field(self, name: str) -> Value:
        value = self._cache.get(name, _MISSING)  # most reads are a rule's first: no raise
        if value is not _MISSING:
            return value  # type: ignore[return-value]
        compute = _FIELD_VALUES.get(name)
        value = compute(self.context) if compute is not None else _profile_value(self.context, name)
        self._cache[name] = value
        return value

    def hours_since_sent(self, action_id: str) -> float | None:
        return self.context.hours_since_sent(action_id)

    def affinity(self, kind: str, key: str) -> float:
        profile = self.context.profile
        table = profile.category_affinity if kind == "category" else profile.brand_affinity
        return float(table.get(key, 0.0))


def scope_of(context: CustomerContext) -> ContextScope:
    """The rule scope of ``context``: the last one made is kept with its context, so
    that a decision's screening (eligibility, values), send-by deadlines and reserve
    (reminder values) read each field once. Kept here, not on the context: the two
    would hold each other, a cycle only the collector frees."""
    global _LAST_SCOPE
    last = _LAST_SCOPE  # one read: threads may replace it meanwhile
    if last is not None and last.context is context:
        return last
    scope = _LAST_SCOPE = ContextScope(context)
    return scope


_LAST_SCOPE: ContextScope | None = None


def _profile_value(context: CustomerContext, name: str) -> Value:
    return _as_rule_value(context.profile.value(name))


_RULE_TYPES = frozenset({type(None), bool, int, float, str, list})


def _as_rule_value(value: object) -> Value:
    if type(value) in _RULE_TYPES or isinstance(value, bool | int | float | str | list):
        return value  # type: ignore[return-value]
    return str(value)


def _profile_field(name: str) -> Callable[[CustomerContext], Value]:
    """The rule value of profile field ``name`` (:data:`FIELD_READERS`' value, made a rule
    value): an attribute of the usual types (none, bool, number, text) read as it is in
    one step, anything else through the reader."""
    read = FIELD_READERS[name]
    if name in DERIVED_FIELDS:
        return lambda context: _as_rule_value(read(context.profile))
    get = attrgetter(name)

    def value(context: CustomerContext) -> Value:
        plain = get(context.profile)
        if type(plain) in _AS_IS:  # what the reader and _as_rule_value pass as they are
            return plain
        return _as_rule_value(read(context.profile))

    return value


_AS_IS = frozenset({type(None), bool, int, float, str})

#: Every field a rule may read, as a function of the context (the name looked up once).
_FIELD_VALUES: dict[str, Callable[[CustomerContext], Value]] = {
    **{name: _profile_field(name) for name in FIELD_READERS},
    **_CONTEXT_VALUES,
}
