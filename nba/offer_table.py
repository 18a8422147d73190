"""The retailer's offers table over the catalog's offer terms.

The data contract's offers table (one row per offer: kind, value, cost, validity,
channels, daily budget, eligibility) is the retailer's record of what each offer gives
and costs; the catalog attaches offers to actions. When both name an offer (the same
id), one rule settles every field:

* **what the offer gives and costs** (``kind``, ``value``, ``cost``) is the table's: the
  table is where the retailer prices its offers and it is refreshed with the data, while
  the catalog's numbers are a marketer's copy that goes stale;
* **what restricts it composes, the stricter wins**: validity is the overlap of both
  windows, the channels those both allow, the daily budget the smaller, and both
  eligibility rules must hold. The catalog may narrow an offer; it never widens what
  the table allows (an offer the table says has ended is not given);
* ``expires_after_hours``, which the table does not carry, stays the catalog's.

A catalog offer the table does not list keeps its catalog terms (reported in
:attr:`OfferTableMerge.unlisted`); table rows no action uses are ignored. An action the
merged offer leaves no channel to is kept, never given (:attr:`OfferTableMerge.silenced`).

>>> import datetime as dt
>>> from nba.catalog import parse_catalog
>>> catalog = parse_catalog('''
... actions:
...   - {id: winback, type: reactivation, channels: [email, sms],
...      offer: {id: w15, kind: percent_discount, value: 15, cost: 7, daily_budget: 300}}
... ''')
>>> table = {"w15": Offer(id="w15", kind="percent_discount", value=20, cost=9.5,
...                       valid_to=dt.datetime(2026, 3, 31, tzinfo=dt.UTC),
...                       channels=["email"], daily_budget=500)}
>>> merged = apply_offer_table(catalog, table).catalog
>>> offer = merged["winback"].offer
>>> offer.value, offer.cost, offer.daily_budget, offer.valid_to.date().isoformat()
(20.0, 9.5, 300, '2026-03-31')
>>> merged["winback"].deliverable_channels
(<Channel.EMAIL: 'email'>,)
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass

from nba.actions import Action, Offer
from nba.catalog import Catalog
from nba.context import RULE_SCHEMA
from nba.rules import Rule, ValueType, compile_rule


@dataclass(frozen=True)
class OfferTableMerge:
    """The catalog with the table's offer terms, and what the merge could not apply."""

    catalog: Catalog
    #: offer ids of the catalog the table does not list (their catalog terms hold)
    unlisted: tuple[str, ...] = ()
    #: action ids whose channels the table's offer allows none of (never given)
    silenced: tuple[str, ...] = ()

    def warnings(self) -> list[str]:
        """One sentence per problem, naming the offer or action and what follows."""
        found = []
        if self.unlisted:
            names = ", ".join(repr(offer) for offer in self.unlisted)
            found.append(
                f"offers of the catalog not in the offers table ({names}): their catalog terms hold"
            )
        found += [
            f"action {action!r}: the offers table allows its offer on none of the action's "
            "channels; it is never given"
            for action in self.silenced
        ]
        return found


def merge_offer(catalog_offer: Offer, table_offer: Offer) -> Offer:
    """``catalog_offer`` under the table's terms (see the module's rule)."""
    channels = table_offer.channels
    if catalog_offer.channels:
        channels = tuple(c for c in channels if c in catalog_offer.channels)
    terms = {
        "kind": table_offer.kind,
        "value": table_offer.value,
        "cost": table_offer.cost,
        "valid_from": _latest(catalog_offer.valid_from, table_offer.valid_from),
        "valid_to": _earliest(catalog_offer.valid_to, table_offer.valid_to),
        "channels": channels,
        "daily_budget": _smallest(catalog_offer.daily_budget, table_offer.daily_budget),
        "eligibility": _both(catalog_offer.eligibility, table_offer.eligibility),
    }
    # no validation: a window that no longer opens (valid_to before valid_from) and an
    # empty channel list are what the table says, and mean "never given"
    return catalog_offer.model_copy(update=terms)


def apply_offer_table(catalog: Catalog, table: Mapping[str, Offer]) -> OfferTableMerge:
    """``catalog`` with each offer the table lists under the table's terms."""
    actions: list[Action] = []
    unlisted: list[str] = []
    silenced: list[str] = []
    for action in catalog:
        offer = action.offer
        if offer is None:
            actions.append(action)
            continue
        listed = table.get(offer.id)
        if listed is None:
            if offer.id not in unlisted:
                unlisted.append(offer.id)
            actions.append(action)
            continue
        merged = action.model_copy(update={"offer": merge_offer(offer, listed)})
        if not merged.deliverable_channels:
            silenced.append(action.id)
        actions.append(merged)
    return OfferTableMerge(Catalog(actions), tuple(unlisted), tuple(silenced))


def _latest(a: dt.datetime | None, b: dt.datetime | None) -> dt.datetime | None:
    return b if a is None else a if b is None else max(a, b)


def _earliest(a: dt.datetime | None, b: dt.datetime | None) -> dt.datetime | None:
    return b if a is None else a if b is None else min(a, b)


def _smallest(a: int | None, b: int | None) -> int | None:
    return b if a is None else a if b is None else min(a, b)


def _both(a: Rule | None, b: Rule | None) -> Rule | None:
    if a is None or b is None or a == b:
        return a if b is None else b
    return compile_rule(f"({a}) and ({b})", RULE_SCHEMA, expect=ValueType.BOOL)
