"""``/v1/customers/{id}/profile``: the profile as the engine sees it."""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Annotated

from fastapi import APIRouter, Path, Query
from fastapi.encoders import jsonable_encoder

from serving.deps import UNAVAILABLE, V1_ERRORS, Decide
from serving.errors import ErrorDetail, InvalidRequestError, UnavailableError
from serving.redis_gate import RedisDownError
from serving.runtime import Runtime
from serving.schemas import ProfileResponse, check_moment

router = APIRouter()


@router.get(
    "/v1/customers/{customer_id}/profile",
    response_model=ProfileResponse,
    tags=["customers"],
    summary="The profile as the engine sees it now",
    responses={**V1_ERRORS, **UNAVAILABLE},
)
def profile(
    customer_id: Annotated[str, Path(min_length=1, max_length=128)],
    runtime: Decide,
    as_of: Annotated[
        dt.datetime | None,
        Query(
            description="The moment to read the profile at (with time zone, 1970-2200); "
            "default: now."
        ),
    ] = None,
) -> ProfileResponse:
    if as_of is not None and as_of.tzinfo is None:
        raise InvalidRequestError("as_of: add a time zone (Z or an offset)")
    if as_of is not None:
        try:
            check_moment(as_of)
        except ValueError as error:
            where = ErrorDetail(loc=["query", "as_of"], message=str(error))
            raise InvalidRequestError(f"as_of: {error}", [where]) from None
    moment = (as_of or dt.datetime.now(dt.UTC)).astimezone(dt.UTC)
    try:
        return runtime.gate.call(lambda: profile_payload(runtime, customer_id, moment))
    except RedisDownError as error:
        raise UnavailableError(f"profile not readable ({error})") from None


def profile_payload(runtime: Runtime, customer_id: str, now: dt.datetime) -> ProfileResponse:
    """The profile at ``now``, and the action history, as JSON-ready data."""
    decisions = runtime.decisions
    profile = decisions.profiles.profile(customer_id, now)
    history = decisions.contacts.history(customer_id)
    data = {} if profile is None else jsonable_encoder(dataclasses.asdict(profile))
    return ProfileResponse(
        customer_id=customer_id,
        as_of=now,
        known=profile is not None,
        profile=data,
        action_history=history,
    )
