"""Decisions: what the engine answers, and the record it leaves for evaluation.

A :class:`Decision` lists the chosen actions (each with its channel, send time
in UTC and local time, priority, propensity and the factors behind it), every
rejected candidate with its reason code, what it consumed of today's budgets,
and an explanation. :meth:`Decision.log` turns it into a
:class:`LoggedDecision`, the flat record experiments and off-policy evaluation
read: the chosen action, the probability with which the policy chose it, and
the actions it could have chosen.

>>> import datetime as dt
>>> make_decision_id("C1", dt.datetime(2026, 3, 6, tzinfo=dt.UTC), "nba", 7)
'd-396f886ebf7c9ea1'
"""

from __future__ import annotations

import datetime as dt
import hashlib
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Protocol

from nba.actions import ActionType
from nba.arbitration import PriorityTerms
from nba.budgets import Consumption
from nba.channels import Channel
from nba.context import CustomerContext
from nba.explain import Explanation
from nba.frozen import fast_init
from nba.reasons import ReasonCode, Rejection


@fast_init
@dataclass(frozen=True)
class ChosenAction:
    """One chosen action.

    ``propensity`` is the probability that the policy picked this action at its
    rank, given the actions picked before it in the same decision (for the
    first, or only, action: the probability of picking it at all). ``channel``
    and the send times are ``None`` for ``do_nothing``.
    """

    action_id: str
    action_type: ActionType
    channel: Channel | None
    send_at: dt.datetime | None
    send_at_local: dt.datetime | None
    timing_basis: str
    priority: float
    propensity: float
    terms: PriorityTerms | None = None
    offer_id: str | None = None
    offer_expires_at: dt.datetime | None = None
    template: str | None = None
    variant_id: str | None = None
    explored: bool = False
    #: the products it shows (the action's ``shows``: ``auto`` or ``new_arrivals``)
    shows: str = "auto"

    @property
    def is_do_nothing(self) -> bool:
        return self.action_type == ActionType.DO_NOTHING


@fast_init
@dataclass(frozen=True)
class OptionProbability:
    """An eligible (action, channel) option of a decision's first pick, with the
    probability the policy had of picking it (``None`` when the policy did not say)."""

    action_id: str
    channel: str | None
    probability: float | None


@fast_init
@dataclass(frozen=True)
class Decision:
    """The answer to "what next for this customer, on which channel, when, and why"."""

    decision_id: str
    customer_id: str
    policy: str
    decided_at: dt.datetime
    seed: int | str
    actions: tuple[ChosenAction, ...]
    propensity: float
    eligible_action_ids: tuple[str, ...]
    rejections: tuple[Rejection, ...]
    consumed: Consumption
    explanation: Explanation
    #: Every option of the first pick with its probability (logged for off-policy evaluation).
    options: tuple[OptionProbability, ...] = ()
    #: The context features the reward models read (:data:`CONTEXT_FEATURES`).
    context: Mapping[str, float] = field(default_factory=dict, hash=False)

    @property
    def contacts(self) -> tuple[ChosenAction, ...]:
        """The chosen actions that reach the customer (``do_nothing`` left out)."""
        return tuple(a for a in self.actions if not a.is_do_nothing)

    @property
    def action_id(self) -> str | None:
        """The first chosen action's id (``None`` when nothing was eligible)."""
        return self.actions[0].action_id if self.actions else None

    def reasons(self, action_id: str) -> tuple[ReasonCode, ...]:
        """The reason codes recorded against ``action_id``."""
        return tuple(r.code for r in self.rejections if r.action_id == action_id)

    def log(self, *, arm: str | None = None, model_version: str | None = None) -> LoggedDecision:
        """The record to log for experiments and off-policy evaluation."""
        return LoggedDecision(
            decision_id=self.decision_id,
            customer_id=self.customer_id,
            decided_at=self.decided_at,
            policy=self.policy,
            arm=arm,
            model_version=model_version,
            propensity=self.propensity,
            eligible_action_ids=self.eligible_action_ids,
            actions=tuple(
                LoggedAction(
                    a.action_id,
                    None if a.channel is None else a.channel.value,
                    a.send_at,
                    a.propensity,
                    a.offer_id,
                )
                for a in self.actions
            ),
            options=self.options,
            context=self.context,
        )


class ArmLabel(Protocol):
    """What a decision log needs of an experiment's arm (:class:`~nba.experiment.Arm`)."""

    @property
    def name(self) -> str: ...

    @property
    def model_version(self) -> str | None: ...


@fast_init
@dataclass(frozen=True)
class RoutedDecision:
    """A decision with the experiment arm that made it (``None`` outside any experiment)."""

    decision: Decision
    arm: ArmLabel | None = None

    @property
    def arm_name(self) -> str | None:
        return None if self.arm is None else self.arm.name

    def log(self, *, model_version: str | None = None) -> LoggedDecision:
        """The decision as logged, carrying its arm and the arm's model version."""
        version = model_version or (None if self.arm is None else self.arm.model_version)
        return self.decision.log(arm=self.arm_name, model_version=version)


@fast_init
@dataclass(frozen=True)
class LoggedAction:
    """One chosen action in a log record."""

    action_id: str
    channel: str | None
    send_at: dt.datetime | None
    propensity: float
    offer_id: str | None = None


@fast_init
@dataclass(frozen=True)
class LoggedDecision:
    """A decision as logged: enough to attribute outcomes and to run IPS or
    doubly-robust estimators on real traffic: ``propensity`` of the logged action,
    ``options`` every eligible (action, channel) with its logging probability, and
    ``context`` the features the reward models read. Records written before the last
    two existed read back with them empty."""

    decision_id: str
    customer_id: str
    decided_at: dt.datetime
    policy: str
    arm: str | None
    model_version: str | None
    propensity: float
    eligible_action_ids: tuple[str, ...]
    actions: tuple[LoggedAction, ...]
    options: tuple[OptionProbability, ...] = ()
    context: Mapping[str, float] = field(default_factory=dict, hash=False)
    #: the earlier decisions whose scheduled messages this one withdrew
    #: (:mod:`nba.supersession`): they did not go
    replaces: tuple[str, ...] = ()

    @property
    def action_id(self) -> str | None:
        return self.actions[0].action_id if self.actions else None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (times as ISO 8601 strings)."""
        return {
            "decision_id": self.decision_id,
            "customer_id": self.customer_id,
            "decided_at": self.decided_at.isoformat(),
            "policy": self.policy,
            "arm": self.arm,
            "model_version": self.model_version,
            "propensity": self.propensity,
            "eligible_action_ids": list(self.eligible_action_ids),
            "actions": [
                {
                    "action_id": a.action_id,
                    "channel": a.channel,
                    "send_at": None if a.send_at is None else a.send_at.isoformat(),
                    "propensity": a.propensity,
                    "offer_id": a.offer_id,
                }
                for a in self.actions
            ],
            "options": [
                {"action_id": o.action_id, "channel": o.channel, "probability": o.probability}
                for o in self.options
            ],
            # JSON has no NaN: an unknown feature is written as null
            "context": {k: (None if math.isnan(v) else v) for k, v in self.context.items()},
            # written only when it withdrew something: older readers see the same records
            **({"replaces": list(self.replaces)} if self.replaces else {}),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LoggedDecision:
        """Read back :meth:`to_dict`'s output."""
        return cls(
            decision_id=str(data["decision_id"]),
            customer_id=str(data["customer_id"]),
            decided_at=dt.datetime.fromisoformat(data["decided_at"]),
            policy=str(data["policy"]),
            arm=data.get("arm"),
            model_version=data.get("model_version"),
            propensity=float(data["propensity"]),
            eligible_action_ids=tuple(data.get("eligible_action_ids", ())),
            actions=tuple(
                LoggedAction(
                    str(a["action_id"]),
                    a.get("channel"),
                    None if a.get("send_at") is None else dt.datetime.fromisoformat(a["send_at"]),
                    float(a["propensity"]),
                    a.get("offer_id"),
                )
                for a in data.get("actions", ())
            ),
            options=tuple(
                OptionProbability(
                    str(o["action_id"]),
                    o.get("channel"),
                    None if o.get("probability") is None else float(o["probability"]),
                )
                for o in data.get("options", ())
            ),
            context={
                str(k): math.nan if v is None else float(v)
                for k, v in (data.get("context") or {}).items()
            },
            replaces=tuple(str(d) for d in data.get("replaces") or ()),
        )


#: The context features the reward model of the doubly-robust estimator reads.
CONTEXT_FEATURES: tuple[str, ...] = (
    "days_since_first_seen",
    "days_since_last_purchase",
    "days_since_last_visit",
    "purchases_total",
    "revenue_total",
    "average_basket",
    "cart_size",
    "cart_value",
    "cart_age_hours",
    "browsed_products",
    "hours_since_last_browse",
    "hours_since_last_purchase",
    "hours_since_last_delivery",
    "promo_sensitivity",
    "early_adopter_score",
    "days_to_birthday",
    "lifecycle_state",
    "journey_phase",
    "contacts_7d",
    "email_open_rate",
    "email_click_rate",
    "sms_click_rate",
    "push_open_rate",
    "push_click_rate",
    "consented_channels",
    "local_hour",
    "candidates",
)


def context_features(context: CustomerContext, n_candidates: int) -> dict[str, float]:
    """The :data:`CONTEXT_FEATURES` of a decision's context (NaN when unknown): what the
    reward models of off-policy evaluation read, logged with every decision."""
    p = context.profile
    nan = math.nan
    engagement = p.engagement.get
    email, sms, push = engagement(Channel.EMAIL), engagement(Channel.SMS), engagement(Channel.PUSH)
    features = dict.fromkeys(CONTEXT_FEATURES, nan)  # the keys in order; unknown: NaN
    # ``float`` of each known value (one assignment each, no per-call closures: every
    # decision logs them)
    if (value := p.days_since_first_seen) is not None:
        features["days_since_first_seen"] = float(value)
    if (value := p.days_since_last_purchase) is not None:
        features["days_since_last_purchase"] = float(value)
    if (value := p.days_since_last_visit) is not None:
        features["days_since_last_visit"] = float(value)
    features["purchases_total"] = float(p.purchases_total)
    features["revenue_total"] = float(p.revenue_total)
    features["average_basket"] = float(p.average_basket)
    features["cart_size"] = float(len(p.cart_items))
    features["cart_value"] = float(p.cart_value)
    if (value := p.cart_age_hours) is not None:
        features["cart_age_hours"] = float(value)
    features["browsed_products"] = float(len(p.browsed_products))
    if (value := p.hours_since_last_browse) is not None:
        features["hours_since_last_browse"] = float(value)
    if (value := p.hours_since_last_purchase) is not None:
        features["hours_since_last_purchase"] = float(value)
    if (value := p.hours_since_last_delivery) is not None:
        features["hours_since_last_delivery"] = float(value)
    features["promo_sensitivity"] = float(p.promo_sensitivity)
    features["early_adopter_score"] = float(p.early_adopter_score)
    if (value := p.days_to_birthday) is not None:
        features["days_to_birthday"] = float(value)
    features["lifecycle_state"] = _ordinal(p.lifecycle_state)
    features["journey_phase"] = _ordinal(p.journey_phase)
    features["contacts_7d"] = float(p.contacts.total_7d())
    if email is not None:
        features["email_open_rate"] = float(email.open_rate)
        features["email_click_rate"] = float(email.click_rate)
    if sms is not None:
        features["sms_click_rate"] = float(sms.click_rate)
    if push is not None:
        features["push_open_rate"] = float(push.open_rate)
        features["push_click_rate"] = float(push.click_rate)
    features["consented_channels"] = float(sum(1 for granted in p.consents.values() if granted))
    features["local_hour"] = float(context.local_now.hour)
    features["candidates"] = float(n_candidates)
    return features


_ORDINALS: dict[tuple[type, StrEnum], float] = {}


def _ordinal(member: StrEnum) -> float:
    """The position of ``member`` in its enumeration, as a float (found once per member;
    keyed by type too: members of two enumerations may have equal values)."""
    key = (type(member), member)
    ordinal = _ORDINALS.get(key)
    if ordinal is None:
        ordinal = _ORDINALS[key] = float(list(type(member)).index(member))
    return ordinal


def make_decision_id(
    customer_id: str, decided_at: dt.datetime, policy: str, seed: int | str
) -> str:
    """A stable id for a decision: the same inputs give the same id (retries are idempotent)."""
    global _LAST_MOMENT
    moment = _LAST_MOMENT  # one read: threads may replace it meanwhile
    if moment[0] is not decided_at:  # a batch's decisions share one moment (held, so
        # its identity cannot pass to another object meanwhile)
        moment = _LAST_MOMENT = (decided_at, decided_at.astimezone(dt.UTC).isoformat())
    key = f"{customer_id}|{moment[1]}|{policy}|{seed}"
    return "d-" + hashlib.sha256(key.encode()).hexdigest()[:16]


#: The last moment :func:`make_decision_id` wrote out, with its text.
_LAST_MOMENT: tuple[object, str] = (None, "")
