"""What each kind's mail says, sent through the API to a real SMTP server, in the reader's language.

One case per kind of the default catalogue (the daily digest has its own
scenario in test_digest.py): the events that cause it are posted, the
clock is moved to its due time, the dispatcher sends it, and the mail the
SMTP server received is read back: its words in the recipient's language,
dates and times in the venue's zone (Paris, on the morning summer time
starts), the link to the preference page, and the calendar file parsed by
icalendar (one UID per subject, rising SEQUENCE, REQUEST or CANCEL).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from typing import Any

import icalendar
import pytest
from sqlalchemy.engine import Engine
from starlette.testclient import TestClient

from courrier.clock import ManualClock
from courrier.engine.dispatcher import Dispatcher
from courrier.store.tenants import create_api_key, create_tenant
from tests.api.conftest import Caller, member
from tests.support.smtp import SmtpServer

NOW = datetime(2026, 3, 20, 9, 0, tzinfo=UTC)
#: 09:30 to 11:00 in Paris on 29 March 2026, hours after clocks went forward (UTC+2)
START, END = "2026-03-29T07:30:00+00:00", "2026-03-29T09:00:00+00:00"
CAMILLE, NOOR, SAM = "camille@example.org", "noor@example.org", "sam@alpha.example"
FR_DAY = "dimanche 29 mars 2026 à 09:30"
NL_DAY = "zondag 29 maart 2026 om 09:30"
EN_DAY = "Sunday, March 29, 2026, 9:30\u202fAM"

BOOKING = {
    "type": "booking",
    "id": "B-7",
    "start": START,
    "end": END,
    "timezone": "Europe/Paris",
    "booker": "m-1",
    "manager": "s-1",
    "resource": {"id": "R-3", "name": "Court 3"},
    "status": "confirmed",
    "paid": False,
}
VISIT = {
    "type": "visit",
    "id": "V-3",
    "start": START,
    "end": END,
    "timezone": "Europe/Paris",
    "visitor": "m-1",
    "host": "s-1",
    "cohosts": [],
}
REQUEST = {
    "type": "request",
    "id": "Q-8",
    "title": "Fuite dans la douche",
    "category": "maintenance",
    "requester": "m-1",
    "assigned_manager": "s-1",
    "followers": ["m-2"],
    "status": "opened",
}
MEMBERSHIP = {
    "type": "membership",
    "id": "MS-1",
    "member": "m-1",
    "validity": {"type": "medical", "label": "Certificat médical", "expires_on": "2026-04-15"},
    "balance": "4.50",
    "threshold": "10.00",
    "currency": "EUR",
}
RESOURCE = {
    "type": "resource",
    "id": "R-3",
    "name": "Court 3",
    "timezone": "Europe/Paris",
    "subscribers": ["m-2"],
    "maintenance": {"start": "2026-03-30T06:00:00+00:00", "end": "2026-03-30T16:00:00+00:00"},
}


def moved(state: dict[str, Any], **changes: Any) -> dict[str, Any]:
    return {**state, **changes}


@dataclass(frozen=True)
class Case:
    """The events posted, who gets the kind's mail, the words it must hold, its calendar file."""

    kind: str
    events: list[tuple[str, dict[str, Any], dict[str, Any]]]
    to: str
    words: list[str]
    ics: tuple[str, int] | None = None  # method, sequence
    absent: list[str] = field(default_factory=list)


BOOKED = ("booking.created", BOOKING, {})
LATER = moved(BOOKING, start="2026-03-29T12:00:00+00:00", end="2026-03-29T13:00:00+00:00")
CASES = [
    Case(
        "booking.confirmation",
        [BOOKED],
        CAMILLE,
        ["Réservation confirmée", FR_DAY, "Court 3"],
        ("REQUEST", 0),
    ),
    Case(
        "booking.manager_notice",
        [BOOKED],
        SAM,
        ["New booking", EN_DAY, "Booked by: Camille Martin"],
    ),
    Case("booking.staff_copy", [BOOKED], SAM, ["Copy of a new booking", EN_DAY]),
    Case("booking.payment_reminder", [BOOKED], CAMILLE, ["pas encore réglée", FR_DAY]),
    Case("booking.reminder_24h", [BOOKED], CAMILLE, ["commence dans 24 heures", FR_DAY]),
    Case("booking.reminder_1h", [BOOKED], CAMILLE, ["commence dans une heure", FR_DAY]),
    Case("booking.reminder_30min", [BOOKED], CAMILLE, ["commence dans 30 minutes", FR_DAY]),
    Case("booking.checkin_notice", [BOOKED], CAMILLE, ["vous enregistrer", FR_DAY]),
    Case(
        "booking.modified",
        [BOOKED, ("booking.modified", LATER, {})],
        CAMILLE,
        [
            "Réservation modifiée",
            "Avant : " + FR_DAY + " \u2013 11:00",
            "Désormais : dimanche 29 mars 2026 à 14:00 \u2013 15:00",
        ],
        ("REQUEST", 1),
    ),
    Case(
        "booking.cancelled",
        [
            BOOKED,
            ("booking.cancelled", moved(BOOKING, status="cancelled"), {"reason": "Pluie annoncée"}),
        ],
        CAMILLE,
        ["Réservation annulée", "Pluie annoncée", FR_DAY],
        ("CANCEL", 1),
    ),
    Case(
        "booking.validated",
        [
            ("booking.created", moved(BOOKING, status="waiting"), {}),
            ("booking.validated", BOOKING, {}),
        ],
        CAMILLE,
        ["une place s\u2019est libérée", FR_DAY],
        ("REQUEST", 1),
    ),
    Case(
        "booking.approval_needed",
        [("booking.approval_requested", BOOKING, {})],
        SAM,
        ["awaits your approval", EN_DAY],
    ),
    Case(
        "booking.approved",
        [BOOKED, ("booking.approved", BOOKING, {})],
        CAMILLE,
        ["a été acceptée", FR_DAY],
    ),
    Case(
        "booking.rejected",
        [BOOKED, ("booking.rejected", BOOKING, {"reason": "Tournoi"})],
        CAMILLE,
        ["a été refusée", "Tournoi"],
    ),
    Case(
        "booking.participant_added",
        [
            BOOKED,
            (
                "booking.participant_added",
                moved(BOOKING, participants=["m-2"]),
                {"participant": "m-2"},
            ),
        ],
        NOOR,
        ["U bent toegevoegd aan een reservering", NL_DAY],
    ),
    Case(
        "booking.services_added",
        [BOOKED, ("booking.services_added", BOOKING, {"services": ["Location de raquette"]})],
        CAMILLE,
        ["Services : Location de raquette", FR_DAY],
    ),
    Case(
        "visit.created",
        [("visit.created", VISIT, {})],
        CAMILLE,
        ["Votre visite est prévue", FR_DAY],
        ("REQUEST", 0),
    ),
    Case(
        "visit.modified",
        [
            ("visit.created", VISIT, {}),
            (
                "visit.modified",
                moved(VISIT, start="2026-03-29T12:00:00+00:00", end="2026-03-29T13:00:00+00:00"),
                {},
            ),
        ],
        CAMILLE,
        ["Avant : " + FR_DAY, "Désormais : dimanche 29 mars 2026 à 14:00"],
        ("REQUEST", 1),
    ),
    Case(
        "visit.cancelled",
        [("visit.created", VISIT, {}), ("visit.cancelled", moved(VISIT, status="cancelled"), {})],
        CAMILLE,
        ["Votre visite est annulée", FR_DAY],
        ("CANCEL", 1),
    ),
    Case("visit.reminder_24h", [("visit.created", VISIT, {})], CAMILLE, ["dans 24 heures", FR_DAY]),
    Case(
        "visit.checkin",
        [("visit.created", VISIT, {}), ("visit.checked_in", VISIT, {})],
        SAM,
        ["Your visitor has checked in", "Visitor: Camille Martin"],
    ),
    Case(
        "request.new",
        [("request.created", REQUEST, {})],
        SAM,
        ["New request: Fuite dans la douche", "Category: maintenance"],
    ),
    Case(
        "request.assigned", [("request.assigned", REQUEST, {})], SAM, ["This request is now yours"]
    ),
    Case(
        "request.comment_public",
        [
            (
                "request.commented",
                REQUEST,
                {"visibility": "public", "author": "s-1", "text": "Le plombier passe lundi."},
            )
        ],
        CAMILLE,
        ["Nouveau commentaire", "De : Sam Rivera", "> Le plombier passe lundi."],
    ),
    Case(
        "request.comment_internal",
        [
            (
                "request.commented",
                REQUEST,
                {"visibility": "internal", "author": "m-2", "text": "Devis : 180 EUR"},
            )
        ],
        SAM,
        ["Internal note", "> Devis : 180 EUR"],
    ),
    Case(
        "request.follower_added",
        [("request.follower_added", REQUEST, {"follower": "m-2"})],
        NOOR,
        ["U volgt dit verzoek nu"],
    ),
    Case(
        "request.status_changed",
        [("request.status_changed", moved(REQUEST, status="resolved"), {})],
        CAMILLE,
        ["Demande résolue : Fuite dans la douche"],
    ),
    Case(
        "member.validity_expiring",
        [("member.validity_expiring", MEMBERSHIP, {})],
        SAM,
        ["Certificat médical expires on April 15, 2026"],
    ),
    Case(
        "member.balance_low",
        [("member.balance_low", MEMBERSHIP, {})],
        CAMILLE,
        ["Solde : 4,50\xa0€", "Seuil : 10,00\xa0€"],
    ),
    Case(
        "member.password_reset",
        [("member.password_reset", MEMBERSHIP, {"link": "https://club.example/reset/abc"})],
        CAMILLE,
        ["Choisir un nouveau mot de passe : https://club.example/reset/abc"],
    ),
    Case(
        "resource.maintenance_start",
        [("resource.maintenance_started", RESOURCE, {})],
        NOOR,
        ["Court 3 is in onderhoud", "Van: maandag 30 maart 2026 om 08:00"],
    ),
    Case(
        "resource.maintenance_end",
        [("resource.maintenance_ended", RESOURCE, {})],
        NOOR,
        ["Court 3 is weer beschikbaar"],
    ),
]


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(NOW)


@pytest.fixture
def club(alice: Caller) -> Caller:
    """Alpha with a French member, a Dutch member and an English-speaking staff member."""
    alice.put("/v1/contacts/m-1", json=member("Camille Martin", CAMILLE, locale="fr"))
    alice.put("/v1/contacts/m-2", json=member("Noor de Vries", NOOR, locale="nl"))
    staff = member(
        "Sam Rivera",
        SAM,
        locale="en",
        roles=["staff"],
        staff_profiles=["category:maintenance", "default_manager", "validities:all"],
        booking_copy="each",
    )
    assert alice.put("/v1/contacts/s-1", json=staff).status_code in (200, 201)
    return alice


def post_events(club: Caller, clock: ManualClock, case: Case) -> None:
    for number, (event_type, subject, payload) in enumerate(case.events):
        clock.set(NOW + timedelta(minutes=number))
        event = {
            "type": event_type,
            "idempotency_key": f"{case.kind}-{number}",
            "occurred_at": clock().isoformat(),
            "subject": subject,
            "payload": payload,
        }
        answer = club.post("/v1/events", json=event)
        assert answer.status_code == 202, answer.json()


def received_mail(smtp_server: SmtpServer, address: str, message_id: str) -> EmailMessage:
    for mail in smtp_server.received:
        if address in mail.recipients and mail.message["Message-ID"] == message_id:
            return mail.message
    raise AssertionError(f"no mail {message_id} to {address}")


@pytest.mark.parametrize("case", CASES, ids=[c.kind for c in CASES])
def test_each_kind_says_what_happened_in_the_reader_s_language(
    club: Caller,
    clock: ManualClock,
    dispatcher: Dispatcher,
    smtp_server: SmtpServer,
    case: Case,
) -> None:
    post_events(club, clock, case)
    items = club.get("/v1/messages", params={"kind": case.kind}).json()["items"]
    [message] = [m for m in items if m["address"] == case.to]
    due = datetime.fromisoformat(message["due_at"])
    clock.set(max(due, clock()))
    while dispatcher.run_once():
        pass
    stored = club.get(f"/v1/messages/{message['id']}").json()
    assert stored["status"] == "sent", stored
    mail = received_mail(smtp_server, case.to, stored["message_id_header"])
    assert mail["Subject"] == stored["subject_line"]
    text = mail.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    html = mail.get_body(("html",)).get_content()  # type: ignore[union-attr]
    for words in case.words:
        assert words in stored["subject_line"] + "\n" + text, words
    assert "http://courrier.test/preferences/" in text
    assert 'href="http://courrier.test/preferences/' in html
    calendars = [p for p in mail.iter_attachments() if p.get_content_type() == "text/calendar"]
    if case.ics is None:
        assert calendars == []
        return
    [part] = calendars
    check_calendar(part.get_content(), case, BOOKING if case.kind.startswith("booking") else VISIT)


def check_calendar(content: str | bytes, case: Case, subject: dict[str, Any]) -> None:
    """The calendar file, read by icalendar: method, one UID per subject, sequence, instants."""
    method, sequence = case.ics or ("", 0)
    calendar = icalendar.Calendar.from_ical(content)
    assert str(calendar["METHOD"]) == method
    [event] = calendar.walk("VEVENT")
    assert str(event["UID"]) == f"{subject['type']}-{subject['id']}@alpha.example"
    assert int(event["SEQUENCE"]) == sequence
    _, state, _ = case.events[-1]
    start = event.decoded("DTSTART")
    assert start == datetime.fromisoformat(state["start"])
    assert start.utcoffset() == timedelta(hours=2)  # Paris summer time, though booked in winter
    assert event.decoded("DTEND") == datetime.fromisoformat(state["end"])
    assert str(event["ATTENDEE"]) == f"mailto:{case.to}"
    assert str(event["ORGANIZER"]) == "mailto:noreply@alpha.example"


def test_the_tenant_s_address_and_logo_frame_every_mail(
    engine: Engine,
    client: TestClient,
    clock: ManualClock,
    dispatcher: Dispatcher,
    smtp_server: SmtpServer,
) -> None:
    with engine.begin() as conn:
        tenant = create_tenant(
            conn,
            "Gamma",
            from_email="noreply@gamma.example",
            timezone="Europe/Paris",
            address="12 allée des Tilleuls\n35000 Rennes",
            logo_url="https://gamma.example/logo.png",
            now=clock(),
        )
        gamma = Caller(tenant, create_api_key(conn, tenant.id, now=clock()), client)
    gamma.put("/v1/contacts/m-1", json=member("Camille Martin", CAMILLE, locale="fr"))
    assert gamma.post("/v1/events", json=event_of("booking.created", BOOKING)).status_code == 202
    dispatcher.run_once()
    [received] = [m for m in smtp_server.received if CAMILLE in m.recipients]
    text = received.message.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    html = received.message.get_body(("html",)).get_content()  # type: ignore[union-attr]
    assert "Gamma\n12 allée des Tilleuls\n35000 Rennes" in text.replace("\r\n", "\n")
    assert '<img src="https://gamma.example/logo.png" alt="Gamma"' in html
    assert "<br>12 allée des Tilleuls<br>35000 Rennes</p>" in html


def event_of(event_type: str, subject: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": event_type,
        "idempotency_key": f"{event_type}-{subject['id']}",
        "occurred_at": NOW.isoformat(),
        "subject": subject,
    }
