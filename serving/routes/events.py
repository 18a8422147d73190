"""``/v1/events``: event ingestion (contract rows and Segment messages)."""

from __future__ import annotations

from fastapi import APIRouter

from serving.deps import UNAVAILABLE, V1_ERRORS, Ingest, over_limit
from serving.errors import UnavailableError
from serving.ingest import ArchiveUnavailableError
from serving.redis_gate import RedisDownError
from serving.schemas import EventsRequest, EventsResponse

router = APIRouter()


@router.post(
    "/v1/events",
    response_model=EventsResponse,
    tags=["events"],
    summary="Ingest events (contract or Segment track/identify)",
    responses={**V1_ERRORS, **UNAVAILABLE},
)
def events(body: EventsRequest, runtime: Ingest) -> EventsResponse:
    limit = runtime.settings.max_events
    if len(body.events) > limit:
        raise over_limit(["body", "events"], f"events: {len(body.events)} events, at most {limit}")
    try:
        return runtime.ingestor.ingest(body.events)
    except RedisDownError as error:
        raise UnavailableError(
            f"events not stored ({error}); nothing was acknowledged, retry later"
        ) from None
    except ArchiveUnavailableError as error:
        raise UnavailableError(
            f"events not archived ({error}); nothing was acknowledged, retry later"
        ) from None
