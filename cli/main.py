"""The ``nba`` command line's entry point: the command groups, mounted on one app.

Every command reports bad input as a short message naming the file, row and
field, and exits with status 2; it never shows a traceback for a user's mistake.
"""

from __future__ import annotations

import sys

import typer

from cli import (
    actions,
    archive,
    data,
    decide,
    erase,
    experiments,
    features,
    models,
    ope,
    retrain,
    serve,
)
from cli.support import quiet_libraries

app = typer.Typer(
    name="nba",
    help="nba: next-best-action engine for multichannel marketing.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

app.command("simulate")(data.simulate)
app.command("validate")(data.validate)
app.command("contract")(data.contract)
app.add_typer(data.datasets_app, name="datasets")
app.add_typer(features.features_app, name="features")
app.command("train")(models.train)
app.command("evaluate")(models.evaluate)
app.command("recommend")(models.recommend)
app.add_typer(models.models_app, name="models")
app.command("decide")(decide.decide)
app.command("decide-examples")(decide.decide_examples)
app.command("serve")(serve.serve)
app.command("serve-key")(serve.serve_key)
app.command("api-demo")(serve.api_demo)
experiments.experiments_app.command("ope")(ope.ope)
app.add_typer(experiments.experiments_app, name="experiments")
app.add_typer(archive.archive_app, name="archive")
app.command("erase")(erase.erase)
app.command("retrain")(retrain.retrain)
app.add_typer(actions.actions_app, name="actions")


def main() -> None:
    """Console-script entry point."""
    quiet_libraries()
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(130)


if __name__ == "__main__":
    main()
