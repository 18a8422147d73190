"""nba: the decision core. Domain vocabulary, rules and policies; pure Python, no I/O.

This package imports nothing from ``features``, ``training``, ``serving`` or
``experiments``; they all build on it.
"""

from nba.channels import CONSENT_CHANNELS, OUTBOUND_CHANNELS, Channel, parse_channel
from nba.events import EventType

__all__ = ["CONSENT_CHANNELS", "OUTBOUND_CHANNELS", "Channel", "EventType", "parse_channel"]
__version__ = "0.1.0"

# The decision core (issue 5): catalog, rules, consent and contact policy, arbitration.
from nba.actions import Action, ActionType, Offer, OfferKind, Variant
from nba.arbitration import BetaPosterior, PriorityTerms, priority
from nba.baselines import RandomPolicy, RuleBasedPolicy
from nba.budgets import Consumption, UsageCounts
from nba.catalog import Catalog, CatalogError, parse_catalog
from nba.contact_policy import (
    ChannelRules,
    ContactPolicy,
    ContactPolicyError,
    parse_contact_policy,
)
from nba.context import CustomerContext, Session
from nba.decision import ChosenAction, Decision, LoggedDecision
from nba.engine import NextBestActionPolicy
from nba.explain import Explanation
from nba.policy import DecisionPolicy
from nba.reasons import ReasonCode, Rejection
from nba.rules import Rule, RuleError, compile_rule
from nba.scoring import ActionScore, RuleBasedScorer, Scorer

__all__ += [
    "Action",
    "ActionScore",
    "ActionType",
    "BetaPosterior",
    "Catalog",
    "CatalogError",
    "ChannelRules",
    "ChosenAction",
    "Consumption",
    "ContactPolicy",
    "ContactPolicyError",
    "CustomerContext",
    "Decision",
    "DecisionPolicy",
    "Explanation",
    "LoggedDecision",
    "NextBestActionPolicy",
    "Offer",
    "OfferKind",
    "PriorityTerms",
    "RandomPolicy",
    "ReasonCode",
    "Rejection",
    "Rule",
    "RuleBasedPolicy",
    "RuleBasedScorer",
    "RuleError",
    "Scorer",
    "Session",
    "UsageCounts",
    "Variant",
    "compile_rule",
    "parse_catalog",
    "parse_contact_policy",
    "priority",
]
