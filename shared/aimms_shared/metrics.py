"""Prometheus metrics of one service, in its own registry (several apps may share a process in tests)."""

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


class Metrics:
    """The platform's standard metrics: events in and out, failures, outbox backlog, HTTP latency."""

    def __init__(self, service: str) -> None:
        self.registry = CollectorRegistry()
        labels = {"registry": self.registry}
        self.events_consumed = Counter(
            "aimms_events_consumed_total",
            "Events consumed, by outcome (processed, duplicate, ignored, dead_lettered).",
            ["topic", "event_type", "outcome"],
            **labels,
        )
        self.events_published = Counter(
            "aimms_events_published_total",
            "Events published to Kafka by the outbox relay.",
            ["topic", "event_type"],
            **labels,
        )
        self.events_failed = Counter(
            "aimms_events_failed_total",
            "Handler attempts that failed (retried or parked).",
            ["topic", "event_type"],
            **labels,
        )
        self.outbox_backlog = Gauge("aimms_outbox_backlog", "Events stored but not yet published.", **labels)
        self.http_latency = Histogram(
            "aimms_http_request_duration_seconds",
            "HTTP request latency.",
            ["method", "route", "status"],
            **labels,
        )
        self.service = service
