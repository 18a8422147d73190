"""``nba serve``, ``nba serve-key`` and ``nba api-demo``: run the HTTP API.

Settings come from the environment (``NBA_*``, see :mod:`serving.settings`);
the options here override the common ones. Configuration mistakes (no API key,
no products table, a malformed setting) end with a message and status 2 before
the server starts.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import socket
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Annotated, Any

import typer

from cli.support import console, fail


def _check_settings() -> Any:
    from pydantic import ValidationError

    from serving.auth import ApiKeys
    from serving.decisions import check_servable
    from serving.settings import Settings
    from serving.startup import (
        StartupError,
        load_catalog_setting,
        load_contact_policy_setting,
        load_experiment_setting,
        load_products,
    )

    try:
        settings = Settings()
        ApiKeys(settings.api_keys, allow_anonymous=settings.allow_anonymous)
        load_products(settings.products_file)
        load_catalog_setting(settings.catalog_path)
        load_contact_policy_setting(settings.contact_policy_path)
        experiment = load_experiment_setting(settings.experiment_file)
        if experiment is not None:
            check_servable(experiment)
    except ValidationError as error:
        problems = "; ".join(
            f"NBA_{'_'.join(str(p) for p in e['loc']).upper()}: {e['msg']}" for e in error.errors()
        )
        raise fail(f"bad setting: {problems}") from None
    except (ValueError, StartupError) as error:
        raise fail(str(error)) from None
    return settings


def serve(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port.")] = 8000,
    workers: Annotated[int, typer.Option(min=1, help="Worker processes.")] = 1,
    data_dir: Annotated[
        Path | None, typer.Option(help="Project data directory (NBA_DATA_DIR).")
    ] = None,
    allow_anonymous: Annotated[
        bool, typer.Option(help="Serve without API keys (development only).")
    ] = False,
) -> None:
    """Serve decisions and events over HTTP (OpenAPI docs at /docs)."""
    import uvicorn

    if data_dir is not None:
        os.environ["NBA_DATA_DIR"] = str(data_dir)
    if allow_anonymous:
        os.environ["NBA_ALLOW_ANONYMOUS"] = "true"
    _check_settings()
    console().print(f"nba API on http://{host}:{port} (docs: http://{host}:{port}/docs)")
    uvicorn.run(
        "serving.app:create_app",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        access_log=False,  # access lines carry customer ids in paths
        log_level="warning",
    )


def serve_key(
    name: Annotated[str, typer.Argument(help="Who the key is for (e.g. journeys).")],
    scopes: Annotated[
        str, typer.Option(help="Comma-separated scopes: decide, ingest, profiles, erase, admin.")
    ] = "decide,ingest",
) -> None:
    """Create an API key: prints the key (give it to the client) and the NBA_API_KEYS entry."""
    from serving.auth import new_api_key
    from serving.settings import SCOPES

    wanted = [s.strip() for s in scopes.split(",") if s.strip()]
    unknown = [s for s in wanted if s not in SCOPES]
    if unknown or not wanted:
        raise fail(f"--scopes: unknown {unknown or 'empty'} (use {', '.join(SCOPES)})")
    key, spec = new_api_key(name, wanted)  # type: ignore[arg-type]
    # plain lines, never wrapped: the key and the configuration line are copied as they are
    typer.echo(f"key (shown once): {key}")
    typer.echo(f"NBA_API_KEYS='[{spec.model_dump_json()}]'")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _call(base: str, method: str, path: str, key: str, body: Any | None = None) -> Any:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(base + path, data=data, method=method)
    request.add_header("Authorization", f"Bearer {key}")
    request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return json.loads(response.read())
    except urllib.error.HTTPError as error:
        return json.loads(error.read())


def api_demo(
    data_dir: Annotated[Path, typer.Option(help="Project data directory.")] = Path("data"),
    customer: Annotated[str | None, typer.Option(help="Customer to play.")] = None,
) -> None:
    """Start the API on the embedded defaults, send a view and an add-to-cart, ask for a
    decision and print it."""
    import pandas as pd
    import uvicorn

    from serving.app import create_app
    from serving.auth import new_api_key
    from serving.settings import Settings

    key, spec = new_api_key("demo", ["decide", "ingest", "admin"])
    settings = Settings(data_dir=data_dir, api_keys=[spec], model_poll_seconds=0)
    customers = pd.read_parquet(data_dir / "retailer" / "customers.parquet")
    consenting = customers[customers["consent_email"].fillna(False)]
    customer = customer or str(consenting["customer_id"].iloc[0])
    product = str(pd.read_parquet(settings.products_file)["product_id"].iloc[3])
    events = pd.read_parquet(data_dir / "retailer" / "events.parquet", columns=["timestamp"])
    last = pd.Timestamp(events["timestamp"].max()).floor("s").to_pydatetime()
    # the simulated history ends in the past: play the customer's next morning
    moment = (last + dt.timedelta(days=2)).replace(hour=9, minute=0, second=0, microsecond=0)

    port = _free_port()
    server = uvicorn.Server(
        uvicorn.Config(create_app(settings), host="127.0.0.1", port=port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{port}"
    out = console()
    try:
        for _ in range(600):
            if server.started:
                break
            time.sleep(0.1)
        else:
            raise fail("the API did not start within 60 s", code=3)
        ready = _call(base, "GET", "/readyz", key)
        out.print(f"API ready on {base}: redis {ready['redis']}; durability {ready['durability']}")
        sent = [
            {
                "event_id": f"demo-{moment:%Y%m%d}-{kind}",
                "customer_id": customer,
                "timestamp": (moment - dt.timedelta(minutes=minutes)).isoformat(),
                "channel": "web",
                "event_type": kind,
                "product_id": product,
            }
            for kind, minutes in (("product_view", 75), ("add_to_cart", 70))
        ]
        result = _call(base, "POST", "/v1/events", key, {"events": sent})
        out.print(f"POST /v1/events (view + add to cart of {product}) -> {result}")
        ask = {"customer_id": customer, "context": {"timestamp": moment.isoformat()}}
        out.print(f"POST /v1/decisions {json.dumps(ask)}")
        answer = _call(base, "POST", "/v1/decisions", key, ask)
        out.print_json(json.dumps(answer))
        out.print(
            f"OpenAPI docs: {base}/docs (run 'nba serve --data-dir {data_dir}' to keep it up)"
        )
    finally:
        server.should_exit = True
        thread.join(timeout=10)
