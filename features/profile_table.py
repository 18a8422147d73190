"""Profiles as table rows (Parquet, CSV, Spark) and back.

Scalars stay scalars; lists stay lists; nested values (affinities, engagement,
contact history, consents) are JSON text, so that every engine can store them.
``row_to_profile(profile_to_row(p)) == p``.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable, Mapping
from dataclasses import fields
from typing import Any

import pandas as pd

from nba.channels import CONSENT_CHANNELS, Channel
from nba.profile import (
    ChannelEngagement,
    ContactHistory,
    CustomerProfile,
    JourneyPhase,
    LifecycleState,
)

_JSON_FIELDS = ("category_affinity", "brand_affinity", "engagement", "consents", "contacts")
_TUPLE_FIELDS = (
    "activity_by_hour",
    "cart_items",
    "browsed_products",
    "browsed_categories",
    "last_purchased_products",
    "seasonal_months",
)
#: Flat convenience columns, derived, ignored when reading back.
DERIVED_COLUMNS = tuple(
    [f"consent_{c.value}" for c in CONSENT_CHANNELS]
    + [f"{c.value}_open_rate" for c in CONSENT_CHANNELS]
    + [f"{c.value}_click_rate" for c in CONSENT_CHANNELS]
)


def _stamp(value: dt.datetime) -> str:
    return value.astimezone(dt.UTC).isoformat()


def _contacts_json(c: ContactHistory) -> str:
    return json.dumps(
        {
            "last_contact_at": {k.value: _stamp(v) for k, v in c.last_contact_at.items()},
            "contacts_1d": {k.value: v for k, v in c.contacts_1d.items()},
            "contacts_7d": {k.value: v for k, v in c.contacts_7d.items()},
            "contacts_30d": {k.value: v for k, v in c.contacts_30d.items()},
            "last_refusal_at": {k.value: _stamp(v) for k, v in c.last_refusal_at.items()},
        },
        sort_keys=True,
    )


def profile_to_row(profile: CustomerProfile) -> dict[str, Any]:
    """One flat row for ``profile``."""
    row: dict[str, Any] = {}
    for f in fields(CustomerProfile):
        value = getattr(profile, f.name)
        if f.name == "engagement":
            value = json.dumps({k.value: vars(v) for k, v in value.items()}, sort_keys=True)
        elif f.name == "consents":
            value = json.dumps({k.value: v for k, v in value.items()}, sort_keys=True)
        elif f.name == "contacts":
            value = _contacts_json(value)
        elif f.name in _JSON_FIELDS:
            value = json.dumps(value, sort_keys=True)
        elif f.name in _TUPLE_FIELDS:
            value = list(value)
        elif isinstance(value, LifecycleState | JourneyPhase):
            value = value.value
        row[f.name] = value
    for ch in CONSENT_CHANNELS:
        row[f"consent_{ch.value}"] = profile.consented(ch)
        eng = profile.engagement.get(ch, ChannelEngagement())
        row[f"{ch.value}_open_rate"] = eng.open_rate
        row[f"{ch.value}_click_rate"] = eng.click_rate
    return row


def profiles_frame(profiles: Iterable[CustomerProfile]) -> pd.DataFrame:
    """A frame with one row per profile."""
    return pd.DataFrame([profile_to_row(p) for p in profiles])


def _none(value: Any) -> Any:
    if value is None:
        return None
    try:
        if pd.isna(value):
            return None
    except (TypeError, ValueError):
        pass
    return value


def row_to_profile(row: Mapping[str, Any]) -> CustomerProfile:
    """The profile stored in ``row`` (derived columns are ignored)."""
    kwargs: dict[str, Any] = {}
    for f in fields(CustomerProfile):
        if f.name not in row:
            continue
        value = row[f.name]
        if f.name == "engagement":
            value = {Channel(k): ChannelEngagement(**v) for k, v in json.loads(value).items()}
        elif f.name == "consents":
            value = {Channel(k): bool(v) for k, v in json.loads(value).items()}
        elif f.name == "contacts":
            raw = json.loads(value)
            value = ContactHistory(
                last_contact_at={
                    Channel(k): dt.datetime.fromisoformat(v)
                    for k, v in raw["last_contact_at"].items()
                },
                contacts_1d={Channel(k): int(v) for k, v in raw["contacts_1d"].items()},
                contacts_7d={Channel(k): int(v) for k, v in raw["contacts_7d"].items()},
                contacts_30d={Channel(k): int(v) for k, v in raw["contacts_30d"].items()},
                last_refusal_at={
                    Channel(k): dt.datetime.fromisoformat(v)
                    for k, v in raw["last_refusal_at"].items()
                },
            )
        elif f.name in _JSON_FIELDS:
            value = json.loads(value)
        elif f.name in _TUPLE_FIELDS:
            value = tuple(value) if value is not None else ()
            if f.name == "seasonal_months":
                value = tuple(int(v) for v in value)
            elif f.name == "activity_by_hour":
                value = tuple(float(v) for v in value)
            else:
                value = tuple(str(v) for v in value)
        elif f.name == "lifecycle_state":
            value = LifecycleState(value)
        elif f.name == "journey_phase":
            value = JourneyPhase(value)
        elif f.name == "as_of":
            value = None if _none(value) is None else pd.Timestamp(value).to_pydatetime()
        else:
            value = _none(value)
            if isinstance(value, float) and f.type in ("int", "int | None") and value is not None:
                value = int(value)
            elif hasattr(value, "item"):
                value = value.item()
        kwargs[f.name] = value
    return CustomerProfile(**kwargs)
