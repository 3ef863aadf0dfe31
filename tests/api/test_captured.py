"""Captured mail through the API (/v1/captured) and in the browser (/captured)."""

from __future__ import annotations

from collections.abc import Iterator

import icalendar
import pytest
from sqlalchemy.engine import Engine
from starlette.testclient import TestClient

from courrier.api.app import create_app
from courrier.channels.capture import LocalCapture
from courrier.channels.email import SmtpSender
from courrier.clock import ManualClock
from courrier.engine.dispatcher import Dispatcher
from courrier.settings import Settings
from tests.api.conftest import Caller, add_tenant, booking, member


@pytest.fixture
def capture_settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"smtp_url": None})


@pytest.fixture
def capture(engine: Engine) -> Iterator[LocalCapture]:
    local = LocalCapture(engine)
    local.start()
    yield local
    local.stop()


@pytest.fixture
def loopback(
    capture_settings: Settings, engine: Engine, clock: ManualClock
) -> Iterator[TestClient]:
    """A client calling from 127.0.0.1, as a browser on the same machine does."""
    app = create_app(capture_settings, engine=engine, clock=clock)
    with TestClient(app, client=("127.0.0.1", 40000)) as client:
        yield client


def send_due(engine: Engine, settings: Settings, capture: LocalCapture, clock: ManualClock) -> int:
    sender = SmtpSender(capture.target, pool_size=1, timeout=5.0)
    try:
        return Dispatcher(engine, settings, sender, clock=clock).run_once()
    finally:
        sender.close()


@pytest.fixture
def captured(
    loopback: TestClient,
    engine: Engine,
    capture_settings: Settings,
    capture: LocalCapture,
    clock: ManualClock,
) -> Caller:
    """Tenant Alpha, whose booking confirmation went into the local capture."""
    tenant, key = add_tenant(engine, clock, "Alpha")
    alpha = Caller(tenant, key, loopback)
    alpha.put("/v1/contacts/m-17", json=member())
    assert alpha.post("/v1/events", json=booking()).status_code == 202
    assert send_due(engine, capture_settings, capture, clock) == 1
    return alpha


def test_captured_mails_are_listed_for_their_tenant(captured: Caller) -> None:
    [mail] = captured.get("/v1/captured").json()["items"]
    assert mail["recipients"] == ["camille@example.org"]
    assert mail["envelope_from"]
    assert mail["subject"]


def test_a_captured_mail_shows_its_parts_and_its_invitation(captured: Caller) -> None:
    [summary] = captured.get("/v1/captured").json()["items"]
    mail = captured.get(f"/v1/captured/{summary['id']}").json()
    assert mail["text"] and mail["html"]
    assert ("Reply-To", "desk@alpha.example") in [tuple(h) for h in mail["headers"]]
    ics = captured.get(mail["ics_url"])
    assert ics.headers["content-type"].startswith("text/calendar")
    assert "attachment" in ics.headers["content-disposition"]
    calendar = icalendar.Calendar.from_ical(ics.content)
    assert calendar["METHOD"] == "REQUEST"
    raw = captured.get(mail["raw_url"])
    assert raw.headers["content-type"] == "message/rfc822"
    assert b"Message-ID:" in raw.content or b"Message-Id:" in raw.content


def test_another_tenant_sees_none_of_the_captured_mail(
    captured: Caller, engine: Engine, clock: ManualClock
) -> None:
    tenant, key = add_tenant(engine, clock, "Bravo")
    bravo = Caller(tenant, key, captured.client)
    [summary] = captured.get("/v1/captured").json()["items"]
    assert bravo.get("/v1/captured").json()["items"] == []
    for suffix in ("", "/raw", "/invite.ics", "/parts/0"):
        assert bravo.get(f"/v1/captured/{summary['id']}{suffix}").status_code == 404


def test_the_captured_page_lists_and_shows_mail_in_a_sandbox(captured: Caller) -> None:
    listing = captured.client.get("/captured")
    assert listing.status_code == 200
    assert "camille@example.org" in listing.text
    [summary] = captured.get("/v1/captured").json()["items"]
    page = captured.client.get(f"/captured/{summary['id']}")
    assert page.status_code == 200
    assert "default-src 'none'" in page.headers["content-security-policy"]
    assert '<iframe sandbox=""' in page.text
    assert "<script" not in page.text.lower()
    assert f"/captured/{summary['id']}/parts/" in page.text
    assert ".ics" in page.text


@pytest.mark.parametrize("host", ["203.0.113.9", "::ffff:203.0.113.9", "testclient"])
def test_the_captured_page_is_refused_to_other_machines(
    captured: Caller, capture_settings: Settings, engine: Engine, host: str
) -> None:
    with TestClient(create_app(capture_settings, engine=engine), client=(host, 5000)) as remote:
        assert remote.get("/captured").status_code == 403


@pytest.mark.parametrize("host", ["::1", "::ffff:127.0.0.1"])
def test_the_captured_page_is_served_to_this_machine_over_ipv6(
    captured: Caller, capture_settings: Settings, engine: Engine, host: str
) -> None:
    with TestClient(create_app(capture_settings, engine=engine), client=(host, 5000)) as local:
        assert local.get("/captured").status_code == 200


def test_captured_mail_is_not_served_when_mail_goes_to_an_smtp_server(
    alice: Caller, client: TestClient
) -> None:
    assert alice.get("/v1/captured").status_code == 404
    assert client.get("/captured").status_code == 404
