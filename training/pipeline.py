"""The training template: evaluate against baselines, fit, plot, log and register, once.

Every model nba trains goes through :meth:`TrainingPipeline.run`, which does
the work all of them share: the fingerprint of the data the model reads,
timing the final fit, one MLflow run with the parameters, metrics, plots and
evaluation table, registration and, when asked, promotion to champion. A model
family (:mod:`training.families`) subclasses :class:`TrainingPipeline` and fills
only its own steps: evaluate on a time split, fit on all the data, say which
metrics, plots and parameters describe it. The public method is ``@final``, as
in River's bandit policies, so no family can skip the bookkeeping.

>>> class MeanQuantity(TrainingPipeline[float, Any]):
...     kind = "mean-quantity"
...     registered_name = "demo-mean-quantity"
...     tables = ("events",)
...     def _fit(self, data, evaluation, report):
...         return float(data.events["quantity"].mean())
...     def _metrics(self, model, evaluation):
...         return {"mean_quantity": model}
...     def _figures(self, model, evaluation, dataset_name):
...         return {}
...     def _params(self, model):
...         return {}
>>> none = pd.DataFrame()
>>> data = RetailDataset(none, none, none, pd.DataFrame({"quantity": [1, 3]}))
>>> run = MeanQuantity().run(data)  # no registry: fitted and measured, not logged
>>> run.model, run.metrics["mean_quantity"], run.name, run.version is None
(2.0, 2.0, 'demo-mean-quantity', True)
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar, Generic, Protocol, TypedDict, TypeVar, final

import pandas as pd

from features.dataset import RetailDataset
from features.forked import Forked
from training.data import ALL_TABLES, dataset_fingerprint
from training.registry import ModelRegistry, ModelVersionInfo

Report = Callable[[str], None]

#: The MLflow experiment every training run is logged in.
EXPERIMENT = "nba-training"


class RunOptions(TypedDict, total=False):
    """How a training run is logged: the keyword arguments of :meth:`TrainingPipeline.run`,
    which every ``train_*`` entry point of :mod:`training.api` passes on."""

    registry: ModelRegistry | None
    model_name: str
    dataset_name: str
    fingerprint: str | None
    promote: bool
    force: bool
    report: Report | None


class Evaluation(Protocol):
    """What a model's evaluation gives the run: a table for ``evaluation.md``."""

    def markdown(self) -> str: ...


ModelT = TypeVar("ModelT")
EvaluationT = TypeVar("EvaluationT", bound=Evaluation)


@dataclass(frozen=True)
class ModelRun(Generic[ModelT, EvaluationT]):
    """A trained (and maybe registered) model with its evaluation.

    ``seconds`` is the time of the final fit (also logged as ``train_seconds``);
    ``stages`` the wall seconds of each step of :meth:`TrainingPipeline.run`
    (``fingerprint``, ``evaluation``, ``fit``, ``measure`` and ``logging``: MLflow, with
    the plots and registration), to say where a training run's time goes, and
    ``stage_cpu`` the CPU seconds of the process that ran each.
    """

    name: str
    model: ModelT
    evaluation: EvaluationT | None
    metrics: dict[str, float]
    version: ModelVersionInfo | None
    fingerprint: str
    seconds: float
    #: Whether this run made its model the champion.
    promoted: bool = False
    stages: dict[str, float] = field(default_factory=dict)
    stage_cpu: dict[str, float] = field(default_factory=dict)

    def markdown(self) -> str:
        """The evaluation's table ("" when there is none)."""
        return self.evaluation.markdown() if self.evaluation is not None else ""


@dataclass(frozen=True)
class Trained(Generic[ModelT, EvaluationT]):
    """A model fitted and measured, not yet logged (:meth:`TrainingPipeline.train`)."""

    model: ModelT
    evaluation: EvaluationT | None
    metrics: dict[str, float]
    fingerprint: str
    seconds: float
    stages: dict[str, float]
    #: CPU seconds of the process that ran each step
    stage_cpu: dict[str, float] = field(default_factory=dict)


class TrainingPipeline(ABC, Generic[ModelT, EvaluationT]):
    """Train one kind of model: the shared steps in :meth:`run`, the model's own in hooks.

    A subclass sets :attr:`kind` and fills :meth:`_fit`, :meth:`_metrics`,
    :meth:`_figures` and :meth:`_params`; it overrides :meth:`_evaluate` when
    it is evaluated on a time split before the final fit, and
    :meth:`_evaluate_fitted` when the final model itself is measured.
    """

    #: Names the MLflow run (``<kind>-<dataset>``).
    kind: ClassVar[str]
    #: The name the model is registered under unless the run is given another.
    registered_name: ClassVar[str]
    #: The data set's tables the model reads (their fingerprint is logged with it).
    tables: ClassVar[tuple[str, ...]] = ALL_TABLES

    @final
    def run(
        self,
        data: RetailDataset,
        *,
        registry: ModelRegistry | None = None,
        model_name: str | None = None,
        dataset_name: str = "data",
        fingerprint: str | None = None,
        promote: bool = False,
        force: bool = False,
        report: Report | None = None,
    ) -> ModelRun[ModelT, EvaluationT]:
        """Evaluate, fit on all of ``data``, log and register (when ``registry`` is given).

        ``model_name`` defaults to :attr:`registered_name`, ``fingerprint`` to that of
        the tables the model reads (``dataset_name`` names the run and titles the
        plots); ``promote`` makes the new version the champion when the model's gate
        (:meth:`_may_promote`) allows it, ``force`` even when it does not; ``report``
        receives progress lines.
        """
        trained = self.train(
            data, dataset_name=dataset_name, fingerprint=fingerprint, report=report
        )
        return self.log(
            trained,
            data,
            registry=registry,
            model_name=model_name,
            dataset_name=dataset_name,
            promote=promote,
            force=force,
            report=report,
        )

    @final
    def train(
        self,
        data: RetailDataset,
        *,
        dataset_name: str = "data",
        fingerprint: str | None = None,
        report: Report | None = None,
    ) -> Trained[ModelT, EvaluationT]:
        """The first half of :meth:`run`: evaluate, fit on all of ``data`` and measure,
        without logging (so that it can run in another process:
        :class:`BackgroundTraining`)."""
        clock = _StageClock()
        fingerprint = fingerprint or dataset_fingerprint(data, self.tables)
        clock.lap("fingerprint")
        evaluation = self._evaluate(data, dataset_name, report)
        clock.lap("evaluation")
        model = self._fit(data, evaluation, report)
        seconds = clock.lap("fit")
        evaluation = self._evaluate_fitted(model, evaluation)
        metrics = {**self._metrics(model, evaluation), "train_seconds": seconds}
        summary = self._summary(model, evaluation)
        clock.lap("measure")
        if report and summary:
            report(summary)
        return Trained(model, evaluation, metrics, fingerprint, seconds, clock.stages, clock.cpu)

    @final
    def log(
        self,
        trained: Trained[ModelT, EvaluationT],
        data: RetailDataset,
        *,
        registry: ModelRegistry | None = None,
        model_name: str | None = None,
        dataset_name: str = "data",
        promote: bool = False,
        force: bool = False,
        report: Report | None = None,
    ) -> ModelRun[ModelT, EvaluationT]:
        """The second half of :meth:`run`: log ``trained`` with its plots, register it and,
        when asked, promote it (nothing of it without ``registry``)."""
        model_name = model_name or self.registered_name
        model, evaluation = trained.model, trained.evaluation
        clock = _StageClock()
        version = None
        promoted = False
        if registry is not None:
            figures = self._figures(model, evaluation, dataset_name)
            text = self._evaluation_text(evaluation)
            version = registry.log_model_run(
                experiment=EXPERIMENT,
                model_name=model_name,
                model=model,
                params={**self._params(model), "dataset": dataset_name},
                metrics=trained.metrics,
                fingerprint=trained.fingerprint,
                figures=figures,
                texts={"evaluation.md": text} if text is not None else None,
                input_example=self._input_example(data, model),
                run_name=f"{self.kind}-{dataset_name}",
            )
            if promote:
                allowed, reason = self._may_promote(evaluation)
                if report and reason:
                    report(reason)
                if allowed or force:
                    registry.promote(model_name, version.version)
                    version = registry.version(model_name, version.version)
                    promoted = True
        clock.lap("logging")
        return ModelRun(
            model_name,
            model,
            evaluation,
            trained.metrics,
            version,
            trained.fingerprint,
            trained.seconds,
            promoted,
            {**trained.stages, **clock.stages},
            {**trained.stage_cpu, **clock.cpu},
        )

    # ---------------------------------------------------------------- the model's own steps

    def _evaluate(
        self, data: RetailDataset, dataset_name: str, report: Report | None
    ) -> EvaluationT | None:
        """Fit on the earlier part of the history and measure on the later part, with the
        baselines in the same run (default: no such evaluation)."""
        return None

    @abstractmethod
    def _fit(
        self, data: RetailDataset, evaluation: EvaluationT | None, report: Report | None
    ) -> ModelT:
        """The model to register, fitted on all of ``data`` (it may use what evaluation
        chose, such as tuned settings)."""

    def _evaluate_fitted(self, model: ModelT, evaluation: EvaluationT | None) -> EvaluationT | None:
        """Measure the final model where no time split applies (default: keep ``evaluation``)."""
        return evaluation

    @abstractmethod
    def _metrics(self, model: ModelT, evaluation: EvaluationT | None) -> dict[str, float]:
        """The metrics to log (the run adds ``train_seconds``)."""

    @abstractmethod
    def _figures(
        self, model: ModelT, evaluation: EvaluationT | None, dataset_name: str
    ) -> dict[str, Any]:
        """Plots to log, by artifact path (``plots/<name>.png``)."""

    @abstractmethod
    def _params(self, model: ModelT) -> dict[str, object]:
        """The parameters to log (the run adds ``dataset``)."""

    def _input_example(self, data: RetailDataset, model: ModelT) -> pd.DataFrame | None:
        """A few input rows for the registered model's signature (default: none)."""
        return None

    def _may_promote(self, evaluation: EvaluationT | None) -> tuple[bool, str]:
        """Whether the new model may become the champion, and why (default: yes)."""
        return True, ""

    def _summary(self, model: ModelT, evaluation: EvaluationT | None) -> str | None:
        """One progress line once the model is fitted (default: none)."""
        return None

    def _evaluation_text(self, evaluation: EvaluationT | None) -> str | None:
        """The ``evaluation.md`` logged with the run (default: the evaluation's table)."""
        return evaluation.markdown() if evaluation is not None else None


class _StageClock:
    """Wall and CPU seconds (this process's) of consecutive steps: :meth:`lap` closes the
    step running since the last lap (or since the clock was made)."""

    def __init__(self) -> None:
        self.stages: dict[str, float] = {}
        self.cpu: dict[str, float] = {}
        self._last = time.perf_counter()
        self._last_cpu = time.process_time()

    def lap(self, stage: str) -> float:
        now, cpu = time.perf_counter(), time.process_time()
        self.stages[stage] = now - self._last
        self.cpu[stage] = cpu - self._last_cpu
        self._last, self._last_cpu = now, cpu
        return self.stages[stage]


class BackgroundTraining(Generic[ModelT, EvaluationT]):
    """:meth:`TrainingPipeline.train` in a forked process, while this one does other work
    (another model's training: each is single-threaded); :meth:`result` waits for it.

    The child inherits ``pipeline`` and ``data`` (nothing is pickled on the way in:
    :class:`features.forked.Forked`) and sends back the fitted model and its
    evaluation; logging stays in this process (:meth:`TrainingPipeline.log`), so one
    process writes the MLflow store. An error in the child is raised by :meth:`result`,
    and so is its death (:class:`ChildProcessError`).
    """

    def __init__(
        self,
        pipeline: TrainingPipeline[ModelT, EvaluationT],
        data: RetailDataset,
        *,
        dataset_name: str = "data",
        fingerprint: str | None = None,
    ) -> None:
        self._child = Forked(
            lambda: pipeline.train(data, dataset_name=dataset_name, fingerprint=fingerprint)
        )

    def result(self) -> Trained[ModelT, EvaluationT]:
        """The trained model (waits for the child; raises what it raised)."""
        return self._child.result()
