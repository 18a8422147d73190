"""Choose the offer uplift model to register: every learner and the fixed rules on a
validation split, the chosen one on a later held-out test, and whether it may replace the
champion.

The offer sends are cut in time into three parts (:func:`training.offers.offer_split`,
training sends whose outcome window reaches a cut are dropped):

1. **validation**: every method of :data:`training.offers.METHODS` (the logistic
   T-learners, the gradient-boosted T-, X-, DR-, proportional and relative-lift
   learners, and the fixed rule) is fitted on the earliest part and measured on the next
   one; the method with the best **R-loss gain** is chosen (a method the data cannot fit
   is reported and skipped);
2. **test**: the chosen method, every other method when ``test_all``, the two fixed
   rules (promotion sensitivity x value share; value share alone), random targeting and
   the current champion's recipe are fitted on the earliest two parts and measured on the
   latest, in the same run;
3. **promotion** (:func:`training.selection.promotion_verdict`, the recommender's gate):
   the chosen model may become the champion only when no baseline beats its R-loss
   gain on the test (the two rules and "no_effect", no targeting) and it beats the
   champion's. The other learners' test rows are shown, not gated on: they were
   compared on validation, and re-choosing among nine on the test would pick whichever
   the test's noise favours. When the rule is chosen, the rule is what gets registered:
   serving then keeps the engine's rule-based uplift
   (:attr:`~training.offers.OfferUpliftModel.is_rule`).

Why the R-loss and not the Qini: the R-loss gain
(:func:`training.uplift_learners.r_loss_gain`, Nie and Wager's R-learner loss with the
randomisation's known propensity and an out-of-fold ``E[y | x]``) estimates how much
closer to the true effect a model's uplift is than no effect at all, in the units the
engine spends (purchase probability). Its penalty on large or noisy estimates is exact,
so it separates a learner that fits noise from one that does not; the Qini ranks
observed outcomes only, and on ~10,000 sends whose uplift is a few tenths of a percent
against a 12-15 % purchase rate it is noise (BENCHMARKS.md). A fixed rule's score has
no units: one scale per rule is fitted on the training part
(:func:`~training.uplift_learners.effect_scale`, at least 0). The tables keep the Qini
and uplift@k for reading.

On the simulator the tables also show each model's agreement with the true uplift
(Spearman, true uplift of its top 30 %, over all sends and among offers with a cost),
for reading only: nothing is chosen on it.
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
    treatment_shares,
    value_share,
)
from training.selection import (
    CHAMPION_ROW,
    FAMILY_ERRORS,
    Promotion,
    promotion_verdict,
    selection_markdown,
)
from training.uplift_learners import BoostingConfig, crossfit_outcome, effect_scale, r_loss_gain

Report = Callable[[str], None]

#: Rows of the test table that are baselines, not learners ("no_effect": no targeting,
#: the R-loss gain's zero).
BASELINES = (RULE_METHOD, "value_share", "random", "no_effect")


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
            ("the method, on the R-loss gain", self.validation.markdown()),
            ("promotion, on the R-loss gain", self.test.markdown()),
            self.chosen.method,
            self.skipped,
            self.promotion,
        )


@dataclass(frozen=True)
class _Scored:
    """Every fitted method's uplift on the evaluated sends, with their R-loss gains."""

    scores: dict[str, np.ndarray]
    test: ContactExamples  # the evaluated sends, on the channels the models know
    r_gain: dict[str, float]
    seconds: dict[str, float]


def _scores(
    configs: dict[str, OfferConfig],
    train: ContactExamples,
    test: ContactExamples,
    offers: pd.DataFrame,
    skipped: dict[str, str],
    report: Report | None,
) -> _Scored:
    """Fit each config on ``train``; their uplift on ``test`` (restricted to the channels
    the models know, with offer costs), each one's R-loss gain there and each fit's
    seconds. The fixed rules' scores become uplifts by one scale each, fitted on ``train``
    (:func:`~training.uplift_learners.effect_scale`); ``m = E[y | x]`` of the R-loss is
    cross-fitted within each part."""
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
    boosting = next(iter(configs.values())).boosting if configs else BoostingConfig()
    fitted, held = _Arms.of(train, train_matrix, boosting), _Arms.of(test, test_matrix, boosting)
    rules = {
        RULE_METHOD: reference.uplift_examples(train),
        "value_share": value_share(offer_costs(train, reference), reference.reference_basket),
    }
    r_gain = {"no_effect": 0.0}
    for name, score in scores.items():
        scale = fitted.scale(rules[name]) if name in rules else 1.0
        r_gain[name] = held.gain(scale * score)
    return _Scored(scores, test, r_gain, seconds)


@dataclass(frozen=True)
class _Arms:
    """Randomised sends as the R-loss sees them: treated flags, outcomes, known
    propensities and the cross-fitted ``m = E[y | x]``."""

    treated: np.ndarray
    y: np.ndarray
    e: np.ndarray
    m: np.ndarray

    @classmethod
    def of(cls, examples: ContactExamples, matrix: np.ndarray, boosting: BoostingConfig) -> _Arms:
        y = examples.rows["purchased"].to_numpy(dtype=float)
        return cls(
            examples.rows["treated"].to_numpy(dtype=bool),
            y,
            treatment_shares(examples.rows),
            crossfit_outcome(boosting, matrix, y),
        )

    def gain(self, effect: np.ndarray) -> float:
        return r_loss_gain(effect, self.treated, self.y, self.e, self.m)

    def scale(self, score: np.ndarray) -> float:
        return effect_scale(score, self.treated, self.y, self.e, self.m)


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
    scored = _scores(configs, train, validation, offers, skipped, report)
    fitted = [m for m in methods if m in scored.scores]
    if not fitted:
        raise ValueError(
            "no uplift method can be fitted on this data: "
            + "; ".join(f"{k}: {v}" for k, v in skipped.items())
        )
    validation_table = measure_uplift(
        scored.scores,
        scored.test,
        validation_cut,
        len(train),
        truth(scored.test) if truth is not None else None,
        split="validation",
        r_gain=scored.r_gain,
    )
    chosen = max(fitted, key=lambda m: validation_table.r_gain[m])
    if report:
        report(f"offers: chosen by validation R-loss gain: {chosen}")

    tested = {m: configs[m] for m in fitted if test_all or m in (chosen, RULE_METHOD)}
    if champion is not None:
        tested[CHAMPION_ROW] = champion.config
    scored = _scores(tested, earlier, test, offers, skipped, report)
    test_table = measure_uplift(
        scored.scores,
        scored.test,
        test_cut,
        len(earlier),
        truth(scored.test) if truth is not None else None,
        r_gain=scored.r_gain,
    )
    # the gate: the chosen method against the baselines and the champion; the other
    # learners were compared on validation (re-choosing among them on the test would pick
    # whichever the test's noise favours), their test rows are for reading
    gated = (chosen, *BASELINES, CHAMPION_ROW)
    promotion = promotion_verdict(
        {name: gain for name, gain in test_table.r_gain.items() if name in gated},
        chosen,
        baselines=BASELINES,
        has_champion=champion is not None,
        metric="R-loss gain",
    )
    promotion = Promotion(
        promotion.allowed,
        f"{promotion.reason} (gated on the fixed rules, no_effect and the champion; the "
        "other learners were compared on validation, their test rows are for reading)",
    )
    return OfferSelection(
        validation_table, test_table, configs[chosen], promotion, scored.seconds, skipped
    )
