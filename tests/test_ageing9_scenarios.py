"""One definition of how a cart reminder's worth fades while it waits (issue 12, item 2).

The engine valued a delay two ways: the scorer and the send-time search by the cart's
age (SaleCycle's power law, :mod:`nba.ageing`), the engine's late slot, the reserve and
deferral by a fixed 12.3-hour half-life fitted to the same two figures (cart e-mails an
hour after abandonment convert 6.33 %, a day after 1.74 %). The two agree for a fresh
cart and not for an old one: waiting from Thursday evening to Friday morning left a
day-old cart's second reminder 0.49 of its worth by the half-life, 0.86 by its age. Now
every place that values a delay reads :func:`nba.ageing.fading_of`: a fresh cart's
reminder still goes by SMS in the morning rather than by e-mail the next night, and a
day-old cart's second reminder waits for the next morning's e-mail its customer reads
rather than going by SMS tonight.

Each situation is built from raw contract events posted to the real API on a real Redis
(the harness of ``tests/test_scenarios_api.py``).
"""

from __future__ import annotations

import datetime as dt

from tests.test_scenarios_api import (
    HOUR,
    MINUTE,
    PARIS,
    Shop,
    best_channel,
    channel_priorities,
    event,
    local,
    send_local,
    shop,
    the_action,
)

__all__ = ["shop"]

CART = ["cart_reminder_1", "cart_reminder_2", "cart_reminder_2_discount"]


def _reads_email(shop: Shop) -> str:
    """A customer who consents to e-mail and SMS and opened and clicked both February
    e-mails (so the scorer expects more of an e-mail than of an SMS)."""
    customer = shop.signup(local(PARIS, "2026-01-10 10:00"), consents=("email", "sms"))
    for day in (9, 21):
        sent = local(PARIS, f"2026-02-{day:02d} 19:00")
        shop.post(
            event(customer, sent, "message_sent", channel="email"),
            event(customer, sent + HOUR / 2, "message_opened", channel="email"),
            event(customer, sent + HOUR / 2, "message_clicked", channel="email"),
        )
    return customer


def _campaign(shop: Shop, customer: str, at: dt.datetime) -> None:
    """The retailer's own campaign e-mail (not an engine action): it spends the rolling
    day's e-mail and opens the 12 hours between messages."""
    shop.post(event(customer, at, "message_sent", channel="email"))


def _day_old_cart(shop: Shop) -> tuple[str, dt.datetime]:
    """Trousers left on Wednesday at 15:00 and an e-mail at 16:00 (the first reminder, as
    the journey tool reports it), the retailer's campaign e-mail on Thursday at 07:00: on
    Thursday at 18:30 the second reminder can go by SMS at 19:00 (12 hours after the
    campaign) or by e-mail on Friday at 07:00 (when the rolling day's e-mail frees)."""
    customer = _reads_email(shop)
    added = local(PARIS, "2026-03-04 15:00")
    shop.post(event(customer, added, "add_to_cart", "P1"))
    shop.post(event(customer, added + HOUR, "message_sent", channel="email"))
    _campaign(shop, customer, local(PARIS, "2026-03-05 07:00"))
    return customer, local(PARIS, "2026-03-05 18:30")


def test_a_day_old_carts_second_reminder_waits_for_the_morning_email(shop: Shop) -> None:
    """Waiting for Friday 07:00, 12 hours, the cart is 40 hours old instead of 28: the
    wait keeps 0.86 of the reminder's response by the cart's age (a fixed 12.3-hour
    half-life said 0.49, and the SMS went). The e-mail, cheaper and better answered by
    this customer, is the reminder's best channel, at 07:00 on Friday."""
    customer, asked = _day_old_cart(shop)
    chosen = the_action(shop.decide(customer, asked, actions=CART))
    assert chosen["action_id"] == "cart_reminder_2"
    assert best_channel(chosen) == "email"
    priorities = channel_priorities(chosen)
    assert priorities["email"] > priorities["sms"] > 0
    # the e-mail's moment, asked for the e-mail (the same customer again)
    customer, asked = _day_old_cart(shop)
    chosen = the_action(shop.decide(customer, asked, channel="email", actions=CART))
    assert (chosen["action_id"], chosen["channel"]) == ("cart_reminder_2", "email")
    sent = send_local(chosen)
    assert (sent.date(), sent.hour) == (dt.date(2026, 3, 6), 7), sent
    assert "weighed against the cart's age, once the rolling cap frees" in chosen["timing"]


def test_a_fresh_carts_reminder_still_goes_by_sms_in_the_morning(shop: Shop) -> None:
    """The same kind of customer leaves a cart at 21:30 on a campaign day (the campaign
    e-mail went at 19:00): the e-mail could go only at 19:00 tomorrow, 21 hours on, when
    an hour-old cart's reminder keeps a third of its response; the SMS goes at 08:00."""
    customer = _reads_email(shop)
    _campaign(shop, customer, local(PARIS, "2026-03-03 19:00"))
    added = local(PARIS, "2026-03-03 21:30")
    shop.post(event(customer, added, "add_to_cart", "P1"))
    asked = added + 90 * MINUTE
    chosen = the_action(shop.decide(customer, asked, actions=CART))
    assert chosen["action_id"] == "cart_reminder_1"
    assert best_channel(chosen) == "sms"
    priorities = channel_priorities(chosen)
    assert priorities["sms"] > priorities["email"] > 0
    customer = _reads_email(shop)  # the same customer again, asked for the SMS's moment
    _campaign(shop, customer, local(PARIS, "2026-03-03 19:00"))
    shop.post(event(customer, added, "add_to_cart", "P1"))
    chosen = the_action(shop.decide(customer, asked, channel="sms", actions=CART))
    assert (chosen["action_id"], chosen["channel"]) == ("cart_reminder_1", "sms")
    sent = send_local(chosen)
    assert (sent.date(), sent.hour) == (dt.date(2026, 3, 4), 8), sent
