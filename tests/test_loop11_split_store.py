"""The closed loop's store keeps states split (loop11): it must read exactly as the memory
store it replaces, after the same materialisation, background and loop events."""

from __future__ import annotations

import datetime as dt

from features.finalise import CustomerStatic, SplitState, split_state
from features.online.profiles import OnlineProfiles
from features.online.store import EventOps, MemoryOnlineStore, StoredCustomer
from simulator.closed_loop import ClosedLoopConfig, build_world
from simulator.closed_loop.runner import loop_start
from simulator.closed_loop.store import SplitStateStore

CONFIG = ClosedLoopConfig(n_customers=300, history_days=40, days=3, seed=5, playbook=True)


def _parts(stored: StoredCustomer) -> tuple[list, list]:
    """A read's scalars and families, in order (the order sums run in)."""
    state = stored.state
    if isinstance(state, SplitState):
        scalars, keyed = state.scalars, state.keyed
    else:
        scalars, keyed = split_state(state)
    return list(scalars.items()), [(f, list(e.items())) for f, e in keyed.items()]


def _loop_events(ids: list[str], products: list[str], at: dt.datetime) -> list[dict]:
    """Outcomes of messages as the loop releases them, on customers known and not."""
    out = []
    for k, cid in enumerate(ids):
        when = at + dt.timedelta(minutes=k)
        base = {"customer_id": cid, "channel": "email", "decision_id": f"d{k}", "offer_id": None}
        for kind in ("message_sent", "message_delivered", "message_opened", "message_clicked"):
            out.append({**base, "event_id": f"d{k}:{kind}", "event_type": kind, "timestamp": when})
        if k % 3 == 0:
            out.append(
                {
                    **base,
                    "channel": "web",
                    "event_id": f"d{k}:purchase",
                    "event_type": "purchase",
                    "timestamp": when,
                    "product_id": products[k % len(products)],
                    "revenue": 30.0 + k,
                }
            )
    return out


def test_split_store_reads_as_the_memory_store() -> None:
    world = build_world(CONFIG)
    start = loop_start(world)
    split = start.online
    assert isinstance(split.store, SplitStateStore)
    memory = OnlineProfiles(MemoryOnlineStore(), world.sim.products)
    memory.materialise(world.build)
    ids = [p.customer_id for p in world.build.profiles]
    products = [str(p) for p in world.sim.products["product_id"][:20]]
    newcomer, stranger = "loop11-new", "loop11-unknown"
    static = world.build.statics[ids[0]]

    def both(check_at: dt.datetime) -> None:
        for cid in [*ids, newcomer, stranger, "nobody"]:
            [a] = memory.store.read([cid])
            [b] = split.store.read([cid])
            assert (a is None) == (b is None), cid
            if a is None or b is None:
                continue
            assert isinstance(b.state, SplitState)
            assert _parts(a) == _parts(b), cid
            assert (a.static, a.season) == (b.static, b.season)
            assert memory.from_stored(cid, a, check_at) == split.from_stored(cid, b, check_at)
        assert list(memory.store.customer_ids()) == list(split.store.customer_ids())

    both(world.cut)
    for online in (memory, split):
        online.register_customer(newcomer, static)
    for tick, packed in enumerate(start.ticks):
        shown = packed.unpack()
        now = world.cut + dt.timedelta(hours=3 * tick)
        released = _loop_events([*ids[tick % 7 :: 11], newcomer], products, now)
        results = []
        for online in (memory, split):
            ops = shown.merged(online, released)
            # an event of a customer never registered, and a replay of the tick's events
            ops = [*ops, EventOps(stranger, f"x{tick}", int(now.timestamp()), (("n", 1.0),))]
            results.append([vars(online.store.apply(ops)), vars(online.store.apply(ops[:5]))])
        assert results[0] == results[1]
    both(world.cut + dt.timedelta(days=CONFIG.days))


def test_a_read_is_a_copy() -> None:
    """A profile or a caller that keeps a read's families sees no later event."""
    store = SplitStateStore()
    store.upsert_static("c1", CustomerStatic(timezone="Europe/Paris", zone_known=True))
    store.apply([EventOps("c1", "e1", 100, (("np", 1.0), ("pd:1", 1.0)))])
    [before] = store.read(["c1"])
    store.apply([EventOps("c1", "e2", 200, (("np", 1.0), ("pd:1", 2.0), ("pd:2", 1.0)))])
    [after] = store.read(["c1"])
    assert dict(before.state) == {"np": 1.0, "pd:1": 1.0}
    assert dict(after.state) == {"np": 2.0, "pd:1": 3.0, "pd:2": 1.0}
