"""Screenshot an experiment report in the MLflow UI and time it.

Starts ``mlflow server`` on a free localhost port against the tracking store,
opens the latest report run of the campaign and its ``report.html`` in headless
Chromium, saves two PNGs and checks the run page shows the run's name.

    .venv/bin/python benchmarks/screenshot_report.py --campaign simulated_ab --data-dir data

Needs Chromium (``apt-get install -y chromium``) and a report
(``nba experiments report NAME``).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from experiments.report import latest_report
from experiments.screenshot import find_chromium, screenshot_report
from training.registry import default_tracking_uri


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--campaign", default="simulated_ab")
    parser.add_argument("--data-dir", type=Path, default=Path("data"))
    parser.add_argument("--tracking-uri", default=None)
    parser.add_argument("--out", type=Path, default=Path("data/experiment-report.png"))
    args = parser.parse_args()
    binary = find_chromium()
    if binary is None:
        print("no Chromium: apt-get install -y chromium", file=sys.stderr)
        return 3
    uri = args.tracking_uri or default_tracking_uri(args.data_dir)
    run = latest_report(args.campaign, uri)
    if run is None:
        print(f"no report for campaign {args.campaign!r} in {uri}", file=sys.stderr)
        return 2
    started = time.perf_counter()
    shots = screenshot_report(uri, run.experiment_id, run.run_id, run.run_name, args.out)
    seconds = time.perf_counter() - started
    print(f"run {run.run_name!r} ({run.run_id}) shown at {shots.url}")
    print(f"screenshots: {shots.run_page}, {shots.report} in {seconds:.1f} s (chromium: {binary})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
