"""How many customers each catalog action, and each of its wordings, can reach.

:mod:`nba.reachability` checks, at load time and without any customer, that an
action may fire at some hour of the week. This module counts, for a table of
real profiles, the customers for whom an action's eligibility (and, for an
action with wording variants, a variant) holds at *some* moment: a threshold
that no customer's profile ever meets shows up as an action that reaches nobody.

What a profile does not say is enumerated, never guessed: a rule that reads

* the local hour or weekday is evaluated over the hours (or days) of a week;
* the local month, next month or day of the month, over the months (days);
* the session (``in_session``, ``session_channel``, ``session_minutes``,
  ``session_product``), with no session and with a session on the web or in the
  app, with or without a product on the page;
* ``hours_since_sent('a')``, with ``a`` never sent, sent an hour ago or a year ago;

and a customer is reached when the rule holds for one such combination. A profile
field that is unknown stays unknown (the engine's three-valued logic: not
eligible). The action's ``valid_from``/``valid_to`` window, consents and contact
policy are not part of the count: this is the reach of the rules alone.

An action with variants reaches a customer only when one of its variants matches
(the engine rejects the others); a variant is counted for the customers whom it
is the first matching one of at some moment where the eligibility holds.

>>> from nba.catalog import parse_catalog
>>> from nba.profile import CustomerProfile
>>> catalog = parse_catalog('''
... actions:
...   - {id: deal, type: offer, channels: [email],
...      eligibility: "promo_sensitivity >= 0.5 and local_weekday >= 5",
...      variants: [{id: keen, when: "promo_sensitivity >= 0.8"}, {id: plain}]}
... ''')
>>> profiles = [CustomerProfile(f"C{i}", promo_sensitivity=p) for i, p in enumerate([.2, .6, .9])]
>>> report = count_reach(catalog, profiles)
>>> [(a.action_id, a.customers, [(v.variant_id, v.customers) for v in a.variants])
...  for a in report.actions]
[('deal', 2, [('keen', 1), ('plain', 1)])]
>>> report.warnings()
()
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass

from nba.actions import Action
from nba.catalog import Catalog
from nba.channels import Channel
from nba.profile import HOURS_PER_WEEK, CustomerProfile
from nba.rules import Rule, Value

#: ``hours_since_sent`` values tried for each action a rule names: never, recently, long ago.
SENT_HOURS_AGO: tuple[float | None, ...] = (None, 1.0, 24.0 * 365)
#: Sessions tried for a rule that reads the session: (channel, product on the page).
SESSIONS: tuple[tuple[Channel, str | None] | None, ...] = (
    None,
    (Channel.WEB, None),
    (Channel.APP, None),
    (Channel.WEB, "any product"),
    (Channel.APP, "any product"),
)
#: Minutes into a session, for a rule that reads ``session_minutes``.
SESSION_MINUTES = 5.0

_WEEK_FIELDS = frozenset({"local_hour", "local_weekday"})
_MONTH_FIELDS = frozenset({"local_month", "next_month"})
_SESSION_FIELDS = frozenset({"in_session", "session_channel", "session_minutes", "session_product"})
_MOMENT_FIELDS = _WEEK_FIELDS | _MONTH_FIELDS | {"local_day"} | _SESSION_FIELDS

Moment = tuple[dict[str, Value], dict[str, float | None]]


@dataclass(frozen=True)
class VariantReach:
    """A wording variant and the customers it is chosen for at some moment."""

    variant_id: str
    customers: int


@dataclass(frozen=True)
class ActionReach:
    """An action, the customers it may be eligible for, and its variants' reach."""

    action_id: str
    eligibility: str
    customers: int
    variants: tuple[VariantReach, ...] = ()
    #: Why the eligibility fails for the first customer it does not reach (its first false
    #: clause with the values it reads, at the first moment tried), e.g. ``"next_month in
    #: seasonal_months is false (next_month is 2, seasonal_months is [])"``.
    example: str | None = None


@dataclass(frozen=True)
class ReachReport:
    """The reach of every action of a catalog (do-nothing aside) over ``customers``."""

    customers: int
    actions: tuple[ActionReach, ...]

    def share(self, count: int) -> float:
        """``count`` as a share of the customers (0 when there are none)."""
        return count / self.customers if self.customers else 0.0

    def warnings(self) -> tuple[str, ...]:
        """One line per action or variant that no customer reaches, in catalog order."""
        if not self.customers:
            return ()
        problems: list[str] = []
        for action in self.actions:
            if action.customers == 0:
                example = f" (e.g. {action.example})" if action.example else ""
                problems.append(
                    f"action {action.action_id!r} reaches none of the {self.customers:,} "
                    f"customers: its eligibility ({action.eligibility}) never holds{example}"
                )
                continue
            problems += [
                f"variant {v.variant_id!r} of action {action.action_id!r} reaches none of "
                f"the {action.customers:,} customers the action reaches"
                for v in action.variants
                if v.customers == 0
            ]
        return tuple(problems)


class _ReachScope:
    """A profile's fields, with the moment, session and send history set by the caller."""

    __slots__ = ("_values", "moment", "profile", "sent")

    def __init__(self, profile: CustomerProfile) -> None:
        self.profile = profile
        self._values: dict[str, Value] = {}
        self.moment: Mapping[str, Value] = {}
        self.sent: Mapping[str, float | None] = {}

    def field(self, name: str) -> Value:
        if name in _MOMENT_FIELDS:
            return self.moment.get(name)
        if name not in self._values:
            value = self.profile.value(name)
            if value is not None and not isinstance(value, bool | int | float | str | list):
                value = str(value)
            self._values[name] = value
        return self._values[name]

    def hours_since_sent(self, action_id: str) -> float | None:
        return self.sent.get(action_id)

    def affinity(self, kind: str, key: str) -> float:
        table = (
            self.profile.category_affinity if kind == "category" else self.profile.brand_affinity
        )
        return float(table.get(key, 0.0))


def count_reach(catalog: Catalog, profiles: Iterable[CustomerProfile]) -> ReachReport:
    """How many of ``profiles`` each action of ``catalog`` (and each variant) reaches."""
    actions = [a for a in catalog if not a.is_do_nothing]
    moments = {a.id: list(_moments(_rules(a))) for a in actions}
    action_counts = dict.fromkeys((a.id for a in actions), 0)
    variant_counts = {a.id: [0] * len(a.variants) for a in actions}
    examples: dict[str, str] = {}
    customers = 0
    for profile in profiles:
        customers += 1
        scope = _ReachScope(profile)
        for action in actions:
            reached, chosen = _reach_one(action, scope, moments[action.id])
            action_counts[action.id] += reached
            if not reached and action.id not in examples and action.eligibility is not None:
                scope.moment, scope.sent = moments[action.id][0]
                reason = action.eligibility.why_not(scope)
                examples[action.id] = f"customer {profile.customer_id}: {reason}"
            for index in chosen:
                variant_counts[action.id][index] += 1
    return ReachReport(
        customers,
        tuple(
            ActionReach(
                a.id,
                "always" if a.eligibility is None else str(a.eligibility),
                action_counts[a.id],
                tuple(
                    VariantReach(v.id, n)
                    for v, n in zip(a.variants, variant_counts[a.id], strict=True)
                ),
                examples.get(a.id),
            )
            for a in actions
        ),
    )


def _reach_one(
    action: Action, scope: _ReachScope, moments: Sequence[Moment]
) -> tuple[bool, set[int]]:
    """Whether ``action`` may be eligible for the scope's customer, and the indices of
    the variants chosen for them at some moment."""
    chosen: set[int] = set()
    reached = False
    for moment, sent in moments:
        scope.moment, scope.sent = moment, sent
        if action.eligibility is not None and not action.eligibility.holds(scope):
            continue
        if not action.variants:
            return True, chosen
        for index, variant in enumerate(action.variants):
            if variant.when is None or variant.when.holds(scope):
                reached = True
                chosen.add(index)
                break
        if len(chosen) == len(action.variants):
            break
    return reached, chosen


def _rules(action: Action) -> list[Rule]:
    rules = [] if action.eligibility is None else [action.eligibility]
    return rules + [v.when for v in action.variants if v.when is not None]


def _moments(rules: Sequence[Rule]) -> Iterator[Moment]:
    """Every combination of the moment, session and send history the rules read."""
    fields = frozenset().union(*(r.fields for r in rules))
    sent_actions = sorted(frozenset().union(*(r.sent_actions for r in rules)))
    weeks: list[dict[str, Value]] = [{}]
    if fields >= _WEEK_FIELDS:
        weeks = [{"local_hour": h % 24, "local_weekday": h // 24} for h in range(HOURS_PER_WEEK)]
    elif "local_hour" in fields:
        weeks = [{"local_hour": h} for h in range(24)]
    elif "local_weekday" in fields:
        weeks = [{"local_weekday": d} for d in range(7)]
    months: list[dict[str, Value]] = [{}]
    if fields & _MONTH_FIELDS:
        months = [{"local_month": m, "next_month": m % 12 + 1} for m in range(1, 13)]
    days: list[dict[str, Value]] = [{"local_day": d} for d in range(1, 32)]
    if "local_day" not in fields:
        days = [{}]
    sessions: list[dict[str, Value]] = [{"in_session": False}]
    if fields & _SESSION_FIELDS:
        sessions = [_session(s) for s in SESSIONS]
    histories = [
        dict(zip(sent_actions, hours, strict=True))
        for hours in itertools.product(SENT_HOURS_AGO, repeat=len(sent_actions))
    ]
    for week, month, day, session in itertools.product(weeks, months, days, sessions):
        moment = {**week, **month, **day, **session}
        for history in histories:
            yield moment, history


def _session(session: tuple[Channel, str | None] | None) -> dict[str, Value]:
    if session is None:
        return {"in_session": False}
    channel, product = session
    return {
        "in_session": True,
        "session_channel": channel.value,
        "session_minutes": SESSION_MINUTES,
        "session_product": product,
    }
