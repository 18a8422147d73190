"""Off-policy evaluation from the real API's own logs (uvicorn + Redis), end to end, small.

A simulated retailer is served by the API for one simulated day; the decision log
and event archive it writes are read back into rounds, rewards joined by
attribution, contexts rebuilt from the events and candidates re-scored.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from cli.main import app
from experiments.decision_log import JsonlDecisionLog, read_log
from experiments.ope_api import (
    LOGGED,
    LogEvaluation,
    OPEInputError,
    evaluate_log,
    join_rewards,
    load_events,
    logged_rounds,
)
from experiments.ope_api_simulation import ApiTraffic, ServedWorld, response_truth, serve_world
from experiments.ope_rounds import Withdrawn
from nba.catalog import parse_catalog
from nba.contact_policy import parse_contact_policy
from simulator.closed_loop import ClosedLoopConfig, build_world
from simulator.closed_loop.world import ClosedLoopWorld
from tests.redis_servers import RedisServer, free_port, redis_server_binary


@pytest.fixture(scope="module")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    url = os.environ.get("NBA_TEST_REDIS_URL")
    if url:
        yield url
        return
    binary = redis_server_binary()
    if binary is None:
        pytest.skip("no redis-server binary")
    server = RedisServer(binary, free_port(), tmp_path_factory.mktemp("redis")).start()
    yield server.url
    server.stop()


@pytest.fixture(scope="module")
def served(
    tmp_path_factory: pytest.TempPathFactory, redis_url: str
) -> tuple[ClosedLoopWorld, ServedWorld, ApiTraffic]:
    world = build_world(ClosedLoopConfig(n_customers=80, history_days=14, days=1, seed=3))
    root = tmp_path_factory.mktemp("api")
    with (
        serve_world(world, root, redis_url, explore_share=0.5) as api,
        httpx.Client(base_url=api.base_url, timeout=60) as client,
    ):
        traffic = ApiTraffic(world, client, seed=3)
        traffic.run()
    return world, api, traffic


@pytest.fixture(scope="module")
def evaluation(served: tuple[ClosedLoopWorld, ServedWorld, ApiTraffic]) -> LogEvaluation:
    _, api, _ = served
    return evaluate_log(
        api.decision_log,
        load_events([api.base_data, api.archive]),
        catalog=parse_catalog(api.catalog_path.read_text()),
        contact_policy=parse_contact_policy(api.contact_policy_path.read_text()),
        candidates=(LOGGED, "rules", "random", "nba-greedy"),
        reward="clicks",
        attribution="direct",
    )


def test_the_api_log_becomes_rounds_with_rebuilt_contexts(
    served: tuple[ClosedLoopWorld, ServedWorld, ApiTraffic], evaluation: LogEvaluation
) -> None:
    _, api, traffic = served
    assert traffic.decisions > 50 and traffic.contacts > 10
    assert evaluation.n_rounds == traffic.decisions
    # the profiles replayed from the events are those the API decided with
    replay = evaluation.replay
    assert replay.features_agree == evaluation.n_rounds, replay.feature_mismatches
    assert replay.missing_options == 0 and replay.unknown_customers == 0
    # the simulator's answers came back through POST /v1/events, and every click with
    # a decision id earned its decision the reward
    archived = load_events([api.base_data, api.archive]).received
    answered = archived[archived["decision_id"].notna()]
    assert (answered["event_type"] == "message_sent").sum() == traffic.contacts
    assert evaluation.reward.sum() == (answered["event_type"] == "message_clicked").sum()


def test_the_logged_policy_is_its_own_sanity_check(evaluation: LogEvaluation) -> None:
    logged = next(c for c in evaluation.candidates if c.candidate == LOGGED)
    ips = next(e for e in logged.estimates if e.estimator == "ips")
    assert ips.max_weight == pytest.approx(1.0) and ips.mean_weight == pytest.approx(1.0)
    assert ips.estimate == pytest.approx(float(np.mean(evaluation.reward)))
    assert logged.unsupported_mass == 0.0
    assert {e.estimator for e in logged.estimates} == {"ips", "snips", "dr", "dm"}


def test_candidates_are_rescored_at_the_logged_contexts(
    served: tuple[ClosedLoopWorld, ServedWorld, ApiTraffic], evaluation: LogEvaluation
) -> None:
    world, _, traffic = served
    rules = evaluation.distributions["rules"]
    random = evaluation.distributions["random"]
    assert all(abs(sum(d.values()) - 1.0) < 1e-9 for d in rules + random)
    assert all(max(d.values()) == 1.0 for d in rules)  # deterministic
    # the random candidate spreads over several options where several were screened
    assert any(len(d) > 1 for d in random)
    truth = response_truth(world, evaluation, traffic)
    assert set(truth) == {LOGGED, "rules", "random", "nba-greedy"}
    assert all(0.0 <= v < 1.0 for v in truth.values())
    assert truth["rules"] != truth["random"]


def test_rewards_join_direct_and_by_window(evaluation: LogEvaluation) -> None:
    rounds = evaluation.rounds
    sent = next(r for r in rounds if r.record.actions and r.record.actions[0].send_at)
    action = sent.record.actions[0]
    assert action.send_at is not None
    later = action.send_at + dt.timedelta(hours=2)
    events = pd.DataFrame(
        {
            "event_id": ["p-direct", "p-window"],
            "customer_id": [sent.record.customer_id] * 2,
            "timestamp": [later, later + dt.timedelta(hours=1)],
            "channel": ["web", "web"],
            "event_type": ["purchase", "purchase"],
            "decision_id": [sent.record.decision_id, None],
            "revenue": [30.0, 12.0],
        }
    )
    index = rounds.index(sent)
    direct = join_rewards(rounds, events, reward="revenue", attribution="direct")
    window = join_rewards(rounds, events, reward="revenue", attribution="last_touch")
    assert direct[index] == 30.0
    assert window[index] >= 30.0  # the window purchase goes to the customer's last send
    assert direct.sum() == 30.0 and window.sum() == pytest.approx(42.0)
    conversions = join_rewards(rounds, events, reward="conversions", attribution="direct")
    assert conversions[index] == 1.0


def test_cli_evaluates_the_api_log_and_logs_to_mlflow(
    served: tuple[ClosedLoopWorld, ServedWorld, ApiTraffic], tmp_path: Path
) -> None:
    _, api, _ = served
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    result = CliRunner().invoke(
        app,
        [
            "experiments",
            "ope",
            "--log",
            str(api.decision_log),
            "--events",
            str(api.base_data),
            "--events",
            str(api.archive),
            "--contact-policy",
            str(api.contact_policy_path),
            "--policy",
            "logged",
            "--policy",
            "rules",
            "--reward",
            "clicks",
            "--attribution",
            "direct",
            "--tracking-uri",
            uri,
        ],
    )
    assert result.exit_code == 0, result.output
    assert "| rules | dm |" in result.output and "| logged | ips |" in result.output
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=uri)
    experiment = client.get_experiment_by_name("ope")
    assert experiment is not None
    [run] = client.search_runs([experiment.experiment_id])
    assert "rules.dr.ci_low" in run.data.metrics and "logged.ips.max_weight" in run.data.metrics


def test_a_record_without_probabilities_names_file_and_line(
    served: tuple[ClosedLoopWorld, ServedWorld, ApiTraffic], tmp_path: Path
) -> None:
    _, api, _ = served
    [segment, *_] = sorted(api.decision_log.glob("decisions-*.jsonl"))
    lines = segment.read_text().splitlines()
    record = json.loads(lines[1])
    record["options"] = []
    broken = tmp_path / "log"
    broken.mkdir()
    (broken / segment.name).write_text("\n".join([lines[0], json.dumps(record), *lines[2:]]) + "\n")
    with pytest.raises(
        OPEInputError, match=rf"{segment.name}: line 2: decision {record['decision_id']}"
    ):
        logged_rounds(broken)
    result = CliRunner().invoke(
        app,
        ["experiments", "ope", "--log", str(broken), "--events", str(api.base_data)],
    )
    assert result.exit_code == 2
    assert "line 2" in result.output and "logging probabilities" in result.output


def test_events_must_include_the_base_data_set(
    served: tuple[ClosedLoopWorld, ServedWorld, ApiTraffic], tmp_path: Path
) -> None:
    _, api, _ = served
    with pytest.raises(OPEInputError, match="contract data set the API's profiles"):
        load_events([api.archive])
    with pytest.raises(OPEInputError, match="neither a contract data set"):
        load_events([tmp_path])


def test_a_withdrawn_decision_is_no_round(
    served: tuple[ClosedLoopWorld, ServedWorld, ApiTraffic], tmp_path: Path
) -> None:
    """A decision whose message a later decision withdrew (its ``replaces``) was never
    executed: it is left out of the rounds (its reward is not one of sending its action),
    the decision that replaced it is one, and its exposure earns no attributed reward.
    ``kept`` and ``do_nothing`` (only to measure the difference) keep it, with reward 0,
    as chosen or as the option that sends nothing."""
    _, api, traffic = served
    log = tmp_path / "log"
    shutil.copytree(api.decision_log, log)
    original = next(
        d
        for d in read_log(log).decisions
        if d.actions and d.actions[0].channel and any(o.channel is None for o in d.options)
    )
    replacing = dataclasses.replace(
        original,
        decision_id="d-replacing",
        decided_at=original.decided_at + dt.timedelta(minutes=1),
        replaces=(original.decision_id,),
    )
    with JsonlDecisionLog(log) as sink:
        sink.append([replacing])
    rounds = logged_rounds(log)
    assert [r.record.decision_id for r in rounds if r.withdrawn] == [original.decision_id]

    def evaluate(withdrawn: Withdrawn) -> LogEvaluation:
        return evaluate_log(
            log,
            load_events([api.base_data, api.archive]),
            catalog=parse_catalog(api.catalog_path.read_text()),
            contact_policy=parse_contact_policy(api.contact_policy_path.read_text()),
            candidates=(LOGGED, "random"),
            reward="clicks",
            attribution="last_touch",
            withdrawn=withdrawn,
        )

    dropped = evaluate("dropped")
    ids = [r.record.decision_id for r in dropped.rounds]
    assert original.decision_id not in ids and "d-replacing" in ids
    assert dropped.n_rounds == traffic.decisions and dropped.withdrawn == 1
    assert len(dropped.replay.contexts) == dropped.n_rounds
    kept = evaluate("kept")
    assert kept.n_rounds == traffic.decisions + 1
    at = [r.record.decision_id for r in kept.rounds].index(original.decision_id)
    assert kept.reward[at] == 0.0  # not an exposure: no credit, even by window
    assert kept.rounds[at].chosen == rounds[at].chosen
    nothing = evaluate("do_nothing")
    assert nothing.rounds[at].action.channel is None  # counted as sending nothing
