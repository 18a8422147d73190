"""Choose the offer uplift model to register: every learner and the fixed rule on a validation
split, the chosen one on a later held-out test, and whether it may replace the champion.

The offer sends are cut in time into three parts (:func:`training.offers.offer_split`,
training sends whose outcome window reaches a cut are dropped):

1. **validation**: every method of :data:`training.offers.METHODS` (the logistic
   T-learners, the gradient-boosted T-, X-, DR- and proportional learners, and the
   fixed rule) is fitted on the earliest part and measured on the next one; the
   method with the best Qini is chosen (a method the data cannot fit is reported and
   skipped);
2. **test**: the chosen method, every other method when ``test_all``, the two fixed
   rules (promotion sensitivity x value share; value share alone), random targeting and
   the current champion's recipe are fitted on the earliest two parts and measured on the
   latest, in the same run;
3. **promotion** (:func:`training.selection.promotion_verdict`, the recommender's gate):
   the chosen model may become the champion only when no row of the test table beats
   its Qini (the rules and random targeting always are rows) and it beats the
   champion's. When the rule is chosen, the rule is what gets registered: serving then
   keeps the engine's rule-based uplift (:attr:`~training.offers.OfferUpliftModel.is_rule`).

On the simulator the tables also show each model's agreement with the true uplift
(Spearman, true uplift of its top 30 %), for reading only: nothing is chosen on it.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from training.examples import ContactExamples
from training.offers import (
    METHODS,
    RULE_METHOD,
    OfferConfig,
    OfferUpliftModel,
    UpliftEvaluation,
    measure_uplift,
    offer_costs,
    offer_split,
    value_share,
)
from training.selection import (
    CHAMPION_ROW,
    FAMILY_ERRORS,
    Promotion,
    promotion_verdict,
    selection_markdown,
)

Report = Callable[[str], None]

#: Rows of the test table that are baselines, not learners.
BASELINES = (RULE_METHOD, "value_share", "random")


@dataclass(frozen=True)
class OfferSelection:
    """What decided the registered offer model: the validation and test tables, the chosen
    settings and the promotion verdict."""

    validation: UpliftEvaluation
    test: UpliftEvaluation
    chosen: OfferConfig
    promotion: Promotion
    seconds: dict[str, float] = field(default_factory=dict)  # fit time on the test's training
    skipped: dict[str, str] = field(default_factory=dict)

    @property
    def qini(self) -> dict[str, float]:
        return self.test.qini

    @property
    def curves(self) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        return self.test.curves

    def metrics(self) -> dict[str, float]:
        out = {**self.test.metrics(), "promotion_allowed": float(self.promotion.allowed)}
        out.update({f"validation_{k}": v for k, v in self.validation.metrics().items()})
        out.update({f"{k}_train_seconds": v for k, v in self.seconds.items()})
        return out

    def markdown(self) -> str:
        return selection_markdown(
            ("the method, on Qini", self.validation.markdown()),
            ("promotion, on Qini", self.test.markdown()),
            self.chosen.method,
            self.skipped,
            self.promotion,
        )


def _scores(
    configs: dict[str, OfferConfig],
    train: ContactExamples,
    test: ContactExamples,
    offers: pd.DataFrame,
    skipped: dict[str, str],
    report: Report | None,
) -> tuple[dict[str, np.ndarray], ContactExamples, float, dict[str, float]]:
    """Fit each config on ``train``; their uplift on ``test`` (restricted to the channels
    the models know, with offer costs), the reference basket and each fit's seconds."""
    # every model fitted on ``train`` builds the same design: built once here
    reference = OfferUpliftModel(OfferConfig(method=RULE_METHOD)).fit(train, offers)
    test = offer_costs(test, reference)
    train_matrix, test_matrix = reference.design(train), reference.design(test)
    scores: dict[str, np.ndarray] = {}
    seconds: dict[str, float] = {}
    for name, config in configs.items():
        started = time.perf_counter()
        try:
            model = OfferUpliftModel(config).fit(train, offers, train_matrix)
        except FAMILY_ERRORS as exc:
            skipped[name] = f"{type(exc).__name__}: {exc}"
            if report:
                report(f"offers: {name} cannot be fitted on this data ({exc})")
            continue
        seconds[name] = time.perf_counter() - started
        scores[name] = model.uplift_examples(test, test_matrix)
    scores["value_share"] = value_share(test, reference.reference_basket)
    return scores, test, reference.reference_basket, seconds


def select_offers(
    examples: ContactExamples,
    offers: pd.DataFrame,
    *,
    base: OfferConfig | None = None,
    methods: Sequence[str] = METHODS,
    test_fraction: float = 0.2,
    validation_fraction: float = 0.2,
    truth: Callable[[ContactExamples], np.ndarray] | None = None,
    champion: OfferUpliftModel | None = None,
    test_all: bool = True,
    report: Report | None = None,
) -> OfferSelection:
    """Choose a method on validation, measure it on the test with the rules and the
    champion's recipe, and say whether it may be promoted (see the module docstring).

    ``base`` holds the learners' settings (its ``method`` is replaced by each of
    ``methods``); ``truth`` (simulator only) gives the true uplift of held-out sends.
    Raises ``ValueError`` when the history is too short to split or no method fits.
    """
    fractions = {"test_fraction": test_fraction, "validation_fraction": validation_fraction}
    for name, share in fractions.items():
        if not 0.0 < share < 0.5:
            raise ValueError(f"{name} must be in (0, 0.5) (got {share})")
    unknown = set(methods) - set(METHODS)
    if unknown:
        raise ValueError(f"unknown uplift method(s) {sorted(unknown)} (known: {list(METHODS)})")
    base = base or OfferConfig()
    configs = {m: dataclasses.replace(base, method=m) for m in methods}
    test_cut, earlier, test = offer_split(examples, test_fraction)
    validation_cut, train, validation = offer_split(
        earlier, validation_fraction / (1.0 - test_fraction)
    )
    skipped: dict[str, str] = {}
    if report:
        report(
            f"offers: validation on {len(validation):,} sends, {len(configs)} methods "
            f"fitted on {len(train):,}"
        )
    scores, validation, _, _ = _scores(configs, train, validation, offers, skipped, report)
    fitted = [m for m in methods if m in scores]
    if not fitted:
        raise ValueError(
            "no uplift method can be fitted on this data: "
            + "; ".join(f"{k}: {v}" for k, v in skipped.items())
        )
    validation_table = measure_uplift(
        scores,
        validation,
        validation_cut,
        len(train),
        truth(validation) if truth is not None else None,
        split="validation",
    )
    chosen = max(fitted, key=lambda m: validation_table.qini[m])
    if report:
        report(f"offers: chosen by validation Qini: {chosen}")

    tested = {m: configs[m] for m in fitted if test_all or m in (chosen, RULE_METHOD)}
    if champion is not None:
        tested[CHAMPION_ROW] = champion.config
    scores, test, _, seconds = _scores(tested, earlier, test, offers, skipped, report)
    test_table = measure_uplift(
        scores, test, test_cut, len(earlier), truth(test) if truth is not None else None
    )
    promotion = promotion_verdict(
        test_table.qini,
        chosen,
        baselines=BASELINES,
        has_champion=champion is not None,
        metric="Qini",
    )
    return OfferSelection(
        validation_table, test_table, configs[chosen], promotion, seconds, skipped
    )
