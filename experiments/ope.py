"""Off-policy evaluation: a candidate policy's value from logged decisions.

Logged bandit data holds, per decision ``i`` (a *round*), the action the
logging policy took ``a_i``, the probability it had of taking it
``pscore_i = pi_b(a_i | x_i)`` and the reward that followed ``r_i``. The
candidate (evaluation) policy gives, for the same contexts, a probability to
every action, ``action_dist[i, a] = pi_e(a | x_i)``. Four estimators of the
candidate's value ``V(pi_e) = E_x[sum_a pi_e(a|x) q(x, a)]`` follow
Saito et al.'s Open Bandit Pipeline (st-tech/zr-obp, whose names they keep):

* :class:`InverseProbabilityWeighting` (IPS): the mean of ``w_i r_i`` with
  ``w_i = pi_e(a_i|x_i) / pi_b(a_i|x_i)``; unbiased when every action the
  candidate may take had a positive logging probability, but high variance
  when weights are large;
* :class:`SelfNormalizedInverseProbabilityWeighting` (SNIPS): ``sum w r / sum w``;
  slightly biased, far less variable, and insensitive to a constant shift of
  the rewards;
* :class:`DoublyRobust` (DR): a reward model's prediction ``q_hat`` for the
  candidate's actions plus the weighted residual of the logged one; unbiased
  when either the propensities or the reward model are right, and the least
  variable when the model is good. :func:`cross_fitted_rewards` fits the model
  on other folds than the rows it predicts (cross-fitting), so a row's own
  reward never leaks into its prediction.
* :class:`DirectMethod` (DM): the reward model's value of the candidate alone,
  ``mean_i sum_a pi_e(a|x_i) q_hat(x_i, a)``; no weights, so the least variable,
  but biased as much as the model is wrong. Its interval reflects the spread over
  rounds only, not the model's own error: read it beside DR's.

Each estimate comes with a standard error, a 95 % interval (normal
approximation, or percentile bootstrap over rounds) and two diagnostics of
overlap: the effective sample size ``(sum w)^2 / sum w^2`` and the largest
weight. A mean weight far from 1 means the candidate takes actions the
logger (almost) never took, or the propensities are wrong.

obp itself is not a dependency: it requires PyTorch (and, with it, CUDA
wheels of several GB) for four estimators that take ~40 lines of numpy here.

>>> import numpy as np
>>> reward = np.array([1.0, 0.0, 1.0, 0.0])
>>> action = np.array([0, 1, 0, 1])
>>> pscore = np.full(4, 0.5)
>>> always_0 = np.array([[1.0, 0.0]] * 4)
>>> estimate = InverseProbabilityWeighting().estimate(reward, action, pscore, always_0)
>>> estimate.estimate, estimate.effective_sample_size, estimate.max_weight
(1.0, 2.0, 2.0)
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import numpy as np
import pandas as pd

IntervalMethod = Literal["normal", "bootstrap"]

#: Two-sided standard normal quantile of a 95 % interval.
_Z95 = 1.959963984540054


@dataclass(frozen=True)
class PolicyValueEstimate:
    """One estimator's estimate of a candidate policy's value per round.

    ``ci_low``/``ci_high`` bound the ``1 - alpha`` interval (``interval`` says
    how it was computed); ``effective_sample_size`` and ``max_weight``
    describe the importance weights ``pi_e(a_i|x_i) / pi_b(a_i|x_i)``.
    """

    estimator: str
    estimate: float
    std_error: float
    ci_low: float
    ci_high: float
    alpha: float
    interval: IntervalMethod
    n_rounds: int
    effective_sample_size: float
    max_weight: float
    mean_weight: float

    def contains(self, value: float) -> bool:
        """Whether ``value`` lies within the interval."""
        return self.ci_low <= value <= self.ci_high

    def as_dict(self) -> dict[str, Any]:
        return {
            "estimator": self.estimator,
            "estimate": self.estimate,
            "std_error": self.std_error,
            "ci_low": self.ci_low,
            "ci_high": self.ci_high,
            "n_rounds": self.n_rounds,
            "effective_sample_size": self.effective_sample_size,
            "max_weight": self.max_weight,
            "mean_weight": self.mean_weight,
        }


def check_bandit_feedback(reward: np.ndarray, action: np.ndarray, pscore: np.ndarray) -> None:
    """Raise ``ValueError`` naming the array, and the first offending row, when logs are bad.

    ``reward`` (finite), ``action`` (integers) and ``pscore`` (in ``(0, 1]``) are
    1-dimensional arrays of the same length, one entry per round.
    """
    arrays = {"reward": reward, "action": action, "pscore": pscore}
    for name, array in arrays.items():
        if not isinstance(array, np.ndarray):
            raise ValueError(f"`{name}` must be a numpy array, got {type(array).__name__}")
        if array.ndim != 1:
            raise ValueError(f"`{name}` must be 1-dimensional, got shape {array.shape}")
    _same_length({name: a.shape[0] for name, a in arrays.items()})
    if reward.shape[0] == 0:
        raise ValueError("no rounds: `reward` is empty")
    _first_bad(~np.isfinite(reward), "`reward` must be finite", reward)
    if not np.issubdtype(action.dtype, np.integer):
        raise ValueError(f"`action` elements must be integers, got dtype {action.dtype}")
    _first_bad(~((pscore > 0) & (pscore <= 1)), "`pscore` must be in (0, 1]", pscore)


def _same_length(sizes: dict[str, int]) -> None:
    if len(set(sizes.values())) > 1:
        names = " == ".join(f"`{n}.shape[0]`" for n in sizes)
        found = ", ".join(f"{n}={s}" for n, s in sizes.items())
        raise ValueError(f"Expected {names}, but found {found}")


def check_ope_inputs(
    reward: np.ndarray,
    action: np.ndarray,
    pscore: np.ndarray,
    action_dist: np.ndarray | None = None,
    evaluation_pscore: np.ndarray | None = None,
    estimated_rewards: np.ndarray | None = None,
) -> None:
    """Raise ``ValueError`` naming the array, and the first offending row, when inputs are bad.

    Parameters
    ----------
    reward, action, pscore
        The logged rounds: see :func:`check_bandit_feedback`.
    action_dist
        Candidate's action probabilities, shape ``(n_rounds, n_actions)``, rows summing to 1.
    evaluation_pscore
        Candidate's probability of the logged action, shape ``(n_rounds,)``, in ``[0, 1]``
        (instead of ``action_dist``, for IPS and SNIPS).
    estimated_rewards
        Reward model predictions, shape ``(n_rounds, n_actions)`` like ``action_dist``.

    >>> import numpy as np
    >>> check_ope_inputs(np.zeros(2), np.array([0, 1]), np.array([0.5, 0.0]),
    ...                  np.array([[1.0, 0.0], [0.5, 0.5]]))
    Traceback (most recent call last):
    ...
    ValueError: `pscore` must be in (0, 1]; row 1: np.float64(0.0)
    """
    check_bandit_feedback(reward, action, pscore)
    if action_dist is None and evaluation_pscore is None:
        raise ValueError("give `action_dist` or `evaluation_pscore`")
    sizes = {"reward": reward.shape[0]}
    if action_dist is not None:
        if not isinstance(action_dist, np.ndarray) or action_dist.ndim != 2:
            shape = getattr(action_dist, "shape", None)
            raise ValueError(
                f"`action_dist` must be a 2-dimensional array (n_rounds, n_actions), got {shape}"
            )
        sizes["action_dist"] = action_dist.shape[0]
    if evaluation_pscore is not None:
        if not isinstance(evaluation_pscore, np.ndarray) or evaluation_pscore.ndim != 1:
            raise ValueError("`evaluation_pscore` must be a 1-dimensional array (n_rounds,)")
        sizes["evaluation_pscore"] = evaluation_pscore.shape[0]
    _same_length(sizes)
    if action_dist is not None:
        n_actions = action_dist.shape[1]
        _first_bad(
            (action < 0) | (action >= n_actions),
            "`action` elements must be integers in the range of [0, `action_dist.shape[1]`)",
            action,
        )
        _first_bad(
            ~np.isfinite(action_dist).all(axis=1) | (action_dist < 0).any(axis=1),
            "`action_dist` must hold probabilities in [0, 1]",
        )
        sums = action_dist.sum(axis=1)
        _first_bad(
            ~np.isclose(sums, 1.0, atol=1e-6),
            "`action_dist` must be a probability distribution (each row must sum to 1)",
            sums,
        )
    if evaluation_pscore is not None:
        _first_bad(
            ~((evaluation_pscore >= 0) & (evaluation_pscore <= 1)),
            "`evaluation_pscore` must be in [0, 1]",
            evaluation_pscore,
        )
    if estimated_rewards is not None:
        if action_dist is None:
            raise ValueError("`estimated_rewards` needs `action_dist`")
        if not isinstance(estimated_rewards, np.ndarray) or (
            estimated_rewards.shape != action_dist.shape
        ):
            raise ValueError(
                "Expected `estimated_rewards.shape == action_dist.shape`, but found "
                f"{getattr(estimated_rewards, 'shape', None)} and {action_dist.shape}"
            )
        _first_bad(
            ~np.isfinite(estimated_rewards).all(axis=1), "`estimated_rewards` must be finite"
        )


def _first_bad(mask: np.ndarray, message: str, values: np.ndarray | None = None) -> None:
    rows = np.flatnonzero(mask)
    if rows.size:
        row = int(rows[0])
        shown = "" if values is None else f": {values[row]!r}"
        more = f" (and {rows.size - 1} more rows)" if rows.size > 1 else ""
        raise ValueError(f"{message}; row {row}{shown}{more}")


class OffPolicyEstimator(ABC):
    """Base of the estimators: per-round terms, the interval and the diagnostics.

    A subclass gives :meth:`_value` (the estimate over a subset of rounds) and,
    for the normal interval, :meth:`_std_error`.
    """

    #: The estimator's short name in reports.
    name: ClassVar[str] = "estimator"
    #: Whether the estimator needs a reward model's predictions.
    needs_reward_model: ClassVar[bool] = False

    def estimate(
        self,
        reward: np.ndarray,
        action: np.ndarray,
        pscore: np.ndarray,
        action_dist: np.ndarray | None = None,
        *,
        evaluation_pscore: np.ndarray | None = None,
        estimated_rewards: np.ndarray | None = None,
        alpha: float = 0.05,
        interval: IntervalMethod = "normal",
        n_bootstrap: int = 1000,
        random_state: int = 0,
    ) -> PolicyValueEstimate:
        """Estimate the candidate's value per round with an interval and diagnostics.

        Parameters
        ----------
        reward, action, pscore
            The logged rounds, shape ``(n_rounds,)`` each.
        action_dist
            Candidate's action probabilities, shape ``(n_rounds, n_actions)``.
        evaluation_pscore
            Candidate's probability of each logged action, shape ``(n_rounds,)``; enough for
            IPS and SNIPS when ``action_dist`` is not available.
        estimated_rewards
            Reward model predictions ``q_hat(x_i, a)``, shape ``(n_rounds, n_actions)``
            (doubly robust only; see :func:`cross_fitted_rewards`).
        alpha
            The interval covers ``1 - alpha``.
        interval
            ``"normal"`` (estimate +- z x standard error) or ``"bootstrap"`` (percentiles
            of the estimate over ``n_bootstrap`` resamples of the rounds).
        """
        if not 0.0 < alpha < 1.0:
            raise ValueError(f"`alpha` must be in (0, 1), got {alpha}")
        if interval not in ("normal", "bootstrap"):
            raise ValueError(f"`interval` must be 'normal' or 'bootstrap', got {interval!r}")
        reward = np.asarray(reward, dtype=float)
        pscore = np.asarray(pscore, dtype=float)
        check_ope_inputs(reward, action, pscore, action_dist, evaluation_pscore, estimated_rewards)
        if self.needs_reward_model and (action_dist is None or estimated_rewards is None):
            raise ValueError(f"{self.name} needs `action_dist` and `estimated_rewards`")
        if evaluation_pscore is None:
            assert action_dist is not None
            evaluation_pscore = action_dist[np.arange(action.size), action]
        weight = evaluation_pscore / pscore
        terms = _Rounds(reward, action, weight, action_dist, estimated_rewards)
        everything = np.arange(reward.size)
        value = self._value(terms, everything)
        if interval == "normal":
            error = self._std_error(terms, value)
            z = _Z95 if alpha == 0.05 else _normal_quantile(1.0 - alpha / 2.0)
            low, high = value - z * error, value + z * error
        else:
            rng = np.random.default_rng(random_state)
            samples = np.array(
                [
                    self._value(terms, rng.integers(0, reward.size, reward.size))
                    for _ in range(n_bootstrap)
                ]
            )
            error = float(samples.std(ddof=1))
            low, high = np.quantile(samples, [alpha / 2.0, 1.0 - alpha / 2.0])
        squares = float(np.sum(weight**2))
        return PolicyValueEstimate(
            estimator=self.name,
            estimate=float(value),
            std_error=float(error),
            ci_low=float(low),
            ci_high=float(high),
            alpha=alpha,
            interval=interval,
            n_rounds=int(reward.size),
            effective_sample_size=float(weight.sum() ** 2 / squares) if squares > 0 else 0.0,
            max_weight=float(weight.max()),
            mean_weight=float(weight.mean()),
        )

    @abstractmethod
    def _value(self, rounds: _Rounds, rows: np.ndarray) -> float:
        """The estimate over the rounds ``rows`` (with repeats, for the bootstrap)."""

    @abstractmethod
    def _std_error(self, rounds: _Rounds, value: float) -> float:
        """The standard error of the estimate ``value`` over all rounds."""


class _Rounds:
    """The per-round quantities the estimators average."""

    def __init__(
        self,
        reward: np.ndarray,
        action: np.ndarray,
        weight: np.ndarray,
        action_dist: np.ndarray | None,
        estimated_rewards: np.ndarray | None,
    ) -> None:
        self.reward = reward
        self.weight = weight
        self.dr = np.zeros(0)
        self.dm = np.zeros(0)
        if action_dist is not None and estimated_rewards is not None:
            # sum_a pi_e(a|x_i) q_hat(x_i, a) + w_i (r_i - q_hat(x_i, a_i))
            direct = np.sum(action_dist * estimated_rewards, axis=1)
            logged = estimated_rewards[np.arange(action.size), action]
            self.dm = direct
            self.dr = direct + weight * (reward - logged)


def _sample_std_error(terms: np.ndarray) -> float:
    return float(terms.std(ddof=1) / np.sqrt(terms.size)) if terms.size > 1 else float("inf")


class InverseProbabilityWeighting(OffPolicyEstimator):
    """IPS: the mean of ``w_i r_i`` (see the module doc)."""

    name = "ips"

    def _value(self, rounds: _Rounds, rows: np.ndarray) -> float:
        return float(np.mean(rounds.weight[rows] * rounds.reward[rows]))

    def _std_error(self, rounds: _Rounds, value: float) -> float:
        return _sample_std_error(rounds.weight * rounds.reward)


class SelfNormalizedInverseProbabilityWeighting(OffPolicyEstimator):
    """SNIPS: ``sum w r / sum w``; its standard error by the delta method."""

    name = "snips"

    def _value(self, rounds: _Rounds, rows: np.ndarray) -> float:
        total = float(np.sum(rounds.weight[rows]))
        if total <= 0:
            return 0.0
        return float(np.sum(rounds.weight[rows] * rounds.reward[rows]) / total)

    def _std_error(self, rounds: _Rounds, value: float) -> float:
        mean_weight = float(np.mean(rounds.weight))
        if mean_weight <= 0:
            return float("inf")
        return _sample_std_error(rounds.weight * (rounds.reward - value) / mean_weight)


class _ModelBased(OffPolicyEstimator):
    """An estimator that averages per-round terms built on the reward model."""

    needs_reward_model = True

    @abstractmethod
    def _terms(self, rounds: _Rounds) -> np.ndarray:
        """The per-round terms whose mean is the estimate."""

    def _value(self, rounds: _Rounds, rows: np.ndarray) -> float:
        return float(np.mean(self._terms(rounds)[rows]))

    def _std_error(self, rounds: _Rounds, value: float) -> float:
        return _sample_std_error(self._terms(rounds))


class DoublyRobust(_ModelBased):
    """DR: the reward model's value of the candidate plus the weighted residuals."""

    name = "dr"

    def _terms(self, rounds: _Rounds) -> np.ndarray:
        return rounds.dr


class DirectMethod(_ModelBased):
    """DM: the reward model's value of the candidate (see the module doc)."""

    name = "dm"

    def _terms(self, rounds: _Rounds) -> np.ndarray:
        return rounds.dm


#: The estimators by name, in report order.
ESTIMATORS: dict[str, type[OffPolicyEstimator]] = {
    "ips": InverseProbabilityWeighting,
    "snips": SelfNormalizedInverseProbabilityWeighting,
    "dr": DoublyRobust,
    "dm": DirectMethod,
}


def cross_fitted_rewards(
    context: np.ndarray,
    action: np.ndarray,
    reward: np.ndarray,
    action_context: np.ndarray,
    *,
    mask: np.ndarray | None = None,
    n_folds: int = 3,
    groups: np.ndarray | None = None,
    model: Any = None,
    random_state: int = 0,
    n_threads: int | None = 1,
) -> np.ndarray:
    """Reward model predictions ``q_hat(x_i, a)`` for every round and action, by cross-fitting.

    The rounds are split in ``n_folds`` folds (by ``groups`` when given, e.g. customer ids,
    so that one customer's rounds stay together); each fold is predicted by a model fitted
    on the others. The model sees the context and the logged action's features.

    Parameters
    ----------
    context
        Context features, shape ``(n_rounds, n_features)``.
    action, reward
        Logged actions and rewards, shape ``(n_rounds,)``.
    action_context
        Features of each action, shape ``(n_actions, n_action_features)``; integer codes
        (the action's index, its type, its channel), treated as categories by the default
        model.
    mask
        Which ``(round, action)`` pairs to predict, shape ``(n_rounds, n_actions)``; the
        others are 0. Predict only what an estimator reads: the actions a candidate may
        take and the logged one.
    model
        A scikit-learn regressor (or classifier with ``predict_proba``, for 0/1 rewards);
        default a histogram gradient-boosting regressor with the action features as
        categories.
    n_threads
        Threads the model may use (``None``: the libraries' default, all cores). One by
        default: the model is small, and OpenMP threads competing for busy cores can make
        the fit ten times slower.

    Returns
    -------
    numpy.ndarray
        Shape ``(n_rounds, n_actions)``.
    """
    from sklearn.model_selection import GroupKFold, KFold
    from threadpoolctl import threadpool_limits

    n_rounds = context.shape[0]
    n_actions = action_context.shape[0]
    if context.ndim != 2:
        raise ValueError(f"`context` must be 2-dimensional, got shape {context.shape}")
    if not (action.shape[0] == reward.shape[0] == n_rounds):
        raise ValueError(
            "Expected `context.shape[0] == action.shape[0] == reward.shape[0]`, but found "
            f"{n_rounds}, {action.shape[0]}, {reward.shape[0]}"
        )
    if mask is None:
        mask = np.ones((n_rounds, n_actions), dtype=bool)
    if mask.shape != (n_rounds, n_actions):
        raise ValueError(f"`mask` must have shape {(n_rounds, n_actions)}, got {mask.shape}")
    if n_folds < 2:
        raise ValueError(f"`n_folds` must be at least 2, got {n_folds}")
    if model is None:
        model = _default_reward_model(context.shape[1], action_context.shape[1], random_state)
    if groups is not None:
        splitter: Any = GroupKFold(n_splits=n_folds)
        folds = splitter.split(context, reward, groups)
    else:
        folds = KFold(n_splits=n_folds, shuffle=True, random_state=random_state).split(context)
    predictions = np.zeros((n_rounds, n_actions))
    with threadpool_limits(n_threads):
        for train, test in folds:
            _fit_predict(
                model, context, action, reward, action_context, mask, train, test, predictions
            )
    return predictions


def _fit_predict(
    model: Any,
    context: np.ndarray,
    action: np.ndarray,
    reward: np.ndarray,
    action_context: np.ndarray,
    mask: np.ndarray,
    train: np.ndarray,
    test: np.ndarray,
    predictions: np.ndarray,
) -> None:
    """Fit a clone of ``model`` on ``train`` and fill the masked predictions of ``test``."""
    from sklearn.base import clone, is_classifier

    fitted = clone(model).fit(_design(context[train], action_context[action[train]]), reward[train])
    rows, actions = np.nonzero(mask[test])
    design = _design(context[test][rows], action_context[actions])
    if is_classifier(fitted):
        predicted = fitted.predict_proba(design)[:, 1]
    else:
        predicted = fitted.predict(design)
    predictions[test[rows], actions] = predicted


def _design(context: np.ndarray, action_features: np.ndarray) -> np.ndarray:
    return np.hstack([context, action_features]).astype(float)


def _default_reward_model(n_context: int, n_action: int, random_state: int) -> Any:
    from sklearn.ensemble import HistGradientBoostingRegressor

    categorical = np.zeros(n_context + n_action, dtype=bool)
    categorical[n_context:] = True
    return HistGradientBoostingRegressor(
        max_iter=150,
        learning_rate=0.08,
        min_samples_leaf=40,
        l2_regularization=1.0,
        categorical_features=categorical,
        random_state=random_state,
    )


def _normal_quantile(p: float) -> float:
    from statistics import NormalDist

    return NormalDist().inv_cdf(p)


class OffPolicyEvaluation:
    """Run several estimators on the same logged rounds (obp's ``OffPolicyEvaluation``).

    Parameters
    ----------
    reward, action, pscore
        The logged rounds, shape ``(n_rounds,)`` each.
    estimators
        Names from :data:`ESTIMATORS`; all four by default.

    >>> import numpy as np
    >>> ope = OffPolicyEvaluation(np.array([1.0, 0.0]), np.array([0, 1]), np.array([0.5, 0.5]),
    ...                           estimators=("ips", "snips"))
    >>> [e.estimate for e in ope.estimate(np.array([[1.0, 0.0], [1.0, 0.0]]))]
    [1.0, 1.0]
    """

    def __init__(
        self,
        reward: np.ndarray,
        action: np.ndarray,
        pscore: np.ndarray,
        *,
        estimators: Sequence[str] = tuple(ESTIMATORS),
    ) -> None:
        unknown = [e for e in estimators if e not in ESTIMATORS]
        if unknown:
            raise ValueError(
                f"unknown estimator(s) {unknown} (expected some of: {', '.join(ESTIMATORS)})"
            )
        self.reward = np.asarray(reward, dtype=float)
        self.action = np.asarray(action)
        self.pscore = np.asarray(pscore, dtype=float)
        check_bandit_feedback(self.reward, self.action, self.pscore)
        self.estimators = [ESTIMATORS[e]() for e in estimators]

    def estimate(
        self,
        action_dist: np.ndarray,
        estimated_rewards: np.ndarray | None = None,
        *,
        alpha: float = 0.05,
        interval: IntervalMethod = "normal",
        n_bootstrap: int = 1000,
        random_state: int = 0,
    ) -> list[PolicyValueEstimate]:
        """Every estimator's estimate (DR and DM are skipped when ``estimated_rewards`` is
        ``None``)."""
        return [
            estimator.estimate(
                self.reward,
                self.action,
                self.pscore,
                action_dist,
                estimated_rewards=estimated_rewards,
                alpha=alpha,
                interval=interval,
                n_bootstrap=n_bootstrap,
                random_state=random_state,
            )
            for estimator in self.estimators
            if estimated_rewards is not None or not estimator.needs_reward_model
        ]

    def summary(
        self, action_dist: np.ndarray, estimated_rewards: np.ndarray | None = None
    ) -> pd.DataFrame:
        """:meth:`estimate` as a table, one row per estimator."""
        return pd.DataFrame([e.as_dict() for e in self.estimate(action_dist, estimated_rewards)])
