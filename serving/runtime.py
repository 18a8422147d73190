"""What the endpoints use, built once by the app's lifespan: :func:`start_runtime`.

It opens the Redis connection (embedded when no URL is configured), loads the
products, catalog, contact policy and experiment, opens the registry and the
decision log, and loads the champion models (rules decide when there are none).
"""

from __future__ import annotations

import contextlib
import datetime as dt
from dataclasses import dataclass
from typing import Any

from experiments.decision_log import GroupCommit
from serving.auth import ApiKeys
from serving.decider import Decider
from serving.decisions import (
    POPULAR_KEPT,
    DecisionService,
    DecisionSink,
    PopularProducts,
    refresh_popular,
)
from serving.ingest import EventIngestor
from serving.metrics import ApiMetrics
from serving.models import ModelManager, ScorerFactory, champion_models
from serving.redis_gate import RedisDownError, RedisGate
from serving.settings import Settings


@dataclass
class Runtime:
    """Everything the endpoints use, built by the lifespan."""

    settings: Settings
    keys: ApiKeys
    client: Any
    gate: RedisGate
    decisions: DecisionService
    ingestor: EventIngestor
    models: ModelManager
    metrics: ApiMetrics
    durability: str
    sink: Any
    #: the decision log's group commit: decisions awaited durable on the event loop
    commit: GroupCommit
    #: decides ``POST /v1/decisions`` in batches (``None``: in the thread pool)
    decider: Decider | None = None


def start_runtime(
    settings: Settings,
    keys: ApiKeys,
    client: Any | None,
    registry: Any | None,
    scorer_factory: ScorerFactory | None,
    sink: DecisionSink | None,
) -> Runtime:
    from features.online.connect import connect_redis
    from features.online.contact_state import RedisContactState
    from features.online.profiles import OnlineProfiles
    from features.online.redis_store import RedisOnlineStore
    from features.online.response_stats import RedisResponseStats, margin_rates
    from features.online.stock import StockLevels
    from serving.startup import (
        durability_of,
        load_catalog_setting,
        load_contact_policy_setting,
        load_experiment_setting,
        load_products,
        open_registry,
        warn_never_firing,
        with_offer_table,
    )

    if client is None:
        client = connect_redis(
            settings.redis_url,
            settings.data_dir,
            cluster=settings.redis_cluster,
            socket_timeout=settings.redis_timeout_seconds,
            durable=True,
            cluster_retries=settings.redis_cluster_retries,
        )
    store = RedisOnlineStore(client, prefix=settings.redis_prefix)
    products = load_products(settings.products_file)
    stats = (
        RedisResponseStats(
            client,
            settings.redis_prefix,
            half_life_days=settings.stats_half_life_days,
            window_hours=settings.attribution_window_hours,
            margin_rates=margin_rates(products),
            model=settings.stats_model,
        )
        if settings.response_stats
        else None
    )
    contact_policy = load_contact_policy_setting(settings.contact_policy_path)
    # a customer whose time zone is not known lives by the retailer's clock, not UTC's
    profiles = OnlineProfiles(store, products, default_timezone=contact_policy.timezone)
    contacts = RedisContactState(
        store,
        answer_seconds=int(settings.idempotency_hours * 3600),
        stats=stats,
        budget_zone=contact_policy.zone,  # budgets reset at the retailer's midnight
        # what a decision scheduled is kept (and read) only when a later one may replace it
        keeps_scheduled=contact_policy.supersede_lead_minutes is not None,
    )
    gate = RedisGate(settings.redis_retry_seconds)
    metrics = ApiMetrics()
    if stats is not None:
        watched = stats
        metrics.watch_stats(
            lambda: gate.call(lambda: watched.table(dt.datetime.now(dt.UTC)).by_action())
        )
    if registry is None:
        registry = open_registry(settings.tracking_uri)
    if sink is None:
        from experiments.decision_log import JsonlDecisionLog

        sink = JsonlDecisionLog(settings.decision_log_path, fsync=settings.decision_log_fsync)
    experiment = load_experiment_setting(settings.experiment_file)
    models = champion_models(
        registry, use_uplift_model=settings.use_uplift_model, scorer_factory=scorer_factory
    )
    if models.current.versions:
        metrics.model_reloads.inc()
    popular = PopularProducts(products["product_id"].astype(str).head(POPULAR_KEPT).tolist())
    with contextlib.suppress(RedisDownError):
        gate.call(lambda: refresh_popular(contacts, popular))
    catalog = with_offer_table(
        load_catalog_setting(settings.catalog_path), settings.offers_file, "NBA_OFFERS_PATH"
    )
    warn_never_firing(catalog, contact_policy, settings.catalog_path)
    decisions = DecisionService(
        stock=StockLevels(client, settings.redis_prefix, products),
        profiles=profiles,
        contacts=contacts,
        gate=gate,
        catalog=catalog,
        contact_policy=contact_policy,
        models=models,
        metrics=metrics,
        popular=popular,
        sink=sink,
        experiment=experiment,
        stats_refresh_seconds=settings.stats_refresh_seconds,
    )
    archive = None
    if settings.archive_fsync != "off":
        from features.archive import EventArchive

        archive = EventArchive(settings.archive_path, fsync=settings.archive_fsync)
    ingestor = EventIngestor(
        profiles=profiles,
        contacts=contacts,
        gate=gate,
        metrics=metrics,
        unknown_customers=settings.unknown_customers,
        max_future_seconds=settings.max_event_future_seconds,
        currency=settings.currency,
        archive=archive,
    )
    commit = GroupCommit(sink)
    return Runtime(
        settings=settings,
        keys=keys,
        client=client,
        gate=gate,
        decisions=decisions,
        ingestor=ingestor,
        models=models,
        metrics=metrics,
        durability=durability_of(client, gate),
        sink=sink,
        commit=commit,
        decider=Decider(decisions, settings.decision_batch, settings.decision_threads, commit)
        if settings.decide_in == "batches"
        else None,
    )


def refresh_popularity(runtime: Runtime) -> None:
    with contextlib.suppress(RedisDownError):
        runtime.gate.call(runtime.ingestor.flush_popularity)
    with contextlib.suppress(RedisDownError):
        runtime.gate.call(
            lambda: refresh_popular(runtime.decisions.contacts, runtime.decisions.popular)
        )
