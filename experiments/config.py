"""Reading experiment configurations from files (the parsing itself is pure, in
:mod:`nba.experiment`).

>>> from pathlib import Path
>>> config = load_experiment(EXAMPLE_EXPERIMENT)
>>> config.name, [a.name for a in config.arms]
('spring_reactivation', ['engine', 'journeys', 'control'])
"""

from __future__ import annotations

from pathlib import Path

from nba.experiment import ExperimentConfig, ExperimentError, ExperimentIssue, parse_experiment_text

#: The example shipped with the package.
EXAMPLE_EXPERIMENT = Path(__file__).resolve().parents[1] / "nba" / "examples" / "experiment.yaml"


def load_experiment(path: str | Path) -> ExperimentConfig:
    """The validated experiment in the YAML or JSON file ``path``.

    Raises
    ------
    ExperimentError
        When the file cannot be read or breaks the schema; every issue names the
        file and the field.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        reason = getattr(error, "strerror", None) or str(error)
        raise ExperimentError([ExperimentIssue(str(path), "", f"cannot read: {reason}")]) from None
    return parse_experiment_text(text, source=str(path))
