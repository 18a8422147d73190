"""What a journey tool and a batch run still got wrong (issue 12, items 2 and 3).

Each test builds its situation from raw contract events posted to a real app on a
real Redis (the journey tool's side, :mod:`tests.test_scenarios_api`) or to the real
feature code, and checks the answer against what the batch path makes of the same
data:

* an ``identify``'s ``createdAt`` and ``loyalty_tier`` are applied online as the
  customers table's columns are in batch (a customer synced years after signing up
  is not welcomed; a tier synced with the account is no tier reached today);
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from features.dataset import RetailDataset
from tests.test_scenarios import customer as customers_row
from tests.test_scenarios import events as no_events
from tests.test_scenarios import profile_at
from tests.test_scenarios_api import PARIS, Shop, best_of, codes, identify, local, shop

__all__ = ["shop"]  # the fixture, shared with the journey scenarios


def profile_of(shop: Shop, customer: str, at: dt.datetime) -> dict[str, Any]:
    response = shop.api.get(
        f"/v1/customers/{customer}/profile", params={"as_of": at.isoformat()}, headers=shop.headers
    )
    assert response.status_code == 200, response.text
    return response.json()["profile"]


# ---------------------------------------------------------------- identify


def test_identify_applies_sign_up_time_and_loyalty_tier_as_the_customers_table(
    shop: Shop, base: RetailDataset
) -> None:
    """A gold customer who signed up two years ago, synced today by an ``identify``
    (every trait, as journey tools send them): online, first seen two years ago and gold
    since then, as the same customers-table row makes them in batch; so no welcome and
    no "new tier" message. The same traits sent again change nothing; a new tier a day
    later is a tier reached then."""
    synced = local(PARIS, "2026-03-04 10:00")
    signed_up = synced - dt.timedelta(days=700)
    customer = f"M{uuid.uuid4().hex[:10]}"
    traits = {
        "timezone": PARIS,
        "createdAt": signed_up.isoformat(),
        "loyalty_tier": "gold",
        "consent_email": True,
        "consent_push": True,
    }
    shop.post(identify(customer, synced, **traits))
    now = synced + dt.timedelta(hours=1)
    online = profile_of(shop, customer, now)
    row = customers_row(
        base, consents=("email", "push"), created_at=signed_up.isoformat(), loyalty_tier="gold"
    )
    batch = profile_at(base, row, no_events(), now)
    assert online["days_since_first_seen"] == batch.days_since_first_seen
    assert 700 < online["days_since_first_seen"] < 701
    assert online["loyalty_tier"] == batch.loyalty_tier == "gold"
    assert online["days_since_loyalty_tier"] == batch.days_since_loyalty_tier
    assert online["lifecycle_state"] == batch.lifecycle_state.value
    steps = ["welcome_1", "loyalty_tier_reached"]
    answer = shop.decide(customer, now, actions=steps)
    assert answer["actions"][0]["channel"] is None  # nothing to send
    assert codes(answer, "welcome_1") == ["not_eligible"]
    assert codes(answer, "loyalty_tier_reached") == ["not_eligible"]

    # the journey tool sends every trait again with the next identify: nothing changes
    shop.post(identify(customer, synced + dt.timedelta(hours=2), **traits))
    again = profile_of(shop, customer, now + dt.timedelta(hours=2))
    assert again["days_since_loyalty_tier"] == again["days_since_first_seen"] > 700  # gold since

    # platinum reached the next day: a new tier, stamped then, and congratulated
    upgraded = synced + dt.timedelta(days=1)
    shop.post(identify(customer, upgraded, **{**traits, "loyalty_tier": "platinum"}))
    later = profile_of(shop, customer, upgraded + dt.timedelta(hours=1))
    assert later["loyalty_tier"] == "platinum"
    assert later["days_since_loyalty_tier"] * 24 == 1  # reached an hour ago
    assert 701 < later["days_since_first_seen"] < 702
    answer = shop.decide(customer, upgraded + dt.timedelta(hours=1), actions=steps)
    assert [a["action_id"] for a in answer["actions"]] == ["loyalty_tier_reached"]


def test_identify_of_a_new_sign_up_starts_the_welcome_series(shop: Shop) -> None:
    """The same identify for a customer who signed up an hour before: first seen then,
    so the first welcome is eligible (the sign-up time, not the message's, counts)."""
    synced = local(PARIS, "2026-03-04 10:00")
    customer = f"M{uuid.uuid4().hex[:10]}"
    shop.post(
        identify(
            customer,
            synced,
            timezone=PARIS,
            createdAt=(synced - dt.timedelta(hours=1)).isoformat(),
            consent_email=True,
        )
    )
    online = profile_of(shop, customer, synced)
    assert online["days_since_first_seen"] * 24 == 1 and online["loyalty_tier"] == "none"
    assert best_of(shop.decide(customer, synced, actions=["welcome_1"])) == "welcome_1"
