"""The API's configuration, read from the environment (prefix ``NBA_``) by pydantic-settings.

Every setting has a default that runs on a laptop with nothing installed: an
embedded Redis in ``data/``, the local MLflow store in ``data/mlflow.db``, the
example retailer's catalog and contact policy. Unknown ``NBA_`` variables are
ignored; a malformed value stops the start-up with a message naming the
variable.

>>> s = Settings(api_keys=[], allow_anonymous=True)
>>> s.redis_url is None, s.max_actions, s.max_batch_customers
(True, 5, 500)
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

EXAMPLES = Path(__file__).resolve().parents[1] / "nba" / "examples"

#: What a key may do: ``decide`` (decisions), ``ingest`` (events), ``profiles`` (read a
#: customer's profile: personal data, so a scope of its own), ``erase`` (forget a
#: customer, for a data-protection tool; ``admin`` may too), ``admin`` (model reload,
#: readiness details).
Scope = Literal["decide", "ingest", "profiles", "erase", "admin"]
SCOPES: tuple[Scope, ...] = ("decide", "ingest", "profiles", "erase", "admin")
#: Per-key rate limits by default: profile reads are personal data, so bulk reads are slowed.
DEFAULT_RATE_LIMITS: dict[Scope, float] = {"profiles": 20.0}


class ApiKeySpec(BaseModel):
    """One API key as configured: its name, the SHA-256 of the key, its scopes.

    The key itself is never stored; ``nba serve-key NAME`` prints a new key and
    the line to configure.
    """

    model_config = {"extra": "forbid", "frozen": True}

    name: str = Field(min_length=1, max_length=64)
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    scopes: tuple[Scope, ...] = Field(min_length=1)


class Settings(BaseSettings):
    """Configuration of ``nba serve`` and :func:`serving.app.create_app`."""

    model_config = SettingsConfigDict(env_prefix="NBA_", extra="ignore", frozen=True)

    #: Redis URL (``redis://``, ``rediss://``); unset: an embedded server in ``data_dir``.
    redis_url: str | None = None
    #: Connect to a Redis Cluster at ``redis_url``.
    redis_cluster: bool = False
    #: Key prefix in Redis (several deployments can share one server).
    redis_prefix: str = "nba"
    #: Seconds a Redis call may take before the request falls back (degraded answer).
    redis_timeout_seconds: float = Field(default=0.25, gt=0)
    #: Seconds to wait before trying Redis again after a failure.
    redis_retry_seconds: float = Field(default=1.0, ge=0)
    #: Retries of a Redis Cluster command after a connection error (each after a slot-map refresh).
    redis_cluster_retries: int = Field(default=1, ge=0, le=10)
    #: Project data directory: embedded Redis, MLflow store, products table.
    data_dir: Path = Path("data")
    #: Contract products table (Parquet or CSV); default: ``<data_dir>/retailer/products.parquet``.
    products_path: Path | None = None
    #: Contract offers table (Parquet or CSV): the catalog's offers take its terms
    #: (:mod:`nba.offer_table`); default: ``<data_dir>/retailer/offers.parquet`` when it
    #: exists, else the catalog's own terms.
    offers_path: Path | None = None
    #: Action catalog (YAML); default: the example retailer's.
    catalog_path: Path = EXAMPLES / "retailer_catalog.yaml"
    #: Contact policy (YAML); default: the example retailer's.
    contact_policy_path: Path = EXAMPLES / "contact_policy.yaml"
    #: MLflow tracking URI; default: ``$MLFLOW_TRACKING_URI``, else ``sqlite:///<data_dir>/mlflow.db``.
    mlflow_tracking_uri: str | None = None
    #: Seconds between polls of the registry's ``champion`` aliases (0: only on reload).
    model_poll_seconds: float = Field(default=30.0, ge=0)
    #: Score offers with the registered uplift model (else the rule-based uplift).
    use_uplift_model: bool = False
    #: API keys (JSON list of {name, sha256, scopes}).
    api_keys: list[ApiKeySpec] = Field(default_factory=list)
    #: Serve without API keys (development only; refused when keys are configured).
    allow_anonymous: bool = False
    #: Requests per second each API key may make, per scope (JSON object; a scope not
    #: listed is unlimited); bursts of one second's worth pass. 429 with Retry-After beyond.
    rate_limits: dict[Scope, float] = Field(default_factory=lambda: dict(DEFAULT_RATE_LIMITS))
    #: Largest request body accepted, in bytes.
    max_body_bytes: int = Field(default=1_048_576, ge=1024)
    #: Most customers in one ``/v1/decisions/batch`` request.
    max_batch_customers: int = Field(default=500, ge=1)
    #: Most events in one ``/v1/events`` request.
    max_events: int = Field(default=1_000, ge=1)
    #: Most actions one decision may return.
    max_actions: int = Field(default=5, ge=1, le=20)
    #: Events of customers the engine does not know (no registered profile): ``accept``
    #: them as prospects (counted in ``nba_events_unknown_total``) or ``reject`` them (and
    #: events of unknown products) one by one.
    unknown_customers: Literal["accept", "reject"] = "accept"
    #: How far ahead of this server's clock an event's time may be (seconds): clock skew
    #: between the sender and the API; later events are rejected one by one.
    max_event_future_seconds: float = Field(default=300.0, ge=0)
    #: The currency of every amount the API is sent (revenue, refunds), as an ISO 4217
    #: code (``EUR``): an event that says it is in another (``properties.currency``, a
    #: Segment order's ``currency``) is refused one by one, naming the field, instead of
    #: being added to the others' amounts. Unset: amounts are taken as they come.
    currency: str | None = Field(default=None, pattern=r"^[A-Z]{3}$")
    #: Hours an ``Idempotency-Key`` answer is kept.
    idempotency_hours: float = Field(default=24.0, gt=0)
    #: Learn response statistics online (per action, channel and segment) and explore with them.
    response_stats: bool = True
    #: Seconds a worker decides with the statistics it last read before reading them again
    #: (0: read them with every decision).
    stats_refresh_seconds: float = Field(default=1.0, ge=0)
    #: Half-life of the response statistics' evidence, in days (forgetting tracks drift).
    stats_half_life_days: float = Field(default=14.0, gt=0)
    #: What the statistics give the policy: ``value_mean`` (the response calibration's
    #: belief scaled by the learned margin per stated value of a response, its posterior
    #: mean), ``value`` (drawn from both beliefs) or ``response`` (the calibration alone).
    stats_model: Literal["value", "response", "value_mean"] = "value_mean"
    #: Hours after a send in which an outcome without a decision id is attributed to it.
    attribution_window_hours: float = Field(default=72.0, gt=0)
    #: How ``POST /v1/decisions`` is decided: ``batches`` (one thread decides the
    #: requests queued meanwhile together: one Redis round trip each way for all of them)
    #: or ``threads`` (each request in anyio's thread pool, its own round trips; the
    #: threads contend for the interpreter lock). BENCHMARKS.md, "Issue 15, items 1-2,
    #: fourth pass".
    decide_in: Literal["batches", "threads"] = "batches"
    #: The most requests one batch decides (their answers wait for the whole batch).
    decision_batch: int = Field(default=16, ge=1, le=256)
    #: Threads deciding batches (each takes the next batch while another waits for Redis).
    decision_threads: int = Field(default=2, ge=1, le=64)
    #: The interpreter's switch interval while the API runs (seconds; Python's default
    #: 0.005): how long a thread that wants the interpreter lock (the event loop, a
    #: decider back from Redis, the decision log's writer) waits for one that computes.
    switch_interval_seconds: float = Field(default=0.001, gt=0, le=0.1)
    #: Decision log directory (JSON Lines); unset: ``<data_dir>/decision-log``.
    decision_log_dir: Path | None = None
    #: ``always``: each decision is on disk before the answer; ``never``: survives an API
    #: crash, not a power loss (faster).
    decision_log_fsync: Literal["always", "never"] = "always"
    #: Event archive (every accepted event, to retrain from); unset: ``<data_dir>/archive``.
    archive_dir: Path | None = None
    #: ``always``: an event is in the archive before it is acknowledged; ``never``: it
    #: survives an API crash, not a power loss; ``off``: no archive.
    archive_fsync: Literal["always", "never", "off"] = "always"
    #: Experiment (YAML); unset: ``<data_dir>/experiment.yaml`` when that file exists.
    experiment_path: Path | None = None
    #: How long an erasure is kept in Redis to refuse the customer's late events (those
    #: that happened before it), in days, at least (:mod:`features.online.erasure`).
    erasure_tombstone_days: float = Field(default=30.0, gt=0, le=3650)

    @field_validator("api_keys", mode="before")
    @classmethod
    def _keys_from_text(cls, value: object) -> object:
        if isinstance(value, str) and not value.strip():
            return []
        return value

    @property
    def products_file(self) -> Path:
        return self.products_path or self.data_dir / "retailer" / "products.parquet"

    @property
    def offers_file(self) -> Path | None:
        if self.offers_path is not None:
            return self.offers_path
        default = self.data_dir / "retailer" / "offers.parquet"
        return default if default.is_file() else None

    @property
    def tracking_uri(self) -> str:
        from training.registry import default_tracking_uri

        return self.mlflow_tracking_uri or default_tracking_uri(self.data_dir)

    @property
    def experiment_file(self) -> Path | None:
        if self.experiment_path is not None:
            return self.experiment_path
        default = self.data_dir / "experiment.yaml"
        return default if default.is_file() else None

    @property
    def decision_log_path(self) -> Path:
        return self.decision_log_dir or self.data_dir / "decision-log"

    @property
    def archive_path(self) -> Path:
        return self.archive_dir or self.data_dir / "archive"
