# ruff: noqa: F811  (the API fixtures are imported by name, then asked for)
"""Webhooks to ``https://`` URLs, against a receiver speaking real TLS on loopback.

The receiver's certificates are made at test time by a private CA
(:mod:`tests.support.certificates`), which the operator trusts through
``COURRIER_WEBHOOK_CA_FILE``. The receiver is known as ``hooks.test``: the
test's resolver says 127.0.0.1 for it, as a LAN's DNS would, and only
127.0.0.1/32 is allowed through ``COURRIER_WEBHOOK_ALLOWED_NETWORKS``.
"""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.engine import Engine
from standardwebhooks import Webhook

from courrier.clock import ManualClock, utcnow
from courrier.engine.webhook_delivery import WebhookDeliverer
from courrier.errors import ConfigurationError
from courrier.settings import Settings
from tests.api.conftest import Caller, alice, caller_for, client  # noqa: F401
from tests.support.certificates import Authority, ServerFiles
from tests.support.webhooks import Receiver, add_endpoint, deliveries

#: names the test's resolver answers with 127.0.0.1
LOCAL_NAMES = ("hooks.test", "other.test")


@pytest.fixture
def lookups(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """``hooks.test`` resolves to 127.0.0.1; every lookup of it is listed, to count them."""
    real = socket.getaddrinfo
    asked: list[str] = []

    def getaddrinfo(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        if host in LOCAL_NAMES:
            asked.append(host)
            host = "127.0.0.1"
        return real(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return asked


@pytest.fixture
def authority() -> Authority:
    return Authority()


@pytest.fixture
def ca_file(tmp_path: Path, authority: Authority) -> Path:
    return authority.write(tmp_path / "private-ca.pem")


@pytest.fixture
def settings(settings: Settings, ca_file: Path) -> Settings:
    return settings.model_copy(
        update={"webhook_allowed_networks": "127.0.0.1/32", "webhook_ca_file": str(ca_file)}
    )


@pytest.fixture
def clock() -> ManualClock:
    """Near the real time: the standardwebhooks library refuses timestamps 5 minutes off."""
    return ManualClock(utcnow().replace(microsecond=0))


@pytest.fixture
def serve() -> Iterator[Callable[..., Receiver]]:
    """Starts receivers (``serve(files)`` for TLS, ``serve()`` for plain HTTP); stops them after."""
    started: list[Receiver] = []

    def start(files: ServerFiles | None = None, host: str = "127.0.0.1") -> Receiver:
        started.append(Receiver(host, tls=files).start())
        return started[-1]

    yield start
    for receiver in started:
        receiver.stop()


@pytest.fixture
def deliverer(engine: Engine, settings: Settings, clock: ManualClock) -> Iterator[WebhookDeliverer]:
    worker = WebhookDeliverer(engine, settings, clock=clock, worker_id="hooks-tls")
    yield worker
    worker.close()


def test_an_https_delivery_arrives_signed_at_the_checked_address_under_the_urls_name(
    tmp_path: Path,
    alice: Caller,
    authority: Authority,
    lookups: list[str],
    serve: Callable[..., Receiver],
    deliverer: WebhookDeliverer,
) -> None:
    receiver = serve(authority.issue(tmp_path, "hooks.test"))
    endpoint = add_endpoint(alice, receiver.url_for("hooks.test"))
    lookups.clear()
    alice.post(f"/v1/webhooks/{endpoint['id']}/test")
    assert deliverer.run_once() == 1
    [request] = receiver.requests
    payload = Webhook(endpoint["secret"]).verify(request.body, request.headers)
    assert payload["type"] == "webhook.test"
    assert payload["data"]["tenant"] == alice.tenant.id
    assert request.path == "/hooks/courrier"
    assert request.headers["host"] == f"hooks.test:{receiver.port}"
    assert receiver.server_names == ["hooks.test"]  # SNI: the certificate asked for
    assert lookups == ["hooks.test"]  # the check's lookup; the connection made none of its own
    [delivery] = deliveries(alice, endpoint["id"])
    assert (delivery["status"], delivery["last_status_code"], delivery["last_error"]) == (
        "delivered",
        200,
        None,
    )


def _another_name(authority: Authority, folder: Path) -> ServerFiles:
    return authority.issue(folder, "other.test")


def _expired(authority: Authority, folder: Path) -> ServerFiles:
    now = datetime.now(UTC)
    return authority.issue(
        folder, "hooks.test", not_before=now - timedelta(days=30), not_after=now - timedelta(days=1)
    )


def _untrusted_ca(_authority: Authority, folder: Path) -> ServerFiles:
    return Authority("Nobody's Trusted CA").issue(folder, "hooks.test")


@pytest.mark.parametrize(
    ("certificate", "reason"),
    [
        (
            _another_name,
            "TLS: certificate verify failed: "
            "hostname mismatch, certificate is not valid for 'hooks.test'",
        ),
        (_expired, "TLS: certificate verify failed: certificate has expired"),
        (_untrusted_ca, "TLS: certificate verify failed: unable to get local issuer certificate"),
    ],
    ids=["another-name", "expired", "untrusted-ca"],
)
def test_a_certificate_that_does_not_verify_is_a_failed_attempt_retried_never_posted(
    tmp_path: Path,
    alice: Caller,
    authority: Authority,
    clock: ManualClock,
    lookups: list[str],
    serve: Callable[..., Receiver],
    deliverer: WebhookDeliverer,
    certificate: Callable[[Authority, Path], ServerFiles],
    reason: str,
) -> None:
    receiver = serve(certificate(authority, tmp_path))
    endpoint = add_endpoint(alice, receiver.url_for("hooks.test"))
    alice.post(f"/v1/webhooks/{endpoint['id']}/test")
    assert deliverer.run_once() == 1
    [delivery] = deliveries(alice, endpoint["id"])
    assert (delivery["status"], delivery["last_status_code"], delivery["last_error"]) == (
        "pending",
        None,
        reason,
    )
    retry_in = (datetime.fromisoformat(delivery["next_attempt_at"]) - clock()).total_seconds()
    assert 4 <= retry_in <= 6  # the normal backoff: 5 s ±20 %
    clock.advance(timedelta(seconds=6))
    assert deliverer.run_once() == 1
    [delivery] = deliveries(alice, endpoint["id"])
    assert delivery["status"] == "pending"
    assert [(a["status_code"], a["error"]) for a in delivery["attempts_log"]] == [
        (None, reason),
        (None, reason),
    ]
    retry_in = (datetime.fromisoformat(delivery["next_attempt_at"]) - clock()).total_seconds()
    assert 240 <= retry_in <= 360  # then 5 min ±20 %
    assert len(receiver.handshakes_refused(2)) == 2  # two handshakes, both broken off
    assert receiver.requests == []  # nothing was sent over the connection, in clear or not


def test_an_https_url_served_in_plain_http_is_a_tls_failure_not_a_post_in_clear(
    alice: Caller, lookups: list[str], serve: Callable[..., Receiver], deliverer: WebhookDeliverer
) -> None:
    plain = serve()
    endpoint = add_endpoint(alice, f"https://hooks.test:{plain.port}/hooks")
    alice.post(f"/v1/webhooks/{endpoint['id']}/test")
    assert deliverer.run_once() == 1
    [delivery] = deliveries(alice, endpoint["id"])
    assert delivery["status"] == "pending"
    assert delivery["last_error"].startswith("TLS: "), delivery["last_error"]
    assert plain.requests == []


def test_a_redirect_to_an_address_not_allowed_is_a_failed_attempt_and_not_followed(
    tmp_path: Path,
    alice: Caller,
    authority: Authority,
    lookups: list[str],
    serve: Callable[..., Receiver],
    deliverer: WebhookDeliverer,
) -> None:
    inside = serve(host="127.0.0.2")  # loopback, but outside the allowed 127.0.0.1/32
    receiver = serve(authority.issue(tmp_path, "hooks.test"))
    receiver.codes = [(307, {"location": f"{inside.url}/admin"})]
    endpoint = add_endpoint(alice, receiver.url_for("hooks.test"))
    alice.post(f"/v1/webhooks/{endpoint['id']}/test")
    assert deliverer.run_once() == 1
    [delivery] = deliveries(alice, endpoint["id"])
    assert (delivery["status"], delivery["last_status_code"], delivery["last_error"]) == (
        "pending",
        307,
        "answered 307; redirects are not followed: give the final URL",
    )
    assert len(receiver.requests) == 1
    assert inside.requests == []


def test_a_private_ca_is_trusted_only_through_the_ca_file(
    tmp_path: Path,
    engine: Engine,
    settings: Settings,
    clock: ManualClock,
    alice: Caller,
    authority: Authority,
    lookups: list[str],
    serve: Callable[..., Receiver],
) -> None:
    receiver = serve(authority.issue(tmp_path, "hooks.test"))
    endpoint = add_endpoint(alice, receiver.url_for("hooks.test"))
    alice.post(f"/v1/webhooks/{endpoint['id']}/test")
    public_only = settings.model_copy(update={"webhook_ca_file": ""})
    worker = WebhookDeliverer(engine, public_only, clock=clock)
    try:
        assert worker.run_once() == 1
    finally:
        worker.close()
    assert receiver.requests == []
    [delivery] = deliveries(alice, endpoint["id"])
    assert delivery["last_error"] == (
        "TLS: certificate verify failed: unable to get local issuer certificate"
    )


def test_the_ca_file_is_read_once_when_the_deliverer_starts(
    tmp_path: Path,
    ca_file: Path,
    alice: Caller,
    authority: Authority,
    lookups: list[str],
    serve: Callable[..., Receiver],
    deliverer: WebhookDeliverer,
) -> None:
    ca_file.unlink()  # after the deliverer started: the trust it read stays
    receiver = serve(authority.issue(tmp_path, "hooks.test"))
    endpoint = add_endpoint(alice, receiver.url_for("hooks.test"))
    for _ in range(2):
        alice.post(f"/v1/webhooks/{endpoint['id']}/test")
    assert deliverer.run_once() == 2
    assert len(receiver.requests) == 2


@pytest.mark.parametrize(
    ("content", "words"),
    [(None, "No such file or directory"), (b"not a certificate\n", "no certificate")],
    ids=["missing", "no-certificate"],
)
def test_a_ca_file_that_cannot_be_loaded_stops_the_deliverer_naming_the_setting(
    tmp_path: Path,
    engine: Engine,
    settings: Settings,
    content: bytes | None,
    words: str,
) -> None:
    path = tmp_path / "bundle.pem"
    if content is not None:
        path.write_bytes(content)
    broken = settings.model_copy(update={"webhook_ca_file": str(path)})
    with pytest.raises(ConfigurationError) as raised:
        WebhookDeliverer(engine, broken)
    message = str(raised.value)
    assert message.startswith(f"COURRIER_WEBHOOK_CA_FILE: cannot load CA certificates from {path}")
    assert words in message
