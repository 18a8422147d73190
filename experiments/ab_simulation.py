"""An A/B test on the simulated retailer, end to end, with the truth to check it against.

:func:`simulate_ab` runs one closed loop (:mod:`simulator.closed_loop`) in
which every customer is routed to their arm's policy by the experiment's
decision pipeline (:func:`~nba.pipeline.build_pipeline`, as in the API): by default the engine
(:class:`~nba.engine.NextBestActionPolicy`, the champion), the rule-based
journeys (:class:`~nba.baselines.RuleBasedPolicy`) and a global control group
that receives nothing. Every decision is written to a decision log with its
arm; the outcome events (the customers' own behaviour, plus the sends,
opens, clicks, unsubscribes and purchases the messages caused) are the
experiment's outcomes, exactly as a production system would see them.

The simulator also knows the **true** effect: each message's expected
incremental revenue and margin (with the message minus without any contact,
:class:`~simulator.closed_loop.truth.TrueValue`). The true uplift of an arm
over control is the sum over the arm's messages divided by its customers
(control sends nothing), which :func:`true_uplift` returns for the analysis
to be checked against.

The arms share one run, hence one set of offer budgets and one table of
per-action successes for the engine's exploration (as they would in
production); the arms' customers are disjoint, so their profiles are not.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from experiments.decision_log import DecisionLogSink, JsonlDecisionLog
from features.contract import EVENTS
from nba.channels import Channel
from nba.decision import LoggedDecision, RoutedDecision
from nba.events import EventType
from nba.experiment import ArmKind, ExperimentConfig, parse_experiment
from nba.pipeline import build_pipeline
from simulator.closed_loop.runner import OUTCOME_DELAYS, PolicyRun, run_policy
from simulator.closed_loop.world import ClosedLoopConfig, ClosedLoopWorld, build_world
from simulator.config import CHANNEL_RESPONSE

#: Arm kinds a simulated experiment can run.
SIMULATED_KINDS = (ArmKind.CHAMPION, ArmKind.RULE_BASED, ArmKind.RANDOM, ArmKind.CONTROL)
#: Decisions buffered before one durable append to the log.
LOG_BATCH = 2_000
_EVENT_COLUMNS = list(EVENTS.names)


def default_experiment(start: dt.datetime, days: int) -> ExperimentConfig:
    """Engine 40 %, rule-based journeys 30 %, control 30 %, over ``days`` from ``start``."""
    return parse_experiment(
        {
            "name": "simulated_ab",
            "description": "The engine against the rule-based journeys and a control group "
            "that receives nothing, on the simulated retailer.",
            "salt": "simulated-ab",
            "start": start.isoformat(),
            "end": (start + dt.timedelta(days=days)).isoformat(),
            "primary_metric": "revenue_per_customer",
            "attribution_window_days": 7,
            "arms": [
                {"name": "engine", "kind": "champion", "allocation": 0.4},
                {"name": "journeys", "kind": "rule_based", "allocation": 0.3},
                {"name": "control", "kind": "control", "allocation": 0.3},
            ],
            "guardrails": [
                {"metric": "unsubscribe_rate", "max_increase": 0.01},
                {"metric": "complaint_rate", "max_increase": 0.002},
            ],
        },
        source="default experiment",
    )


class _DecisionLogger:
    """Logs every decision of the closed loop with its arm (buffered, one durable
    append per :data:`LOG_BATCH` decisions)."""

    def __init__(self, sink: DecisionLogSink) -> None:
        self.sink = sink
        self._buffer: list[LoggedDecision] = []
        self.logged = 0

    def __call__(self, routed: RoutedDecision) -> None:
        self._buffer.append(routed.log())
        if len(self._buffer) >= LOG_BATCH:
            self.flush()

    def flush(self) -> None:
        if self._buffer:
            self.sink.append(self._buffer)
            self.logged += len(self._buffer)
            self._buffer = []


@dataclass(frozen=True, eq=False)
class SimulatedExperiment:
    """One simulated A/B test: its configuration, closed-loop run, outcome events,
    customer segments at the start, and the truth."""

    config: ExperimentConfig
    world: ClosedLoopWorld
    run: PolicyRun
    log_dir: Path
    events: pd.DataFrame
    segments: dict[str, str]
    truth: dict[str, dict[str, float]]


def simulate_ab(
    world: ClosedLoopWorld,
    log_dir: str | Path,
    *,
    config: ExperimentConfig | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> SimulatedExperiment:
    """Run the experiment over the world's days, logging decisions to ``log_dir``.

    ``config`` gives arms, allocation, salt and guardrails; its start and end are
    set to the world's closed-loop window. Arm kinds ``champion``, ``rule_based``,
    ``random`` and ``control`` can be simulated.
    """
    days = world.config.days
    config = config or default_experiment(world.cut, days)
    config = dataclasses.replace(config, start=world.cut, end=world.end)
    for arm in config.arms:
        if arm.kind not in SIMULATED_KINDS:
            raise ValueError(
                f"arm {arm.name!r}: kind {arm.kind.value!r} cannot be simulated "
                f"(use one of: champion, rule_based, random, control)"
            )
    pipeline = build_pipeline(world.catalog, world.contact_policy, experiment=config)
    with JsonlDecisionLog(log_dir) as sink:
        logger = _DecisionLogger(sink)
        run = run_policy(world, pipeline, name=pipeline.name, progress=progress, on_decision=logger)
        logger.flush()
    events = outcome_events(world, run)
    segments = {p.customer_id: p.lifecycle_state.value for p in world.build.profiles}
    return SimulatedExperiment(
        config=config,
        world=world,
        run=run,
        log_dir=Path(log_dir),
        events=events,
        segments=segments,
        truth=true_uplift(config, run, world.customer_ids),
    )


def outcome_events(world: ClosedLoopWorld, run: PolicyRun) -> pd.DataFrame:
    """Contract events of the experiment: the background (the customers' own
    behaviour) and the events each contact caused, timed as the closed loop
    releases them (:data:`~simulator.closed_loop.runner.OUTCOME_DELAYS`)."""
    purchase_delay = dt.timedelta(hours=world.config.purchase_delay_hours)
    rows = [
        event
        for contact in run.contacts.to_dict("records")
        for event in _contact_events(contact, purchase_delay)
    ]
    loop = pd.DataFrame(rows, columns=_EVENT_COLUMNS)
    loop["timestamp"] = pd.to_datetime(loop["timestamp"], utc=True)
    background = world.background[_EVENT_COLUMNS].copy()
    background["timestamp"] = pd.to_datetime(background["timestamp"], utc=True)
    frame = pd.concat([background, loop], ignore_index=True)
    frame["revenue"] = frame["revenue"].astype(float)
    return frame.sort_values("timestamp", kind="stable").reset_index(drop=True)


def _contact_events(
    contact: Mapping[Any, Any], purchase_delay: dt.timedelta
) -> list[dict[str, Any]]:
    """The events one contact caused (same ids and delays as the closed loop's)."""
    sent_at = pd.Timestamp(contact["sent_at"]).to_pydatetime()
    base = {
        "customer_id": contact["customer_id"],
        "channel": contact["channel"],
        "decision_id": contact["decision_id"],
        "offer_id": contact["offer_id"],
    }
    happened: list[EventType] = [EventType.MESSAGE_SENT]
    if contact["delivered"]:
        happened.append(EventType.MESSAGE_DELIVERED)
    if contact["opened"] and CHANNEL_RESPONSE[Channel(contact["channel"])].tracks_opens:
        happened.append(EventType.MESSAGE_OPENED)
    if contact["clicked"]:
        happened.append(EventType.MESSAGE_CLICKED)
    if contact["unsubscribed"]:
        happened.append(EventType.UNSUBSCRIBE)
    events = [
        base
        | {
            "event_id": f"{contact['decision_id']}:{kind.value}",
            "timestamp": sent_at + OUTCOME_DELAYS[kind],
            "event_type": kind.value,
        }
        for kind in happened
    ]
    if contact["converted"]:
        events.append(
            base
            | {
                "event_id": f"{contact['decision_id']}:{EventType.PURCHASE.value}",
                "timestamp": sent_at + purchase_delay,
                "event_type": EventType.PURCHASE.value,
                "channel": Channel.WEB.value,
                "product_id": contact["product"],
                "quantity": 1,
                "revenue": float(contact["order_value"]),
            }
        )
    return events


def true_uplift(
    config: ExperimentConfig, run: PolicyRun, customers: Sequence[str]
) -> dict[str, dict[str, float]]:
    """Per arm: customers and the true expected incremental revenue and margin per
    customer of its messages (control sends nothing: 0), i.e. the true uplift
    over control."""
    arm_of = {cid: config.assign(cid).name for cid in customers}
    contacts = run.contacts.assign(arm=run.contacts["customer_id"].map(arm_of))
    out: dict[str, dict[str, float]] = {}
    for arm in config.arms:
        n = sum(1 for a in arm_of.values() if a == arm.name)
        mine = contacts[contacts["arm"] == arm.name]
        out[arm.name] = {
            "customers": float(n),
            "contacts": float(len(mine)),
            "revenue_per_customer": float(mine["revenue"].sum()) / n if n else 0.0,
            "margin_per_customer": float(mine["margin"].sum()) / n if n else 0.0,
            "conversions_per_customer": float(mine["purchase_lift"].sum()) / n if n else 0.0,
        }
    return out


def write_outputs(experiment: SimulatedExperiment, out: str | Path) -> dict[str, Path]:
    """Write what an analysis needs next to the decision log: ``experiment.json``
    (the configuration), ``events.parquet`` (outcome events), ``segments.csv``
    (lifecycle state at the start), ``consents.csv`` (who is opted in where, for
    revenue per fan) and ``truth.json`` (the simulator's true uplift; a real
    experiment has none)."""
    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    paths = {
        "experiment": folder / "experiment.json",
        "events": folder / "events.parquet",
        "segments": folder / "segments.csv",
        "truth": folder / "truth.json",
    }
    paths["experiment"].write_text(json.dumps(experiment.config.to_dict(), indent=2))
    experiment.events.to_parquet(paths["events"], index=False)
    pd.DataFrame(
        {"customer_id": list(experiment.segments), "segment": list(experiment.segments.values())}
    ).to_csv(paths["segments"], index=False)
    paths["truth"].write_text(json.dumps(experiment.truth, indent=2))
    customers = experiment.world.sim.customers
    consent = [c for c in customers.columns if c.startswith("consent_") and not c.endswith("_at")]
    paths["consents"] = folder / "consents.csv"
    customers[["customer_id", *consent]].to_csv(paths["consents"], index=False)
    return paths


def closed_loop_config(
    customers: int,
    days: int = 30,
    *,
    history_days: int = 45,
    seed: int = 0,
    trigger_every_hours: int = 6,
) -> ClosedLoopConfig:
    """The closed loop of a simulated experiment: decisions every ``trigger_every_hours``
    for active customers, and daily at the first tick at or after 06:00 UTC for all."""
    return ClosedLoopConfig(
        n_customers=customers,
        history_days=history_days,
        days=days,
        seed=seed,
        n_products=min(1000, max(200, customers // 4)),
        trigger_every_hours=trigger_every_hours,
        decision_hour_utc=-(-6 // trigger_every_hours) * trigger_every_hours % 24,
    )


def run_simulated_experiment(
    out: str | Path,
    *,
    customers: int = 2000,
    days: int = 30,
    seed: int = 0,
    history_days: int = 45,
    trigger_every_hours: int = 6,
    config: ExperimentConfig | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> SimulatedExperiment:
    """Build a world, run the experiment, write the log and outputs under ``out``."""
    world = build_world(
        closed_loop_config(
            customers,
            days,
            history_days=history_days,
            seed=seed,
            trigger_every_hours=trigger_every_hours,
        )
    )
    experiment = simulate_ab(world, Path(out) / "decisions", config=config, progress=progress)
    write_outputs(experiment, out)
    return experiment
