"""A letter's lead time counts La Poste's delivery days, and its offer runs from arrival.

Scenarios built from raw contract events (the real feature code), decided by the real
pipeline with the example contact policy: postal mail takes three delivery days (J+3,
Monday to Saturday, French public holidays excluded; delivered by noon). The expected
arrivals are counted
here by hand, on the calendar of March and April 2026 (Easter Sunday 5 April, so Easter
Monday 6 April is a holiday).
"""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from features.dataset import RetailDataset
from nba.catalog import parse_catalog
from nba.channels import Channel
from nba.decision import Decision
from nba.profile import CustomerProfile
from nba.reasons import ReasonCode
from tests.test_scenarios import customer, decide, events, profile_at

PARIS = ZoneInfo("Europe/Paris")
CATALOG = """
version: 1
actions:
  - id: birthday_card
    type: milestone
    description: A birthday card by post, on or before the day.
    channels: [postal]
    eligibility: days_to_birthday >= 0 and days_to_birthday <= 10
    value: 40
    ttl_hours: 240
    send_by: days_to_birthday
  - id: winback_letter
    type: reactivation
    description: A voucher for a week, by post or by e-mail.
    channels: [postal, email]
    eligibility: not known(days_to_birthday)
    value: 300
    ttl_hours: 240
    offer: {id: week_voucher, kind: percent_discount, value: 10, expires_after_hours: 168}
  - {id: nothing, type: do_nothing}
"""


def _paris(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text).replace(tzinfo=PARIS).astimezone(dt.UTC)


def _profile(
    base: RetailDataset, now: dt.datetime, birth_date: str | None, consents: tuple[str, ...]
) -> CustomerProfile:
    people = customer(base, birth_date=birth_date, consents=consents)
    raw = events(
        ("2026-02-10T18:00:00Z", "web", "product_view", "P1"),
        ("2026-02-10T18:05:00Z", "web", "purchase", "P1"),
    )
    return profile_at(base, people, raw, now)


def _decide(profile: CustomerProfile, now: dt.datetime) -> Decision:
    return decide(profile, now, catalog=parse_catalog(CATALOG))


@pytest.mark.parametrize(
    ("now", "birthday", "arrives"),
    [
        # posted on Saturday 7 March: Monday 9, Tuesday 10, Wednesday 11 (Sunday does not count)
        ("2026-03-07 10:00", "1990-03-11", "Wed 2026-03-11"),
        # posted on Saturday 4 April: Easter Monday does not count: Tuesday 7 to Thursday 9
        ("2026-04-04 10:00", "1990-04-09", "Thu 2026-04-09"),
    ],
)
def test_a_birthday_card_counts_delivery_days_and_lands_by_the_day(
    base: RetailDataset, now: str, birthday: str, arrives: str
) -> None:
    """Posted on a Saturday, the card lands on the third delivery day after it, which is
    the birthday itself: it goes by post, and the timing says the day it lands."""
    moment = _paris(now)
    decision = _decide(_profile(base, moment, birthday, ("postal",)), moment)
    [chosen] = decision.actions
    assert (chosen.action_id, chosen.channel) == ("birthday_card", Channel.POSTAL)
    assert chosen.send_at is not None and chosen.send_at.astimezone(PARIS).date() == (
        moment.astimezone(PARIS).date()
    )
    assert f"arrives {arrives} local (3 delivery days later)" in chosen.timing_basis


@pytest.mark.parametrize(
    ("now", "birthday"),
    [
        ("2026-03-07 10:00", "1990-03-10"),  # Sunday between: it would land on the 11th
        ("2026-04-04 10:00", "1990-04-08"),  # Sunday and Easter Monday: on the 9th
    ],
)
def test_no_card_when_sundays_and_holidays_make_it_land_after_the_birthday(
    base: RetailDataset, now: str, birthday: str
) -> None:
    """Three calendar days would have been enough; three delivery days are not: no letter,
    and the reason names the delivery days (counted by the calendar, the card was posted
    and arrived a day or two after the birthday)."""
    moment = _paris(now)
    decision = _decide(_profile(base, moment, birthday, ("postal",)), moment)
    assert all(a.channel is None for a in decision.actions)
    [rejection] = [r for r in decision.rejections if r.action_id == "birthday_card"]
    assert (rejection.channel, rejection.code) == (Channel.POSTAL, ReasonCode.NO_SEND_SLOT)
    assert "takes 3 delivery days to arrive" in rejection.message
    assert "would arrive too late" in rejection.message


def _delivery_days_after(day: dt.date, n: int) -> dt.date:
    """The ``n``-th La Poste delivery day after ``day`` (spring 2026's holidays)."""
    holidays = {dt.date(2026, 4, 6), dt.date(2026, 5, 1), dt.date(2026, 5, 8)}
    while n:
        day += dt.timedelta(days=1)
        n -= day.weekday() < 6 and day not in holidays
    return day


@pytest.mark.parametrize("now", ["2026-03-06 10:00", "2026-04-03 10:00"])
def test_a_posted_voucher_runs_from_the_letters_arrival(base: RetailDataset, now: str) -> None:
    """A voucher valid a week (168 h): by post it runs a week from the day the letter
    lands (a Friday's letter lands on Tuesday, or on Wednesday over Easter), not from the
    posting, which would leave the customer four or five days of it; by e-mail it runs
    from the send."""
    moment = _paris(now)
    [posted] = _decide(_profile(base, moment, None, ("postal",)), moment).actions
    assert (posted.action_id, posted.channel) == ("winback_letter", Channel.POSTAL)
    assert posted.send_at is not None and posted.offer_expires_at is not None
    sent = posted.send_at.astimezone(PARIS)
    landed = dt.datetime.combine(  # delivered by noon
        _delivery_days_after(sent.date(), 3), dt.time(12), tzinfo=PARIS
    ).astimezone(dt.UTC)
    assert posted.offer_expires_at == landed + dt.timedelta(hours=168)
    assert posted.offer_expires_at - posted.send_at >= dt.timedelta(days=10)
    [mailed] = _decide(_profile(base, moment, None, ("email",)), moment).actions
    assert (mailed.action_id, mailed.channel) == ("winback_letter", Channel.EMAIL)
    assert mailed.send_at is not None
    assert mailed.offer_expires_at == mailed.send_at + dt.timedelta(hours=168)
