"""Logistic regression kept as plain arrays: fitted with scikit-learn, scored without it.

:func:`fit_logistic` standardises, fits an L2 logistic regression and folds
the scaler into the coefficients; :func:`calibrate` fits isotonic (or
sigmoid) calibration on a held-out cut. The result, a :class:`LinearScorer`,
scores a handful of rows with a matrix product and an interpolation, which is
what the decision models need per request.

>>> import numpy as np
>>> x = np.array([[0.0], [1.0], [2.0], [3.0]])
>>> scorer = fit_logistic(x, np.array([0, 0, 1, 1]), c=10.0)
>>> bool(scorer.probability(x[:1])[0] < 0.5 < scorer.probability(x[3:])[0])
True
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class LinearScorer:
    """A fitted logistic regression as plain arrays (the scaler folded in), plus calibration.

    ``probability(matrix) = interp(sigmoid(matrix @ coef + intercept), x_steps, y_steps)``.
    """

    coef: np.ndarray
    intercept: float
    x_steps: np.ndarray = field(default_factory=lambda: np.array([0.0, 1.0]))
    y_steps: np.ndarray = field(default_factory=lambda: np.array([0.0, 1.0]))

    def raw(self, matrix: np.ndarray) -> np.ndarray:
        # a row's score depends on that row alone (a BLAS product's rounding depends on
        # how many rows are scored together): a batch scores as one request does
        return self.sigmoid((matrix * self.coef).sum(axis=1) + self.intercept)

    def probability(self, matrix: np.ndarray) -> np.ndarray:
        return self.calibrated((matrix * self.coef).sum(axis=1) + self.intercept)

    @staticmethod
    def sigmoid(z: np.ndarray) -> np.ndarray:
        """The uncalibrated probability of linear scores ``z`` (intercept included)."""
        z = np.clip(z, -35.0, 35.0)
        return 1.0 / (1.0 + np.exp(-z))

    def calibrated(self, z: np.ndarray) -> np.ndarray:
        """The calibrated probability of linear scores ``z`` (intercept included), any shape."""
        return np.clip(np.interp(self.sigmoid(z), self.x_steps, self.y_steps), 0.0, 1.0)


def fit_logistic(
    matrix: np.ndarray,
    y: np.ndarray,
    c: float,
    seed: int = 0,
    column_weights: np.ndarray | None = None,
) -> LinearScorer:
    """Standardise, fit an L2 logistic regression, fold the scaler into the coefficients.

    ``column_weights`` multiply the standardised columns before the fit: a weight
    ``w < 1`` penalises that column's coefficient ``1 / w**2`` times more.
    """
    from sklearn.linear_model import LogisticRegression

    if len(np.unique(y)) < 2:
        raise ValueError(
            f"cannot fit on {len(y)} examples of a single class ({int(y[0]) if len(y) else '-'})"
        )
    mean = matrix.mean(axis=0)
    scale = matrix.std(axis=0)
    scale[scale == 0] = 1.0
    weights = np.ones(matrix.shape[1]) if column_weights is None else column_weights
    scale = scale / weights
    model = LogisticRegression(C=c, max_iter=2000, random_state=seed)
    model.fit((matrix - mean) / scale, y)
    coef = model.coef_[0] / scale
    intercept = float(model.intercept_[0] - (coef * mean).sum())
    return LinearScorer(coef, intercept)


def calibrate(scorer: LinearScorer, matrix: np.ndarray, y: np.ndarray, method: str) -> None:
    """Fit isotonic (or sigmoid) calibration of ``scorer`` on a held-out cut, in place."""
    raw = scorer.raw(matrix)
    if method == "isotonic":
        from sklearn.isotonic import IsotonicRegression

        iso = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip").fit(raw, y)
        scorer.x_steps = np.asarray(iso.X_thresholds_, dtype=float)
        scorer.y_steps = np.asarray(iso.y_thresholds_, dtype=float)
    elif method == "sigmoid":
        from sklearn.linear_model import LogisticRegression

        logit = np.log(np.clip(raw, 1e-9, 1 - 1e-9) / np.clip(1 - raw, 1e-9, 1))
        platt = LogisticRegression(C=1e6).fit(logit[:, None], y)
        grid = np.linspace(1e-6, 1 - 1e-6, 512)
        g_logit = np.log(grid / (1 - grid))
        scorer.x_steps = grid
        scorer.y_steps = platt.predict_proba(g_logit[:, None])[:, 1]
    elif method != "none":
        raise ValueError(f"calibration must be 'isotonic', 'sigmoid' or 'none' (got {method!r})")
