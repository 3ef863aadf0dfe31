"""What a message's detail tells staff: whether it arrived, was opened, was read; its follow-ups.

The open pixel is a weak signal (clients fetch images by themselves), so it
never counts as read; following the signed original is the proof.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta

from courrier.clock import ManualClock
from courrier.engine.dispatcher import Dispatcher
from tests.api.conftest import Caller
from tests.deliverability.conftest import html_part, sent_mail
from tests.scenarios.flow import send_due
from tests.support.smtp import SmtpServer

PIXEL = re.compile(r'src="http://courrier\.test(/t/o/[^"]+\.gif)"')
ORIGINAL = re.compile(r'href="http://courrier\.test(/t/v/[^"]+)"')


def test_an_open_is_shown_but_only_the_original_proves_reading(
    club: Caller, clock: ManualClock, dispatcher: Dispatcher, smtp_server: SmtpServer
) -> None:
    detail, received = sent_mail(club, clock, dispatcher, smtp_server)
    assert detail["reading"] == {
        "delivered_at": None,
        "opened_at": None,
        "opens": 0,
        "clicked_at": None,
        "clicks": 0,
        "accessed_at": None,
        "read": False,
        "bounced_at": None,
    }
    html = html_part(received.message)
    pixel = PIXEL.search(html)
    original = ORIGINAL.search(html)
    assert pixel is not None and original is not None

    opened_at = clock()
    for _ in range(2):
        assert club.client.get(pixel.group(1)).status_code == 200
        clock.advance(timedelta(minutes=1))
    reading = club.get(f"/v1/messages/{detail['id']}").json()["reading"]
    assert (reading["opens"], reading["read"]) == (2, False)
    assert datetime.fromisoformat(reading["opened_at"]) == opened_at  # the first open

    assert club.client.get(original.group(1)).status_code == 200
    reading = club.get(f"/v1/messages/{detail['id']}").json()["reading"]
    assert reading["read"] is True
    assert reading["accessed_at"] is not None


def test_a_message_lists_its_follow_ups_and_a_follow_up_names_its_original(
    club: Caller, clock: ManualClock, dispatcher: Dispatcher, smtp_server: SmtpServer
) -> None:
    posted = club.post(
        "/v1/messages",
        json={
            "to": {"email": "camille@example.org"},
            "cc": ["louis@example.org"],
            "bcc": ["archive@example.org"],
            "subject": "Lease to sign",
            "text": "Please sign the lease.",
            "follow_up": {"delays_minutes": [60, 1440], "cc_bcc": True},
            "idempotency_key": "lease-1",
        },
    )
    assert posted.status_code == 202, posted.text
    send_due(dispatcher)
    detail = club.get(f"/v1/messages/{posted.json()['id']}").json()
    assert (detail["cc"], detail["bcc"]) == (["louis@example.org"], ["archive@example.org"])
    assert detail["follow_up"] == {"delays_minutes": [60, 1440], "cc_bcc": True}
    assert detail["follow_up_of"] is None
    follow_ups = detail["follow_ups"]
    assert [(f["follow_up_index"], f["status"]) for f in follow_ups] == [
        (1, "planned"),
        (2, "planned"),
    ]
    first = club.get(f"/v1/messages/{follow_ups[0]['id']}").json()
    assert (first["follow_up_of"], first["follow_up_index"]) == (detail["id"], 1)
    assert first["cc"] == ["louis@example.org"]
