"""``nba train``, ``nba evaluate``, ``nba recommend`` and ``nba models ...``: the model commands.

Thin wrappers over :mod:`training.api` and :class:`training.registry.ModelRegistry`;
``cli/main.py`` registers them. Each takes explicit arguments and prints
what it did; long steps show progress.
"""

from __future__ import annotations

import contextlib
import json
import os
import resource
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from cli.support import console as _console
from cli.support import fail as _fail
from cli.support import load_data as _load

if TYPE_CHECKING:
    from features.dataset import RetailDataset
    from training.api import RecommenderRun
    from training.examples import ContactExamples
    from training.families import RecommenderTraining
    from training.pipeline import BackgroundTraining, ModelRun
    from training.registry import ModelRegistry
    from training.truth import SimulatorTruth

models_app = typer.Typer(help="Registered models: list, promote, roll back.", no_args_is_help=True)

TARGETS = ("all", "recommender", "offers", "channels", "send-time")

DataOption = Annotated[Path, typer.Option("--data", help="Folder with the four contract tables.")]
DataDir = Annotated[
    Path,
    typer.Option(
        envvar="NBA_DATA_DIR", help="Where the local MLflow store lives (data/mlflow.db)."
    ),
]


def _registry(data_dir: Path):
    from training.registry import ModelRegistry

    return ModelRegistry.local(data_dir)


MaxExamples = Annotated[
    int,
    typer.Option(help="Sends given point-in-time profiles per model (a seeded sample beyond)."),
]
#: Customers the recommender families are chosen on by default (the training budget).
DEFAULT_MAX_CUSTOMERS = 20_000
MaxCustomers = Annotated[
    int,
    typer.Option(
        help="Customers the recommender families are chosen and measured on (a seeded sample "
        "beyond; 0: all); the chosen family is then fitted on every customer.",
        min=0,
    ),
]


def train(
    target: Annotated[str, typer.Argument(help=f"What to train: {', '.join(TARGETS)}.")] = "all",
    data: DataOption = Path("data/retailer"),
    data_dir: DataDir = Path("data"),
    tune: Annotated[bool, typer.Option(help="Tune on a validation split first (slower).")] = False,
    promote: Annotated[
        bool,
        typer.Option(
            help="Make the new versions the champions (the recommender and the offer uplift "
            "model only when they beat the champion and the baselines on the same held-out "
            "data)."
        ),
    ] = False,
    force: Annotated[
        bool,
        typer.Option(
            help="With --promote: promote the recommender or offer model even when it loses."
        ),
    ] = False,
    max_examples: MaxExamples = 60_000,
    max_customers: MaxCustomers = DEFAULT_MAX_CUSTOMERS,
    parallel: Annotated[
        bool,
        typer.Option(
            help="With several targets: train the recommender in a second process while the "
            "other models train (each model's training is single-threaded)."
        ),
    ] = True,
) -> None:
    """Train models on a data set, evaluate them against baselines, register them in MLflow.

    ``all`` trains the recommender, the offer uplift, the channel propensity and the
    send-time models. The recommender is chosen among every family (popularity, EASE,
    order-aware EASE, ALS, BPR, plain and hybrid LightFM, and a blend of them weighted on
    validation; on at most ``--max-customers`` customers), the offer uplift model among
    every learner (logistic and LightGBM T-learners, X-, DR-, proportional and
    relative-lift learners) and the fixed rule, on a validation split's R-loss gain, and
    registered; with ``--promote`` each becomes the
    champion only if it beats the current champion and the baselines on the held-out
    test, whose table is printed. On a simulated data set (with ``truth/``) the decision
    models are also measured against the ground truth.
    """
    from features.validation import DataContractError
    from training.truth import SimulatorTruth

    targets = _targets(target)
    console = _console()
    clock = time.perf_counter()
    dataset = _load(data)
    registry = _registry(data_dir)
    truth = SimulatorTruth.from_dir(data)
    console.print(f"read {data} in {time.perf_counter() - clock:.1f} s")
    shared = _Shared(dataset, targets, max_examples)
    if parallel and "recommender" in targets and len(targets) > 1 and (os.cpu_count() or 1) > 1:
        # started first, collected (and logged, in this process) last
        with console.status("preparing") as status:
            shared.start_recommender(
                data.name, tune, max_customers or None, registry, promote, status.update
            )
        targets = [t for t in targets if t != "recommender"] + ["recommender"]
    failed = []
    for name in targets:
        with console.status(f"training {name}") as status:
            try:
                run = _train_one(
                    name,
                    dataset,
                    registry,
                    data.name,
                    tune,
                    truth,
                    max_examples,
                    status.update,
                    promote=promote,
                    force=force,
                    max_customers=max_customers or None,
                    shared=shared,
                )
            except DataContractError as exc:
                raise _fail(f"cannot train {name}: {exc}") from None
            except ValueError as exc:
                # one model's missing data does not stop the others
                _fail(f"cannot train {name}: {exc}")
                failed.append(name)
                continue
            except ChildProcessError as exc:
                _fail(
                    f"cannot train {name}: {exc}; try --no-parallel (one process at a time) "
                    "or a smaller --max-examples"
                )
                failed.append(name)
                continue
        if run.markdown():
            console.print(run.markdown())
        assert run.version is not None
        console.print(
            f"registered {run.version.name} version {run.version.version} "
            f"(data fingerprint {run.fingerprint[:12]}) in {registry.tracking_uri}"
        )
        console.print(f"{name}: {run.timing()}")
        if run.promoted:
            forced = "" if run.allowed else " (forced)"
            console.print(
                f"{run.version.name} version {run.version.version} is now the champion{forced}"
            )
        elif promote:
            console.print(
                f"{run.version.name} version {run.version.version} is NOT promoted: "
                f"{run.reason} (--force overrides)"
            )
    if failed:
        raise _fail(f"not trained: {', '.join(failed)}", 1)


def _targets(target: str) -> list[str]:
    if target not in TARGETS:
        raise _fail(f"unknown target {target!r} (expected one of: {', '.join(TARGETS)})")
    return list(TARGETS[1:]) if target == "all" else [target]


def _train_one(
    name: str,
    dataset: RetailDataset,
    registry: ModelRegistry | None,
    dataset_name: str,
    tune: bool,
    truth: SimulatorTruth | None,
    max_examples: int,
    report: Callable[[str], None],
    promote: bool = False,
    force: bool = False,
    max_customers: int | None = None,
    shared: _Shared | None = None,
) -> _GatedResult:
    """Train one target (the champion when ``promote``, if its gate allows or ``force``);
    the recommender families are chosen on at most ``max_customers`` customers. ``shared``
    gives the fingerprints and examples several targets read (made once)."""
    from training import api
    from training.data import ALL_TABLES
    from training.evaluation import EvaluationProtocol
    from training.families import RecommenderTraining

    shared = shared or _Shared(dataset, [name], max_examples)
    if name == "recommender" and shared.background is not None:
        family, background = shared.background
        trained = family.log(
            background.result(),
            dataset,
            registry=registry,
            dataset_name=dataset_name,
            promote=promote,
            force=force,
            report=report,
        )
        run = api.RecommenderRun.of(trained)
        return _GatedResult(run, run.selection, shared.take_seconds())
    if name == "recommender":
        run = api.train_recommender(
            dataset,
            registry=registry,
            dataset_name=dataset_name,
            tune=tune,
            protocol=EvaluationProtocol(max_customers=max_customers),
            promote=promote,
            force=force,
            report=report,
            fingerprint=shared.fingerprint(RecommenderTraining.tables),
        )
        return _GatedResult(run, run.selection, shared.take_seconds())
    fingerprint = shared.fingerprint(ALL_TABLES)
    on_sends: dict[str, Callable[..., ModelRun]] = {
        "offers": api.train_offers,
        "channels": api.train_channels,
    }
    if name in on_sends:  # models of past sends: point-in-time examples, sampled
        sends_run = on_sends[name](
            dataset,
            registry=registry,
            dataset_name=dataset_name,
            truth=truth,
            max_examples=max_examples,
            examples=shared.examples(name, report),
            promote=promote,
            force=force,
            report=report,
            fingerprint=fingerprint,
        )
        return _GatedResult(sends_run, sends_run.evaluation, shared.take_seconds())
    send_time = api.train_send_time(
        dataset,
        registry=registry,
        dataset_name=dataset_name,
        truth=truth,
        promote=promote,
        report=report,
        fingerprint=fingerprint,
    )
    return _GatedResult(send_time, None, shared.take_seconds())


class _Shared:
    """What the targets of one ``nba train`` share, each made once when first needed: the
    data fingerprint per set of tables, and the examples of the models of past sends (one
    point-in-time cut for channels and offers); with the seconds spent on them not yet
    counted in a model's timing (:meth:`take_seconds`)."""

    def __init__(self, dataset: RetailDataset, targets: list[str], max_examples: int) -> None:
        self.dataset = dataset
        self.on_sends = [t for t in targets if t in ("channels", "offers")]
        self.max_examples = max_examples
        self._fingerprints: dict[tuple[str, ...], str] = {}
        self._examples: dict[str, ContactExamples] | None = None
        self._seconds: dict[str, float] = {}
        self._cpu: dict[str, float] = {}
        #: the recommender's training running in another process, when started
        self.background: tuple[RecommenderTraining, BackgroundTraining] | None = None

    def start_recommender(
        self,
        dataset_name: str,
        tune: bool,
        max_customers: int | None,
        registry: ModelRegistry,
        promote: bool,
        report: Callable[[str], None],
    ) -> None:
        """Start training the recommender in a forked process (logged here when collected:
        one process writes the MLflow store). The champion it must beat is read from the
        registry before the fork, as :func:`training.api.train_recommender` does."""
        from training.api import recommender_training
        from training.evaluation import EvaluationProtocol
        from training.pipeline import BackgroundTraining

        protocol = EvaluationProtocol(max_customers=max_customers)
        family = recommender_training(registry, promote=promote, tune=tune, protocol=protocol)
        # what would otherwise run beside it first: the fingerprints (each makes a text copy
        # of the tables) and the examples (cut in one process per core), so that no more
        # than two processes hold large data at once
        from training.data import ALL_TABLES

        fingerprint = self.fingerprint(family.tables)
        self.fingerprint(ALL_TABLES)
        if self.on_sends:
            self.examples(self.on_sends[0], report)
        background = BackgroundTraining(
            family, self.dataset, dataset_name=dataset_name, fingerprint=fingerprint
        )
        self.background = (family, background)

    def fingerprint(self, tables: tuple[str, ...]) -> str:
        from training.data import dataset_fingerprint

        if tables not in self._fingerprints:
            with self._timed("fingerprint"):
                self._fingerprints[tables] = dataset_fingerprint(self.dataset, tables)
        return self._fingerprints[tables]

    def examples(self, name: str, report: Callable[[str], None]) -> ContactExamples | None:
        """The examples of ``name`` (None when it has no data: its training says why)."""
        from training.api import sends_examples

        if self._examples is None:
            with self._timed("examples"):
                self._examples = sends_examples(
                    self.dataset, self.on_sends, self.max_examples, report
                )
        return self._examples.get(name)

    @contextlib.contextmanager
    def _timed(self, step: str) -> Iterator[None]:
        """Wall and CPU seconds of ``step``: this process's CPU and that of the processes
        it forked and waited for meanwhile (the examples' cutting processes)."""
        wall, cpu = time.perf_counter(), _cpu_seconds()
        yield
        self._seconds[step] = time.perf_counter() - wall
        self._cpu[step] = _cpu_seconds() - cpu

    def take_seconds(self) -> tuple[dict[str, float], dict[str, float]]:
        """The wall and CPU seconds spent since the last call, by step (then forgotten)."""
        seconds, cpu = self._seconds, self._cpu
        self._seconds, self._cpu = {}, {}
        return seconds, cpu


def _cpu_seconds() -> float:
    """CPU seconds of this process and of its children waited for."""
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.process_time() + children.ru_utime + children.ru_stime


class _GatedResult:
    """A training run with its promotion verdict (allowed, no reason, for a model without
    a gate) and the seconds of its steps."""

    def __init__(
        self,
        run: RecommenderRun | ModelRun,
        evaluation: object,
        shared: tuple[dict[str, float], dict[str, float]] = ({}, {}),
    ) -> None:
        self.version = run.version
        self.fingerprint = run.fingerprint
        self.promoted = run.promoted
        promotion = getattr(evaluation, "promotion", None)
        self.allowed = promotion.allowed if promotion is not None else True
        self.reason = promotion.reason if promotion is not None else ""
        self._run = run
        #: wall and CPU seconds by step: the shared ones (examples, fingerprint), then the
        #: run's own
        self.stages, self.cpu = dict(shared[0]), dict(shared[1])
        for mine, theirs in ((self.stages, run.stages), (self.cpu, run.stage_cpu)):
            for step, seconds in theirs.items():
                mine[step] = mine.get(step, 0.0) + seconds

    def markdown(self) -> str:
        return self._run.markdown()

    def timing(self) -> str:
        """``trained in T s, C CPU s (step s/CPU s, ...)``: where the model's time went."""
        steps = ", ".join(
            f"{k} {v:.1f}/{self.cpu.get(k, 0.0):.1f} s" for k, v in self.stages.items() if v >= 0.05
        )
        total, cpu = sum(self.stages.values()), sum(self.cpu.values())
        return f"trained in {total:.1f} s, {cpu:.1f} CPU s (wall/CPU: {steps})"


def evaluate(
    target: Annotated[
        str, typer.Argument(help=f"What to evaluate: {', '.join(TARGETS)}.")
    ] = "recommender",
    data: DataOption = Path("data/retailer"),
    tune: Annotated[bool, typer.Option(help="Tune on a validation split first.")] = True,
    test_fraction: Annotated[
        float,
        typer.Option(help="Share held out: of each customer's positives, or of product events."),
    ] = 0.2,
    k: Annotated[int, typer.Option(help="List length.")] = 10,
    split: Annotated[
        str,
        typer.Option(
            help="Recommender protocol: per-user (each customer's last positives held out) "
            "or global (one time cut)."
        ),
    ] = "per-user",
    seeds: Annotated[
        int, typer.Option(help="Fits per stochastic recommender (median and range shown).")
    ] = 3,
    max_examples: MaxExamples = 60_000,
) -> None:
    """Compare models with their baselines and print the tables (nothing is registered):
    every recommender family (popularity, EASE, order-aware EASE, ALS, BPR, plain and hybrid
    LightFM), warm
    and cold customers, accuracy beside coverage and personalisation; offer uplift against
    random and rule-based targeting; channel propensity against each channel's rate; send
    time against the best global hour (needs simulator truth)."""
    from training.evaluation import EvaluationProtocol
    from training.selection import select_recommender
    from training.truth import SimulatorTruth

    targets = _targets(target)
    dataset = _load(data)
    console = _console()
    truth = SimulatorTruth.from_dir(data)
    for name in targets:
        with console.status(f"evaluating {name}") as status:
            try:
                if name == "recommender":
                    protocol = EvaluationProtocol(
                        split=split,  # type: ignore[arg-type]
                        holdout_fraction=test_fraction,
                        k=k,
                        seeds=seeds,
                    )
                    selection = select_recommender(
                        dataset,
                        data.name,
                        protocol=protocol,
                        tune=tune,
                        test_all=True,
                        report=lambda msg: status.update(msg),
                    )
                    text = selection.markdown()
                else:
                    run = _train_one(
                        name, dataset, None, data.name, False, truth, max_examples, status.update
                    )
                    text = run.markdown() or f"{name}: no ground truth to evaluate on"
            except ValueError as exc:
                raise _fail(f"cannot evaluate {name}: {exc}", 1) from None
        console.print(text)


def recommend(
    customers: Annotated[
        str,
        typer.Option(
            help="Customer ids, comma separated, or a file (.csv with customer_id, or one a line)."
        ),
    ],
    k: Annotated[int, typer.Option(help="Products per customer.")] = 10,
    model: Annotated[str, typer.Option(help="Registered model name.")] = "nba-recommender",
    alias: Annotated[str, typer.Option(help="Registry alias to load.")] = "champion",
    fmt: Annotated[str, typer.Option("--format", help="csv or json.")] = "csv",
    out: Annotated[Path | None, typer.Option(help="Write here instead of standard output.")] = None,
    data_dir: DataDir = Path("data"),
) -> None:
    """Top-k products for customers, from the registered model (champion by default)."""
    import pandas as pd

    from training.registry import RegistryError

    if fmt not in ("csv", "json"):
        raise _fail(f"--format must be csv or json, not {fmt!r}")
    if k < 1 or k > 1000:
        raise _fail(f"--k must be between 1 and 1000 (got {k})")
    path = Path(customers)
    described = None
    if path.is_file():
        if path.suffix == ".csv":
            described = pd.read_csv(path, dtype={"customer_id": str})
            if "customer_id" not in described:
                raise _fail(f"{path}: no customer_id column")
            ids = described["customer_id"].astype(str).tolist()
        else:
            ids = [line.strip() for line in path.read_text().splitlines() if line.strip()]
    else:
        ids = [c.strip() for c in customers.split(",") if c.strip()]
    if not ids:
        raise _fail("no customer ids given")
    try:
        loaded = _registry(data_dir).load_model(model, alias)
    except (RegistryError, Exception) as exc:  # an unknown model or alias, an unreachable store
        raise _fail(f"cannot load models:/{model}@{alias}: {exc}", 3) from None
    frame = loaded.recommend(ids, k, customers=described).to_frame()
    text = frame.to_csv(index=False) if fmt == "csv" else json.dumps(frame.to_dict("records"))
    if out is None:
        sys.stdout.write(text if text.endswith("\n") else text + "\n")
    else:
        out.write_text(text)
        _console().print(f"wrote {len(frame):,} rows for {len(ids):,} customers to {out}")


@models_app.command("list")
def models_list(
    name: Annotated[str | None, typer.Argument(help="One model; all when omitted.")] = None,
    data_dir: DataDir = Path("data"),
) -> None:
    """List registered model versions and their aliases."""
    registry = _registry(data_dir)
    table = Table(title=f"registered models ({registry.tracking_uri})")
    for col in ("name", "version", "aliases", "run"):
        table.add_column(col)
    for v in registry.versions(name):
        table.add_row(v.name, str(v.version), ", ".join(v.aliases), v.run_id[:12])
    _console().print(table)


@models_app.command("promote")
def models_promote(
    name: Annotated[str, typer.Argument(help="Registered model name.")],
    version: Annotated[int, typer.Argument(help="Version to make the champion.")],
    data_dir: DataDir = Path("data"),
) -> None:
    """Move the champion alias to VERSION (the previous champion is remembered for rollback)."""
    from training.registry import RegistryError

    try:
        previous = _registry(data_dir).promote(name, version)
    except RegistryError as exc:
        raise _fail(str(exc)) from None
    was = f" (was version {previous})" if previous is not None else ""
    _console().print(f"{name}: champion is now version {version}{was}")


@models_app.command("rollback")
def models_rollback(
    name: Annotated[str, typer.Argument(help="Registered model name.")],
    data_dir: DataDir = Path("data"),
) -> None:
    """Move the champion alias back to the previous champion."""
    from training.registry import RegistryError

    try:
        version = _registry(data_dir).rollback(name)
    except RegistryError as exc:
        raise _fail(str(exc)) from None
    _console().print(f"{name}: champion rolled back to version {version}")
