"""``/v1/events``: event ingestion (contract rows and Segment messages)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from serving.deps import UNAVAILABLE, V1_ERRORS, Ingest, over_limit
from serving.errors import ErrorBody, ErrorDetail, ErrorResponse, UnavailableError
from serving.ingest import ArchiveUnavailableError
from serving.redis_gate import RedisDownError
from serving.schemas import EventsRequest, EventsResponse

router = APIRouter()


@router.post(
    "/v1/events",
    response_model=EventsResponse,
    tags=["events"],
    summary="Ingest events (contract or Segment track/identify)",
    responses={
        **V1_ERRORS,
        422: {
            "model": ErrorResponse,
            "description": "The request does not validate, or every event in it was "
            "rejected (nothing was stored): `error.details` names each event's index "
            "and field, and the body also carries the per-event counts and `rejections` "
            "of a 200 answer.",
        },
        **UNAVAILABLE,
    },
)
def events(body: EventsRequest, runtime: Ingest) -> EventsResponse | JSONResponse:
    limit = runtime.settings.max_events
    if len(body.events) > limit:
        raise over_limit(["body", "events"], f"events: {len(body.events)} events, at most {limit}")
    try:
        result = runtime.ingestor.ingest(body.events)
    except RedisDownError as error:
        raise UnavailableError(
            f"events not stored ({error}); nothing was acknowledged, retry later"
        ) from None
    except ArchiveUnavailableError as error:
        raise UnavailableError(
            f"events not archived ({error}); nothing was acknowledged, retry later"
        ) from None
    if result.rejected and not (result.accepted or result.duplicate or result.stale):
        return all_rejected(result)
    return result


def all_rejected(result: EventsResponse) -> JSONResponse:
    """A 422 for a request whose every event was rejected: nothing of it was stored, so
    it is a client's mistake to fix, not a success with a count to read (a journey tool
    sending one event at a time sees the status). The body is the API's error shape,
    each rejection a detail at ``["body", "events", index, *field path]``, with the per-event
    counts and ``rejections`` of a 200 answer beside it; a batch with anything accepted,
    a duplicate or a stale event is a 200 as before (the good events are applied)."""
    details = [
        ErrorDetail(
            loc=["body", "events", r.index, *(r.field.split(".") if r.field else [])],
            message=r.message if r.event_id is None else f"event {r.event_id!r}: {r.message}",
        )
        for r in result.rejections
    ]
    first, n = result.rejections[0], result.rejected  # called with at least one rejected
    message = (
        f"{'the event was' if n == 1 else f'all {n} events were'} rejected, nothing stored "
        f"(event {first.index}, {first.field or 'the event'}: {first.message})"
    )
    body: dict[str, Any] = ErrorResponse(
        error=ErrorBody(code="events_rejected", message=message, details=details)
    ).model_dump(mode="json")
    body.update(result.model_dump(mode="json"))
    return JSONResponse(body, status_code=422)
