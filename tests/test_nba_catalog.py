"""The action catalog: the example catalog, schema validation and its error messages."""

from __future__ import annotations

from pathlib import Path

import pytest

from nba.actions import Action, ActionType
from nba.catalog import Catalog, CatalogError, parse_catalog
from nba.channels import Channel
from nba.scoring import INCENTIVE_KINDS

EXAMPLES = Path(__file__).resolve().parents[1] / "nba" / "examples"


def example_catalog() -> Catalog:
    return parse_catalog((EXAMPLES / "retailer_catalog.yaml").read_text())


def test_example_catalog_loads_and_covers_every_action_type() -> None:
    catalog = example_catalog()
    assert {a.type for a in catalog} == set(ActionType)
    assert catalog.do_nothing is not None and catalog.do_nothing.id == "do_nothing"
    for scenario in (
        "cart_reminder_1",
        "cart_reminder_2_discount",
        "browse_reminder_evening",
        "welcome_1",
        "welcome_2",
        "birthday",
        "loyalty_tier_reached",
        "seasonal_anticipation",
        "reactivation",
        "cross_sell_click_collect",
        "review_request",
        "new_collection_launch",
    ):
        assert scenario in catalog
    discount = catalog["cart_reminder_2_discount"]
    assert discount.offer is not None and discount.offer.expires_after_hours == 48
    assert discount.offer.kind in INCENTIVE_KINDS  # given only where its uplift pays for it
    assert catalog["cart_reminder_1"].offer is None  # no discount on the first reminder
    assert [v.id for v in catalog["new_collection_launch"].variants] == [
        "early_adopter",
        "promotion_lover",
    ]


def test_catalog_round_trips_through_a_plain_document() -> None:
    catalog = example_catalog()
    again = Catalog.from_dict(catalog.to_dict())
    assert again.ids == catalog.ids
    for a, b in zip(catalog, again, strict=True):
        assert a == b


def test_catalog_lookup() -> None:
    catalog = example_catalog()
    assert catalog["review_request"].channels == (Channel.EMAIL, Channel.PUSH)
    assert "nope" not in catalog
    with pytest.raises(KeyError, match="no action 'nope'"):
        catalog["nope"]
    assert len(catalog) == len(catalog.ids)


def test_actions_can_be_built_in_python_with_the_same_validation() -> None:
    action = Action(id="a", type="offer", channels=["E-mail", "text"], value="cart_value * 0.1")
    assert action.channels == (Channel.EMAIL, Channel.SMS)
    with pytest.raises(ValueError, match="not outbound"):
        Action(id="a", type="offer", channels=["store"])


def one(action: str) -> str:
    return f"version: 1\nactions:\n{action}\n"


@pytest.mark.parametrize(
    ("text", "action", "field", "message"),
    [
        (
            one("  - {id: a, type: offer, channels: [email], colour: red}"),
            "a",
            "colour",
            "unknown field",
        ),
        (
            one("  - {id: a, type: offer, channels: [fax]}"),
            "a",
            "channels",
            "unknown channel 'fax'",
        ),
        (one("  - {id: a, type: offer, channels: [store]}"), "a", "channels", "not outbound"),
        (
            one("  - {id: a, type: offer, channels: [email, email]}"),
            "a",
            "channels",
            "listed twice",
        ),
        (
            one("  - {id: a, type: offer, channels: []}"),
            "a",
            "channels",
            "at least one outbound channel",
        ),
        (one("  - {id: a, type: offerz, channels: [email]}"), "a", "type", "Input should be"),
        (one("  - {id: a, channels: [email]}"), "a", "type", "required field is missing"),
        (one("  - {type: offer, channels: [email]}"), "#1", "id", "required field is missing"),
        (
            one("  - {id: 'a b', type: offer, channels: [email]}"),
            "a b",
            "id",
            "should match pattern",
        ),
        (
            one("  - {id: a, type: offer, channels: [email], eligibility: 'cart_vale > 3'}"),
            "a",
            "eligibility",
            "unknown field 'cart_vale' (did you mean 'cart_value'?)",
        ),
        (
            one("  - {id: a, type: offer, channels: [email], eligibility: 'lifecycle_state > 3'}"),
            "a",
            "eligibility",
            "'>' compares numbers, got text and number",
        ),
        (
            one(
                "  - {id: a, type: offer, channels: [email], eligibility: \"lifecycle_state == 'activ'\"}"
            ),
            "a",
            "eligibility",
            "'activ' is not a value of lifecycle_state",
        ),
        (
            one("  - {id: a, type: offer, channels: [email], eligibility: \"__import__('os')\"}"),
            "a",
            "eligibility",
            "unknown function '__import__'",
        ),
        (
            one("  - {id: a, type: offer, channels: [email], eligibility: 'cart_value'}"),
            "a",
            "eligibility",
            "expected a condition (bool), got number",
        ),
        (
            one("  - {id: a, type: offer, channels: [email], value: 'cart_value > 3'}"),
            "a",
            "value",
            "expected a number, got bool",
        ),
        (one("  - {id: a, type: offer, channels: [email], value: -2}"), "a", "value", "at least 0"),
        (
            one("  - {id: a, type: offer, channels: [email], lever: -1}"),
            "a",
            "lever",
            "greater than or equal to 0",
        ),
        (
            one("  - {id: a, type: offer, channels: [email], ttl_hours: 0}"),
            "a",
            "ttl_hours",
            "greater than 0",
        ),
        (
            one("  - {id: a, type: offer, channels: [email], timing: later}"),
            "a",
            "timing",
            "Input should be",
        ),
        (
            one("  - {id: a, type: offer, channels: [email], local_hours: [evening]}"),
            "a",
            "local_hours",
            "HH:MM-HH:MM",
        ),
        (
            one("  - {id: a, type: offer, channels: [email], min_uplift: 2}"),
            "a",
            "min_uplift",
            "less than or equal to 1",
        ),
        (
            one("  - {id: a, type: offer, channels: [email], ttl_hours: 2, send_delay_hours: 3}"),
            "a",
            "send_delay_hours",
            "shorter than ttl_hours",
        ),
        (
            one(
                "  - {id: a, type: offer, channels: [email], valid_from: 2026-02-01T00:00:00Z,"
                " valid_to: 2026-01-01T00:00:00Z}"
            ),
            "a",
            "valid_to",
            "after valid_from",
        ),
        (
            one("  - {id: a, type: offer, channels: [email], valid_from: 2026-02-01T00:00:00}"),
            "a",
            "valid_from",
            "timezone",
        ),
        (
            one(
                "  - {id: a, type: offer, channels: [email], offer: {id: o, kind: gift, value: 1}}"
            ),
            "a",
            "offer.kind",
            "Input should be",
        ),
        (
            one(
                "  - {id: a, type: offer, channels: [email], offer: {id: o, kind: content, value: 1, cost: -1}}"
            ),
            "a",
            "offer.cost",
            "greater than or equal to 0",
        ),
        (
            one(
                "  - {id: a, type: offer, channels: [email], offer: {id: o, kind: content, value: 1, channels: [sms]}}"
            ),
            "a",
            "offer.channels",
            "none of the offer's channels",
        ),
        (
            one(
                "  - {id: a, type: offer, channels: [email], offer: {id: o, kind: content, value: 1,"
                " eligibility: 'cart_value >> 1'}}"
            ),
            "a",
            "offer.eligibility",
            "unexpected '>'",
        ),
        (
            one(
                "  - {id: a, type: offer, channels: [email], variants: [{id: x}, {id: y, when: 'true'}]}"
            ),
            "a",
            "variants",
            "no 'when' and is not last",
        ),
        (
            one(
                "  - {id: a, type: offer, channels: [email], variants: [{id: x, when: 'colour == 1'}]}"
            ),
            "a",
            "variants[0].when",
            "unknown field 'colour'",
        ),
        (
            one("  - {id: n, type: do_nothing, channels: [email]}"),
            "n",
            "channels",
            "do_nothing action has no channels",
        ),
        (
            one(
                "  - {id: a, type: offer, channels: [email]}\n  - {id: a, type: content, channels: [sms]}"
            ),
            "a",
            "id",
            "duplicate action id",
        ),
        (
            one("  - {id: n, type: do_nothing}\n  - {id: m, type: do_nothing}"),
            "m",
            "type",
            "only one do_nothing",
        ),
        (
            one(
                "  - {id: a, type: offer, channels: [email], eligibility: \"hours_since_sent('zz') > 1\"}"
            ),
            "a",
            "eligibility",
            "hours_since_sent('zz') refers to an action not in the catalog",
        ),
        (
            one(
                "  - {id: a, type: offer, channels: [email], variants: [{id: v, when: \"hours_since_sent('zz') > 1\"}]}"
            ),
            "a",
            "variants[0].when",
            "not in the catalog",
        ),
        (
            "version: 2\nactions: [{id: a, type: offer, channels: [email]}]",
            "",
            "version",
            "unsupported version",
        ),
        (
            "actions: [{id: a, type: offer, channels: [email]}]\nextra: 1",
            "",
            "extra",
            "unknown key",
        ),
        ("actions: []", "", "actions", "at least one action"),
        ("actions: [3]", "#1", "", "an action is a mapping"),
        ("- just a list", "", "", "a mapping with 'actions'"),
        ("actions: [", "", "", "not valid YAML at line 1"),
    ],
)
def test_validation_errors_name_the_action_and_the_field(
    text: str, action: str, field: str, message: str
) -> None:
    with pytest.raises(CatalogError) as error:
        parse_catalog(text)
    issues = error.value.issues
    matching = [
        i for i in issues if i.action == action and i.field == field and message in i.message
    ]
    assert matching, f"no issue ({action!r}, {field!r}, {message!r}) in {[str(i) for i in issues]}"
    where = f"action {action!r}" if action else "catalog"
    assert where in str(error.value)


def test_all_problems_are_reported_at_once() -> None:
    text = one(
        "  - {id: a, type: offer, channels: [fax]}\n"
        "  - {id: b, type: offer, channels: [email], eligibility: 'nope > 1'}\n"
        "  - {id: c, type: offer, channels: [email], lever: -3}"
    )
    with pytest.raises(CatalogError) as error:
        parse_catalog(text)
    assert [(i.action, i.field) for i in error.value.issues] == [
        ("a", "channels"),
        ("b", "eligibility"),
        ("c", "lever"),
    ]


def test_action_json_schema_for_editors() -> None:
    from nba.actions import action_schema

    schema = action_schema()
    assert schema["additionalProperties"] is False
    assert {"id", "type", "channels", "eligibility", "value", "offer", "variants"} <= set(
        schema["properties"]
    )
    assert "email" in schema["properties"]["channels"]["items"]["enum"]
