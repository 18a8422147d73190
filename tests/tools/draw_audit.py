"""A pytest plugin that makes every *unseeded* decision draw adversarial (test-only).

A test that asserts one random decision passes most runs and fails one in N (commit
ae795f0: a birthday drawn by e-mail with probability 31/32). This plugin finds such
tests in one suite run instead of by luck. Load it explicitly; the normal run never
does, and no product code reads it::

    NBA_TEST_REDIS_URL=... PYTHONPATH=. python -m pytest -p tests.tools.draw_audit \\
        --draw-audit=least --draw-audit-report=/tmp/audit -n 2 --dist loadfile tests

What is *unseeded* (everything else keeps its draws as they are):

* **API** (``POST /v1/decisions`` in process, ``serving.decisions``): a decision without
  an ``Idempotency-Key``, whose seed is ``random.getrandbits(64)`` (the only unkeyed
  source of a seed). A keyed decision is seeded by its key.
* **In process** (``decide`` / ``route`` of a policy, a pipeline, an experiment router,
  the new-action switch, :func:`features.online.supersession` replacement): a call that
  omits ``seed``. Its default ``0`` is deterministic, but the test did not choose the
  draw: any change in how many draws a decision makes, or in the options, moves it. An
  explicit ``seed=`` (``0`` included) is seeded.
* **Batch** (``nba decide``, :func:`serving.batch_decisions.decide_audience`), the closed
  loop, the simulator and the off-policy logging: always seeded, by
  ``(seed, customer id)`` or by their ``numpy`` seed sequences (their files and
  worlds are promised to be the same for the same seed), so left alone.
* An API served by another process (``tests/test_api_durability.py``'s uvicorn) is
  not reached: that test counts status codes, not decisions.

``--draw-audit-keys=REGEX`` counts the ``Idempotency-Key`` values it matches as unseeded
too: a test helper's keys that are fixed but arbitrary (``journey-<n>``, numbered per
test module in tests/test_scenarios_api.py, so they move when a test is added before or
run alone) are found the same way.

Modes (``--draw-audit=``):

* ``observe``: draws unchanged; only counts, per test, the unseeded draws that had two
  outcomes or more (the exposure list, written with ``--draw-audit-report``).
* ``least``: every unseeded Thompson draw picks the least likely option of those with a
  non-zero probability (exact, :func:`nba.arbitration._exact`); a uniform draw takes the
  last option, and an ``explore_share`` coin always explores.
* ``rotate``: the k-th contested unseeded draw of a test (k = 1, 2, ...) takes the
  option of rank ``k mod m`` among its ``m`` possible ones, most likely first: the
  first draw takes the second likeliest, and two calls in a row differ.

The propensity, the ``explored`` flag and the words of a decision stay those of the
option drawn: the product computes them from the draw, as for any draw.
"""

from __future__ import annotations

import contextlib
import random
import re
import threading
import types
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

MODES = ("observe", "least", "rotate")


class Unseeded(int):
    """The default seed ``0`` of an in-process call that omitted ``seed`` (equal to 0,
    printed as 0): marks the call's draws as unseeded."""


UNSEEDED = Unseeded(0)


class _State:
    """The mode, the API's unkeyed seeds, and the current test's counts."""

    def __init__(self) -> None:
        self.mode = "observe"
        self.unkeyed: set[str] = set()
        self.lock = threading.Lock()
        self.rank = 0  # the current test's contested draws so far
        self.exposure: dict[str, int] = {}
        self.test = "<collection>"
        self.keys: re.Pattern[str] | None = None  # --draw-audit-keys

    def contested(self) -> int:
        """Count one contested unseeded draw for the current test; its rank (1, 2, ...)."""
        with self.lock:
            self.rank += 1
            self.exposure[self.test] = self.exposure.get(self.test, 0) + 1
            return self.rank


STATE = _State()


def choose(probabilities: Sequence[tuple[int, float]], mode: str) -> int | None:
    """The adversarial outcome among ``(outcome, probability)`` pairs, or ``None`` to
    keep the real draw (mode ``observe``, or a single possible outcome)."""
    possible = [(i, p) for i, p in probabilities if p > 0.0]
    if len(possible) < 2:
        return None
    rank = STATE.contested()
    if mode == "least":
        return min(reversed(possible), key=lambda pair: pair[1])[0]
    if mode == "rotate":
        ordered = sorted(possible, key=lambda pair: -pair[1])  # stable: index order
        return ordered[rank % len(ordered)][0]
    return None


class AuditRandom(random.Random):
    """The generator of an unseeded decision: its uniform draws are adversarial."""

    def randrange(self, start: int, stop: int | None = None, step: int = 1) -> int:  # type: ignore[override]
        if stop is not None or step != 1:
            return super().randrange(start, stop, step)
        picked = choose([(i, 1.0 / start) for i in range(start)], STATE.mode)
        return super().randrange(start) if picked is None else picked

    def getrandbits(self, k: int) -> int:
        # defined so that randrange stays Random's own (Random.__init_subclass__ switches
        # a subclass that overrides random() alone to another way of drawing integers)
        return super().getrandbits(k)

    def random(self) -> float:
        # the explore_share coin (nba.engine): least always explores uniformly; rotate
        # alternates (the only other caller would be a Beta draw, which decisions make none of)
        if STATE.mode == "least":
            return 0.0
        if STATE.mode == "rotate":
            return 0.0 if STATE.rank % 2 else 1.0 - 2**-53
        return super().random()


def _is_unseeded(seed: object) -> bool:
    if isinstance(seed, Unseeded):
        return True
    if not isinstance(seed, str):
        return False
    return seed in STATE.unkeyed or (STATE.keys is not None and bool(STATE.keys.fullmatch(seed)))


def _generator(seed: Any = None) -> random.Random:
    if _is_unseeded(seed):
        return AuditRandom(int(seed) if isinstance(seed, Unseeded) else seed)
    return random.Random(seed)


class _ModuleProxy(types.ModuleType):
    """``random`` as seen by one product module, with a few names replaced."""

    def __init__(self, **replaced: Any) -> None:
        super().__init__("random")
        self.__dict__.update(replaced)

    def __getattr__(self, name: str) -> Any:
        return getattr(random, name)


def _unkeyed_bits(k: int) -> int:
    bits = random.getrandbits(k)
    with STATE.lock:
        STATE.unkeyed.add(f"{bits:016x}")  # serving.decisions: f"{getrandbits(64):016x}"
    return bits


def _adversarial_draw(original: Callable[..., int]) -> Callable[..., int]:
    from nba import arbitration

    def draw(arms: Sequence[Any], rng: random.Random) -> int:
        if not isinstance(rng, AuditRandom) or len(arms) < 2:
            return original(arms, rng)
        n = max(arm.index for arm in arms) + 1
        exact = arbitration._exact(arms, n)
        picked = choose([(arm.index, exact[arm.index]) for arm in arms], STATE.mode)
        return original(arms, rng) if picked is None else picked

    return draw


#: Every in-process entry point whose ``seed`` defaults to 0, as (module, qualified name).
ENTRY_POINTS = (
    ("nba.policy", "DecisionPolicy.decide"),
    ("nba.policy", "DecisionPolicy.route"),
    ("nba.pipeline", "DecisionPipeline.route"),
    ("nba.experiment", "ExperimentRouter.route"),
    ("nba.experiment", "ExperimentRouter.decide"),
    ("experiments.new_action", "CatalogSwitch.route"),
    ("features.online.supersession", "weigh_replacement"),
)


def install(mode: str) -> Callable[[], None]:
    """Patch the product's draws in this process; returns what undoes it."""
    import importlib

    from nba import arbitration, policy

    if mode not in MODES:
        raise ValueError(f"draw audit: mode must be one of {MODES}, got {mode!r}")
    undo: list[Callable[[], None]] = []

    def patch(target: Any, name: str, value: Any) -> None:
        old = getattr(target, name)
        setattr(target, name, value)
        undo.append(lambda: setattr(target, name, old))

    old_mode = STATE.mode
    undo.append(lambda: setattr(STATE, "mode", old_mode))
    STATE.mode = mode
    patch(policy, "random", _ModuleProxy(Random=_generator))
    patch(arbitration, "_draw", _adversarial_draw(arbitration._draw))
    decisions = importlib.import_module("serving.decisions")
    patch(decisions, "random", _ModuleProxy(getrandbits=_unkeyed_bits))
    for module_name, qualname in ENTRY_POINTS:
        target: Any = importlib.import_module(module_name)
        for part in qualname.split("."):
            target = getattr(target, part)
        defaults = target.__kwdefaults__
        if defaults is None or defaults.get("seed") != 0:
            raise RuntimeError(f"draw audit: {module_name}.{qualname} has no seed=0 default")
        undo.append(lambda d=defaults, s=defaults["seed"]: d.__setitem__("seed", s))
        defaults["seed"] = UNSEEDED

    def uninstall() -> None:
        for step in reversed(undo):
            step()

    return uninstall


@contextlib.contextmanager
def audited(mode: str) -> Iterator[None]:
    """The draw audit in ``mode`` inside the block (its own test, tests/test_draw_audit.py)."""
    uninstall = install(mode)
    with STATE.lock:
        rank, STATE.rank = STATE.rank, 0
    try:
        yield
    finally:
        uninstall()
        STATE.rank = rank


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("draw audit")
    group.addoption(
        "--draw-audit",
        choices=MODES,
        default="observe",
        help="How unseeded decision draws go (tests/tools/draw_audit.py).",
    )
    group.addoption(
        "--draw-audit-keys",
        default=None,
        help="A regular expression: Idempotency-Keys it matches count as unseeded too.",
    )
    group.addoption(
        "--draw-audit-report",
        default=None,
        help="A folder to write each process's tests with contested unseeded draws to.",
    )


_UNINSTALL: list[Callable[[], None]] = []


def active() -> bool:
    """Whether the plugin audits this run (its own tests check the state without it)."""
    return bool(_UNINSTALL)


def pytest_configure(config: pytest.Config) -> None:
    keys = config.getoption("--draw-audit-keys")
    STATE.keys = None if keys is None else re.compile(keys)
    _UNINSTALL.append(install(config.getoption("--draw-audit")))


def pytest_unconfigure(config: pytest.Config) -> None:
    while _UNINSTALL:
        _UNINSTALL.pop()()


def pytest_runtest_setup(item: pytest.Item) -> None:
    with STATE.lock:
        STATE.test, STATE.rank = item.nodeid, 0
        STATE.unkeyed.clear()


def pytest_runtest_teardown(item: pytest.Item) -> None:
    """Append the test's count to the report as it ends (a run cut short keeps its lines)."""
    folder = item.config.getoption("--draw-audit-report")
    count = STATE.exposure.get(item.nodeid, 0)
    if folder is None or count == 0:
        return
    worker = getattr(item.config, "workerinput", {}).get("workerid", "main")
    path = Path(folder) / f"exposure-{STATE.mode}-{worker}.tsv"
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as out:
        out.write(f"{item.nodeid}\t{count}\n")


def pytest_terminal_summary(terminalreporter: Any) -> None:
    exposed = len(STATE.exposure)
    terminalreporter.write_line(
        f"draw audit ({STATE.mode}): {exposed} tests made contested unseeded draws in this process"
    )
