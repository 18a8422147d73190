"""An experiment served by the API: arms by assignment, the control group untouched, every
decision in the durable decision log with its arm."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from experiments.decision_log import read_decision_log
from nba.experiment import parse_experiment_text
from serving.app import create_app
from serving.startup import StartupError
from tests.api_support import ApiWorld, build_world

EXPERIMENT = """
version: 1
name: spring_test
salt: spring-2026
start: 2020-01-01T00:00:00Z
end: 2030-01-01T00:00:00Z
primary_metric: revenue_per_customer
attribution_window_days: 3
arms:
  - {name: engine, kind: champion, allocation: 0.5}
  - {name: journeys, kind: rule_based, allocation: 0.3}
  - {name: holdout, kind: control, allocation: 0.2}
"""


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> ApiWorld:
    return build_world(tmp_path_factory.mktemp("api-exp"))


def test_arms_follow_assignment_and_every_decision_is_logged_with_its_arm(
    world: ApiWorld, tmp_path: Path
) -> None:
    path = tmp_path / "experiment.yaml"
    path.write_text(EXPERIMENT)
    config = parse_experiment_text(EXPERIMENT)
    log_dir = tmp_path / "log"
    settings = world.settings(experiment_path=path, decision_log_dir=log_dir)
    app = create_app(settings, client=world.client, registry=world.registry)
    customers = [str(c) for c in world.data.customers["customer_id"]]
    answers = []
    with TestClient(app) as api:
        for customer in customers:
            response = api.post(
                "/v1/decisions",
                json={"customer_id": customer, "context": {"timestamp": world.at(9).isoformat()}},
                headers=world.headers(),
            )
            assert response.status_code == 200
            answers.append(response.json())
    arms = Counter(a["arm"] for a in answers)
    assert set(arms) == {"engine", "journeys", "holdout"}
    for answer in answers:
        assert answer["arm"] == config.assign(answer["customer_id"]).name  # sticky, by hash
        if answer["arm"] == "holdout":
            assert [a["action_id"] for a in answer["actions"]] == ["do_nothing"]
    assert arms["holdout"] / len(answers) == pytest.approx(0.2, abs=0.08)
    contacted = [a for a in answers if a["arm"] != "holdout" and a["actions"][0]["channel"]]
    assert contacted, "the engine and journey arms contact someone"

    logged = read_decision_log(log_dir)
    assert sorted(logged["decision_id"].unique()) == sorted(a["decision_id"] for a in answers)
    by_id = logged.drop_duplicates("decision_id").set_index("decision_id")
    for answer in answers:
        row = by_id.loc[answer["decision_id"]]
        assert row["arm"] == answer["arm"] and row["customer_id"] == answer["customer_id"]
        assert 0 < row["propensity"] <= 1


def test_a_broken_experiment_file_stops_the_start_with_its_field(
    world: ApiWorld, tmp_path: Path
) -> None:
    path = tmp_path / "experiment.yaml"
    path.write_text(EXPERIMENT.replace("allocation: 0.2", "allocation: 0.7"))
    app = create_app(world.settings(experiment_path=path), client=world.client, registry=None)
    with pytest.raises(StartupError, match="allocation"), TestClient(app):
        pass
