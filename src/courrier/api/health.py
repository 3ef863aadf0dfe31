"""``GET /healthz`` (is the database reachable) and ``GET /metrics`` (Prometheus text)."""

from __future__ import annotations

from collections.abc import Iterator

from fastapi import APIRouter
from fastapi.responses import JSONResponse, PlainTextResponse
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from courrier.api.auth import DbEngine
from courrier.api.errors import error_response
from courrier.api.models import Health
from courrier.domain.status import MessageStatus
from courrier.metrics import registry
from courrier.store.db import read_only
from courrier.store.history import count_by_status

router = APIRouter(tags=["operations"])


@router.get(
    "/healthz", response_model=Health, responses={503: {"description": "database unreachable"}}
)
def healthz(engine: DbEngine) -> Health | JSONResponse:
    """200 when the database answers, 503 otherwise."""
    try:
        with read_only(engine) as conn:
            conn.execute(text("SELECT 1"))
    except SQLAlchemyError:
        return error_response(503, "unavailable", "the database is not reachable")
    return Health(status="ok", database="ok")


class StatusGauge(Collector):
    """Messages per status, counted when scraped."""

    def __init__(self, counts: dict[str, int]) -> None:
        self.counts = counts

    def collect(self) -> Iterator[GaugeMetricFamily]:
        gauge = GaugeMetricFamily(
            "courrier_messages", "Messages per status, now.", labels=["status"]
        )
        for status in MessageStatus:
            gauge.add_metric([status.value], self.counts.get(status.value, 0))
        yield gauge


@router.get("/metrics", response_class=PlainTextResponse, summary="Prometheus metrics")
def metrics(engine: DbEngine) -> PlainTextResponse:
    """The process's counters and histograms, plus the messages per status."""
    scrape = CollectorRegistry(auto_describe=False)
    try:
        with read_only(engine) as conn:
            scrape.register(StatusGauge(count_by_status(conn)))
    except SQLAlchemyError:
        pass  # the counters are still worth serving; /healthz says the database is down
    body = generate_latest(registry) + generate_latest(scrape)
    return PlainTextResponse(body.decode(), media_type=CONTENT_TYPE_LATEST)
