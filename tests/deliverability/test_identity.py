"""Sending identity: VERP envelope sender, From and Reply-To, DKIM, Cc/Bcc, header injection."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

import dkim
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from hypothesis import HealthCheck, given
from hypothesis import settings as settings_
from hypothesis import strategies as st
from sqlalchemy.engine import Engine

from courrier.clock import ManualClock
from courrier.engine.dispatcher import Dispatcher
from courrier.engine.outgoing import Outgoing
from courrier.render.dkim import DkimSigner, load_private_key, public_key_record
from courrier.render.links import LinkSigner
from courrier.render.mime import OutgoingMail, build_mime
from courrier.settings import Settings
from tests.api.conftest import Caller, member
from tests.deliverability.conftest import a_booking, sent_mail
from tests.support import factories
from tests.support.smtp import SmtpServer


@pytest.fixture(scope="module")
def private_key() -> str:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    ).decode("ascii")


def dns_for(records: dict[str, str]):  # type: ignore[no-untyped-def]
    """A dnsfunc for dkimpy answering the published TXT records, nothing else."""

    def lookup(name: bytes, timeout: int = 5) -> bytes | None:
        found = records.get(name.decode("ascii").rstrip("."))
        return found.encode("ascii") if found is not None else None

    return lookup


def test_the_envelope_sender_is_a_verp_address_naming_the_message(
    club: Caller,
    clock: ManualClock,
    dispatcher: Dispatcher,
    smtp_server: SmtpServer,
    settings: Settings,
) -> None:
    message, received = sent_mail(club, clock, dispatcher, smtp_server)
    local, _, domain = received.envelope_from.partition("@")
    assert domain == "alpha.example"  # no bounce domain set: the From's
    assert local.startswith("bounces+")
    links = LinkSigner(settings.signing_key(), settings.base_url)
    assert links.verp_message_id(local.removeprefix("bounces+")) == message["id"]


def test_the_tenants_bounce_domain_receives_the_bounces(
    club: Caller, clock: ManualClock, dispatcher: Dispatcher, smtp_server: SmtpServer
) -> None:
    response = club.patch("/v1/tenant", json={"bounce_domain": "Bounces.Alpha.example"})
    assert response.status_code == 200, response.text
    _, received = sent_mail(club, clock, dispatcher, smtp_server)
    assert received.envelope_from.endswith("@bounces.alpha.example")
    assert received.message["From"].addresses[0].addr_spec == "noreply@alpha.example"


def test_mail_is_from_the_transactional_address_with_replies_to_the_tenants_own(
    club: Caller, clock: ManualClock, dispatcher: Dispatcher, smtp_server: SmtpServer
) -> None:
    _, received = sent_mail(club, clock, dispatcher, smtp_server)
    assert received.message["From"].addresses[0].addr_spec == "noreply@alpha.example"
    assert received.message["Reply-To"].addresses[0].addr_spec == "desk@alpha.example"
    assert "Return-Path" not in received.message  # the receiving server writes it from MAIL FROM


def test_a_dkim_signature_made_with_the_tenants_key_verifies(
    club: Caller,
    clock: ManualClock,
    dispatcher: Dispatcher,
    smtp_server: SmtpServer,
    private_key: str,
) -> None:
    body = {"dkim_selector": "mail2026", "dkim_private_key": private_key}
    response = club.patch("/v1/tenant", json=body)
    assert response.status_code == 200, response.text
    record = response.json()["dkim"]["public_key_dns_record"]
    _, received = sent_mail(club, clock, dispatcher, smtp_server)
    signature = received.message["DKIM-Signature"]
    assert "d=alpha.example" in signature and "s=mail2026" in signature
    assert "c=relaxed/relaxed" in signature
    for header in ("from", "to", "subject", "date", "message-id", "reply-to", "list-unsubscribe"):
        assert header in signature.split("h=")[1].split(";")[0].split(":")
    lookup = dns_for({"mail2026._domainkey.alpha.example": record})
    assert dkim.verify(received.raw, dnsfunc=lookup)
    tampered = received.raw.replace(b"Subject: ", b"Subject: Re: ", 1)
    assert not dkim.verify(tampered, dnsfunc=lookup)


def test_without_a_dkim_key_mail_leaves_unsigned(
    club: Caller, clock: ManualClock, dispatcher: Dispatcher, smtp_server: SmtpServer
) -> None:
    _, received = sent_mail(club, clock, dispatcher, smtp_server)
    assert "DKIM-Signature" not in received.message


def test_cc_and_bcc_get_the_mail_but_bcc_is_never_in_the_headers(
    club: Caller, clock: ManualClock, engine: Engine, settings: Settings
) -> None:
    message, _ = _planned(club, clock)
    row = factories.message(engine, message)
    row.update(cc_addrs=["desk@alpha.example"], bcc_addrs=["audit@alpha.example"])
    envelope = Outgoing(settings).build(row, datetime(2026, 3, 1, 9, tzinfo=UTC))
    assert envelope.recipients == [
        "camille@example.org",
        "desk@alpha.example",
        "audit@alpha.example",
    ]
    head = envelope.data.partition(b"\r\n\r\n")[0]
    assert b"audit@alpha.example" not in head
    assert b"\r\nCc: desk@alpha.example" in head


def _planned(club: Caller, clock: ManualClock) -> tuple[int, dict[str, object]]:
    from tests.scenarios.flow import post

    planned = post(club, clock, "booking.created", a_booking())
    [confirmation] = [m for m in planned if m["kind"] == "booking.confirmation"]
    return int(confirmation["id"]), confirmation


INJECTION = "Camille\r\nBcc: evil@x.example"


def test_a_contact_name_cannot_add_a_header_or_a_recipient(
    club: Caller, clock: ManualClock, dispatcher: Dispatcher, smtp_server: SmtpServer
) -> None:
    response = club.put(
        "/v1/contacts/m-1", json=member(name=INJECTION, email="camille@example.org")
    )
    if response.status_code == 422:  # refused at the door: nothing can be injected
        assert response.json()["error"]["field"] == "name"
        return
    assert response.status_code in (200, 201), response.text
    _, received = sent_mail(club, clock, dispatcher, smtp_server)
    assert received.recipients == ["camille@example.org"]
    assert "Bcc" not in received.message
    [to] = received.message["To"].addresses
    assert (to.addr_spec, to.display_name) == ("camille@example.org", "Camille Bcc: evil@x.example")
    assert b"\r\nBcc:" not in received.raw.partition(b"\r\n\r\n")[0]


def test_a_subject_cannot_add_a_header_or_a_recipient(
    club: Caller, clock: ManualClock, dispatcher: Dispatcher, smtp_server: SmtpServer
) -> None:
    subject = a_booking(resource={"id": "F-1", "name": "Hangar\r\nBcc: evil@x.example"})
    _, received = sent_mail(club, clock, dispatcher, smtp_server, subject=subject)
    assert received.recipients == ["camille@example.org"]
    assert "Bcc" not in received.message
    assert "\n" not in str(received.message["Subject"])
    head = received.raw.partition(b"\r\n\r\n")[0]
    assert b"\r\nBcc:" not in head


@settings_(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    subject=st.text(max_size=200),
    to_name=st.text(max_size=80),
    text=st.text(max_size=2000),
    html=st.one_of(st.none(), st.text(max_size=2000)),
)
def test_any_mail_courrier_builds_carries_a_signature_dkimpy_verifies(
    private_key: str, subject: str, to_name: str, text: str, html: str | None
) -> None:
    key = load_private_key(private_key)
    mail = OutgoingMail(
        message_id="<1@alpha.example>",
        date=datetime(2026, 3, 1, 9, tzinfo=UTC),
        from_addr="noreply@alpha.example",
        to_addr="camille@example.org",
        to_name=to_name,
        subject=subject,
        text=text,
        html=html,
        headers=(("List-Unsubscribe", "<http://courrier.test/u/abc>"),),
    )
    signed = DkimSigner(key, "alpha.example", "s1").sign(build_mime(mail))
    lookup = dns_for({"s1._domainkey.alpha.example": public_key_record(key)})
    assert dkim.verify(signed, dnsfunc=lookup)


def test_envelopes_built_from_many_threads_while_batches_load_are_all_whole_and_signed(
    club: Caller, clock: ManualClock, engine: Engine, settings: Settings, private_key: str
) -> None:
    """build() runs in the send threads while the next claim may call load()."""
    response = club.patch(
        "/v1/tenant", json={"dkim_selector": "s1", "dkim_private_key": private_key}
    )
    record = response.json()["dkim"]["public_key_dns_record"]
    message, _ = _planned(club, clock)
    row = factories.message(engine, message)
    outgoing = Outgoing(settings)
    with engine.connect() as conn:
        outgoing.load(conn, [club.tenant.id])
    stop = threading.Event()

    def reload() -> None:
        while not stop.is_set():
            with engine.connect() as conn:
                outgoing.load(conn, [club.tenant.id])

    loader = threading.Thread(target=reload)
    loader.start()
    try:
        with ThreadPoolExecutor(8) as pool:
            built = list(pool.map(lambda _: outgoing.build(row, clock()), range(64)))
    finally:
        stop.set()
        loader.join()
    lookup = dns_for({"s1._domainkey.alpha.example": record})
    assert {e.sender for e in built} == {built[0].sender}
    assert all(dkim.verify(e.data, dnsfunc=lookup) for e in built)
    assert all(b"List-Unsubscribe-Post" in e.data for e in built)
