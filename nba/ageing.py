"""How a reminder's response fades with its trigger's age: one definition, read by the
scorer (a cart reminder's propensity now, :mod:`nba.scoring`) and by the send-time search
(the worth left when it goes later, :func:`fading_of`).

>>> import datetime as dt
>>> fading = fading_of(ActionType.CART_REMINDER, CustomerProfile("C1", cart_age_hours=25.5))
>>> round(fading.left(22.5), 2), fading.what  # Thursday 16:30 to Friday 15:00
(0.77, "the cart's age")
>>> fading_of(ActionType.PRODUCT_RECOMMENDATION, CustomerProfile("C1")) is None
True
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


def cart_age_factor(age_hours: float | None) -> float:
    """A cart reminder's response relative to a cart :data:`CART_REFERENCE_HOURS` old
    (flat below an hour; 1 without a known age).

    >>> round(cart_age_factor(1.0), 2), cart_age_factor(6.0), round(cart_age_factor(48.0), 2)
    (2.07, 1.0, 0.43)
    """
    if age_hours is None:
        return 1.0
    return (max(1.0, age_hours) / CART_REFERENCE_HOURS) ** -CART_DECAY_EXPONENT


def fading_of(action_type: ActionType, profile: CustomerProfile) -> Fading | None:
    """How the worth of a message of ``action_type`` fades while it waits for the
    customer's best hour, or ``None`` when it does not (it waits for nothing but its
    own validity): a cart reminder's goes with the cart's age (:func:`cart_age_factor`),
    when the cart's age is known."""
    if action_type is ActionType.CART_REMINDER and profile.cart_age_hours is not None:
        return Fading(profile.cart_age_hours, cart_age_factor, "the cart's age")
    return None
