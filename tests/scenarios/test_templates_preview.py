"""POST /v1/kinds/{name}/preview: any kind rendered with sample data, as a recipient would get it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import icalendar
import pytest

from courrier.domain.kinds import DEFAULT_CATALOGUE
from tests.api.conftest import Caller

CALENDAR_KINDS = {
    "booking.confirmation": "REQUEST",
    "booking.modified": "REQUEST",
    "booking.validated": "REQUEST",
    "booking.cancelled": "CANCEL",
    "visit.created": "REQUEST",
    "visit.modified": "REQUEST",
    "visit.cancelled": "CANCEL",
}


@pytest.mark.parametrize("locale", ["en", "fr", "es", "nl"])
def test_every_default_kind_previews_in_every_language(alice: Caller, locale: str) -> None:
    for kind in DEFAULT_CATALOGUE:
        answer = alice.post(f"/v1/kinds/{kind.name}/preview", json={"locale": locale})
        assert answer.status_code == 200, (kind.name, answer.json())
        shown = answer.json()
        assert shown["kind"] == kind.name and shown["locale"] == locale
        assert shown["subject"] and "\n" not in shown["subject"]
        assert f'<html lang="{locale}">' in shown["html"]
        assert "Alpha" in shown["text"]  # the tenant's own name, not the sample's
        method = CALENDAR_KINDS.get(kind.name)
        if method is None:
            assert shown["ics"] is None, kind.name
        else:
            assert str(icalendar.Calendar.from_ical(shown["ics"])["METHOD"]) == method


def test_sample_data_can_be_replaced_and_times_follow_the_venue_across_dst(alice: Caller) -> None:
    data = {
        "subject": {
            "start": "2026-03-29T00:30:00+00:00",  # 01:30 in Paris, before clocks go forward
            "end": "2026-03-29T02:30:00+00:00",  # 04:30 in Paris, after
            "resource": {"id": "R-9", "name": "Piste 9"},
        },
        "recipient": {"name": "Noor"},
    }
    answer = alice.post(
        "/v1/kinds/booking.confirmation/preview", json={"locale": "nl", "data": data}
    )
    assert answer.status_code == 200, answer.json()
    shown = answer.json()
    assert shown["subject"] == "Reservering bevestigd: Piste 9, 29 mrt 2026 om 01:30"
    assert "Hallo Noor," in shown["text"]
    assert "Einde: zondag 29 maart 2026 om 04:30" in shown["text"]
    [event] = icalendar.Calendar.from_ical(shown["ics"]).walk("VEVENT")
    start, end = event.decoded("DTSTART"), event.decoded("DTEND")
    assert start == datetime(2026, 3, 29, 0, 30, tzinfo=UTC)
    assert end == datetime(2026, 3, 29, 2, 30, tzinfo=UTC)
    assert (start.utcoffset(), end.utcoffset()) == (timedelta(hours=1), timedelta(hours=2))
    assert end.timestamp() - start.timestamp() == 2 * 3600  # not three: the lost hour


def test_a_modification_preview_shows_old_and_new_values(alice: Caller) -> None:
    answer = alice.post("/v1/kinds/booking.modified/preview", json={"locale": "en"})
    text = answer.json()["text"]
    assert "Before: Friday, March 27, 2026, 5:00\u202fPM" in text
    assert "Now: Saturday, March 28, 2026, 10:00\u202fAM" in text
    [event] = icalendar.Calendar.from_ical(answer.json()["ics"]).walk("VEVENT")
    assert int(event["SEQUENCE"]) == 1


def test_the_preview_uses_the_tenant_s_templates(alice: Caller, bob: Caller) -> None:
    templates = {
        "templates": {"fr": {"subject": "Rappel {{ subject.id }} — à tout à l\u2019heure"}}
    }
    assert alice.patch("/v1/kinds/booking.reminder_1h", json=templates).status_code == 200
    mine = alice.post("/v1/kinds/booking.reminder_1h/preview", json={"locale": "fr"}).json()
    theirs = bob.post("/v1/kinds/booking.reminder_1h/preview", json={"locale": "fr"}).json()
    assert mine["subject"] == "Rappel B-1042 — à tout à l\u2019heure"
    assert theirs["subject"].startswith("Dans une heure : ")
    assert "Votre réservation commence dans une heure." in mine["text"]  # other parts kept


def test_unknown_language_falls_back_to_english_and_says_so(alice: Caller) -> None:
    shown = alice.post("/v1/kinds/member.balance_low/preview", json={"locale": "de_AT"}).json()
    assert shown["locale"] == "en"
    assert shown["subject"] == "Your balance is low"


def test_an_unknown_kind_is_a_404_and_a_bad_request_a_422(alice: Caller) -> None:
    missing = alice.post("/v1/kinds/booking.teleported/preview", json={})
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "not_found"
    bad = alice.post("/v1/kinds/booking.reminder_1h/preview", json={"locale": "fr; DROP"})
    assert bad.status_code == 422
    assert bad.json()["error"]["field"] == "locale"
    unknown = alice.post("/v1/kinds/booking.reminder_1h/preview", json={"data": {"color": 1}})
    assert unknown.status_code == 422
    assert unknown.json()["error"]["field"] == "data.color"


def test_sample_data_that_breaks_the_template_is_a_422_naming_the_templates(alice: Caller) -> None:
    data = {"subject": {"start": "not a date"}}
    answer = alice.post("/v1/kinds/booking.reminder_1h/preview", json={"data": data})
    assert answer.status_code == 422
    assert answer.json()["error"]["field"] == "templates"
