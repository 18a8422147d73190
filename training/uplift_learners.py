"""Meta-learners of a treatment effect on randomised data, with gradient-boosted base models.

Each learner estimates the conditional average treatment effect
``tau(x) = E[y | x, t=1] - E[y | x, t=0]`` from rows ``x`` (a design matrix),
a treatment flag ``t``, a binary outcome ``y`` and each row's known
probability of treatment ``e`` (the randomisation's share; the offers' history
assigns offers at random within a send group, so ``e`` is known by design and
no propensity model is fitted):

- :class:`TLearner`: one outcome model per arm; ``tau = mu1(x) - mu0(x)``
  (Künzel et al. 2019, "T-learner").
- :class:`XLearner`: the T-learner's arms impute each row's individual effect
  (``y - mu0(x)`` for the treated, ``mu1(x) - y`` for controls); one regression
  per arm on those imputed effects, blended by the propensity
  (Künzel et al. 2019).
- :class:`DRLearner`: the doubly-robust (AIPW) pseudo-outcome
  ``mu1 - mu0 + t (y - mu1) / e - (1 - t) (y - mu0) / (1 - e)`` with the
  outcome models cross-fitted over folds, regressed on ``x`` (Kennedy 2020).

Base models are LightGBM (histogram gradient boosting: fast on tens of
thousands of rows, handles unscaled and interacting features). Uplifts on
retail data are a few tenths of a percent against a purchase rate of ~15 %, so
every base model is kept small and strongly regularised (few leaves, large
leaves, shrinkage): an unregularised tree fits the organic noise.

>>> rng = np.random.default_rng(0)
>>> x = rng.random((4000, 2)); t = rng.random(4000) < 0.5
>>> y = (rng.random(4000) < 0.1 + 0.3 * t * (x[:, 0] > 0.5)).astype(float)
>>> tau = TLearner(BoostingConfig(n_estimators=40)).fit(x, t, y, np.full(4000, 0.5))
>>> bool(tau.effect(np.array([[0.9, 0.5]]))[0] > tau.effect(np.array([[0.1, 0.5]]))[0])
True
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

#: Propensities are clipped to this range in inverse weights.
PROPENSITY_CLIP = (0.02, 0.98)
#: Upper bound of the proportional learner's relative lift per unit of intensity.
MAX_RELATIVE_LIFT = 20.0


@dataclass(frozen=True)
class BoostingConfig:
    """Settings of the LightGBM base models (one set for every stage)."""

    n_estimators: int = 150
    learning_rate: float = 0.05
    num_leaves: int = 8
    min_child_samples: int = 200
    subsample: float = 0.8
    colsample_bytree: float = 0.8
    reg_lambda: float = 5.0
    folds: int = 2  # cross-fitting folds of the DR-learner's outcome models
    seed: int = 0

    def __post_init__(self) -> None:
        if self.n_estimators < 1:
            raise ValueError(f"n_estimators must be >= 1 (got {self.n_estimators})")
        if not 0.0 < self.learning_rate <= 1.0:
            raise ValueError(f"learning_rate must be in (0, 1] (got {self.learning_rate})")
        if self.num_leaves < 2:
            raise ValueError(f"num_leaves must be >= 2 (got {self.num_leaves})")
        if self.min_child_samples < 1:
            raise ValueError(f"min_child_samples must be >= 1 (got {self.min_child_samples})")
        if self.folds < 2:
            raise ValueError(f"folds must be >= 2 (got {self.folds})")

    def to_params(self) -> dict[str, object]:
        return asdict(self)

    def _common(self) -> dict[str, Any]:
        return {
            "n_estimators": self.n_estimators,
            "learning_rate": self.learning_rate,
            "num_leaves": self.num_leaves,
            "min_child_samples": self.min_child_samples,
            "subsample": self.subsample,
            "subsample_freq": 1,
            "colsample_bytree": self.colsample_bytree,
            "reg_lambda": self.reg_lambda,
            "random_state": self.seed,
            "n_jobs": 1,
            "verbose": -1,
        }

    def classifier(self) -> Any:
        from lightgbm import LGBMClassifier

        return LGBMClassifier(**self._common())

    def regressor(self) -> Any:
        from lightgbm import LGBMRegressor

        return LGBMRegressor(**self._common())


def _check(x: np.ndarray, t: np.ndarray, y: np.ndarray, e: np.ndarray) -> np.ndarray:
    """Validated treatment flags as bool (raises ``ValueError`` on misshapen inputs)."""
    n = len(x)
    if not (len(t) == len(y) == len(e) == n):
        raise ValueError(
            f"x, t, y and e must have one entry per row (got {n}, {len(t)}, {len(y)}, {len(e)})"
        )
    treated = np.asarray(t, dtype=bool)
    if treated.all() or not treated.any():
        raise ValueError("uplift learners need both treated rows and controls")
    if np.any((e <= 0) | (e >= 1)):
        raise ValueError("propensities e must be strictly between 0 and 1")
    return treated


def _probability(model: Any, x: np.ndarray) -> np.ndarray:
    """P(y=1) from a fitted LightGBM classifier (its booster directly: the scikit-learn
    wrapper's input checks cost more than the trees on a customer's few rows)."""
    return _predict(model, x)


def _predict(model: Any, x: np.ndarray) -> np.ndarray:
    """A fitted LightGBM model's prediction (a binary classifier's: P(y=1)), shape ``(n,)``."""
    return np.asarray(model.booster_.predict(x, num_threads=1), dtype=float)


def _crossfit_baseline(
    config: BoostingConfig,
    x: np.ndarray,
    treated: np.ndarray,
    y: np.ndarray,
    intensity: np.ndarray | None = None,
) -> np.ndarray:
    """Each row's P(y=1 | x, untreated) from a LightGBM model fitted on the other folds
    (``config.folds`` random folds): a row's own outcome never enters its baseline, so
    the arms' difference is not fitted into it. Fitted on the controls only, or, given
    each row's treatment ``intensity`` (0 for controls), on every row with that intensity
    as a column and predicted at 0 (twice the rows; the trees may still split off the
    treatment's effect)."""
    fold = np.random.default_rng(config.seed).integers(0, config.folds, len(x))
    mu = np.empty(len(x))
    for k in range(config.folds):
        out = fold == k
        if intensity is None:
            train = ~out & ~treated
            mu[out] = _probability(config.classifier().fit(x[train], y[train]), x[out])
        else:
            model = config.classifier().fit(_with_intensity(x[~out], intensity[~out]), y[~out])
            mu[out] = _probability(model, _with_intensity(x[out], np.zeros(int(out.sum()))))
    return mu


def crossfit_outcome(config: BoostingConfig, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Each row's E[y | x] (treated or not) from LightGBM models fitted on the other folds:
    the R-learner's ``m(x)``, for measuring effects against (:func:`r_loss_gain`)."""
    return _crossfit_baseline(config, x, np.zeros(len(x), dtype=bool), np.asarray(y, float))


def r_loss_gain(
    effect: np.ndarray, treated: np.ndarray, y: np.ndarray, e: np.ndarray, m: np.ndarray
) -> float:
    """How much ``effect`` lowers the R-loss (Nie and Wager 2021)
    ``sum((y - m - (t - e) tau)^2)`` below a zero effect's, on randomised rows with known
    propensity ``e`` and out-of-fold ``m = E[y | x]``: ``sum(2 r w tau - w^2 tau^2)``
    with ``r = y - m`` and ``w = t - e``. Its expectation is ``sum(w^2 (tau_true^2 -
    (tau - tau_true)^2))``: positive when ``effect`` is closer to the true effect than
    zero is. The ``w^2 tau^2`` part is exact (it needs no outcome), so an estimate that
    is noisy or too large is penalised without noise, unlike a ranking metric (Qini)."""
    r = np.asarray(y, dtype=float) - m
    w = np.asarray(treated, dtype=float) - e
    tau = np.asarray(effect, dtype=float)
    return float(np.sum(2.0 * r * w * tau - (w * tau) ** 2))


def effect_scale(
    score: np.ndarray, treated: np.ndarray, y: np.ndarray, e: np.ndarray, m: np.ndarray
) -> float:
    """The factor ``a >= 0`` that makes ``a * score`` the R-loss's best effect (one-parameter
    R-learner): turns a fixed rule's score into an uplift in outcome units."""
    w = np.asarray(treated, dtype=float) - e
    ws = w * np.asarray(score, dtype=float)
    denominator = float(np.sum(ws**2))
    if denominator <= 0:
        return 0.0
    return max(0.0, float(np.sum((np.asarray(y, dtype=float) - m) * ws)) / denominator)


def _with_intensity(x: np.ndarray, intensity: np.ndarray) -> np.ndarray:
    return np.hstack([x, intensity[:, None]])


class UpliftLearner(ABC):
    """A fitted estimate of the treatment effect ``tau(x)``."""

    #: Short name used in tables and as the ``method`` parameter.
    name: str

    def __init__(self, config: BoostingConfig | None = None) -> None:
        self.config = config or BoostingConfig()

    @abstractmethod
    def fit(self, x: np.ndarray, t: np.ndarray, y: np.ndarray, e: np.ndarray) -> UpliftLearner:
        """Fit on rows ``x``, treatment flags ``t``, binary outcomes ``y`` and the known
        probability of treatment ``e`` of each row."""

    @abstractmethod
    def effect(self, x: np.ndarray) -> np.ndarray:
        """Estimated uplift of each row, shape ``(n,)``."""

    def outcome(self, x: np.ndarray) -> np.ndarray:
        """P(y=1 | x, treated), shape ``(n,)`` (from the treated arm's outcome model)."""
        return _probability(self._treated_model(), x)

    def outcome_and_effect(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(outcome(x), effect(x))`` (one pass where the learner can share work)."""
        return self.outcome(x), self.effect(x)

    @abstractmethod
    def _treated_model(self) -> Any: ...


class _Arms:
    """Outcome models of the two arms, ``mu0`` and ``mu1``."""

    def __init__(self, config: BoostingConfig) -> None:
        self.config = config
        self.mu0: Any = None
        self.mu1: Any = None

    def fit(self, x: np.ndarray, treated: np.ndarray, y: np.ndarray) -> _Arms:
        self.mu1 = self.config.classifier().fit(x[treated], y[treated])
        self.mu0 = self.config.classifier().fit(x[~treated], y[~treated])
        return self

    def predict(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        if self.mu0 is None or self.mu1 is None:
            raise RuntimeError("the uplift learner is not fitted; call fit() first")
        return _probability(self.mu0, x), _probability(self.mu1, x)


class TLearner(UpliftLearner):
    """One gradient-boosted outcome model per arm; the uplift is their difference."""

    name = "t_learner_lgbm"

    def __init__(self, config: BoostingConfig | None = None) -> None:
        super().__init__(config)
        self.arms = _Arms(self.config)

    def fit(self, x: np.ndarray, t: np.ndarray, y: np.ndarray, e: np.ndarray) -> TLearner:
        self.arms.fit(x, _check(x, t, y, e), np.asarray(y, dtype=int))
        return self

    def effect(self, x: np.ndarray) -> np.ndarray:
        p0, p1 = self.arms.predict(x)
        return p1 - p0

    def _treated_model(self) -> Any:
        return self.arms.mu1


class XLearner(UpliftLearner):
    """The T-learner's arms impute individual effects; one regression per arm on them,
    blended as ``e(x) tau0(x) + (1 - e(x)) tau1(x)`` with the training rows' mean
    propensity (the offers' randomisation does not depend on ``x``)."""

    name = "x_learner_lgbm"

    def __init__(self, config: BoostingConfig | None = None) -> None:
        super().__init__(config)
        self.arms = _Arms(self.config)
        self.tau0: Any = None
        self.tau1: Any = None
        self.share = 0.5

    def fit(self, x: np.ndarray, t: np.ndarray, y: np.ndarray, e: np.ndarray) -> XLearner:
        treated = _check(x, t, y, e)
        y = np.asarray(y, dtype=float)
        self.arms.fit(x, treated, y.astype(int))
        p0, p1 = self.arms.predict(x)
        self.tau1 = self.config.regressor().fit(x[treated], y[treated] - p0[treated])
        self.tau0 = self.config.regressor().fit(x[~treated], p1[~treated] - y[~treated])
        self.share = float(np.mean(e))
        return self

    def effect(self, x: np.ndarray) -> np.ndarray:
        if self.tau0 is None or self.tau1 is None:
            raise RuntimeError("the uplift learner is not fitted; call fit() first")
        tau0, tau1 = _predict(self.tau0, x), _predict(self.tau1, x)
        return self.share * tau0 + (1.0 - self.share) * tau1

    def _treated_model(self) -> Any:
        return self.arms.mu1


class DRLearner(UpliftLearner):
    """The doubly-robust pseudo-outcome (outcome models cross-fitted over
    ``config.folds`` folds, the known propensity) regressed on ``x``."""

    name = "dr_learner_lgbm"

    def __init__(self, config: BoostingConfig | None = None) -> None:
        super().__init__(config)
        self.tau: Any = None
        self.arms = _Arms(self.config)

    def fit(self, x: np.ndarray, t: np.ndarray, y: np.ndarray, e: np.ndarray) -> DRLearner:
        treated = _check(x, t, y, e)
        y = np.asarray(y, dtype=float)
        e = np.clip(np.asarray(e, dtype=float), *PROPENSITY_CLIP)
        rng = np.random.default_rng(self.config.seed)
        fold = rng.integers(0, self.config.folds, len(x))
        p0, p1 = np.empty(len(x)), np.empty(len(x))
        for k in range(self.config.folds):
            out = fold == k
            arms = _Arms(self.config).fit(x[~out], treated[~out], y[~out].astype(int))
            p0[out], p1[out] = arms.predict(x[out])
        pseudo = (
            p1
            - p0
            + np.where(treated, (y - p1) / e, 0.0)
            - np.where(treated, 0.0, (y - p0) / (1.0 - e))
        )
        self.tau = self.config.regressor().fit(x, pseudo)
        self.arms.fit(x, treated, y.astype(int))  # for P(y | x, treated)
        return self

    def effect(self, x: np.ndarray) -> np.ndarray:
        if self.tau is None:
            raise RuntimeError("the uplift learner is not fitted; call fit() first")
        return _predict(self.tau, x)

    def _treated_model(self) -> Any:
        return self.arms.mu1


class ProportionalLearner(UpliftLearner):
    """A relative (proportional) effect: ``P(y | x, t) = mu0(x) (1 + t kappa s)``.

    ``mu0`` is a gradient-boosted model of the outcome without treatment (fitted on the
    controls), ``s`` the treatment's intensity (for offers: its value as a share of the
    customer's basket, column ``intensity_column`` of ``x``) and ``kappa >= 0`` the
    relative lift per unit of intensity, fitted by maximum likelihood on every row with
    ``mu0`` held fixed (cross-fitted, so the controls' own noise does not enter it).
    The uplift is ``mu0(x) kappa s``: who would buy anyway is learned from the whole
    history (a strong signal); only one number is learned from the noisy difference
    between the arms. This is the "baseline risk x relative effect" model of clinical
    trials; it assumes the offer multiplies the purchase probability rather than adds
    to it, so its ranking is wrong where that assumption is.
    """

    name = "proportional_lgbm"

    def __init__(self, intensity_column: int, config: BoostingConfig | None = None) -> None:
        super().__init__(config)
        self.intensity_column = intensity_column
        self.mu0: Any = None
        self.kappa = 0.0

    def fit(
        self, x: np.ndarray, t: np.ndarray, y: np.ndarray, e: np.ndarray
    ) -> ProportionalLearner:
        from scipy.optimize import minimize_scalar

        treated = _check(x, t, y, e)
        y = np.asarray(y, dtype=float)
        mu = _crossfit_baseline(self.config, x, treated, y)
        s = np.where(treated, np.maximum(x[:, self.intensity_column], 0.0), 0.0)

        def loss(kappa: float) -> float:
            p = np.clip(mu * (1.0 + kappa * s), 1e-9, 1 - 1e-9)
            return -float(np.sum(y * np.log(p) + (1.0 - y) * np.log1p(-p)))

        best = minimize_scalar(loss, bounds=(0.0, MAX_RELATIVE_LIFT), method="bounded")
        self.kappa = float(best.x)
        self.mu0 = self.config.classifier().fit(x[~treated], y[~treated])
        return self

    def baseline(self, x: np.ndarray) -> np.ndarray:
        if self.mu0 is None:
            raise RuntimeError("the uplift learner is not fitted; call fit() first")
        return _probability(self.mu0, x)

    def effect(self, x: np.ndarray) -> np.ndarray:
        return self.baseline(x) * self.kappa * np.maximum(x[:, self.intensity_column], 0.0)

    def outcome(self, x: np.ndarray) -> np.ndarray:
        return self.outcome_and_effect(x)[0]

    def outcome_and_effect(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        base = self.baseline(x)
        effect = base * self.kappa * np.maximum(x[:, self.intensity_column], 0.0)
        return np.clip(base + effect, 0.0, 1.0), effect

    def _treated_model(self) -> Any:
        return self.mu0


#: Penalties tried for the relative-lift modifiers (on standardised columns), chosen by
#: cross-validated likelihood inside the training data.
LIFT_PENALTIES = (0.3, 3.0, 30.0, 300.0)
#: Bound of the relative-lift learner's linear predictor (``exp`` of it stays finite).
_MAX_LOG_LIFT = 30.0
#: Intensities below this are taken at this value inside ``log s``.
_MIN_INTENSITY = 1e-3


def _lift_loglik(
    coef: np.ndarray, z: np.ndarray, mu: np.ndarray, s: np.ndarray, y: np.ndarray
) -> tuple[float, np.ndarray]:
    """Log-likelihood of treated rows under ``P = mu (1 + s exp(z . coef))`` and its
    gradient in ``coef`` (zero where ``P`` is clipped into (0, 1))."""
    lift = s * np.exp(np.clip(z @ coef, -_MAX_LOG_LIFT, _MAX_LOG_LIFT))
    raw = mu * (1.0 + lift)
    p = np.clip(raw, 1e-9, 1.0 - 1e-6)
    loglik = float(np.sum(y * np.log(p) + (1.0 - y) * np.log1p(-p)))
    slope = np.where(raw == p, mu * lift, 0.0) * (y / p - (1.0 - y) / (1.0 - p))
    return loglik, z.T @ slope


def _lift_mle(
    z: np.ndarray, mu: np.ndarray, s: np.ndarray, y: np.ndarray, penalty: float
) -> np.ndarray:
    """Penalised maximum-likelihood coefficients of the relative lift (the intercept,
    column 0, is not penalised), from no modification (``r = 1``)."""
    from scipy.optimize import minimize

    shrink = np.r_[0.0, np.ones(z.shape[1] - 1)] * penalty

    def objective(coef: np.ndarray) -> tuple[float, np.ndarray]:
        loglik, grad = _lift_loglik(coef, z, mu, s, y)
        return -loglik + float(np.sum(shrink * coef**2)), -grad + 2.0 * shrink * coef

    return np.asarray(minimize(objective, np.zeros(z.shape[1]), jac=True, method="L-BFGS-B").x)


class RelativeLiftLearner(UpliftLearner):
    """A relative effect that varies with the send: ``P(y | x, t) = mu0(x) (1 + t s r(x))``
    with ``r(x) = exp(b0 + b . z(x))``.

    ``mu0`` is the gradient-boosted outcome without treatment, fitted on every row with
    the treatment's intensity as a column and predicted at 0 (who buys anyway is learned
    from the whole history, treated rows included: the offer moves few of them), ``s``
    the treatment's intensity (column ``intensity_column``) and ``z`` the standardised
    effect-modifier columns ``modifier_columns`` of ``x`` plus ``log s`` (so the lift may
    grow faster or slower than the intensity). ``b0, b`` are fitted by maximum likelihood
    with ``mu0`` cross-fitted and held fixed, under an L2 penalty on ``b`` (shrinking
    towards :class:`ProportionalLearner`'s single relative lift) whose strength is chosen
    among :data:`LIFT_PENALTIES` by the out-of-fold likelihood of the treated rows
    (``config.folds`` folds of the training data; nothing held out later is looked at).
    Given ``mu0``, the controls' likelihood does not depend on ``b`` and the
    randomisation makes ``t`` independent of ``x``, so the treated rows identify the
    lift. The uplift is ``mu0(x) s r(x)``: a few coefficients learned from the noisy
    difference between the arms, pooled across offers through ``s`` and the modifiers
    (for offers: channel, offer kind, open rate, where and how an offer is seen).
    """

    name = "relative_lift_lgbm"

    def __init__(
        self,
        intensity_column: int,
        modifier_columns: Sequence[int] | np.ndarray,
        config: BoostingConfig | None = None,
    ) -> None:
        super().__init__(config)
        self.intensity_column = intensity_column
        self.modifier_columns = np.asarray(modifier_columns, dtype=np.intp)
        self.mu0: Any = None
        self.coef = np.zeros(0)
        self.penalty = 0.0
        self._centre = np.zeros(0)
        self._scale = np.ones(0)

    def _raw_modifiers(self, x: np.ndarray) -> np.ndarray:
        s = np.maximum(x[:, self.intensity_column], _MIN_INTENSITY)
        return np.hstack([x[:, self.modifier_columns], np.log(s)[:, None]])

    def _modifiers(self, x: np.ndarray) -> np.ndarray:
        z = (self._raw_modifiers(x) - self._centre) / self._scale
        return np.hstack([np.ones((len(x), 1)), z])

    def fit(
        self, x: np.ndarray, t: np.ndarray, y: np.ndarray, e: np.ndarray
    ) -> RelativeLiftLearner:
        treated = _check(x, t, y, e)
        y = np.asarray(y, dtype=float)
        s = np.maximum(x[:, self.intensity_column], 0.0)
        lifted = treated & (s > 0)
        if lifted.sum() < 2 * self.config.folds:
            raise ValueError(
                "the relative-lift learner needs treated rows with a positive intensity "
                f"(column {self.intensity_column}); got {int(lifted.sum())}"
            )
        given = np.where(treated, s, 0.0)
        mu = _crossfit_baseline(self.config, x, treated, y, given)[lifted]
        raw = self._raw_modifiers(x)
        self._centre = raw.mean(axis=0)
        spread = raw.std(axis=0)
        self._scale = np.where(spread > 1e-9, spread, 1.0)
        z, s, yl = self._modifiers(x)[lifted], s[lifted], y[lifted]
        rng = np.random.default_rng(self.config.seed + 1)
        fold = rng.integers(0, self.config.folds, len(yl))

        def held_out(penalty: float) -> float:
            total = 0.0
            for k in range(self.config.folds):
                out = fold == k
                coef = _lift_mle(z[~out], mu[~out], s[~out], yl[~out], penalty)
                total += _lift_loglik(coef, z[out], mu[out], s[out], yl[out])[0]
            return total

        self.penalty = max(LIFT_PENALTIES, key=held_out)
        self.coef = _lift_mle(z, mu, s, yl, self.penalty)
        self.mu0 = self.config.classifier().fit(_with_intensity(x, given), y)
        return self

    def baseline(self, x: np.ndarray) -> np.ndarray:
        if self.mu0 is None:
            raise RuntimeError("the uplift learner is not fitted; call fit() first")
        return _probability(self.mu0, _with_intensity(x, np.zeros(len(x))))

    def relative_lift(self, x: np.ndarray) -> np.ndarray:
        """``s r(x)``: the treatment's relative lift of each row's purchase probability."""
        if self.mu0 is None:
            raise RuntimeError("the uplift learner is not fitted; call fit() first")
        log_lift = np.clip(self._modifiers(x) @ self.coef, -_MAX_LOG_LIFT, _MAX_LOG_LIFT)
        return np.maximum(x[:, self.intensity_column], 0.0) * np.exp(log_lift)

    def effect(self, x: np.ndarray) -> np.ndarray:
        return self.outcome_and_effect(x)[1]

    def outcome(self, x: np.ndarray) -> np.ndarray:
        return self.outcome_and_effect(x)[0]

    def outcome_and_effect(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        base = self.baseline(x)
        effect = base * self.relative_lift(x)
        return np.clip(base + effect, 0.0, 1.0), effect

    def _treated_model(self) -> Any:
        return self.mu0


#: The gradient-boosted meta-learners whose only input is the design matrix, by name.
LEARNERS: dict[str, type[UpliftLearner]] = {
    cls.name: cls for cls in (TLearner, XLearner, DRLearner)
}
