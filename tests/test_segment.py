"""Segment / RudderStack messages map onto the data contract."""

from __future__ import annotations

import datetime as dt

import pytest

from features.segment import SegmentMappingError, identify_to_patch, track_to_event
from nba.channels import Channel
from nba.events import EventType


def track(**overrides: object) -> dict[str, object]:
    message: dict[str, object] = {
        "type": "track",
        "event": "Order Completed",
        "userId": "C1",
        "messageId": "m-7",
        "timestamp": "2026-03-06T20:15:00+01:00",
        "context": {"channel": "mobile"},
        "properties": {"product_id": "P1", "offer_id": "O1", "total": 53.91, "quantity": 1},
    }
    message.update(overrides)
    return message


def test_order_completed_becomes_a_purchase_with_revenue() -> None:
    event = track_to_event(track())
    assert event.event_id == "m-7"
    assert event.event_type is EventType.PURCHASE
    assert event.channel is Channel.APP
    assert event.timestamp == dt.datetime(2026, 3, 6, 19, 15, tzinfo=dt.UTC)
    assert (event.product_id, event.offer_id, event.revenue, event.quantity) == (
        "P1",
        "O1",
        53.91,
        1,
    )
    assert event.properties is None


@pytest.mark.parametrize(
    ("name", "event_type", "channel"),
    [
        ("Email Opened", EventType.MESSAGE_OPENED, Channel.EMAIL),
        ("Email Link Clicked", EventType.MESSAGE_CLICKED, Channel.EMAIL),
        ("Email Marked as Spam", EventType.COMPLAINT, Channel.EMAIL),
        ("Push Notification Tapped", EventType.MESSAGE_OPENED, Channel.PUSH),
        ("Product Viewed", EventType.PRODUCT_VIEW, Channel.APP),
        ("add_to_cart", EventType.ADD_TO_CART, Channel.APP),
    ],
)
def test_spec_names_and_contract_types_are_accepted(
    name: str, event_type: EventType, channel: Channel
) -> None:
    event = track_to_event(track(event=name, properties={}))
    assert (event.event_type, event.channel) == (event_type, channel)


def test_properties_channel_wins_and_aliases_are_understood() -> None:
    event = track_to_event(track(event="Unsubscribed", properties={"channel": "SMS"}))
    assert (event.event_type, event.channel) == (EventType.UNSUBSCRIBE, Channel.SMS)


@pytest.mark.parametrize(
    ("overrides", "field", "fragment"),
    [
        ({"event": "Teleported"}, "event", "unknown event 'Teleported'"),
        ({"userId": None}, "userId", "anonymous"),
        ({"messageId": None}, "messageId", "idempotent"),
        ({"timestamp": "2026-03-06T20:15:00"}, "timestamp", "timezone"),
        ({"properties": {"channel": "fax"}}, "properties.channel", "unknown channel 'fax'"),
        ({"properties": {"revenue": -3}}, "properties.revenue", "greater than or equal to 0"),
        (
            {"context": {"channel": "server"}, "event": "Product Viewed", "properties": {}},
            "properties.channel",
            "cannot tell",
        ),
        ({"type": "page"}, "type", "expected 'track'"),
    ],
)
def test_bad_track_messages_name_the_field(
    overrides: dict[str, object], field: str, fragment: str
) -> None:
    with pytest.raises(SegmentMappingError) as info:
        track_to_event(track(**overrides))
    assert info.value.field == field
    assert fragment in str(info.value)


def test_identify_sets_traits_and_consents() -> None:
    patch = identify_to_patch(
        {
            "type": "identify",
            "userId": "C1",
            "timestamp": "2026-03-06T10:00:00Z",
            "context": {"timezone": "Europe/Paris"},
            "traits": {
                "birthday": "1990-04-12T00:00:00Z",
                "gender": "female",
                "address": {"city": "Lyon"},
                "loyalty_tier": "gold",
                "consent_sms": False,
                "consent_email": True,
            },
        }
    )
    assert patch.timezone == "Europe/Paris"
    assert patch.birth_date == dt.date(1990, 4, 12)
    assert patch.city == "Lyon"
    assert patch.consents == {Channel.SMS: False, Channel.EMAIL: True}
    assert patch.consent_changed_at == dt.datetime(2026, 3, 6, 10, tzinfo=dt.UTC)


@pytest.mark.parametrize(
    ("traits", "field"),
    [
        ({"timezone": "Europe/Atlantis"}, "traits.timezone"),
        ({"consent_sms": "yes"}, "traits.consent_sms"),
        ({"loyalty_tier": "diamond"}, "traits.loyalty_tier"),
    ],
)
def test_bad_identify_traits_name_the_field(traits: dict[str, object], field: str) -> None:
    with pytest.raises(SegmentMappingError) as info:
        identify_to_patch({"type": "identify", "userId": "C1", "traits": traits})
    assert info.value.field == field
