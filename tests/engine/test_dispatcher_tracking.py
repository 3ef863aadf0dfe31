"""What tracking adds to a sent mail's text part: the "view online" link of its HTML part."""

from __future__ import annotations

from collections.abc import Iterator
from email.message import EmailMessage

import pytest
from sqlalchemy import update
from sqlalchemy.engine import Engine

from courrier.clock import ManualClock
from courrier.engine.dispatcher import Dispatcher
from courrier.settings import Settings
from courrier.store.schema import messages, tenants
from tests.support import factories
from tests.support.dispatching import dispatcher_for
from tests.support.smtp import SmtpServer


@pytest.fixture
def dispatcher(engine: Engine, settings: Settings) -> Iterator[Dispatcher]:
    with dispatcher_for(engine, settings, ManualClock()) as dispatcher:
        yield dispatcher


def sent_parts(
    engine: Engine, dispatcher: Dispatcher, smtp_server: SmtpServer, *, tracking: bool, **row: str
) -> tuple[int, str, str | None]:
    """Send one seeded message; its id, the text part and the HTML part as received."""
    [message_id] = factories.seed(engine, 1, now=dispatcher.clock(), **row)
    with engine.begin() as conn:
        tenant_id = (
            conn.execute(messages.select().where(messages.c.id == message_id)).one().tenant_id
        )
        conn.execute(update(tenants).where(tenants.c.id == tenant_id).values(tracking=tracking))
    assert dispatcher.run_once() == 1
    [received] = smtp_server.wait_for(1)
    mail = received.message
    assert isinstance(mail, EmailMessage)
    text = mail.get_body(("plain",))
    html = mail.get_body(("html",))
    assert text is not None
    crlf = "\r\n"
    html_content = html.get_content().replace(crlf, "\n") if html is not None else None
    return message_id, text.get_content().replace(crlf, "\n"), html_content


def test_the_text_part_ends_with_the_same_view_online_link_as_the_html_part(
    engine: Engine, dispatcher: Dispatcher, smtp_server: SmtpServer
) -> None:
    message_id, text, html = sent_parts(
        engine, dispatcher, smtp_server, tracking=True, locale="fr-BE"
    )
    original = dispatcher.outgoing.links.original(message_id)
    body = factories.message(engine, message_id)["body_text"]
    assert text == f"{body}\nVoir ce message en ligne: {original}\n"
    assert html is not None and f'href="{original}"' in html


def test_a_text_only_mail_gets_the_link_too_and_a_line_break_before_it(
    engine: Engine, dispatcher: Dispatcher, smtp_server: SmtpServer
) -> None:
    message_id, text, html = sent_parts(
        engine, dispatcher, smtp_server, tracking=True, body_text="Hello", body_html=None
    )
    original = dispatcher.outgoing.links.original(message_id)
    assert html is None
    assert text == f"Hello\n\nView this message online: {original}\n"


def test_without_tracking_the_text_part_leaves_as_written(
    engine: Engine, dispatcher: Dispatcher, smtp_server: SmtpServer
) -> None:
    message_id, text, html = sent_parts(engine, dispatcher, smtp_server, tracking=False)
    row = factories.message(engine, message_id)
    assert text == row["body_text"]
    assert html == row["body_html"]
