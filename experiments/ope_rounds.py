"""From logged decisions and candidate distributions to the four estimates per candidate.

The part of off-policy evaluation shared by the simulated validation
(:mod:`experiments.ope_validation`) and the evaluation of the API's own logs
(:mod:`experiments.ope_api`): index the actions (an action id on a channel),
build each candidate's ``action_dist`` matrix, fit the doubly-robust reward
model by cross-fitting over customers, and run IPS, SNIPS, DR and DM
(:mod:`experiments.ope`) with their intervals and weight diagnostics.

**Withdrawn decisions** (:func:`withdrawn_round`). A decision whose scheduled message
a later decision withdrew before it went (:mod:`nba.supersession`; the later record's
``replaces``) drew its action with its logged probability, but the action was never
executed: what followed (nothing through that message) is not a sample of the reward
of *sending* it. Kept with reward 0 it pulls every estimate down by the withdrawn
share, most for the actions most often withdrawn (the low-value ones a better message
overtook). Nor is it a draw of doing nothing: its probability of having "done nothing"
is that of choosing an action later withdrawn, which nobody logged, so counting it as
the do-nothing option with that option's logged probability weighs it wrongly.
Left out (``"dropped"``, the default), every remaining round is still a draw from its
logged distribution; what remains is the dependence of withdrawal on the action
drawn, small while withdrawals are rare (about 1 % of messages in the closed loop).
The other two treatments are kept to measure the difference (BENCHMARKS.md).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

from experiments.ope import (
    ESTIMATORS,
    IntervalMethod,
    PolicyValueEstimate,
    cross_fitted_rewards,
)
from experiments.ope_logging import NO_ACTION, ActionChannel
from nba.catalog import Catalog

Distribution = Mapping[ActionChannel, float]
#: What an evaluation does with a withdrawn decision (see the module doc).
Withdrawn = Literal["dropped", "kept", "do_nothing"]
WITHDRAWN: tuple[Withdrawn, ...] = ("dropped", "kept", "do_nothing")


def withdrawn_round(actions: Sequence[ActionChannel], chosen: int, how: Withdrawn) -> int | None:
    """The index a withdrawn round counts as chosen, or ``None`` when it is left out:
    ``"dropped"`` leaves it out, ``"kept"`` keeps its logged choice (its reward is 0:
    nothing was sent), ``"do_nothing"`` counts it as the option that sends nothing (left
    out when it had none).

    >>> options = (ActionChannel("do_nothing", None), ActionChannel("picks", "email"))
    >>> [withdrawn_round(options, 1, how) for how in WITHDRAWN]
    [None, 1, 0]
    """
    if how not in WITHDRAWN:
        raise ValueError(f"unknown treatment of withdrawn decisions {how!r} (one of {WITHDRAWN})")
    if how == "dropped":
        return None
    if how == "kept":
        return chosen
    return next((i for i, a in enumerate(actions) if a.channel is None), None)


@dataclass(frozen=True)
class CandidateEstimates:
    """One candidate's estimates and how much of its choices the logger never made."""

    candidate: str
    estimates: list[PolicyValueEstimate]
    #: Mean probability the candidate puts on actions the logger gave probability 0.
    unsupported_mass: float


def estimate_candidates(
    *,
    logged_actions: Sequence[Sequence[ActionChannel]],
    logged_probabilities: Sequence[Sequence[float]],
    chosen: Sequence[int],
    reward: np.ndarray,
    context: np.ndarray,
    customer_ids: Sequence[str],
    distributions: Mapping[str, Sequence[Distribution]],
    catalog: Catalog,
    interval: IntervalMethod = "normal",
    n_folds: int = 3,
    seed: int = 0,
) -> list[CandidateEstimates]:
    """Estimate every candidate's value per round from the logged rounds.

    Parameters
    ----------
    logged_actions, logged_probabilities, chosen
        Per round: the logger's possible actions, its probability of each and the index
        it took.
    reward
        Per round, shape ``(n_rounds,)``.
    context
        The reward model's context features, shape ``(n_rounds, n_features)``.
    customer_ids
        Per round: the cross-fitting folds keep a customer's rounds together.
    distributions
        Per candidate name, per round: its probability of each action.
    catalog
        Gives each action's type, a feature of the reward model.
    """
    n = len(logged_actions)
    index: dict[ActionChannel, int] = {}
    for actions in logged_actions:
        for action in actions:
            index.setdefault(action, len(index))
    for per_round in distributions.values():
        for dist in per_round:
            for action in dist:
                index.setdefault(action, len(index))
    k = len(index)
    logged_action = np.array(
        [index[actions[c]] for actions, c in zip(logged_actions, chosen, strict=True)],
        dtype=np.int64,
    )
    pscore = np.array(
        [p[c] for p, c in zip(logged_probabilities, chosen, strict=True)], dtype=float
    )
    support = np.zeros((n, k), dtype=bool)
    for i, (actions, probabilities) in enumerate(
        zip(logged_actions, logged_probabilities, strict=True)
    ):
        for a, p in zip(actions, probabilities, strict=True):
            support[i, index[a]] = p > 0
    matrices: dict[str, np.ndarray] = {}
    for name, per_round in distributions.items():
        matrix = np.zeros((n, k))
        for i, dist in enumerate(per_round):
            for a, p in dist.items():
                matrix[i, index[a]] = p
        matrices[name] = matrix
    mask = np.zeros((n, k), dtype=bool)
    mask[np.arange(n), logged_action] = True
    for matrix in matrices.values():
        mask |= matrix > 0
    estimated = cross_fitted_rewards(
        context,
        logged_action,
        reward,
        action_features(index, catalog),
        mask=mask,
        n_folds=n_folds,
        groups=np.asarray(customer_ids, dtype=object),
        random_state=seed,
    )
    out = []
    for name, matrix in matrices.items():
        estimates = [
            estimator().estimate(
                reward,
                logged_action,
                pscore,
                matrix,
                estimated_rewards=estimated,
                interval=interval,
                random_state=seed,
            )
            for estimator in ESTIMATORS.values()
        ]
        out.append(
            CandidateEstimates(
                candidate=name,
                estimates=estimates,
                unsupported_mass=float(np.sum(matrix * ~support) / max(n, 1)),
            )
        )
    return out


def action_features(index: Mapping[ActionChannel, int], catalog: Catalog) -> np.ndarray:
    """Per action: its index, its action type and its channel, as integer codes,
    shape ``(n_actions, 3)`` (the reward model's action features)."""
    types: dict[str, int] = {}
    channels: dict[str | None, int] = {}
    rows = []
    for action, position in sorted(index.items(), key=lambda item: item[1]):
        known = action != NO_ACTION and action.action_id in catalog.ids
        kind = catalog[action.action_id].type.value if known else ""
        rows.append(
            (
                position,
                types.setdefault(kind, len(types)),
                channels.setdefault(action.channel, len(channels)),
            )
        )
    return np.array(rows, dtype=float).reshape(len(rows), 3)
