"""Redemptions an offer pays for anyway: orders the customer would have placed without it.

A discount, free shipping or points sent to a customer are redeemed on the orders the
message brings (its response, which :func:`nba.arbitration.priority` charges the offer's
cost on) and also on the orders the customer would have placed anyway while holding
it. Those second redemptions buy nothing: they are the cost of "giving discounts to
those who would buy without them". The engine charges the offer's cost on both:

``P(redeemed anyway) = P(the message is seen) x P(an order of the customer's own within
the offer's validity)``

* seen: the customer's smoothed open rate on channels that report opens (e-mail,
  push, calls answered); on the others a typical read share (:data:`READ_SHARE`: an SMS
  is read almost always, a letter mostly; a placement on the site or in the app is seen
  by the customer who is there);
* an order of their own: ``1 - exp(-rate x days)`` with ``rate`` the customer's orders
  per day (over their tenure or the last 90 days, whichever is higher), no more than one
  over the days since their last order (a customer long away buys less often than their
  past cadence says), and ``days`` the offer's validity (``expires_after_hours``), or
  the attribution window (:data:`UNLIMITED_OFFER_DAYS`) for an offer without a limit.

>>> from nba.actions import Offer
>>> from nba.profile import CustomerProfile
>>> weekly = CustomerProfile("C1", orders_total=52, days_since_first_seen=364,
...                          days_since_last_purchase=3)
>>> offer = Offer(id="ten", kind="percent_discount", value=10, cost=6, expires_after_hours=48)
>>> round(redeemed_anyway(weekly, Channel.SMS, offer), 3)  # seen 0.9 x 1 - exp(-2/7)
0.224
>>> rare = CustomerProfile("C2", orders_total=2, days_since_first_seen=364,
...                        days_since_last_purchase=200)
>>> round(redeemed_anyway(rare, Channel.SMS, offer), 4)
0.009
"""

from __future__ import annotations

import math
from collections.abc import Mapping

from nba.actions import ActionType, Offer, OfferKind
from nba.channels import Channel
from nba.profile import CustomerProfile

#: Share of messages seen on channels that do not report opens. SMS: about 98 % of texts
#: are read (Gartner's widely quoted figure; 90 % kept as a prudent share); postal mail:
#: 4 in 5 household letters are opened (Royal Mail MarketReach's "Mail Matters"); a wallet
#: pass update shows on the lock screen of a minority. Channels that report opens use the
#: customer's own smoothed open rate; an on-site or in-app placement is seen by the
#: customer who is there.
READ_SHARE: Mapping[Channel, float] = {
    Channel.SMS: 0.9,
    Channel.POSTAL: 0.8,
    Channel.WALLET: 0.5,
    Channel.WEB: 1.0,
    Channel.APP: 1.0,
}
#: Channels whose ``open_rate`` is what "seen" means (calls: answered).
OPEN_REPORTING = frozenset({Channel.EMAIL, Channel.PUSH, Channel.CALL_CENTRE})
#: An offer without a time limit is counted over the attribution window (days), in which
#: its redemptions are credited to the message that carried it.
UNLIMITED_OFFER_DAYS = 7.0
#: Tenure below which a customer's orders per day are not trusted at face value (days).
MIN_TENURE_DAYS = 30.0


def orders_per_day(profile: CustomerProfile) -> float:
    """The customer's own buying rate: orders over their tenure or over the last 90 days,
    whichever is higher (each span at least :data:`MIN_TENURE_DAYS`), no more than one
    over the days since their last order."""
    since = profile.days_since_last_purchase
    if profile.orders_total <= 0 or since is None:  # no order, or none dated: no rate
        return 0.0
    tenure = max(MIN_TENURE_DAYS, profile.days_since_first_seen or 0.0)
    rate = max(profile.orders_total / tenure, profile.orders_90d / min(90.0, tenure))
    if since > 1.0:
        rate = min(rate, 1.0 / since)
    return rate


def seen_share(profile: CustomerProfile, channel: Channel) -> float:
    """P(the customer sees a message on ``channel``)."""
    if channel in OPEN_REPORTING:
        engagement = profile.engagement.get(channel)
        if engagement is not None and engagement.open_rate > 0.0:
            return min(1.0, engagement.open_rate)
        return 0.2 if channel is Channel.EMAIL else 0.1
    return READ_SHARE.get(channel, 0.5)


def redeemed_anyway(profile: CustomerProfile, channel: Channel, offer: Offer) -> float:
    """P(the offer sent on ``channel`` is redeemed on an order the customer would have
    placed without it), in ``[0, 1]`` (module docstring)."""
    rate = orders_per_day(profile)
    if rate <= 0.0:
        return 0.0
    hours = offer.expires_after_hours
    days = UNLIMITED_OFFER_DAYS if hours is None else hours / 24.0
    return seen_share(profile, channel) * -math.expm1(-rate * days)


def redemption_cost(offer: Offer, order_value: float) -> float:
    """What one redemption of ``offer`` costs on an order worth ``order_value``: a percent
    discount gives up its percentage of that order; every other kind costs what the
    offer says (``cost``: a fixed amount, a fee waived, the points' cost), as does a
    percent discount on an order of unknown value (``order_value <= 0``).

    A flat cost per redemption for a percent discount valued a reminder of a 300 cart at
    its cart (``value``: 0.3 x the cart) and charged the discount at 6, a fifth of the 30
    it gives up: the larger the cart, the more often the offer-pays test passed where the
    discount lost money (BENCHMARKS.md, issue 12, value10).

    >>> ten = Offer(id="ten", kind="percent_discount", value=10, cost=6)
    >>> redemption_cost(ten, 300.0), redemption_cost(ten, 40.0), redemption_cost(ten, 0.0)
    (30.0, 4.0, 6.0)
    >>> redemption_cost(Offer(id="fs", kind="free_shipping", value=0, cost=4.5), 300.0)
    4.5
    """
    if offer.kind == OfferKind.PERCENT_DISCOUNT and order_value > 0.0:
        return min(1.0, offer.value / 100.0) * order_value
    return offer.cost


def message_order(profile: CustomerProfile, action_type: ActionType) -> float:
    """The value of the order a message of ``action_type`` brings: a cart reminder's, the
    cart's (what it asks the customer to buy); any other's, the customer's average
    basket; 0 when unknown."""
    if action_type is ActionType.CART_REMINDER and profile.cart_value > 0.0:
        return profile.cart_value
    return max(0.0, profile.average_basket)
