"""Choose the recommender to register: every family on a validation split, the best on the
held-out test, and whether it may replace the champion.

:func:`select_recommender` runs the protocol (:class:`~training.evaluation.EvaluationProtocol`):

1. each family (tuned over its small grid when asked) is fitted on the validation
   task's training part and the family with the best validation NDCG is chosen;
   a family the data is too small or too sparse for is reported and skipped;
2. on the test task (never seen by the choice) the chosen family, the baselines,
   every other family when ``test_all``, and the current champion's recipe
   (refitted on the same training part, so it is judged on the same held-out
   data without having seen it) are measured in the same run, each stochastic
   model over the protocol's seeds;
3. :class:`Promotion` says whether the chosen model may become the champion: only
   when it beats the champion and no family measured on the test (the baselines
   always are) beats it there.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd

from features.dataset import RetailDataset
from training.evaluation import (
    Comparison,
    EvaluationProtocol,
    K,
    ModelResult,
    RankingTask,
    evaluate,
)
from training.interactions import InteractionWeights, check_rating_scale
from training.recommendation import Recommender
from training.recommender import HybridConfig
from training.recommender_blend import BlendRecommender, crossfit_ndcg, ensemble_weights
from training.recommender_families import (
    BASELINES,
    FAMILIES,
    STOCHASTIC,
    FamilySpec,
    blend_spec,
    build,
    spec_of,
)
from training.tuning import DEFAULT_BUDGET, candidates

Report = Callable[[str], None]

#: Label of the current champion's row in the test table.
CHAMPION_ROW = "champion"

#: Errors that mean "this family cannot be evaluated on this data" (too small, too sparse).
FAMILY_ERRORS: tuple[type[Exception], ...] = (
    ValueError,
    RuntimeError,
    IndexError,
    ZeroDivisionError,
    np.linalg.LinAlgError,
)


@dataclass(frozen=True)
class Promotion:
    """Whether the chosen model may become the champion, and why."""

    allowed: bool
    reason: str


@dataclass(frozen=True)
class RecommenderSelection:
    """What decided the registered recommender: the validation and test tables, the chosen
    spec, the models fitted on the test task (for gain curves) and the promotion verdict."""

    protocol: EvaluationProtocol
    weights: InteractionWeights
    validation: Comparison
    test: Comparison
    chosen: FamilySpec
    models: dict[str, Recommender]
    task: RankingTask
    promotion: Promotion
    skipped: dict[str, str] = field(default_factory=dict)

    def result(self, name: str) -> ModelResult | None:
        return next((r for r in self.test.results if r.model == name), None)

    def markdown(self) -> str:
        return f"Protocol: {self.protocol.describe(self.weights)}.\n\n" + selection_markdown(
            ("the family", self.validation.markdown()),
            ("promotion", self.test.markdown()),
            self.chosen.label(),
            self.skipped,
            self.promotion,
        )


def selection_markdown(
    validation: tuple[str, str],
    test: tuple[str, str],
    chosen: str,
    skipped: Mapping[str, str],
    promotion: Promotion,
) -> str:
    """The tables that decided a selection (``(what it decides, table)`` for the validation
    and the test), the choice, what could not be evaluated and the promotion verdict."""
    lines = [
        f"Validation (chooses {validation[0]}):",
        "",
        validation[1],
        "",
        f"Held-out test (decides {test[0]}):",
        "",
        test[1],
        "",
        f"Chosen by validation: {chosen}.",
    ]
    lines += [f"Not evaluated: {name}: {why}" for name, why in skipped.items()]
    verdict = "may be promoted" if promotion.allowed else "not promoted"
    lines.append(f"Promotion: {verdict}: {promotion.reason}")
    return "\n".join(lines)


def _fit_and_measure(
    spec: FamilySpec, task: RankingTask, seeds: int, name: str, k: int
) -> tuple[ModelResult, Recommender]:
    """Fit ``spec`` on ``task`` once per seed (once when deterministic); the median run."""
    runs: list[tuple[float, ModelResult, Recommender]] = []
    for seed in range(seeds if spec.family in STOCHASTIC else 1):
        model = build(spec, seed)
        started = time.perf_counter()
        model.fit(task.train)
        seconds = time.perf_counter() - started
        warm = evaluate(model, task, k)
        cold = evaluate(model, task, k, cold=True) if task.cold else None
        runs.append((warm.ndcg, ModelResult(name, dict(spec.params), warm, cold, seconds), model))
    ndcgs = tuple(r[0] for r in runs)
    ordered = sorted(runs, key=lambda r: r[0])
    _, result, model = ordered[(len(ordered) - 1) // 2]
    mean_seconds = statistics.fmean(r[1].train_seconds for r in runs)
    return (
        ModelResult(result.model, result.params, result.warm, result.cold, mean_seconds, ndcgs),
        model,
    )


def measure_on_task(spec: FamilySpec, task: RankingTask, seeds: int = 1) -> ModelResult:
    """``spec`` fitted on ``task``'s training part (once per seed when stochastic) and
    measured on its held-out customers: the median run, with every seed's NDCG."""
    return _fit_and_measure(spec, task, seeds, spec.family, K)[0]


def select_recommender(
    data: RetailDataset,
    dataset_name: str,
    *,
    protocol: EvaluationProtocol | None = None,
    weights: InteractionWeights | None = None,
    families: Sequence[str] = FAMILIES,
    base: HybridConfig | None = None,
    tune: bool = False,
    budget: int = DEFAULT_BUDGET,
    test_all: bool = False,
    champion: Recommender | None = None,
    report: Report | None = None,
) -> RecommenderSelection:
    """Choose a family on validation, measure it on the test with the baselines (and the
    champion's recipe), and say whether it may be promoted. See the module docstring.

    ``base`` are the LightFM families' default settings; ``tune`` tries each family's
    variants (``budget`` fits per LightFM family, :mod:`training.tuning`). Raises
    ``ValueError`` when no family can be evaluated on ``data``.
    """
    from training.data import default_weights

    protocol = protocol or EvaluationProtocol()
    check_rating_scale(data.events)
    weights = weights or default_weights(data)
    validation_task, test_task = protocol.tasks(data, weights, dataset_name)
    if not validation_task.warm:
        raise ValueError(
            "too few interactions to evaluate a recommender: no customer has positives left "
            "for validation after the test is held out"
        )
    # only the settings that differ from the defaults (the spec stays short and readable)
    defaults = HybridConfig().to_params()
    base_params = {
        k: v for k, v in (base.to_params() if base is not None else {}).items() if defaults[k] != v
    }
    skipped: dict[str, str] = {}
    best_of_family: dict[str, tuple[FamilySpec, ModelResult]] = {}
    fitted: dict[str, Recommender] = {}
    for family in families:
        if family == "blend":
            continue  # built from the other families' validation models below
        for variant in candidates(family, tune=tune, budget=budget):
            params = (
                {**base_params, **variant} if family in ("lightfm", "hybrid") else dict(variant)
            )
            spec = FamilySpec(family, params)
            try:
                result, model = _fit_and_measure(spec, validation_task, 1, family, protocol.k)
            except FAMILY_ERRORS as exc:
                skipped[family] = f"{type(exc).__name__}: {exc}"
                if report:
                    report(f"{family}: cannot be evaluated on this data ({exc})")
                break
            if report:
                report(f"validation {spec.label()}: NDCG@{protocol.k} {result.warm.ndcg:.4f}")
            if (
                family not in best_of_family
                or result.warm.ndcg > best_of_family[family][1].warm.ndcg
            ):
                best_of_family[family] = (spec, result)
                fitted[family] = model
    if "blend" in families and len(fitted) < 2:
        skipped["blend"] = "fewer than two families could be evaluated to blend"
    elif "blend" in families:
        try:
            blended = _blend_on_validation(best_of_family, fitted, validation_task, protocol.k)
        except FAMILY_ERRORS as exc:
            skipped["blend"] = f"{type(exc).__name__}: {exc}"
        else:
            best_of_family["blend"] = blended
            if report:
                report(
                    f"validation {blended[0].label()}: NDCG@{protocol.k} "
                    f"{blended[1].warm.ndcg:.4f} (weights chosen and judged on different "
                    "halves of the customers)"
                )
    if not best_of_family:
        raise ValueError(
            "no recommender family can be evaluated on this data: "
            + "; ".join(f"{k}: {v}" for k, v in skipped.items())
        )
    validation = Comparison(
        "validation", validation_task.cut, [r for _, r in best_of_family.values()]
    )
    chosen_family = validation.best().model
    chosen = best_of_family[chosen_family][0]

    tested = [f for f in best_of_family if test_all or f == chosen_family or f in BASELINES]
    results: list[ModelResult] = []
    models: dict[str, Recommender] = {}
    for family in tested:
        spec = best_of_family[family][0]
        try:
            result, model = _fit_and_measure(spec, test_task, protocol.seeds, family, protocol.k)
        except FAMILY_ERRORS as exc:
            skipped[family] = f"on the test split: {type(exc).__name__}: {exc}"
            continue
        results.append(result)
        models[family] = model
        if report:
            report(f"test {family}: NDCG@{protocol.k} {result.spread}")
    if champion is not None:
        try:
            result, model = _fit_and_measure(
                spec_of(champion), test_task, protocol.seeds, CHAMPION_ROW, protocol.k
            )
            results.append(result)
            models[CHAMPION_ROW] = model
        except FAMILY_ERRORS as exc:
            skipped[CHAMPION_ROW] = f"its recipe cannot be refitted: {exc}"
    test = Comparison(dataset_name, test_task.cut, results)
    promotion = _promotion(test, chosen_family, champion is not None)
    return RecommenderSelection(
        protocol, weights, validation, test, chosen, models, test_task, promotion, skipped
    )


#: Validation customers whose scores choose the blend's weights (a seeded sample beyond).
BLEND_CUSTOMERS = 5_000
#: Fewer validation customers than this and weights chosen on half of them are noise
#: (13 customers chose a blend that lost to plain LightFM by half on the test): no blend.
BLEND_MIN_CUSTOMERS = 100


def _blend_on_validation(
    best_of_family: Mapping[str, tuple[FamilySpec, ModelResult]],
    fitted: Mapping[str, Recommender],
    task: RankingTask,
    k: int,
) -> tuple[FamilySpec, ModelResult]:
    """The blend of the families' best validation models, weighted by greedy selection on
    (up to :data:`BLEND_CUSTOMERS` of) the validation customers; its NDCG is cross-fitted
    (:func:`~training.recommender_blend.crossfit_ndcg`), the other metrics in-sample."""
    started = time.perf_counter()
    ids = sorted(task.warm)
    if len(ids) > BLEND_CUSTOMERS:
        picked = np.random.default_rng(0).choice(len(ids), BLEND_CUSTOMERS, replace=False)
        ids = [ids[i] for i in np.sort(picked)]
    any_model = next(iter(fitted.values()))
    relevant = np.zeros((len(ids), len(any_model.catalogue)), dtype=bool)
    for row, cid in enumerate(ids):
        cols = any_model.catalogue.get_indexer(pd.Index(sorted(task.warm[cid]), dtype=object))
        relevant[row, cols[cols >= 0]] = True
    keep = np.asarray(relevant.any(axis=1), dtype=bool)
    ids = [c for c, kept in zip(ids, keep.tolist(), strict=True) if kept]
    relevant = relevant[keep]
    if len(ids) < BLEND_MIN_CUSTOMERS:
        raise ValueError(
            f"too few validation customers to weigh a blend ({len(ids)}; "
            f"needs {BLEND_MIN_CUSTOMERS})"
        )
    batch = np.asarray(ids, dtype=object)
    scores = {
        name: model._mask_owned(batch, np.asarray(model.score(ids), dtype=np.float32))
        for name, model in fitted.items()
        if model.catalogue.equals(any_model.catalogue)
    }
    weights = ensemble_weights(scores, relevant, k)
    honest = crossfit_ndcg(scores, relevant, k)
    spec = blend_spec({name: best_of_family[name][0] for name in weights}, weights)
    model = BlendRecommender(fitted, weights, fitted=True).fit(task.train)
    warm = replace(evaluate(model, task, k), ndcg=honest)
    seconds = time.perf_counter() - started
    seconds += sum(best_of_family[name][1].train_seconds for name in weights)
    return spec, ModelResult("blend", dict(spec.params), warm, None, seconds)


def _median_ndcg(result: ModelResult) -> float:
    return statistics.median(result.ndcg_runs or (result.warm.ndcg,))


def _promotion(test: Comparison, chosen: str, has_champion: bool) -> Promotion:
    scores = {r.model: _median_ndcg(r) for r in test.results}
    return promotion_verdict(
        scores, chosen, baselines=BASELINES, has_champion=has_champion, metric="NDCG"
    )


def promotion_verdict(
    scores: Mapping[str, float],
    chosen: str,
    *,
    baselines: Collection[str],
    has_champion: bool,
    metric: str,
) -> Promotion:
    """The gate every model family shares: ``chosen`` may become the champion only when no
    other row of the held-out ``scores`` (higher is better; the baselines are always
    measured) beats it, and it beats the champion's row (:data:`CHAMPION_ROW`, the current
    champion's recipe refitted on the same training part) when there is one.

    A tie with a baseline is not a win: a learned model that does no better than a
    fixed rule (or than "no effect") is not worth its risk, so it is not promoted.

    >>> promotion_verdict({"a": 0.3, "rule": 0.4}, "a", baselines={"rule"},
    ...                   has_champion=False, metric="Qini").reason
    'a (Qini 0.3000) loses to the rule baseline (0.4000) on the held-out test'
    >>> promotion_verdict({"a": 0.0, "no_effect": 0.0}, "a", baselines={"no_effect"},
    ...                   has_champion=False, metric="R-loss gain").reason
    'a (R-loss gain 0.0000) does not beat the no_effect baseline (0.0000) on the held-out test'
    """
    if chosen not in scores:
        return Promotion(False, f"{chosen} could not be measured on the held-out test")
    mine = scores[chosen]
    rivals = {k: v for k, v in scores.items() if k not in (chosen, CHAMPION_ROW)}
    better = {k: v for k, v in rivals.items() if v > mine or (k in baselines and v >= mine)}
    if better:
        best = max(better, key=better.__getitem__)
        kind = "baseline" if best in baselines else "family"
        verb = "loses to" if better[best] > mine else "does not beat"
        return Promotion(
            False,
            f"{chosen} ({metric} {mine:.4f}) {verb} the {best} {kind} "
            f"({better[best]:.4f}) on the held-out test",
        )
    if CHAMPION_ROW not in scores:
        why = "its recipe could not be refitted" if has_champion else "there is no champion"
        return Promotion(
            True,
            f"{chosen} ({metric} {mine:.4f}) is not beaten by any family on the test; {why}",
        )
    theirs = scores[CHAMPION_ROW]
    if mine <= theirs:
        return Promotion(
            False,
            f"{chosen} ({metric} {mine:.4f}) does not beat the champion ({theirs:.4f}) "
            "on the same held-out test",
        )
    return Promotion(
        True,
        f"{chosen} ({metric} {mine:.4f}) beats the champion ({theirs:.4f}) and is not beaten "
        "by any family on the test",
    )
