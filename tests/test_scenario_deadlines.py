"""Deadlines in the customer's calendar: birthday wishes arrive on or before the day.

The demo's batch run sent 13 of 107 birthday messages after the birthday: a
customer whose birthday is today, most active on Monday mornings, got the wishes
on Monday. An action's ``send_by`` (``days_to_birthday`` for the seed birthday
action) ends its time-to-live at the end of that local day. Built from raw
contract events through the real feature code, as the other scenario tests.
"""

from __future__ import annotations

import datetime as dt

import pytest

from features.dataset import RetailDataset
from nba.catalog import parse_catalog
from nba.reasons import ReasonCode
from tests.test_scenarios import EXAMPLES, customer, decide, events, profile_at, retailer_policy

UTC = dt.UTC


def monday_morning_browser() -> tuple[tuple[object, ...], ...]:
    """Eight weeks of a customer who shops on Monday at 09:00 Paris time (07:00 UTC)."""
    first_monday = dt.datetime(2026, 2, 2, 7, 0, tzinfo=UTC)
    rows: list[tuple[object, ...]] = []
    for week in range(8):
        at = first_monday + dt.timedelta(weeks=week)
        rows.append((at.isoformat(), "web", "product_view", "P1"))
        rows.append(((at + dt.timedelta(minutes=3)).isoformat(), "web", "product_view", "P2"))
    rows.append(((first_monday + dt.timedelta(minutes=9)).isoformat(), "web", "purchase", "P1"))
    return tuple(rows)


@pytest.mark.parametrize("days_ahead", [0, 1])
def test_birthday_wishes_never_arrive_after_the_birthday(
    base: RetailDataset, days_ahead: int
) -> None:
    """Decided on Saturday 11:00 in Paris with the birthday today or tomorrow: the
    wishes go out by the end of the birthday, although the customer's best hour is
    Monday 09:00, within the 72 h time-to-live."""
    now = dt.datetime(2026, 4, 4, 9, 0, tzinfo=UTC)  # Saturday 11:00 in Paris
    birthday = (now + dt.timedelta(days=days_ahead)).date().replace(year=1990)
    people = customer(base, birth_date=birthday.isoformat(), consents=("email",))
    profile = profile_at(base, people, events(*monday_morning_browser()), now)
    assert profile.days_to_birthday == days_ahead
    decision = decide(profile, now, only="birthday")
    [chosen] = decision.actions
    assert chosen.action_id == "birthday"
    local = chosen.send_at.astimezone(dt.timezone(dt.timedelta(hours=2)))  # CEST
    assert local.date() <= birthday.replace(year=2026)
    assert local.date() >= now.date()

    # the same action without its deadline, under a policy that looks for the best hour
    # over the whole validity (not within a day), waits for the customer's best hour: Monday
    text = (EXAMPLES / "retailer_catalog.yaml").read_text()
    undated = parse_catalog(text.replace("    send_by: days_to_birthday", "    # no deadline"))
    whole_validity = retailer_policy().model_copy(update={"best_hour_within_hours": None})
    [late] = decide(
        profile, now, only="birthday", catalog=undated, contact_policy=whole_validity
    ).actions
    assert late.send_at.astimezone(dt.timezone(dt.timedelta(hours=2))).weekday() == 0


def test_a_passed_deadline_sends_nothing_and_says_why(base: RetailDataset) -> None:
    """An action whose deadline is already behind the customer is not sent, and the
    reasons say that no send time fits (not a silent drop)."""
    now = dt.datetime(2026, 4, 4, 9, 0, tzinfo=UTC)
    text = (EXAMPLES / "retailer_catalog.yaml").read_text()
    text = text.replace("    send_by: days_to_birthday", "    send_by: days_to_birthday - 1")
    catalog = parse_catalog(text)
    birthday = now.date().replace(year=1990)  # today: the deadline was yesterday
    people = customer(base, birth_date=birthday.isoformat(), consents=("email",))
    profile = profile_at(base, people, events(*monday_morning_browser()), now)
    decision = decide(profile, now, only="birthday", catalog=catalog)
    assert [a.action_id for a in decision.actions] == ["do_nothing"]
    assert ReasonCode.NO_SEND_SLOT in decision.reasons("birthday")


def test_send_by_must_be_a_number() -> None:
    """A deadline that is not numeric is a catalog error naming the action and field."""
    text = (EXAMPLES / "retailer_catalog.yaml").read_text()
    text = text.replace("    send_by: days_to_birthday", "    send_by: loyalty_tier")
    with pytest.raises(ValueError, match=r"birthday[\s\S]*send_by"):
        parse_catalog(text)
