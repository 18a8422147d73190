"""The baseline of ``bench_api.py``: a bare FastAPI endpoint doing one Redis ``HGETALL``.

Same framework, same request shape (a JSON body with a customer id, validated
by pydantic), same synchronous Redis client and thread pool as
``POST /v1/decisions``, but no decision: it reads the customer's profile hash
and returns it. Whatever the real endpoint costs beyond this is the price of
deciding. ``/bare-raw`` is the floor: the same read with no response model and
stdlib JSON, run on the event loop (no thread-pool hop).

    BARE_REDIS_URL=redis://127.0.0.1:6390/0 BARE_PREFIX=nba \\
        uvicorn benchmarks.bare_app:create_app --factory --workers 1 --no-access-log

Settings are read when the factory runs (never at import): ``BARE_REDIS_URL``
(required) and ``BARE_PREFIX`` (the online store's key prefix, default ``nba``).
"""

from __future__ import annotations

import json
import os
from typing import Any

import redis
from fastapi import FastAPI, Request, Response
from pydantic import BaseModel, Field


class ProfileRequest(BaseModel):
    customer_id: str = Field(min_length=1, max_length=128)


class ProfileHash(BaseModel):
    customer_id: str
    fields: dict[str, str]


def create_app() -> FastAPI:
    """The bare app on the Redis at ``$BARE_REDIS_URL``."""
    url = os.environ.get("BARE_REDIS_URL")
    if not url:
        raise SystemExit("BARE_REDIS_URL: set it to the Redis URL the benchmark uses")
    prefix = os.environ.get("BARE_PREFIX", "nba")
    client: Any = redis.Redis.from_url(url, socket_timeout=0.25)
    app = FastAPI(title="bare")

    @app.post("/bare", response_model=ProfileHash)
    def bare(body: ProfileRequest) -> ProfileHash:
        raw = client.hgetall(f"{prefix}:p:{{{body.customer_id}}}")
        return ProfileHash(
            customer_id=body.customer_id,
            fields={k.decode(): v.decode() for k, v in raw.items()},
        )

    @app.post("/bare-raw")
    async def bare_raw(request: Request) -> Response:
        """The floor: the same read, no response model, stdlib JSON, on the event loop."""
        customer_id = json.loads(await request.body())["customer_id"]
        raw = client.hgetall(f"{prefix}:p:{{{customer_id}}}")
        body = {
            "customer_id": customer_id,
            "fields": {k.decode(): v.decode() for k, v in raw.items()},
        }
        return Response(json.dumps(body), media_type="application/json")

    @app.get("/healthz")
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    return app
