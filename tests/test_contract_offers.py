"""The data contract's offers table read by decisions: the merge rule
(:mod:`nba.offer_table`), and errors of a loaded table that name file, row and field."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from features.contract import OFFERS
from features.validation import DataContractError, read_frame, validate_table
from nba.actions import Offer
from nba.catalog import parse_catalog
from nba.channels import Channel
from nba.offer_table import apply_offer_table
from serving.settings import Settings
from serving.startup import StartupError, load_offer_table, with_offer_table

HEADER = "offer_id,name,kind,value,cost,valid_from,valid_to,channels,daily_budget,eligibility\n"
CATALOG = parse_catalog("""
actions:
  - id: winback
    type: reactivation
    channels: [email, sms, push]
    eligibility: days_since_last_purchase > 90
    offer: {id: w15, kind: percent_discount, value: 15, cost: 7, daily_budget: 300,
            valid_to: "2026-06-30T00:00:00Z", channels: [email, sms],
            expires_after_hours: 48}
  - id: points
    type: milestone
    channels: [email]
    offer: {id: pts, kind: loyalty_points, value: 500, cost: 2.5}
  - {id: nothing, type: do_nothing}
""")


def _table(path: Path, *rows: str) -> Path:
    path.write_text(HEADER + "".join(row + "\n" for row in rows))
    return path


def test_the_table_prices_the_offer_and_the_stricter_restriction_holds(tmp_path: Path) -> None:
    """Kind, value and cost are the table's; validity is the overlap, channels those both
    allow, the budget the smaller, both eligibility rules hold; the catalog's
    expires_after_hours stays."""
    path = _table(
        tmp_path / "offers.csv",
        "w15,Win-back,percent_discount,20,9.5,2026-03-01T00:00:00Z,2026-12-31T00:00:00Z,"
        "sms|push,1000,loyalty_tier != 'none'",
    )
    merge = apply_offer_table(CATALOG, load_offer_table(path))
    offer = merge.catalog["winback"].offer
    assert offer is not None
    assert (offer.kind.value, offer.value, offer.cost) == ("percent_discount", 20.0, 9.5)
    assert offer.valid_from == dt.datetime(2026, 3, 1, tzinfo=dt.UTC)  # the table's start
    assert offer.valid_to == dt.datetime(2026, 6, 30, tzinfo=dt.UTC)  # the catalog's end
    assert offer.channels == (Channel.SMS,) and offer.daily_budget == 300
    assert str(offer.eligibility) == "loyalty_tier != 'none'"
    assert offer.expires_after_hours == 48
    assert merge.catalog["winback"].deliverable_channels == (Channel.SMS,)
    # the catalog's other offer is not in the table: its own terms hold, and it is said
    assert merge.catalog["points"].offer == CATALOG["points"].offer
    assert merge.unlisted == ("pts",) and "'pts'" in merge.warnings()[0]


def test_both_eligibility_rules_must_hold() -> None:
    catalog = parse_catalog("""
actions:
  - {id: a, type: offer, channels: [email],
     offer: {id: o, kind: fixed_discount, value: 5, cost: 5, eligibility: "cart_value > 50"}}
""")
    table = {
        "o": Offer(
            id="o", kind="fixed_discount", value=5, cost=5, eligibility="purchases_total >= 3"
        )
    }
    offer = apply_offer_table(catalog, table).catalog["a"].offer
    assert offer is not None
    assert str(offer.eligibility) == "(cart_value > 50) and (purchases_total >= 3)"


def test_an_offer_the_table_allows_on_none_of_the_actions_channels_is_never_given() -> None:
    table = {
        "pts": Offer(id="pts", kind="loyalty_points", value=500, cost=2.5, channels=["wallet"])
    }
    merge = apply_offer_table(CATALOG, table)
    assert merge.catalog["points"].deliverable_channels == ()
    assert merge.silenced == ("points",)
    assert "action 'points'" in merge.warnings()[-1]


def test_a_window_the_catalog_and_table_do_not_share_never_opens() -> None:
    table = {
        "w15": Offer(
            id="w15",
            kind="percent_discount",
            value=15,
            cost=7,
            valid_from=dt.datetime(2026, 7, 1, tzinfo=dt.UTC),
            valid_to=dt.datetime(2026, 8, 1, tzinfo=dt.UTC),
        )
    }
    action = apply_offer_table(CATALOG, table).catalog["winback"]
    for day in (dt.datetime(2026, 6, 15, tzinfo=dt.UTC), dt.datetime(2026, 7, 15, tzinfo=dt.UTC)):
        assert not action.valid_at(day)


def test_an_eligibility_the_rule_language_refuses_names_file_row_and_field(tmp_path: Path) -> None:
    path = _table(
        tmp_path / "offers.csv",
        "w15,,percent_discount,15,7,2026-01-01T00:00:00Z,2026-12-31T00:00:00Z,email,,",
        "w20,,percent_discount,20,9,2026-01-01T00:00:00Z,2026-12-31T00:00:00Z,email,,"
        "orders_count >= 3",
    )
    with pytest.raises(DataContractError) as caught:
        validate_table(read_frame(path), OFFERS, str(path))
    [problem] = caught.value.problems
    assert str(problem).startswith(f"{path}: row 2, field 'eligibility': unknown field")
    with pytest.raises(StartupError, match=r"(?s)NBA_OFFERS_PATH: .*row 2, field 'eligibility'"):
        with_offer_table(CATALOG, path, "NBA_OFFERS_PATH")


def test_a_bad_row_is_refused_naming_file_row_and_field(tmp_path: Path) -> None:
    path = _table(
        tmp_path / "offers.csv",
        "w15,,percent_discount,15,7,2026-01-01T00:00:00Z,2026-12-31T00:00:00Z,email,,",
        "w20,,half_price,20,-9,2026-01-01T00:00:00Z,2025-12-31T00:00:00Z,fax,,",
    )
    with pytest.raises(StartupError) as caught:
        load_offer_table(path)
    text = str(caught.value)
    for field in ("kind", "cost", "channels"):
        assert f"row 2, field '{field}'" in text
    with pytest.raises(StartupError, match="no offers table"):
        load_offer_table(tmp_path / "missing.csv")


def test_the_api_reads_the_retailers_offers_table_by_default(tmp_path: Path) -> None:
    assert Settings(data_dir=tmp_path).offers_file is None  # none written: catalog terms
    (tmp_path / "retailer").mkdir()
    default = tmp_path / "retailer" / "offers.parquet"
    validate_table(read_frame(_table(tmp_path / "o.csv")), OFFERS, "o.csv").to_parquet(default)
    assert Settings(data_dir=tmp_path).offers_file == default
    assert Settings(data_dir=tmp_path, offers_path=tmp_path / "o.csv").offers_file == (
        tmp_path / "o.csv"
    )


def test_the_contact_policy_names_the_retailers_time_zone() -> None:
    """Budgets count the retailer's day: the policy's ``timezone``, an IANA name."""
    from nba.contact_policy import ContactPolicyError, parse_contact_policy

    policy = parse_contact_policy("timezone: America/New_York")
    late = dt.datetime(2026, 3, 7, 3, 0, tzinfo=dt.UTC)  # 22:00 on the 6th in New York
    assert policy.budget_day(late) == dt.date(2026, 3, 6)
    assert parse_contact_policy("cap_1d: 2").budget_day(late) == dt.date(2026, 3, 7)  # UTC
    with pytest.raises(ContactPolicyError, match=r"timezone.*unknown time zone 'Mars/Olympus'"):
        parse_contact_policy("timezone: Mars/Olympus")


@pytest.mark.parametrize(
    ("year", "easter"),
    [
        (2024, "03-31"),
        (2025, "04-20"),
        (2026, "04-05"),
        (2027, "03-28"),
        (2038, "04-25"),
        (2285, "03-22"),
    ],
)
def test_easter_sunday_of_any_year(year: int, easter: str) -> None:
    from nba.holidays import easter_sunday

    assert easter_sunday(year).isoformat() == f"{year}-{easter}"


def test_a_holiday_rule_the_policy_cannot_read_is_refused_naming_the_field() -> None:
    from nba.contact_policy import ContactPolicyError, parse_contact_policy

    for entry, expected in (("13-45", "no such day of the year"), ("pentecost", "expected MM-DD")):
        with pytest.raises(ContactPolicyError) as caught:
            parse_contact_policy(f"channels: {{call_centre: {{holidays: ['{entry}']}}}}")
        [issue] = caught.value.issues
        assert "holidays" in issue.field and expected in issue.message
    policy = parse_contact_policy("channels: {call_centre: {holidays: ['12-26', easter+1]}}")
    excluded = policy.rules(Channel.CALL_CENTRE).allowed_times.excluded_dates
    assert dt.date(2029, 12, 26) in excluded and dt.date(2029, 4, 2) in excluded
    assert dt.date(2029, 12, 25) not in excluded  # the document's list replaces the default
