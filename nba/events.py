"""Event types: the vocabulary of interaction events in the data contract.

>>> EventType.PURCHASE.is_conversion
True
>>> EventType.UNSUBSCRIBE.withdraws_consent
True
"""

from __future__ import annotations

from enum import StrEnum


class EventType(StrEnum):
    """What happened. Values are the spelling used in data files and the API."""

    # browsing and buying
    PRODUCT_VIEW = "product_view"
    SEARCH = "search"
    ADD_TO_CART = "add_to_cart"
    REMOVE_FROM_CART = "remove_from_cart"
    CHECKOUT_STARTED = "checkout_started"
    PURCHASE = "purchase"
    ORDER_DELIVERED = "order_delivered"
    #: the customer sent back an order (or part of it) after its delivery or pick-up
    ORDER_RETURNED = "order_returned"
    #: an order cancelled before it was delivered or collected
    ORDER_CANCELLED = "order_cancelled"
    CLICK_COLLECT_PICKUP = "click_collect_pickup"
    STORE_VISIT = "store_visit"
    REVIEW = "review"
    COUPON_REDEEMED = "coupon_redeemed"
    WALLET_PASS_ADDED = "wallet_pass_added"
    LOYALTY_TIER_REACHED = "loyalty_tier_reached"
    # outbound messages and their outcomes
    MESSAGE_SENT = "message_sent"
    MESSAGE_DELIVERED = "message_delivered"
    MESSAGE_OPENED = "message_opened"
    MESSAGE_CLICKED = "message_clicked"
    MESSAGE_BOUNCED = "message_bounced"
    CALL_REFUSED = "call_refused"
    #: the customer dismissed or declined a message unread (a push swiped away, an in-app
    #: message closed): a refusal, the channel rests for its refusal cool-down
    MESSAGE_DISMISSED = "message_dismissed"
    # consent
    OPT_IN = "opt_in"
    UNSUBSCRIBE = "unsubscribe"
    COMPLAINT = "complaint"
    SMS_STOP = "sms_stop"

    @property
    def is_conversion(self) -> bool:
        """True for events that count as a purchase."""
        return self in (EventType.PURCHASE, EventType.CLICK_COLLECT_PICKUP)

    @property
    def is_message_outcome(self) -> bool:
        """True for events that report what happened to an outbound message."""
        return self in MESSAGE_EVENTS

    @property
    def withdraws_consent(self) -> bool:
        """True for events after which the channel must not be used again."""
        return self in (EventType.UNSUBSCRIBE, EventType.COMPLAINT, EventType.SMS_STOP)


MESSAGE_EVENTS: frozenset[EventType] = frozenset(
    {
        EventType.MESSAGE_SENT,
        EventType.MESSAGE_DELIVERED,
        EventType.MESSAGE_OPENED,
        EventType.MESSAGE_CLICKED,
        EventType.MESSAGE_BOUNCED,
        EventType.CALL_REFUSED,
        EventType.MESSAGE_DISMISSED,
    }
)

#: Events that refuse a contact on their channel: the contact policy's refusal cool-down
#: starts (a complaint also withdraws consent).
REFUSAL_EVENTS: frozenset[EventType] = frozenset(
    {EventType.CALL_REFUSED, EventType.MESSAGE_DISMISSED, EventType.COMPLAINT}
)
