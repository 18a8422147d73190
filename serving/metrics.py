"""Prometheus metrics of one app (its own registry: two apps in a process never mix).

Exposed at ``GET /metrics``. Labels carry route templates, action ids, channels
and reasons, never a customer id.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from features.online.response_stats import ResponseCounts

#: Reads the response statistics per action (``None`` when they cannot be read).
StatsReader = Callable[[], Mapping[str, ResponseCounts] | None]

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
        self.outcomes = Counter(
            "nba_outcomes_total",
            "Outcome events by attribution: attributed to a decision, duplicate (that "
            "decision's outcome of that kind was counted) or unattributed (unknown or "
            "foreign decision id, or no send in the window).",
            ["result"],
            registry=self.registry,
        )

    def watch_stats(self, reader: StatsReader) -> None:
        """Expose the response statistics per action, read at each scrape."""
        self.registry.register(_StatsCollector(reader))

    def render(self) -> bytes:
        return generate_latest(self.registry)


class _StatsCollector(Collector):
    """Per action: decisions (decayed exposures), responses, the response rate with its
    90 % interval, and the evidence (effective exposures, the decayed count)."""

    def __init__(self, reader: StatsReader) -> None:
        self.reader = reader

    def describe(self) -> list[GaugeMetricFamily]:
        return []

    def collect(self) -> Iterator[GaugeMetricFamily]:
        try:
            by_action = self.reader()
        except Exception:  # a scrape must not fail with Redis
            by_action = None
        if by_action is None:
            return
        families = {
            name: GaugeMetricFamily(f"nba_action_{name}", doc, labels=["action"])
            for name, doc in (
                ("decisions", "Decisions sent per action (decayed by the stats half-life)."),
                ("responses", "Responses (clicks or purchases) attributed per action (decayed)."),
                ("purchases", "Purchases attributed per action (decayed)."),
                ("response_rate", "Responses per decision sent."),
                ("response_rate_low", "Lower end of the response rate's 90 % interval."),
                ("response_rate_high", "Upper end of the response rate's 90 % interval."),
                ("evidence", "Effective decisions behind the rate (decayed exposures)."),
                ("calibration", "Observed / scorer-predicted responses (posterior mean)."),
                ("margin", "Margin of the purchases attributed per action (decayed)."),
                ("margin_per_stated_value", "Attributed margin per stated value of a response."),
            )
        }
        for action, counts in sorted(by_action.items()):
            low, high = counts.rate_interval()
            values = {
                "decisions": counts.exposures,
                "responses": counts.responses,
                "purchases": counts.purchases,
                "response_rate": counts.rate,
                "response_rate_low": low,
                "response_rate_high": high,
                "evidence": counts.exposures,
                "calibration": counts.posterior().mean,
                "margin": counts.margin,
                "margin_per_stated_value": counts.value_ratio,
            }
            for name, value in values.items():
                families[name].add_metric([action], value)
        yield from families.values()
