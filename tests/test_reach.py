"""The reach audit counts, per action and variant, the customers whose profile lets its
eligibility hold at some moment (``nba/reach.py``, ``nba actions reach``)."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from cli.main import app
from features.profile_table import profiles_frame
from nba.catalog import Catalog, parse_catalog
from nba.profile import CustomerProfile, LifecycleState
from nba.reach import ReachReport, count_reach


def _counts(report: ReachReport) -> dict[str, object]:
    return {
        a.action_id: (a.customers, {v.variant_id: v.customers for v in a.variants})
        for a in report.actions
    }


def _catalog(actions: str) -> Catalog:
    return parse_catalog(f"actions:\n{actions}")


def test_thresholds_and_first_matching_variant_are_counted_per_customer() -> None:
    catalog = _catalog(
        """
  - {id: launch, type: product_recommendation, channels: [email],
     eligibility: "early_adopter_score >= 0.3 or promo_sensitivity >= 0.4",
     variants: [{id: early, when: "early_adopter_score >= 0.3"},
                {id: promo, when: "promo_sensitivity >= 0.4"}]}
  - {id: everyone, type: content, channels: [email]}
  - {id: do_nothing, type: do_nothing, value: 0.05}
"""
    )
    scores = [(0.1, 0.1), (0.35, 0.1), (0.1, 0.45), (0.5, 0.5), (0.29, 0.39)]
    profiles = [
        CustomerProfile(f"C{i}", early_adopter_score=e, promo_sensitivity=p)
        for i, (e, p) in enumerate(scores)
    ]
    report = count_reach(catalog, profiles)
    # the customer with both scores high gets the first variant only
    assert _counts(report) == {"launch": (3, {"early": 2, "promo": 1}), "everyone": (5, {})}
    assert report.customers == 5 and report.share(3) == 0.6
    assert report.warnings() == ()


def test_time_of_week_month_session_and_history_are_enumerated_not_assumed() -> None:
    catalog = _catalog(
        """
  - {id: weekend, type: offer, channels: [email],
     eligibility: "promo_sensitivity >= 0.5 and local_weekday >= 3 and local_weekday <= 5"}
  - {id: evening, type: content, channels: [email],
     eligibility: "local_hour >= 18 and local_weekday == 4",
     variants: [{id: early_evening, when: "local_hour < 20"}, {id: late, when: "local_hour >= 21"}]}
  - {id: never, type: content, channels: [email],
     eligibility: "local_hour >= 22 and local_hour < 3"}
  - {id: season, type: seasonal, channels: [email], eligibility: "next_month in seasonal_months"}
  - {id: first, type: welcome, channels: [email]}
  - {id: second, type: welcome, channels: [email],
     eligibility: "hours_since_sent('first') >= 72 and not known(hours_since_sent('second'))"}
  - {id: contradiction, type: content, channels: [email],
     eligibility: "hours_since_sent('first') <= 2 and hours_since_sent('first') >= 100"}
  - {id: on_site, type: cross_sell, channels: [web],
     eligibility: "in_session and session_channel == 'app' and known(session_product)"}
"""
    )
    profiles = [
        CustomerProfile("C1", promo_sensitivity=0.6, seasonal_months=(4, 10)),
        CustomerProfile("C2", promo_sensitivity=0.2),
    ]
    report = count_reach(catalog, profiles)
    assert _counts(report) == {
        "weekend": (1, {}),
        "first": (2, {}),
        "evening": (2, {"early_evening": 2, "late": 2}),
        "never": (0, {}),
        "season": (1, {}),
        "second": (2, {}),
        "contradiction": (0, {}),
        "on_site": (2, {}),
    }
    warnings = report.warnings()
    assert len(warnings) == 2
    assert "'never' reaches none of the 2 customers" in warnings[0]
    assert "local_hour >= 22 and local_hour < 3" in warnings[0]
    assert "'contradiction'" in warnings[1]


def test_an_action_that_reaches_nobody_says_why_for_one_customer() -> None:
    """A seasonal preview on a short history (no customer has seasonal months yet): the
    warning shows the failing clause with a customer's own values, so a marketer sees
    that the profiles, not the threshold, are why."""
    catalog = _catalog(
        """
  - {id: season, type: seasonal, channels: [email], eligibility: "next_month in seasonal_months"}
  - {id: everyone, type: content, channels: [email]}
"""
    )
    profiles = [CustomerProfile("C1"), CustomerProfile("C2")]
    [warning] = count_reach(catalog, profiles).warnings()
    assert "'season' reaches none of the 2 customers" in warning
    assert "(e.g. customer C1: next_month in seasonal_months is false (" in warning
    assert "seasonal_months is []" in warning


def test_unknown_profile_fields_stay_unknown_and_unmatched_variants_are_warned() -> None:
    catalog = _catalog(
        """
  - {id: birthday, type: milestone, channels: [email],
     eligibility: "days_to_birthday >= 0 and days_to_birthday <= 7"}
  - {id: winback, type: reactivation, channels: [email],
     eligibility: "lifecycle_state == 'lapsed'",
     variants: [{id: big_spender, when: "revenue_total >= 1000"}, {id: keen, when: "promo_sensitivity >= 0.9"}]}
"""
    )
    lapsed = LifecycleState.LAPSED
    profiles = [
        CustomerProfile("C1"),  # no birthday known: not eligible, not "maybe"
        CustomerProfile("C2", lifecycle_state=lapsed, revenue_total=50.0),
        CustomerProfile("C3", lifecycle_state=lapsed, revenue_total=1500.0),
    ]
    report = count_reach(catalog, profiles)
    # C2 is lapsed but matches no variant: the engine rejects it, so it is not reached
    assert _counts(report) == {"birthday": (0, {}), "winback": (1, {"big_spender": 1, "keen": 0})}
    assert report.warnings() == (
        "action 'birthday' reaches none of the 3 customers: its eligibility "
        "(days_to_birthday >= 0 and days_to_birthday <= 7) never holds (e.g. customer C1: "
        "days_to_birthday >= 0 is unknown (days_to_birthday is unknown))",
        "variant 'keen' of action 'winback' reaches none of the 1 customers the action reaches",
    )
    assert count_reach(catalog, []).warnings() == ()


def test_cli_reach_prints_a_table_json_and_fails_cleanly(tmp_path: Path) -> None:
    runner = CliRunner()
    data, profiles = tmp_path / "retailer", tmp_path / "profiles.parquet"
    simulate = ["simulate", "--customers", "120", "--days", "20", "--out", str(data)]
    assert runner.invoke(app, simulate).exit_code == 0
    build = ["features", "build", "--data", str(data), "--out", str(profiles)]
    assert runner.invoke(app, build).exit_code == 0
    table = runner.invoke(app, ["actions", "reach", "--profiles", str(profiles)])
    assert table.exit_code == 0, table.output
    assert "reach of each action over 120 profiles" in table.output
    assert "new_collection_launch" in table.output and "early_adopter" in table.output
    # a catalog with a threshold no simulated customer meets: a warning names it
    catalog = tmp_path / "catalog.yaml"
    catalog.write_text(
        "actions:\n"
        "  - {id: any_browser, type: content, channels: [email], eligibility: 'events_seen > 0'}\n"
        "  - {id: super_fan, type: content, channels: [email], eligibility: 'purchases_total >= 10000'}\n"
    )
    result = runner.invoke(
        app, ["actions", "reach", "--profiles", str(profiles), "--catalog", str(catalog), "--json"]
    )
    assert result.exit_code == 0, result.output
    document = json.loads(result.output)
    assert document["customers"] == 120
    by_id = {a["action"]: a for a in document["actions"]}
    assert by_id["super_fan"]["customers"] == 0
    assert 0 < by_id["any_browser"]["customers"] <= 120
    assert by_id["any_browser"]["share"] == by_id["any_browser"]["customers"] / 120
    assert [w.split(":")[0] for w in document["warnings"]] == [
        "action 'super_fan' reaches none of the 120 customers"
    ]
    missing = runner.invoke(app, ["actions", "reach", "--profiles", str(tmp_path / "none.pq")])
    assert missing.exit_code == 2 and "no such file" in missing.output
    bad = tmp_path / "bad.parquet"
    profiles_frame([CustomerProfile("C1")]).drop(columns="customer_id").to_parquet(bad)
    invalid = runner.invoke(app, ["actions", "reach", "--profiles", str(bad)])
    assert invalid.exit_code == 2 and "customer_id" in invalid.output
