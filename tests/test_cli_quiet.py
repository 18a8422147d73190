"""The commands' output keeps MLflow's notes on how each model is logged out, not its
other warnings (cli.support.quiet_libraries)."""

from __future__ import annotations

import logging
import os

import pytest

from cli.support import quiet_libraries


def test_mlflow_s_logging_notes_are_dropped_and_its_other_warnings_kept(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", raising=False)
    quiet_libraries()
    assert os.environ["MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"] == "false"
    pyfunc = logging.getLogger("mlflow.pyfunc")
    with caplog.at_level(logging.WARNING):
        pyfunc.warning(
            "Passing a Python object as `python_model` causes it to be serialized using "
            "CloudPickle, it requires exercising caution"
        )
        pyfunc.warning("Failed to infer model signature: Type hint <input: ...>")
        pyfunc.warning("Model %s could not be loaded", "nba-offers")
    assert [r.getMessage() for r in caplog.records] == ["Model nba-offers could not be loaded"]
