"""Prometheus metrics of one app (its own registry: two apps in a process never mix).

Exposed at ``GET /metrics``. Labels carry route templates, action ids, channels
and reasons, never a customer id.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest

#: Latency buckets (seconds), dense under 10 ms where the goal is.
LATENCY_BUCKETS = (
    0.0005, 0.001, 0.002, 0.003, 0.005, 0.0075, 0.01, 0.015, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
)  # fmt: skip


class ApiMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.latency = Histogram(
            "nba_request_seconds",
            "Request latency by endpoint (route template) and status.",
            ["endpoint", "method", "status"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.decisions = Counter(
            "nba_decisions_total",
            "Actions decided, by action and channel ('none' for do-nothing).",
            ["action", "channel"],
            registry=self.registry,
        )
        self.fallbacks = Counter(
            "nba_fallbacks_total",
            "Decisions answered by a fallback, by reason.",
            ["reason"],
            registry=self.registry,
        )
        self.events = Counter(
            "nba_events_total",
            "Events received, by outcome (accepted, duplicate, stale, rejected).",
            ["outcome"],
            registry=self.registry,
        )
        self.unknown = Counter(
            "nba_events_unknown_total",
            "Events accepted for a customer (a prospect) or product the engine did not know.",
            ["kind"],
            registry=self.registry,
        )
        self.model_reloads = Counter(
            "nba_model_swaps_total", "Model sets swapped in.", registry=self.registry
        )

    def render(self) -> bytes:
        return generate_latest(self.registry)
