"""Parts of the closed loop's tick, in two source trees: CPU per call, same outputs.

Each measurement runs in a fresh subprocess that imports the packages of a source tree
(this one, and ``--baseline-src``, e.g. ``git archive`` of the branch point), builds the
same small playbook world, then times with the process's CPU clock:

* ``truth``: the lookahead oracle's valuations, ``TrueValue.incremental`` over calls of
  one customer each (5 to 11 slots: cart, browse, promotion with its offer, birthday
  messages on e-mail, SMS and push over the coming days, with recent contacts);
* ``events``: a tick's released loop events (what a sent message's outcomes are:
  sent, delivered, opened, clicked, a purchase with its order delivered) turned into
  the online store's ops and merged with the background's (``TickEvents.merged``), in
  ticks of 10 to 250 events (the loop's frame-free path takes ticks up to
  ``SMALL_BATCH``);
* ``oracle``: the lookahead oracle's whole run in the loop (``run_policy``, ``--oracle-
  customers`` x 3 days after 30), CPU per decision: its truth calls as the loop makes
  them (since the tick's slots are valued in one call: ``TickMargins``), with its
  screening, arbitration, profiles and deliveries.

The trees are measured alternately, ``--repeat`` times; the table gives medians and the
ratio. The script fails when the trees' outputs differ (every margin and purchase
probability within 1e-9: the truth's usual margin rate summed in a fixed order moved last
bits; digests of every event's ops, and of the oracle run's decisions and contacts with
floats to 9 digits, as the pinned test).

    git -C /work/main archive main | tar -x -C /tmp/base
    .venv/bin/python benchmarks/bench_loop_parts.py --baseline-src /tmp/base
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parents[1]
sys.path.append(str(HERE))  # after PYTHONPATH: the measured tree's packages come first

from benchmarks.bench_batch_decisions import measure_in_tree  # noqa: E402

PARTS = ("truth", "events", "oracle")


def _truth_calls(world: Any, calls: int) -> list[tuple[list[Any], ...]]:
    """Oracle-like valuation calls: one customer, 5-11 slots of a few messages each."""
    from nba.channels import Channel
    from simulator.closed_loop.mapping import Message

    ids = world.customer_ids
    products = [str(p) for p in world.sim.products["product_id"][:50]]
    offer = next(a.offer.id for a in world.catalog if a.offer is not None)
    channels = (Channel.EMAIL, Channel.SMS, Channel.PUSH)
    out = []
    for i in range(calls):
        messages = [
            Message("cart_reminder", None, products[i % 50]),
            Message("browse_reminder", None, products[(i * 7) % 50]),
            Message("promo", "shoes", None, offer),
            Message("birthday"),
        ]
        n = 5 + i % 7
        at = [world.cut + dt.timedelta(hours=9 + 3 * (i % 5), days=k % 7) for k in range(n)]
        out.append(
            (
                [ids[i % len(ids)]] * n,
                [channels[(i + k) % 3] for k in range(n)],
                at,
                [messages[k % 4] for k in range(n)],
                [i % 3 + (k >= n // 2) for k in range(n)],
            )
        )
    return out


def _released(world: Any, ticks: int) -> list[list[dict[str, Any]]]:
    """Loop events as the runner releases them, in ticks of 10-250 events, time order."""
    ids = world.customer_ids
    products = [str(p) for p in world.sim.products["product_id"][:50]]
    offer = next(a.offer.id for a in world.catalog if a.offer is not None)
    out = []
    for t in range(ticks):
        events: list[tuple[dt.datetime, dict[str, Any]]] = []
        for j in range(10 + (t * 37) % 240):
            cid = ids[(t * 251 + j) % len(ids)]
            at = world.cut + dt.timedelta(hours=3 * t, minutes=j % 170, seconds=j)
            base = {
                "customer_id": cid,
                "channel": ("email", "sms", "push")[j % 3],
                "decision_id": f"d{t}-{j}",
                "offer_id": offer if j % 4 == 0 else None,
            }
            kind = ("message_sent", "message_delivered", "message_opened", "message_clicked")[j % 4]
            events.append((at, {**base, "event_id": f"d{t}-{j}:{kind}", "event_type": kind}))
            if j % 9 == 0:
                web = {**base, "channel": "web", "event_id": f"d{t}-{j}:purchase"}
                events.append(
                    (
                        at,
                        {
                            **web,
                            "event_type": "purchase",
                            "product_id": products[j % 50],
                            "quantity": 1,
                            "revenue": 20.0 + j,
                        },
                    )
                )
        events.sort(key=lambda e: e[0])
        out.append([{**e, "timestamp": at} for at, e in events])
    return out


def _digits(values: Any, digits: int) -> bytes:
    """``values`` to ``digits`` significant digits, and differences of values (margins,
    purchase lifts) to ``digits`` decimals: a value near 0 is a difference of two values,
    whose last bits are its first digits."""
    return ",".join(f"{round(v, digits):.{digits}g}" for v in values).encode()


def child(part: str, customers: int, size: int) -> dict[str, Any]:
    """This interpreter's tree: CPU seconds of the part and a digest of its outputs."""
    from simulator.closed_loop import ClosedLoopConfig, build_world, make_policy, run_policy
    from simulator.closed_loop.runner import TickEvents, loop_start

    days = 3 if part == "oracle" else 2
    world = build_world(
        ClosedLoopConfig(
            n_customers=size if part == "oracle" else customers,
            history_days=30,
            days=days,
            seed=3,
            playbook=True,
        )
    )
    digest = hashlib.sha256()
    if part == "truth":
        calls = _truth_calls(world, size)
        world.truth.incremental(*calls[0])  # warm the message codes
        started = time.process_time()
        values = [world.truth.incremental(*call) for call in calls]
        cpu = time.process_time() - started
        margins = [float(v) for value in values for v in (*value.margin, *value.purchase)]
        return {"cpu": cpu, "per": cpu / size, "values": margins}
    if part == "oracle":
        run = run_policy(world, make_policy("oracle", world), start=loop_start(world))
        for frame in (run.decisions, run.contacts):
            for row in frame.itertuples(index=False):
                digest.update(_digits([v for v in row if isinstance(v, float)], 9))
                digest.update(repr([v for v in row if not isinstance(v, float)]).encode())
        per = run.cpu_seconds / len(run.decisions)
        return {"cpu": run.cpu_seconds, "per": per, "digest": digest.hexdigest()}
    online = loop_start(world).online
    released = _released(world, size)
    empty = TickEvents([], [], frozenset())
    started = time.process_time()
    merged = [empty.merged(online, tick) for tick in released]
    cpu = time.process_time() - started
    n = sum(len(tick) for tick in released)
    for ops in merged:
        for op in ops:
            digest.update(repr((op.customer_id, op.event_id, op.ts, op.ops)).encode())
    return {"cpu": cpu, "per": cpu / n, "digest": digest.hexdigest()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline-src", type=Path, help="source tree of the baseline")
    parser.add_argument("--customers", type=int, default=300)
    parser.add_argument("--calls", type=int, default=2000, help="truth calls per measurement")
    parser.add_argument("--ticks", type=int, default=60, help="event ticks per measurement")
    parser.add_argument(
        "--oracle-customers", type=int, default=1000, help="customers of the oracle's run"
    )
    parser.add_argument("--parts", default=",".join(PARTS), help="comma-separated parts")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--child", choices=PARTS, help=argparse.SUPPRESS)
    parser.add_argument("--size", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(child(args.child, args.customers, args.size)))
        return 0
    if args.baseline_src is None:
        parser.error("--baseline-src is required")
    trees = {"baseline": args.baseline_src.resolve(), "this": HERE}
    sizes = {"truth": args.calls, "events": args.ticks, "oracle": args.oracle_customers}
    parts = [p for p in PARTS if p in args.parts.split(",")]
    results: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for _ in range(args.repeat):
        for part in parts:
            for name, src in trees.items():
                command = [sys.executable, str(Path(__file__).resolve()), "--child", part]
                command += ["--customers", str(args.customers), "--size", str(sizes[part])]
                results.setdefault((part, name), []).append(measure_in_tree(command, src, None))
    load = os.getloadavg()
    print(
        f"{platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}; "
        f"load average at the end {load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f}\n"
    )
    print("| part | per | baseline µs CPU (runs) | this µs CPU (runs) | baseline / this |")
    print("|---|---|---:|---:|---:|")
    same = True
    units = {"truth": "call (5-11 slots)", "events": "event", "oracle": "decision"}
    for part in parts:
        runs = {name: results[(part, name)] for name in trees}
        if part == "truth":  # the last bits moved (a fixed-order sum): equal to 1e-9
            values = [np.array(r["values"]) for rs in runs.values() for r in rs]
            alike = all(np.abs(v - values[0]).max() <= 1e-9 for v in values)
        else:
            alike = len({r["digest"] for rs in runs.values() for r in rs}) == 1
        same = same and alike
        med = {name: statistics.median(r["per"] for r in rs) * 1e6 for name, rs in runs.items()}
        shown = {}
        for name, rs in runs.items():
            each = ", ".join(f"{r['per'] * 1e6:,.1f}" for r in rs)
            shown[name] = f"{med[name]:,.1f} ({each})"
        print(
            f"| {part} | {units[part]} | {shown['baseline']} | {shown['this']} | "
            f"{med['baseline'] / med['this']:.2f}x |" + ("" if alike else " outputs differ |")
        )
    print("\nOutputs identical in both trees:", "yes" if same else "NO")
    return 0 if same else 1


if __name__ == "__main__":
    raise SystemExit(main())
