"""The baselines of the API benchmarks: bare FastAPI endpoints doing one Redis read.

``/bare`` is the issue's bare endpoint, built as ``POST /v1/decisions`` is: the same
framework and server, the same request model (:class:`serving.schemas.DecisionRequest`,
validated by pydantic), the same synchronous Redis client called on the event loop,
the same JSON encoder (orjson, no response model to validate again). It reads the
customer's state value (one ``GET`` of the online store's MessagePack state), decodes
it and returns it: whatever the real endpoint costs beyond this
is the price of deciding. ``/bare-raw`` is the floor: the same read and encoder with
no request model (the body parsed by orjson).

    BARE_REDIS_URL=redis://127.0.0.1:6390/0 BARE_PREFIX=nba \\
        uvicorn benchmarks.bare_app:create_app --factory --workers 1 --no-access-log

Settings are read when the factory runs (never at import): ``BARE_REDIS_URL``
(required) and ``BARE_PREFIX`` (the online store's key prefix, default ``nba``).
"""

from __future__ import annotations

import os
from typing import Any

import msgpack
import orjson
import redis
from fastapi import FastAPI, Request, Response

from serving.schemas import DecisionRequest


def create_app() -> FastAPI:
    """The bare app on the Redis at ``$BARE_REDIS_URL``."""
    url = os.environ.get("BARE_REDIS_URL")
    if not url:
        raise SystemExit("BARE_REDIS_URL: set it to the Redis URL the benchmark uses")
    prefix = os.environ.get("BARE_PREFIX", "nba")
    client: Any = redis.Redis.from_url(url, socket_timeout=0.25)
    app = FastAPI(title="bare")

    def profile(customer_id: str) -> bytes:
        raw = client.get(f"{prefix}:s:{{{customer_id}}}")  # the online store's state key
        state = msgpack.unpackb(raw, strict_map_key=False) if raw else {}
        return orjson.dumps(
            {"customer_id": customer_id, "fields": state},
            option=orjson.OPT_NON_STR_KEYS,
            default=bytes.hex,  # binary-packed numbers, if any, as hex text
        )

    @app.post("/bare")
    async def bare(body: DecisionRequest) -> Response:
        return Response(profile(body.customer_id), media_type="application/json")

    @app.post("/bare-raw")
    async def bare_raw(request: Request) -> Response:
        """The floor: no request model, the body parsed by orjson."""
        customer_id = orjson.loads(await request.body())["customer_id"]
        return Response(profile(customer_id), media_type="application/json")

    @app.get("/healthz")
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    return app
