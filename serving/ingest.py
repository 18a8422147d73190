"""``POST /v1/events``: validate each event, apply the good ones, say what happened to all.

An item is a contract event (``event_id``, ``customer_id``, ``timestamp``,
``channel``, ``event_type``...) or a Segment message (``"type": "track"`` or
``"identify"``). Each is validated on its own; a bad one is rejected with the
field at fault and the rest are applied. Events are applied to the online
profiles before the answer (the next decision sees them) and are idempotent by
event id (a retried batch counts as duplicates). An ``identify`` updates the
customer's time zone, birth date and declared channel and hours, and its
``consent_<channel>`` traits become ``opt_in`` / ``unsubscribe`` events, so consent
has one history.

A ``message_sent`` naming a decision reports its contact sent: the profile counts it
from then on, and the contact state no longer counts the contact it decided
(:mod:`features.online.contact_state`), so a reported send counts once toward the caps.

Outcome events (opened, clicked, purchase, unsubscribe, complaint) are then joined
to the decision their ``decision_id`` names, or to the latest send to the customer
within the attribution window, and update the response statistics
(:mod:`features.online.response_stats`; idempotent as the events are: a retried
batch counts nothing twice). One naming an unknown or another customer's decision
is applied as any event and counted as unattributed (``nba_outcomes_total``).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import ValidationError

from features.archive import EventArchive
from features.contract import EventRecord
from features.online.contact_state import ContactState, RedisContactState
from features.online.erasure import RedisErasure
from features.online.profiles import OnlineProfiles
from features.online.redis_store import RedisOnlineStore
from features.online.response_stats import OUTCOME_KINDS, AttributionResult, RedisResponseStats
from features.online.store import storable
from features.segment import CustomerPatch, SegmentMappingError, identify_to_patch, track_to_events
from nba.events import EventType
from serving.decisions import POPULARITY_POINTS
from serving.metrics import ApiMetrics
from serving.redis_gate import REDIS_ERRORS, RedisGate
from serving.schemas import EventsResponse, RejectedEvent

#: What the API does with events of customers it does not know (no registered profile).
UnknownPolicy = Literal["accept", "reject"]
#: How far in the future (by this server's clock) an event's time may lie, in seconds.
DEFAULT_MAX_FUTURE_SECONDS = 300.0
#: Seconds between writes of the gathered popularity points to Redis.
POPULARITY_FLUSH_SECONDS = 5.0


@dataclass
class ParsedBatch:
    """The events of one request, sorted into applicable records and rejections."""

    records: list[EventRecord] = field(default_factory=list)
    #: The request position of each record (an identify may give several records).
    positions: list[int] = field(default_factory=list)
    patches: list[CustomerPatch] = field(default_factory=list)
    #: The request position of each patch.
    patch_positions: list[int] = field(default_factory=list)
    rejections: list[RejectedEvent] = field(default_factory=list)
    #: events accepted with something to check (an unknown product)
    warnings: list[RejectedEvent] = field(default_factory=list)

    def add(self, index: int, *records: EventRecord) -> None:
        self.records.extend(records)
        self.positions.extend([index] * len(records))


def parse_items(items: Sequence[object]) -> ParsedBatch:
    """Validate every item; never raises for a bad item."""
    out = ParsedBatch()
    for index, item in enumerate(items):
        event_id = _id_of(item)
        try:
            message = item if isinstance(item, Mapping) else None
            kind = message.get("type") if message is not None else None
            if message is not None and kind == "track":
                out.add(index, *track_to_events(dict(message)))
            elif message is not None and kind == "identify":
                patch = identify_to_patch(dict(message))
                records = consent_events(patch, event_id)
                out.patches.append(patch)
                out.patch_positions.append(index)
                out.add(index, *records)
            elif message is None:
                out.rejections.append(
                    RejectedEvent(
                        index=index,
                        event_id=None,
                        field="",
                        message=f"an event is a JSON object (a contract event, or a Segment "
                        f"'track' or 'identify' message){_given(item)}",
                    )
                )
            elif kind is not None:
                out.rejections.append(
                    RejectedEvent(
                        index=index,
                        event_id=event_id,
                        field="type",
                        message=f"unknown message type {kind!r} (use 'track' or 'identify', "
                        "or send a contract event without 'type')",
                    )
                )
            else:
                out.add(index, EventRecord.model_validate(item))
        except SegmentMappingError as error:
            out.rejections.append(
                RejectedEvent(index=index, event_id=event_id, field=error.field, message=str(error))
            )
        except ValidationError as error:
            first = error.errors()[0]
            where = ".".join(str(p) for p in first.get("loc", ()))
            out.rejections.append(
                RejectedEvent(
                    index=index,
                    event_id=event_id,
                    field=where,
                    message="; ".join(
                        f"{'.'.join(str(p) for p in e.get('loc', ())) or 'event'}: {e['msg']}"
                        f"{_given(e.get('input'))}"
                        for e in error.errors()
                    ),
                )
            )
    return out


class ArchiveUnavailableError(RuntimeError):
    """The events were applied but could not be archived: nothing is acknowledged (the
    client retries; the retry is a duplicate online and is archived then)."""


def _given(value: object) -> str:
    """`` (got 'order_refund')``: the value a field was given, when it is a short scalar
    (never a whole event, nor a long text)."""
    if isinstance(value, bool | int | float) or (isinstance(value, str) and len(value) <= 80):
        return f" (got {value!r})"
    return ""


def _id_of(item: object) -> str | None:
    if not isinstance(item, Mapping):
        return None
    for key in ("event_id", "messageId", "message_id"):
        value = item.get(key)
        if isinstance(value, str | int):
            return str(value)
    return None


def consent_events(patch: CustomerPatch, message_id: str | None) -> list[EventRecord]:
    """``opt_in`` / ``unsubscribe`` events for the consents an ``identify`` sets."""
    if not patch.consents:
        return []
    if message_id is None:
        raise SegmentMappingError("messageId", "an identify that changes consent needs a messageId")
    at = patch.consent_changed_at or dt.datetime.now(dt.UTC)
    return [
        EventRecord(
            event_id=f"{message_id}:consent:{channel.value}",
            customer_id=patch.customer_id,
            timestamp=at,
            channel=channel,
            event_type=EventType.OPT_IN if granted else EventType.UNSUBSCRIBE,
        )
        for channel, granted in patch.consents.items()
    ]


def foreign_currency(record: EventRecord, currency: str) -> tuple[str, str] | None:
    """The field and message refusing ``record`` when its properties say its amounts are
    in another currency than ``currency`` (the store's), else ``None``.

    >>> import datetime as dt
    >>> order = EventRecord(event_id="e1", customer_id="C1", channel="web",
    ...     timestamp=dt.datetime(2026, 3, 4, tzinfo=dt.UTC), event_type="purchase",
    ...     product_id="P1", revenue=70.0, properties={"currency": "usd"})
    >>> print(foreign_currency(order, "EUR")[1])  # doctest: +NORMALIZE_WHITESPACE
    the amounts are in 'usd', not in the store's currency EUR (NBA_CURRENCY): convert them
    before sending, or they would be added to EUR amounts
    >>> foreign_currency(order.model_copy(update={"properties": {"currency": "EUR"}}), "EUR")
    """
    said = (record.properties or {}).get("currency")
    if said is None or (isinstance(said, str) and said.strip().upper() == currency):
        return None
    return (
        "properties.currency",
        f"the amounts are in {said!r}, not in the store's currency {currency} (NBA_CURRENCY): "
        f"convert them before sending, or they would be added to {currency} amounts",
    )


class EventIngestor:
    """Applies parsed events to the online profiles (and product popularity to the
    contact state) through the Redis gate."""

    def __init__(
        self,
        *,
        profiles: OnlineProfiles,
        contacts: ContactState,
        gate: RedisGate,
        metrics: ApiMetrics,
        unknown_customers: UnknownPolicy = "accept",
        max_future_seconds: float | None = DEFAULT_MAX_FUTURE_SECONDS,
        clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
        archive: EventArchive | None = None,
        currency: str | None = None,
    ) -> None:
        self.profiles = profiles
        self.contacts = contacts
        self.gate = gate
        self.metrics = metrics
        self.unknown_customers = unknown_customers
        self.max_future_seconds = max_future_seconds
        self.currency = currency
        self.clock = clock
        self.archive = archive
        self.erasure = RedisErasure(contacts) if isinstance(contacts, RedisContactState) else None
        self._products = frozenset(profiles.catalog.category.index.astype(str))
        self._lock = threading.Lock()
        self._popularity: Counter[str] = Counter()  # points per product, not yet in Redis
        self._flushed_at = time.monotonic()

    def ingest(self, items: Sequence[object]) -> EventsResponse:
        """Apply ``items``; raises :class:`~serving.redis_gate.RedisDownError` when Redis is down
        (nothing is acknowledged then, so the caller retries)."""
        batch = parse_items(items)
        accepted = duplicate = stale = 0
        customers: set[str] = set()
        self._refuse_erased(batch)
        if batch.patches:
            self.gate.call(lambda: self._apply_patches(batch.patches))
            customers.update(p.customer_id for p in batch.patches)
        prospects = self._screen(batch)
        if batch.records:
            # the same event twice in one request is one event
            unique = list({r.event_id: r for r in batch.records}.values())
            duplicate += len(batch.records) - len(unique)
            result = self.gate.call(lambda: self._apply(unique, prospects))
            accepted += result.applied + result.late
            duplicate += result.duplicate
            stale += result.stale
            customers.update(r.customer_id for r in unique)
            if self.archive is not None:  # on disk before the events are acknowledged
                refused = set(result.invalid_event_ids)
                try:
                    self.archive.append([r for r in unique if r.event_id not in refused])
                except OSError as error:  # a retry is a duplicate online, archived then
                    raise ArchiveUnavailableError(f"event archive: {error}") from error
            where = {r.event_id: i for r, i in zip(batch.records, batch.positions, strict=True)}
            for event_id in result.invalid_event_ids:  # refused whole by the store
                batch.rejections.append(
                    RejectedEvent(
                        index=where[event_id],
                        event_id=event_id,
                        field="",
                        message="a value of this event cannot be stored (not a finite number)",
                    )
                )
        batch.rejections.sort(key=lambda r: r.index)
        response = EventsResponse(
            accepted=accepted,
            duplicate=duplicate,
            stale=stale,
            rejected=len(batch.rejections),
            rejections=batch.rejections,
            customers_updated=len(customers),
            warnings=batch.warnings,
        )
        for outcome in ("accepted", "duplicate", "stale", "rejected"):
            n = getattr(response, outcome)
            if n:
                self.metrics.events.labels(outcome).inc(n)
        return response

    def close(self) -> None:
        """Close the archive (the API's shutdown)."""
        if self.archive is not None:
            self.archive.close()

    def _refuse_erased(self, batch: ParsedBatch) -> None:
        """Move to the rejections what an erased customer did up to their erasure (while
        Redis keeps it: :mod:`features.online.erasure`): it belongs to the relationship
        they asked to end. What they do after it starts a new customer."""
        if self.erasure is None or not (batch.records or batch.patches):
            return
        erasure = self.erasure
        ids = [r.customer_id for r in batch.records] + [p.customer_id for p in batch.patches]
        erased = self.gate.call(lambda: erasure.erased(ids))
        if not erased:
            return

        def refuse(index: int, event_id: str | None, at: dt.datetime) -> None:
            batch.rejections.append(
                RejectedEvent(
                    index=index,
                    event_id=event_id,
                    field="customer_id",
                    message=f"this customer was erased at {at.isoformat()}: what happened "
                    "before the erasure is not applied (what happens after it starts a new "
                    "customer)",
                )
            )

        now = self.clock()
        kept_patches = []
        for patch, index in zip(batch.patches, batch.patch_positions, strict=True):
            at = erased.get(patch.customer_id)
            moment = patch.declared_at or patch.consent_changed_at or now
            if at is not None and moment <= at:
                refuse(index, None, at)
            else:
                kept_patches.append((patch, index))
        batch.patches = [p for p, _ in kept_patches]
        batch.patch_positions = [i for _, i in kept_patches]
        kept = []
        for record, index in zip(batch.records, batch.positions, strict=True):
            at = erased.get(record.customer_id)
            if at is not None and record.timestamp <= at:
                refuse(index, record.event_id, at)
            else:
                kept.append((record, index))
        batch.records = [r for r, _ in kept]
        batch.positions = [i for _, i in kept]

    def _screen(self, batch: ParsedBatch) -> frozenset[str]:
        """Move to the rejections the records this API does not take: times beyond now plus
        the allowed clock skew, and (``unknown_customers="reject"``) events of customers or
        products the engine does not know. Unknown ones that are accepted are counted.
        Returns the unregistered customers (prospects), whose static attributes the check
        has just read: their events' ops need not read them again."""
        latest = (
            None
            if self.max_future_seconds is None
            else self.clock() + dt.timedelta(seconds=self.max_future_seconds)
        )
        ids = list(dict.fromkeys(r.customer_id for r in batch.records))
        registered = self.gate.call(lambda: self.profiles.registered(ids)) if ids else set()
        kept: list[tuple[EventRecord, int]] = []
        for record, index in zip(batch.records, batch.positions, strict=True):
            problem = None
            unknown_customer = record.customer_id not in registered
            unknown_product = (
                record.product_id is not None and record.product_id not in self._products
            )
            if latest is not None and record.timestamp > latest:
                problem = (
                    "timestamp",
                    f"{record.timestamp.isoformat()} is in the future (more than "
                    f"{self.max_future_seconds:g} s after this server's clock)",
                )
            elif self.unknown_customers == "reject" and unknown_customer:
                problem = (
                    "customer_id",
                    f"unknown customer {record.customer_id!r}: register it first (the "
                    "customers table, or an identify: a timezone, a birthday or any other "
                    "trait); this API rejects unknown customers",
                )
            elif self.unknown_customers == "reject" and unknown_product:
                problem = ("product_id", f"unknown product {record.product_id!r}")
            elif self.currency is not None:
                problem = foreign_currency(record, self.currency)
            if problem is not None:
                batch.rejections.append(
                    RejectedEvent(
                        index=index, event_id=record.event_id, field=problem[0], message=problem[1]
                    )
                )
                continue
            if unknown_customer:
                self.metrics.unknown.labels("customer").inc()
            if unknown_product:
                self.metrics.unknown.labels("product").inc()
                batch.warnings.append(
                    RejectedEvent(
                        index=index,
                        event_id=record.event_id,
                        field="product_id",
                        message=f"unknown product {record.product_id!r}: the products table "
                        "does not list it (no category, price nor stock known); accepted "
                        "(NBA_UNKNOWN_CUSTOMERS=reject refuses such events)",
                    )
                )
            kept.append((record, index))
        batch.records = [r for r, _ in kept]
        batch.positions = [i for _, i in kept]
        return frozenset(ids).difference(registered)

    def _apply(
        self, records: Sequence[EventRecord], prospects: frozenset[str] = frozenset()
    ) -> Any:
        stats, store = self.contacts.stats, self.profiles.store
        if isinstance(stats, RedisResponseStats) and isinstance(store, RedisOnlineStore):
            # one round trip: the outcomes are joined in the pipeline that applies the events
            # (after them, as below); an event the store refuses (a value that is not finite)
            # is left out beforehand, as the store would refuse it
            ops = self.profiles.record_ops(records, prospects)
            kept = [r for r in records if r.event_type in OUTCOME_KINDS]
            outcomes = [o for r in kept for o in stats.outcomes(r)]
            if outcomes:  # only an outcome's own ops can keep it out
                ids = {o.event_id for o in outcomes}
                refused = {op.event_id for op in ops if op.event_id in ids and not storable(op)}
                outcomes = [o for o in outcomes if o.event_id not in refused]
            result = store.apply(ops, scripts=stats.attribution_calls(outcomes))
            if outcomes:
                self._count(stats.count_attributed(result.script_replies))
        else:
            result = self.profiles.ingest_records(records, prospects)
            self._attribute(records, set(result.invalid_event_ids))
        self._reported(records, result)
        with self._lock:
            for r in records:
                points = POPULARITY_POINTS.get(r.event_type.value)
                if points is not None and r.product_id is not None:
                    self._popularity[r.product_id] += int(points)
            due = time.monotonic() - self._flushed_at >= POPULARITY_FLUSH_SECONDS
        if due:  # the events are applied: a failed flush keeps its points for the next one
            with contextlib.suppress(*REDIS_ERRORS):
                self.flush_popularity()
        return result

    def _reported(self, records: Sequence[EventRecord], result: Any) -> None:
        """Sends that ``message_sent`` events report for a decision now count in the profile:
        the contact state stops counting the contacts it decided for them."""
        refused = {*result.late_event_ids, *result.invalid_event_ids}
        sends = [
            (r.customer_id, r.decision_id, r.channel)
            for r in records
            if r.event_type is EventType.MESSAGE_SENT
            and r.decision_id is not None
            and r.event_id not in refused
        ]
        if sends:
            self.contacts.reported(sends)

    def _attribute(self, records: Sequence[EventRecord], refused: set[str]) -> None:
        """Join the outcome events among ``records`` to their decisions (after the events
        are applied: a failure here fails the request, whose retry counts nothing twice)."""
        stats = self.contacts.stats
        if stats is None:
            return
        outcomes = [o for r in records if r.event_id not in refused for o in stats.outcomes(r)]
        if not outcomes:
            return
        self._count(stats.attribute(outcomes))

    def _count(self, attribution: AttributionResult) -> None:
        for name in ("attributed", "duplicate", "unattributed"):
            n = getattr(attribution, name)
            if n:
                self.metrics.outcomes.labels(name).inc(n)

    def flush_popularity(self) -> None:
        """Add the popularity points gathered since the last flush to the contact state
        (one pipeline on Redis).

        Popularity only orders fallback products, so it is written every few seconds
        rather than with each request; points not yet flushed are kept on failure."""
        with self._lock:
            pending, self._popularity = self._popularity, Counter()
            self._flushed_at = time.monotonic()
        if not pending:
            return
        try:
            self.contacts.add_popularity({p: float(v) for p, v in pending.items()})
        except Exception:
            with self._lock:
                self._popularity.update(pending)
            raise

    def _apply_patches(self, patches: Sequence[CustomerPatch]) -> None:
        self.profiles.apply_patches(patches, self.clock())
