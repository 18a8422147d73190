"""Off-policy evaluation of real traffic: the API's decision log, its events, candidate policies.

1. **Rounds.** Each record of the decision log (:mod:`experiments.decision_log`)
   holds every eligible (action, channel) with its exact logging probability,
   the choice and the context features the reward models read. A record that
   cannot be a round (no probabilities, several actions, a choice outside its
   options) is an error naming its file and line.
2. **Rewards** are joined by attribution (:func:`experiments.attribution.attribute`,
   the project's one definition): an outcome carrying a ``decision_id`` goes to
   that decision (``direct``), else to the exposures of the attribution window
   before it (``last_touch`` or ``position_based``); ``attribution="direct"``
   keeps the direct credit only. The reward of a round is its credited
   ``revenue``, ``conversions`` (purchases) or ``clicks``; 0 when nothing was
   credited.
3. **Contexts.** A candidate re-decides each logged decision: the profile as the
   API saw it is rebuilt by replaying the events (the data set the API's
   profiles were materialised from, built in batch, then every later event
   ingested up to each decision's time, the API's own online code, seen with the
   products table's stock levels as the API sees it: levels set later through
   ``PUT /v1/products/{id}/stock`` are not in the log), the action history and
   today's budgets from the log's earlier decisions; screening then gives the
   candidates (:class:`~experiments.ope_logging.LoggedContext`). The logged
   context features are compared with the rebuilt ones (``features_agree``),
   and every logged option must be among the rebuilt candidates
   (``missing_options`` counts those that are not).
4. **Estimates.** Each candidate's probability of every action at each round
   (:func:`~experiments.ope_logging.policy_distribution`; the logged policy's
   own probabilities for ``logged``, a sanity check whose weights are all 1)
   feeds IPS, SNIPS, DR and DM (:mod:`experiments.ope_rounds`), the reward model
   reading the logged context features.
5. **Withdrawn decisions.** A decision whose scheduled message a later decision
   withdrew (the later record's ``replaces``, :mod:`nba.supersession`) is no round:
   its action was never executed (:mod:`experiments.ope_rounds` says why it is left
   out rather than counted with reward 0 or as doing nothing). The replay still
   counts its history and budgets until the decision that withdrew it, as the API did.

The response statistics the engine explored with are not logged, so the
exploring engine candidate (``nba``) is the engine with its priors only.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd

from experiments.attribution import attribute, exposures_of
from experiments.decision_log import decisions_frame, read_log
from experiments.ope import IntervalMethod
from experiments.ope_logging import (
    NO_ACTION,
    ActionChannel,
    LoggedContext,
    policy_distribution,
)
from experiments.ope_rounds import (
    CandidateEstimates,
    Distribution,
    Withdrawn,
    estimate_candidates,
    withdrawn_round,
)
from features.archive import read_archive
from features.batch import build_profiles
from features.dataset import RetailDataset, find_table_file, load_dataset
from features.online.profiles import OnlineProfiles
from features.online.stock import StockLevels
from features.online.store import MemoryOnlineStore
from nba.baselines import RandomPolicy, RuleBasedPolicy
from nba.budgets import Consumption, UsageCounts
from nba.catalog import Catalog
from nba.contact_policy import ContactPolicy
from nba.context import CustomerContext
from nba.decision import CONTEXT_FEATURES, LoggedDecision, context_features
from nba.engine import NextBestActionPolicy
from nba.events import EventType
from nba.policy import DecisionPolicy
from nba.profile import CustomerProfile
from nba.screening import ActionCandidate, screen

Reward = Literal["revenue", "conversions", "clicks"]
REWARDS: tuple[Reward, ...] = ("revenue", "conversions", "clicks")
Attribution = Literal["direct", "last_touch", "position_based"]
ATTRIBUTIONS: tuple[Attribution, ...] = ("direct", "last_touch", "position_based")

#: The logging policy itself: its logged probabilities (every weight is 1).
LOGGED = "logged"
PolicyFactory = Callable[[Catalog, ContactPolicy], DecisionPolicy]
#: Candidate policies by name (besides :data:`LOGGED`), built on the log's catalog.
CANDIDATES: dict[str, PolicyFactory] = {
    "rules": lambda c, p: RuleBasedPolicy(c, p),
    "random": lambda c, p: RandomPolicy(c, p),
    "nba-greedy": lambda c, p: NextBestActionPolicy(c, p, exploration=False),
    "nba": lambda c, p: NextBestActionPolicy(c, p),
}
CANDIDATE_NAMES: tuple[str, ...] = (LOGGED, *CANDIDATES)


class OPEInputError(ValueError):
    """A decision log or events that cannot be evaluated: says what and where."""


@dataclass(frozen=True)
class LoggedRound:
    """One record of the decision log as a round of off-policy evaluation."""

    record: LoggedDecision
    source: str  # "file: line N"
    actions: tuple[ActionChannel, ...]
    probabilities: tuple[float, ...]
    chosen: int
    #: a later decision withdrew its message before it went (the later record's replaces)
    withdrawn: bool = False

    @property
    def action(self) -> ActionChannel:
        return self.actions[self.chosen]


def logged_rounds(directory: str | Path) -> list[LoggedRound]:
    """Every record of the decision log in ``directory`` as a round, in write order.

    Raises
    ------
    OPEInputError
        When the log is missing or empty, or a record lacks what a round needs (naming
        the file, the line and the decision).
    """
    folder = Path(directory)
    if not folder.is_dir():
        raise OPEInputError(f"{folder}: not a directory (the API's decision log)")
    reading = read_log(folder)
    if not reading.decisions:
        raise OPEInputError(f"{folder}: no decision records")
    return [
        _round(
            record,
            reading.sources[record.decision_id],
            withdrawn=record.decision_id in reading.withdrawn,
        )
        for record in reading.decisions
    ]


def _round(record: LoggedDecision, source: str, *, withdrawn: bool = False) -> LoggedRound:
    where = f"{source}: decision {record.decision_id}"
    if len(record.actions) > 1:
        raise OPEInputError(
            f"{where}: {len(record.actions)} actions chosen; off-policy evaluation needs one "
            "action per decision (max_actions=1)"
        )
    if not record.options:
        raise OPEInputError(
            f"{where}: no eligible options with their logging probabilities (a record "
            "written before the log held them cannot be evaluated)"
        )
    actions = tuple(ActionChannel(o.action_id, o.channel) for o in record.options)
    probabilities = []
    for option in record.options:
        if option.probability is None or not 0.0 <= option.probability <= 1.0:
            raise OPEInputError(
                f"{where}: option {ActionChannel(option.action_id, option.channel)} has "
                f"no logging probability in [0, 1] (got {option.probability!r})"
            )
        probabilities.append(option.probability)
    total = math.fsum(probabilities)
    if abs(total - 1.0) > 1e-6:
        raise OPEInputError(f"{where}: the options' probabilities sum to {total:.6g}, not 1")
    if record.actions:
        chosen_action = record.actions[0]
        choice = ActionChannel(chosen_action.action_id, chosen_action.channel)
    else:
        choice = NO_ACTION
    if choice not in actions:
        raise OPEInputError(f"{where}: the chosen {choice} is not among its options")
    index = actions.index(choice)
    if probabilities[index] <= 0.0:
        raise OPEInputError(f"{where}: the chosen {choice} had logging probability 0")
    return LoggedRound(record, source, actions, tuple(probabilities), index, withdrawn)


@dataclass(frozen=True)
class LoggedEvents:
    """The events a log is evaluated with: the data set the API's profiles were
    materialised from (``base``) and what the API received since (``received``)."""

    base: RetailDataset
    received: pd.DataFrame

    @property
    def events(self) -> pd.DataFrame:
        """Every event once."""
        return pd.concat([self.base.events, self.received], ignore_index=True)


def load_events(paths: Sequence[str | Path]) -> LoggedEvents:
    """The events of contract data sets and event archives.

    The first path must be the contract data set the API's profiles were materialised
    from (customers, products, offers and the events before): its population priors
    are the API's. The others are event archives (``NBA_ARCHIVE_DIR``) or data sets
    (``nba archive export``) of what the API received; their events are kept once (by
    event id).
    """
    if not paths:
        raise OPEInputError("no events given")
    base: RetailDataset | None = None
    received: list[pd.DataFrame] = []
    for raw in paths:
        path = Path(raw)
        if not path.is_dir():
            raise OPEInputError(f"{path}: not a directory (a contract data set or event archive)")
        if find_table_file(path, "customers") is not None:
            data = load_dataset(path)
            if base is None:
                base = data
            else:
                received.append(data.events)
        elif (path / "segments").is_dir() or (path / "events").is_dir():
            if base is None:
                break
            received.append(read_archive(path))
        else:
            raise OPEInputError(
                f"{path}: neither a contract data set (no customers.parquet or .csv) nor an "
                "event archive (no segments/ or events/ folder)"
            )
    if base is None:
        raise OPEInputError(
            "re-scoring the logged contexts needs the customers and products: give first "
            "the contract data set the API's profiles were materialised from (--events)"
        )
    frames = [f for f in received if len(f)]
    later = pd.concat(frames, ignore_index=True) if frames else base.events.iloc[:0]
    later = later[~later["event_id"].isin(base.events["event_id"])]
    later = later.drop_duplicates("event_id", keep="first").reset_index(drop=True)
    return LoggedEvents(base, later)


def join_rewards(
    rounds: Sequence[LoggedRound],
    events: pd.DataFrame,
    *,
    reward: Reward = "revenue",
    attribution: Attribution = "direct",
    window: dt.timedelta = dt.timedelta(hours=72),
) -> np.ndarray:
    """Each round's reward from the outcomes attributed to it, shape ``(n_rounds,)``."""
    if reward not in REWARDS:
        raise OPEInputError(f"unknown reward {reward!r} (expected one of: {', '.join(REWARDS)})")
    if attribution not in ATTRIBUTIONS:
        raise OPEInputError(
            f"unknown attribution {attribution!r} (expected one of: {', '.join(ATTRIBUTIONS)})"
        )
    exposures = exposures_of(decisions_frame([r.record for r in rounds]))
    credited = attribute(
        exposures,
        events,
        window=window,
        model="last_touch" if attribution == "direct" else attribution,
    )
    if attribution == "direct":
        credited = credited[credited["rule"] == "direct"]
    kind = EventType.MESSAGE_CLICKED if reward == "clicks" else EventType.PURCHASE
    credited = credited[credited["event_type"] == kind.value]
    column = "revenue" if reward == "revenue" else "credit"
    per_decision = credited.groupby("decision_id")[column].sum()
    totals = per_decision.to_dict()
    return np.array([float(totals.get(r.record.decision_id, 0.0)) for r in rounds])


@dataclass
class Replay:
    """The logged decisions' contexts rebuilt from the events (see the module doc)."""

    contexts: list[LoggedContext]
    #: Rounds whose rebuilt context features all equal the logged ones.
    features_agree: int = 0
    #: Per feature, the rounds where the rebuilt value differs from the logged one.
    feature_mismatches: dict[str, int] = field(default_factory=dict)
    #: Logged options screening of the rebuilt context did not give.
    missing_options: int = 0
    #: Rounds whose customer had no profile when replayed (decided as a cold start).
    unknown_customers: int = 0


def replay_contexts(
    rounds: Sequence[LoggedRound],
    events: LoggedEvents,
    catalog: Catalog,
    contact_policy: ContactPolicy,
) -> Replay:
    """Rebuild each round's :class:`~experiments.ope_logging.LoggedContext` (module doc, 3)."""
    order = sorted(range(len(rounds)), key=lambda i: rounds[i].record.decided_at)
    start = rounds[order[0]].record.decided_at
    first = pd.Timestamp(start)
    data = events.base
    at = pd.to_datetime(data.events["timestamp"], utc=True)
    before = at < first
    # materialised just after the data set's last event, as the API's were: the events
    # it received since are all later, so none is refused as stale
    built = start if not before.any() else min(start, at[before].max() + pd.Timedelta("1us"))
    online = OnlineProfiles(MemoryOnlineStore(), data.products)
    stock = StockLevels(None, "", data.products)
    online.materialise(
        build_profiles(
            RetailDataset(data.customers, data.products, data.offers, data.events[before]),
            as_of=pd.Timestamp(built).ceil("us").to_pydatetime(),
            workers=1,
        )
    )
    later = pd.concat([data.events[at >= first], events.received], ignore_index=True)
    later = later.assign(_at=_known_at(later, rounds)).sort_values("_at", kind="stable")
    stamps = later["_at"].to_numpy(dtype="datetime64[ns]")
    later = later.drop(columns="_at")
    position = 0
    history: dict[str, dict[str, dt.datetime]] = {}
    usage: dict[dt.date, tuple[dict[str, int], dict[str, int]]] = {}
    # per decision: what its sends changed, to give back if a later one withdraws it
    given: dict[str, tuple[dict[str, dt.datetime | None], dt.date, Consumption]] = {}
    replay = Replay(contexts=[])
    contexts: list[LoggedContext | None] = [None] * len(rounds)
    for i in order:
        record = rounds[i].record
        now = record.decided_at.astimezone(dt.UTC)
        end = int(np.searchsorted(stamps, np.datetime64(now.replace(tzinfo=None), "ns"), "right"))
        if end > position:
            online.ingest(later.iloc[position:end])
            position = end
        profile = online.profile(record.customer_id, now)
        if profile is None:
            replay.unknown_customers += 1
            profile = CustomerProfile(record.customer_id, as_of=now)
        profile = stock.sellable(profile)  # the cart and browsed products that can be bought
        context = CustomerContext(
            profile,
            now,
            action_history=dict(history.get(record.customer_id, {})),
            has_new_arrivals=stock.has_arrivals_to_show(profile),
        )
        offers, sent = usage.get(contact_policy.budget_day(now), ({}, {}))
        screening = screen(catalog, contact_policy, context, UsageCounts(dict(offers), dict(sent)))
        contexts[i] = _logged_context(rounds[i], context, screening.candidates, replay)
        _count(replay, record, context_features(context, len(screening.candidates)))
        # what the API recorded after deciding: the messages it withdrew given back
        # (their history and budgets), then the sends and today's usage
        mine = history.setdefault(record.customer_id, {})
        for replaced in record.replaces:
            if replaced not in given:
                continue
            sent_before, budget_day, spent = given.pop(replaced)
            for action, last in sent_before.items():
                if last is None:
                    mine.pop(action, None)
                else:
                    mine[action] = last
            _add_usage(usage.setdefault(budget_day, ({}, {})), spent, -1)
        previous: dict[str, dt.datetime | None] = {}
        for a in record.actions:
            if a.send_at is not None:
                previous.setdefault(a.action_id, mine.get(a.action_id))
                mine[a.action_id] = a.send_at
        consumed = Consumption.of(
            catalog[a.action_id] for a in record.actions if a.action_id in catalog.ids
        )
        today = contact_policy.budget_day(now)
        _add_usage(usage.setdefault(today, ({}, {})), consumed, 1)
        if previous:
            given[record.decision_id] = (previous, today, consumed)
    replay.contexts = [c for c in contexts if c is not None]
    return replay


def _add_usage(
    day: tuple[dict[str, int], dict[str, int]], consumed: Consumption, sign: int
) -> None:
    for key, n in consumed.offers_given.items():
        day[0][key] = day[0].get(key, 0) + sign * n
    for key, n in consumed.actions_sent.items():
        day[1][key] = day[1].get(key, 0) + sign * n


def _known_at(events: pd.DataFrame, rounds: Sequence[LoggedRound]) -> pd.Series:
    """When the API could know each event: its time, but never before the decision it
    answers was made (a send at the decision's own moment is not known to it)."""
    at = pd.to_datetime(events["timestamp"], utc=True)
    decided = {r.record.decision_id: pd.Timestamp(r.record.decided_at) for r in rounds}
    if "decision_id" not in events:
        return at
    made = pd.to_datetime(events["decision_id"].map(decided), utc=True)
    after = made + pd.Timedelta(microseconds=1)
    return at.where(made.isna() | (at > made), after)


def _logged_context(
    round_: LoggedRound,
    context: CustomerContext,
    candidates: Sequence[ActionCandidate],
    replay: Replay,
) -> LoggedContext:
    screened = {ActionChannel(c.action.id, None) for c in candidates if not c.slots}
    screened |= {ActionChannel(c.action.id, s.channel.value) for c in candidates for s in c.slots}
    if not any(c.action.is_do_nothing for c in candidates):
        screened.add(NO_ACTION)
    replay.missing_options += sum(1 for a in round_.actions if a not in screened and a != NO_ACTION)
    return LoggedContext(
        context=context,
        candidates=tuple(candidates),
        stats={},
        actions=round_.actions,
        probabilities=round_.probabilities,
        chosen=round_.chosen,
    )


def _count(replay: Replay, record: LoggedDecision, rebuilt: dict[str, float]) -> None:
    agree = True
    for name in CONTEXT_FEATURES:
        if name == "candidates" or name not in record.context:
            continue  # the log counts the candidates screening gave the engine
        logged, again = record.context[name], rebuilt[name]
        same = (math.isnan(logged) and math.isnan(again)) or math.isclose(
            logged, again, rel_tol=1e-6, abs_tol=1e-6
        )
        if not same:
            agree = False
            replay.feature_mismatches[name] = replay.feature_mismatches.get(name, 0) + 1
    replay.features_agree += agree


def candidate_distributions(
    names: Sequence[str],
    rounds: Sequence[LoggedRound],
    contexts: Sequence[LoggedContext],
    catalog: Catalog,
    contact_policy: ContactPolicy,
    *,
    seed: int = 0,
) -> dict[str, list[Distribution]]:
    """Each candidate's probability of every action at each round."""
    out: dict[str, list[Distribution]] = {}
    for name in names:
        if name == LOGGED:
            out[name] = [dict(zip(r.actions, r.probabilities, strict=True)) for r in rounds]
            continue
        factory = CANDIDATES.get(name)
        if factory is None:
            raise OPEInputError(
                f"unknown candidate policy {name!r} (expected one of: {', '.join(CANDIDATE_NAMES)})"
            )
        policy = factory(catalog, contact_policy)
        out[name] = [policy_distribution(policy, c, seed=seed) for c in contexts]
    return out


@dataclass(frozen=True, eq=False)
class LogEvaluation:
    """Off-policy estimates of candidates from the API's log (see the module doc)."""

    rounds: list[LoggedRound]
    replay: Replay
    reward: np.ndarray
    reward_name: Reward
    distributions: dict[str, list[Distribution]]
    candidates: list[CandidateEstimates]
    #: decisions of the log whose messages a later decision withdrew, and what was done
    #: with them (:data:`~experiments.ope_rounds.Withdrawn`; "dropped": not rounds)
    withdrawn: int = 0
    withdrawn_as: Withdrawn = "dropped"

    @property
    def n_rounds(self) -> int:
        return len(self.rounds)

    def table(self) -> pd.DataFrame:
        """One row per candidate and estimator."""
        return pd.DataFrame(
            [
                {"candidate": c.candidate, **e.as_dict(), "unsupported_mass": c.unsupported_mass}
                for c in self.candidates
                for e in c.estimates
            ]
        )

    def markdown(self, truth: dict[str, float] | None = None) -> str:
        """The estimates as Markdown (per decision), with each candidate's truth when known."""
        header = f"| candidate | estimator | estimate ({self.reward_name}/decision) | 95 % CI "
        header += "| ESS | max w |"
        rule = "|---|---|---:|---|---:|---:|"
        if truth is not None:
            header += " truth at logged contexts | in CI |"
            rule += "---:|:-:|"
        lines = [header, rule]
        for c in self.candidates:
            for e in c.estimates:
                line = (
                    f"| {c.candidate} | {e.estimator} | {e.estimate:.4f} | "
                    f"[{e.ci_low:.4f}, {e.ci_high:.4f}] | {e.effective_sample_size:,.0f} | "
                    f"{e.max_weight:.1f} |"
                )
                if truth is not None:
                    value = truth[c.candidate]
                    line += f" {value:.4f} | {'yes' if e.contains(value) else 'NO'} |"
                lines.append(line)
        return "\n".join(lines)


def evaluate_log(
    log_dir: str | Path,
    events: LoggedEvents,
    *,
    catalog: Catalog,
    contact_policy: ContactPolicy,
    candidates: Sequence[str] = (LOGGED, "rules", "random", "nba-greedy"),
    reward: Reward = "revenue",
    attribution: Attribution = "direct",
    window: dt.timedelta = dt.timedelta(hours=72),
    interval: IntervalMethod = "normal",
    n_folds: int = 3,
    seed: int = 0,
    progress: Callable[[str], None] | None = None,
    withdrawn: Withdrawn = "dropped",
) -> LogEvaluation:
    """Estimate each candidate's value per decision from the API's decision log.

    Parameters
    ----------
    log_dir
        The API's decision log (``NBA_DECISION_LOG_DIR``).
    events
        The data set the API was materialised from and the events it received since
        (:func:`load_events`).
    catalog, contact_policy
        The API's: screening of the rebuilt contexts must be the API's.
    candidates
        Names from :data:`CANDIDATE_NAMES`.
    reward, attribution, window
        What a round earns, and how outcomes are joined to it (module doc, 2).
    withdrawn
        What to do with the decisions whose messages were withdrawn (module doc, 5):
        ``"dropped"``; ``"kept"`` or ``"do_nothing"`` only to measure the difference.
    """
    say = progress or (lambda _: None)
    unknown = [c for c in candidates if c not in CANDIDATE_NAMES]
    if unknown:
        raise OPEInputError(
            f"unknown candidate policy {unknown[0]!r} (expected one of: "
            f"{', '.join(CANDIDATE_NAMES)})"
        )
    say("reading the decision log")
    logged = logged_rounds(log_dir)
    say("rebuilding the logged contexts from the events")
    replay = replay_contexts(logged, events, catalog, contact_policy)
    rounds, contexts = [], []
    for r, c in zip(logged, replay.contexts, strict=True):
        if r.withdrawn:
            index = withdrawn_round(r.actions, r.chosen, withdrawn)
            if index is None:
                continue
            r = dataclasses.replace(r, chosen=index)
            c = dataclasses.replace(c, chosen=index)
        rounds.append(r)
        contexts.append(c)
    if not rounds:
        raise OPEInputError(f"{log_dir}: every decision of the log was withdrawn")
    replay.contexts = contexts
    say("joining rewards by attribution")
    rewards = join_rewards(
        rounds, events.events, reward=reward, attribution=attribution, window=window
    )
    say("candidate distributions at the logged contexts")
    distributions = candidate_distributions(
        candidates, rounds, replay.contexts, catalog, contact_policy, seed=seed
    )
    say("fitting the reward model (cross-fitted) and estimating")
    context = np.array(
        [[r.record.context.get(name, math.nan) for name in CONTEXT_FEATURES] for r in rounds],
        dtype=float,
    ).reshape(len(rounds), len(CONTEXT_FEATURES))
    estimates = estimate_candidates(
        logged_actions=[r.actions for r in rounds],
        logged_probabilities=[r.probabilities for r in rounds],
        chosen=[r.chosen for r in rounds],
        reward=rewards,
        context=context,
        customer_ids=[r.record.customer_id for r in rounds],
        distributions=distributions,
        catalog=catalog,
        interval=interval,
        n_folds=n_folds,
        seed=seed,
    )
    return LogEvaluation(
        rounds,
        replay,
        rewards,
        reward,
        distributions,
        estimates,
        sum(r.withdrawn for r in logged),
        withdrawn,
    )


#: The MLflow experiment of off-policy evaluations.
MLFLOW_EXPERIMENT = "ope"


def log_to_mlflow(evaluation: LogEvaluation, tracking_uri: str, *, run_name: str) -> str:
    """Log the estimates as a run of the MLflow experiment ``ope``; return the run id.

    Metrics ``<candidate>.<estimator>.{estimate,ci_low,ci_high,ess,max_weight}``; the
    table as ``ope.md`` and ``ope.csv``.
    """
    from mlflow import MlflowClient
    from mlflow.entities import Metric, Param

    client = MlflowClient(tracking_uri=tracking_uri)
    existing = client.get_experiment_by_name(MLFLOW_EXPERIMENT)
    experiment_id = (
        existing.experiment_id
        if existing is not None
        else client.create_experiment(MLFLOW_EXPERIMENT, tags={"nba.kind": "ope"})
    )
    run_id: str = client.create_run(
        experiment_id, run_name=run_name, tags={"nba.kind": "ope"}
    ).info.run_id
    replay = evaluation.replay
    now = int(dt.datetime.now(dt.UTC).timestamp() * 1000)
    metrics = [
        Metric("rounds", evaluation.n_rounds, now, 0),
        Metric("withdrawn", evaluation.withdrawn, now, 0),
        Metric("logged_value", float(np.mean(evaluation.reward)), now, 0),
        Metric("features_agree", replay.features_agree, now, 0),
        Metric("missing_options", replay.missing_options, now, 0),
    ]
    for c in evaluation.candidates:
        metrics.append(Metric(f"{c.candidate}.unsupported_mass", c.unsupported_mass, now, 0))
        for e in c.estimates:
            for key, value in (
                ("estimate", e.estimate),
                ("ci_low", e.ci_low),
                ("ci_high", e.ci_high),
                ("ess", e.effective_sample_size),
                ("max_weight", e.max_weight),
            ):
                metrics.append(Metric(f"{c.candidate}.{e.estimator}.{key}", value, now, 0))
    try:
        client.log_batch(
            run_id,
            metrics=metrics,
            params=[
                Param("reward", evaluation.reward_name),
                Param("candidates", ",".join(c.candidate for c in evaluation.candidates)),
            ],
        )
        client.log_text(run_id, evaluation.markdown(), "ope.md")
        client.log_text(run_id, evaluation.table().to_csv(index=False), "ope.csv")
    except Exception:
        client.set_terminated(run_id, status="FAILED")
        raise
    client.set_terminated(run_id)
    return run_id
