"""Off-policy evaluation on the simulator: estimates against the ground truth, and the CLI.

One small world is simulated for the module; the exploring engine logs its
decisions in closed loop; three candidates are estimated from the log and their
true values at the logged contexts computed from the simulator's truth. The
candidates also run in closed loop.
"""

from __future__ import annotations

import numpy as np
import pytest
import typer
from typer.testing import CliRunner

from cli.ope import ope
from experiments.ope_logging import ActionChannel
from experiments.ope_validation import OPEValidation, TruthTable, validate_ope
from nba.budgets import UsageCounts
from nba.screening import screen
from simulator.closed_loop import ClosedLoopConfig, ClosedLoopWorld, build_world

CONFIG = ClosedLoopConfig(
    n_customers=300, history_days=30, days=3, seed=5, n_products=300, trigger_every_hours=6
)
CANDIDATES = ("rules", "random", "nba-greedy")


@pytest.fixture(scope="module")
def world() -> ClosedLoopWorld:
    return build_world(CONFIG)


@pytest.fixture(scope="module")
def validation(world: ClosedLoopWorld) -> OPEValidation:
    return validate_ope(world, CANDIDATES, epsilon=0.3, closed_loop=True)


def test_every_interval_contains_the_true_value_at_the_logged_contexts(
    validation: OPEValidation,
) -> None:
    assert [c.candidate for c in validation.candidates] == list(CANDIDATES)
    for candidate in validation.candidates:
        assert [e.estimator for e in candidate.estimates] == ["ips", "snips", "dr", "dm"]
        # DM's interval is the spread over rounds, blind to the reward model's bias
        for e in candidate.estimates[:3]:
            where = (candidate.candidate, e.estimator, e.estimate, candidate.truth_at_logged)
            assert e.contains(candidate.truth_at_logged), where
            assert e.ci_high - e.ci_low < candidate.truth_at_logged, where  # informative
            assert e.effective_sample_size > 100, where


def test_estimates_tell_candidates_apart_and_beat_the_logged_average(
    validation: OPEValidation,
) -> None:
    by_name = {c.candidate: c for c in validation.candidates}
    greedy, random = by_name["nba-greedy"], by_name["random"]
    assert greedy.truth_at_logged > random.truth_at_logged
    dr = {c.candidate: c.estimates[2] for c in validation.candidates}
    assert dr["random"].ci_high < dr["nba-greedy"].ci_low
    # Reporting the logged decisions' own value would be far off for the random policy.
    off = abs(validation.logged_value - random.truth_at_logged)
    for e in random.estimates:
        assert abs(e.estimate - random.truth_at_logged) < off / 2, e.estimator


def test_logged_rewards_are_the_truth_of_the_logged_actions(
    world: ClosedLoopWorld, validation: OPEValidation
) -> None:
    logged = validation.logged
    truth = TruthTable(world, logged)
    pairs = [(i, record.action) for i, record in enumerate(logged.logged)]
    truth.fill(pairs)
    values = np.array([truth.value(i, a) for i, a in pairs])
    assert np.count_nonzero(logged.reward) > 100
    np.testing.assert_allclose(values, logged.reward, atol=1e-9)


def test_the_logger_can_take_every_screened_action_on_every_channel(
    world: ClosedLoopWorld, validation: OPEValidation
) -> None:
    epsilon = validation.logged.epsilon
    several = 0
    for record in validation.logged.logged[:300]:
        screened = {
            ActionChannel(c.action.id, slot.channel.value)
            for c in record.candidates
            for slot in c.slots
        } | {ActionChannel(c.action.id, None) for c in record.candidates if not c.slots}
        assert set(record.actions) == screened
        assert sum(record.probabilities) == pytest.approx(1.0)
        assert min(record.probabilities) >= epsilon / len(record.actions) - 1e-12
        several += len(record.actions) > 1
        # The screened candidates are what screening gives at that context.
        again = screen(world.catalog, world.contact_policy, record.context, UsageCounts())
        assert {c.action.id for c in again.candidates} >= {c.action.id for c in record.candidates}
    assert several > 50
    for candidate in validation.candidates:
        assert candidate.unsupported_mass == 0.0, candidate.candidate


def test_closed_loop_values_are_reported_beside_the_estimates(validation: OPEValidation) -> None:
    for candidate in validation.candidates:
        assert candidate.closed_loop is not None and candidate.closed_loop_decisions
        assert candidate.closed_loop > 0
    table = validation.table()
    assert len(table) == 12
    # DM's interval is the spread over rounds, blind to the reward model's bias: only the
    # importance-weighted estimators are held to cover the truth
    weighted = table[table["estimator"] != "dm"]
    assert len(weighted) == 9 and weighted["covered"].all()
    markdown = validation.markdown()
    assert markdown.count("\n") == 13 and "| nba-greedy | dr |" in markdown


# --- CLI ------------------------------------------------------------------------------


def app() -> typer.Typer:
    cli = typer.Typer()
    cli.command("ope")(ope)
    cli.command("other")(lambda: None)  # two commands: "ope" is invoked by name
    return cli


def test_cli_prints_estimates_intervals_and_truth(tmp_path) -> None:
    out = tmp_path / "ope.md"
    result = CliRunner().invoke(
        app(),
        [
            "ope",
            "--simulate",
            "--customers",
            "100",
            "--days",
            "1",
            "--history-days",
            "20",
            "--policy",
            "random",
            "--policy",
            "nba-greedy",
            "--no-closed-loop",
            "--out",
            str(out),
        ],
    )
    assert result.exit_code == 0, result.output
    for text in (
        "decisions logged",
        "random",
        "nba-greedy",
        "ips",
        "snips",
        "dr",
        "95 % CI",
        "truth at logged contexts",
    ):
        assert text in result.output
    written = out.read_text()
    assert "| random | ips |" in written and "| nba-greedy | dr |" in written


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ([], "give either --log DIR --events DATA"),
        (["--simulate", "--policy", "oracle"], "--policy: unknown policy 'oracle'"),
        (["--simulate", "--epsilon", "1.5"], "--epsilon: must be between 0 and 1"),
        (["--simulate", "--reward", "clicks"], "--reward: 'clicks' is not one of"),
        (["--simulate", "--history-days", "5"], "--history-days: must be at least 14"),
    ],
)
def test_cli_refuses_bad_options_with_the_option_named(arguments: list[str], message: str) -> None:
    result = CliRunner().invoke(app(), ["ope", *arguments])
    assert result.exit_code == 2
    assert message in result.output
