"""Request and response bodies of the HTTP API (the OpenAPI schema is generated from them).

Field names follow the data contract (``customer_id``, ``event_type``...); every
time is ISO 8601 with a time zone. Unknown fields in a request are refused
(422), so a typo never silently changes a decision.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    WithJsonSchema,
)

from features.contract import (
    EARLIEST_MOMENT,
    ID_MAX_LENGTH,
    ID_PATTERN,
    LATEST_MOMENT,
    check_moment,
)
from nba.channels import OUTBOUND_CHANNELS, Channel

#: An identifier (customer, action...): the data contract's one id rule.
ID = Field(min_length=1, max_length=ID_MAX_LENGTH, pattern=ID_PATTERN)
CUSTOMER_ID = Field(
    min_length=1, max_length=ID_MAX_LENGTH, pattern=ID_PATTERN, examples=["C000042"]
)

#: The moments the API accepts (decision times, visits, events, read-outs): the data
#: contract's, outside which conversions to the profiles' time scale overflow.
EARLIEST = EARLIEST_MOMENT
LATEST = LATEST_MOMENT


_NUMBER = re.compile(r"[+-]?[0-9]+(\.[0-9]*)?([eE][+-]?[0-9]+)?")


def _iso_text(value: Any) -> Any:
    """A moment must be ISO 8601 text: a bare number would be read as epoch seconds."""
    numeric = isinstance(value, int | float) and not isinstance(value, bool)
    if numeric or (isinstance(value, str) and _NUMBER.fullmatch(value.strip())):
        raise ValueError("give an ISO 8601 time with a time zone (e.g. 2026-03-06T09:00:00Z)")
    return value


#: An ISO 8601 time with a time zone, between 1970 and 2070 (the schema says so with a
#: pattern on the year, as JSON Schema has no date bounds).
Moment = Annotated[
    AwareDatetime,
    BeforeValidator(_iso_text),
    AfterValidator(check_moment),
    WithJsonSchema(
        {
            "type": "string",
            "format": "date-time",
            "pattern": r"^(19[7-9][0-9]|20[0-6][0-9])-",
        }
    ),
]


def _deliverable(channel: Channel) -> Channel:
    """A channel no action can be delivered on (a store, social networks) would only ever
    get "do nothing": the caller's mistake, said as such."""
    if not channel.is_outbound:
        names = ", ".join(c.value for c in OUTBOUND_CHANNELS)
        raise ValueError(f"{channel.value!r} delivers no action; one of: {names}")
    return channel


#: A channel the engine can deliver an action on (the schema lists them).
OutboundChannel = Annotated[
    Channel,
    AfterValidator(_deliverable),
    WithJsonSchema({"type": "string", "enum": [c.value for c in OUTBOUND_CHANNELS]}),
]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SessionIn(_Strict):
    """The customer's live visit, when the decision is asked from a page or the app."""

    channel: Literal["web", "app"] = Field(examples=["web"])
    started_at: Moment | None = Field(
        default=None, description="When the visit started; default: the decision time."
    )
    page: str | None = Field(default=None, max_length=512, examples=["/product/P00017"])
    product_id: Annotated[str, ID] | None = Field(default=None, examples=["P00017"])


class DecisionContext(_Strict):
    """Where and when the decision is asked."""

    channel: OutboundChannel | None = Field(
        default=None,
        description=(
            "The channel asking (an e-mail being assembled, a web placement...): only "
            "actions deliverable on it are considered. Default: any channel."
        ),
        examples=["email"],
    )
    placement: str | None = Field(
        default=None, max_length=128, description="Free label logged with the decision."
    )

    timestamp: Moment | None = Field(
        default=None, description="The moment of the decision (1970-2070); default: now."
    )
    session: SessionIn | None = None
    actions: list[Annotated[str, ID]] | None = Field(
        default=None,
        min_length=1,
        max_length=200,
        description="Restrict the candidates to these action ids of the catalog "
        "(unknown ids: 422).",
    )
    max_actions: int = Field(default=1, ge=1, le=20, description="How many actions to return.")


class DecisionRequest(_Strict):
    """Ask for the next best action(s) of one customer."""

    customer_id: str = CUSTOMER_ID
    context: DecisionContext = Field(default_factory=DecisionContext)

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "customer_id": "C000042",
                    "context": {
                        "channel": "email",
                        "timestamp": "2026-03-06T09:00:00Z",
                        "max_actions": 1,
                    },
                }
            ]
        },
    )


class BatchDecisionRequest(_Strict):
    """The same context for many customers (a campaign run)."""

    customer_ids: list[Annotated[str, ID]] = Field(min_length=1, examples=[["C000001", "C000002"]])
    context: DecisionContext = Field(default_factory=DecisionContext)


class ActionOut(BaseModel):
    """One chosen action: what, on which channel, when, and why."""

    action_id: str = Field(examples=["cart_reminder_email"])
    type: str = Field(examples=["cart_reminder"])
    channel: Channel | None = Field(examples=["email"])
    offer_id: str | None = None
    offer_expires_at: dt.datetime | None = None
    products: list[str] = Field(
        default_factory=list, description="Products to show (cart, browsed or recommended)."
    )
    send_at: dt.datetime | None = Field(description="When to send, UTC.")
    send_at_local: dt.datetime | None = Field(description="The same moment in the customer's zone.")
    timing: str = Field(description="Why this send time.")
    score: float = Field(description="Priority the action won with (expected value, levers).")
    propensity: float = Field(description="Probability the policy chose this action.")
    explored: bool = Field(description="True when exploration, not the best estimate, chose it.")
    template: str | None = None
    variant_id: str | None = None
    reasons: list[str] = Field(default_factory=list, description="Why it was chosen.")


class RejectedOut(BaseModel):
    """A candidate that was not chosen, and why (the most relevant few)."""

    action_id: str
    channel: Channel | None
    code: str = Field(examples=["no_consent"])
    message: str


class DecisionResponse(BaseModel):
    """The decision: log its id with the message so outcomes can be attributed."""

    decision_id: str = Field(examples=["d-3f0c5e1a9b2d4c6e"])
    customer_id: str
    decided_at: dt.datetime
    policy: str = Field(examples=["nba"])
    arm: str | None = Field(default=None, description="Experiment arm, when an experiment runs.")
    model_version: str = Field(description="Models that scored, or 'rules'.")
    actions: list[ActionOut]
    rejected: list[RejectedOut] = Field(
        default_factory=list, description="The main candidates not chosen, with the reason."
    )
    cold_start: bool = Field(description="True when the customer has no profile yet.")
    degraded: bool = Field(description="True when a fallback answered (see degraded_reason).")
    degraded_reason: str | None = None
    replaces: list[str] = Field(
        default_factory=list,
        description=(
            "Decisions whose scheduled messages this one replaces: withdraw them (their "
            "send has not gone yet). Empty unless the contact policy's "
            "supersede_lead_minutes is set, or a scheduled message's channel has lost its "
            "consent since (withdrawn either way); the first action's reasons say why."
        ),
        examples=[["d-9a1b2c3d4e5f6a7b"]],
    )


class BatchDecisionResponse(BaseModel):
    decisions: list[DecisionResponse]


#: An item of ``POST /v1/events``: any JSON value; what it must be is said in words.
_EVENT_ITEM = {
    "description": (
        "An event: a JSON object, a contract event or a Segment 'track' or 'identify' "
        "message. Any other value is refused on its own in 'rejections'."
    )
}


class EventsRequest(_Strict):
    """Events in the data contract's shape, or Segment ``track``/``identify`` messages.

    Each item is validated on its own: a bad item is rejected with its reasons
    and the others are still accepted.
    """

    # any JSON value per item, documented as such: an item that is no object is refused
    # on its own (``rejections``), not the whole request with the good ones (documented
    # as an object, a schema fuzzer rightly called a 200 for ``[[null]]`` a violation)
    events: list[Annotated[Any, WithJsonSchema(_EVENT_ITEM)]] = Field(
        min_length=1,
        examples=[
            [
                {
                    "event_id": "e-1",
                    "customer_id": "C000042",
                    "timestamp": "2026-03-06T08:59:30Z",
                    "channel": "web",
                    "event_type": "add_to_cart",
                    "product_id": "P00017",
                },
                {
                    "type": "track",
                    "messageId": "m-2",
                    "userId": "C000042",
                    "event": "Product Viewed",
                    "timestamp": "2026-03-06T08:58:00Z",
                    "properties": {"product_id": "P00003", "channel": "web"},
                },
            ]
        ],
    )


class RejectedEvent(BaseModel):
    index: int = Field(description="Position of the event in the request (0-based).")
    event_id: str | None
    field: str = Field(description="The field at fault ('' for the whole event).")
    message: str


class EventsResponse(BaseModel):
    """What happened to each event: applied, already seen, or refused (with why)."""

    accepted: int = Field(description="Events applied to profiles now.")
    duplicate: int = Field(description="Events already received (same event id): ignored.")
    stale: int = Field(description="Events older than the replay window: not applied.")
    rejected: int
    rejections: list[RejectedEvent] = Field(default_factory=list)
    customers_updated: int = 0
    warnings: list[RejectedEvent] = Field(
        default_factory=list,
        description="Events accepted with something to check, each naming its field (an "
        "unknown product: the products table does not list it).",
    )


class ProfileResponse(BaseModel):
    """The profile as the engine sees it at ``as_of``."""

    customer_id: str
    as_of: dt.datetime
    known: bool = Field(description="False for a customer the store has never seen.")
    profile: dict[str, Any]
    action_history: dict[str, dt.datetime] = Field(default_factory=dict)


class ModelStatus(BaseModel):
    name: str
    version: str | None
    loaded_at: dt.datetime | None
    error: str | None = None


class ReloadResponse(BaseModel):
    changed: bool
    models: list[ModelStatus]


class Health(BaseModel):
    status: Literal["ok"]


class Readiness(BaseModel):
    """``status`` for everyone (503 when degraded, so load balancers act); the details
    (Redis error, models, durability) only for a key with the ``admin`` scope."""

    status: Literal["ready", "degraded"]
    redis: str | None = Field(default=None, description="`ok`, or the error (admin only).")
    models: list[ModelStatus] | None = Field(default=None, description="Admin only.")
    durability: str | None = Field(
        default=None, description="What an acknowledged event survives (admin only)."
    )


class StockRequest(_Strict):
    """A product's units in stock, as the retailer's stock system counts them."""

    stock: int = Field(ge=0, le=2**31 - 1, description="Units in stock; 0 means sold out.")


class StockResponse(BaseModel):
    product_id: str
    stock: int
    in_stock: bool = Field(description="False: never recommended nor put in a message.")
