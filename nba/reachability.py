"""Catalog actions that can never fire under a contact policy, found when loading.

An action fires only if, at some local moment of the week, its eligibility may
hold and one of its channels may send within its time-to-live (the channel's
hours and weekdays, the action's ``local_hours``, its send delay).
:func:`unreachable_actions` checks every action of a catalog against a contact
policy over the 168 hours of a week and says, for each action that can never
fire, why: its channels leave no moment within its time-to-live, or its
eligibility holds only when none of them may send. :func:`warn_unreachable`
turns these into :class:`CatalogWarning` warnings (``build_pipeline`` calls it).

Only the local hour and weekday of the decision are known to the check, and
whether the customer is in a live session: always on a placement's channels
(``web``, ``app``: they answer only during a visit), unknown on the others; every
other field is unknown, and a rule that is false without any field known (its
``known(...)`` tests) is left alone: the check never warns about a rule it
cannot read. A channel the contact policy caps at 0 (a paused channel) never sends.

>>> from nba.catalog import parse_catalog
>>> catalog = parse_catalog('''
... actions:
...   - {id: night_sms, type: content, channels: [sms], ttl_hours: 2,
...      eligibility: "local_hour >= 22"}
...   - {id: fine, type: content, channels: [email]}
... ''')
>>> [problem] = unreachable_actions(catalog, ContactPolicy())
>>> print(problem)  # doctest: +NORMALIZE_WHITESPACE
action 'night_sms' can never fire: its eligibility (local_hour >= 22) holds only at local
times when none of its channels (sms: 08:00-20:00, mon/tue/wed/thu/fri/sat) may send
within its 2 h time-to-live
"""

from __future__ import annotations

import datetime as dt
import math
import warnings
from collections.abc import Callable

from nba.actions import Action
from nba.catalog import Catalog
from nba.channels import Channel
from nba.contact_policy import ContactPolicy
from nba.profile import HOURS_PER_WEEK
from nba.rules import Value

#: A Monday, to turn hours of the week into local moments.
_MONDAY = dt.datetime(2026, 3, 2)


class CatalogWarning(UserWarning):
    """A catalog action that can never fire under the contact policy."""


class _MomentScope:
    """Only the decision's local hour and weekday are known, and ``in_session`` on a
    placement's channels (a live visit is the only moment they answer)."""

    def __init__(self, hour_of_week: int | None, in_session: bool | None = None) -> None:
        self.hour_of_week = hour_of_week
        self.in_session = in_session

    def field(self, name: str) -> Value:
        if name == "in_session":
            return self.in_session
        if self.hour_of_week is None:
            return None
        if name == "local_hour":
            return self.hour_of_week % 24
        if name == "local_weekday":
            return self.hour_of_week // 24
        return None

    def hours_since_sent(self, action_id: str) -> float | None:
        return None

    def affinity(self, kind: str, key: str) -> float:
        return 0.0


def unreachable_actions(catalog: Catalog, policy: ContactPolicy) -> tuple[str, ...]:
    """Why each action of ``catalog`` that can never fire under ``policy`` cannot, in
    catalog order (empty when every action may fire)."""
    problems: list[str] = []
    allowed_hours: dict[tuple[object, ...], list[bool]] = {}  # actions share channels
    for action in catalog:
        if action.is_do_nothing or not action.deliverable_channels:
            continue
        # per local hour of the week: may it go then, during a live session (a
        # placement's channels) or whether or not one is live (the others)?
        in_session = [False] * HOURS_PER_WEEK
        anytime = [False] * HOURS_PER_WEEK
        for channel in action.deliverable_channels:
            during = policy.rules(channel).requires_session
            slots = in_session if during else anytime
            for hour, ok in enumerate(_sendable_from(action, channel, policy, allowed_hours)):
                slots[hour] = slots[hour] or ok
        described = ", ".join(_describe(c, policy) for c in action.deliverable_channels)
        if not any(in_session) and not any(anytime):
            extra = ""
            if action.local_hours:
                extra = f" in {', '.join(str(w) for w in action.local_hours)}"
            problems.append(
                f"action {action.id!r} can never fire: none of its channels ({described}) may "
                f"send{extra} within its {action.ttl_hours:g} h time-to-live"
            )
            continue
        rule = action.eligibility
        if rule is None or rule.evaluate(_MomentScope(None)) is False:
            continue
        if not any(
            (anytime[h] and rule.evaluate(_MomentScope(h)) is not False)
            or (in_session[h] and rule.evaluate(_MomentScope(h, in_session=True)) is not False)
            for h in range(HOURS_PER_WEEK)
        ):
            if not any(anytime):  # placements only
                problems.append(
                    f"action {action.id!r} can never fire: its eligibility ({rule}) never "
                    f"holds during a live session, and its channels ({described}) answer "
                    "only during one"
                )
                continue
            problems.append(
                f"action {action.id!r} can never fire: its eligibility ({rule}) holds only at "
                f"local times when none of its channels ({described}) may send within its "
                f"{action.ttl_hours:g} h time-to-live"
            )
    return tuple(problems)


def warn_unreachable(catalog: Catalog, policy: ContactPolicy) -> tuple[str, ...]:
    """Warn (:class:`CatalogWarning`) about each action that can never fire; return them."""
    problems = unreachable_actions(catalog, policy)
    for problem in problems:
        warnings.warn(problem, CatalogWarning, stacklevel=2)
    return problems


def _sendable_from(
    action: Action,
    channel: Channel,
    policy: ContactPolicy,
    cache: dict[tuple[object, ...], list[bool]],
) -> list[bool]:
    """For each local hour of the week: may ``action`` go out on ``channel`` within its
    time-to-live when decided then?"""
    rules = policy.rules(channel)
    if _paused(channel, policy):
        return [False] * HOURS_PER_WEEK
    if rules.requires_session:
        return [True] * HOURS_PER_WEEK  # during a live session, at once
    key = (channel, action.local_hours)
    allowed = cache.get(key)
    if allowed is None:
        allowed = cache[key] = [
            _hour_allowed(rules.allowed_times.allows, action, h) for h in range(HOURS_PER_WEEK)
        ]
    if not any(allowed):
        return [False] * HOURS_PER_WEEK
    # hours from each hour of the week to the next allowed one (circular)
    wait = [0] * HOURS_PER_WEEK
    distance = math.inf
    for step in range(2 * HOURS_PER_WEEK - 1, -1, -1):
        hour = step % HOURS_PER_WEEK
        distance = 0 if allowed[hour] else distance + 1
        if step < HOURS_PER_WEEK:
            wait[hour] = int(distance)
    delay = math.ceil(action.send_delay_hours)
    return [
        delay + wait[(h + delay) % HOURS_PER_WEEK] <= action.ttl_hours
        for h in range(HOURS_PER_WEEK)
    ]


def _hour_allowed(allows: Callable[[dt.datetime], bool], action: Action, hour_of_week: int) -> bool:
    """True when some of the hour (its start or its half) is allowed."""
    for minute in (0, 30):
        local = _MONDAY + dt.timedelta(hours=hour_of_week, minutes=minute)
        if allows(local) and (
            not action.local_hours or any(w.contains(local.time()) for w in action.local_hours)
        ):
            return True
    return False


def _paused(channel: Channel, policy: ContactPolicy) -> str | None:
    """The cap at 0 that keeps ``channel`` from ever sending (the channel's own, or the
    overall one when the channel counts toward it), named as the policy spells it."""
    rules = policy.rules(channel)
    caps = [(f"channels.{channel.value}.{n}", getattr(rules, n)) for n in _CAPS]
    if rules.counts_toward_total:
        caps += [(n, getattr(policy, n)) for n in ("cap_1d", "cap_7d")]
    for name, cap in caps:
        if cap == 0:
            return name
    return None


_CAPS = ("cap_1d", "cap_7d", "cap_30d")


def _describe(channel: Channel, policy: ContactPolicy) -> str:
    rules = policy.rules(channel)
    paused = _paused(channel, policy)
    if paused is not None:
        return f"{channel.value}: capped at 0 ({paused}: 0)"
    if rules.requires_session:
        return f"{channel.value}: live session"
    return f"{channel.value}: {rules.describe_hours()}"
