"""``/v1/customers/{id}/profile``: the profile as the engine sees it;
``DELETE /v1/customers/{id}``: forget the customer (:mod:`serving.erasure`)."""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Annotated

from fastapi import APIRouter, Path, Query, Request, Response
from fastapi.encoders import jsonable_encoder
from starlette.convertors import Convertor, register_url_convertor

from features.contract import ID_MAX_LENGTH, ID_PATTERN
from features.online.contact_state import with_own_contacts
from serving.deps import UNAVAILABLE, V1_ERRORS, Erase, Profiles, caller_of
from serving.erasure import erase_customer
from serving.errors import ErrorResponse, NotFoundError, UnavailableError
from serving.redis_gate import RedisDownError
from serving.runtime import Runtime
from serving.schemas import Moment, ProfileResponse


class _AnyText(Convertor[str]):
    """A path segment that may hold any character (a slash, a newline): the id rule is
    checked by validation (422 naming the field), not by routing (a bare 404)."""

    regex = r"[\s\S]+"

    def convert(self, value: str) -> str:
        return value

    def to_string(self, value: str) -> str:
        return value


register_url_convertor("any_text", _AnyText())
router = APIRouter()


@router.get(
    "/v1/customers/{customer_id:any_text}/profile",
    response_model=ProfileResponse,
    tags=["customers"],
    summary="The profile as the engine sees it now (scope `profiles`)",
    responses={**V1_ERRORS, **UNAVAILABLE},
)
def profile(
    customer_id: Annotated[str, Path(min_length=1, max_length=ID_MAX_LENGTH, pattern=ID_PATTERN)],
    runtime: Profiles,
    as_of: Annotated[
        Moment | None,
        Query(
            description="The moment to read the profile at (ISO 8601 with time zone, "
            "1970-2070); default: now."
        ),
    ] = None,
) -> ProfileResponse:
    moment = (as_of or dt.datetime.now(dt.UTC)).astimezone(dt.UTC)
    try:
        return runtime.gate.call(lambda: profile_payload(runtime, customer_id, moment))
    except RedisDownError as error:
        raise UnavailableError(f"profile not readable ({error})") from None


def profile_payload(runtime: Runtime, customer_id: str, now: dt.datetime) -> ProfileResponse:
    """The profile at ``now``, and the action history, as JSON-ready data."""
    decisions = runtime.decisions
    profile = decisions.profiles.profile(customer_id, now)
    if profile is not None:  # its contacts as decisions count them (reported or not)
        profile = with_own_contacts(profile, decisions.contacts.own_contacts(customer_id, now), now)
    history = decisions.contacts.history(customer_id)
    data = {} if profile is None else jsonable_encoder(dataclasses.asdict(profile))
    return ProfileResponse(
        customer_id=customer_id,
        as_of=now,
        known=profile is not None,
        profile=data,
        action_history=history,
    )


@router.delete(
    "/v1/customers/{customer_id:any_text}",
    status_code=204,
    response_class=Response,
    tags=["customers"],
    summary="Forget a customer: profile, history, counters, cached answers (scope `erase` "
    "or `admin`)",
    description="Deletes everything Redis holds of the customer and records the erasure: "
    "for at least `NBA_ERASURE_TOMBSTONE_DAYS` (30) an event of theirs that happened before "
    "it is rejected (one after it starts a new customer), and the event archive and the "
    "decision log drop their records (purged from the files by `nba archive compact` "
    "or `nba erase`). 204: erased; 404: nothing was held of this customer (the erasure "
    "is recorded all the same, so a retry or a second call is harmless).",
    responses={
        **V1_ERRORS,
        **UNAVAILABLE,
        204: {"description": "Erased."},
        404: {"model": ErrorResponse, "description": "Nothing held of this customer."},
    },
)
def erase(
    customer_id: Annotated[str, Path(min_length=1, max_length=ID_MAX_LENGTH, pattern=ID_PATTERN)],
    runtime: Erase,
    request: Request,
) -> Response:
    try:
        erased = erase_customer(runtime, customer_id, caller_of(request))
    except RedisDownError as error:
        raise UnavailableError(f"customer not erased, retry ({error})") from None
    if not erased.keys:
        raise NotFoundError(
            "nothing held of this customer (never seen, or already erased); the erasure is recorded"
        )
    return Response(status_code=204)
