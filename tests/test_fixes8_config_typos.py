"""A typo in a key of the catalog or the contact policy is refused when the file is
loaded, naming the action (for the catalog), the key and the closest known key; a key
like no known one is refused without a guess."""

from __future__ import annotations

from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from cli.decide import decide
from features.profile_table import profiles_frame
from nba.catalog import CatalogError, parse_catalog
from nba.contact_policy import ContactPolicyError, parse_contact_policy
from nba.profile import CustomerProfile
from serving.settings import EXAMPLES

RETAILER = (EXAMPLES / "retailer_catalog.yaml").read_text()
POLICY = (EXAMPLES / "contact_policy.yaml").read_text()


def _misspelt(text: str, right: str, wrong: str) -> str:
    """``text`` with the first ``right:`` key (at the start of a line or after ``- ``)
    written ``wrong:``."""
    for prefix in ("\n    ", "\n  - ", "\n      ", "\n  "):
        if prefix + right + ":" in text:
            return text.replace(prefix + right + ":", prefix + wrong + ":", 1)
    raise AssertionError(f"no key {right!r} in the text")


@pytest.mark.parametrize(
    ("right", "wrong"),
    [("eligibility", "eligibilty"), ("channels", "chanels"), ("cooldown_hours", "cooldown_hour")],
)
def test_a_misspelt_action_key_names_the_action_the_key_and_the_closest(
    right: str, wrong: str
) -> None:
    text = _misspelt(RETAILER, right, wrong)
    with pytest.raises(CatalogError) as caught:
        parse_catalog(text)
    [issue] = caught.value.issues
    assert (issue.scope, issue.field) == ("cart_reminder_1", wrong)
    assert f"action 'cart_reminder_1', field {wrong!r}: unknown field" in str(caught.value)
    assert issue.message == f"unknown field (did you mean {right!r}?)"
    assert f"did you mean {right!r}?" in str(caught.value)


def test_a_misspelt_key_inside_an_offer_and_at_the_top() -> None:
    text = _misspelt(RETAILER, "expires_after_hours", "expire_after_hours")
    with pytest.raises(CatalogError) as caught:
        parse_catalog(text)
    [issue] = caught.value.issues
    assert (issue.scope, issue.field) == (
        "cart_reminder_2_discount",
        "offer.expire_after_hours",
    )
    assert "did you mean 'expires_after_hours'?" in issue.message
    with pytest.raises(CatalogError, match=r"'actoins': unknown key \(did you mean 'actions'\?\)"):
        parse_catalog(RETAILER.replace("\nactions:", "\nactoins:", 1))


def test_an_unknown_action_key_like_no_known_one_is_refused_without_a_guess() -> None:
    text = "actions:\n  - {id: x, type: content, channels: [email], value: 1, colour: red}\n"
    with pytest.raises(CatalogError) as caught:
        parse_catalog(text)
    [issue] = caught.value.issues
    assert (issue.scope, issue.field, issue.message) == ("x", "colour", "unknown field")


@pytest.mark.parametrize(
    ("text", "field", "closest"),
    [
        ("cap_1dd: 2\n", "cap_1dd", "cap_1d"),
        ("message_gap_hour: 6\n", "message_gap_hour", "message_gap_hours"),
        ("channels:\n  sms: {min_gap_hour: 4}\n", "channels.sms.min_gap_hour", "min_gap_hours"),
        ("channels:\n  email: {cap_7: 3}\n", "channels.email.cap_7", "cap_7d"),
    ],
)
def test_a_misspelt_contact_policy_setting_names_the_closest(
    text: str, field: str, closest: str
) -> None:
    with pytest.raises(ContactPolicyError) as caught:
        parse_contact_policy(text)
    [issue] = caught.value.issues
    assert (issue.field, issue.message) == (field, f"unknown setting (did you mean {closest!r}?)")


def test_the_example_policy_with_a_typo_is_refused_and_without_a_guess_when_none_is_close() -> None:
    parse_contact_policy(POLICY)  # the example itself loads
    with pytest.raises(ContactPolicyError, match="did you mean 'cap_7d'"):
        parse_contact_policy(_misspelt(POLICY, "cap_7d", "cap_7days"))
    with pytest.raises(ContactPolicyError) as caught:
        parse_contact_policy("channels:\n  sms: {quiet_hour: ['21:00-08:00']}\n")
    [issue] = caught.value.issues
    assert issue.message == "unknown setting"  # 'default_hour' is no typo of it


def test_nba_decide_refuses_the_files_at_load_with_the_suggestion(tmp_path: Path) -> None:
    cli = typer.Typer()
    cli.command("decide")(decide)
    cli.command("unused")(lambda: None)  # a group, so that 'decide' is a subcommand
    audience = tmp_path / "profiles.parquet"
    profiles_frame([CustomerProfile("C1")]).to_parquet(audience, index=False)
    catalog, policy = tmp_path / "catalog.yaml", tmp_path / "policy.yaml"
    catalog.write_text(_misspelt(RETAILER, "eligibility", "eligibilty"))
    policy.write_text("cap_1dd: 2\n")
    base = ["decide", "--audience", str(audience), "--out", str(tmp_path / "d.csv")]
    for option, path, expected in (
        ("--catalog", catalog, "field 'eligibilty': unknown field (did you mean 'eligibility'?)"),
        ("--contact-policy", policy, "cap_1dd: unknown setting (did you mean 'cap_1d'?)"),
    ):
        result = CliRunner().invoke(cli, [*base, option, str(path)])
        assert result.exit_code == 2, result.output
        assert str(path) in result.output and expected in result.output
        assert "Traceback" not in result.output
