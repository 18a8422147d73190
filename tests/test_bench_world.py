"""A saved benchmark world is measured only while its Redis holds it
(benchmarks.bench_api.World.saved): a world whose server has gone would be measured as
thousands of unknown customers, cheap answers that look like a fast API."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest

from benchmarks.bench_api import World
from features.online.connect import connect_redis
from features.online.redis_store import RedisOnlineStore


def _world(path: Path, url: str, prefix: str) -> Path:
    fields = {name: "" for name in World.__dataclass_fields__}
    fields.update(
        redis_url=url,
        prefix=prefix,
        customer_ids=["C1", "C2"],
        product_ids=[],
        prices=[],
        channels=[],
        setup_seconds={},
        **{n: 0 for n in ("n_customers", "n_products", "n_events", "n_actions", "n_offers")},
    )
    path.write_text(json.dumps(fields))
    return path


def test_a_world_is_read_only_from_a_redis_that_holds_it(tmp_path: Path) -> None:
    client = connect_redis(None, tmp_path / "redis")
    url = f"unix://{client.socket_file}"
    prefix = f"w{uuid.uuid4().hex[:8]}"
    saved = _world(tmp_path / "W.json", url, prefix)
    with pytest.raises(SystemExit, match=r"holds none of the world's customers.*build the world"):
        World.saved(saved)
    client.set(RedisOnlineStore(client, prefix=prefix).state_key("C2"), b"\x80")
    world = World.saved(saved)
    assert (world.prefix, world.customer_ids) == (prefix, ["C1", "C2"])
    gone = _world(tmp_path / "gone.json", f"unix://{tmp_path / 'no.sock'}", prefix)
    with pytest.raises(SystemExit, match="cannot be read"):
        World.saved(gone)
