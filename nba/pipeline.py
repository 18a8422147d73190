"""One way to build what decides: :func:`build_pipeline`.

The API, ``nba decide``, the closed loop and the simulated A/B test all build
their decisions here, from the same parts (catalog, contact policy, scorer,
experiment), so that they decide alike. A :class:`DecisionPipeline`:

1. lets the scorer prepare the context (:meth:`~nba.scoring.Scorer.prepare`,
   e.g. the learned send-time pattern goes into the profile), before routing,
   so that every arm of an experiment decides on the same customer;
2. hands it to its :class:`Decider`: the policy of the requested kind, or the
   experiment's :class:`~nba.experiment.ExperimentRouter` over its arms, which
   says which arm decided.

The caller brings what the decision reads (the profile, the action history and
today's usage, e.g. from :class:`features.online.contact_state.ContactState`)
and records what it did; the core does no I/O.

>>> import datetime as dt
>>> from nba.catalog import parse_catalog
>>> from nba.channels import Channel
>>> from nba.context import CustomerContext
>>> from nba.profile import CustomerProfile
>>> catalog = parse_catalog('''
... actions:
...   - {id: hello, type: content, channels: [email], value: 5, timing: asap}
...   - {id: nothing, type: do_nothing}
... ''')
>>> pipeline = build_pipeline(catalog)
>>> profile = CustomerProfile("C1", consents={Channel.EMAIL: True})
>>> now = dt.datetime(2026, 3, 6, 9, tzinfo=dt.UTC)
>>> routed = pipeline.route(CustomerContext(profile, now), seed=1)
>>> pipeline.name, routed.decision.action_id, routed.arm is None
('nba', 'hello', True)
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol

from nba.arbitration import Posterior
from nba.baselines import RandomPolicy, RuleBasedPolicy
from nba.budgets import UsageCounts
from nba.catalog import Catalog
from nba.contact_policy import ContactPolicy
from nba.context import CustomerContext
from nba.decision import RoutedDecision
from nba.engine import NextBestActionPolicy
from nba.experiment import ArmKind, ControlPolicy, ExperimentConfig, ExperimentRouter
from nba.policy import DecisionPolicy
from nba.reachability import warn_unreachable
from nba.scoring import RuleBasedScorer, Scorer
from nba.screening import Restriction

#: Policy kinds :func:`policy_of_kind` builds (a challenger needs a model of its own).
BUILDABLE_KINDS: tuple[ArmKind, ...] = (
    ArmKind.CHAMPION,
    ArmKind.RULE_BASED,
    ArmKind.RANDOM,
    ArmKind.CONTROL,
)


#: The names policies log under, as kinds (``nba decide --policy``, the closed loop).
POLICY_NAMES: Mapping[str, ArmKind] = {
    "nba": ArmKind.CHAMPION,
    "rules": ArmKind.RULE_BASED,
    "random": ArmKind.RANDOM,
}


class Decider(Protocol):
    """Decides for one customer and says under which experiment arm.

    Implemented by every :class:`~nba.policy.DecisionPolicy` (no arm), by
    :class:`~nba.experiment.ExperimentRouter` (the customer's arm) and by
    :class:`DecisionPipeline` (preparation, then its decider): callers never ask
    which one they hold.
    """

    @property
    def name(self) -> str:
        """The name decisions are logged under."""
        ...

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
        """The decision (see :meth:`~nba.policy.DecisionPolicy.decide`) and its arm."""
        ...


@dataclass(frozen=True)
class DecisionPipeline:
    """Preparation by the scorer, then the decider (see the module doc)."""

    decider: Decider
    scorer: Scorer = field(default_factory=RuleBasedScorer)

    @property
    def name(self) -> str:
        return self.decider.name

    def prepare(self, context: CustomerContext) -> CustomerContext:
        """The context as every arm sees it (:meth:`~nba.scoring.Scorer.prepare`)."""
        return self.scorer.prepare(context)

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
        """Prepare ``context``, then decide with the decider (same arguments as
        :meth:`~nba.policy.DecisionPolicy.decide`)."""
        return self.decider.route(
            self.prepare(context),
            usage=usage,
            stats=stats,
            seed=seed,
            decision_id=decision_id,
            restriction=restriction,
        )


def policy_of_kind(
    kind: ArmKind | str,
    catalog: Catalog,
    contact_policy: ContactPolicy | None = None,
    *,
    scorer: Scorer | None = None,
    max_actions: int = 1,
    explore_share: float = 0.0,
) -> DecisionPolicy:
    """The policy an arm of ``kind`` runs: ``champion`` the engine with ``scorer``,
    ``rule_based`` the journeys, ``random`` a random eligible action, ``control``
    nothing (the policies' names, :data:`POLICY_NAMES`, are accepted too).

    >>> from nba.catalog import parse_catalog
    >>> catalog = parse_catalog("actions: [{id: nothing, type: do_nothing}]")
    >>> policy_of_kind("rule_based", catalog).name, policy_of_kind("rules", catalog).name
    ('rules', 'rules')
    >>> policy_of_kind("challenger", catalog)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: no policy for kind 'challenger' (expected one of: champion, rule_based, ...)
    """
    known = ", ".join(k.value for k in BUILDABLE_KINDS)
    try:
        arm_kind = ArmKind(POLICY_NAMES.get(str(kind), kind))
    except ValueError:
        raise ValueError(f"unknown policy kind {kind!r} (expected one of: {known})") from None
    if arm_kind == ArmKind.CHAMPION:
        return NextBestActionPolicy(
            catalog,
            contact_policy,
            scorer=scorer,
            max_actions=max_actions,
            explore_share=explore_share,
        )
    if arm_kind == ArmKind.RULE_BASED:
        return RuleBasedPolicy(catalog, contact_policy, max_actions=max_actions)
    if arm_kind == ArmKind.RANDOM:
        return RandomPolicy(catalog, contact_policy, max_actions=max_actions)
    if arm_kind == ArmKind.CONTROL:
        return ControlPolicy(catalog, contact_policy, max_actions=max_actions)
    raise ValueError(f"no policy for kind {arm_kind.value!r} (expected one of: {known})")


def build_pipeline(
    catalog: Catalog,
    contact_policy: ContactPolicy | None = None,
    *,
    scorer: Scorer | None = None,
    experiment: ExperimentConfig | None = None,
    policy: ArmKind | str | DecisionPolicy = ArmKind.CHAMPION,
    max_actions: int = 1,
) -> DecisionPipeline:
    """The decision pipeline of these parts: the one constructor of what decides.

    Parameters
    ----------
    catalog, contact_policy
        The rules every policy screens with.
    scorer
        The engine's scorer (the registry's champions, see ``serving.models``);
        the rule-based scorer when omitted. It also prepares every context.
    experiment
        When given, each customer is routed to their arm's policy (arms of kind
        champion, rule_based, random and control; the champion also decides
        outside the experiment's window).
    policy
        Without an experiment, the kind of policy that decides (``champion`` is
        the engine), or a policy built elsewhere (a simulator's oracle, an
        exploring logger); with one, the champion's.
    max_actions
        How many actions one decision may choose.

    Raises
    ------
    ValueError
        For an arm or policy kind that cannot be built (a challenger needs a
        model of its own).

    Warns (:class:`~nba.reachability.CatalogWarning`) about each catalog action
    that can never fire under the contact policy, naming it and why.
    """
    scorer = scorer or RuleBasedScorer()
    warn_unreachable(catalog, contact_policy or ContactPolicy())

    def of_kind(kind: ArmKind | str, explore_share: float = 0.0) -> DecisionPolicy:
        return policy_of_kind(
            kind,
            catalog,
            contact_policy,
            scorer=scorer,
            max_actions=max_actions,
            explore_share=explore_share,
        )

    main = policy if isinstance(policy, DecisionPolicy) else of_kind(policy)
    if experiment is None:
        return DecisionPipeline(main, scorer)
    arms: dict[str, DecisionPolicy] = {ArmKind.CHAMPION.value: main}
    for arm in experiment.arms:  # a champion arm with a share of its own explores more
        if (
            arm.kind == ArmKind.CHAMPION
            and arm.explore_share
            and not isinstance(policy, DecisionPolicy)
        ):
            arms[arm.name] = of_kind(arm.kind, arm.explore_share)
    for arm in experiment.arms:
        if arm.kind == ArmKind.CHALLENGER:
            raise ValueError(
                f"experiment {experiment.name!r}: arm {arm.name!r} is a challenger, which "
                "needs a model of its own; decide with champion, rule_based, random and "
                "control arms, or compare models offline (nba experiments ope)"
            )
        if arm.kind != ArmKind.CHAMPION and not arm.is_control:
            arms[arm.name] = of_kind(arm.kind)
    return DecisionPipeline(ExperimentRouter(experiment, arms), scorer)
