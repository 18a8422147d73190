"""Actions and offers: what the engine can do for a customer.

An :class:`Action` is one entry of the catalog marketers edit: a type (cart
reminder, welcome message, do nothing...), the channels that may deliver it, an
eligibility rule, a business value and lever, timing (time-to-live, send-time
mode, local hours), limits (cool-down per customer, daily volume) and
optionally an :class:`Offer` and wording :class:`Variant` s. Actions validate
themselves on construction, from YAML or from Python, and every rule is parsed
and type-checked then (see :mod:`nba.rules`).

>>> a = Action(id="review", type="review_request", channels=["e-mail"],
...            eligibility="hours_since_last_delivery >= 24", value=3)
>>> a.channels, a.eligibility.fields
((<Channel.EMAIL: 'email'>,), frozenset({'hours_since_last_delivery'}))
>>> from pydantic import ValidationError
>>> try:
...     Action(id="x", type="offer", channels=["sms"], eligibility="cart_value > 'a lot'")
... except ValidationError as error:
...     print(error.errors()[0]["loc"], error.errors()[0]["msg"])
('eligibility',) Value error, '>' compares numbers, got number and text at position 11
"""

from __future__ import annotations

import datetime as dt
import math
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import (
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    WithJsonSchema,
    field_validator,
    model_validator,
)

from nba.channels import Channel, parse_channel
from nba.context import RULE_SCHEMA, CustomerContext, scope_of
from nba.rules import Rule, ValueType, compile_rule
from nba.timing import MAX_HORIZON_HOURS, TimeWindow

_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,79}$"


class ActionType(StrEnum):
    """The kinds of action the engine knows."""

    PRODUCT_RECOMMENDATION = "product_recommendation"
    OFFER = "offer"
    CART_REMINDER = "cart_reminder"
    BROWSE_REMINDER = "browse_reminder"
    WELCOME = "welcome"
    MILESTONE = "milestone"
    SEASONAL = "seasonal"
    REACTIVATION = "reactivation"
    CROSS_SELL = "cross_sell"
    UP_SELL = "up_sell"
    REVIEW_REQUEST = "review_request"
    CONTENT = "content"
    DO_NOTHING = "do_nothing"


#: Action types whose products are their trigger's (or none): ``shows`` stays ``auto``.
_OWN_PRODUCTS = frozenset(
    {ActionType.CART_REMINDER, ActionType.BROWSE_REMINDER, ActionType.DO_NOTHING}
)


class OfferKind(StrEnum):
    """What an offer gives (the same values as the data contract's offers table)."""

    PERCENT_DISCOUNT = "percent_discount"
    FIXED_DISCOUNT = "fixed_discount"
    FREE_SHIPPING = "free_shipping"
    LOYALTY_POINTS = "loyalty_points"
    CONTENT = "content"


#: Offers that buy a response (a customer may buy anyway, so only their uplift is worth
#: paying for); the others (loyalty points, content) are a gift the message carries.
INCENTIVE_KINDS: frozenset[OfferKind] = frozenset(
    {OfferKind.PERCENT_DISCOUNT, OfferKind.FIXED_DISCOUNT, OfferKind.FREE_SHIPPING}
)


def _as_condition(value: object) -> object:
    if value is None or isinstance(value, Rule):
        return value
    if isinstance(value, bool):
        value = "true" if value else "false"
    return compile_rule(str(value), RULE_SCHEMA, expect=ValueType.BOOL)


def _number_rule(value: float) -> Rule:
    return compile_rule(repr(float(value)), RULE_SCHEMA, expect=ValueType.NUMBER)


def _as_number_expression(value: object) -> object:
    if isinstance(value, Rule):
        return value
    if isinstance(value, bool):
        raise ValueError("value is a number or a numeric expression, not true/false")
    if isinstance(value, int | float):
        if value < 0:
            raise ValueError(f"value must be at least 0, got {value}")
        return _number_rule(value)
    return compile_rule(str(value), RULE_SCHEMA, expect=ValueType.NUMBER)


def _as_channels(value: object) -> object:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list | tuple):
        raise ValueError("channels is a list, e.g. [email, sms]")
    return tuple(c if isinstance(c, Channel) else parse_channel(str(c)) for c in value)


def _as_windows(value: object) -> object:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list | tuple):
        raise ValueError("local_hours is a list of HH:MM-HH:MM windows")
    return tuple(w if isinstance(w, TimeWindow) else TimeWindow.parse(str(w)) for w in value)


#: A condition over profile and context fields, written as text in the catalog.
Condition = Annotated[
    Rule,
    BeforeValidator(_as_condition),
    PlainSerializer(str),
    WithJsonSchema({"type": "string", "description": "condition (nba rule language)"}),
]
#: A number, or a numeric expression over profile fields (``cart_value * 0.3``).
NumberExpression = Annotated[
    Rule,
    BeforeValidator(_as_number_expression),
    PlainSerializer(str),
    WithJsonSchema({"anyOf": [{"type": "number", "minimum": 0}, {"type": "string"}]}),
]
Channels = Annotated[
    tuple[Channel, ...],
    BeforeValidator(_as_channels),
    PlainSerializer(lambda cs: [str(c) for c in cs]),
    WithJsonSchema({"type": "array", "items": {"enum": [c.value for c in Channel]}}),
]
LocalHours = Annotated[
    tuple[TimeWindow, ...],
    BeforeValidator(_as_windows),
    PlainSerializer(lambda ws: [str(w) for w in ws]),
    WithJsonSchema({"type": "array", "items": {"type": "string", "pattern": "HH:MM-HH:MM"}}),
]


class _CatalogModel(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, arbitrary_types_allowed=True)


class Offer(_CatalogModel):
    """An incentive attached to an action (a discount, free shipping, points...).

    ``cost`` is the expected cost to the business per redemption; the engine
    subtracts ``P(response) * cost`` from the action's priority (a percent discount is
    charged its percentage of the order it is redeemed on instead, where that order's
    value is known: :func:`nba.redemption.redemption_cost`). ``daily_budget``
    counts offers *given* per day (a conservative stand-in for redemptions,
    which are only known later). ``expires_after_hours`` makes the offer
    time-limited from the moment it is sent.
    """

    id: str = Field(pattern=_ID_PATTERN)
    kind: OfferKind
    value: float = Field(ge=0)
    cost: float = Field(default=0.0, ge=0)
    valid_from: AwareDatetime | None = None
    valid_to: AwareDatetime | None = None
    channels: Channels = ()
    daily_budget: int | None = Field(default=None, ge=0)
    eligibility: Condition | None = None
    expires_after_hours: float | None = Field(default=None, gt=0)

    @model_validator(mode="after")
    def _validity(self) -> Offer:
        if self.valid_from and self.valid_to and self.valid_from >= self.valid_to:
            raise ValueError("valid_to: must be after valid_from")
        return self


class Variant(_CatalogModel):
    """A wording of an action for some customers (first matching variant wins).

    A variant without ``when`` is the default and must come last.
    """

    id: str = Field(pattern=_ID_PATTERN)
    when: Condition | None = None
    template: str | None = None
    message: str = ""


class Action(_CatalogModel):
    """One action of the catalog.

    Attributes
    ----------
    id, type, description
        Identity. ``type`` is an :class:`ActionType`.
    channels
        Outbound channels that may deliver it, in the marketer's order of
        preference (ties go to the first). Empty for ``do_nothing`` only.
    eligibility
        Condition that must hold (unknown counts as false).
    value
        Business value of a response (currency), a number or a numeric
        expression. For ``do_nothing`` it is the priority any action must beat.
    lever
        Business lever multiplying the priority (1 = neutral).
    category
        Product category the action promotes, if any (scorers use affinity).
    offer
        Attached incentive, if any.
    min_uplift
        When set, the action is kept only for customers whose estimated uplift
        (incremental response probability) reaches it; without an uplift
        estimate it is dropped.
    valid_from, valid_to
        When the action may be sent.
    ttl_hours
        Time-to-live: the latest send is this many hours after the decision.
    send_by
        A deadline in the customer's calendar, a numeric expression: the send
        must happen before the end of the customer's local day this many days
        from the decision's (``days_to_birthday``: on or before the birthday,
        never after it). Unknown: only the time-to-live limits; negative: the
        deadline has passed and nothing is sent.
    timing
        ``best_hour`` (the customer's preferred moment within the time-to-live)
        or ``asap`` (the first allowed moment).
    send_delay_hours
        The earliest send is this many hours after the decision.
    local_hours
        Extra local-time windows the send must fall in (``["18:00-22:00"]``).
    cooldown_hours
        Minimum hours before the same action goes to the same customer again.
    cooldown_scope
        What the cool-down holds back: ``customer`` (the action, for any trigger) or
        ``cart`` (the same cart: a cart added to after the action last went is a new
        trigger, and the cool-down does not hold it back; a marketer reads "72 hours
        between cart reminders" as "never remind the same cart twice", while the
        contact caps bound the pressure). Default: ``cart`` for cart reminders,
        ``customer`` for every other action (:attr:`cooldown_per_cart`).
    daily_volume
        Maximum sends per day across all customers.
    group
        Actions of one group are mutually exclusive within a decision.
    time_critical
        The action answers something the customer just did and is worth little once
        its moment has passed (a cart or browse reminder): exploration never gives
        its place to another action, nor to a later send, when it has the highest
        expected priority (see :func:`nba.arbitration.thompson_pick`), and an ``asap``
        one does not wait for the customer's declared hours.
    template, variants
        What the journey tool sends; the first variant whose ``when`` holds.
    shows
        The products attached: ``auto`` (by its type: the cart's items, the browsed
        products, the recommender's picks) or ``new_arrivals`` (a launch: the products
        launched in the last 30 days up to the customer's local day and in stock, those
        the recommender ranks first, then the newest).
    """

    id: str = Field(pattern=_ID_PATTERN)
    type: ActionType
    description: str = ""
    channels: Channels = ()
    eligibility: Condition | None = None
    value: NumberExpression = Field(default_factory=lambda: _number_rule(0.0))
    lever: float = Field(default=1.0, ge=0)
    category: str | None = None
    offer: Offer | None = None
    min_uplift: float | None = Field(default=None, ge=-1, le=1)
    valid_from: AwareDatetime | None = None
    valid_to: AwareDatetime | None = None
    ttl_hours: float = Field(default=72.0, gt=0, le=MAX_HORIZON_HOURS)
    send_by: NumberExpression | None = None
    timing: Literal["best_hour", "asap"] = "best_hour"
    send_delay_hours: float = Field(default=0.0, ge=0)
    local_hours: LocalHours = ()
    cooldown_hours: float | None = Field(default=None, ge=0)
    cooldown_scope: Literal["customer", "cart"] | None = None
    daily_volume: int | None = Field(default=None, ge=0)
    group: str | None = None
    time_critical: bool = False
    template: str | None = None
    variants: tuple[Variant, ...] = ()
    shows: Literal["auto", "new_arrivals"] = "auto"

    @field_validator("channels")
    @classmethod
    def _outbound(cls, channels: tuple[Channel, ...]) -> tuple[Channel, ...]:
        for channel in channels:
            if not channel.is_outbound:
                raise ValueError(f"{channel.value!r} cannot deliver an action (not outbound)")
        if len(set(channels)) != len(channels):
            raise ValueError("a channel is listed twice")
        return channels

    @field_validator("variants")
    @classmethod
    def _default_last(cls, variants: tuple[Variant, ...]) -> tuple[Variant, ...]:
        ids = [v.id for v in variants]
        if len(set(ids)) != len(ids):
            raise ValueError("variant ids must be unique")
        for variant in variants[:-1]:
            if variant.when is None:
                raise ValueError(
                    f"variant {variant.id!r} has no 'when' and is not last: "
                    "the variants after it could never be used"
                )
        return variants

    @model_validator(mode="after")
    def _consistent(self) -> Action:
        if self.is_do_nothing:
            if self.channels:
                raise ValueError("channels: a do_nothing action has no channels")
            if self.offer is not None:
                raise ValueError("offer: a do_nothing action has no offer")
        elif not self.channels:
            raise ValueError("channels: list at least one outbound channel")
        elif not self.deliverable_channels:
            raise ValueError(
                "offer.channels: none of the offer's channels is among the action's channels"
            )
        if self.valid_from and self.valid_to and self.valid_from >= self.valid_to:
            raise ValueError("valid_to: must be after valid_from")
        if self.send_delay_hours >= self.ttl_hours:
            raise ValueError("send_delay_hours: must be shorter than ttl_hours")
        if self.shows == "new_arrivals" and self.type in _OWN_PRODUCTS:
            raise ValueError(
                f"shows: a {self.type.value} shows its own products (the cart, the browsed "
                "products, or none); new_arrivals is for an action that shows the catalogue's"
            )
        return self

    @property
    def is_do_nothing(self) -> bool:
        return self.type == ActionType.DO_NOTHING

    @property
    def cooldown_per_cart(self) -> bool:
        """True when the cool-down holds back the same cart only (``cooldown_scope``,
        by default for cart reminders)."""
        scope = self.cooldown_scope
        if scope is None:
            return self.type == ActionType.CART_REMINDER
        return scope == "cart"

    @property
    def deliverable_channels(self) -> tuple[Channel, ...]:
        """The action's channels that its offer (if any) allows, in the action's order."""
        if self.offer is None or not self.offer.channels:
            return self.channels
        return tuple(c for c in self.channels if c in self.offer.channels)

    def rules(self) -> list[tuple[str, Rule]]:
        """Every rule of the action with the field it sits in."""
        found: list[tuple[str, Rule | None]] = [
            ("eligibility", self.eligibility),
            ("value", self.value),
            ("send_by", self.send_by),
        ]
        found += [(f"variants[{i}].when", v.when) for i, v in enumerate(self.variants)]
        if self.offer is not None:
            found.append(("offer.eligibility", self.offer.eligibility))
        return [(name, rule) for name, rule in found if rule is not None]

    @property
    def sent_actions(self) -> frozenset[str]:
        """Action ids this action's rules refer to with ``hours_since_sent``."""
        return frozenset().union(*(rule.sent_actions for _, rule in self.rules()))

    def valid_at(self, moment: dt.datetime) -> bool:
        """True when the action and its offer may be given at ``moment``."""
        for start, end in self._validity_bounds():
            if (start is not None and moment < start) or (end is not None and moment > end):
                return False
        return True

    def latest_send(self, now: dt.datetime, context: CustomerContext | None = None) -> dt.datetime:
        """The latest moment to send: the time-to-live, cut at the end of validity
        and, for ``context``'s customer, at the ``send_by`` deadline."""
        latest = now + dt.timedelta(hours=self.ttl_hours)
        deadline = self.arrive_by(now, context)
        return latest if deadline is None else min(latest, deadline)

    def arrive_by(
        self, now: dt.datetime, context: CustomerContext | None = None
    ) -> dt.datetime | None:
        """When the customer must have the message by: the end of the action's (and its
        offer's) validity and, for ``context``'s customer, the ``send_by`` deadline
        (``None`` without either). A channel with a lead time (a letter takes days to
        land) must send that much earlier."""
        deadline: dt.datetime | None = None
        for _, end in self._validity_bounds():
            if end is not None and (deadline is None or end < deadline):
                deadline = end
        if self.send_by is not None and context is not None:
            days = self.send_by.number(scope_of(context))
            if days is not None:
                end = _end_of_local_day(now, context.zone, days)
                deadline = end if deadline is None else min(deadline, end)
        return deadline

    def _validity_bounds(self) -> list[tuple[dt.datetime | None, dt.datetime | None]]:
        bounds = [(self.valid_from, self.valid_to)]
        if self.offer is not None:
            bounds.append((self.offer.valid_from, self.offer.valid_to))
        return bounds


def _end_of_local_day(now: dt.datetime, zone: dt.tzinfo, days: float) -> dt.datetime:
    """The end of the local day ``days`` after ``now``'s (UTC); before ``now`` when negative.

    >>> import zoneinfo
    >>> now = dt.datetime(2026, 4, 4, 9, 0, tzinfo=dt.UTC)  # 11:00 in Berlin
    >>> _end_of_local_day(now, zoneinfo.ZoneInfo("Europe/Berlin"), 0).isoformat()
    '2026-04-04T22:00:00+00:00'
    """
    if days < 0:
        return now - dt.timedelta(seconds=1)
    day = now.astimezone(zone).date() + dt.timedelta(days=math.floor(days) + 1)
    return dt.datetime.combine(day, dt.time(0), zone).astimezone(dt.UTC)


def action_schema() -> dict[str, Any]:
    """The JSON Schema of one catalog action (for editors and documentation)."""
    return Action.model_json_schema(mode="validation")
