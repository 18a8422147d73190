"""The API scores with the trained channel and send-time champions once they are promoted."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from serving.app import create_app
from tests.api_support import FAST, ApiWorld, build_world
from training.api import (
    CHANNELS_NAME,
    RECOMMENDER_NAME,
    SEND_TIME_NAME,
    train_channels,
    train_recommender,
    train_send_time,
)
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


class BrokenRecommender:
    """A recommender that loads but cannot score: the check must keep it out."""

    def recommend(self, customer_ids: object, k: int = 10, **kwargs: object) -> object:
        raise RuntimeError("this model was trained on the wrong catalogue")


def test_a_failing_new_champion_leaves_the_old_models_serving(world: ApiWorld) -> None:
    good = train_recommender(world.data, registry=world.registry, config=FAST, evaluate_first=False)
    world.registry.promote(RECOMMENDER_NAME, good.version.version)
    app = create_app(world.settings(), client=world.client, registry=world.registry)
    body = {"customer_id": world.customer(), "context": {"channel": "web", "max_actions": 3}}
    with TestClient(app) as api:
        serving = f"{RECOMMENDER_NAME}:{good.version.version}"
        assert (
            serving
            in api.post("/v1/decisions", json=body, headers=world.headers()).json()["model_version"]
        )
        bad = world.registry.log_model_run(
            experiment="nba-training",
            model_name=RECOMMENDER_NAME,
            model=BrokenRecommender(),
            params={},
            metrics={},
            fingerprint="broken",
        )
        world.registry.promote(RECOMMENDER_NAME, bad.version)
        reload = api.post("/v1/admin/models/reload", headers=world.headers("ops")).json()
        assert reload["changed"] is False
        [status] = [m for m in reload["models"] if m["name"] == RECOMMENDER_NAME]
        assert status["version"] == str(good.version.version)
        assert "wrong catalogue" in status["error"]
        after = api.post("/v1/decisions", json=body, headers=world.headers())
        assert after.status_code == 200 and serving in after.json()["model_version"]
        assert api.get("/readyz", headers=world.headers("ops")).json()["models"][0]["error"]
