"""The decision log is fit for off-policy evaluation of real traffic: every record holds the
context features and every eligible (action, channel) with its logging probability, and
records written before these existed still read."""

from __future__ import annotations

import datetime as dt
import json
import math
from pathlib import Path

import pytest

from experiments.decision_log import JsonlDecisionLog, read_log
from experiments.ope_logging import CONTEXT_FEATURES
from nba.catalog import parse_catalog
from nba.channels import Channel
from nba.context import CustomerContext
from nba.decision import LoggedDecision
from nba.engine import NextBestActionPolicy
from nba.profile import CustomerProfile

CATALOG = parse_catalog(
    """
actions:
  - {id: a, type: content, channels: [email, push], value: 10, timing: asap}
  - {id: b, type: review_request, channels: [email], value: 6, timing: asap}
  - {id: nothing, type: do_nothing, value: 0.05}
"""
)
NOW = dt.datetime(2026, 3, 6, 9, tzinfo=dt.UTC)


def logged() -> LoggedDecision:
    profile = CustomerProfile(
        "C1",
        consents={Channel.EMAIL: True, Channel.PUSH: True},
        days_since_last_visit=2.0,
        cart_value=42.0,
    )
    decision = NextBestActionPolicy(CATALOG).decide(CustomerContext(profile, NOW), seed=4)
    return decision.log(arm="engine", model_version="3")


def test_a_record_holds_the_context_and_every_option_with_its_probability(
    tmp_path: Path,
) -> None:
    record = logged()
    assert list(record.context) == list(CONTEXT_FEATURES)
    assert record.context["cart_value"] == 42.0 and math.isnan(record.context["cart_age_hours"])
    options = {(o.action_id, o.channel): o.probability for o in record.options}
    assert set(options) == {("a", "email"), ("a", "push"), ("b", "email"), ("nothing", None)}
    assert sum(p for p in options.values() if p is not None) == pytest.approx(1.0)
    first = record.actions[0]
    assert options[(first.action_id, first.channel)] == pytest.approx(first.propensity)
    with JsonlDecisionLog(tmp_path) as log:
        log.append([record])
    [back] = read_log(tmp_path).decisions
    assert back.options == record.options
    assert back.context.keys() == record.context.keys()
    for name, value in record.context.items():
        assert back.context[name] == value or (math.isnan(value) and math.isnan(back.context[name]))
    text = next(tmp_path.glob("*.jsonl")).read_text()
    assert "NaN" not in text  # strict JSON: unknown features are null


def test_records_written_before_options_and_context_still_read() -> None:
    old = {
        "decision_id": "d-1",
        "customer_id": "C1",
        "decided_at": "2026-03-06T09:00:00+00:00",
        "policy": "nba",
        "arm": None,
        "model_version": None,
        "propensity": 0.4,
        "eligible_action_ids": ["a", "b"],
        "actions": [
            {
                "action_id": "a",
                "channel": "email",
                "send_at": None,
                "propensity": 0.4,
                "offer_id": None,
            }
        ],
    }
    record = LoggedDecision.from_dict(json.loads(json.dumps(old)))
    assert record.options == () and dict(record.context) == {}
    assert record.propensity == 0.4 and record.action_id == "a"
