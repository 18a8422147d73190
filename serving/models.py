"""The models the API serves with, loaded from the MLflow registry and swapped hot.

:class:`ModelManager` holds one immutable :class:`ModelSet` (the champion of
each registered model, and the scorer built from them). :meth:`ModelManager.refresh`
looks up the ``champion`` alias of every model; when one moved, it loads the new
versions beside the serving ones, checks them on a probe customer, and swaps the
whole set in one assignment. Requests read ``manager.current`` once, so a request
never sees half a swap, and a new model that fails to load or to score leaves the
old set serving. With no model registered the set is empty and rules decide.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from nba.scoring import Scorer

log = logging.getLogger("nba.api")

RECOMMENDER = "nba-recommender"
CHANNELS = "nba-channels"
OFFERS = "nba-offers"
SEND_TIME = "nba-send-time"
#: Registered models the API looks for (each is optional: rules cover what is missing).
SERVED_MODELS: tuple[str, ...] = (RECOMMENDER, CHANNELS, OFFERS, SEND_TIME)

ScorerFactory = Callable[[Mapping[str, Any]], Scorer | None]


@dataclass(frozen=True)
class ModelSet:
    """The models serving requests right now (never mutated; replaced whole)."""

    models: Mapping[str, Any] = field(default_factory=dict)
    versions: Mapping[str, int] = field(default_factory=dict)
    scorer: Scorer | None = None
    loaded_at: Mapping[str, dt.datetime] = field(default_factory=dict)

    @property
    def recommender(self) -> Any | None:
        return self.models.get(RECOMMENDER)

    @property
    def label(self) -> str:
        """``nba-recommender:3,nba-channels:1``, or ``rules`` with no model."""
        if not self.versions:
            return "rules"
        return ",".join(f"{name}:{v}" for name, v in sorted(self.versions.items()))


def model_scorer_factory(*, use_uplift_model: bool = False) -> ScorerFactory:
    """Builds the engine's scorer from the loaded champions: channel propensity and send
    time when registered; the offer uplift model only when ``use_uplift_model``: the
    learned uplift ranks the simulator's true uplift better than every fixed rule over
    three 20,000-customer seeds, but its held-out Qini, which gates its promotion, is too
    noisy at that size to trust the choice unattended (BENCHMARKS.md, offer uplift); a
    champion that is the rule defers to the rule-based uplift."""

    def build(models: Mapping[str, Any]) -> Scorer | None:
        from training.model_scorer import ModelScorer

        propensity = models.get(CHANNELS)
        uplift = models.get(OFFERS) if use_uplift_model else None
        send_time = models.get(SEND_TIME)
        if propensity is None and uplift is None and send_time is None:
            return None
        return ModelScorer(propensity=propensity, uplift=uplift, send_time=send_time)

    return build


class ModelCheckError(RuntimeError):
    """A newly loaded model failed to score the probe: it is not swapped in."""


def check_recommender(model: Any) -> None:
    """The recommender must return top-k lists, cold-start customers included."""
    recs = model.recommend(["__nba_probe__"], 3, exclude_owned=True)
    if recs.product_ids.shape[0] != 1:
        raise ModelCheckError("the recommender returned no row for the probe customer")


class ModelManager:
    """Loads champions from ``registry`` and swaps them in atomically (thread-safe)."""

    def __init__(
        self,
        registry: Any | None,
        *,
        names: tuple[str, ...] = SERVED_MODELS,
        scorer_factory: ScorerFactory | None = None,
        checks: Mapping[str, Callable[[Any], None]] | None = None,
    ) -> None:
        self.registry = registry
        self.names = names
        self.scorer_factory = scorer_factory
        self.checks = dict(checks or {RECOMMENDER: check_recommender})
        self.current = ModelSet()
        self.errors: dict[str, str] = {}
        self._lock = threading.Lock()

    def champions(self) -> dict[str, int]:
        """The champion version of each served model that has one."""
        if self.registry is None:
            return {}
        out = {}
        for name in self.names:
            try:
                version = self.registry.champion(name)
            except Exception as error:  # an unreachable tracking store must not stop serving
                self.errors[name] = f"cannot read the registry: {error}"
                continue
            if version is not None:
                out[name] = int(version)
        return out

    def refresh(self) -> bool:
        """Load champions that changed; swap if all load and pass their checks.

        Returns True when a new set was swapped in. Never raises: failures are
        kept in :attr:`errors` and the serving set is left as it was.
        """
        with self._lock:
            wanted = self.champions()
            serving = self.current
            if wanted == dict(serving.versions):
                return False
            models = {n: m for n, m in serving.models.items() if n in wanted}
            loaded_at = {n: t for n, t in serving.loaded_at.items() if n in wanted}
            for name, version in wanted.items():
                if serving.versions.get(name) == version:
                    continue
                try:
                    model = self.registry.load_model(name)  # type: ignore[union-attr]
                    check = self.checks.get(name)
                    if check is not None:
                        check(model)
                except Exception as error:
                    self.errors[name] = f"version {version} not served: {error}"
                    log.error(
                        "model %s version %s failed to load or check: %s", name, version, error
                    )
                    return False
                models[name] = model
                loaded_at[name] = dt.datetime.now(dt.UTC)
                self.errors.pop(name, None)
            try:
                scorer = self.scorer_factory(models) if self.scorer_factory else None
            except Exception as error:
                self.errors["scorer"] = f"scorer not built: {error}"
                log.error("scorer from new models failed: %s", error)
                return False
            self.errors.pop("scorer", None)
            self.current = ModelSet(models, wanted, scorer, loaded_at)
            log.info("serving models %s", self.current.label)
            return True


def champion_models(
    registry: Any | None,
    *,
    use_uplift_model: bool = False,
    scorer_factory: ScorerFactory | None = None,
) -> ModelManager:
    """The served models' champions, loaded from ``registry`` (none: rules decide), in a
    manager that can swap in later champions: the API's models and ``nba decide``'s.

    Only the channel, send-time and recommender models are served unless
    ``use_uplift_model``; ``scorer_factory`` defaults to :func:`model_scorer_factory`.
    """
    factory = scorer_factory or model_scorer_factory(use_uplift_model=use_uplift_model)
    served = tuple(n for n in SERVED_MODELS if use_uplift_model or n != OFFERS)
    manager = ModelManager(registry, names=served, scorer_factory=factory)
    manager.refresh()
    return manager


class ModelPoller:
    """Calls ``manager.refresh`` (then ``also``) every ``seconds`` in a daemon thread."""

    def __init__(
        self, manager: ModelManager, seconds: float, also: Callable[[], None] | None = None
    ) -> None:
        self.manager = manager
        self.seconds = seconds
        self.also = also
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self.seconds <= 0:
            return
        self._thread = threading.Thread(target=self._run, name="nba-model-poller", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.seconds):
            self.manager.refresh()
            if self.also is not None:
                self.also()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
