"""GET /healthz, GET /metrics and the OpenAPI description."""

from __future__ import annotations

from starlette.testclient import TestClient

from courrier.api.app import create_app
from courrier.settings import Settings
from courrier.store.db import create_db_engine
from tests.api.conftest import Caller, booking, member
from tests.support.services import free_port


def test_healthz_is_ok_when_the_database_answers(client: TestClient) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "database": "ok"}


def test_healthz_is_503_when_the_database_is_unreachable(settings: Settings) -> None:
    unreachable = create_db_engine(f"postgresql://postgres@127.0.0.1:{free_port()}/nowhere")
    with TestClient(create_app(settings, engine=unreachable)) as client:
        response = client.get("/healthz")
    assert response.status_code == 503
    assert response.json()["error"]["code"] == "unavailable"
    unreachable.dispose()


def test_metrics_count_messages_per_status_at_scrape(alice: Caller) -> None:
    alice.put("/v1/contacts/m-17", json=member())
    alice.post("/v1/events", json=booking())
    response = alice.client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    lines = response.text.splitlines()
    assert 'courrier_messages{status="due"} 1.0' in lines
    assert 'courrier_messages{status="sent"} 0.0' in lines
    assert any(line.startswith("courrier_events_accepted_total") for line in lines)


def test_openapi_describes_every_route_with_typed_bodies(client: TestClient) -> None:
    schema = client.get("/openapi.json").json()
    paths = schema["paths"]
    for path in (
        "/v1/contacts/{external_id}",
        "/v1/events",
        "/v1/messages",
        "/v1/messages/{message_id}",
    ):
        assert path in paths
    assert "/captured" not in paths  # the browser page is not part of the API
    components = schema["components"]["schemas"]
    assert {"ContactIn", "EventIn", "EventAccepted", "MessagePage", "MessageDetail"} <= set(
        components
    )
    error = {"$ref": "#/components/schemas/ErrorOut"}
    for status in ("401", "422"):
        content = paths["/v1/events"]["post"]["responses"][status]["content"]
        assert content["application/json"]["schema"] == error
    assert "HTTPValidationError" not in components, "the 422 shape published is ours"
    assert paths["/v1/events"]["post"]["responses"]["202"]["content"]["application/json"][
        "schema"
    ] == {"$ref": "#/components/schemas/EventAccepted"}
