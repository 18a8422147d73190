"""A message that can go any day goes at the customer's best hour of the next day.

A customer who browses on Saturday evenings is decided on a Wednesday morning. The
customer's hour-of-week histogram peaks on Saturday at 19:00; the style guide or the
weekly picks could wait for it (their validity is five days), but a message due on
Saturday would hold every channel until 12 hours after it (the message gap counts
messages due), three days in which no reminder could go. The hour of the day is what
the customer's habit says (19:00), and it comes today: the message goes this evening.
Built from raw contract events through the real feature code, decided with the example
catalog and contact policy (:mod:`tests.test_scenarios`).
"""

from __future__ import annotations

import datetime as dt

from features.dataset import RetailDataset
from nba.channels import Channel
from tests.test_scenarios import UTC, customer, decide, events, profile_at

WEDNESDAY_MORNING = dt.datetime(2026, 3, 4, 7, 0, tzinfo=UTC)  # 08:00 in Paris


def _saturday_evenings() -> list[tuple[object, ...]]:
    """Two product views at 19:00 Paris time on each Saturday of February."""
    rows: list[tuple[object, ...]] = []
    for saturday in (7, 14, 21, 28):
        at = dt.datetime(2026, 2, saturday, 18, 0, tzinfo=UTC)
        rows.append((at.strftime("%Y-%m-%dT%H:%M:%SZ"), "web", "product_view", "P1"))
        later = at + dt.timedelta(minutes=3)
        rows.append((later.strftime("%Y-%m-%dT%H:%M:%SZ"), "web", "product_view", "P2"))
    return rows


def test_a_message_that_can_wait_goes_this_evening_not_on_saturday(base: RetailDataset) -> None:
    profile = profile_at(
        base, customer(base, consents=("email",)), events(*_saturday_evenings()), WEDNESDAY_MORNING
    )
    saturday_evening = 5 * 24 + 19
    assert max(range(168), key=lambda h: profile.activity_by_hour[h]) == saturday_evening
    decision = decide(profile, WEDNESDAY_MORNING)
    [chosen] = decision.actions
    assert chosen.action_id in {"style_guide_content", "recommendations_weekly"}
    assert chosen.channel is Channel.EMAIL
    local = chosen.send_at_local
    assert local is not None
    assert (local.date(), local.hour) == (dt.date(2026, 3, 4), 19)  # today, the habit's hour
    assert "most active hour" in chosen.timing_basis
