"""Attribution of outcome events to decisions: direct, window, last touch, 40/20/40."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest

from experiments.attribution import attribute, credit_by_channel, exposures_of

T = pd.Timestamp("2026-03-06T09:00:00Z")
WEEK = dt.timedelta(days=7)
H = pd.Timedelta(hours=1)


def exposures(*rows: tuple[str, str, str, pd.Timestamp]) -> pd.DataFrame:
    return pd.DataFrame(
        [
            {
                "decision_id": d,
                "customer_id": c,
                "arm": "engine",
                "action_id": f"a-{d}",
                "channel": ch,
                "send_at": at,
            }
            for d, c, ch, at in rows
        ]
    )


def events(*rows: tuple[str, str, pd.Timestamp, str, str | None, float | None]) -> pd.DataFrame:
    return pd.DataFrame(
        [
            {
                "event_id": e,
                "customer_id": c,
                "timestamp": at,
                "channel": "web",
                "event_type": kind,
                "decision_id": d,
                "revenue": r,
            }
            for e, c, at, kind, d, r in rows
        ]
    )


FOUR = exposures(
    ("d1", "C1", "email", T),
    ("d2", "C1", "sms", T + H),
    ("d3", "C1", "push", T + 2 * H),
    ("d4", "C1", "postal", T + 3 * H),
)


def test_position_based_gives_40_20_40_and_last_touch_the_latest() -> None:
    ev = events(("e1", "C1", T + 5 * H, "purchase", None, 100.0))
    pb = attribute(FOUR, ev, window=WEEK, model="position_based")
    assert pb["decision_id"].tolist() == ["d1", "d2", "d3", "d4"]
    assert pb["credit"].tolist() == pytest.approx([0.4, 0.1, 0.1, 0.4])
    assert pb["revenue"].sum() == pytest.approx(100.0)
    lt = attribute(FOUR, ev, window=WEEK, model="last_touch")
    assert lt[["decision_id", "credit", "revenue", "rule"]].values.tolist() == [
        ["d4", 1.0, 100.0, "window"]
    ]
    two = attribute(FOUR.iloc[:2], ev, window=WEEK, model="position_based")
    assert two["credit"].tolist() == [0.5, 0.5]


def test_direct_attribution_wins_over_the_window() -> None:
    ev = events(("e1", "C1", T + 5 * H, "purchase", "d2", 80.0))
    for model in ("last_touch", "position_based"):
        credit = attribute(FOUR, ev, window=WEEK, model=model)
        assert credit[["decision_id", "rule", "credit", "revenue"]].values.tolist() == [
            ["d2", "direct", 1.0, 80.0]
        ]


def test_direct_id_of_a_later_or_unknown_decision_falls_back_to_the_window() -> None:
    ev = events(
        ("e1", "C1", T + 30 * pd.Timedelta(minutes=1), "purchase", "d4", 10.0),  # before d4's send
        ("e2", "C1", T + 5 * H, "purchase", "d-unknown", 20.0),
    )
    credit = attribute(FOUR, ev, window=WEEK)
    assert credit[["event_id", "decision_id", "rule"]].values.tolist() == [
        ["e1", "d1", "window"],
        ["e2", "d4", "window"],
    ]


def test_window_bounds_and_other_customers() -> None:
    ex = exposures(("d1", "C1", "email", T), ("d9", "C2", "sms", T))
    ev = events(
        ("inside", "C1", T + pd.Timedelta(WEEK) - pd.Timedelta(seconds=1), "purchase", None, 5.0),
        ("at_end", "C1", T + pd.Timedelta(WEEK), "purchase", None, 5.0),
        ("before", "C1", T - H, "purchase", None, 5.0),
        ("other", "C3", T + H, "purchase", None, 5.0),
        ("not_outcome", "C1", T + H, "product_view", None, None),
    )
    credit = attribute(ex, ev, window=WEEK)
    assert credit["event_id"].tolist() == ["inside"]


def test_events_without_a_decision_id_column_use_the_window_rule() -> None:
    ev = events(("e1", "C1", T + 5 * H, "purchase", None, 50.0)).drop(columns="decision_id")
    assert attribute(FOUR, ev, window=WEEK)["decision_id"].tolist() == ["d4"]


def test_credit_by_channel_adds_credited_outcomes_per_arm_and_channel() -> None:
    ev = events(
        ("e1", "C1", T + 5 * H, "purchase", None, 100.0),
        ("e2", "C1", T + 5 * H, "unsubscribe", "d2", None),
        ("e3", "C1", T + 6 * H, "message_clicked", "d1", None),
    )
    table = credit_by_channel(attribute(FOUR, ev, window=WEEK, model="position_based"))
    by = table.set_index("channel")
    assert by.loc["email", "revenue"] == pytest.approx(40.0)
    assert by.loc["email", "clicks"] == 1.0
    assert by.loc["sms", "unsubscribes"] == 1.0
    assert by["conversions"].sum() == pytest.approx(1.0)
    assert set(table["arm"]) == {"engine"}


def test_exposures_leave_out_do_nothing() -> None:
    log = pd.DataFrame(
        {"decision_id": ["d1", "d2"], "channel": ["email", None], "send_at": [T, pd.NaT]}
    )
    assert exposures_of(log)["decision_id"].tolist() == ["d1"]


def test_bad_model_or_window() -> None:
    with pytest.raises(ValueError, match="unknown attribution model"):
        attribute(FOUR, events(), window=WEEK, model="first_touch")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="window must be positive"):
        attribute(FOUR, events(), window=dt.timedelta(0))
