"""The entry points that ``nba train``, ``nba evaluate`` and ``nba recommend`` call.

Each ``train_*`` function runs one model family (:mod:`training.families`)
through the training template (:mod:`training.pipeline`): evaluated against
its baselines, fitted on all the data, logged and registered under its name.
The pieces live in rooms of their own: the data helpers in
:mod:`training.data`, the simulator's ground truth in :mod:`training.truth`,
the recommender comparison in :mod:`training.comparison`.

>>> # train, register and promote the recommender on any contract data set:
>>> # data = load_dataset("data/retailer")
>>> # registry = ModelRegistry.local("data")
>>> # result = train_recommender(data, registry=registry, promote=True)
>>> # recommend(registry.load_model(RECOMMENDER_NAME), ["C000001"], k=10)
>>> # the decision models, each evaluated against its baselines, logged and registered:
>>> # runs = train_all(data, registry=registry, truth=SimulatorTruth.from_dir("data/retailer"))
>>> # scorer = ModelScorer(runs.channels.model, runs.offers.model, runs.send_time.model)
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar, Unpack

import pandas as pd

from features.dataset import RetailDataset
from nba.contact_policy import ContactPolicy
from training.data import dataset_fingerprint
from training.evaluation import Comparison, EvaluationProtocol
from training.examples import (
    DEFAULT_MAX_EXAMPLES,
    ContactExamples,
    contact_examples,
    message_sends,
    sample_rows,
    shared_examples,
)
from training.families import (
    ChannelsTraining,
    OffersTraining,
    RecommenderTraining,
    SendTimeTraining,
)
from training.model_scorer import ModelScorer
from training.offer_selection import OfferSelection
from training.offers import METHODS, OfferConfig, OfferUpliftModel, offer_examples, offer_sends
from training.pipeline import ModelRun, Report, RunOptions
from training.propensity import ChannelEvaluation, ChannelPropensityModel, PropensityConfig
from training.recommendation import Recommender
from training.recommender import HybridConfig
from training.recommender_families import FAMILIES
from training.registry import ModelRegistry, ModelVersionInfo
from training.selection import RecommenderSelection
from training.send_time import SendTimeConfig, SendTimeEvaluation, SendTimeModel
from training.truth import SimulatorTruth

RECOMMENDER_NAME = RecommenderTraining.registered_name
OFFERS_NAME = OffersTraining.registered_name
CHANNELS_NAME = ChannelsTraining.registered_name
SEND_TIME_NAME = SendTimeTraining.registered_name

ChampionT = TypeVar("ChampionT")


@dataclass(frozen=True)
class RecommenderRun:
    """A trained, registered recommender and the evaluation that chose it."""

    model: Recommender
    selection: RecommenderSelection | None
    version: ModelVersionInfo | None
    fingerprint: str
    promoted: bool = False
    #: Wall and CPU seconds of each step of the run (:class:`training.pipeline.ModelRun`).
    stages: dict[str, float] = field(default_factory=dict)
    stage_cpu: dict[str, float] = field(default_factory=dict)

    @property
    def comparison(self) -> Comparison | None:
        """The held-out test table (None without evaluation)."""
        return self.selection.test if self.selection is not None else None

    def markdown(self) -> str:
        return self.selection.markdown() if self.selection is not None else ""

    @classmethod
    def of(cls, run: ModelRun[Recommender, RecommenderSelection]) -> RecommenderRun:
        """The recommender's view of its training run."""
        stages, cpu = run.stages, run.stage_cpu
        return cls(
            run.model, run.evaluation, run.version, run.fingerprint, run.promoted, stages, cpu
        )


def train_recommender(
    data: RetailDataset,
    *,
    config: HybridConfig | None = None,
    evaluate_first: bool = True,
    tune: bool = False,
    protocol: EvaluationProtocol | None = None,
    families: Sequence[str] = FAMILIES,
    test_all: bool = True,
    **options: Unpack[RunOptions],
) -> RecommenderRun:
    """Choose a family on validation, measure it on the held-out test against the baselines
    and the champion, refit on all data, log and register (promote only when it wins,
    unless ``force``).

    ``config`` is the LightFM families' base; ``evaluate_first=False`` fits the hybrid with
    it directly; ``test_all`` measures every family on the test (so the promoted model is
    never worse than the best of them there), not only the chosen one and the baselines.
    ``options`` say where the run is logged (:class:`~training.pipeline.RunOptions`:
    ``registry``, ``model_name``, ``dataset_name``, ``promote``, ``force``, ``report``...).
    The champion compared with is the registry's, when promoting.
    """
    family = recommender_training(
        options.get("registry"),
        model_name=options.get("model_name"),
        promote=bool(options.get("promote")),
        report=options.get("report"),
        config=config,
        evaluate_first=evaluate_first,
        tune=tune,
        protocol=protocol,
        families=families,
        test_all=test_all,
    )
    return RecommenderRun.of(family.run(data, **options))


def recommender_training(
    registry: ModelRegistry | None = None,
    *,
    model_name: str | None = None,
    promote: bool = False,
    report: Report | None = None,
    **settings: Any,
) -> RecommenderTraining:
    """The recommender's training as :func:`train_recommender` runs it, not yet run (e.g.
    to train it in another process: :class:`~training.pipeline.BackgroundTraining`);
    ``settings`` are :class:`~training.families.RecommenderTraining`'s. When promoting,
    the champion to beat is loaded from ``registry`` now."""
    champion = None
    if promote and registry is not None and settings.get("evaluate_first", True):
        champion = _current_champion(
            registry,
            model_name or RECOMMENDER_NAME,
            report,
            Recommender,  # type: ignore[type-abstract]
        )
    return RecommenderTraining(champion=champion, **settings)


def _current_champion(
    registry: ModelRegistry, name: str, report: Report | None, kind: type[ChampionT]
) -> ChampionT | None:
    """The registered champion, or None (said) when there is none or it cannot be loaded
    (or is not a ``kind``)."""
    if registry.champion(name) is None:
        return None
    try:
        model = registry.load_model(name)
    except Exception as exc:  # an unreadable or incompatible artifact: compared without it
        if report:
            report(f"the current champion cannot be loaded ({exc}): compared with baselines only")
        return None
    return model if isinstance(model, kind) else None


def recommend(
    model: Recommender,
    customer_ids: Sequence[str],
    k: int = 10,
    customers: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Top-``k`` per customer as a long frame (``customer_id, rank, product_id, score``)."""
    return model.recommend(list(customer_ids), k, customers=customers).to_frame()


def train_channels(
    data: RetailDataset,
    *,
    config: PropensityConfig | None = None,
    truth: SimulatorTruth | None = None,
    max_examples: int | None = DEFAULT_MAX_EXAMPLES,
    examples: ContactExamples | None = None,
    **options: Unpack[RunOptions],
) -> ModelRun[ChannelPropensityModel, ChannelEvaluation]:
    """Channel propensity: evaluate on a time split against the per-channel rate and the
    customer's smoothed rate, refit on every send, log and register.

    At most ``max_examples`` sends (a seeded sample) get point-in-time profiles,
    unless the ``examples`` are given.
    """
    config = config or PropensityConfig()
    if examples is None:
        sends = sample_rows(message_sends(data.events), max_examples, config.seed)
        examples = contact_examples(data, sends, report=options.get("report"))
    return ChannelsTraining(examples, config, truth).run(data, **options)


def sends_examples(
    data: RetailDataset,
    names: Sequence[str],
    max_examples: int | None = DEFAULT_MAX_EXAMPLES,
    report: Report | None = None,
) -> dict[str, ContactExamples]:
    """The examples :func:`train_channels` and :func:`train_offers` sample by default,
    for those of ``"channels"`` and ``"offers"`` in ``names``, from one point-in-time cut
    (:func:`~training.examples.shared_examples`). A model without data (no offer ever
    sent) is left out: its own ``train_*`` says why."""
    rows: dict[str, pd.DataFrame] = {}
    if "channels" in names:
        sends = message_sends(data.events)
        rows["channels"] = sample_rows(sends, max_examples, PropensityConfig().seed)
    if "offers" in names:
        try:
            sends = offer_sends(data.events, data.offers)
        except ValueError:
            pass
        else:
            rows["offers"] = sample_rows(sends, max_examples, OfferConfig().seed)
    if not rows:
        return {}
    return dict(zip(rows, shared_examples(data, list(rows.values()), report=report), strict=True))


def train_offers(
    data: RetailDataset,
    *,
    config: OfferConfig | None = None,
    truth: SimulatorTruth | None = None,
    max_examples: int | None = DEFAULT_MAX_EXAMPLES,
    examples: ContactExamples | None = None,
    methods: Sequence[str] = METHODS,
    **options: Unpack[RunOptions],
) -> ModelRun[OfferUpliftModel, OfferSelection]:
    """Offer uplift: every learner and the fixed rule on a validation split, the chosen one
    on the held-out test against the rules, random targeting and (when promoting) the
    champion's recipe (Qini, uplift@k; true uplift on the simulator); refit on every
    example, log and register; promoted only when it wins there, unless ``force``.
    ``methods`` are the candidates (:data:`~training.offers.METHODS` by default)."""
    config = config or OfferConfig()
    report = options.get("report")
    if examples is None:
        examples = offer_examples(data, max_examples, config.seed, report=report)
    champion = None
    registry = options.get("registry")
    if options.get("promote") and registry is not None:
        name = options.get("model_name") or OFFERS_NAME
        champion = _current_champion(registry, name, report, OfferUpliftModel)
    family = OffersTraining(examples, config, truth, champion=champion, methods=methods)
    return family.run(data, **options)


def train_send_time(
    data: RetailDataset,
    *,
    config: SendTimeConfig | None = None,
    policy: ContactPolicy | None = None,
    truth: SimulatorTruth | None = None,
    **options: Unpack[RunOptions],
) -> ModelRun[SendTimeModel, SendTimeEvaluation]:
    """Send time: fit the shrunk hour-of-week patterns on every event (restricted to the
    contact policy's hours), evaluate on the simulator's true peaks when known, log and
    register with a heatmap per segment."""
    return SendTimeTraining(config, policy, truth).run(data, **options)


@dataclass(frozen=True)
class TrainingRuns:
    """What :func:`train_all` trained (``None`` where a model could not be trained)."""

    recommender: RecommenderRun | None
    offers: ModelRun[OfferUpliftModel, OfferSelection] | None
    channels: ModelRun[ChannelPropensityModel, ChannelEvaluation] | None
    send_time: ModelRun[SendTimeModel, SendTimeEvaluation] | None
    problems: dict[str, str]

    def scorer(self) -> ModelScorer:
        """The engine's scorer backed by the trained models."""
        return ModelScorer(
            self.channels.model if self.channels else None,
            self.offers.model if self.offers else None,
            self.send_time.model if self.send_time else None,
        )


def train_all(
    data: RetailDataset,
    *,
    registry: ModelRegistry | None = None,
    dataset_name: str = "data",
    truth: SimulatorTruth | None = None,
    recommender: bool = True,
    max_examples: int | None = DEFAULT_MAX_EXAMPLES,
    promote: bool = False,
    report: Report | None = None,
) -> TrainingRuns:
    """Train every model on ``data`` (one data fingerprint for all). A decision model whose
    data is missing (no offers ever sent, no engagement recorded) is reported in
    ``problems`` and skipped; the others are still trained."""
    fingerprint = dataset_fingerprint(data)
    problems: dict[str, str] = {}
    examples = sends_examples(data, ("channels", "offers"), max_examples, report)
    rec = None
    if recommender:
        rec = train_recommender(
            data, registry=registry, dataset_name=dataset_name, promote=promote, report=report
        )
    run: RunOptions = {
        "registry": registry,
        "dataset_name": dataset_name,
        "fingerprint": fingerprint,
        "promote": promote,
        "report": report,
    }
    trainers: dict[str, Callable[[], ModelRun[Any, Any]]] = {
        "channels": lambda: train_channels(
            data, truth=truth, max_examples=max_examples, examples=examples.get("channels"), **run
        ),
        "offers": lambda: train_offers(
            data, truth=truth, max_examples=max_examples, examples=examples.get("offers"), **run
        ),
        "send-time": lambda: train_send_time(data, truth=truth, **run),
    }
    runs: dict[str, ModelRun[Any, Any] | None] = {}
    for key, train in trainers.items():
        try:
            runs[key] = train()
        except ValueError as exc:
            problems[key] = str(exc)
            runs[key] = None
            if report:
                report(f"{key}: not trained: {exc}")
    return TrainingRuns(rec, runs["offers"], runs["channels"], runs["send-time"], problems)
