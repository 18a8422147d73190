"""The API scores with the trained channel and send-time champions once they are promoted."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from serving.app import create_app
from tests.api_support import ApiWorld, build_world
from training.api import CHANNELS_NAME, SEND_TIME_NAME, train_channels, train_send_time
from training.model_scorer import ModelScorer


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> ApiWorld:
    return build_world(tmp_path_factory.mktemp("api-models"), customers=400, days=45)


def test_promoted_channel_and_send_time_models_score_decisions(world: ApiWorld) -> None:
    app = create_app(world.settings(), client=world.client, registry=world.registry)
    customer = world.customer(consent="email")
    body = {"customer_id": customer, "context": {"timestamp": world.at(9).isoformat()}}
    with TestClient(app) as api:
        before = api.post("/v1/decisions", json=body, headers=world.headers()).json()
        assert before["model_version"] == "rules"
        assert app.state.runtime.models.current.scorer is None

        channels = train_channels(world.data, registry=world.registry)
        send_time = train_send_time(world.data, registry=world.registry)
        world.registry.promote(CHANNELS_NAME, channels.version.version)
        world.registry.promote(SEND_TIME_NAME, send_time.version.version)
        reload = api.post("/v1/admin/models/reload", headers=world.headers("ops")).json()
        assert reload["changed"] is True

        scorer = app.state.runtime.models.current.scorer
        assert isinstance(scorer, ModelScorer)
        assert scorer.propensity is not None and scorer.send_time is not None
        assert scorer.uplift is None  # the uplift model is opt-in (NBA_USE_UPLIFT_MODEL)
        answers = [
            api.post("/v1/decisions", json=body, headers=world.headers()).json() for _ in range(3)
        ]
    for answer in answers:
        assert f"{CHANNELS_NAME}:{channels.version.version}" in answer["model_version"]
        assert f"{SEND_TIME_NAME}:{send_time.version.version}" in answer["model_version"]
        assert answer["actions"]
