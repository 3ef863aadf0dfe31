# ruff: noqa: F811  (the API fixtures are imported by name, then asked for)
"""Outbound webhooks end to end: endpoints over the API, a real HTTP receiver, real sends.

The receiver (:mod:`tests.support.webhooks`) is a threaded
``http.server`` on 127.0.0.1 that records every request and answers
scripted status codes; 127.0.0.0/8 is allowed through
``COURRIER_WEBHOOK_ALLOWED_NETWORKS`` as an operator would allow a LAN.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import datetime, timedelta
from ipaddress import ip_network
from typing import Any

import pytest
from pydantic import SecretStr
from sqlalchemy import event, select
from sqlalchemy.engine import Engine
from standardwebhooks import Webhook
from starlette.testclient import TestClient

from courrier.api.app import create_app
from courrier.clock import ManualClock, utcnow
from courrier.domain import webhook_signing
from courrier.engine.dispatcher import Dispatcher
from courrier.engine.webhook_delivery import WebhookDeliverer
from courrier.engine.webhook_urls import target
from courrier.settings import Settings
from courrier.store import webhooks
from courrier.store.schema import webhook_endpoints
from tests.api.conftest import Caller, alice, bob, caller_for, client  # noqa: F401
from tests.scenarios.flow import dispatcher  # noqa: F401
from tests.support import factories
from tests.support.services import free_port
from tests.support.smtp import SmtpServer
from tests.support.webhooks import Receiver, add_endpoint, deliveries


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"webhook_allowed_networks": "127.0.0.0/8"})


@pytest.fixture
def clock() -> ManualClock:
    """Near the real time: the standardwebhooks library refuses timestamps 5 minutes off."""
    return ManualClock(utcnow().replace(microsecond=0))


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver().start()
    yield server
    server.stop()


@pytest.fixture
def deliverer(engine: Engine, settings: Settings, clock: ManualClock) -> Iterator[WebhookDeliverer]:
    worker = WebhookDeliverer(engine, settings, clock=clock, worker_id="hooks-a")
    yield worker
    worker.close()


def send_one(engine: Engine, caller: Caller, clock: ManualClock, dispatcher: Dispatcher) -> int:
    """A message of ``caller``'s tenant, sent through the SMTP recorder; its id."""
    with engine.begin() as conn:
        [message_id] = factories.insert_messages(conn, caller.tenant.id, 1, now=clock())
    assert dispatcher.run_once() == 1
    return message_id


def test_a_sent_message_is_posted_signed_so_that_standard_webhooks_libraries_verify_it(
    engine: Engine,
    alice: Caller,
    clock: ManualClock,
    dispatcher: Dispatcher,
    deliverer: WebhookDeliverer,
    receiver: Receiver,
) -> None:
    endpoint = add_endpoint(alice, receiver.url, description="booking platform")
    assert endpoint["secret"].startswith("whsec_")
    message_id = send_one(engine, alice, clock, dispatcher)
    assert deliverer.run_once() == 1
    [request] = receiver.requests
    assert request.path == "/hooks/courrier"
    assert request.headers["content-type"] == "application/json"
    payload = Webhook(endpoint["secret"]).verify(request.body, request.headers)
    assert payload["type"] == "message.sent"
    assert payload["data"]["message_id"] == message_id
    assert payload["data"]["tenant"] == alice.tenant.id
    assert payload["data"]["status"] == "sent"
    assert payload["data"]["address"] == "member0@example.test"
    webhook_id, timestamp = request.headers["webhook-id"], request.headers["webhook-timestamp"]
    assert int(timestamp) == int(clock().timestamp())
    assert webhook_signing.verify(
        endpoint["secret"],
        webhook_id,
        int(timestamp),
        request.body,
        request.headers["webhook-signature"],
    )
    [delivery] = deliveries(alice, endpoint["id"])
    assert webhook_id == f"msg_{delivery['id']}"
    assert (delivery["status"], delivery["attempts"], delivery["last_status_code"]) == (
        "delivered",
        1,
        200,
    )
    assert delivery["delivered_at"] is not None
    assert [a["status_code"] for a in delivery["attempts_log"]] == [200]
    assert deliverer.run_once() == 0


def test_a_receiver_answering_500_then_200_gets_the_same_webhook_again_after_the_backoff(
    engine: Engine,
    alice: Caller,
    clock: ManualClock,
    dispatcher: Dispatcher,
    deliverer: WebhookDeliverer,
    receiver: Receiver,
) -> None:
    endpoint = add_endpoint(alice, receiver.url)
    send_one(engine, alice, clock, dispatcher)
    receiver.codes = [500]
    assert deliverer.run_once() == 1
    [delivery] = deliveries(alice, endpoint["id"])
    assert (delivery["status"], delivery["attempts"], delivery["last_status_code"]) == (
        "pending",
        1,
        500,
    )
    assert delivery["last_error"] == "answered 500: boom"
    retry_in = (
        datetime.fromisoformat(delivery["next_attempt_at"]) - clock()
    ).total_seconds()  # first retry: 5 s ±20 %
    assert 4 <= retry_in <= 6
    assert deliverer.run_once() == 0  # not before its time
    clock.advance(timedelta(seconds=6))
    assert deliverer.run_once() == 1
    [delivery] = deliveries(alice, endpoint["id"])
    assert (delivery["status"], delivery["attempts"], delivery["last_status_code"]) == (
        "delivered",
        2,
        200,
    )
    assert [(a["status_code"], a["error"]) for a in delivery["attempts_log"]] == [
        (500, "answered 500: boom"),
        (200, None),
    ]
    first, second = receiver.requests
    assert first.headers["webhook-id"] == second.headers["webhook-id"]
    assert first.body == second.body
    assert int(second.headers["webhook-timestamp"]) == int(first.headers["webhook-timestamp"]) + 6
    Webhook(endpoint["secret"]).verify(second.body, second.headers)


def test_a_receiver_that_always_fails_gets_max_attempts_and_the_delivery_is_failed(
    engine: Engine,
    settings: Settings,
    alice: Caller,
    clock: ManualClock,
    dispatcher: Dispatcher,
    receiver: Receiver,
) -> None:
    endpoint = add_endpoint(alice, receiver.url)
    send_one(engine, alice, clock, dispatcher)
    receiver.codes = [503] * 10
    worker = WebhookDeliverer(
        engine, settings.model_copy(update={"webhook_max_attempts": 3}), clock=clock
    )
    try:
        for _ in range(5):
            worker.run_once()
            clock.advance(timedelta(hours=11))
    finally:
        worker.close()
    assert len(receiver.requests) == 3
    [delivery] = deliveries(alice, endpoint["id"])
    assert (delivery["status"], delivery["attempts"], delivery["last_status_code"]) == (
        "failed",
        3,
        503,
    )
    assert delivery["last_error"] == "gave up after 3 attempts: answered 503: boom"
    assert delivery["next_attempt_at"] is None
    assert [a["status_code"] for a in delivery["attempts_log"]] == [503, 503, 503]


def test_a_closed_port_and_a_slow_receiver_are_failed_attempts_with_the_reason(
    engine: Engine,
    settings: Settings,
    alice: Caller,
    clock: ManualClock,
    receiver: Receiver,
) -> None:
    closed = add_endpoint(alice, f"http://127.0.0.1:{free_port()}/hooks")
    slow = add_endpoint(alice, receiver.url)
    receiver.delay = 1.0
    with engine.begin() as conn:
        webhooks.enqueue(
            conn, [webhooks.WebhookEvent(alice.tenant.id, "message.sent", None)], clock()
        )
    worker = WebhookDeliverer(
        engine, settings.model_copy(update={"webhook_timeout": 0.3}), clock=clock
    )
    try:
        assert worker.run_once() == 2
    finally:
        worker.close()
    [refused] = deliveries(alice, closed["id"])
    assert refused["status"] == "pending"
    assert refused["last_status_code"] is None
    assert refused["last_error"].startswith("could not post: ConnectError")
    [timed_out] = deliveries(alice, slow["id"])
    assert timed_out["status"] == "pending"
    assert timed_out["last_error"] == "no answer within 0.3 s"
    assert 250 <= timed_out["attempts_log"][0]["duration_ms"] < 1000


def test_event_types_choose_what_each_endpoint_receives(
    engine: Engine,
    alice: Caller,
    clock: ManualClock,
    dispatcher: Dispatcher,
    deliverer: WebhookDeliverer,
    receiver: Receiver,
    smtp_server: SmtpServer,
) -> None:
    failures = add_endpoint(alice, receiver.url + "/failed", event_types=["message.failed"])
    sends = add_endpoint(alice, receiver.url + "/sent", event_types=["message.sent"])
    everything = add_endpoint(alice, receiver.url + "/all")
    with engine.begin() as conn:
        factories.insert_messages(conn, alice.tenant.id, 2, now=clock())
    smtp_server.script("550 5.1.1 No such user")
    assert dispatcher.run_once() == 2
    assert deliverer.run_once() == 4
    received = sorted((r.path, r.json["type"]) for r in receiver.requests)
    assert received == [
        ("/hooks/courrier/all", "message.failed"),
        ("/hooks/courrier/all", "message.sent"),
        ("/hooks/courrier/failed", "message.failed"),
        ("/hooks/courrier/sent", "message.sent"),
    ]
    assert [d["event_type"] for d in deliveries(alice, failures["id"])] == ["message.failed"]
    assert [d["event_type"] for d in deliveries(alice, sends["id"])] == ["message.sent"]
    assert len(deliveries(alice, everything["id"])) == 2


def test_enqueue_is_one_query_when_the_tenant_has_no_endpoint(
    engine: Engine, alice: Caller, bob: Caller, clock: ManualClock
) -> None:
    add_endpoint(bob, "http://127.0.0.1:9/hooks", event_types=["address.blocked"])
    statements: list[str] = []

    def count(*args: Any) -> None:
        statements.append(args[2])

    events = [
        webhooks.WebhookEvent(alice.tenant.id, "message.sent", None, {"status": "sent"}),
        webhooks.WebhookEvent(bob.tenant.id, "message.sent", None, {"status": "sent"}),
    ]
    event.listen(engine, "before_cursor_execute", count)
    try:
        with engine.begin() as conn:
            assert webhooks.enqueue(conn, events, clock()) == 0
            assert webhooks.enqueue(conn, [], clock()) == 0
    finally:
        event.remove(engine, "before_cursor_execute", count)
    assert len([s for s in statements if "webhook" in s]) == 1


def test_endpoints_and_deliveries_stay_with_their_tenant(
    engine: Engine,
    alice: Caller,
    bob: Caller,
    clock: ManualClock,
    dispatcher: Dispatcher,
    deliverer: WebhookDeliverer,
    receiver: Receiver,
) -> None:
    mine = add_endpoint(alice, receiver.url + "/alpha")
    theirs = add_endpoint(bob, receiver.url + "/bravo")
    send_one(engine, alice, clock, dispatcher)
    assert deliverer.run_once() == 1
    assert [r.path for r in receiver.requests] == ["/hooks/courrier/alpha"]
    assert [e["id"] for e in bob.get("/v1/webhooks").json()] == [theirs["id"]]
    assert deliveries(bob, theirs["id"]) == []
    for response in (
        bob.get(f"/v1/webhooks/{mine['id']}/deliveries"),
        bob.post(f"/v1/webhooks/{mine['id']}/test"),
        bob.client.delete(f"/v1/webhooks/{mine['id']}", headers=bob.headers),
    ):
        assert response.status_code == 404, response.text
        assert response.json()["error"]["code"] == "not_found"
    assert len(deliveries(alice, mine["id"])) == 1


@pytest.mark.parametrize("endpoint_id", ["999999", str(2**63 - 1)])
def test_unknown_endpoint_ids_are_404(alice: Caller, endpoint_id: str) -> None:
    for response in (
        alice.get(f"/v1/webhooks/{endpoint_id}/deliveries"),
        alice.post(f"/v1/webhooks/{endpoint_id}/test"),
        alice.client.delete(f"/v1/webhooks/{endpoint_id}", headers=alice.headers),
    ):
        assert response.status_code == 404, response.text


def test_a_forged_cursor_is_a_422_naming_it(alice: Caller, receiver: Receiver) -> None:
    endpoint = add_endpoint(alice, receiver.url)
    response = alice.get(f"/v1/webhooks/{endpoint['id']}/deliveries", params={"cursor": "nope"})
    assert response.status_code == 422
    assert response.json()["error"]["field"] == "cursor"


@pytest.mark.parametrize(
    ("url", "words"),
    [
        ("http://10.0.0.5/hooks", "10.0.0.5, a private address"),
        ("http://169.254.169.254/latest/meta-data", "a link-local address"),
        ("http://192.168.1.20:8080/hooks", "a private address"),
        ("http://[::1]/hooks", "::1, a loopback address"),
        ("http://0.0.0.0/hooks", "an unspecified address"),
        ("ftp://example.org/hooks", "starts with https://"),
        ("https://user:secret@example.org/hooks", "no user name or password"),
        ("https:///hooks", "names no host"),
        ("https://no-such-host.invalid/hooks", "does not resolve"),
    ],
)
def test_a_url_courrier_may_not_post_to_is_a_422_on_url(
    alice: Caller, url: str, words: str
) -> None:
    response = alice.post("/v1/webhooks", json={"url": url})
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["field"] == "url"
    assert words in error["message"]
    assert alice.get("/v1/webhooks").json() == []


def test_loopback_is_refused_unless_the_operator_allows_its_network(
    engine: Engine, settings: Settings, clock: ManualClock, alice: Caller, receiver: Receiver
) -> None:
    strict = settings.model_copy(update={"webhook_allowed_networks": ""})
    with TestClient(create_app(strict, engine=engine, clock=clock)) as other:
        response = other.post("/v1/webhooks", json={"url": receiver.url}, headers=alice.headers)
    assert response.status_code == 422
    assert response.json()["error"]["field"] == "url"
    assert response.json()["error"]["message"] == (
        "url: 127.0.0.1 resolves to 127.0.0.1, a loopback address; "
        "an operator can allow it with COURRIER_WEBHOOK_ALLOWED_NETWORKS"
    )
    assert add_endpoint(alice, receiver.url)["url"] == receiver.url  # allowed: 127.0.0.0/8


def test_the_address_is_checked_again_before_each_post(
    engine: Engine, settings: Settings, clock: ManualClock, alice: Caller, receiver: Receiver
) -> None:
    endpoint = add_endpoint(alice, receiver.url)
    alice.post(f"/v1/webhooks/{endpoint['id']}/test")
    strict = settings.model_copy(update={"webhook_allowed_networks": ""})
    worker = WebhookDeliverer(engine, strict, clock=clock)
    try:
        assert worker.run_once() == 1
    finally:
        worker.close()
    assert receiver.requests == []
    [delivery] = deliveries(alice, endpoint["id"])
    assert delivery["status"] == "pending"
    assert "COURRIER_WEBHOOK_ALLOWED_NETWORKS" in delivery["last_error"]


def test_an_unknown_event_type_is_a_422_naming_its_place(alice: Caller, receiver: Receiver) -> None:
    body = {"url": receiver.url, "event_types": ["message.sent", "message.exploded"]}
    response = alice.post("/v1/webhooks", json=body)
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["field"] == "event_types.1"
    assert "'message.exploded' is not an event type" in error["message"]


def test_the_secret_is_shown_once_and_stored_encrypted(
    engine: Engine, alice: Caller, receiver: Receiver
) -> None:
    created = add_endpoint(alice, receiver.url, event_types=["message.bounced"])
    [listed] = alice.get("/v1/webhooks").json()
    assert "secret" not in listed
    assert listed["event_types"] == ["message.bounced"]
    with engine.connect() as conn:
        stored = conn.execute(select(webhook_endpoints.c.secret_encrypted)).scalar_one()
    assert created["secret"] not in stored
    assert created["secret"].removeprefix("whsec_") not in stored


def test_a_test_event_reaches_the_endpoint_whatever_its_types(
    alice: Caller, deliverer: WebhookDeliverer, receiver: Receiver
) -> None:
    endpoint = add_endpoint(alice, receiver.url, event_types=["address.blocked"])
    response = alice.post(f"/v1/webhooks/{endpoint['id']}/test")
    assert response.status_code == 202
    assert deliverer.run_once() == 1
    [request] = receiver.requests
    payload = Webhook(endpoint["secret"]).verify(request.body, request.headers)
    assert payload["type"] == "webhook.test"
    assert payload["data"]["tenant"] == alice.tenant.id
    assert deliveries(alice, endpoint["id"])[0]["id"] == response.json()["delivery_id"]


def test_a_crashed_workers_delivery_is_taken_over_after_its_lease(
    engine: Engine,
    alice: Caller,
    clock: ManualClock,
    deliverer: WebhookDeliverer,
    receiver: Receiver,
) -> None:
    endpoint = add_endpoint(alice, receiver.url)
    alice.post(f"/v1/webhooks/{endpoint['id']}/test")
    with engine.begin() as conn:  # a worker claims, then dies before posting
        [claimed] = webhooks.claim_due(
            conn,
            now=clock(),
            worker_id="dead",
            lease_until=clock() + timedelta(seconds=60),
            limit=10,
        )
    assert deliverer.run_once() == 0
    clock.advance(timedelta(seconds=61))
    assert deliverer.run_once() == 1
    [delivery] = deliveries(alice, endpoint["id"])
    assert (delivery["id"], delivery["status"], delivery["attempts"]) == (
        claimed.id,
        "delivered",
        2,
    )
    assert len(delivery["attempts_log"]) == 1
    assert len(receiver.requests) == 1
    with engine.begin() as conn:  # the dead worker's late record changes nothing
        assert not webhooks.record_attempt(
            conn,
            claimed.id,
            worker_id="dead",
            at=clock(),
            status_code=500,
            error="late",
            duration_ms=1,
            status="pending",
            next_attempt_at=clock(),
        )


def test_deliveries_page_newest_first_and_go_with_their_endpoint(
    alice: Caller, receiver: Receiver
) -> None:
    endpoint = add_endpoint(alice, receiver.url)
    ids = [
        alice.post(f"/v1/webhooks/{endpoint['id']}/test").json()["delivery_id"] for _ in range(3)
    ]
    response = alice.get(f"/v1/webhooks/{endpoint['id']}/deliveries", params={"limit": 2})
    page = response.json()
    assert [d["id"] for d in page["items"]] == [ids[2], ids[1]]
    rest = deliveries(alice, endpoint["id"], limit=2, cursor=page["next"])
    assert [d["id"] for d in rest] == [ids[0]]
    response = alice.client.delete(f"/v1/webhooks/{endpoint['id']}", headers=alice.headers)
    assert response.status_code == 204
    assert alice.get("/v1/webhooks").json() == []
    assert alice.get(f"/v1/webhooks/{endpoint['id']}/deliveries").status_code == 404


def test_a_secret_that_no_longer_decrypts_is_a_failed_attempt_saying_so(
    engine: Engine, settings: Settings, clock: ManualClock, alice: Caller, receiver: Receiver
) -> None:
    endpoint = add_endpoint(alice, receiver.url)
    alice.post(f"/v1/webhooks/{endpoint['id']}/test")
    rekeyed = settings.model_copy(update={"secret_key": SecretStr("another-secret-key")})
    worker = WebhookDeliverer(engine, rekeyed, clock=clock)
    try:
        assert worker.run_once() == 1
    finally:
        worker.close()
    assert receiver.requests == []
    [delivery] = deliveries(alice, endpoint["id"])
    assert delivery["last_error"] == (
        "the endpoint's secret cannot be decrypted (the encryption key changed); "
        "create the endpoint again"
    )


def test_an_address_event_with_a_time_in_its_data_is_posted_as_plain_json(
    engine: Engine,
    alice: Caller,
    clock: ManualClock,
    deliverer: WebhookDeliverer,
    receiver: Receiver,
) -> None:
    endpoint = add_endpoint(alice, receiver.url, event_types=["address.blocked"])
    blocked = webhooks.WebhookEvent(
        alice.tenant.id,
        "address.blocked",
        None,
        {"address": "gone@example.org", "blocked_at": clock(), "error_count": 12},
    )
    with engine.begin() as conn:
        assert webhooks.enqueue(conn, [blocked], clock()) == 1
    assert deliverer.run_once() == 1
    payload = Webhook(endpoint["secret"]).verify(
        receiver.requests[0].body, receiver.requests[0].headers
    )
    assert payload == {
        "type": "address.blocked",
        "timestamp": clock().isoformat(),
        "data": {
            "message_id": None,
            "tenant": alice.tenant.id,
            "address": "gone@example.org",
            "blocked_at": clock().isoformat(),
            "error_count": 12,
        },
    }


def test_the_post_goes_to_the_checked_address_under_the_endpoints_host_name(
    alice: Caller, deliverer: WebhookDeliverer, receiver: Receiver
) -> None:
    port = receiver.server.server_address[1]
    endpoint = add_endpoint(alice, f"http://localhost:{port}/hooks")
    alice.post(f"/v1/webhooks/{endpoint['id']}/test")
    assert deliverer.run_once() == 1
    [request] = receiver.requests
    assert request.headers["host"] == f"localhost:{port}"
    assert request.headers["user-agent"] == "Courrier-Webhooks/1"


def test_an_https_url_is_reached_at_its_checked_address_with_its_name_for_tls() -> None:
    networks = (ip_network("127.0.0.0/8"),)
    where = target("https://localhost/hooks?venue=3", networks)
    assert where.url == "https://127.0.0.1:443/hooks?venue=3"
    assert where.host_header == "localhost"
    assert where.extensions == {"sni_hostname": "localhost"}
    assert target("https://localhost:8443/", networks).host_header == "localhost:8443"


def test_two_workers_side_by_side_post_each_delivery_once(
    engine: Engine, settings: Settings, alice: Caller, clock: ManualClock, receiver: Receiver
) -> None:
    endpoint = add_endpoint(alice, receiver.url)
    for _ in range(30):
        alice.post(f"/v1/webhooks/{endpoint['id']}/test")
    small = settings.model_copy(update={"webhook_batch_size": 3})
    made = [WebhookDeliverer(engine, small, clock=clock, worker_id=f"w{n}") for n in range(2)]

    def work(worker: WebhookDeliverer) -> None:
        while worker.run_once():
            pass

    threads = [threading.Thread(target=work, args=(worker,)) for worker in made]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
    finally:
        for worker in made:
            worker.close()
    ids = [r.headers["webhook-id"] for r in receiver.requests]
    assert len(ids) == len(set(ids)) == 30
    statuses = {d["status"] for d in deliveries(alice, endpoint["id"], limit=100)}
    assert statuses == {"delivered"}
