"""``POST /v1/messages``: a one-off message with Cc and Bcc, sent at once, followed up if asked.

The message is posted through the API and a dispatcher sends it to a real
SMTP server; what each recipient got is read from what the server received.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy.engine import Engine
from starlette.testclient import TestClient

from courrier.api.app import create_app
from courrier.clock import ManualClock
from courrier.engine import followups
from courrier.engine.dispatcher import Dispatcher
from courrier.engine.wakeup import Wakeup
from courrier.errors import ValidationError
from courrier.render.links import LinkSigner
from courrier.render.mime import OutgoingMail, build_mime
from courrier.settings import Settings
from tests.api.conftest import Caller, member
from tests.scenarios.flow import send_due
from tests.support.smtp import SmtpServer

TO = "camille@example.org"
CC = ["louis@example.org", "ana@example.org"]
BCC = ["archive@alpha.example"]


@pytest.fixture
def signer(settings: Settings) -> LinkSigner:
    """The installation's link signer: the worker's own makes the same links."""
    return LinkSigner(settings.signing_key(), settings.base_url)


def a_message(**changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "to": {"email": TO, "name": "Camille Martin"},
        "cc": CC,
        "bcc": BCC,
        "subject": "Your membership renewal",
        "text": "Your membership ends on 31 March; please renew it.",
        "html": "<p>Your membership ends on 31 March; please renew it.</p>",
        "idempotency_key": "renewal-camille-2026",
    }
    body.update(changes)
    return body


def test_a_direct_message_reaches_to_cc_and_bcc_with_no_bcc_header(
    alice: Caller, dispatcher: Dispatcher, smtp_server: SmtpServer
) -> None:
    response = alice.post("/v1/messages", json=a_message())
    assert response.status_code == 202, response.text
    assert response.json()["status"] == "due"
    send_due(dispatcher)

    (mail,) = smtp_server.received
    assert sorted(mail.recipients) == sorted([TO, *CC, *BCC])
    message = mail.message
    assert message["To"] == f"Camille Martin <{TO}>"
    assert [a.addr_spec for a in message["Cc"].addresses] == CC
    assert message["Bcc"] is None
    assert b"archive@alpha.example" not in mail.raw
    assert message["From"] == "Alpha <noreply@alpha.example>"
    assert message["Reply-To"] == "desk@alpha.example"
    assert message["Subject"] == "Your membership renewal"
    assert message["List-Unsubscribe"] is None
    assert "please renew it" in message.get_body(("plain",)).get_content()

    stored = alice.get(f"/v1/messages/{response.json()['id']}").json()
    assert (stored["kind"], stored["status"], stored["address"]) == ("direct", "sent", TO)


def test_the_same_idempotency_key_gives_the_same_message_once(
    alice: Caller, dispatcher: Dispatcher, smtp_server: SmtpServer
) -> None:
    first = alice.post("/v1/messages", json=a_message())
    again = alice.post("/v1/messages", json=a_message())
    assert again.status_code == 202
    assert again.json()["id"] == first.json()["id"]
    assert again.headers["Idempotent-Replayed"] == "true"
    send_due(dispatcher)
    assert len(smtp_server.received) == 1
    other = alice.post("/v1/messages", json=a_message(idempotency_key="renewal-2"))
    assert other.json()["id"] != first.json()["id"]


def test_a_contact_is_reached_at_their_address_even_with_everything_switched_off(
    alice: Caller, dispatcher: Dispatcher, smtp_server: SmtpServer
) -> None:
    assert alice.put("/v1/contacts/m-1", json=member(locale="en")).status_code in (200, 201)
    off = alice.put(
        "/v1/contacts/m-1/preferences", json={"preferences": [{"kind": "*", "enabled": False}]}
    )
    assert off.status_code == 200, off.text
    body = a_message(to={"contact": "m-1"}, cc=[], bcc=[])
    response = alice.post("/v1/messages", json=body)
    assert response.status_code == 202, response.text
    send_due(dispatcher)
    (mail,) = smtp_server.received
    assert mail.recipients == [TO]
    assert mail.message["To"] == f"Camille Martin <{TO}>"
    assert mail.message["Cc"] is None


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"subject": "Renewal\r\nBcc: victim@example.org"}, "subject"),
        ({"subject": "Renewal\nX-Injected: yes"}, "subject"),
        ({"to": {"email": TO, "name": "Camille\r\nBcc: victim@example.org"}}, "to.name"),
        ({"to": {"email": "camille@example.org\r\nBcc: victim@example.org"}}, "to.email"),
        ({"cc": ["louis@example.org", "not an address"]}, "cc.1"),
        ({"bcc": ["x@example.org\nCc: y@example.org"]}, "bcc.0"),
        ({"to": {"email": TO, "contact": "m-1"}}, "to"),
        ({"to": {"contact": "nobody"}}, "to.contact"),
        ({"follow_up": {"delays_minutes": [30]}}, "follow_up.delays_minutes"),
        ({"idempotency_key": ""}, "idempotency_key"),
    ],
)
def test_bad_input_is_refused_naming_the_field(
    alice: Caller, smtp_server: SmtpServer, changes: dict[str, Any], field: str
) -> None:
    response = alice.post("/v1/messages", json=a_message(**changes))
    assert response.status_code == 422, response.text
    assert response.json()["error"]["field"] == field
    assert alice.get("/v1/messages").json()["items"] == []


@pytest.mark.parametrize("cc_bcc", [True, False])
def test_follow_ups_of_a_direct_message_reach_cc_and_bcc_only_when_asked(
    alice: Caller,
    clock: ManualClock,
    dispatcher: Dispatcher,
    smtp_server: SmtpServer,
    signer: LinkSigner,
    cc_bcc: bool,
) -> None:
    policy = {"delays_minutes": [60, 1440], "cc_bcc": cc_bcc}
    response = alice.post("/v1/messages", json=a_message(follow_up=policy))
    assert response.status_code == 202, response.text
    send_due(dispatcher)
    clock.advance(timedelta(minutes=60))
    send_due(dispatcher)

    original, reminder = smtp_server.received
    assert reminder.message["Subject"] == "Reminder: Your membership renewal"
    assert "please renew it" in reminder.message.get_body(("plain",)).get_content()
    assert (
        signer.original(response.json()["id"])
        in reminder.message.get_body(("plain",)).get_content()
    )
    assert reminder.message["Bcc"] is None
    if cc_bcc:
        assert sorted(reminder.recipients) == sorted(original.recipients)
        assert [a.addr_spec for a in reminder.message["Cc"].addresses] == CC
    else:
        assert reminder.recipients == [TO]
        assert reminder.message["Cc"] is None

    with dispatcher.engine.begin() as conn:
        followups.stop_follow_ups(conn, [response.json()["id"]], "read", clock())
    clock.advance(timedelta(days=2))
    send_due(dispatcher)
    assert len(smtp_server.received) == 2


def test_a_key_shaped_like_a_follow_ups_is_a_message_of_its_own(
    alice: Caller, clock: ManualClock, dispatcher: Dispatcher, smtp_server: SmtpServer
) -> None:
    """``renewal:follow-up:1`` once named the first follow-up of ``renewal``: posting it
    answered that follow-up as a replay and sent nothing."""
    policy = {"delays_minutes": [60], "cc_bcc": False}
    first = alice.post("/v1/messages", json=a_message(follow_up=policy, cc=[], bcc=[]))
    send_due(dispatcher)  # the original leaves; its follow-up is planned
    follow_up = alice.get("/v1/messages", params={"status": "planned"}).json()["items"]
    assert len(follow_up) == 1

    key = "renewal-camille-2026:follow-up:1"
    other = alice.post("/v1/messages", json=a_message(idempotency_key=key, subject="Other"))
    assert other.status_code == 202, other.text
    assert "Idempotent-Replayed" not in other.headers
    assert other.json()["id"] not in (first.json()["id"], follow_up[0]["id"])
    send_due(dispatcher)
    assert [m.message["Subject"] for m in smtp_server.received] == [
        "Your membership renewal",
        "Other",
    ]
    again = alice.post("/v1/messages", json=a_message(idempotency_key=key, subject="Other"))
    assert again.json()["id"] == other.json()["id"]
    assert again.headers["Idempotent-Replayed"] == "true"


def test_a_cc_header_cannot_carry_a_line_break() -> None:
    """Rows written another way (a hand-made row, an older import) are refused when built."""
    mail = OutgoingMail(
        message_id="<1@alpha.example>",
        date=ManualClock()(),
        from_addr="noreply@alpha.example",
        to_addr=TO,
        subject="Hello",
        text="Hello",
        cc=("louis@example.org", "ana@example.org\r\nBcc: victim@example.org"),
    )
    with pytest.raises(ValidationError) as caught:
        build_mime(mail)
    assert caught.value.field == "cc.1"


def test_the_same_key_posted_at_once_from_many_clients_is_one_message(
    alice: Caller, dispatcher: Dispatcher, smtp_server: SmtpServer
) -> None:
    start = threading.Barrier(6)

    def post() -> Any:
        start.wait()
        return alice.post("/v1/messages", json=a_message())

    with ThreadPoolExecutor(6) as pool:
        answers = list(pool.map(lambda _: post(), range(6)))
    assert {a.status_code for a in answers} == {202}
    assert len({a.json()["id"] for a in answers}) == 1
    send_due(dispatcher)
    assert len(smtp_server.received) == 1


def test_a_direct_message_wakes_the_dispatcher_at_once(
    alice: Caller, settings: Settings, engine: Engine, clock: ManualClock
) -> None:
    wakeup = Wakeup()
    app = create_app(settings, engine=engine, clock=clock, wakeup=wakeup)
    with TestClient(app) as client:
        response = client.post("/v1/messages", json=a_message(), headers=alice.headers)
        assert response.status_code == 202, response.text
        assert wakeup.wait(0)
        again = client.post("/v1/messages", json=a_message(), headers=alice.headers)
        assert again.json()["id"] == response.json()["id"]
        assert not wakeup.wait(0)  # a replay has nothing new to send
