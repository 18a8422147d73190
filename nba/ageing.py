"""How a reminder's response fades with its trigger's age: the engine's one definition,
read wherever a delay's cost is valued:

* the scorer: a cart reminder's propensity now (:mod:`nba.scoring`, :func:`cart_age_factor`);
* the send-time search: the worth left when it goes at a later hour (:func:`fading_of`,
  :mod:`nba.timing`);
* the engine's late slot: a channel that sends it later (a capped e-mail tomorrow against
  an SMS at 08:00) keeps that share of its response (:func:`nba.reserve.delay_factor`);
* the reserve: what a send that blocks a channel takes from a reminder still to come, at
  the age its trigger will have then (:func:`fading_at`, :mod:`nba.reserve`);
* deferral: what the leading action is still worth once a rival's send has gone first
  (:mod:`nba.deferral`).

A wait costs what the trigger's age says, not a fixed share per hour: the same day's wait
leaves a cart an hour old 0.27 of its worth and one a day old 0.75 (the SaleCycle power
law, :data:`CART_DECAY_EXPONENT`), where an exponential through the same two figures (a
12.3-hour half-life) left both 0.26.

>>> fading = fading_of(ActionType.CART_REMINDER, CustomerProfile("C1", cart_age_hours=25.5))
>>> round(fading.left(22.5), 2), fading.what  # Thursday 16:30 to Friday 15:00
(0.77, "the cart's age")
>>> round(fading_at(ActionType.CART_REMINDER, 1.0).left(23.0), 2)  # SaleCycle's 1 h -> 24 h
0.27
>>> fading_of(ActionType.PRODUCT_RECOMMENDATION, CustomerProfile("C1")) is None
True

Only cart reminders fade here: the scorer ages no other action type. A browse reminder
has its own evening window and a short validity; within them the engine values it the
same at any hour (no public figure gives its decay with browse recency).
"""

from __future__ import annotations

import math

from nba.actions import ActionType
from nba.profile import CustomerProfile
from nba.timing import Fading

#: Cart reminders answer less the older the cart: SaleCycle (500 retailers, 2017): cart
#: e-mails sent 1 h after abandonment convert 6.33 %, after 24 h 1.74 %, a power law
#: ``(age / 1 h) ** -k`` with ``k = ln(6.33 / 1.74) / ln 24 = 0.41``. The base rate is
#: that of a cart :data:`CART_REFERENCE_HOURS` old (a first reminder's usual age).
CART_DECAY_EXPONENT = math.log(6.33 / 1.74) / math.log(24.0)
CART_REFERENCE_HOURS = 6.0
_CART_AGE = "the cart's age"


def cart_age_factor(age_hours: float | None) -> float:
    """A cart reminder's response relative to a cart :data:`CART_REFERENCE_HOURS` old
    (flat below an hour; 1 without a known age).

    >>> round(cart_age_factor(1.0), 2), cart_age_factor(6.0), round(cart_age_factor(48.0), 2)
    (2.07, 1.0, 0.43)
    """
    if age_hours is None:
        return 1.0
    return (max(1.0, age_hours) / CART_REFERENCE_HOURS) ** -CART_DECAY_EXPONENT


def fading_at(action_type: ActionType, age_hours: float | None) -> Fading | None:
    """How the worth of a message of ``action_type`` whose trigger is ``age_hours`` old
    fades as it waits, or ``None`` when it does not fade (or the age is unknown): a
    cart reminder's goes with the cart's age (:func:`cart_age_factor`). A trigger still
    to come is a fresh one: ``age_hours=0`` (a cart just left; flat below an hour)."""
    if action_type is ActionType.CART_REMINDER and age_hours is not None:
        return Fading(age_hours, cart_age_factor, _CART_AGE)
    return None


def fading_of(
    action_type: ActionType, profile: CustomerProfile, later_hours: float = 0.0
) -> Fading | None:
    """How the worth of a message of ``action_type`` fades while it waits (for the
    customer's best hour, a channel that frees), or ``None`` when it does not (it waits
    for nothing but its own validity): a cart reminder's goes with the age of the
    customer's cart (:func:`fading_at`), when it is known; ``later_hours``: as it will be
    that many hours from now, with no new event (a reminder due later).

    >>> profile = CustomerProfile("C1", cart_age_hours=3.0)
    >>> fading_of(ActionType.CART_REMINDER, profile, later_hours=17.0).age_hours
    20.0
    """
    age = profile.cart_age_hours
    return fading_at(action_type, None if age is None else age + later_hours)
