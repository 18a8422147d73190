"""MLflow tracking and model registry: runs, pyfunc models, the ``champion`` alias.

Every training run logs its parameters, metrics, a fingerprint of its input
data and its plots; its model is saved as an MLflow pyfunc model (the pickled
model with its id mappings and feature encoders as an artifact) and
registered. :meth:`ModelRegistry.promote` moves the ``champion`` alias and
remembers the previous champion, so :meth:`ModelRegistry.rollback` can move
it back. Serving loads ``models:/<name>@champion``.

The tracking store is ``$MLFLOW_TRACKING_URI`` when set, else a SQLite
database in the project's data directory (``sqlite:///data/mlflow.db``), with
artifacts beside it.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import pickle
import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

CHAMPION = "champion"
#: Registered-model tag holding the stack of previous champions (JSON list of versions).
HISTORY_TAG = "nba.champion_history"
#: Run tag holding the data fingerprint.
FINGERPRINT_TAG = "nba.data_fingerprint"
MODEL_ARTIFACT = "model.pkl"


class RegistryError(RuntimeError):
    """A registry operation cannot be done (unknown model or version, nothing to roll back to)."""


def default_tracking_uri(data_dir: str | Path = "data") -> str:
    """``$MLFLOW_TRACKING_URI`` when set, else ``sqlite:///<data_dir>/mlflow.db`` (absolute)."""
    env = os.environ.get("MLFLOW_TRACKING_URI")
    if env:
        return env
    path = Path(data_dir).resolve()
    path.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{path / 'mlflow.db'}"


def data_fingerprint(frames: Mapping[str, pd.DataFrame]) -> str:
    """SHA-256 of the tables' contents (values, column names, row order): same data, same hash.

    >>> a = data_fingerprint({"t": pd.DataFrame({"x": [1, 2]})})
    >>> a == data_fingerprint({"t": pd.DataFrame({"x": [1, 2]})}), a == data_fingerprint(
    ...     {"t": pd.DataFrame({"x": [2, 1]})})
    (True, False)
    >>> at = pd.to_datetime(pd.Series(["2026-03-01T10:00:00Z", None]), utc=True)
    >>> fp = lambda s: data_fingerprint({"t": pd.DataFrame({"at": s})})
    >>> fp(at) == fp(at.dt.as_unit("ms")) == fp(at.dt.tz_localize(None)), fp(at) == fp(at[::-1])
    (True, False)
    """
    digest = hashlib.sha256()
    for name in sorted(frames):
        frame = frames[name]
        digest.update(name.encode())
        digest.update(json.dumps([str(c) for c in frame.columns]).encode())
        digest.update(str(frame.shape).encode())
        if len(frame):
            hashed = pd.util.hash_pandas_object(_hashable(frame), index=False)
            digest.update(hashed.to_numpy().tobytes())
    return digest.hexdigest()


def _hashable(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` as text, except timestamps: integer nanoseconds since the epoch (UTC),
    whatever their unit or zone (formatting millions of timestamps as text cost most of
    a fingerprint)."""
    out: dict[object, object] = {}
    for column in frame.columns:
        values = frame[column]
        if isinstance(values.dtype, pd.DatetimeTZDtype) or pd.api.types.is_datetime64_dtype(values):
            utc = pd.to_datetime(values, utc=True).dt.tz_localize(None)
            out[column] = utc.to_numpy(dtype="datetime64[ns]").view("int64").astype(str)
        else:
            out[column] = values.astype(str)
    return pd.DataFrame(out, columns=frame.columns)


def _python_model_class() -> type:
    from mlflow.pyfunc import PythonModel

    class RecommenderPyfunc(PythonModel):
        """Pyfunc wrapper: input ``customer_id`` (+ optional contract columns), output top-k."""

        def load_context(self, context: Any) -> None:
            with open(context.artifacts["model"], "rb") as fh:
                self.model = pickle.load(fh)

        def predict(
            self, context: Any, model_input: pd.DataFrame, params: dict[str, Any] | None = None
        ) -> pd.DataFrame:
            params = params or {}
            k = int(params.get("k", 10))
            exclude = bool(params.get("exclude_owned", True))
            ids = model_input["customer_id"].astype(str).tolist()
            described = model_input if model_input.shape[1] > 1 else None
            recs = self.model.recommend(ids, k, exclude_owned=exclude, customers=described)
            return recs.to_frame()

    return RecommenderPyfunc


def _generic_model_class() -> type:
    from mlflow.pyfunc import PythonModel

    class ModelPyfunc(PythonModel):
        """Pyfunc wrapper of a model with ``predict_frame(DataFrame) -> DataFrame``
        (channel propensity, offer uplift, send time)."""

        def load_context(self, context: Any) -> None:
            with open(context.artifacts["model"], "rb") as fh:
                self.model = pickle.load(fh)

        def predict(
            self, context: Any, model_input: pd.DataFrame, params: dict[str, Any] | None = None
        ) -> pd.DataFrame:
            return self.model.predict_frame(model_input)

    return ModelPyfunc


@dataclass(frozen=True)
class ModelVersionInfo:
    """One registered version."""

    name: str
    version: int
    run_id: str
    aliases: tuple[str, ...]
    created_ms: int


class ModelRegistry:
    """MLflow tracking and registry behind one object (the tracking URI is passed in)."""

    def __init__(self, tracking_uri: str, artifact_root: str | Path | None = None):
        from mlflow import MlflowClient

        self.tracking_uri = tracking_uri
        if artifact_root is None and tracking_uri.startswith("sqlite:///"):
            artifact_root = Path(tracking_uri.removeprefix("sqlite:///")).parent / "mlartifacts"
        self.artifact_root = Path(artifact_root).resolve() if artifact_root else None
        self.client = MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)

    @classmethod
    def local(cls, data_dir: str | Path = "data") -> ModelRegistry:
        """The default store: ``$MLFLOW_TRACKING_URI`` or SQLite in ``data_dir``."""
        return cls(default_tracking_uri(data_dir))

    @contextlib.contextmanager
    def _active(self) -> Iterator[None]:
        """Point MLflow's fluent API at this store, then restore it (and the environment:
        ``set_tracking_uri`` also exports ``MLFLOW_TRACKING_URI``)."""
        import mlflow
        from mlflow.tracking._model_registry import utils as registry_utils
        from mlflow.tracking._tracking_service import utils as tracking_utils

        saved_env = {k: os.environ.get(k) for k in ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI")}
        saved = (tracking_utils._tracking_uri, registry_utils._registry_uri)
        mlflow.set_tracking_uri(self.tracking_uri)
        mlflow.set_registry_uri(self.tracking_uri)
        try:
            yield
        finally:
            tracking_utils._tracking_uri, registry_utils._registry_uri = saved
            for key, value in saved_env.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value

    def experiment_id(self, name: str) -> str:
        """Id of experiment ``name``, created (with artifacts under ``artifact_root``) if needed."""
        found = self.client.get_experiment_by_name(name)
        if found is not None:
            return str(found.experiment_id)
        location = (self.artifact_root / name).as_uri() if self.artifact_root else None
        return str(self.client.create_experiment(name, artifact_location=location))

    def log_model_run(
        self,
        *,
        experiment: str,
        model_name: str,
        model: Any,
        params: Mapping[str, Any],
        metrics: Mapping[str, float],
        fingerprint: str,
        figures: Mapping[str, Any] | None = None,
        texts: Mapping[str, str] | None = None,
        input_example: pd.DataFrame | None = None,
        run_name: str | None = None,
    ) -> ModelVersionInfo:
        """Log one training run and register its model; returns the new version.

        A model with ``recommend`` is wrapped as the recommender pyfunc (input
        ``customer_id``, output top-k); any other must have ``predict_frame``
        (a DataFrame in, a DataFrame out), which the generic pyfunc calls.
        """
        import mlflow
        import mlflow.pyfunc

        exp_id = self.experiment_id(experiment)
        with self._active(), mlflow.start_run(experiment_id=exp_id, run_name=run_name):
            mlflow.log_params({k: _param(v) for k, v in params.items()})
            mlflow.log_metrics({k: float(v) for k, v in metrics.items() if v == v})
            mlflow.set_tag(FINGERPRINT_TAG, fingerprint)
            for path, fig in (figures or {}).items():
                mlflow.log_figure(fig, path)
            for path, text in (texts or {}).items():
                mlflow.log_text(text, path)
            with tempfile.TemporaryDirectory() as tmp:
                blob = Path(tmp) / MODEL_ARTIFACT
                with open(blob, "wb") as fh:
                    pickle.dump(model, fh, protocol=pickle.HIGHEST_PROTOCOL)
                if hasattr(model, "recommend"):
                    wrapper = _python_model_class()()
                    requirements = ["mlflow", "rectools-lightfm", "scikit-learn", "pandas"]
                elif hasattr(model, "predict_frame"):
                    wrapper = _generic_model_class()()
                    requirements = ["mlflow", "scikit-learn", "scipy", "pandas"]
                else:
                    raise TypeError(
                        f"cannot register {type(model).__name__}: it has neither recommend() "
                        "nor predict_frame()"
                    )
                info = mlflow.pyfunc.log_model(
                    name="model",
                    python_model=wrapper,
                    artifacts={"model": str(blob)},
                    registered_model_name=model_name,
                    pip_requirements=requirements,
                    signature=_signature(model, input_example),
                    input_example=input_example,
                )
            version = int(info.registered_model_version)
        return self.version(model_name, version)

    # ---------------------------------------------------------------- registry

    def version(self, name: str, version: int) -> ModelVersionInfo:
        from mlflow.exceptions import MlflowException

        try:
            mv = self.client.get_model_version(name, str(version))
        except MlflowException as exc:
            raise RegistryError(f"model {name!r} has no version {version}") from exc
        return ModelVersionInfo(
            name,
            int(mv.version),
            mv.run_id or "",
            tuple(mv.aliases or ()),
            int(mv.creation_timestamp),
        )

    def versions(self, name: str | None = None) -> list[ModelVersionInfo]:
        """Registered versions (of ``name`` or of every model), newest first per model."""
        query = f"name='{name}'" if name else ""
        found = self.client.search_model_versions(query)
        # search results do not carry aliases: read each version
        out = [self.version(mv.name, int(mv.version)) for mv in found]
        return sorted(out, key=lambda v: (v.name, -v.version))

    def champion(self, name: str) -> int | None:
        """Version carrying the ``champion`` alias, or None."""
        from mlflow.exceptions import MlflowException

        try:
            return int(self.client.get_model_version_by_alias(name, CHAMPION).version)
        except MlflowException:
            return None

    def _history(self, name: str) -> list[int]:
        tags = self.client.get_registered_model(name).tags or {}
        return [int(v) for v in json.loads(tags.get(HISTORY_TAG, "[]"))]

    def promote(self, name: str, version: int) -> int | None:
        """Give ``version`` the ``champion`` alias; returns the previous champion (remembered)."""
        self.version(name, version)  # raises when unknown
        previous = self.champion(name)
        if previous == version:
            return previous
        history = self._history(name)
        if previous is not None:
            history.append(previous)
        self.client.set_registered_model_alias(name, CHAMPION, str(version))
        self.client.set_registered_model_tag(name, HISTORY_TAG, json.dumps(history))
        return previous

    def rollback(self, name: str) -> int:
        """Move ``champion`` back to the previous champion; returns that version."""
        history = self._history(name)
        if not history:
            raise RegistryError(f"model {name!r} has no previous champion to roll back to")
        target = history.pop()
        self.client.set_registered_model_alias(name, CHAMPION, str(target))
        self.client.set_registered_model_tag(name, HISTORY_TAG, json.dumps(history))
        return target

    def load_pyfunc(self, name: str, alias: str = CHAMPION) -> Any:
        """The pyfunc model at ``models:/<name>@<alias>``."""
        import mlflow.pyfunc

        with self._active():
            return mlflow.pyfunc.load_model(f"models:/{name}@{alias}")

    def load_model(self, name: str, alias: str = CHAMPION) -> Any:
        """The trained model object inside ``models:/<name>@<alias>`` (for in-process scoring)."""
        return self.load_pyfunc(name, alias).unwrap_python_model().model


def _param(value: Any) -> Any:
    if isinstance(value, dict | list | tuple):
        return json.dumps(value, default=str)[:6000]
    return value


def _signature(model: Any, example: pd.DataFrame | None) -> Any:
    from mlflow.models import infer_signature

    if example is None:
        return None
    if hasattr(model, "recommend"):
        output = model.recommend(example["customer_id"].astype(str).tolist(), 10).to_frame()
        return infer_signature(example, output, params={"k": 10, "exclude_owned": True})
    return infer_signature(example, model.predict_frame(example))
