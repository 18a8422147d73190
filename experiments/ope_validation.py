"""Off-policy evaluation checked against the simulator's ground truth.

1. **Log.** The engine, wrapped in an exploring epsilon-mixture
   (:class:`~experiments.ope_logging.ExploringPolicy`), runs in closed loop on a
   simulated world; every decision's context, screened candidates and
   probabilities are kept.
2. **Estimate.** For each candidate policy, its probability of every action
   (action id on a channel) at each logged decision
   (:func:`~experiments.ope_logging.policy_distribution`) feeds IPS, SNIPS and
   doubly robust (:mod:`experiments.ope`), whose reward model is fitted on the
   logged decisions by cross-fitting over customers.
3. **Truth.** The simulator knows the expected reward of *every* action at
   every logged decision, so the candidate's true value at the logged contexts
   is computed exactly: ``mean_i sum_a pi_e(a|x_i) r(x_i, a)``. This is what
   single-step off-policy evaluation estimates, and each interval is checked
   against it.
4. **Closed loop.** Each candidate also runs in closed loop on the same world,
   and its value per decision is reported beside the rest.

**Reward.** A decision's reward is the true expected incremental ``margin`` (or
``revenue``) of the message it sent, within the simulator's attribution
window, beyond doing nothing (:class:`~simulator.closed_loop.truth.TrueValue`,
the same yardstick as the closed-loop metrics); 0 when it sent nothing.
Using the expected rather than a sampled outcome removes outcome noise from
both sides of the comparison, not bias: an observed, attributed outcome has
the same expectation, and the same estimators apply with wider intervals.

**Withdrawn decisions.** With supersession on (the world's contact policy sets
``supersede_lead_minutes``) the logging run replaces some scheduled messages before they
go: their decisions are logged, but nothing was sent. They are left out of the rounds
(``withdrawn="dropped"``, :mod:`experiments.ope_rounds` says why); ``"kept"`` (reward 0)
and ``"do_nothing"`` measure the alternatives against the same truth.

**Why the truth at the logged contexts.** A candidate run in closed loop
changes what comes next (who is in flight, fatigue, cool-downs, budgets, the
contexts of later decisions, how many decisions there are). Single-step
off-policy evaluation ignores that: it values the candidate's choices *at
the logged contexts*. The comparison with that truth is the fair test of the
estimators; the closed-loop value shows how far the single-step view is from
what shipping the candidate would really do.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import pandas as pd

from experiments.ope import IntervalMethod, PolicyValueEstimate
from experiments.ope_logging import (
    CONTEXT_FEATURES,
    ActionChannel,
    ExploringPolicy,
    LoggedContext,
    context_features,
    policy_distribution,
)
from experiments.ope_rounds import Withdrawn, estimate_candidates, withdrawn_round
from nba.baselines import RandomPolicy, RuleBasedPolicy
from nba.channels import Channel
from nba.engine import NextBestActionPolicy
from nba.policy import DecisionPolicy
from simulator.closed_loop.runner import PolicyRun, run_policy
from simulator.closed_loop.world import ClosedLoopWorld

Reward = Literal["margin", "revenue"]
CandidateFactory = Callable[[ClosedLoopWorld], DecisionPolicy]

#: Candidate policies by name.
CANDIDATES: dict[str, CandidateFactory] = {
    "rules": lambda w: RuleBasedPolicy(w.catalog, w.contact_policy),
    "random": lambda w: RandomPolicy(w.catalog, w.contact_policy),
    "nba-greedy": lambda w: NextBestActionPolicy(w.catalog, w.contact_policy, exploration=False),
    "nba": lambda w: NextBestActionPolicy(w.catalog, w.contact_policy),
}
DEFAULT_CANDIDATES: tuple[str, ...] = ("rules", "random", "nba-greedy")
_WEEK = dt.timedelta(days=7)


def make_candidate(name: str, world: ClosedLoopWorld) -> DecisionPolicy:
    """The candidate policy called ``name`` (see :data:`CANDIDATES`)."""
    try:
        return CANDIDATES[name](world)
    except KeyError:
        known = ", ".join(CANDIDATES)
        raise ValueError(f"unknown candidate policy {name!r} (expected one of: {known})") from None


@dataclass(frozen=True, eq=False)
class LoggedRun:
    """The logging policy's closed-loop run and its decisions, row for row.

    ``logged[i]`` is the decision of ``run.decisions.iloc[i]``; ``reward[i]`` its reward.
    """

    run: PolicyRun
    logged: list[LoggedContext]
    reward: np.ndarray
    reward_name: Reward
    epsilon: float


def log_decisions(
    world: ClosedLoopWorld,
    *,
    epsilon: float = 0.3,
    reward: Reward = "margin",
    draws: int = 200,
) -> LoggedRun:
    """Run the exploring engine in closed loop and keep every decision's context."""
    records: dict[tuple[str, dt.datetime], LoggedContext] = {}

    def keep(logged: LoggedContext) -> None:
        records[(logged.customer_id, logged.decided_at)] = logged

    inner = NextBestActionPolicy(world.catalog, world.contact_policy)
    logger = ExploringPolicy(inner, epsilon=epsilon, draws=draws, record=keep)
    run = run_policy(world, logger)
    decisions = run.decisions
    logged = [
        records[(str(c), pd.Timestamp(t).to_pydatetime())]
        for c, t in zip(decisions["customer_id"], decisions["decided_at"], strict=True)
    ]
    values = dict(zip(run.contacts["decision_id"], run.contacts[reward], strict=True))
    rewards = np.array([float(values.get(d, 0.0)) for d in decisions["decision_id"]])
    logged_propensity = decisions["propensity"].to_numpy(dtype=float)
    for decision_id, record, p in zip(
        decisions["decision_id"], logged, logged_propensity, strict=True
    ):
        if abs(record.propensity - p) > 1e-12:
            raise RuntimeError(f"decision {decision_id}: logged propensity does not match")
    return LoggedRun(run, logged, rewards, reward, epsilon)


class TruthTable:
    """The true expected reward of any action at any logged decision (see the module doc).

    The recent-contact count the response model reads is rebuilt exactly as the
    closed loop counts it: the world's history plus the logging run's earlier sends.
    """

    def __init__(self, world: ClosedLoopWorld, logged: LoggedRun) -> None:
        self.world = world
        self.logged = logged
        self.values: dict[tuple[int, ActionChannel], float] = {}
        self._sends: dict[str, list[tuple[dt.datetime, dt.datetime]]] = {}
        for cid, sent_at in zip(
            world.history_contacts["customer_id"],
            world.history_contacts["sent_at"],
            strict=True,
        ):
            stamp = pd.Timestamp(sent_at).floor("us").to_pydatetime()
            self._sends.setdefault(str(cid), []).append(
                (dt.datetime.min.replace(tzinfo=dt.UTC), stamp)
            )
        contacts = logged.run.contacts
        for cid, decided, sent in zip(
            contacts["customer_id"], contacts["decided_at"], contacts["sent_at"], strict=True
        ):
            self._sends.setdefault(str(cid), []).append(
                (pd.Timestamp(decided).to_pydatetime(), pd.Timestamp(sent).to_pydatetime())
            )

    def recent_contacts(
        self, customer_id: str, decided_at: dt.datetime, send_at: dt.datetime
    ) -> int:
        """Sends of the customer decided before ``decided_at`` and later than a week before
        ``send_at`` (as :func:`~simulator.closed_loop.runner.run_policy` counts them)."""
        since = send_at - _WEEK
        return sum(
            1
            for decided, sent in self._sends.get(customer_id, ())
            if decided < decided_at and sent > since
        )

    def fill(self, pairs: Sequence[tuple[int, ActionChannel]]) -> None:
        """Compute the true reward of each ``(decision row, action)`` not known yet."""
        todo = [(i, a) for i, a in dict.fromkeys(pairs) if (i, a) not in self.values]
        sends = []
        for i, action in todo:
            if action.channel is None:  # do nothing, or no option
                self.values[(i, action)] = 0.0
                continue
            logged = self.logged.logged[i]
            send_at = logged.send_at(action)
            if send_at is None:
                raise ValueError(f"decision row {i}: {action} was not a screened candidate")
            sends.append((i, action, logged, send_at))
        if not sends:
            return
        world = self.world
        value = world.truth.incremental(
            [logged.customer_id for _, _, logged, _ in sends],
            [Channel(action.channel or "") for _, action, _, _ in sends],
            [send_at for _, _, _, send_at in sends],
            [
                world.mapping.message(world.catalog[action.action_id], logged.context.profile)
                for _, action, logged, _ in sends
            ],
            [
                self.recent_contacts(logged.customer_id, logged.decided_at, send_at)
                for _, _, logged, send_at in sends
            ],
        )
        column = getattr(value, self.logged.reward_name)
        for (i, action, _, _), v in zip(sends, column, strict=True):
            self.values[(i, action)] = float(v)

    def value(self, row: int, action: ActionChannel) -> float:
        return self.values[(row, action)]


@dataclass(frozen=True)
class CandidateEvaluation:
    """One candidate: the estimates, the truth at the logged contexts, the closed-loop value."""

    candidate: str
    estimates: list[PolicyValueEstimate]
    truth_at_logged: float
    unsupported_mass: float
    closed_loop: float | None = None
    closed_loop_decisions: int | None = None
    #: the truth over every logged decision, the withdrawn ones too (``truth_at_logged``
    #: is over the rounds evaluated)
    truth_at_every_decision: float | None = None


@dataclass(frozen=True, eq=False)
class OPEValidation:
    """Estimates against the truth for every candidate, on one logged run."""

    world: ClosedLoopWorld
    logged: LoggedRun
    candidates: list[CandidateEvaluation]
    logged_value: float
    seconds: dict[str, float] = field(default_factory=dict)
    #: logged decisions whose messages were withdrawn, and what was done with them
    withdrawn: int = 0
    withdrawn_as: Withdrawn = "dropped"
    #: the rounds evaluated (rows of ``logged``)
    rounds: int = 0

    def table(self) -> pd.DataFrame:
        """One row per candidate and estimator (see :meth:`markdown`)."""
        rows = []
        for c in self.candidates:
            for e in c.estimates:
                rows.append(
                    {
                        "candidate": c.candidate,
                        "estimator": e.estimator,
                        "estimate": e.estimate,
                        "ci_low": e.ci_low,
                        "ci_high": e.ci_high,
                        "ess": e.effective_sample_size,
                        "max_weight": e.max_weight,
                        "truth_at_logged": c.truth_at_logged,
                        "covered": e.contains(c.truth_at_logged),
                        "closed_loop": c.closed_loop,
                    }
                )
        return pd.DataFrame(rows)

    def markdown(self) -> str:
        """The table as Markdown, values per decision."""
        reward = self.logged.reward_name
        lines = [
            f"| candidate | estimator | estimate ({reward}/decision) | 95 % CI | ESS | max w "
            "| truth at logged contexts | in CI | closed loop |",
            "|---|---|---:|---|---:|---:|---:|:-:|---:|",
        ]
        for c in self.candidates:
            loop = "" if c.closed_loop is None else f"{c.closed_loop:.4f}"
            for e in c.estimates:
                lines.append(
                    f"| {c.candidate} | {e.estimator} | {e.estimate:.4f} | "
                    f"[{e.ci_low:.4f}, {e.ci_high:.4f}] | {e.effective_sample_size:,.0f} | "
                    f"{e.max_weight:.1f} | {c.truth_at_logged:.4f} | "
                    f"{'yes' if e.contains(c.truth_at_logged) else 'NO'} | {loop} |"
                )
        return "\n".join(lines)


def validate_ope(
    world: ClosedLoopWorld,
    candidates: Sequence[str] = DEFAULT_CANDIDATES,
    *,
    epsilon: float = 0.3,
    reward: Reward = "margin",
    interval: IntervalMethod = "normal",
    closed_loop: bool = True,
    n_folds: int = 3,
    seed: int = 0,
    logged: LoggedRun | None = None,
    progress: Callable[[str], None] | None = None,
    withdrawn: Withdrawn = "dropped",
) -> OPEValidation:
    """Log with the exploring engine, estimate each candidate, compare with the truth.

    Parameters
    ----------
    world
        The simulated world (:func:`~simulator.closed_loop.world.build_world`).
    candidates
        Names from :data:`CANDIDATES`.
    epsilon
        The logging policy's uniform-exploration share.
    reward
        ``"margin"`` or ``"revenue"``: true expected incremental value of the message sent.
    interval
        ``"normal"`` or ``"bootstrap"`` intervals.
    closed_loop
        Also run every candidate in closed loop (the slow part).
    logged
        A logging run to reuse (from :func:`log_decisions` on the same world).
    withdrawn
        What to do with the logged decisions whose messages were withdrawn (module doc).
    """
    say = progress or (lambda _: None)
    policies = {name: make_candidate(name, world) for name in candidates}
    seconds: dict[str, float] = {}
    started = time.perf_counter()
    if logged is None:
        say("logging decisions with the exploring engine")
        logged = log_decisions(world, epsilon=epsilon, reward=reward)
    seconds["log"] = time.perf_counter() - started
    gone = withdrawn_decisions(logged.run.decisions)
    rows: list[int] = []  # the rounds evaluated, and the choice each counts
    chosen: list[int] = []
    for i, (decision_id, record) in enumerate(
        zip(logged.run.decisions["decision_id"], logged.logged, strict=True)
    ):
        index: int | None = record.chosen
        if decision_id in gone:
            index = withdrawn_round(record.actions, record.chosen, withdrawn)
        if index is not None:
            rows.append(i)
            chosen.append(index)

    started = time.perf_counter()
    say("candidate distributions at the logged decisions")
    every = {
        name: [policy_distribution(policy, record, seed=seed) for record in logged.logged]
        for name, policy in policies.items()
    }
    distributions = {name: [d[i] for i in rows] for name, d in every.items()}
    seconds["distributions"] = time.perf_counter() - started

    started = time.perf_counter()
    say("true rewards of every action at the logged decisions")
    truth = TruthTable(world, logged)
    pairs = [(i, a) for i, r in enumerate(logged.logged) for a in r.actions]
    pairs += [(i, a) for d in every.values() for i, dist in enumerate(d) for a in dist]
    truth.fill(pairs)
    seconds["truth"] = time.perf_counter() - started

    n = len(rows)
    evaluated = [logged.logged[i] for i in rows]
    started = time.perf_counter()
    say("fitting the reward model (cross-fitted) and estimating")
    estimated = estimate_candidates(
        logged_actions=[r.actions for r in evaluated],
        logged_probabilities=[r.probabilities for r in evaluated],
        chosen=chosen,
        reward=logged.reward[rows],
        context=np.vstack([context_features(r) for r in evaluated])
        if n
        else np.zeros((0, len(CONTEXT_FEATURES))),
        customer_ids=[r.customer_id for r in evaluated],
        distributions=distributions,
        catalog=world.catalog,
        interval=interval,
        n_folds=n_folds,
        seed=seed,
    )
    seconds["reward_model"] = time.perf_counter() - started

    evaluations: list[CandidateEvaluation] = []
    for name, found in zip(distributions, estimated, strict=True):
        per_decision = [
            sum(p * truth.value(i, a) for a, p in dist.items())
            for i, dist in enumerate(every[name])
        ]
        true_value = float(np.mean([per_decision[i] for i in rows]))
        estimates = found.estimates
        loop_value: float | None = None
        loop_decisions: int | None = None
        if closed_loop:
            say(f"running {name} in closed loop")
            started = time.perf_counter()
            run = run_policy(world, policies[name], name=name)
            loop_decisions = len(run.decisions)
            loop_value = float(run.contacts[reward].sum()) / max(loop_decisions, 1)
            seconds[f"closed_loop:{name}"] = time.perf_counter() - started
        evaluations.append(
            CandidateEvaluation(
                candidate=name,
                estimates=estimates,
                truth_at_logged=true_value,
                unsupported_mass=found.unsupported_mass,
                closed_loop=loop_value,
                closed_loop_decisions=loop_decisions,
                truth_at_every_decision=float(np.mean(per_decision)),
            )
        )
    return OPEValidation(
        world=world,
        logged=logged,
        candidates=evaluations,
        logged_value=float(np.mean(logged.reward[rows])) if n else 0.0,
        seconds=seconds,
        withdrawn=len(gone),
        withdrawn_as=withdrawn,
        rounds=n,
    )


def withdrawn_decisions(decisions: pd.DataFrame) -> set[str]:
    """The decisions of a closed-loop run whose messages a later decision replaced (its
    ``replaces``, comma-separated; none when the run did not supersede)."""
    if "replaces" not in decisions:
        return set()
    return {d for ids in decisions["replaces"] if ids for d in str(ids).split(",")}
