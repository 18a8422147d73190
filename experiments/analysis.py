"""The outcome of an experiment, per arm, with confidence intervals.

:func:`analyse_experiment` reads the decision log (one row per decision and
action, :func:`experiments.decision_log.read_decision_log`) and the outcome
events (contract events) and answers, for every arm:

* **customers**: everyone who got at least one decision of the arm while the
  experiment ran (intent to treat: a control customer counts although they
  received nothing). A customer *enters* at their first such decision; their
  outcomes are the events from then until the experiment's end plus its
  attribution window (or ``until``);
* **conversion rate** (share who bought at least once) and **revenue per
  customer**, each with a 95 % interval (normal; Poisson bootstrap for revenue,
  :func:`simulator.closed_loop.metrics.ratio_interval`);
* **uplift vs control**: difference and relative difference with 95 %
  Welch intervals (relative: delta method), Welch p-values, and a bootstrap
  interval of the revenue difference;
* **the leader against the other arms**: the treatment arm with the best primary
  metric against each other treatment arm (difference, 95 % Welch interval, p-value),
  so that "did the engine beat the rule-based journeys?" has an answer;
* **sample-ratio mismatch**: a chi-square test of the customers per arm
  against the configured allocation (flagged when p < 0.001: the assignment or
  the logging is broken, and no uplift can be trusted);
* **guardrails**: unsubscribe and complaint rates against control; *breached*
  when the arm's rate exceeds control's by more than the configured
  ``max_increase`` and the increase is significant (95 % interval above 0);
* **breakdowns** by channel (exposures and attributed outcomes,
  :mod:`experiments.attribution`) and by customer segment (uplift per segment);
* **daily monitoring**: the primary metric's difference per day with the
  usual interval and the always-valid one (:mod:`experiments.sequential`),
  which may be looked at every day.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from experiments.attribution import AttributionModel, attribute, credit_by_channel, exposures_of
from experiments.sequential import difference_sequence, fixed_interval
from nba.events import EventType
from nba.experiment import ExperimentConfig, GuardrailMetric, PrimaryMetric
from simulator.closed_loop.metrics import BOOTSTRAP_DRAWS, ratio_interval

#: p-value below which the sample ratio is declared mismatched.
SRM_P_VALUE = 0.001
LEVEL = 0.95
_Z = float(stats.norm.ppf(0.5 + LEVEL / 2))
_UNSUBSCRIBES = (EventType.UNSUBSCRIBE.value, EventType.SMS_STOP.value)

#: Per-customer outcome columns of :attr:`ExperimentAnalysis.customers`.
METRIC_COLUMNS: dict[str, str] = {
    PrimaryMetric.CONVERSION_RATE.value: "converted",
    PrimaryMetric.REVENUE_PER_CUSTOMER.value: "revenue",
    GuardrailMetric.UNSUBSCRIBE_RATE.value: "unsubscribed",
    GuardrailMetric.COMPLAINT_RATE.value: "complained",
}


@dataclass(frozen=True)
class ArmSummary:
    """One arm's customers and outcomes."""

    arm: str
    kind: str
    allocation: float
    customers: int
    contacts: int
    conversion_rate: float
    conversion_ci: tuple[float, float]
    revenue_per_customer: float
    revenue_ci: tuple[float, float]
    unsubscribe_rate: float
    complaint_rate: float


@dataclass(frozen=True)
class Uplift:
    """An arm against control on one metric (per customer)."""

    arm: str
    metric: str
    control: float
    value: float
    difference: float
    ci: tuple[float, float]
    relative: float
    relative_ci: tuple[float, float]
    p_value: float
    bootstrap_ci: tuple[float, float] | None = None

    @property
    def significant(self) -> bool:
        return self.ci[0] > 0 or self.ci[1] < 0


@dataclass(frozen=True)
class ArmComparison:
    """The leading treatment arm against another on the primary metric: ``uplift`` is
    the leader minus ``other`` (its ``control`` is the other arm's value)."""

    leader: str
    other: str
    uplift: Uplift


@dataclass(frozen=True)
class SampleRatioCheck:
    """Customers per arm against the configured allocation."""

    observed: dict[str, int]
    expected: dict[str, float]
    chi2: float
    p_value: float

    @property
    def mismatch(self) -> bool:
        return self.p_value < SRM_P_VALUE


@dataclass(frozen=True)
class GuardrailResult:
    """A guardrail metric of an arm against control."""

    arm: str
    metric: str
    control: float
    value: float
    difference: float
    ci: tuple[float, float]
    p_value: float
    max_increase: float

    @property
    def breached(self) -> bool:
        return self.difference > self.max_increase and self.ci[0] > 0


@dataclass(frozen=True, eq=False)
class ExperimentAnalysis:
    """Everything :func:`analyse_experiment` found (see the module doc).

    ``customers``: one row per customer (``customer_id``, ``arm``, ``entered_at``,
    ``segment``, ``contacts``, ``orders``, ``revenue``, ``converted``,
    ``unsubscribed``, ``complained``). ``channels``: per arm and channel,
    ``contacts`` and attributed ``conversions``, ``revenue``, ``clicks``,
    ``unsubscribes``, ``complaints``, ``revenue_per_contact``. ``segments``: per
    segment and arm, customers, conversion rate, revenue per customer and the
    revenue uplift vs control with its interval. ``daily``: per day and arm,
    the primary metric's difference vs control with the fixed and the
    always-valid intervals.
    """

    config: ExperimentConfig
    arms: tuple[ArmSummary, ...]
    uplifts: tuple[Uplift, ...]
    sample_ratio: SampleRatioCheck
    guardrails: tuple[GuardrailResult, ...]
    customers: pd.DataFrame
    channels: pd.DataFrame
    segments: pd.DataFrame
    daily: pd.DataFrame
    attribution_model: str
    observed_until: dt.datetime
    #: Per arm and channel: customers opted in there ("fans") and their revenue per
    #: customer against control's fans (empty when no consents were given).
    fans: pd.DataFrame = field(default_factory=pd.DataFrame)
    #: The treatment arm with the best primary metric against each other treatment arm.
    comparisons: tuple[ArmComparison, ...] = ()

    @property
    def control(self) -> ArmSummary | None:
        control = self.config.control
        return next((a for a in self.arms if control and a.arm == control.name), None)

    def uplift(self, arm: str, metric: str) -> Uplift:
        for u in self.uplifts:
            if u.arm == arm and u.metric == metric:
                return u
        raise KeyError(f"no uplift of {metric!r} for arm {arm!r}")

    def summary(self) -> dict[str, Any]:
        """A JSON-ready summary (no per-customer rows)."""
        return {
            "experiment": self.config.name,
            "primary_metric": self.config.primary_metric.value,
            "observed_until": self.observed_until.isoformat(),
            "attribution_model": self.attribution_model,
            "arms": [asdict(a) for a in self.arms],
            "uplifts": [asdict(u) | {"significant": u.significant} for u in self.uplifts],
            "sample_ratio": asdict(self.sample_ratio) | {"mismatch": self.sample_ratio.mismatch},
            "guardrails": [asdict(g) | {"breached": g.breached} for g in self.guardrails],
            "comparisons": [
                asdict(c) | {"significant": c.uplift.significant} for c in self.comparisons
            ],
        }


def analyse_experiment(
    config: ExperimentConfig,
    decisions: pd.DataFrame,
    events: pd.DataFrame,
    *,
    segments: Mapping[str, str] | None = None,
    until: dt.datetime | None = None,
    attribution_model: AttributionModel = "last_touch",
    planned_customers: int | None = None,
    bootstrap: bool = True,
    seed: int = 0,
    consents: pd.DataFrame | None = None,
) -> ExperimentAnalysis:
    """Analyse ``config``'s experiment from its decision log and outcome events.

    Parameters
    ----------
    config
        The experiment (arms, allocation, window, guardrails).
    decisions
        The decision log frame (:data:`experiments.decision_log.LOG_COLUMNS`).
    events
        Contract events (purchases with ``revenue``, unsubscribes, complaints...).
    segments
        Customer id -> segment name, for the segment breakdown (e.g. the
        lifecycle state when the experiment started).
    until
        End of observation; the experiment's end plus its attribution window
        when omitted.
    attribution_model
        How the channel breakdown credits outcomes (``last_touch`` or
        ``position_based``).
    planned_customers
        Customers planned per comparison (arm + control), where the always-valid
        sequence is tightest; the final count when omitted.
    bootstrap
        Bootstrap the revenue intervals (1,000 Poisson resamples: about a second
        per 10,000 customers); normal intervals only when false.
    seed
        Seeds the bootstrap.
    consents
        ``customer_id`` and ``consent_<channel>`` columns (opted in when the experiment
        started), for revenue per opted-in customer per channel ("revenue per fan").
    """
    observed_until = until or (config.end + config.attribution_window)
    log = decisions[decisions["arm"].notna()].copy()
    log["decided_at"] = pd.to_datetime(log["decided_at"], utc=True)
    log = log[
        (log["decided_at"] >= pd.Timestamp(config.start))
        & (log["decided_at"] < pd.Timestamp(config.end))
    ]
    unknown = sorted(set(log["arm"]) - {a.name for a in config.arms})
    if unknown:
        raise ValueError(
            f"the decision log names arms that experiment {config.name!r} does not have: "
            f"{', '.join(map(str, unknown))}"
        )
    outcomes = _prepare_events(events)
    customers = customer_outcomes(log, outcomes, observed_until)
    if segments is not None:
        customers["segment"] = customers["customer_id"].map(segments).fillna("(unknown)")
    else:
        customers["segment"] = "all"
    arms = tuple(
        _summarise(a.name, a.kind.value, a.allocation, customers, seed if bootstrap else None)
        for a in config.arms
    )
    control = config.control
    uplifts: list[Uplift] = []
    guardrails: list[GuardrailResult] = []
    if control is not None:
        base = customers[customers["arm"] == control.name]
        for arm in config.arms:
            if arm.is_control:
                continue
            part = customers[customers["arm"] == arm.name]
            for metric in (PrimaryMetric.CONVERSION_RATE, PrimaryMetric.REVENUE_PER_CUSTOMER):
                column = METRIC_COLUMNS[metric.value]
                boot = (
                    bootstrap_difference(part[column], base[column], seed=seed)
                    if bootstrap and metric == PrimaryMetric.REVENUE_PER_CUSTOMER
                    else None
                )
                uplifts.append(_uplift(arm.name, metric.value, part[column], base[column], boot))
            for guardrail in config.guardrails:
                column = METRIC_COLUMNS[guardrail.metric.value]
                u = _uplift(arm.name, guardrail.metric.value, part[column], base[column], None)
                guardrails.append(
                    GuardrailResult(
                        arm.name,
                        guardrail.metric.value,
                        u.control,
                        u.value,
                        u.difference,
                        u.ci,
                        u.p_value,
                        guardrail.max_increase,
                    )
                )
    exposures = exposures_of(log)
    credited = attribute(
        exposures, outcomes, window=config.attribution_window, model=attribution_model
    )
    return ExperimentAnalysis(
        config=config,
        arms=arms,
        uplifts=tuple(uplifts),
        sample_ratio=sample_ratio_check(config, customers),
        guardrails=tuple(guardrails),
        customers=customers,
        channels=channel_breakdown(exposures, credited),
        segments=segment_breakdown(config, customers),
        daily=daily_monitoring(config, customers, outcomes, observed_until, planned_customers),
        attribution_model=attribution_model,
        observed_until=observed_until,
        fans=pd.DataFrame() if consents is None else fan_breakdown(config, customers, consents),
        comparisons=arm_comparisons(config, customers),
    )


def arm_comparisons(config: ExperimentConfig, customers: pd.DataFrame) -> tuple[ArmComparison, ...]:
    """The treatment arm with the best primary metric (per customer) against each other
    treatment arm, best first; none with fewer than two treatment arms."""
    column = METRIC_COLUMNS[config.primary_metric.value]
    values = {
        a.name: customers.loc[customers["arm"] == a.name, column]
        for a in config.arms
        if not a.is_control
    }
    ranked = sorted(
        (name for name, v in values.items() if len(v)),
        key=lambda name: -float(values[name].mean()),
    )
    if len(ranked) < 2:
        return ()
    leader = ranked[0]
    return tuple(
        ArmComparison(
            leader,
            other,
            _uplift(leader, config.primary_metric.value, values[leader], values[other], None),
        )
        for other in ranked[1:]
    )


def fan_breakdown(
    config: ExperimentConfig, customers: pd.DataFrame, consents: pd.DataFrame
) -> pd.DataFrame:
    """Per channel and arm: the arm's customers opted in on the channel ("fans"), their
    revenue per customer, and its difference to control's fans (Welch interval).

    What a channel's audience is worth: a marketer compares arms on the customers a
    channel can reach, not on everyone.
    """
    rows: list[dict[str, Any]] = []
    control = config.control
    columns = [c for c in consents.columns if c.startswith("consent_") and not c.endswith("_at")]
    joined = customers.merge(consents[["customer_id", *columns]], on="customer_id", how="left")
    for column in columns:
        channel = column.removeprefix("consent_")
        fans = joined[joined[column].fillna(False).astype(bool)]
        base = fans[fans["arm"] == control.name] if control else fans.iloc[0:0]
        for arm in config.arms:
            mine = fans[fans["arm"] == arm.name]
            row: dict[str, Any] = {
                "channel": channel,
                "arm": arm.name,
                "fans": len(mine),
                "revenue_per_fan": _mean(mine["revenue"].to_numpy(dtype=float)),
                "difference": math.nan,
                "difference_low": math.nan,
                "difference_high": math.nan,
            }
            if control is not None and not arm.is_control and len(mine) and len(base):
                u = _uplift(
                    arm.name, "revenue_per_customer", mine["revenue"], base["revenue"], None
                )
                row |= {
                    "difference": u.difference,
                    "difference_low": u.ci[0],
                    "difference_high": u.ci[1],
                }
            rows.append(row)
    return pd.DataFrame(rows)


def _prepare_events(events: pd.DataFrame) -> pd.DataFrame:
    frame = events.copy()
    frame["timestamp"] = pd.to_datetime(frame["timestamp"], utc=True)
    frame["event_type"] = frame["event_type"].astype(str)
    frame["customer_id"] = frame["customer_id"].astype(str)
    frame["revenue"] = frame["revenue"].astype(float).fillna(0.0) if "revenue" in frame else 0.0
    return frame


def customer_outcomes(log: pd.DataFrame, events: pd.DataFrame, until: dt.datetime) -> pd.DataFrame:
    """One row per customer of the experiment: arm (of their first decision), entry,
    contacts, and outcomes from entry to ``until``."""
    ordered = log.sort_values("decided_at", kind="stable")
    first = ordered.groupby("customer_id", sort=True).agg(
        arm=("arm", "first"), entered_at=("decided_at", "first")
    )
    contacts = exposures_of(ordered).groupby("customer_id").size()
    frame = first.assign(contacts=contacts.reindex(first.index).fillna(0).astype(int))
    frame = frame.reset_index()
    joined = events.merge(frame[["customer_id", "entered_at"]], on="customer_id", how="inner")
    joined = joined[
        (joined["timestamp"] >= joined["entered_at"]) & (joined["timestamp"] < pd.Timestamp(until))
    ]
    purchases = joined[joined["event_type"] == EventType.PURCHASE.value].groupby("customer_id")
    orders = purchases.size()
    revenue = purchases["revenue"].sum()
    unsubscribed = joined[joined["event_type"].isin(_UNSUBSCRIBES)]["customer_id"].unique()
    complained = joined[joined["event_type"] == EventType.COMPLAINT.value]["customer_id"].unique()
    ids = frame["customer_id"]
    frame["orders"] = ids.map(orders).fillna(0).astype(int).to_numpy()
    frame["revenue"] = ids.map(revenue).fillna(0.0).astype(float).to_numpy()
    frame["converted"] = (frame["orders"] > 0).astype(float)
    frame["unsubscribed"] = ids.isin(unsubscribed).astype(float).to_numpy()
    frame["complained"] = ids.isin(complained).astype(float).to_numpy()
    return frame


def _summarise(
    name: str, kind: str, allocation: float, customers: pd.DataFrame, seed: int | None
) -> ArmSummary:
    """``seed=None``: a normal interval for revenue rather than the bootstrap."""
    part = customers[customers["arm"] == name]
    n = len(part)
    conversion = part["converted"].to_numpy(dtype=float)
    revenue = part["revenue"].to_numpy(dtype=float)
    return ArmSummary(
        arm=name,
        kind=kind,
        allocation=allocation,
        customers=n,
        contacts=int(part["contacts"].sum()),
        conversion_rate=_mean(conversion),
        conversion_ci=_mean_interval(conversion),
        revenue_per_customer=_mean(revenue),
        revenue_ci=(
            _mean_interval(revenue)
            if seed is None
            else ratio_interval(revenue, np.ones(n), seed=seed, level=LEVEL)
        ),
        unsubscribe_rate=_mean(part["unsubscribed"].to_numpy(dtype=float)),
        complaint_rate=_mean(part["complained"].to_numpy(dtype=float)),
    )


def _mean(values: np.ndarray) -> float:
    """The mean, or NaN (reported as n/a) for an empty arm: no customers is no evidence."""
    return float(values.mean()) if values.size else math.nan


def _mean_interval(values: np.ndarray) -> tuple[float, float]:
    if values.size < 2:
        return (math.nan, math.nan)
    mean, se = values.mean(), values.std(ddof=1) / math.sqrt(values.size)
    return (float(mean - _Z * se), float(mean + _Z * se))


def _uplift(
    arm: str,
    metric: str,
    values: pd.Series,
    control: pd.Series,
    bootstrap: tuple[float, float] | None,
) -> Uplift:
    a, c = values.to_numpy(dtype=float), control.to_numpy(dtype=float)
    ma, mc = _mean(a), _mean(c)
    diff = ma - mc
    if a.size < 2 or c.size < 2:
        nan = (math.nan, math.nan)
        return Uplift(arm, metric, mc, ma, diff, nan, math.nan, nan, math.nan, bootstrap)
    va, vc = a.var(ddof=1) / a.size, c.var(ddof=1) / c.size
    se = math.sqrt(va + vc)
    ci = (diff - _Z * se, diff + _Z * se)
    if se > 0:
        p_value = float(stats.ttest_ind(a, c, equal_var=False).pvalue)
    else:
        p_value = 1.0 if diff == 0 else 0.0
    if mc > 0:
        relative = diff / mc
        rel_se = math.sqrt(va / mc**2 + vc * ma**2 / mc**4)
        relative_ci = (relative - _Z * rel_se, relative + _Z * rel_se)
    else:
        relative, relative_ci = math.nan, (math.nan, math.nan)
    return Uplift(arm, metric, mc, ma, diff, ci, relative, relative_ci, p_value, bootstrap)


def bootstrap_difference(
    values: pd.Series | np.ndarray,
    control: pd.Series | np.ndarray,
    *,
    seed: int = 0,
    level: float = LEVEL,
) -> tuple[float, float]:
    """Poisson-bootstrap interval of ``mean(values) - mean(control)`` for two
    independent groups (each resampled on its own).

    >>> bootstrap_difference(np.full(40, 3.0), np.full(60, 1.0))
    (2.0, 2.0)
    """
    a, c = np.asarray(values, dtype=float), np.asarray(control, dtype=float)
    if a.size == 0 or c.size == 0:
        return (math.nan, math.nan)
    rng = np.random.default_rng(seed)
    wa = rng.poisson(1.0, size=(BOOTSTRAP_DRAWS, a.size))
    wc = rng.poisson(1.0, size=(BOOTSTRAP_DRAWS, c.size))
    na, nc = wa.sum(axis=1), wc.sum(axis=1)
    ok = (na > 0) & (nc > 0)
    diff = (wa @ a)[ok] / na[ok] - (wc @ c)[ok] / nc[ok]
    low, high = np.quantile(diff, [(1 - level) / 2, (1 + level) / 2])
    return (float(low), float(high))


def sample_ratio_check(config: ExperimentConfig, customers: pd.DataFrame) -> SampleRatioCheck:
    """Chi-square test of customers per arm against the configured allocation."""
    counts = customers["arm"].value_counts()
    observed = {a.name: int(counts.get(a.name, 0)) for a in config.arms}
    total = sum(observed.values())
    expected = {a.name: a.allocation * total for a in config.arms}
    if total == 0:
        return SampleRatioCheck(observed, expected, 0.0, 1.0)
    result = stats.chisquare(list(observed.values()), list(expected.values()))
    return SampleRatioCheck(observed, expected, float(result.statistic), float(result.pvalue))


def channel_breakdown(exposures: pd.DataFrame, credited: pd.DataFrame) -> pd.DataFrame:
    """Per arm and channel: exposures (``contacts``) and attributed outcomes."""
    sent = exposures.groupby(["arm", "channel"]).size().rename("contacts").reset_index()
    table = sent.merge(credit_by_channel(credited), on=["arm", "channel"], how="outer")
    numeric = ["contacts", "conversions", "revenue", "clicks", "unsubscribes", "complaints"]
    table[numeric] = table[numeric].astype(float).fillna(0.0)
    table["contacts"] = table["contacts"].astype(int)
    with np.errstate(divide="ignore", invalid="ignore"):
        table["revenue_per_contact"] = np.where(
            table["contacts"] > 0, table["revenue"] / table["contacts"], 0.0
        )
    return table.sort_values(["arm", "contacts"], ascending=[True, False]).reset_index(drop=True)


def segment_breakdown(config: ExperimentConfig, customers: pd.DataFrame) -> pd.DataFrame:
    """Per segment and arm: customers, conversion rate, revenue per customer, and the
    revenue per customer uplift vs control in the segment (Welch interval)."""
    rows: list[dict[str, Any]] = []
    control = config.control
    for segment, part in customers.groupby("segment", sort=True):
        base = part[part["arm"] == control.name] if control else part.iloc[0:0]
        for arm in config.arms:
            mine = part[part["arm"] == arm.name]
            row: dict[str, Any] = {
                "segment": segment,
                "arm": arm.name,
                "customers": len(mine),
                "conversion_rate": _mean(mine["converted"].to_numpy(dtype=float)),
                "revenue_per_customer": _mean(mine["revenue"].to_numpy(dtype=float)),
                "revenue_uplift": math.nan,
                "revenue_uplift_low": math.nan,
                "revenue_uplift_high": math.nan,
            }
            if control is not None and not arm.is_control:
                u = _uplift(
                    arm.name, "revenue_per_customer", mine["revenue"], base["revenue"], None
                )
                row |= {
                    "revenue_uplift": u.difference,
                    "revenue_uplift_low": u.ci[0],
                    "revenue_uplift_high": u.ci[1],
                }
            rows.append(row)
    return pd.DataFrame(rows)


DAILY_COLUMNS = (
    "day",
    "arm",
    "metric",
    "customers",
    "control_customers",
    "difference",
    "fixed_low",
    "fixed_high",
    "always_valid_low",
    "always_valid_high",
)


def daily_monitoring(
    config: ExperimentConfig,
    customers: pd.DataFrame,
    events: pd.DataFrame,
    until: dt.datetime,
    planned_customers: int | None = None,
) -> pd.DataFrame:
    """The primary metric's difference vs control at the end of each day, as it was
    known then (customers entered so far, outcomes so far), with the fixed-horizon
    and the always-valid 95 % intervals."""
    control = config.control
    if control is None or customers.empty:
        return pd.DataFrame(columns=list(DAILY_COLUMNS))
    start = pd.Timestamp(config.start).floor("D")
    last = min(
        pd.Timestamp(until), pd.Timestamp(config.end) + pd.Timedelta(config.attribution_window)
    )
    n_days = max(1, math.ceil((last - start) / pd.Timedelta(days=1)))
    ends = start + pd.to_timedelta(np.arange(1, n_days + 1), unit="D")
    index = {cid: i for i, cid in enumerate(customers["customer_id"])}
    entered = customers["entered_at"].to_numpy(dtype="datetime64[ns]")
    purchases = events[
        (events["event_type"] == EventType.PURCHASE.value)
        & events["customer_id"].isin(index.keys())
    ]
    who = purchases["customer_id"].map(index).to_numpy(dtype=np.intp)
    at = purchases["timestamp"].dt.tz_convert(None).to_numpy(dtype="datetime64[ns]")
    keep = at >= entered[who]
    who, at = who[keep], at[keep]
    day = np.searchsorted(ends.tz_convert(None).to_numpy(dtype="datetime64[ns]"), at, "right")
    inside = day < n_days
    metric = config.primary_metric
    amount = (
        purchases["revenue"].to_numpy(dtype=float)[keep]
        if metric == PrimaryMetric.REVENUE_PER_CUSTOMER
        else np.ones(int(keep.sum()))
    )
    grid = np.zeros((len(customers), n_days))
    np.add.at(grid, (who[inside], day[inside]), amount[inside])
    grid = np.cumsum(grid, axis=1)
    if metric == PrimaryMetric.CONVERSION_RATE:
        grid = (grid > 0).astype(float)
    present = entered[:, None] < ends.tz_convert(None).to_numpy(dtype="datetime64[ns]")[None, :]
    arms = customers["arm"].to_numpy()
    stats_by_arm = {a.name: _daily_moments(grid, present, arms == a.name) for a in config.arms}
    mc, vc, nc = stats_by_arm[control.name]
    frames = []
    for arm in config.arms:
        if arm.is_control:
            continue
        ma, va, na = stats_by_arm[arm.name]
        planned = planned_customers or float(na[-1] + nc[-1]) or 1.0
        diff, low, high = difference_sequence(ma, va, na, mc, vc, nc, planned_units=planned)
        _, flow, fhigh = fixed_interval(ma, va, na, mc, vc, nc)
        frames.append(
            pd.DataFrame(
                {
                    "day": [d.date() for d in ends - pd.Timedelta(days=1)],
                    "arm": arm.name,
                    "metric": metric.value,
                    "customers": na.astype(int),
                    "control_customers": nc.astype(int),
                    "difference": diff,
                    "fixed_low": flow,
                    "fixed_high": fhigh,
                    "always_valid_low": low,
                    "always_valid_high": high,
                }
            )
        )
    return pd.concat(frames, ignore_index=True)


def _daily_moments(
    grid: np.ndarray, present: np.ndarray, mask: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    values, seen = grid[mask], present[mask]
    n = seen.sum(axis=0).astype(float)
    total = (values * seen).sum(axis=0)
    squares = (values**2 * seen).sum(axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        mean = np.where(n > 0, total / n, 0.0)
        var = np.where(n > 1, (squares - n * mean**2) / (n - 1), np.nan)
    return mean, np.maximum(var, 0.0), n
