"""Offer budgets and action volume limits per day.

The engine stores nothing: the caller passes a read-only view of today's usage
(:class:`UsageCounts`, e.g. Redis counters) and each decision reports what it
consumed (:class:`Consumption`), which the caller adds to its counters.

>>> from nba.actions import Action
>>> a = Action(id="cart10", type="cart_reminder", channels=["email"], daily_volume=100,
...            offer={"id": "o10", "kind": "percent_discount", "value": 10, "daily_budget": 2})
>>> budget_reason(a, UsageCounts(offers_given={"o10": 2})).code
<ReasonCode.BUDGET_EXHAUSTED: 'budget_exhausted'>
>>> budget_reason(a, UsageCounts(actions_sent={"cart10": 1})) is None
True
>>> Consumption.of([a]).offers_given
{'o10': 1}

Budgets and volumes are *daily*: the day is the retailer's, in the time zone its contact
policy names (:attr:`nba.contact_policy.ContactPolicy.timezone`), so a budget resets at
the retailer's midnight, not at UTC's:

>>> import zoneinfo
>>> late = dt.datetime(2026, 3, 6, 23, 30, tzinfo=dt.UTC)  # 00:30 on the 7th in Paris
>>> budget_day(late, zoneinfo.ZoneInfo("Europe/Paris")).isoformat()
'2026-03-07'
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from nba.actions import Action
from nba.frozen import fast_init
from nba.reasons import Reason, ReasonCode


def budget_day(moment: dt.datetime, zone: dt.tzinfo) -> dt.date:
    """The day whose budgets ``moment`` (time-zone aware) counts toward: its date in
    ``zone``, the retailer's time zone."""
    return moment.astimezone(zone).date()


@fast_init
@dataclass(frozen=True)
class UsageCounts:
    """Today's usage, read-only: offers given and actions sent, by id."""

    offers_given: Mapping[str, int] = field(default_factory=dict)
    actions_sent: Mapping[str, int] = field(default_factory=dict)


@fast_init
@dataclass(frozen=True)
class Consumption:
    """What one decision used: add it to today's usage once the decision is executed."""

    offers_given: dict[str, int] = field(default_factory=dict)
    actions_sent: dict[str, int] = field(default_factory=dict)

    @classmethod
    def of(cls, actions: Iterable[Action]) -> Consumption:
        offers: dict[str, int] = {}
        sent: dict[str, int] = {}
        for action in actions:
            if action.is_do_nothing:
                continue
            sent[action.id] = sent.get(action.id, 0) + 1
            if action.offer is not None:
                offers[action.offer.id] = offers.get(action.offer.id, 0) + 1
        return cls(offers, sent)


def given_back(usage: UsageCounts, consumed: Iterable[Consumption]) -> UsageCounts:
    """``usage`` with the budgets ``consumed`` by decisions withdrawn before they went given
    back (a scheduled message replaced: :mod:`nba.supersession`).

    >>> used = UsageCounts({"ten_off": 3}, {"cart_reminder_1": 5})
    >>> given_back(used, [Consumption({"ten_off": 1}, {"cart_reminder_1": 1})])
    UsageCounts(offers_given={'ten_off': 2}, actions_sent={'cart_reminder_1': 4})
    """
    consumed = list(consumed)
    if not consumed:
        return usage
    offers, actions = dict(usage.offers_given), dict(usage.actions_sent)
    for c in consumed:
        for key, n in c.offers_given.items():
            offers[key] = offers.get(key, 0) - n
        for key, n in c.actions_sent.items():
            actions[key] = actions.get(key, 0) - n
    return UsageCounts(offers, actions)


def budget_reason(action: Action, usage: UsageCounts) -> Reason | None:
    """Why ``action`` cannot be given today (offer budget, action volume), or ``None``."""
    offer = action.offer
    if offer is not None and offer.daily_budget is not None:
        given = usage.offers_given.get(offer.id, 0)
        if given >= offer.daily_budget:
            return Reason(
                ReasonCode.BUDGET_EXHAUSTED,
                f"offer {offer.id!r}: {given} given today, "
                f"the daily budget is {offer.daily_budget}",
            )
    if action.daily_volume is not None:
        sent = usage.actions_sent.get(action.id, 0)
        if sent >= action.daily_volume:
            return Reason(
                ReasonCode.VOLUME_LIMIT,
                f"{sent} sent today, the daily volume is {action.daily_volume}",
            )
    return None
