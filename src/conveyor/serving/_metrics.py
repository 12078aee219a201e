"""Prometheus metrics of one server (its own registry, so several apps can live in one process).

Names and labels are documented in docs/serving.md; the monitoring dashboard reads them.
"""

from __future__ import annotations

from collections.abc import Mapping

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

NONE_LABEL = "none"
LATENCY_BUCKETS = (
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 1024, 4096)
CONTENT_TYPE = CONTENT_TYPE_LATEST


class ServerMetrics:
    """The counters, histograms and gauges ``GET /metrics`` exposes."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        labels = ("endpoint", "model_version", "variant")
        self.requests = Counter(
            "conveyor_requests",
            "Model and feedback requests by final HTTP status.",
            (*labels, "code"),
            registry=self.registry,
        )
        self.errors = Counter(
            "conveyor_request_errors",
            "Requests answered with an HTTP status of 400 or more.",
            (*labels, "code"),
            registry=self.registry,
        )
        self.model_errors = Counter(
            "conveyor_model_errors",
            "Requests answered 500 model_error: the model raised (also counted in request_errors).",
            labels,
            registry=self.registry,
        )
        self.input_warnings = Counter(
            "conveyor_input_warnings",
            "Feature values answered but flagged: unseen_category or out_of_range, per feature.",
            ("model_version", "feature", "kind"),
            registry=self.registry,
        )
        self.flagged_requests = Counter(
            "conveyor_flagged_requests",
            "Answered requests with at least one input warning.",
            labels,
            registry=self.registry,
        )
        self.latency = Histogram(
            "conveyor_request_latency_seconds",
            "Server-side latency of successful requests, in seconds.",
            labels,
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.feedback = Counter(
            "conveyor_feedback_events",
            "Feedback events (click, add_to_cart, purchase) by the version and variant that served.",
            ("event", "model_version", "variant"),
            registry=self.registry,
        )
        self.fallbacks = Counter(
            "conveyor_recommend_fallback",
            "Recommendations served from the popularity fallback (unknown users).",
            ("model_version", "variant"),
            registry=self.registry,
        )
        self.batch_rows = Histogram(
            "conveyor_batch_rows",
            "Rows per model call after micro-batching.",
            ("model_version",),
            buckets=BATCH_BUCKETS,
            registry=self.registry,
        )
        self.traffic_share = Gauge(
            "conveyor_traffic_share",
            "Current share of traffic per loaded model version.",
            ("model_version", "variant"),
            registry=self.registry,
        )
        self.log_written = Counter(
            "conveyor_request_log_rows_written",
            "Request-log records durably written.",
            ("kind",),
            registry=self.registry,
        )
        self.log_dropped = Counter(
            "conveyor_request_log_dropped",
            "Request-log records dropped because the writer fell behind or the disk failed.",
            ("kind",),
            registry=self.registry,
        )

    def observe(
        self, endpoint: str, version: str | None, variant: str | None, code: int, seconds: float | None
    ) -> None:
        """Count one finished request (latency only for successes)."""
        v, a = version or NONE_LABEL, variant or NONE_LABEL
        self.requests.labels(endpoint, v, a, str(code)).inc()
        if code >= 400:
            self.errors.labels(endpoint, v, a, str(code)).inc()
        elif seconds is not None:
            self.latency.labels(endpoint, v, a).observe(seconds)

    def count_warnings(
        self, endpoint: str, version: str | None, variant: str | None, warnings: list[dict[str, str]]
    ) -> None:
        """Count one answered request's input flags (each feature and kind once)."""
        v, a = version or NONE_LABEL, variant or NONE_LABEL
        self.flagged_requests.labels(endpoint, v, a).inc()
        for feature, kind in {(w["feature"], w["kind"]) for w in warnings}:
            self.input_warnings.labels(v, feature, kind).inc()

    def set_shares(self, shares: Mapping[str, tuple[str, float]]) -> None:
        """Replace the traffic gauges: version → (variant, share)."""
        self.traffic_share.clear()
        for version, (variant, share) in shares.items():
            self.traffic_share.labels(version, variant).set(share)

    def render(self) -> bytes:
        return generate_latest(self.registry)
