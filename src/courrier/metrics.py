"""Prometheus metrics, in one registry served at ``GET /metrics``."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram

registry = CollectorRegistry(auto_describe=True)

events_accepted = Counter(
    "courrier_events_accepted",
    "Events accepted by intake (repeats not counted).",
    ["type"],
    registry=registry,
)
messages_planned = Counter(
    "courrier_messages_planned", "Messages planned by intake.", ["channel"], registry=registry
)
messages_sent = Counter(
    "courrier_messages_sent", "Messages accepted by the server.", ["channel"], registry=registry
)
send_failures = Counter(
    "courrier_send_failures",
    "Failed send attempts, by outcome (transient: retried; permanent: final).",
    ["channel", "outcome"],
    registry=registry,
)
leases_taken_over = Counter(
    "courrier_leases_taken_over",
    "Messages claimed again after another worker's lease expired.",
    registry=registry,
)
send_seconds = Histogram(
    "courrier_send_seconds",
    "Time to hand one message to its channel.",
    ["channel"],
    registry=registry,
    buckets=(0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 30),
)
