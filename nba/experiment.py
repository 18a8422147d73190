"""Experiments: arms, allocation, deterministic assignment and the router.

An experiment is configuration a marketer edits (YAML or JSON, validated):

.. code-block:: yaml

    version: 1
    name: spring_reactivation          # letters, digits, _ . : -
    description: The engine against the journeys, with a 10 % global control group
    salt: spring-2026                  # change it to reshuffle customers
    start: 2026-03-01T00:00:00Z        # times carry their zone
    end: 2026-03-31T00:00:00Z
    primary_metric: revenue_per_customer   # or conversion_rate
    attribution_window_days: 7
    arms:                              # allocations sum to 1
      - {name: engine, kind: champion, allocation: 0.45, model_version: "3"}
      - {name: journeys, kind: rule_based, allocation: 0.45}
      - {name: control, kind: control, allocation: 0.10}   # receives nothing
    guardrails:                        # breached when an arm is significantly worse
      - {metric: unsubscribe_rate, max_increase: 0.002}    # than control by more than this
      - {metric: complaint_rate, max_increase: 0.0005}

Arm kinds: ``champion`` (the engine with the model in production),
``challenger`` (a candidate model), ``rule_based``, ``random`` and ``control``
(a global control group that receives nothing, the reference of every uplift).

**Assignment** is deterministic and sticky: ``sha256(salt + ":" + customer id)``
gives a number uniform in [0, 1); the arms own consecutive slices of [0, 1) of
their allocation's width, in the order listed. The same customer always lands in
the same arm, on any replica, without storing anything. Adding an arm at the
end and taking its share from the arm listed last moves only customers of that
arm. Outside ``[start, end)`` everyone gets the champion and no arm.

>>> config = parse_experiment({
...     "name": "demo", "salt": "s1",
...     "start": "2026-03-01T00:00:00Z", "end": "2026-03-31T00:00:00Z",
...     "arms": [{"name": "engine", "kind": "champion", "allocation": 0.9},
...              {"name": "control", "kind": "control", "allocation": 0.1}]})
>>> config.assign("C000001").name, config.assign("C000001").name
('engine', 'engine')
>>> import datetime as dt
>>> config.arm_at("C000001", dt.datetime(2026, 4, 2, tzinfo=dt.UTC)) is None
True
>>> try:
...     parse_experiment({"name": "x", "salt": "s", "start": "2026-03-01T00:00:00Z",
...                       "end": "2026-03-02T00:00:00Z",
...                       "arms": [{"name": "a", "kind": "champion", "allocation": 0.5},
...                                {"name": "b", "kind": "controll", "allocation": 0.5}]},
...                      source="exp.yaml")
... except ExperimentError as error:
...     print(error.issues[0])  # doctest: +ELLIPSIS
exp.yaml: field 'arms[1].kind': unknown arm kind 'controll' (did you mean 'control'?)
"""

from __future__ import annotations

import datetime as dt
import hashlib
import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import yaml

from nba.arbitration import ChannelAssessment, Posterior
from nba.budgets import UsageCounts
from nba.config_errors import ConfigError, ConfigIssue, unknown_key
from nba.context import CustomerContext
from nba.decision import Decision, LoggedDecision, RoutedDecision
from nba.policy import DecisionPolicy
from nba.reasons import Reason, ReasonCode
from nba.screening import ActionCandidate, Restriction

SCHEMA_VERSION = 1
#: Allocations must sum to 1 within this tolerance.
ALLOCATION_TOLERANCE = 1e-6
_NAME = re.compile(r"^[A-Za-z0-9_.:-]+$")
_TOP_LEVEL_KEYS = (
    "version",
    "name",
    "description",
    "salt",
    "start",
    "end",
    "primary_metric",
    "attribution_window_days",
    "arms",
    "guardrails",
)
_ARM_KEYS = ("name", "kind", "allocation", "model_version", "description", "explore_share")
_GUARDRAIL_KEYS = ("metric", "max_increase")
_Report = Callable[[str, str], None]


class ArmKind(StrEnum):
    """What an arm runs."""

    CHAMPION = "champion"  # the engine with the production model
    CHALLENGER = "challenger"  # the engine with a candidate model
    RULE_BASED = "rule_based"  # fixed journey priorities
    RANDOM = "random"  # a random eligible action
    CONTROL = "control"  # global control group: receives nothing


class PrimaryMetric(StrEnum):
    """The metric an experiment is judged on (per customer assigned to an arm)."""

    CONVERSION_RATE = "conversion_rate"  # share of customers who bought at least once
    REVENUE_PER_CUSTOMER = "revenue_per_customer"


class GuardrailMetric(StrEnum):
    """Metrics that must not get worse than in the control group."""

    UNSUBSCRIBE_RATE = "unsubscribe_rate"  # share of customers who unsubscribed (any channel)
    COMPLAINT_RATE = "complaint_rate"  # share of customers who complained


@dataclass(frozen=True)
class Arm:
    """One arm: its name (as logged), what it runs and its share of customers."""

    name: str
    kind: ArmKind
    allocation: float
    model_version: str | None = None
    description: str = ""
    #: The share of the arm's decisions drawn uniformly among every eligible (action,
    #: channel), on top of Thompson sampling (champion arms; logged with exact probabilities).
    explore_share: float = 0.0

    @property
    def is_control(self) -> bool:
        return self.kind == ArmKind.CONTROL


@dataclass(frozen=True)
class Guardrail:
    """A guardrail: ``metric`` may exceed control's by at most ``max_increase``
    (absolute, e.g. 0.002 = 0.2 percentage points)."""

    metric: GuardrailMetric
    max_increase: float


class ExperimentIssue(ConfigIssue):
    """One problem in an experiment configuration: the source file as its scope, the field
    path, the message."""

    @property
    def source(self) -> str:
        """The file (or other source) the configuration came from; may be empty."""
        return self.scope


class ExperimentError(ConfigError[ExperimentIssue]):
    """An invalid experiment configuration; ``issues`` lists every problem found."""

    document = "the experiment configuration"


@dataclass(frozen=True)
class ExperimentConfig:
    """A validated experiment. Build it with :func:`parse_experiment`."""

    name: str
    salt: str
    start: dt.datetime
    end: dt.datetime
    arms: tuple[Arm, ...]
    primary_metric: PrimaryMetric = PrimaryMetric.REVENUE_PER_CUSTOMER
    guardrails: tuple[Guardrail, ...] = ()
    attribution_window: dt.timedelta = dt.timedelta(days=7)
    description: str = ""

    @property
    def control(self) -> Arm | None:
        """The control arm, if the experiment has one."""
        return next((a for a in self.arms if a.is_control), None)

    @property
    def champion(self) -> Arm | None:
        """The champion arm, if the experiment has one."""
        return next((a for a in self.arms if a.kind == ArmKind.CHAMPION), None)

    @property
    def allocation(self) -> dict[str, float]:
        """Each arm's share of customers, by arm name."""
        return {a.name: a.allocation for a in self.arms}

    def arm(self, name: str) -> Arm:
        """The arm called ``name``."""
        for arm in self.arms:
            if arm.name == name:
                return arm
        raise KeyError(f"no arm {name!r} in experiment {self.name!r}")

    def is_running(self, at: dt.datetime) -> bool:
        """True when ``at`` (aware) lies in ``[start, end)``."""
        return self.start <= at < self.end

    def assign(self, customer_id: str) -> Arm:
        """The customer's arm (whether or not the experiment is running)."""
        unit = assignment_unit(self.salt, customer_id)
        edge = 0.0
        for arm in self.arms:
            edge += arm.allocation
            if unit < edge:
                return arm
        return self.arms[-1]  # allocations sum to 1 up to rounding

    def arm_at(self, customer_id: str, at: dt.datetime) -> Arm | None:
        """The customer's arm at ``at``; ``None`` outside the experiment's window."""
        return self.assign(customer_id) if self.is_running(at) else None

    def to_dict(self) -> dict[str, Any]:
        """The configuration as a plain document (round-trips through :func:`parse_experiment`)."""
        return {
            "version": SCHEMA_VERSION,
            "name": self.name,
            "description": self.description,
            "salt": self.salt,
            "start": self.start.isoformat(),
            "end": self.end.isoformat(),
            "primary_metric": self.primary_metric.value,
            "attribution_window_days": self.attribution_window / dt.timedelta(days=1),
            "arms": [
                {
                    "name": a.name,
                    "kind": a.kind.value,
                    "allocation": a.allocation,
                    **({"model_version": a.model_version} if a.model_version else {}),
                    **({"description": a.description} if a.description else {}),
                    **({"explore_share": a.explore_share} if a.explore_share else {}),
                }
                for a in self.arms
            ],
            "guardrails": [
                {"metric": g.metric.value, "max_increase": g.max_increase} for g in self.guardrails
            ],
        }


def assignment_unit(salt: str, customer_id: str) -> float:
    """A number in [0, 1), uniform over customers, fixed by ``salt`` and the customer id.

    >>> assignment_unit("s1", "C1") == assignment_unit("s1", "C1")
    True
    >>> 0.0 <= assignment_unit("s1", "C1") < 1.0
    True
    """
    digest = hashlib.sha256(f"{salt}:{customer_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2.0**64


def parse_experiment_text(text: str, *, source: str = "") -> ExperimentConfig:
    """Parse and validate an experiment written in YAML (JSON is valid YAML too).

    Takes the text, not a path: the decision core does no I/O.
    """
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(error, "problem", None) or str(error)
        message = f"not valid YAML{where}: {problem}"
        raise ExperimentError([ExperimentIssue(source, "", message)]) from None
    return parse_experiment(document, source=source)


def parse_experiment(document: Any, *, source: str = "") -> ExperimentConfig:
    """Validate a parsed experiment document; every problem is reported at once.

    Parameters
    ----------
    document
        The mapping read from YAML or JSON (see the module doc for its keys).
    source
        Where it came from (a file name), prefixed to every issue.

    Raises
    ------
    ExperimentError
        Listing each problem with the path of the field it concerns
        (``arms[1].allocation``).
    """
    issues: list[ExperimentIssue] = []

    def issue(field: str, message: str) -> None:
        issues.append(ExperimentIssue(source, field, message))

    if not isinstance(document, Mapping):
        issue("", "an experiment is a mapping with name, salt, start, end and arms")
        raise ExperimentError(issues)
    for key in document:
        if key not in _TOP_LEVEL_KEYS:
            issue(str(key), _unknown(key, _TOP_LEVEL_KEYS, "key"))
    version = document.get("version", SCHEMA_VERSION)
    if version != SCHEMA_VERSION:
        issue("version", f"unsupported version {version!r} (expected {SCHEMA_VERSION})")
    name = _name(document.get("name"), "name", issue)
    description = _text(document.get("description", ""), "description", issue)
    salt = document.get("salt")
    if not isinstance(salt, str | int) or isinstance(salt, bool) or str(salt) == "":
        issue("salt", "required: a non-empty text that seeds the assignment")
        salt = ""
    start = _moment(document.get("start"), "start", issue)
    end = _moment(document.get("end"), "end", issue)
    if start is not None and end is not None and not start < end:
        issue("end", f"must be after start ({start.isoformat()})")
    primary = _choice(
        document.get("primary_metric", PrimaryMetric.REVENUE_PER_CUSTOMER.value),
        PrimaryMetric,
        "primary_metric",
        "primary metric",
        issue,
    )
    window_days = document.get("attribution_window_days", 7)
    if not _is_number(window_days) or not 0 < float(window_days) <= 365:
        issue("attribution_window_days", f"a number of days in (0, 365], got {window_days!r}")
        window_days = 7
    arms = _arms(document.get("arms"), issue)
    guardrails = _guardrails(document.get("guardrails", []), issue)
    if issues or start is None or end is None or primary is None:
        raise ExperimentError(issues or [ExperimentIssue(source, "", "incomplete experiment")])
    return ExperimentConfig(
        name=name,
        salt=str(salt),
        start=start,
        end=end,
        arms=tuple(arms),
        primary_metric=PrimaryMetric(primary),
        guardrails=tuple(guardrails),
        attribution_window=dt.timedelta(days=float(window_days)),
        description=description,
    )


def _name(value: Any, field: str, issue: _Report) -> str:
    if not isinstance(value, str) or not _NAME.match(value):
        issue(field, f"required: letters, digits and _ . : - only, got {value!r}")
        return ""
    return value


def _text(value: Any, field: str, issue: _Report) -> str:
    if not isinstance(value, str):
        issue(field, f"must be text, got {value!r}")
        return ""
    return value


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _moment(value: Any, field: str, issue: _Report) -> dt.datetime | None:
    if isinstance(value, str):
        try:
            value = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            issue(field, f"not a timestamp: {value!r} (e.g. 2026-03-01T00:00:00Z)")
            return None
    if isinstance(value, dt.datetime):
        if value.tzinfo is None:
            issue(field, f"{value.isoformat()} has no time zone (add Z or an offset)")
            return None
        return value.astimezone(dt.UTC)
    if isinstance(value, dt.date):
        issue(field, f"{value.isoformat()} is a date: give a time and its zone (T00:00:00Z)")
        return None
    issue(field, "required: a timestamp with its time zone, e.g. 2026-03-01T00:00:00Z")
    return None


def _choice(value: Any, enum: type[StrEnum], field: str, what: str, issue: _Report) -> str | None:
    allowed = [e.value for e in enum]
    if value not in allowed:
        issue(field, _unknown(value, allowed, f"{what} {value!r}"))
        return None
    return str(value)


def _unknown(key: object, known: Sequence[str], what: str = "field") -> str:
    """The message for an unknown key or value: the known one it is a typo of, as the
    catalog and the contact policy say it (:func:`~nba.config_errors.unknown_key`), else
    every known one.

    >>> _unknown("alocation", _ARM_KEYS)
    "unknown field (did you mean 'allocation'?)"
    >>> _unknown("colour", _GUARDRAIL_KEYS)
    'unknown field (expected one of: metric, max_increase)'
    """
    message = unknown_key(key, known, what)
    return message if message.endswith("?)") else f"{message} (expected one of: {', '.join(known)})"


def _arms(raw: Any, issue: _Report) -> list[Arm]:
    if not isinstance(raw, list) or len(raw) < 2:
        issue("arms", "list at least two arms")
        return []
    arms: list[Arm] = []
    for position, entry in enumerate(raw):
        path = f"arms[{position}]"
        if not isinstance(entry, Mapping):
            issue(path, "an arm is a mapping with name, kind and allocation")
            continue
        for key in entry:
            if key not in _ARM_KEYS:
                issue(f"{path}.{key}", _unknown(key, _ARM_KEYS))
        name = _name(entry.get("name"), f"{path}.name", issue)
        kind = _choice(entry.get("kind"), ArmKind, f"{path}.kind", "arm kind", issue)
        allocation: Any = entry.get("allocation")
        if not _is_number(allocation) or not 0 < float(allocation) <= 1:
            issue(f"{path}.allocation", f"a share of customers in (0, 1], got {allocation!r}")
            allocation = None
        version = entry.get("model_version")
        if version is not None and not isinstance(version, str | int):
            issue(f"{path}.model_version", f"must be text, got {version!r}")
            version = None
        description = _text(entry.get("description", ""), f"{path}.description", issue)
        share: Any = entry.get("explore_share", 0.0)
        if not _is_number(share) or not 0 <= float(share) <= 1:
            issue(f"{path}.explore_share", f"a share of decisions in [0, 1], got {share!r}")
            share = None
        if name and kind is not None and allocation is not None and share is not None:
            arms.append(
                Arm(
                    name,
                    ArmKind(kind),
                    float(allocation),
                    None if version is None else str(version),
                    description,
                    float(share),
                )
            )
    if len(arms) != len(raw):
        return arms
    seen: set[str] = set()
    for position, arm in enumerate(arms):
        if arm.name in seen:
            issue(f"arms[{position}].name", f"duplicate arm name {arm.name!r}")
        seen.add(arm.name)
    for kind in (ArmKind.CONTROL, ArmKind.CHAMPION):
        positions = [i for i, a in enumerate(arms) if a.kind == kind]
        for extra in positions[1:]:
            issue(f"arms[{extra}].kind", f"only one {kind.value} arm is allowed")
    total = math.fsum(a.allocation for a in arms)
    if abs(total - 1.0) > ALLOCATION_TOLERANCE:
        shares = " + ".join(f"{a.allocation:g}" for a in arms)
        issue("arms", f"allocations must sum to 1, got {shares} = {total:g}")
    return arms


def _guardrails(raw: Any, issue: _Report) -> list[Guardrail]:
    if not isinstance(raw, list):
        issue("guardrails", "a list of {metric, max_increase}")
        return []
    out: list[Guardrail] = []
    seen: set[str] = set()
    for position, entry in enumerate(raw):
        path = f"guardrails[{position}]"
        if not isinstance(entry, Mapping):
            issue(path, "a guardrail is a mapping with metric and max_increase")
            continue
        for key in entry:
            if key not in _GUARDRAIL_KEYS:
                issue(f"{path}.{key}", _unknown(key, _GUARDRAIL_KEYS))
        metric = _choice(entry.get("metric"), GuardrailMetric, f"{path}.metric", "metric", issue)
        limit = entry.get("max_increase", 0.0)
        if not _is_number(limit) or not 0 <= float(limit) < 1:
            issue(f"{path}.max_increase", f"a rate difference in [0, 1), got {limit!r}")
            continue
        if metric is None:
            continue
        if metric in seen:
            issue(f"{path}.metric", f"guardrail {metric!r} is listed twice")
        seen.add(metric)
        out.append(Guardrail(GuardrailMetric(metric), float(limit)))
    return out


_CONTROL_REASON = Reason(
    ReasonCode.NOT_ELIGIBLE, "the customer is in the experiment's control group (receives nothing)"
)


class ControlPolicy(DecisionPolicy):
    """The control group's policy: every contact is filtered out, so the decision is the
    catalog's ``do_nothing`` (or no action when the catalog has none), with propensity 1.

    It runs through the same template as every policy, so the decision is logged
    and explained like any other (each action on each channel carries the reason
    ``not_eligible``: control group).
    """

    name = "control"

    def _assess(
        self, context: CustomerContext, candidates: Sequence[ActionCandidate]
    ) -> list[list[ChannelAssessment]]:
        return [
            [ChannelAssessment(c, 0.0, reason=_CONTROL_REASON) for c in cand.channels]
            if cand.slots
            else [ChannelAssessment(None, 0.0)]
            for cand in candidates
        ]


class ExperimentRouter:
    """Sends each customer to their arm's policy while the experiment runs: a
    :class:`~nba.pipeline.Decider`, like a plain policy, whose :meth:`route` says the arm.

    Parameters
    ----------
    config
        The experiment.
    policies
        A policy per arm name or per arm kind (``"champion"``, ``"rule_based"``...);
        a name wins over a kind. The champion's policy (the champion arm's, or
        the ``"champion"`` entry) also decides outside the experiment's window.
        The control arm defaults to a :class:`ControlPolicy` over the champion's
        catalog and contact policy.

    Raises
    ------
    ValueError
        When an arm has no policy, or no champion policy is given.
    """

    def __init__(self, config: ExperimentConfig, policies: Mapping[str, DecisionPolicy]) -> None:
        self.config = config
        self.name = f"experiment:{config.name}"
        champion = self._lookup(policies, config.champion) or policies.get(ArmKind.CHAMPION.value)
        if champion is None:
            raise ValueError(
                f"experiment {config.name!r}: give a policy for the champion "
                "(it also decides outside the experiment's window)"
            )
        self.champion: DecisionPolicy = champion
        self.policies: dict[str, DecisionPolicy] = {}
        missing = []
        for arm in config.arms:
            policy = self._lookup(policies, arm)
            if policy is None and arm.is_control:
                policy = ControlPolicy(champion.catalog, champion.contact_policy)
            if policy is None:
                missing.append(f"{arm.name} ({arm.kind.value})")
            else:
                self.policies[arm.name] = policy
        if missing:
            raise ValueError(
                f"experiment {config.name!r}: no policy for arm(s) {', '.join(missing)}"
            )

    @staticmethod
    def _lookup(policies: Mapping[str, DecisionPolicy], arm: Arm | None) -> DecisionPolicy | None:
        if arm is None:
            return None
        return policies.get(arm.name) or policies.get(arm.kind.value)

    def route(
        self,
        context: CustomerContext,
        *,
        usage: UsageCounts | None = None,
        stats: Mapping[str, Posterior] | None = None,
        seed: int | str = 0,
        decision_id: str | None = None,
        restriction: Restriction | None = None,
    ) -> RoutedDecision:
        """Decide with the customer's arm's policy (the champion outside the window)."""
        arm = self.config.arm_at(context.customer_id, context.now_utc)
        policy = self.champion if arm is None else self.policies[arm.name]
        decision = policy.decide(
            context,
            usage=usage,
            stats=stats,
            seed=seed,
            decision_id=decision_id,
            restriction=restriction,
        )
        return RoutedDecision(decision, arm)

    def decide(
        self,
        context: CustomerContext,
        *,
        usage: UsageCounts | None = None,
        stats: Mapping[str, Posterior] | None = None,
        seed: int | str = 0,
        decision_id: str | None = None,
        restriction: Restriction | None = None,
    ) -> Decision:
        """Same arguments and result as :meth:`~nba.policy.DecisionPolicy.decide`;
        :meth:`log` turns the result into a record carrying its arm."""
        return self.route(
            context,
            usage=usage,
            stats=stats,
            seed=seed,
            decision_id=decision_id,
            restriction=restriction,
        ).decision

    def arm_of(self, decision: Decision) -> Arm | None:
        """The arm that made ``decision`` (assignment is a function of customer and time)."""
        return self.config.arm_at(decision.customer_id, decision.decided_at)

    def log(self, decision: Decision, *, model_version: str | None = None) -> LoggedDecision:
        """``decision`` as logged, with its arm and model version."""
        return RoutedDecision(decision, self.arm_of(decision)).log(model_version=model_version)
