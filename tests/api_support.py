"""A small simulated retailer served by the real API: real Redis, real MLflow.

Shared by the API tests (``tests/test_api*.py``). Redis is Debian's
redis-server when ``NBA_TEST_REDIS_URL`` is set (CI), else the embedded one.
"""

from __future__ import annotations

import datetime as dt
import os
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from features.batch import build_profiles
from features.dataset import RetailDataset
from features.online.connect import connect_redis
from features.online.profiles import OnlineProfiles
from features.online.redis_store import RedisOnlineStore
from serving.auth import new_api_key
from serving.settings import ApiKeySpec, Settings
from simulator import SimulatorConfig, simulate
from training.recommender import HybridConfig
from training.registry import ModelRegistry

FAST = HybridConfig(epochs=3, no_components=8)


@dataclass
class ApiWorld:
    """Everything a test needs to build an app and call it."""

    data: RetailDataset
    as_of: dt.datetime
    client: Any
    prefix: str
    products_path: Path
    registry: ModelRegistry
    keys: dict[str, str]
    specs: list[ApiKeySpec]
    root: Path

    def settings(self, **overrides: Any) -> Settings:
        values: dict[str, Any] = {
            "api_keys": self.specs,
            "data_dir": self.root,
            "products_path": self.products_path,
            "redis_prefix": self.prefix,
            "model_poll_seconds": 0,
            "redis_retry_seconds": 0.2,
        }
        values.update(overrides)
        return Settings(**values)

    def headers(self, who: str = "journeys") -> dict[str, str]:
        return {"Authorization": f"Bearer {self.keys[who]}"}

    def customer(self, *, consent: str = "email", zone_prefix: str = "Europe/") -> str:
        """A customer with ``consent`` granted, living in a zone starting with ``zone_prefix``."""
        c = self.data.customers
        ok = c[c[f"consent_{consent}"].fillna(False) & c["timezone"].str.startswith(zone_prefix)]
        return str(ok["customer_id"].iloc[0])

    def at(self, hours: float) -> dt.datetime:
        """``hours`` after the data's end (the online store's watermark)."""
        return self.as_of + dt.timedelta(hours=hours)


def redis_client(root: Path) -> Any:
    url = os.environ.get("NBA_TEST_REDIS_URL")
    return connect_redis(url) if url else connect_redis(None, root / "redis")


def build_world(
    root: Path,
    *,
    customers: int = 200,
    days: int = 30,
    seed: int = 5,
    client: Any | None = None,
) -> ApiWorld:
    """A simulated retailer materialised into ``client`` (default: the test Redis)."""
    sim = simulate(SimulatorConfig(n_customers=customers, days=days, seed=seed, n_products=120))
    data = RetailDataset(sim.customers, sim.products, sim.offers, sim.events)
    last = pd.Timestamp(data.events["timestamp"].max()).to_pydatetime()
    as_of = (last + dt.timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
    client = client if client is not None else redis_client(root)
    prefix = f"api{uuid.uuid4().hex[:8]}"
    online = OnlineProfiles(RedisOnlineStore(client, prefix=prefix), data.products)
    online.materialise(build_profiles(data, as_of=as_of))
    products_path = root / "products.parquet"
    data.products.to_parquet(products_path)
    registry = ModelRegistry(f"sqlite:///{root / 'mlflow.db'}", root / "artifacts")
    keys: dict[str, str] = {}
    specs = []
    for name, scopes in {
        "journeys": ("decide", "ingest", "profiles"),
        "reader": ("decide",),
        "crm": ("profiles",),
        "ops": ("admin",),
    }.items():
        key, spec = new_api_key(name, scopes)  # type: ignore[arg-type]
        keys[name] = key
        specs.append(spec)
    return ApiWorld(data, as_of, client, prefix, products_path, registry, keys, specs, root)


def event(
    world: ApiWorld,
    customer_id: str,
    event_type: str,
    at: dt.datetime,
    *,
    product_id: str | None = None,
    channel: str = "web",
    event_id: str | None = None,
) -> dict[str, Any]:
    return {
        "event_id": event_id or f"t-{uuid.uuid4().hex}",
        "customer_id": customer_id,
        "timestamp": at.isoformat(),
        "channel": channel,
        "event_type": event_type,
        "product_id": product_id,
    }
