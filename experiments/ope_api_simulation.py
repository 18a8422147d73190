"""A simulated retailer served by a running API: the end-to-end check of off-policy evaluation.

:class:`ApiTraffic` drives the closed loop's world (:mod:`simulator.closed_loop`)
through the API's public HTTP interface, with the simulated clock:

* every ``trigger_every_hours``, the customers' own behaviour since the previous
  tick and the outcomes of earlier messages that have happened are posted to
  ``POST /v1/events``;
* the customers who were active (and everyone at the daily decision hour), unless
  a message of theirs is still in flight, get a decision from
  ``POST /v1/decisions/batch`` with ``context.timestamp`` = the tick;
* each message the API chose is answered by the simulator's response model
  (:meth:`~simulator.ResponseModel.sample`, one generator per tick) at its send
  time; its outcomes (sent, delivered, opened, clicked, unsubscribe, a purchase
  through the message and its delivery) carry the ``decision_id`` and are posted
  when their time comes.

The API writes the decision log and the event archive; :func:`response_truth`
then gives each candidate's true expected conversions (or clicks) per decision at the logged
contexts, which :func:`experiments.ope_api.evaluate_log`'s intervals must cover.
"""

from __future__ import annotations

import bisect
import contextlib
import datetime as dt
import heapq
import json
import math
import os
import secrets
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from experiments.ope_api import LogEvaluation
from experiments.ope_logging import ActionChannel
from features.contract import EVENTS
from features.dataset import RetailDataset, write_dataset
from features.online.connect import connect_redis
from features.online.profiles import OnlineProfiles
from features.online.redis_store import RedisOnlineStore
from features.online.store import MemoryOnlineStore
from nba.channels import Channel
from nba.events import EventType
from simulator.closed_loop.world import EXAMPLES, ClosedLoopWorld
from simulator.config import CHANNEL_RESPONSE

_MINUTE = dt.timedelta(minutes=1)
_WEEK = dt.timedelta(days=7)
_COLUMNS = tuple(EVENTS.names)


@dataclass
class ApiTraffic:
    """Drive ``world`` through the API behind ``client`` (see the module doc)."""

    world: ClosedLoopWorld
    client: Any  # httpx.Client with base_url and auth headers
    batch_customers: int = 500
    batch_events: int = 1000
    seed: int = 0
    decisions: int = 0
    contacts: int = 0
    events_posted: int = 0
    #: Expected clicks and conversions of the messages sent, by the response model.
    expected: dict[str, float] = field(default_factory=lambda: {"click": 0.0, "convert": 0.0})
    #: True incremental margin and revenue of the messages sent (beyond doing nothing).
    true_value: dict[str, float] = field(default_factory=lambda: {"margin": 0.0, "revenue": 0.0})
    #: Per customer, the send times of the messages the API chose, in order.
    sends: dict[str, list[tuple[dt.datetime, dt.datetime]]] = field(default_factory=dict)
    _outbox: list[tuple[dt.datetime, int, dict[str, Any]]] = field(default_factory=list)
    _in_flight: dict[str, dt.datetime] = field(default_factory=dict)
    _recent: dict[str, list[dt.datetime]] = field(default_factory=dict)
    _sequence: int = 0
    _history: dict[str, list[dt.datetime]] = field(default_factory=dict)
    _prices: dict[str, float] = field(default_factory=dict)

    def run(self, progress: Callable[[int, int], None] | None = None) -> None:
        world, config = self.world, self.world.config
        local = OnlineProfiles(MemoryOnlineStore(), world.sim.products)
        local.materialise(world.build)
        for cid, sent_at in zip(
            world.history_contacts["customer_id"], world.history_contacts["sent_at"], strict=True
        ):
            stamp = pd.Timestamp(sent_at).floor("us").to_pydatetime()
            self._history.setdefault(str(cid), []).append(stamp)
        self._recent = {cid: sorted(times) for cid, times in self._history.items()}
        products = world.sim.products
        self._prices = dict(zip(products["product_id"], products["price"], strict=True))
        background = world.background
        stamps = background["timestamp"].to_numpy(dtype="datetime64[ns]")
        step = dt.timedelta(hours=config.trigger_every_hours)
        n_ticks = config.days * 24 // config.trigger_every_hours
        position = 0
        for tick in range(n_ticks):
            now = world.cut + tick * step
            end = int(
                np.searchsorted(stamps, np.datetime64(now.replace(tzinfo=None), "ns"), "right")
            )
            shown = background.iloc[position:end]
            position = end
            frame = _events_frame(shown, self._release(now))
            if len(frame):
                local.ingest(frame)
                self._post_events(frame)
            daily = (tick * config.trigger_every_hours) % 24 == config.decision_hour_utc
            active = set(shown["customer_id"].astype(str))
            who = [
                cid
                for cid in world.customer_ids
                if (daily or cid in active) and self._in_flight.get(cid, now) <= now
            ]
            answers = []
            for start in range(0, len(who), self.batch_customers):
                body = {
                    "customer_ids": who[start : start + self.batch_customers],
                    "context": {"timestamp": now.isoformat()},
                }
                answers += _ok(self.client.post("/v1/decisions/batch", json=body))["decisions"]
            self.decisions += len(answers)
            self._deliver(local, now, tick, answers)
            if progress is not None:
                progress(tick + 1, n_ticks)
        # every outcome of the messages sent, also those after the last tick: a decision's
        # reward is all it earns
        leftover = _events_frame(
            background.iloc[:0], self._release(dt.datetime.max.replace(tzinfo=dt.UTC))
        )
        if len(leftover):
            self._post_events(leftover)

    def _release(self, now: dt.datetime) -> list[dict[str, Any]]:
        out = []
        while self._outbox and self._outbox[0][0] <= now:
            out.append(heapq.heappop(self._outbox)[2])
        return out

    def _post_events(self, frame: pd.DataFrame) -> None:
        records = _records(frame)
        for start in range(0, len(records), self.batch_events):
            chunk = records[start : start + self.batch_events]
            answer = _ok(self.client.post("/v1/events", json={"events": chunk}))
            if answer.get("rejected"):
                raise RuntimeError(f"the API rejected events: {answer['rejections'][:3]}")
            self.events_posted += len(chunk)

    def _deliver(
        self,
        local: OnlineProfiles,
        now: dt.datetime,
        tick: int,
        answers: Sequence[Mapping[str, Any]],
    ) -> None:
        world = self.world
        sends = []
        for answer in answers:
            for action in answer["actions"][:1]:
                if action["channel"] is None or action["send_at"] is None:
                    continue
                cid = str(answer["customer_id"])
                profile = local.profile(cid, now)
                if profile is None:
                    continue
                send_at = dt.datetime.fromisoformat(action["send_at"]).astimezone(dt.UTC)
                message = world.mapping.message(world.catalog[action["action_id"]], profile)
                recent = self._recent_contacts(cid, send_at)
                sends.append((answer, action, cid, send_at, message, recent))
        if not sends:
            return
        rng = np.random.default_rng([self.seed, tick])
        arguments = (
            np.array([s[2] for s in sends], dtype=object),
            np.array([s[1]["channel"] for s in sends], dtype=object),
            np.array([round(s[3].timestamp() * 1e6) * 1000 for s in sends], dtype=np.int64),
        )
        options = {
            "kind": np.array([s[4].kind for s in sends], dtype=object),
            "category": np.array([s[4].category for s in sends], dtype=object),
            "product": np.array([s[4].product for s in sends], dtype=object),
            "offer": np.array([s[4].offer for s in sends], dtype=object),
            "recent_contacts": np.array([s[5] for s in sends], dtype=float),
        }
        outcome = world.response.sample(rng, *arguments, **options)
        expected = world.response.probabilities(*arguments, **options)
        for name in self.expected:
            self.expected[name] += float(getattr(expected, name).sum())
        value = world.truth.incremental(
            [s[2] for s in sends],
            [Channel(s[1]["channel"]) for s in sends],
            [s[3] for s in sends],
            [s[4] for s in sends],
            [s[5] for s in sends],
        )
        for name in self.true_value:
            self.true_value[name] += float(getattr(value, name).sum())
        config = world.config
        for k, (answer, action, cid, send_at, message, _) in enumerate(sends):
            channel = Channel(action["channel"])
            base = {
                "customer_id": cid,
                "channel": channel.value,
                "decision_id": answer["decision_id"],
                "offer_id": action.get("offer_id"),
            }
            self._emit(EventType.MESSAGE_SENT, send_at, base)
            if outcome.delivered[k]:
                self._emit(EventType.MESSAGE_DELIVERED, send_at + _MINUTE, base)
            if outcome.opened[k] and CHANNEL_RESPONSE[channel].tracks_opens:
                self._emit(EventType.MESSAGE_OPENED, send_at + 10 * _MINUTE, base)
            if outcome.unsubscribed[k]:
                self._emit(EventType.UNSUBSCRIBE, send_at + 11 * _MINUTE, base)
            if outcome.clicked[k]:
                self._emit(EventType.MESSAGE_CLICKED, send_at + 12 * _MINUTE, base)
            if outcome.converted[k]:
                product = message.product or self._any_product(rng, message.category)
                web = {**base, "channel": Channel.WEB.value}
                bought = send_at + dt.timedelta(hours=config.purchase_delay_hours)
                price = float(self._prices[product])
                self._emit(
                    EventType.PURCHASE, bought, web, product_id=product, quantity=1, revenue=price
                )
                self._emit(
                    EventType.ORDER_DELIVERED,
                    bought + dt.timedelta(days=config.delivery_days),
                    {**web, "offer_id": None},
                    product_id=product,
                )
            done = send_at + dt.timedelta(hours=config.outcome_hours)
            self._in_flight[cid] = max(done, self._in_flight.get(cid, done))
            bisect.insort(self._recent.setdefault(cid, []), send_at)
            self.sends.setdefault(cid, []).append((now, send_at))
            self.contacts += 1

    def _emit(
        self, kind: EventType, at: dt.datetime, fields: Mapping[str, Any], **extra: Any
    ) -> None:
        self._sequence += 1
        event = {
            **fields,
            "event_id": f"{fields['decision_id']}:{kind.value}",
            "timestamp": at,
            "event_type": kind.value,
            **extra,
        }
        heapq.heappush(self._outbox, (at, self._sequence, event))

    def _any_product(self, rng: np.random.Generator, category: str | None) -> str:
        products = self.world.sim.products
        pool = products[products["category"] == category] if category else products
        pool = pool if len(pool) else products
        return str(pool["product_id"].iloc[int(rng.integers(len(pool)))])

    def _recent_contacts(self, customer_id: str, at: dt.datetime) -> int:
        sends = self._recent.get(customer_id, [])
        return len(sends) - bisect.bisect_right(sends, at - _WEEK)

    def recent_contacts(self, customer_id: str, decided_at: dt.datetime, at: dt.datetime) -> int:
        """Messages of the customer decided before ``decided_at`` and sent after a week
        before ``at`` (history included): what the response model read for a send at
        ``at`` decided at ``decided_at``."""
        since = at - _WEEK
        count = sum(1 for t in self._history.get(customer_id, ()) if t > since)
        count += sum(1 for d, t in self.sends.get(customer_id, ()) if d < decided_at and t > since)
        return count


def _ok(response: Any) -> dict[str, Any]:
    if response.status_code != 200:
        raise RuntimeError(f"the API answered {response.status_code}: {response.text[:500]}")
    result: dict[str, Any] = response.json()
    return result


def _events_frame(background: pd.DataFrame, released: list[dict[str, Any]]) -> pd.DataFrame:
    loop = pd.DataFrame(released, columns=list(_COLUMNS))
    if not loop.empty:
        loop["timestamp"] = pd.to_datetime(loop["timestamp"], utc=True).astype(
            "datetime64[ns, UTC]"
        )
        loop["quantity"] = loop["quantity"].astype("Int64")
        loop["revenue"] = loop["revenue"].astype(float)
    parts = [p for p in (background[list(_COLUMNS)], loop) if not p.empty]
    if not parts:
        return loop
    frame = parts[0] if len(parts) == 1 else pd.concat(parts, ignore_index=True)
    return frame.sort_values("timestamp", kind="stable").reset_index(drop=True)


def _records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """Contract rows as JSON objects (times in ISO 8601, missing values left out)."""
    out = []
    for row in frame.to_dict("records"):
        record: dict[str, Any] = {}
        for key, value in row.items():
            if value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value)):
                continue
            if isinstance(value, pd.Timestamp | dt.datetime):
                value = value.isoformat()
            elif key == "properties" and isinstance(value, str):
                value = json.loads(value)  # the contract's columns hold them as JSON text
            elif isinstance(value, np.generic):
                value = value.item()
            record[str(key)] = value
        out.append(record)
    return out


#: The response probability that is the expectation of each directly attributed reward.
TRUTH_OF_REWARD = {"conversions": "convert", "clicks": "click"}


def response_truth(
    world: ClosedLoopWorld, evaluation: LogEvaluation, traffic: ApiTraffic
) -> dict[str, float]:
    """Each candidate's true expected reward per decision at the logged contexts, for the
    directly attributed ``conversions`` (purchases through the message) or ``clicks``:
    ``mean_i sum_a pi(a|x_i) P(outcome | x_i, a)`` under the simulator's response model
    (0 for doing nothing)."""
    outcome = TRUTH_OF_REWARD.get(evaluation.reward_name)
    if outcome is None:
        raise ValueError(
            f"no exact truth for the reward {evaluation.reward_name!r} "
            f"(known: {', '.join(TRUTH_OF_REWARD)})"
        )
    needed: dict[tuple[int, ActionChannel], None] = {}
    for i, r in enumerate(evaluation.rounds):
        for a in r.actions:
            needed[(i, a)] = None
    for per_round in evaluation.distributions.values():
        for i, dist in enumerate(per_round):
            for a in dist:
                needed[(i, a)] = None
    pairs = []
    for i, action in needed:
        if action.channel is None:
            continue
        logged = evaluation.replay.contexts[i]
        record = evaluation.rounds[i].record
        send_at = logged.send_at(action)
        if send_at is None and record.actions and record.actions[0].action_id == action.action_id:
            send_at = record.actions[0].send_at
        if send_at is None:
            raise ValueError(f"decision {record.decision_id}: no send time for {action}")
        pairs.append((i, action, logged, send_at.astimezone(dt.UTC)))
    values: dict[tuple[int, ActionChannel], float] = {}
    if pairs:
        messages = [
            world.mapping.message(world.catalog[a.action_id], logged.context.profile)
            for _, a, logged, _ in pairs
        ]
        probabilities = world.response.probabilities(
            np.array([logged.customer_id for _, _, logged, _ in pairs], dtype=object),
            np.array([a.channel for _, a, _, _ in pairs], dtype=object),
            np.array([round(t.timestamp() * 1e6) * 1000 for *_, t in pairs], dtype=np.int64),
            kind=np.array([m.kind for m in messages], dtype=object),
            category=np.array([m.category for m in messages], dtype=object),
            product=np.array([m.product for m in messages], dtype=object),
            offer=np.array([m.offer for m in messages], dtype=object),
            recent_contacts=np.array(
                [
                    traffic.recent_contacts(logged.customer_id, logged.decided_at, t)
                    for _, _, logged, t in pairs
                ],
                dtype=float,
            ),
        )
        column = getattr(probabilities, outcome)
        for (i, a, _, _), p in zip(pairs, column, strict=True):
            values[(i, a)] = float(p)
    return {
        name: float(
            np.mean(
                [
                    sum(p * values.get((i, a), 0.0) for a, p in dist.items())
                    for i, dist in enumerate(per_round)
                ]
            )
        )
        for name, per_round in evaluation.distributions.items()
    }


@dataclass(frozen=True)
class ServedWorld:
    """A running API serving a simulated world: where to call it and where it logs."""

    base_url: str
    decision_log: Path
    archive: Path
    base_data: Path
    catalog_path: Path
    contact_policy_path: Path


@contextlib.contextmanager
def serve_world(
    world: ClosedLoopWorld,
    root: Path,
    redis_url: str,
    *,
    explore_share: float | None = 0.3,
    response_stats: bool = True,
    port: int | None = None,
    python: str = sys.executable,
    startup_seconds: float = 180.0,
) -> Iterator[ServedWorld]:
    """Serve ``world`` with the real API (a ``uvicorn`` process on Redis at ``redis_url``).

    The profiles at the cut are materialised into Redis (a fresh key prefix); the API
    decides with the example catalog, the loop's contact policy and the rule-based
    scorer (no model registered), and explores through an experiment whose champion
    arm (nine customers in ten; the others get the random arm) has ``explore_share``
    (so every eligible option has a positive logging probability); with
    ``explore_share=None`` the engine alone decides, with its response statistics
    unless ``response_stats`` is false. The history before
    the cut is written as the contract data set the profiles came from (``base_data``),
    for the off-policy evaluation. Needs ``httpx`` (the ``dev`` extra), to wait for the
    API to answer.
    """
    import httpx

    root.mkdir(parents=True, exist_ok=True)
    prefix = f"ope{secrets.token_hex(4)}"
    client = connect_redis(redis_url)
    OnlineProfiles(RedisOnlineStore(client, prefix=prefix), world.sim.products).materialise(
        world.build
    )
    sim = world.sim
    stamps = pd.to_datetime(sim.events["timestamp"], utc=True)
    base = RetailDataset(
        sim.customers, sim.products, sim.offers, sim.events[stamps < pd.Timestamp(world.cut)]
    )
    write_dataset(base, root / "base")
    sim.products.to_parquet(root / "products.parquet")
    catalog_path = EXAMPLES / "retailer_catalog.yaml"
    policy_path = root / "contact_policy.yaml"
    policy = yaml.safe_load((EXAMPLES / "contact_policy.yaml").read_text())
    policy.setdefault("channels", {}).setdefault("wallet", {})["cap_1d"] = 0  # no wallet
    policy_path.write_text(yaml.safe_dump(policy))
    experiment = root / "experiment.yaml"
    if explore_share is not None:
        experiment.write_text(
            yaml.safe_dump(
                {
                    "version": 1,
                    "name": "ope_logging",
                    "salt": "ope",
                    "start": (world.cut - dt.timedelta(days=1)).isoformat(),
                    "end": (world.end + dt.timedelta(days=30)).isoformat(),
                    "primary_metric": "revenue_per_customer",
                    # an experiment needs two arms: a tenth decided at random, also logged
                    # with its exact probabilities
                    "arms": [
                        {
                            "name": "engine",
                            "kind": "champion",
                            "allocation": 0.9,
                            "explore_share": explore_share,
                        },
                        {"name": "random", "kind": "random", "allocation": 0.1},
                    ],
                }
            )
        )
    port = port or _free_port()
    env = {
        **os.environ,
        "NBA_REDIS_URL": redis_url,
        "NBA_REDIS_PREFIX": prefix,
        "NBA_DATA_DIR": str(root),
        "NBA_PRODUCTS_PATH": str(root / "products.parquet"),
        "NBA_CATALOG_PATH": str(catalog_path),
        "NBA_CONTACT_POLICY_PATH": str(policy_path),
        "NBA_RESPONSE_STATS": "true" if response_stats else "false",
        "NBA_DECISION_LOG_DIR": str(root / "decision-log"),
        "NBA_DECISION_LOG_FSYNC": "never",
        "NBA_ARCHIVE_DIR": str(root / "archive"),
        "NBA_ARCHIVE_FSYNC": "never",
        "NBA_ALLOW_ANONYMOUS": "true",
        "NBA_MODEL_POLL_SECONDS": "0",
        "NBA_MLFLOW_TRACKING_URI": f"sqlite:///{root / 'mlflow.db'}",
    }
    env.pop("NBA_EXPERIMENT_PATH", None)
    if explore_share is not None:
        env["NBA_EXPERIMENT_PATH"] = str(experiment)
    log = (root / "uvicorn.log").open("wb")
    process = subprocess.Popen(
        [
            python,
            "-m",
            "uvicorn",
            "serving.app:create_app",
            "--factory",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--log-level",
            "warning",
        ],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base_url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + startup_seconds
        while True:
            if process.poll() is not None:
                raise RuntimeError(
                    f"the API exited with {process.returncode}: "
                    f"{(root / 'uvicorn.log').read_text()[-2000:]}"
                )
            try:
                if httpx.get(f"{base_url}/healthz", timeout=1.0).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"the API did not start within {startup_seconds:g} s")
            time.sleep(0.2)
        yield ServedWorld(
            base_url,
            root / "decision-log",
            root / "archive",
            root / "base",
            catalog_path,
            policy_path,
        )
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()
        keys = list(client.scan_iter(f"{prefix}*", count=1000))
        for start in range(0, len(keys), 1000):
            client.delete(*keys[start : start + 1000])


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
