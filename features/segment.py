"""Segment / RudderStack ``track`` and ``identify`` messages mapped onto the contract.

Both tools send the same JSON shape. A ``track`` message becomes one
:class:`~features.contract.EventRecord`; an ``identify`` message becomes a
:class:`CustomerPatch` (only the traits it carries).

>>> event = track_to_event({
...     "type": "track", "event": "Product Added", "userId": "C1",
...     "messageId": "m-1", "timestamp": "2026-03-06T18:05:00Z",
...     "context": {"channel": "browser"},
...     "properties": {"product_id": "P9", "quantity": 1, "price": 39.9}})
>>> (event.event_type.value, event.channel.value, event.product_id, event.properties)
('add_to_cart', 'web', 'P9', {'price': 39.9})
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, ValidationError

from features.contract import EventRecord, LoyaltyTier, is_known_timezone
from features.definitions import encode_hours, encode_hours_register
from nba.channels import CONSENT_CHANNELS, Channel, parse_channel
from nba.events import EventType

#: Segment spec event names (e-commerce, e-mail, push) and their contract types.
SEGMENT_EVENTS: dict[str, tuple[EventType, Channel | None]] = {
    "products searched": (EventType.SEARCH, None),
    "product viewed": (EventType.PRODUCT_VIEW, None),
    "product clicked": (EventType.PRODUCT_VIEW, None),
    "product added": (EventType.ADD_TO_CART, None),
    "product removed": (EventType.REMOVE_FROM_CART, None),
    "checkout started": (EventType.CHECKOUT_STARTED, None),
    "order completed": (EventType.PURCHASE, None),
    "order delivered": (EventType.ORDER_DELIVERED, None),
    "order refunded": (EventType.ORDER_RETURNED, None),
    "order cancelled": (EventType.ORDER_CANCELLED, None),
    "order picked up": (EventType.CLICK_COLLECT_PICKUP, Channel.STORE),
    "store visited": (EventType.STORE_VISIT, Channel.STORE),
    "product reviewed": (EventType.REVIEW, None),
    "coupon applied": (EventType.COUPON_REDEEMED, None),
    "coupon redeemed": (EventType.COUPON_REDEEMED, None),
    "wallet pass added": (EventType.WALLET_PASS_ADDED, Channel.WALLET),
    "loyalty tier reached": (EventType.LOYALTY_TIER_REACHED, None),
    "email sent": (EventType.MESSAGE_SENT, Channel.EMAIL),
    "email delivered": (EventType.MESSAGE_DELIVERED, Channel.EMAIL),
    "email opened": (EventType.MESSAGE_OPENED, Channel.EMAIL),
    "email link clicked": (EventType.MESSAGE_CLICKED, Channel.EMAIL),
    "email bounced": (EventType.MESSAGE_BOUNCED, Channel.EMAIL),
    "email marked as spam": (EventType.COMPLAINT, Channel.EMAIL),
    # the e-mail spec's unsubscribe (an e-mail link clicked in a browser is still e-mail's);
    # properties.channel names another channel withdrawn
    "unsubscribed": (EventType.UNSUBSCRIBE, Channel.EMAIL),
    "sms stop": (EventType.SMS_STOP, Channel.SMS),
    "push notification received": (EventType.MESSAGE_DELIVERED, Channel.PUSH),
    "push notification tapped": (EventType.MESSAGE_OPENED, Channel.PUSH),
    "push notification bounced": (EventType.MESSAGE_BOUNCED, Channel.PUSH),
    "push notification dismissed": (EventType.MESSAGE_DISMISSED, Channel.PUSH),
    "push opened": (EventType.MESSAGE_OPENED, Channel.PUSH),
}

#: Segment ``context.channel`` values.
_CONTEXT_CHANNELS = {"browser": Channel.WEB, "mobile": Channel.APP}

#: Properties lifted into contract columns; everything else stays in ``properties``.
_LIFTED = ("product_id", "offer_id", "decision_id", "quantity", "revenue", "channel")


class SegmentMappingError(ValueError):
    """A Segment message that cannot be mapped; ``field`` names the JSON path at fault."""

    def __init__(self, field: str, message: str):
        self.field = field
        super().__init__(f"{field}: {message}")

    @classmethod
    def of(cls, problems: list[tuple[str, str]]) -> SegmentMappingError:
        """Every problem of one message at once (``field``: the first's), so that a
        sender fixes them in one round trip."""
        (field, first), *rest = problems
        return cls(field, "; ".join([first, *(f"{f}: {m}" for f, m in rest)]))


class CustomerPatch(BaseModel):
    """Customer fields carried by an ``identify`` message; unset fields stay as they are."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    customer_id: str
    created_at: AwareDatetime | None = None
    timezone: str | None = None
    birth_date: dt.date | None = None
    gender: str | None = None
    city: str | None = None
    loyalty_tier: LoyaltyTier | None = None
    consents: dict[Channel, bool] = {}
    consent_changed_at: AwareDatetime | None = None
    preferred_channel: Channel | None = None
    #: declared contact hours, local ``"18-21"``
    preferred_hours: str | None = None
    #: when the traits were declared (the message's time): stamps the preferences and a
    #: changed loyalty tier
    declared_at: AwareDatetime | None = None

    def preference_ops(self, at: int) -> list[tuple[str, float]]:
        """State ops of the declared channel and hours, stamped ``at`` (epoch seconds) like
        a customers-table row (the latest declaration wins), as
        :func:`features.definitions.customer_ops` stamps them."""
        ops: list[tuple[str, float]] = []
        if self.preferred_channel is not None:
            ops.append((f"pc:{self.preferred_channel.value}", float(at)))
        code = None if self.preferred_hours is None else encode_hours(self.preferred_hours)
        if code is not None:
            ops.append(("ph", encode_hours_register(at, code)))
        return ops


def _user_id(message: dict[str, Any]) -> str:
    user = message.get("userId") or message.get("user_id")
    if not user or not isinstance(user, str | int):
        raise SegmentMappingError(
            "userId", "missing (anonymous messages cannot be attributed to a customer)"
        )
    return str(user)


def track_to_event(message: dict[str, Any]) -> EventRecord:
    """Map a Segment ``track`` message onto an :class:`EventRecord`.

    The event name may be a Segment spec name (``Product Added``) or a contract
    event type (``add_to_cart``). The channel comes from ``properties.channel``,
    else from the spec event (e-mail events are on ``email``), else from
    ``context.channel`` (``browser`` is web, ``mobile`` is app). An order of
    several products is several events: :func:`track_to_events`.
    """
    events = track_to_events(message)
    if len(events) > 1:
        raise SegmentMappingError(
            "properties.products",
            f"an order of {len(events)} products is {len(events)} purchase events "
            "(use track_to_events)",
        )
    return events[0]


#: Order events whose ``properties.products`` list becomes one event per line item: an
#: order, and a refund or cancellation of some of its products (the spec's partial refund;
#: its ``revenue`` or ``total``, the amount refunded, shared like an order's).
_LINE_ITEM_EVENTS = frozenset(
    {EventType.PURCHASE, EventType.ORDER_RETURNED, EventType.ORDER_CANCELLED}
)
#: Most line items one ``Order Completed`` may carry (each becomes an event).
MAX_ORDER_LINES = 200


def track_to_events(message: dict[str, Any]) -> list[EventRecord]:
    """Map a Segment ``track`` message onto its contract events: one, except for an
    order whose products come as the e-commerce spec's ``properties.products`` list.

    The contract has one purchase per product (what was bought feeds the cart, the
    cross-sell and the affinities), so an ``Order Completed`` (or an ``Order Refunded``
    or ``Order Cancelled`` naming the products it takes back) without a top-level
    ``product_id`` becomes one purchase per line item: the first keeps the
    ``messageId`` as its event id, the next ``<messageId>:2``, ``:3``... (a replay is
    still harmless); each line carries its own ``quantity`` and the order's offer,
    decision and other properties (a click-and-collect ``fulfilment`` included); the
    order's ``revenue`` (or ``total``) is shared in proportion to the lines' ``price`` x
    ``quantity`` (equally when a price is missing), so the order's revenue is kept.

    >>> order = {"type": "track", "event": "Order Completed", "userId": "C1",
    ...     "messageId": "m-9", "timestamp": "2026-03-06T18:30:00Z",
    ...     "context": {"channel": "browser"},
    ...     "properties": {"order_id": "A7", "revenue": 90.0, "products": [
    ...         {"product_id": "P1", "price": 50.0, "quantity": 1},
    ...         {"product_id": "P2", "price": 25.0, "quantity": 2}]}}
    >>> [(e.event_id, e.product_id, e.quantity, e.revenue) for e in track_to_events(order)]
    [('m-9', 'P1', 1, 45.0), ('m-9:2', 'P2', 2, 45.0)]
    """
    event = _track_to_event(message)
    props = event.properties or {}
    lines = props.get("products")
    if event.event_type not in _LINE_ITEM_EVENTS or event.product_id is not None or lines is None:
        return [event]
    if not isinstance(lines, list) or not all(isinstance(line, dict) for line in lines):
        raise SegmentMappingError("properties.products", "must be a list of product objects")
    if not 1 <= len(lines) <= MAX_ORDER_LINES:
        raise SegmentMappingError(
            "properties.products", f"an order has 1 to {MAX_ORDER_LINES} products, got {len(lines)}"
        )
    order = {k: v for k, v in props.items() if k != "products"}
    weights: list[float] = []
    for i, line in enumerate(lines):
        if not line.get("product_id"):
            raise SegmentMappingError(f"properties.products[{i}].product_id", "missing")
        price, quantity = line.get("price"), line.get("quantity", 1)
        known = isinstance(price, int | float) and isinstance(quantity, int | float)
        weights.append(float(price) * float(quantity) if known else -1.0)
    if min(weights) < 0 or not sum(weights):  # a price missing: the lines share equally
        weights = [1.0] * len(lines)
    total = sum(weights)
    events = []
    for i, (line, weight) in enumerate(zip(lines, weights, strict=True)):
        fields = event.model_dump()
        extra = {k: v for k, v in line.items() if k not in ("product_id", "quantity")}
        fields.update(
            event_id=event.event_id if i == 0 else f"{event.event_id}:{i + 1}",
            product_id=line["product_id"],
            quantity=line.get("quantity", event.quantity),
            revenue=None if event.revenue is None else event.revenue * weight / total,
            properties={**order, **extra} or None,
        )
        try:
            events.append(EventRecord(**fields))
        except ValidationError as exc:
            err = exc.errors()[0]
            where = ".".join(str(p) for p in err["loc"])
            raise SegmentMappingError(f"properties.products[{i}].{where}", err["msg"]) from None
    return events


def _track_to_event(message: dict[str, Any]) -> EventRecord:
    """One :class:`EventRecord` of a ``track`` message (:func:`track_to_event`)."""
    if message.get("type", "track") != "track":
        raise SegmentMappingError("type", f"expected 'track', got {message.get('type')!r}")
    name = str(message.get("event") or "").strip()
    if not name:
        raise SegmentMappingError("event", "missing event name")
    spec = SEGMENT_EVENTS.get(name.lower())
    if spec is None:
        try:
            spec = (EventType(name.lower().replace(" ", "_")), None)
        except ValueError:
            raise SegmentMappingError(
                "event",
                f"unknown event {name!r}; use a Segment spec name (e.g. 'Product Viewed') "
                "or a contract event type (e.g. 'product_view')",
            ) from None
    event_type, spec_channel = spec
    props = dict(message.get("properties") or {})
    if not isinstance(message.get("properties") or {}, dict):
        raise SegmentMappingError("properties", "must be a JSON object")

    channel: Channel | None = spec_channel
    if "channel" in props:
        try:
            channel = parse_channel(str(props["channel"]))
        except ValueError as exc:
            raise SegmentMappingError("properties.channel", str(exc)) from None
    if channel is None:
        ctx = (message.get("context") or {}).get("channel")
        channel = _CONTEXT_CHANNELS.get(str(ctx).lower()) if ctx else None
    if channel is None:
        raise SegmentMappingError(
            "properties.channel", "cannot tell the channel; set properties.channel (e.g. 'web')"
        )
    # an order's total is its revenue; a refund's or a cancellation's, the amount refunded
    if event_type in _LINE_ITEM_EVENTS and "revenue" not in props and "total" in props:
        props["revenue"] = props.pop("total")

    fields: dict[str, Any] = {
        "event_id": message.get("messageId") or message.get("message_id"),
        "customer_id": _user_id(message),
        "timestamp": message.get("timestamp") or message.get("originalTimestamp"),
        "channel": channel,
        "event_type": event_type,
    }
    for key in _LIFTED:
        if key in props and key != "channel":
            fields[key] = props.pop(key)
    props.pop("channel", None)
    fields["properties"] = props or None
    if not fields["event_id"]:
        raise SegmentMappingError("messageId", "missing (needed to make ingestion idempotent)")
    try:
        return EventRecord(**fields)
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"])
        where = f"properties.{where}" if where in _LIFTED else where
        raise SegmentMappingError(where, err["msg"]) from None


def _trait_of(field: str, message: dict[str, Any]) -> str:
    """Where ``message`` holds the :class:`CustomerPatch` field ``field``, as the sender
    wrote it (a bad ``createdAt`` is named ``traits.createdAt``)."""
    traits = message.get("traits") or {}
    if field in ("declared_at", "consent_changed_at"):
        return "timestamp"
    if field == "created_at":
        return "traits.createdAt" if "createdAt" in traits else "traits.created_at"
    if field == "birth_date":
        return "traits.birthday"
    if field == "city":
        return "traits.address.city"
    if field == "timezone" and "timezone" not in traits:
        return "context.timezone"
    return f"traits.{field}"


#: A birthday given without a year, as vCard and ISO 8601 write it (``--04-12``) or bare
#: (``04-12``): a CRM that collects "day and month" for the wishes sends no year.
_MONTH_DAY = re.compile(r"(?:--)?(\d{2})-(\d{2})")
#: The year a birthday given without one is kept in: a leap year (29 February is a day),
#: the one Apple's Contacts uses too. Only its month and day are read (the days to the
#: birthday); no age is taken from an identify's birthday.
YEARLESS_BIRTH_YEAR = 1604


def identify_to_patch(message: dict[str, Any]) -> CustomerPatch:
    """Map a Segment ``identify`` message onto a :class:`CustomerPatch`.

    Recognised traits: ``createdAt``, ``timezone`` (or ``context.timezone``),
    ``birthday`` (``1990-04-12``, or without a year ``--04-12`` / ``04-12``), ``gender``,
    ``address.city``, ``loyalty_tier``, ``preferred_channel``, ``preferred_hours``
    (local, ``"18-21"``) and ``consent_<channel>`` booleans.
    """
    if message.get("type", "identify") != "identify":
        raise SegmentMappingError("type", f"expected 'identify', got {message.get('type')!r}")
    traits = message.get("traits") or {}
    if not isinstance(traits, dict):
        raise SegmentMappingError("traits", "must be a JSON object")
    consents: dict[Channel, bool] = {}
    problems: list[tuple[str, str]] = []  # every bad trait, named at once
    for ch in CONSENT_CHANNELS:
        key = f"consent_{ch.value}"
        if key in traits:
            if not isinstance(traits[key], bool):
                problems.append((f"traits.{key}", "must be true or false"))
                continue
            consents[ch] = traits[key]
    address = traits.get("address") if isinstance(traits.get("address"), dict) else {}
    fields: dict[str, Any] = {
        "customer_id": _user_id(message),
        "created_at": traits.get("createdAt") or traits.get("created_at"),
        "timezone": traits.get("timezone") or (message.get("context") or {}).get("timezone"),
        "birth_date": traits.get("birthday"),
        "gender": traits.get("gender"),
        "city": (address or {}).get("city"),
        "loyalty_tier": traits.get("loyalty_tier"),
        "consents": consents,
        "consent_changed_at": message.get("timestamp") if consents else None,
        "preferred_channel": traits.get("preferred_channel"),
        "preferred_hours": traits.get("preferred_hours"),
    }
    fields["declared_at"] = message.get("timestamp")
    if isinstance(fields["birth_date"], str) and "T" in fields["birth_date"]:
        fields["birth_date"] = fields["birth_date"].split("T")[0]
    if isinstance(fields["birth_date"], str) and (
        month_day := _MONTH_DAY.fullmatch(fields["birth_date"].strip())
    ):
        try:
            fields["birth_date"] = dt.date(YEARLESS_BIRTH_YEAR, *map(int, month_day.groups()))
        except ValueError:
            problems.append(
                ("traits.birthday", f"no such day {fields['birth_date']!r} (month-day: '--04-12')")
            )
            fields["birth_date"] = None
    patch = None
    try:
        patch = CustomerPatch(**{k: v for k, v in fields.items() if v is not None})
    except ValidationError as exc:
        problems += [(_trait_of(str(e["loc"][0]), message), e["msg"]) for e in exc.errors()]
    zone, hours = fields["timezone"], fields["preferred_hours"]
    if isinstance(zone, str) and not is_known_timezone(zone):
        problems.append((_trait_of("timezone", message), f"unknown IANA time zone {zone!r}"))
    if isinstance(hours, str) and encode_hours(hours) is None:
        problems.append(
            ("traits.preferred_hours", f"expected local hours such as '18-21', got {hours!r}")
        )
    if patch is not None and (late := _signed_up_after(patch)) is not None:
        problems.append((_trait_of("created_at", message), late))
    if problems or patch is None:
        raise SegmentMappingError.of(problems)
    return patch


#: How far an identify's ``createdAt`` may lie after the message's own time: the systems
#: that stamp them keep different clocks, and the API allows an event's time as far
#: beyond its own (``serving.ingest.DEFAULT_MAX_FUTURE_SECONDS``, 300 s).
SIGN_UP_CLOCK_SKEW = dt.timedelta(seconds=300)


def _signed_up_after(patch: CustomerPatch) -> str | None:
    """Why ``patch``'s sign-up cannot be (``None``: it can): a customer signs up before
    they are identified, so a ``createdAt`` after the message's time is a date typed
    wrong (2030 for 2020), which would make a customer of years "new" for years and
    start their welcome series."""
    created, said = patch.created_at, patch.declared_at
    if created is None or said is None or created <= said + SIGN_UP_CLOCK_SKEW:
        return None
    return (
        f"{created.isoformat()} is after the message's timestamp {said.isoformat()}: a "
        "customer signs up before they are identified"
    )
