"""``benchmarks/scenario_pairs.py``: a scenario's cell split send by send, the classes adding
up to the cell (issue 12, cells9)."""

from __future__ import annotations

import pandas as pd
import pytest

from benchmarks.scenario_pairs import pair_sends


def _contacts(rows: list[tuple[str, str, str, str, str, bool, float]]) -> pd.DataFrame:
    return pd.DataFrame(
        rows,
        columns=[
            "decision_id",
            "customer_id",
            "action_id",
            "channel",
            "sent_at",
            "converted",
            "margin",
        ],
    )


RULES = _contacts(
    [
        ("r1", "C1", "review_request", "email", "2026-03-10T17:00:00Z", False, 0.10),
        ("r2", "C2", "review_request", "email", "2026-03-10T17:00:00Z", False, 0.12),
        # C3's purchase came from the rules' own converted message: a trigger only they had
        ("r3", "C3", "reactivation", "email", "2026-03-05T10:00:00Z", True, 0.30),
        ("r4", "C3", "review_request", "email", "2026-03-12T10:00:00Z", False, 0.05),
        ("r5", "C4", "review_request", "email", "2026-03-14T10:00:00Z", False, 0.07),
        ("r6", "C5", "review_request", "email", "2026-03-14T10:00:00Z", False, 0.04),
    ]
)
ENGINE = _contacts(
    [
        ("e1", "C1", "review_request", "email", "2026-03-11T17:00:00Z", False, 0.09),  # later
        ("e2", "C2", "review_request", "push", "2026-03-10T18:00:00Z", False, 0.20),  # explored
        ("e3", "C3", "reactivation", "email", "2026-03-05T10:00:00Z", False, 0.30),
        ("e4", "C4", "cross_sell_after_purchase", "email", "2026-03-14T12:00:00Z", False, 0.60),
        ("e6", "C6", "review_request", "email", "2026-03-20T10:00:00Z", False, 0.08),
    ]
)


def test_the_classes_add_up_to_the_cell_and_name_what_the_engine_did() -> None:
    cells = pair_sends(RULES, ENGINE, {"e2"}, "review_request", 10.0)
    assert cells["both: same channel, engine later"].sends == 1
    assert cells["both: same channel, engine later"].margin == pytest.approx(-0.01)
    assert cells["both: rules email, engine push (explored)"].margin == pytest.approx(0.08)
    own = cells["rules only: their own earlier message converted, the engine's did not"]
    assert (own.sends, own.margin) == (1, pytest.approx(-0.05))
    spent = cells["rules only: the engine spent the email on cross_sell_after_purchase"]
    assert (spent.margin, spent.instead) == (pytest.approx(-0.07), pytest.approx(0.60))
    assert cells["rules only: the engine sent nothing on the channel then"].sends == 1
    assert cells["engine only, by email"].margin == pytest.approx(0.08)
    engine_cell = ENGINE.loc[ENGINE["action_id"] == "review_request", "margin"].sum()
    rules_cell = RULES.loc[RULES["action_id"] == "review_request", "margin"].sum()
    assert sum(c.margin for c in cells.values()) == pytest.approx(engine_cell - rules_cell)


def test_a_send_answers_one_trigger_only() -> None:
    """Two rules sends to one customer a month apart are two triggers: one engine send
    matches one of them, not both."""
    rules = _contacts(
        [
            ("r1", "C1", "review_request", "email", "2026-03-02T10:00:00Z", False, 0.10),
            ("r2", "C1", "review_request", "email", "2026-03-08T10:00:00Z", False, 0.10),
        ]
    )
    engine = _contacts(
        [("e1", "C1", "review_request", "email", "2026-03-05T10:00:00Z", False, 0.10)]
    )
    cells = pair_sends(rules, engine, set(), "review_request", 10.0)
    assert cells["both: same channel, engine later"].sends == 1
    assert cells["rules only: the engine sent nothing on the channel then"].sends == 1
