"""The data contract: the four tables nba reads, their columns and their rules.

A table is described once, as a :class:`TableSchema` of :class:`Column` specs.
The same specs drive file validation (:mod:`features.validation`), the README
table (``nba contract``) and the typed record models below, which the API uses
for single records.

Files are CSV or Parquet. Identifiers are text, 1 to 128 characters with no
control character and no space first or last (one rule for files, where ids are read
stripped, API events, decisions and read-outs: :data:`ID_PATTERN`). Timestamps carry a
time zone (``2026-03-01T18:05:00Z`` or ``...+01:00``), are stored in UTC and lie in
[:data:`EARLIEST_MOMENT`, :data:`LATEST_MOMENT`); dates are ``YYYY-MM-DD``. Lists (an
offer's channels) are ``|``-separated in CSV.
"""

from __future__ import annotations

import datetime as dt
import zoneinfo
from dataclasses import dataclass, field
from enum import StrEnum
from functools import lru_cache
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_core import InitErrorDetails, PydanticCustomError

from nba.actions import OfferKind
from nba.channels import CONSENT_CHANNELS, Channel
from nba.events import EventType

#: Longest identifier (customer, product, offer, event, decision).
ID_MAX_LENGTH = 128
#: The one id rule: 1 to 128 characters, none of them a control character (tab, newline,
#: NUL, DEL...), which would break logs, CSV exports and Redis key names, and no space
#: first or last: a file's ids are read stripped (`` C1`` is ``C1``), so an API id with a
#: space around it would be another customer than the file's (and a blank one nobody).
ID_PATTERN = r"^[^\x00-\x20\x7f](?:[^\x00-\x1f\x7f]{0,126}[^\x00-\x20\x7f])?$"
_CONTROL = frozenset(chr(c) for c in (*range(32), 127))

#: Largest quantity and revenue of one event: beyond, sums of them would leave the range
#: the online store keeps exactly (and no real order is that large).
MAX_QUANTITY = 1_000_000
MAX_REVENUE = 1e12

#: The moments the contract accepts, for events, decisions and read-outs alike. Affinity
#: scores grow as exp(t / 30 days) from 2024 (:mod:`features.definitions`), which stays
#: finite in double precision until about 2080; 2070 leaves a margin for sums.
EARLIEST_MOMENT = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
LATEST_MOMENT = dt.datetime(2070, 1, 1, tzinfo=dt.UTC)


def id_problem(value: str) -> str | None:
    r"""Why ``value`` is not an identifier, or ``None`` when it is one.

    >>> id_problem("C000042") is None
    True
    >>> id_problem("C42\n")
    'contains a control character (tab, newline, NUL...): not an id'
    >>> id_problem("C42 ")
    "starts or ends with a space: 'C42 ' would not be 'C42' (ids are read stripped from files)"
    """
    if not value:
        return "empty: an id has 1 to 128 characters"
    if not value.strip():
        return "blank: an id has 1 to 128 characters, not only spaces"
    if len(value) > ID_MAX_LENGTH:
        return f"{len(value)} characters: an id has at most {ID_MAX_LENGTH}"
    if not _CONTROL.isdisjoint(value):
        return "contains a control character (tab, newline, NUL...): not an id"
    if value != value.strip():
        return (
            f"starts or ends with a space: {value!r} would not be {value.strip()!r} (ids are "
            "read stripped from files)"
        )
    return None


def check_id(value: str) -> str:
    """``value`` when it is an identifier, else ``ValueError`` saying why."""
    problem = id_problem(value)
    if problem is not None:
        raise ValueError(problem)
    return value


def moment_problem(value: dt.datetime) -> str | None:
    """Why ``value`` is outside the accepted moments, or ``None``."""
    if value.tzinfo is not None and not EARLIEST_MOMENT <= value < LATEST_MOMENT:
        return (
            f"{value.isoformat()} is outside {EARLIEST_MOMENT:%Y-%m-%d} .. "
            f"{LATEST_MOMENT:%Y-%m-%d} (UTC)"
        )
    return None


def check_moment(value: dt.datetime) -> dt.datetime:
    """``value`` if it lies in [:data:`EARLIEST_MOMENT`, :data:`LATEST_MOMENT`), else
    ``ValueError``.

    >>> check_moment(dt.datetime(1, 1, 1, tzinfo=dt.timezone(dt.timedelta(hours=1))))
    Traceback (most recent call last):
    ...
    ValueError: 0001-01-01T00:00:00+01:00 is outside 1970-01-01 .. 2070-01-01 (UTC)
    """
    problem = moment_problem(value)
    if problem is not None:
        raise ValueError(problem)
    return value


#: An identifier under the one id rule.
Id = Annotated[str, AfterValidator(check_id)]
#: A time with a time zone within the accepted moments.
Moment = Annotated[AwareDatetime, AfterValidator(check_moment)]

ColumnKind = Literal[
    "id",
    "text",
    "timestamp",
    "date",
    "float",
    "int",
    "bool",
    "json",
    "choice",
    "timezone",
    "channel",
    "channels",
    "event_type",
    "hours",
]


class LoyaltyTier(StrEnum):
    """Loyalty programme tiers, lowest first (:data:`nba.profile.LOYALTY_TIERS`, which the
    rules' values are checked against).

    >>> from nba.profile import LOYALTY_TIERS
    >>> tuple(LoyaltyTier) == LOYALTY_TIERS
    True
    """

    NONE = "none"
    BRONZE = "bronze"
    SILVER = "silver"
    GOLD = "gold"
    PLATINUM = "platinum"


@lru_cache(maxsize=1)
def _timezones() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())


def is_known_timezone(name: str) -> bool:
    """True when ``name`` is an IANA time zone known to this system.

    >>> is_known_timezone("Europe/Paris"), is_known_timezone("Mars/Olympus")
    (True, False)
    """
    return name in _timezones()


GENDERS: tuple[str, ...] = ("female", "male", "other", "unknown")


@dataclass(frozen=True)
class Column:
    """One column of a contract table.

    A column that is ``required`` and not ``nullable`` must be present in the
    file and filled in every row; a ``nullable`` column may be empty or absent.
    ``minimum``/``maximum`` bound numeric values (inclusive).
    """

    name: str
    kind: ColumnKind
    description: str
    required: bool = True
    nullable: bool = False
    choices: tuple[str, ...] | None = None
    minimum: float | None = None
    maximum: float | None = None


@dataclass(frozen=True)
class TableSchema:
    """A contract table: its name, primary key and columns."""

    name: str
    key: str
    description: str
    columns: tuple[Column, ...] = field(default_factory=tuple)

    def column(self, name: str) -> Column:
        for col in self.columns:
            if col.name == name:
                return col
        raise KeyError(f"table {self.name!r} has no column {name!r}")

    @property
    def names(self) -> list[str]:
        return [c.name for c in self.columns]


def consent_columns() -> tuple[Column, ...]:
    """``consent_<channel>`` (opted in now?) and ``consent_<channel>_at`` (when it changed)."""
    cols: list[Column] = []
    for ch in CONSENT_CHANNELS:
        cols.append(
            Column(
                f"consent_{ch.value}",
                "bool",
                f"customer is opted in to {ch.value} contact now (false after an opt-out)",
            )
        )
        cols.append(
            Column(
                f"consent_{ch.value}_at",
                "timestamp",
                f"when the {ch.value} consent was last given or withdrawn",
                nullable=True,
            )
        )
    return tuple(cols)


CUSTOMERS = TableSchema(
    name="customers",
    key="customer_id",
    description="One row per customer: attributes, time zone and consents.",
    columns=(
        Column("customer_id", "id", "unique customer identifier"),
        Column("created_at", "timestamp", "when the customer became known"),
        Column("timezone", "timezone", "IANA time zone, e.g. Europe/Paris"),
        Column("birth_date", "date", "date of birth", nullable=True),
        Column("gender", "choice", "declared gender", nullable=True, choices=GENDERS),
        Column("city", "text", "home city", nullable=True),
        Column(
            "loyalty_tier",
            "choice",
            "loyalty programme tier",
            choices=tuple(t.value for t in LoyaltyTier),
        ),
        Column("attributes", "json", "free-form JSON object", required=False, nullable=True),
        *consent_columns(),
        Column(
            "preferred_channel",
            "channel",
            "declared preferred outbound channel",
            required=False,
            nullable=True,
        ),
        Column(
            "preferred_hours",
            "hours",
            "declared preferred contact hours, local time, e.g. 18-21",
            required=False,
            nullable=True,
        ),
    ),
)

PRODUCTS = TableSchema(
    name="products",
    key="product_id",
    description="One row per product of the catalogue.",
    columns=(
        Column("product_id", "id", "unique product identifier"),
        Column("name", "text", "display name"),
        Column("category", "text", "product category"),
        Column("brand", "text", "brand", nullable=True),
        Column("price", "float", "unit price, tax included", minimum=0),
        Column("margin", "float", "unit margin in currency (at most the price)"),
        Column("stock", "int", "units in stock", minimum=0),
        Column("launch_date", "date", "first day on sale"),
        Column("attributes", "json", "free-form JSON object", required=False, nullable=True),
    ),
)

OFFERS = TableSchema(
    name="offers",
    key="offer_id",
    description="One row per offer marketers can give.",
    columns=(
        Column("offer_id", "id", "unique offer identifier"),
        Column("name", "text", "display name", required=False, nullable=True),
        Column("kind", "choice", "what the offer gives", choices=tuple(k.value for k in OfferKind)),
        Column("value", "float", "percent, amount or points, by kind", minimum=0),
        Column(
            "cost",
            "float",
            "expected cost to the business per redemption (a `percent_discount` is charged its "
            "percentage of the order it is redeemed on; `cost` where that order's value is "
            "unknown)",
            minimum=0,
        ),
        Column("valid_from", "timestamp", "first moment the offer may be given"),
        Column("valid_to", "timestamp", "last moment the offer may be given"),
        Column("channels", "channels", "outbound channels allowed, | separated"),
        Column("daily_budget", "int", "redemptions allowed per day", nullable=True, minimum=0),
        Column(
            "eligibility",
            "text",
            "eligibility expression over profile fields (decision core syntax)",
            nullable=True,
        ),
    ),
)

EVENTS = TableSchema(
    name="events",
    key="event_id",
    description="One row per interaction event, on any channel.",
    columns=(
        Column("event_id", "id", "unique event identifier (replays are ignored)"),
        Column("customer_id", "id", "customer the event belongs to"),
        Column("timestamp", "timestamp", "when it happened, with time zone (stored as UTC)"),
        Column("channel", "channel", "where it happened"),
        Column("event_type", "event_type", "what happened"),
        Column("product_id", "id", "product concerned", nullable=True),
        Column("offer_id", "id", "offer concerned", nullable=True),
        Column("decision_id", "id", "decision this event answers", nullable=True),
        Column("quantity", "int", "units", nullable=True, minimum=0, maximum=MAX_QUANTITY),
        Column(
            "revenue",
            "float",
            "revenue in currency (purchases); on a return or cancellation, the amount refunded",
            nullable=True,
            minimum=0,
            maximum=MAX_REVENUE,
        ),
        Column("properties", "json", "free-form JSON object", required=False, nullable=True),
    ),
)

TABLES: dict[str, TableSchema] = {t.name: t for t in (CUSTOMERS, PRODUCTS, OFFERS, EVENTS)}


# ---------------------------------------------------------------- typed records
# Single-record models for the API and for Python callers. A test keeps their
# fields in step with the table schemas above.


class _Record(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, use_enum_values=False)


class ConsentState(BaseModel):
    """Consent on one channel."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    granted: bool
    changed_at: AwareDatetime | None = None


class CustomerRecord(_Record):
    customer_id: Id
    created_at: Moment
    timezone: str
    birth_date: dt.date | None = None
    gender: Literal["female", "male", "other", "unknown"] | None = None
    city: str | None = None
    loyalty_tier: LoyaltyTier = LoyaltyTier.NONE
    attributes: dict[str, Any] | None = None
    consent_email: bool = False
    consent_email_at: AwareDatetime | None = None
    consent_sms: bool = False
    consent_sms_at: AwareDatetime | None = None
    consent_push: bool = False
    consent_push_at: AwareDatetime | None = None
    consent_postal: bool = False
    consent_postal_at: AwareDatetime | None = None
    consent_call_centre: bool = False
    consent_call_centre_at: AwareDatetime | None = None
    preferred_channel: Channel | None = None
    preferred_hours: str | None = Field(default=None, pattern=r"^\d{1,2}-\d{1,2}$")

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        if not is_known_timezone(value):
            raise ValueError(f"unknown IANA time zone {value!r}")
        return value

    def consent(self, channel: Channel) -> ConsentState:
        """Consent state on ``channel`` (always granted for channels that need none)."""
        if not channel.needs_consent:
            return ConsentState(granted=True)
        return ConsentState(
            granted=getattr(self, f"consent_{channel.value}"),
            changed_at=getattr(self, f"consent_{channel.value}_at"),
        )


class ProductRecord(_Record):
    product_id: Id
    name: str
    category: str
    brand: str | None = None
    price: float = Field(ge=0)
    margin: float
    stock: int = Field(ge=0)
    launch_date: dt.date
    attributes: dict[str, Any] | None = None


class OfferRecord(_Record):
    offer_id: Id
    name: str | None = None
    kind: OfferKind
    value: float = Field(ge=0)
    cost: float = Field(ge=0)
    valid_from: AwareDatetime
    valid_to: AwareDatetime
    channels: tuple[Channel, ...] = Field(min_length=1)
    daily_budget: int | None = Field(default=None, ge=0)
    eligibility: str | None = None


#: Events that give or withdraw a consent: the channel they happen on is the one whose
#: consent changes (an SMS STOP is always an SMS).
CONSENT_EVENTS: frozenset[EventType] = frozenset(
    {EventType.OPT_IN, EventType.UNSUBSCRIBE, EventType.COMPLAINT, EventType.SMS_STOP}
)


def consent_channel_problem(event_type: EventType, channel: Channel) -> str | None:
    """Why a consent event cannot be on ``channel``, or ``None``.

    An unsubscribe (or complaint, opt-in, SMS STOP) on a channel that needs no consent
    would change nothing: the customer who clicked "unsubscribe" on a web page would
    keep getting the e-mails. It is refused, asking for the channel it is about.

    >>> consent_channel_problem(EventType.UNSUBSCRIBE, Channel.EMAIL) is None
    True
    >>> problem = consent_channel_problem(EventType.UNSUBSCRIBE, Channel.WEB)
    >>> print(problem)  # doctest: +NORMALIZE_WHITESPACE
    an unsubscribe changes the consent of the channel it names, and 'web' needs none:
    name the channel withdrawn (one of: email, sms, push, postal, call_centre)
    >>> consent_channel_problem(EventType.SMS_STOP, Channel.EMAIL)
    "an sms_stop is on 'sms', not 'email'"
    """
    if event_type not in CONSENT_EVENTS:
        return None
    if event_type is EventType.SMS_STOP:
        return None if channel is Channel.SMS else f"an sms_stop is on 'sms', not '{channel.value}'"
    if channel in CONSENT_CHANNELS:
        return None
    names = ", ".join(c.value for c in CONSENT_CHANNELS)
    verb = "granted" if event_type is EventType.OPT_IN else "withdrawn"
    article = "an" if event_type.value[0] in "aeiou" else "a"
    return (
        f"{article} {event_type.value} changes the consent of the channel it names, and "
        f"'{channel.value}' needs none: name the channel {verb} (one of: {names})"
    )


class EventRecord(_Record):
    event_id: Id
    customer_id: Id
    timestamp: Moment
    channel: Channel
    event_type: EventType
    product_id: Id | None = None
    offer_id: Id | None = None
    decision_id: Id | None = None
    quantity: int | None = Field(default=None, ge=0, le=MAX_QUANTITY)
    revenue: float | None = Field(default=None, ge=0, le=MAX_REVENUE, allow_inf_nan=False)
    properties: dict[str, Any] | None = None

    @model_validator(mode="after")
    def _consent_event_on_a_consent_channel(self) -> EventRecord:
        problem = consent_channel_problem(self.event_type, self.channel)
        if problem is not None:
            error = PydanticCustomError("consent_channel", problem)
            detail = InitErrorDetails(type=error, loc=("channel",), input=self.channel.value)
            raise ValidationError.from_exception_data(type(self).__name__, [detail])
        return self


RECORD_MODELS: dict[str, type[_Record]] = {
    "customers": CustomerRecord,
    "products": ProductRecord,
    "offers": OfferRecord,
    "events": EventRecord,
}
