"""The Python API that ``nba train``, ``nba evaluate`` and ``nba recommend`` mirror.

>>> # train, register and promote the recommender on any contract data set:
>>> # data = load_dataset("data/retailer")
>>> # result = train_recommender(data, registry=ModelRegistry.local("data"))
>>> # registry.promote(RECOMMENDER_NAME, result.version)
>>> # recommend(registry.load_model(RECOMMENDER_NAME), ["C000001"], k=10)
>>> # the decision models, each evaluated against its baselines, logged and registered:
>>> # runs = train_all(data, registry=registry, truth=SimulatorTruth.from_dir("data/retailer"))
>>> # scorer = ModelScorer(runs.channels.model, runs.offers.model, runs.send_time.model)
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, cast

import numpy as np
import pandas as pd

from features.dataset import RetailDataset
from nba.channels import Channel
from nba.contact_policy import ContactPolicy
from training.baselines import EASERecommender, PopularityRecommender
from training.evaluation import Comparison, ModelResult, RankingTask, evaluate, ranking_task
from training.examples import (
    DEFAULT_MAX_EXAMPLES,
    ContactExamples,
    contact_examples,
    message_sends,
    sample_rows,
)
from training.interactions import InteractionWeights, interaction_frame, owned_pairs
from training.metrics import recall_at_k
from training.model_scorer import ModelScorer
from training.offers import OfferConfig, OfferUpliftModel, evaluate_offers, offer_examples
from training.propensity import ChannelPropensityModel, PropensityConfig, evaluate_channels
from training.recommendation import Recommender, TrainingData
from training.recommender import HybridConfig, HybridRecommender, plain_lightfm
from training.registry import ModelRegistry, ModelVersionInfo, data_fingerprint
from training.send_time import SendTimeConfig, SendTimeModel, evaluate_send_time
from training.splits import launched_before, time_cut
from training.tuning import HYBRID_GRID, PLAIN_GRID, tune_ease, tune_lightfm

Report = Callable[[str], None]
RECOMMENDER_NAME = "nba-recommender"
OFFERS_NAME = "nba-offers"
CHANNELS_NAME = "nba-channels"
SEND_TIME_NAME = "nba-send-time"
EXPERIMENT = "nba-training"


def default_weights(data: RetailDataset) -> InteractionWeights:
    """Time decay for retail data; none for rating data sets (no purchases, e.g. MovieLens)."""
    has_purchases = bool((data.events["event_type"] == "purchase").any())
    return InteractionWeights() if has_purchases else InteractionWeights(half_life_days=None)


def training_data(
    data: RetailDataset,
    as_of: pd.Timestamp | None = None,
    weights: InteractionWeights | None = None,
) -> TrainingData:
    """Everything known before ``as_of`` (default: just after the last event) as training data."""
    as_of = as_of or (data.events["timestamp"].max() + pd.Timedelta(seconds=1))
    weights = weights or default_weights(data)
    return TrainingData(
        interactions=interaction_frame(data.events, as_of, weights),
        customers=data.customers,
        products=launched_before(data.products, as_of),
        owned=owned_pairs(data.events, as_of),
        as_of=as_of,
    )


@dataclass(frozen=True)
class TunedSettings:
    """What tuning on the validation split chose for each tunable model."""

    hybrid: HybridConfig
    plain: HybridConfig
    ease_l2: float


def tune_recommenders(
    data: RetailDataset,
    test_cut: pd.Timestamp,
    *,
    weights: InteractionWeights,
    base: HybridConfig,
    test_fraction: float = 0.2,
    report: Report | None = None,
) -> TunedSettings:
    """Tune EASE, plain LightFM and the hybrid on a validation cut inside the training period."""
    before = data.events[data.events["timestamp"] < test_cut]
    val_cut = time_cut(before, test_fraction)
    val = ranking_task(data, val_cut, test_cut, weights=weights, name="validation")
    ease = tune_ease(val)
    if report:
        report(f"ease: l2={ease.params['l2']} (validation NDCG {ease.validation_ndcg:.4f})")
    plain, _ = tune_lightfm(val, base, PLAIN_GRID, plain=True, report=report)
    hybrid, _ = tune_lightfm(val, base, HYBRID_GRID, plain=False, report=report)
    return TunedSettings(hybrid, plain, float(ease.params["l2"]))  # type: ignore[arg-type]


def _timed_fit(model: Recommender, task: RankingTask) -> float:
    started = time.perf_counter()
    model.fit(task.train)
    return time.perf_counter() - started


def compare_recommenders(
    data: RetailDataset,
    dataset_name: str,
    *,
    test_fraction: float = 0.2,
    k: int = 10,
    tune: bool = True,
    base: HybridConfig | None = None,
    weights: InteractionWeights | None = None,
    report: Report | None = None,
) -> tuple[Comparison, dict[str, Recommender], RankingTask]:
    """Hybrid vs popularity, EASE and plain LightFM on one time split, in the same run.

    Hyper-parameters are tuned on a validation cut before the test cut (when
    ``tune``); the test window is used once, for the final numbers.
    """
    base = base or HybridConfig()
    weights = weights or default_weights(data)
    cut = time_cut(data.events, test_fraction)
    if tune:
        settings = tune_recommenders(
            data, cut, weights=weights, base=base, test_fraction=test_fraction, report=report
        )
    else:
        settings = TunedSettings(base, base, 250.0)
    task = ranking_task(data, cut, weights=weights, name=dataset_name)
    models: dict[str, Recommender] = {
        "popularity": PopularityRecommender(),
        "ease": EASERecommender(settings.ease_l2),
        "lightfm": plain_lightfm(settings.plain),
        "hybrid": HybridRecommender(settings.hybrid),
    }
    params: dict[str, dict[str, object]] = {
        "popularity": {},
        "ease": {"l2": settings.ease_l2},
        "lightfm": _lightfm_params(settings.plain),
        "hybrid": _lightfm_params(settings.hybrid),
    }
    results = []
    for name, model in models.items():
        seconds = _timed_fit(model, task)
        warm = evaluate(model, task, k)
        cold = evaluate(model, task, k, cold=True) if task.cold else None
        results.append(ModelResult(name, params[name], warm, cold, seconds))
        if report:
            report(f"{dataset_name} {name}: NDCG@{k} {warm.ndcg:.4f} ({seconds:.1f} s)")
    return Comparison(dataset_name, cut, results), models, task


def _lightfm_params(cfg: HybridConfig) -> dict[str, object]:
    keys = (
        "no_components",
        "epochs",
        "learning_rate",
        "behaviour_features",
        "user_identity_weight",
        "item_identity_weight",
    )
    return {key: getattr(cfg, key) for key in keys}


def recall_curves(
    models: dict[str, Recommender], task: RankingTask, k_max: int = 20
) -> dict[str, list[float]]:
    """Recall@k for k = 1..k_max per model on the task's warm customers (a gain curve)."""
    ids = sorted(task.warm)
    relevant = [task.warm[c] for c in ids]
    out = {}
    for name, model in models.items():
        recs = model.recommend(ids, k_max).product_ids.tolist()
        out[name] = [recall_at_k(recs, relevant, k) for k in range(1, k_max + 1)]
    return out


@dataclass(frozen=True)
class RecommenderRun:
    """A trained, registered recommender and the evaluation that came with it."""

    model: HybridRecommender
    comparison: Comparison | None
    version: ModelVersionInfo | None
    fingerprint: str


def train_recommender(
    data: RetailDataset,
    *,
    registry: ModelRegistry | None = None,
    model_name: str = RECOMMENDER_NAME,
    dataset_name: str = "data",
    config: HybridConfig | None = None,
    evaluate_first: bool = True,
    tune: bool = False,
    report: Report | None = None,
) -> RecommenderRun:
    """Evaluate against the baselines on a time split, refit on all data, log and register.

    The registered model is fitted on every event (the evaluation models are
    fitted before the test cut); its parameters are those evaluated.
    """
    from training import plots

    config = config or HybridConfig()
    fingerprint = data_fingerprint(
        {"customers": data.customers, "products": data.products, "events": data.events}
    )
    comparison = None
    metrics: dict[str, float] = {}
    figures = {}
    if evaluate_first:
        comparison, models, task = compare_recommenders(
            data, dataset_name, tune=tune, base=config, report=report
        )
        config = replace(config, **cast(dict[str, Any], _config_of(models["hybrid"])))
        for r in comparison.results:
            metrics.update(r.warm.as_dict(prefix=f"{r.model}_"))
            if r.cold is not None:
                metrics[f"{r.model}_cold_ndcg_at_{r.cold.k}"] = r.cold.ndcg
        figures["plots/ndcg_by_model.png"] = plots.model_comparison(
            {r.model: r.warm.ndcg for r in comparison.results}, "NDCG@10", dataset_name
        )
        figures["plots/recall_gain_curve.png"] = plots.gain_curves(
            recall_curves(models, task), "recall@k", f"{dataset_name}: gain curves"
        )
    started = time.perf_counter()
    model = HybridRecommender(config).fit(training_data(data))
    model.release_training_state()
    metrics["train_seconds"] = time.perf_counter() - started
    version = None
    if registry is not None:
        example = pd.DataFrame({"customer_id": data.customers["customer_id"].astype(str).head(3)})
        version = registry.log_model_run(
            experiment=EXPERIMENT,
            model_name=model_name,
            model=model,
            params={**config.to_params(), "dataset": dataset_name},
            metrics=metrics,
            fingerprint=fingerprint,
            figures=figures,
            texts={"evaluation.md": comparison.markdown()} if comparison else None,
            input_example=example,
            run_name=f"recommender-{dataset_name}",
        )
    return RecommenderRun(model, comparison, version, fingerprint)


def _config_of(model: Recommender) -> dict[str, object]:
    assert isinstance(model, HybridRecommender)
    return {k: getattr(model.config, k) for k in HybridConfig.__dataclass_fields__}


def recommend(
    model: Recommender,
    customer_ids: Sequence[str],
    k: int = 10,
    customers: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Top-``k`` per customer as a long frame (``customer_id, rank, product_id, score``)."""
    return model.recommend(list(customer_ids), k, customers=customers).to_frame()


def scoring_throughput(
    model: HybridRecommender, customer_ids: Sequence[str], k: int = 10, naive_sample: int = 200
) -> dict[str, float]:
    """Customers per second for top-k: matrix products vs one ``predict`` call per customer."""
    ids = list(customer_ids)
    started = time.perf_counter()
    model.recommend(ids, k)
    fast = len(ids) / (time.perf_counter() - started)
    sample = ids[:naive_sample]
    started = time.perf_counter()
    scores = model.score_naive(sample)
    np.argsort(-scores, axis=1)[:, :k]
    naive = len(sample) / (time.perf_counter() - started)
    return {"matrix_customers_per_s": fast, "naive_customers_per_s": naive, "speedup": fast / naive}


# ---------------------------------------------------------------------- decision models


def dataset_fingerprint(data: RetailDataset) -> str:
    """The data fingerprint logged with every model trained on ``data``."""
    return data_fingerprint(
        {
            "customers": data.customers,
            "products": data.products,
            "offers": data.offers,
            "events": data.events,
        }
    )


@dataclass(frozen=True)
class SimulatorTruth:
    """What a simulated data set knows and models must find out, for evaluation only.

    ``customers`` is ``truth/customers.parquet`` (true channel responsiveness
    ``open_<channel>``, peak hours, promotion sensitivity...), ``offers``
    ``truth/offers.parquet`` (each offer's true appeal). ``response`` is the
    simulator's :class:`~simulator.ResponseModel` when the data set
    was simulated in this process: then true probabilities and uplifts are
    exact; read from files, they come from the customers' true traits
    (responsiveness; promotion sensitivity x appeal).
    """

    customers: pd.DataFrame
    offers: pd.DataFrame
    response: Any = None
    message_kinds: dict[str, str] | None = None  # channel -> kind of its historical campaign

    @classmethod
    def from_simulation(cls, sim: Any) -> SimulatorTruth:
        """From an in-memory :class:`~simulator.SimulatedRetailer`."""
        kinds: dict[str, str] = {}
        for campaign in sim.config.campaigns:
            kinds.setdefault(campaign.channel.value, campaign.kind)
        return cls(sim.truth.customers, sim.truth.offers, sim.response, kinds)

    @classmethod
    def from_dir(cls, folder: str | Path) -> SimulatorTruth | None:
        """From ``folder/truth/`` as the simulator writes it; None when there is none."""
        truth = Path(folder) / "truth"
        if not (truth / "customers.parquet").is_file():
            return None
        offers_path = truth / "offers.parquet"
        offers = pd.read_parquet(offers_path) if offers_path.is_file() else pd.DataFrame()
        return cls(pd.read_parquet(truth / "customers.parquet"), offers)

    def engagement(self, examples: ContactExamples) -> np.ndarray:
        """True P(open) of each send on channels that report opens (NaN elsewhere)."""
        rows = examples.rows
        channels = rows["channel"].astype(str).to_numpy()
        opens = np.isin(channels, [c.value for c in OPEN_CHANNELS])
        if self.response is not None:
            recent = [p.contacts.total_7d() for p in examples.profiles]
            p = self.response.probabilities(
                rows["customer_id"].to_numpy(dtype=object),
                channels,
                rows["timestamp"].to_numpy(),
                recent_contacts=recent,
            )
            return np.where(opens, p.open, np.nan)
        truth = self.customers.set_index("customer_id")
        out = np.full(len(rows), np.nan)
        for channel in np.unique(channels[opens]):
            column = f"open_{channel}"
            if column in truth:
                at = channels == channel
                out[at] = truth[column].reindex(rows["customer_id"][at]).to_numpy(dtype=float)
        return out

    def uplift(self, examples: ContactExamples) -> np.ndarray:
        """True uplift in P(purchase within the window) of each send's offer."""
        rows = examples.rows
        if self.response is not None:
            channels = rows["channel"].astype(str).to_numpy()
            kinds = np.array(
                [(self.message_kinds or {}).get(c, "promo") for c in channels], dtype=object
            )
            value = self.response.offer_uplift(
                rows["customer_id"].to_numpy(dtype=object),
                channels,
                rows["timestamp"].to_numpy(),
                rows["offer_id"].to_numpy(dtype=object),
                kind=kinds,
            )
            return np.asarray(value.purchase, dtype=float)
        promo = self.customers.set_index("customer_id")["promo_sensitivity"]
        appeal = self.offers.set_index("offer_id")["appeal"]
        return promo.reindex(rows["customer_id"]).to_numpy(dtype=float) * appeal.reindex(
            rows["offer_id"]
        ).to_numpy(dtype=float)


#: Channels whose messages report opens (e-mail, push; calls answered).
OPEN_CHANNELS = (Channel.EMAIL, Channel.PUSH, Channel.CALL_CENTRE)


@dataclass(frozen=True)
class ModelRun:
    """A trained (and maybe registered) decision model with its evaluation."""

    name: str
    model: Any
    evaluation: Any
    metrics: dict[str, float]
    version: ModelVersionInfo | None
    fingerprint: str
    seconds: float

    def markdown(self) -> str:
        return self.evaluation.markdown() if self.evaluation is not None else ""


def _register(
    registry: ModelRegistry | None,
    *,
    model_name: str,
    model: Any,
    params: dict[str, object],
    metrics: dict[str, float],
    fingerprint: str,
    figures: dict[str, Any],
    text: str,
    example: pd.DataFrame | None,
    run_name: str,
) -> ModelVersionInfo | None:
    if registry is None:
        return None
    return registry.log_model_run(
        experiment=EXPERIMENT,
        model_name=model_name,
        model=model,
        params=params,
        metrics=metrics,
        fingerprint=fingerprint,
        figures=figures,
        texts={"evaluation.md": text},
        input_example=example,
        run_name=run_name,
    )


def train_channels(
    data: RetailDataset,
    *,
    registry: ModelRegistry | None = None,
    model_name: str = CHANNELS_NAME,
    dataset_name: str = "data",
    config: PropensityConfig | None = None,
    truth: SimulatorTruth | None = None,
    max_examples: int | None = DEFAULT_MAX_EXAMPLES,
    examples: ContactExamples | None = None,
    fingerprint: str | None = None,
    report: Report | None = None,
) -> ModelRun:
    """Channel propensity: evaluate on a time split against the per-channel rate and the
    customer's smoothed rate, refit on every send, log and register.

    At most ``max_examples`` sends (a seeded sample) get point-in-time profiles.
    """
    from training import plots

    config = config or PropensityConfig()
    fingerprint = fingerprint or dataset_fingerprint(data)
    if examples is None:
        sends = sample_rows(message_sends(data.events), max_examples, config.seed)
        examples = contact_examples(data, sends, report=report)
    if report:
        report(f"channels: evaluating on {len(examples):,} sends")
    evaluation, _ = evaluate_channels(
        examples, config, truth=truth.engagement if truth is not None else None
    )
    started = time.perf_counter()
    model = ChannelPropensityModel(config).fit(examples)
    seconds = time.perf_counter() - started
    metrics = {**evaluation.metrics(), "train_seconds": seconds}
    figures = {
        "plots/calibration_curve.png": plots.calibration_curve(
            evaluation.y_true,
            evaluation.predictions["propensity"],
            f"{dataset_name}: channel propensity (held out)",
        ),
        "plots/auc_by_model.png": plots.model_comparison(
            {k: v.auc for k, v in evaluation.results.items()}, "AUC", f"{dataset_name}: channels"
        ),
    }
    if report:
        report(f"channels: AUC {evaluation.results['propensity'].auc:.4f}")
    version = _register(
        registry,
        model_name=model_name,
        model=model,
        params={
            **config.to_params(),
            "dataset": dataset_name,
            "examples": len(examples),
            "channels": [c.value for c in model.channels],
        },
        metrics=metrics,
        fingerprint=fingerprint,
        figures=figures,
        text=evaluation.markdown(),
        example=None,  # profile rows: a signature inferred from a few rows would be brittle
        run_name=f"channels-{dataset_name}",
    )
    return ModelRun(model_name, model, evaluation, metrics, version, fingerprint, seconds)


def train_offers(
    data: RetailDataset,
    *,
    registry: ModelRegistry | None = None,
    model_name: str = OFFERS_NAME,
    dataset_name: str = "data",
    config: OfferConfig | None = None,
    truth: SimulatorTruth | None = None,
    max_examples: int | None = DEFAULT_MAX_EXAMPLES,
    examples: ContactExamples | None = None,
    fingerprint: str | None = None,
    report: Report | None = None,
) -> ModelRun:
    """Offer uplift: evaluate (Qini, uplift@k; true uplift on the simulator) against random
    and rule-based targeting on a time split, refit on every example, log and register."""
    from training import plots

    config = config or OfferConfig()
    fingerprint = fingerprint or dataset_fingerprint(data)
    if examples is None:
        examples = offer_examples(data, max_examples, config.seed, report=report)
    if report:
        report(f"offers: evaluating on {len(examples):,} sends")
    evaluation, _ = evaluate_offers(
        examples, data.offers, config, truth=truth.uplift if truth is not None else None
    )
    started = time.perf_counter()
    model = OfferUpliftModel(config).fit(examples, data.offers)
    seconds = time.perf_counter() - started
    metrics = {**evaluation.metrics(), "train_seconds": seconds}
    figures = {
        "plots/qini_curve.png": plots.qini_curves(
            evaluation.curves, f"{dataset_name}: offer uplift (held out)"
        ),
        "plots/qini_by_model.png": plots.model_comparison(
            evaluation.qini, "Qini coefficient", f"{dataset_name}: offers"
        ),
    }
    if report:
        report(f"offers: Qini {evaluation.qini['t_learner']:.4f}")
    version = _register(
        registry,
        model_name=model_name,
        model=model,
        params={
            **config.to_params(),
            "dataset": dataset_name,
            "examples": len(examples),
            "channels": [c.value for c in model.channels],
        },
        metrics=metrics,
        fingerprint=fingerprint,
        figures=figures,
        text=evaluation.markdown(),
        example=None,  # profile rows, as for channels
        run_name=f"offers-{dataset_name}",
    )
    return ModelRun(model_name, model, evaluation, metrics, version, fingerprint, seconds)


def train_send_time(
    data: RetailDataset,
    *,
    registry: ModelRegistry | None = None,
    model_name: str = SEND_TIME_NAME,
    dataset_name: str = "data",
    config: SendTimeConfig | None = None,
    policy: ContactPolicy | None = None,
    truth: SimulatorTruth | None = None,
    fingerprint: str | None = None,
    report: Report | None = None,
) -> ModelRun:
    """Send time: fit the shrunk hour-of-week patterns on every event (restricted to the
    contact policy's hours), evaluate on the simulator's true peaks when known, log and
    register with a heatmap per segment."""
    from training import plots

    config = config or SendTimeConfig()
    fingerprint = fingerprint or dataset_fingerprint(data)
    if report:
        report("send time: counting activity by hour of week")
    started = time.perf_counter()
    model = SendTimeModel(config).fit(data, policy)
    seconds = time.perf_counter() - started
    evaluation = evaluate_send_time(model, truth.customers) if truth is not None else None
    metrics = {
        "alpha": model.alpha,
        "customers": float(len(model.customer_ids)),
        "train_seconds": seconds,
    }
    if evaluation is not None:
        metrics |= evaluation.metrics()
    matrix, labels = model.segment_matrix()
    figures = {
        "plots/send_time_heatmap_by_segment.png": plots.hour_heatmap(
            matrix, labels, f"{dataset_name}: activity by local hour of week, per segment"
        )
    }
    if report:
        report(f"send time: alpha {model.alpha:g}")
    example = pd.DataFrame(
        {
            "customer_id": model.customer_ids[:3].astype(str),
            "channel": Channel.EMAIL.value,
            "weekday": [0, 2, 5][: min(3, len(model.customer_ids))],
        }
    )
    version = _register(
        registry,
        model_name=model_name,
        model=model,
        params={**config.to_params(), "dataset": dataset_name},
        metrics=metrics,
        fingerprint=fingerprint,
        figures=figures,
        text=evaluation.markdown() if evaluation is not None else "no ground truth to evaluate on",
        example=example,
        run_name=f"send-time-{dataset_name}",
    )
    return ModelRun(model_name, model, evaluation, metrics, version, fingerprint, seconds)


@dataclass(frozen=True)
class TrainingRuns:
    """What :func:`train_all` trained (``None`` where a model could not be trained)."""

    recommender: RecommenderRun | None
    offers: ModelRun | None
    channels: ModelRun | None
    send_time: ModelRun | None
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
    report: Report | None = None,
) -> TrainingRuns:
    """Train every model on ``data`` (one data fingerprint for all). A decision model whose
    data is missing (no offers ever sent, no engagement recorded) is reported in
    ``problems`` and skipped; the others are still trained."""
    fingerprint = dataset_fingerprint(data)
    problems: dict[str, str] = {}
    rec = None
    if recommender:
        rec = train_recommender(data, registry=registry, dataset_name=dataset_name, report=report)
    runs: dict[str, ModelRun | None] = {}
    for key, train in (
        ("channels", train_channels),
        ("offers", train_offers),
        ("send-time", train_send_time),
    ):
        kwargs: dict[str, Any] = {
            "registry": registry,
            "dataset_name": dataset_name,
            "truth": truth,
            "fingerprint": fingerprint,
            "report": report,
        }
        if key != "send-time":
            kwargs["max_examples"] = max_examples
        try:
            runs[key] = train(data, **kwargs)
        except ValueError as exc:
            problems[key] = str(exc)
            runs[key] = None
            if report:
                report(f"{key}: not trained: {exc}")
    return TrainingRuns(rec, runs["offers"], runs["channels"], runs["send-time"], problems)
