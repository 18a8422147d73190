"""A later message must not take the room a journey's next step needs (nba.reserve).

A journey's next step whose trigger already happened (the cart's second reminder once
the cart is a day old, a welcome series' next message, a review a day after the
delivery) comes due with no new event: a certain claim on a channel unit. A low-value
message scheduled meanwhile spends the rolling windows around its own send time, so it
can keep that channel past the step's last chance. The engine now counts the step at its
due time, with its window and validity and its own priority (:func:`nba.reserve.step_due`),
and a scheduled send's blocks in every rolling window (:func:`nba.reserve.after_send`).

The scenarios go through the real API on a real Redis from raw contract events, as a
journey tool drives it (:mod:`tests.test_scenarios_api`), with the example catalog or a
marketer's own; the unit tests below them pin the two pieces.
"""

from __future__ import annotations

import datetime as dt
import math
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from features.dataset import RetailDataset
from nba.catalog import parse_catalog
from nba.channels import Channel
from nba.contact_policy import ContactPolicy
from nba.context import CustomerContext
from nba.profile import ContactHistory, CustomerProfile
from nba.reserve import after_send, free_at, step_due, step_plan
from tests.api_support import redis_client
from tests.test_scenarios import retailer
from tests.test_scenarios_api import (
    DAY,
    HOUR,
    MINUTE,
    PARIS,
    Shop,
    contacts,
    event,
    local,
    message,
    open_shop,
    purchase,
    send_utc,
    shop,
    the_action,
)

__all__ = ["shop"]  # the journey scenarios' app, shared

CART = ["cart_reminder_1", "cart_reminder_2", "cart_reminder_2_discount"]


# ------------------------------------------------------------ the cart's second reminder


def test_a_cart_taken_out_leaves_no_step_and_the_picks_go(shop: Shop) -> None:
    """The negative of the audit6 scenario: the same cart reminded at 16:00, but the
    trousers taken out of the cart at 17:00. No cart, no second reminder to come: asked at
    18:30, the weekly picks are scheduled for when the day's e-mail frees, and their
    reasons carry no opportunity cost. The reserve keeps a channel only for a claim."""
    added = local(PARIS, "2026-03-04 15:00")
    customer = shop.signup(added - 30 * DAY, consents=("email",))
    shop.post(event(customer, added, "add_to_cart", "P1"))
    first = shop.first_contact(customer, added + HOUR)
    assert first["action_id"] == "cart_reminder_1"
    shop.post(event(customer, added + 2 * HOUR, "remove_from_cart", "P1"))
    # exploration may draw doing nothing (a journey tool asking again gets a new draw)
    picks = shop.first_contact(customer, added + 210 * MINUTE, actions=["recommendations_weekly"])
    assert (picks["action_id"], picks["channel"]) == ("recommendations_weekly", "email")
    assert send_utc(picks) >= send_utc(first) + DAY  # once the day's e-mail frees
    assert not any("opportunity cost" in reason for reason in picks["reasons"])


def test_once_the_second_reminder_went_the_picks_follow(shop: Shop) -> None:
    """The audit6 journey carried on: the picks held on Wednesday evening for the cart's
    second reminder; the reminder decided on Thursday at 16:30; asked again at 18:00 the
    cart journey has no step left to claim the e-mail (the second reminder sent, the
    discounted one its alternative), so the picks are scheduled after the reminder's
    day."""
    added = local(PARIS, "2026-03-04 15:00")
    customer = shop.signup(added - 30 * DAY, consents=("email",))
    shop.post(event(customer, added, "add_to_cart", "P1"))
    assert shop.first_contact(customer, added + HOUR)["action_id"] == "cart_reminder_1"
    held = shop.decide(customer, added + 3 * HOUR)
    assert contacts(held) == []
    assert "kept email free for cart_reminder_2" in message(held, "recommendations_weekly")
    second = the_action(shop.decide(customer, added + DAY + 90 * MINUTE, actions=CART))
    assert (second["action_id"], second["channel"]) == ("cart_reminder_2", "email")
    later = shop.decide(customer, added + DAY + 3 * HOUR)
    [picks] = contacts(later)
    assert picks["action_id"] == "recommendations_weekly"
    assert send_utc(picks) >= send_utc(second) + DAY
    assert "kept email free for cart_reminder_2" not in " ".join(picks["reasons"])


# ------------------------------------------------------ a marketer's own journeys

#: A marketer's catalog with two journeys whose next step has a short window: a welcome
#: series whose day-2 tips go the day after the first message, within 12 hours; a review
#: asked 2 days after delivery, within that day. And a low-value newsletter that could go
#: any day. E-mail only, under the example contact policy (one e-mail a rolling day).
MARKETER_CATALOG = """
version: 1
actions:
  - id: welcome_day_1
    type: welcome
    description: The brand story, at once.
    channels: [email]
    eligibility: days_since_sign_up <= 1 and not known(hours_since_sent('welcome_day_1'))
    value: 20
    timing: asap
    ttl_hours: 24
  - id: welcome_day_2
    type: welcome
    description: The day-2 tips, a day after the first message and within 12 hours.
    channels: [email]
    eligibility: >-
      hours_since_sent('welcome_day_1') >= 24 and hours_since_sent('welcome_day_1') <= 36
      and not known(hours_since_sent('welcome_day_2'))
    value: 20
    timing: asap
    ttl_hours: 12
  - id: review_day_2
    type: review_request
    description: A review, two days after the delivery, within that day.
    channels: [email]
    eligibility: hours_since_last_delivery >= 48 and hours_since_last_delivery <= 60
    value: 15
    timing: asap
    ttl_hours: 12
    cooldown_hours: 720
  - id: newsletter
    type: content
    description: The weekly newsletter.
    channels: [email]
    eligibility: events_seen > 0
    value: 1.5
    ttl_hours: 96
    cooldown_hours: 168
  - id: do_nothing
    type: do_nothing
    description: Send nothing.
    value: 0.01
"""


@pytest.fixture(scope="module")
def marketer(base: RetailDataset, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Shop]:
    """The journeys' app with :data:`MARKETER_CATALOG` as its catalog."""
    root: Path = tmp_path_factory.mktemp("reserve_steps")
    catalog = root / "catalog.yaml"
    catalog.write_text(MARKETER_CATALOG)
    prefix = f"steps{uuid.uuid4().hex[:8]}"
    with open_shop(base, root, redis_client(root), prefix, catalog_path=catalog) as opened:
        yield opened


def test_the_newsletter_waits_for_the_welcome_series_day_2_tips(marketer: Shop) -> None:
    """Signed up on Monday at 10:00, the brand story e-mailed at 11:00. Asked again at
    14:00, the newsletter could be scheduled once the day's e-mail frees (Tuesday 11:00),
    at the customer's hour: it would keep the e-mail a rolling day past it, past the
    day-2 tips' last chance (due Tuesday 11:00, eligible until 23:00, valid 12 hours). So
    it waits, saying for what; on Tuesday at 11:30 the tips go by e-mail, at once."""
    signed = local(PARIS, "2026-03-02 10:00")
    customer = marketer.signup(signed, consents=("email",))
    marketer.post(event(customer, signed + 5 * MINUTE, "product_view", "P1"))
    first = marketer.first_contact(customer, signed + HOUR)
    assert (first["action_id"], send_utc(first)) == ("welcome_day_1", signed + HOUR)
    afternoon = marketer.decide(customer, signed + 4 * HOUR)
    assert contacts(afternoon) == [], afternoon["actions"]
    held = message(afternoon, "newsletter")
    assert "kept email free for welcome_day_2: already triggered, due in 21.0 h" in held
    tips = the_action(marketer.decide(customer, signed + DAY + 90 * MINUTE))
    assert (tips["action_id"], tips["channel"]) == ("welcome_day_2", "email")
    assert send_utc(tips) == signed + DAY + 90 * MINUTE


def test_the_newsletter_waits_for_the_review_two_days_after_delivery(marketer: Shop) -> None:
    """Trousers bought on Monday, delivered on Tuesday at 12:00: the review is due on
    Thursday at 12:00 and eligible until midnight, valid 12 hours (its last chance Friday
    at 12:00). Asked on Wednesday at 11:00 (a campaign e-mail went at 10:00), the
    newsletter would wait for the e-mail to free on Thursday at 10:00, go at the
    customer's hour and keep the one-a-day e-mail until Friday evening: it waits. On
    Thursday at 13:00 the review goes by e-mail, at once."""
    customer = marketer.signup(local(PARIS, "2026-01-10 10:00"), consents=("email",))
    marketer.post(
        purchase(customer, local(PARIS, "2026-03-02 19:00"), "P1"),
        event(customer, local(PARIS, "2026-03-04 10:00"), "message_sent", channel="email"),
    )
    delivered = local(PARIS, "2026-03-03 12:00")
    marketer.post(event(customer, delivered, "order_delivered", "P1"))
    asked = local(PARIS, "2026-03-04 11:00")
    held = marketer.decide(customer, asked)
    assert contacts(held) == [], held["actions"]
    assert "kept email free for review_day_2: already triggered, due in" in message(
        held, "newsletter"
    )
    review = the_action(marketer.decide(customer, delivered + 2 * DAY + HOUR))
    assert (review["action_id"], review["channel"]) == ("review_day_2", "email")
    assert send_utc(review) == delivered + 2 * DAY + HOUR


def test_a_step_with_days_left_in_its_window_does_not_hold_the_newsletter(
    marketer: Shop,
) -> None:
    """A review due tomorrow whose window and validity outlast the newsletter's block
    costs the newsletter nothing: delivered on Tuesday at 12:00 and asked on Tuesday at
    13:00, the newsletter goes at the customer's hour (the review, due on Thursday at 12:00,
    can go after the newsletter's day): the reserve does not freeze the channel for a
    claim a send leaves room for."""
    customer = marketer.signup(local(PARIS, "2026-01-10 10:00"), consents=("email",))
    marketer.post(purchase(customer, local(PARIS, "2026-03-02 19:00"), "P1"))
    delivered = local(PARIS, "2026-03-03 12:00")
    marketer.post(event(customer, delivered, "order_delivered", "P1"))
    answer = marketer.decide(customer, delivered + HOUR)
    [newsletter] = contacts(answer)
    assert newsletter["action_id"] == "newsletter"
    assert send_utc(newsletter) + DAY < delivered + 2 * DAY  # its block ends in time
    assert not any("opportunity cost" in reason for reason in newsletter["reasons"])


# ------------------------------------------------------------------ the two pieces

NOW = dt.datetime(2026, 3, 4, 17, 0, tzinfo=dt.UTC)  # Wednesday 18:00 in Paris


def _cart_context(age: float, since_first: float | None) -> CustomerContext:
    profile = CustomerProfile(
        "C1", as_of=NOW, timezone="Europe/Paris", cart_items=("P1",), cart_age_hours=age
    )
    history = {} if since_first is None else {"cart_reminder_1": NOW - since_first * HOUR}
    return CustomerContext(profile, NOW, action_history=history)


def test_the_second_cart_reminder_comes_due_when_its_clocks_flip() -> None:
    """A cart 3 hours old, its first reminder sent 2 hours ago: the second reminder needs
    the cart 20 hours old and the first 18 hours gone, so it is due in 17 hours, and stays
    claimable until the cart is 96 hours old, plus its 24 hours of validity."""
    catalog = retailer()
    plan = step_plan(catalog["cart_reminder_2"])
    assert plan is not None and len(plan.clocks) >= 3
    due = step_due(_cart_context(3.0, 2.0), plan)
    assert due is not None
    assert due[0] == pytest.approx(17.0, abs=0.05)
    assert due[1] == pytest.approx(96.0 - 20.0 + 24.0, abs=0.05)
    # a late first reminder: never sent, the cart alone says when
    late = step_due(_cart_context(3.0, None), plan)
    assert late is not None and late[0] == pytest.approx(17.0, abs=0.05)
    # due beyond the horizon, or never (no cart): not a claim
    assert step_due(_cart_context(3.0, 2.0), plan, horizon=12.0) is None
    empty = CustomerContext(CustomerProfile("C2", as_of=NOW), NOW)
    assert step_due(empty, plan) is None


def test_a_cool_down_that_ends_makes_a_step_due_with_an_open_window() -> None:
    """The weekly picks sent 160 hours ago come due again when their 168-hour cool-down
    ends, with no end to their window (they can go any later day); actions that time
    alone never makes due have no plan."""
    catalog = retailer()
    plan = step_plan(catalog["recommendations_weekly"])
    assert plan is not None and plan.clocks == ()
    profile = CustomerProfile("C1", as_of=NOW, events_seen=12, top_category="trousers")
    context = CustomerContext(
        profile, NOW, action_history={"recommendations_weekly": NOW - 160 * HOUR}
    )
    due = step_due(context, plan)
    assert due is not None and due[0] == pytest.approx(8.0) and math.isinf(due[1])
    assert step_plan(catalog["do_nothing"]) is None
    assert step_plan(catalog["cross_sell_on_site"]) is None  # no clock, no cool-down


def test_a_scheduled_send_fills_every_rolling_window_it_lies_in() -> None:
    """A send due tomorrow counts in the windows the contact policy counts from now: the
    one-a-day e-mail frees a day after it; a fourth e-mail in the week (cap 4) keeps the
    e-mail until the oldest of the four is a week old, two days later; a push (cap 2 a day) beside one
    sent 20 hours ago frees when that one is a day old, not a day after the send."""
    policy = ContactPolicy()
    tomorrow = NOW + 20 * HOUR
    week = (NOW - 100 * HOUR, NOW - 80 * HOUR, NOW - 30 * HOUR)
    history = ContactHistory(
        last_contact_at={Channel.EMAIL: week[-1], Channel.PUSH: NOW - 20 * HOUR},
        contacts_1d={Channel.PUSH: 1},
        contacts_7d={Channel.EMAIL: 3, Channel.PUSH: 1},
        contacts_30d={Channel.EMAIL: 3, Channel.PUSH: 1},
        contact_times={Channel.EMAIL: week, Channel.PUSH: (NOW - 20 * HOUR,)},
    )
    context = CustomerContext(CustomerProfile("C1", contacts=history), NOW)
    before = free_at(context, policy, [Channel.EMAIL, Channel.PUSH])
    second = dt.timedelta(seconds=1)
    # the 12-hour message gap since the push 20 hours ago is over; the weekly cap not reached
    assert before[Channel.EMAIL] == NOW
    after = after_send(context, policy, before, Channel.EMAIL, tomorrow)
    assert after[Channel.EMAIL] == week[0] + 7 * DAY + second  # the week's fourth e-mail
    email = policy.rules(Channel.EMAIL).model_copy(update={"cap_7d": None})
    relaxed = policy.model_copy(update={"channels": {**policy.channels, Channel.EMAIL: email}})
    daily = after_send(context, relaxed, before, Channel.EMAIL, tomorrow)
    assert daily[Channel.EMAIL] == tomorrow + DAY + second  # a rolling day after the send
    pushed = after_send(context, policy, before, Channel.PUSH, NOW + 2 * HOUR)
    # a day after the push 20 hours ago; the message gap after the new one is longer
    assert pushed[Channel.PUSH] == NOW + 14 * HOUR
    one = ContactHistory(
        last_contact_at={Channel.PUSH: NOW - 20 * HOUR},
        contacts_1d={Channel.PUSH: 1},
        contact_times={Channel.PUSH: (NOW - 20 * HOUR,)},
    )
    gapless = policy.model_copy(update={"message_gap_hours": None})
    alone = CustomerContext(CustomerProfile("C1", contacts=one), NOW)
    start = free_at(alone, gapless, [Channel.PUSH])
    assert after_send(alone, gapless, start, Channel.PUSH, NOW + 2 * HOUR)[Channel.PUSH] == (
        NOW + 4 * HOUR + second
    )


def test_the_marketer_catalog_parses() -> None:
    catalog = parse_catalog(MARKETER_CATALOG)
    plan = step_plan(catalog["welcome_day_2"])
    assert plan is not None and len(plan.clocks) == 2
