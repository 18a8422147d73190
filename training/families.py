"""Each model's own steps in the training template (:class:`~training.pipeline.TrainingPipeline`).

- :class:`RecommenderTraining`: every recommender family on a validation split,
  the best on the held-out test with the baselines and the champion's recipe
  (tuned first when asked), then refitted on every event; promoted only when
  it beats the champion and the baselines.
- :class:`SendsTraining`: what the two models learned from past sends share.
- :class:`ChannelsTraining`: channel propensity, evaluated on later sends
  against each channel's rate and the customer's smoothed rate.
- :class:`OffersTraining`: offer uplift, evaluated (Qini, uplift@k; the true
  uplift on the simulator) against random and rule-based targeting.
- :class:`SendTimeTraining`: the shrunk hour-of-week patterns, measured on the
  simulator's true peak hours when known.

Building the decision models' examples (point-in-time profiles of past
sends) is the caller's step (:mod:`training.api`): one set can serve several
runs.
"""

from __future__ import annotations

import statistics
from abc import abstractmethod
from collections.abc import Sequence
from typing import Any, Generic, Protocol, TypeVar

import pandas as pd

from features.dataset import RetailDataset
from nba.channels import Channel
from nba.contact_policy import ContactPolicy
from training import plots
from training.comparison import recall_curves
from training.data import training_data
from training.evaluation import EvaluationProtocol
from training.examples import ContactExamples
from training.offer_selection import OfferSelection, select_offers
from training.offers import METHODS, OfferConfig, OfferUpliftModel
from training.pipeline import Evaluation, Report, TrainingPipeline
from training.propensity import (
    ChannelEvaluation,
    ChannelPropensityModel,
    PropensityConfig,
    evaluate_channels,
)
from training.recommendation import Recommender
from training.recommender import HybridConfig, HybridRecommender
from training.recommender_families import FAMILIES, build, spec_of
from training.selection import RecommenderSelection, select_recommender
from training.send_time import (
    SendTimeConfig,
    SendTimeEvaluation,
    SendTimeModel,
    evaluate_send_time,
)
from training.truth import SimulatorTruth
from training.uplift_learners import BoostingConfig


class RecommenderTraining(TrainingPipeline[Recommender, RecommenderSelection]):
    """The recommender: every family on a validation split, the best one measured on the
    held-out test with the baselines and the champion's recipe, then refitted on every
    event (:func:`~training.selection.select_recommender`).

    It may become the champion only if it beats the champion and the baselines on the
    held-out test. ``evaluate_first=False`` skips all of it and fits the hybrid with
    ``config``.
    """

    kind = "recommender"
    registered_name = "nba-recommender"
    tables = ("customers", "products", "events")

    def __init__(
        self,
        config: HybridConfig | None = None,
        *,
        evaluate_first: bool = True,
        tune: bool = False,
        protocol: EvaluationProtocol | None = None,
        families: Sequence[str] = FAMILIES,
        champion: Recommender | None = None,
        test_all: bool = True,
    ) -> None:
        self.config = config or HybridConfig()
        self.evaluate_first = evaluate_first
        self.tune = tune
        self.protocol = protocol or EvaluationProtocol()
        self.families = tuple(families)
        self.champion = champion
        self.test_all = test_all

    def _evaluate(
        self, data: RetailDataset, dataset_name: str, report: Report | None
    ) -> RecommenderSelection | None:
        if not self.evaluate_first:
            return None
        return select_recommender(
            data,
            dataset_name,
            protocol=self.protocol,
            families=self.families,
            base=self.config,
            tune=self.tune,
            test_all=self.test_all,
            champion=self.champion,
            report=report,
        )

    def _fit(
        self,
        data: RetailDataset,
        evaluation: RecommenderSelection | None,
        report: Report | None,
    ) -> Recommender:
        if evaluation is None:
            model: Recommender = HybridRecommender(self.config)
            model.fit(training_data(data))
        else:
            if report:
                report(f"fitting {evaluation.chosen.label()} on every event")
            model = build(evaluation.chosen).fit(training_data(data, weights=evaluation.weights))
        if isinstance(model, HybridRecommender):
            model.release_training_state()
        return model

    def _metrics(
        self, model: Recommender, evaluation: RecommenderSelection | None
    ) -> dict[str, float]:
        if evaluation is None:
            return {}
        metrics: dict[str, float] = {"promotion_allowed": float(evaluation.promotion.allowed)}
        for prefix, comparison in (("", evaluation.test), ("validation_", evaluation.validation)):
            for r in comparison.results:
                name = f"{prefix}{r.model}_"
                metrics.update(r.warm.as_dict(prefix=name))
                runs = r.ndcg_runs or (r.warm.ndcg,)
                metrics[f"{name}ndcg_median"] = statistics.median(runs)
                metrics[f"{name}ndcg_min"] = min(runs)
                metrics[f"{name}ndcg_max"] = max(runs)
                metrics[f"{name}seeds"] = float(len(runs))
                if r.cold is not None:
                    metrics[f"{name}cold_ndcg_at_{r.cold.k}"] = r.cold.ndcg
                    metrics[f"{name}cold_customers"] = float(r.cold.customers)
        return metrics

    def _figures(
        self, model: Recommender, evaluation: RecommenderSelection | None, dataset_name: str
    ) -> dict[str, Any]:
        if evaluation is None:
            return {}
        results = evaluation.test.results
        return {
            "plots/ndcg_by_model.png": plots.model_comparison(
                {r.model: r.warm.ndcg for r in results}, "NDCG@10", dataset_name
            ),
            "plots/recall_gain_curve.png": plots.gain_curves(
                recall_curves(evaluation.models, evaluation.task),
                "recall@k",
                f"{dataset_name}: gain curves",
            ),
        }

    def _params(self, model: Recommender) -> dict[str, object]:
        spec = spec_of(model)
        return {"family": spec.family, **dict(spec.params)}

    def _input_example(self, data: RetailDataset, model: Recommender) -> pd.DataFrame:
        return pd.DataFrame({"customer_id": data.customers["customer_id"].astype(str).head(3)})

    def _may_promote(self, evaluation: RecommenderSelection | None) -> tuple[bool, str]:
        if evaluation is None:
            return True, ""
        return evaluation.promotion.allowed, f"promotion: {evaluation.promotion.reason}"

    def _summary(self, model: Recommender, evaluation: RecommenderSelection | None) -> str | None:
        return f"recommender: {spec_of(model).family}"


class _LearnsChannels(Protocol):
    channels: tuple[Channel, ...]


class _MeasuredOnSends(Evaluation, Protocol):
    def metrics(self) -> dict[str, float]: ...


class _Settings(Protocol):
    def to_params(self) -> dict[str, object]: ...


SendsModelT = TypeVar("SendsModelT", bound=_LearnsChannels)
SendsEvaluationT = TypeVar("SendsEvaluationT", bound=_MeasuredOnSends)
SettingsT = TypeVar("SettingsT", bound=_Settings)


class SendsTraining(
    TrainingPipeline[SendsModelT, SendsEvaluationT],
    Generic[SendsModelT, SendsEvaluationT, SettingsT],
):
    """A decision model learned from past sends (``examples``, with point-in-time profiles):
    measured on the later sends against its baselines, then fitted on all of them.

    A subclass fills :meth:`_evaluate_on_sends` and :meth:`_fit`, and its plots.
    """

    def __init__(
        self, examples: ContactExamples, config: SettingsT, truth: SimulatorTruth | None = None
    ) -> None:
        self.examples = examples
        self.config = config
        self.truth = truth

    def _evaluate(
        self, data: RetailDataset, dataset_name: str, report: Report | None
    ) -> SendsEvaluationT:
        if report:
            report(f"{self.kind}: evaluating on {len(self.examples):,} sends")
        return self._evaluate_on_sends(data)

    @abstractmethod
    def _evaluate_on_sends(self, data: RetailDataset) -> SendsEvaluationT:
        """Fit on the earlier sends, measure on the later ones with the baselines (and
        against :attr:`truth` when it is known)."""

    def _metrics(self, model: SendsModelT, evaluation: SendsEvaluationT | None) -> dict[str, float]:
        return evaluation.metrics() if evaluation is not None else {}

    def _params(self, model: SendsModelT) -> dict[str, object]:
        return {
            **self.config.to_params(),
            "examples": len(self.examples),
            "channels": [c.value for c in model.channels],
        }

    # no input example: profile rows, whose signature inferred from a few rows would be brittle


class ChannelsTraining(SendsTraining[ChannelPropensityModel, ChannelEvaluation, PropensityConfig]):
    """Channel propensity, against each channel's rate and the customer's smoothed rate."""

    kind = "channels"
    registered_name = "nba-channels"

    def _evaluate_on_sends(self, data: RetailDataset) -> ChannelEvaluation:
        truth = self.truth.engagement if self.truth is not None else None
        evaluation, _ = evaluate_channels(
            self.examples, self.config, truth=truth, boosted=BoostingConfig(seed=self.config.seed)
        )
        return evaluation

    def _fit(
        self, data: RetailDataset, evaluation: ChannelEvaluation | None, report: Report | None
    ) -> ChannelPropensityModel:
        return ChannelPropensityModel(self.config).fit(self.examples)

    def _figures(
        self, model: ChannelPropensityModel, evaluation: ChannelEvaluation | None, dataset_name: str
    ) -> dict[str, Any]:
        if evaluation is None:
            return {}
        return {
            "plots/calibration_curve.png": plots.calibration_curve(
                evaluation.y_true,
                evaluation.predictions["propensity"],
                f"{dataset_name}: channel propensity (held out)",
            ),
            "plots/auc_by_model.png": plots.model_comparison(
                {k: v.auc for k, v in evaluation.results.items()},
                "AUC",
                f"{dataset_name}: channels",
            ),
        }

    def _summary(
        self, model: ChannelPropensityModel, evaluation: ChannelEvaluation | None
    ) -> str | None:
        if evaluation is None:
            return None
        return f"channels: AUC {evaluation.results['propensity'].auc:.4f}"


class OffersTraining(SendsTraining[OfferUpliftModel, OfferSelection, OfferConfig]):
    """Offer uplift on the randomised offer groups' sends
    (:func:`training.offers.offer_examples`): every learner and the fixed rule on a
    validation split, the chosen one on the held-out test with the rules and the
    champion's recipe (:func:`~training.offer_selection.select_offers`), then refitted
    on every send. It may become the champion only if it beats them all there."""

    kind = "offers"
    registered_name = "nba-offers"

    def __init__(
        self,
        examples: ContactExamples,
        config: OfferConfig,
        truth: SimulatorTruth | None = None,
        *,
        champion: OfferUpliftModel | None = None,
        methods: Sequence[str] = METHODS,
    ) -> None:
        super().__init__(examples, config, truth)
        self.champion = champion
        self.methods = tuple(methods)

    def _evaluate_on_sends(self, data: RetailDataset) -> OfferSelection:
        return select_offers(
            self.examples,
            data.offers,
            base=self.config,
            methods=self.methods,
            truth=self.truth.uplift if self.truth is not None else None,
            champion=self.champion,
        )

    def _fit(
        self, data: RetailDataset, evaluation: OfferSelection | None, report: Report | None
    ) -> OfferUpliftModel:
        config = evaluation.chosen if evaluation is not None else self.config
        if report:
            report(f"offers: fitting {config.method} on every send")
        return OfferUpliftModel(config).fit(self.examples, data.offers)

    def _params(self, model: OfferUpliftModel) -> dict[str, object]:
        return {**super()._params(model), **model.config.to_params()}

    def _figures(
        self, model: OfferUpliftModel, evaluation: OfferSelection | None, dataset_name: str
    ) -> dict[str, Any]:
        if evaluation is None:
            return {}
        return {
            "plots/qini_curve.png": plots.qini_curves(
                evaluation.curves, f"{dataset_name}: offer uplift (held out)"
            ),
            "plots/qini_by_model.png": plots.model_comparison(
                evaluation.qini, "Qini coefficient", f"{dataset_name}: offers"
            ),
        }

    def _may_promote(self, evaluation: OfferSelection | None) -> tuple[bool, str]:
        if evaluation is None:
            return True, ""
        return evaluation.promotion.allowed, f"promotion: {evaluation.promotion.reason}"

    def _summary(self, model: OfferUpliftModel, evaluation: OfferSelection | None) -> str | None:
        if evaluation is None:
            return None
        gain = evaluation.test.r_gain.get(evaluation.chosen.method, float("nan"))
        return f"offers: {model.method}, test R-loss gain {gain:.4f}"


class SendTimeTraining(TrainingPipeline[SendTimeModel, SendTimeEvaluation]):
    """Send time: hour-of-week patterns fitted on every event (restricted to the contact
    policy's hours), measured on the simulator's true peaks when ``truth`` is known."""

    kind = "send-time"
    registered_name = "nba-send-time"

    def __init__(
        self,
        config: SendTimeConfig | None = None,
        policy: ContactPolicy | None = None,
        truth: SimulatorTruth | None = None,
    ) -> None:
        self.config = config or SendTimeConfig()
        self.policy = policy
        self.truth = truth

    def _fit(
        self, data: RetailDataset, evaluation: SendTimeEvaluation | None, report: Report | None
    ) -> SendTimeModel:
        if report:
            report("send time: counting activity by hour of week")
        return SendTimeModel(self.config).fit(data, self.policy)

    def _evaluate_fitted(
        self, model: SendTimeModel, evaluation: SendTimeEvaluation | None
    ) -> SendTimeEvaluation | None:
        return evaluate_send_time(model, self.truth.customers) if self.truth is not None else None

    def _metrics(
        self, model: SendTimeModel, evaluation: SendTimeEvaluation | None
    ) -> dict[str, float]:
        metrics = {"alpha": model.alpha, "customers": float(len(model.customer_ids))}
        return (metrics | evaluation.metrics()) if evaluation is not None else metrics

    def _figures(
        self, model: SendTimeModel, evaluation: SendTimeEvaluation | None, dataset_name: str
    ) -> dict[str, Any]:
        matrix, labels = model.segment_matrix()
        return {
            "plots/send_time_heatmap_by_segment.png": plots.hour_heatmap(
                matrix, labels, f"{dataset_name}: activity by local hour of week, per segment"
            )
        }

    def _params(self, model: SendTimeModel) -> dict[str, object]:
        return self.config.to_params()

    def _input_example(self, data: RetailDataset, model: SendTimeModel) -> pd.DataFrame:
        return pd.DataFrame(
            {
                "customer_id": model.customer_ids[:3].astype(str),
                "channel": Channel.EMAIL.value,
                "weekday": [0, 2, 5][: min(3, len(model.customer_ids))],
            }
        )

    def _summary(self, model: SendTimeModel, evaluation: SendTimeEvaluation | None) -> str:
        return f"send time: alpha {model.alpha:g}"

    def _evaluation_text(self, evaluation: SendTimeEvaluation | None) -> str:
        return evaluation.markdown() if evaluation is not None else "no ground truth to evaluate on"
