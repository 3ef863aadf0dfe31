"""A server that takes a mail for some recipients and refuses others: nothing goes unseen.

The message is sent (someone got it), its timeline names each refused
recipient with the server's reply, and each refusal with a 5xx counts
against that recipient's address, whether it was a Cc or the To itself.
Both with and without PIPELINING, since the replies are read differently.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from pydantic import SecretStr
from sqlalchemy.engine import Engine

from courrier.clock import ManualClock
from courrier.engine.dispatcher import Dispatcher
from courrier.settings import Settings
from tests.api.conftest import Caller
from tests.channels.servers import CountingHandler, serve
from tests.scenarios.flow import send_due
from tests.support.dispatching import dispatcher_for
from tests.support.smtp import SmtpServer

TO = "camille@example.org"
CC = ["louis@example.org", "gone@example.org"]


@pytest.fixture(params=[False, True], ids=["stepwise", "pipelined"])
def picky(request: pytest.FixtureRequest) -> Iterator[tuple[SmtpServer, CountingHandler]]:
    handler = CountingHandler(pipelining=request.param)
    server = serve(handler)
    yield server, handler
    server.stop()


@pytest.fixture
def picky_dispatcher(
    engine: Engine,
    settings: Settings,
    clock: ManualClock,
    picky: tuple[SmtpServer, CountingHandler],
) -> Iterator[Dispatcher]:
    to_picky = settings.model_copy(update={"smtp_url": SecretStr(picky[0].url)})
    with dispatcher_for(engine, to_picky, clock) as worker:
        yield worker


def post_message(caller: Caller) -> dict[str, Any]:
    answer = caller.post(
        "/v1/messages",
        json={
            "to": {"email": TO},
            "cc": CC,
            "subject": "Committee minutes",
            "text": "The minutes of Tuesday's meeting.",
            "idempotency_key": "minutes-1",
        },
    )
    assert answer.status_code == 202, answer.text
    return dict(answer.json())


def test_a_refused_cc_is_named_on_the_sent_message_and_counted_against_its_address(
    alice: Caller, picky: tuple[SmtpServer, CountingHandler], picky_dispatcher: Dispatcher
) -> None:
    server, handler = picky
    handler.refused["gone@example.org"] = "550 5.1.1 <gone@example.org>: User unknown"
    message = post_message(alice)
    send_due(picky_dispatcher)

    assert [sorted(r.recipients) for r in server.received] == [sorted([TO, "louis@example.org"])]
    detail = alice.get(f"/v1/messages/{message['id']}").json()
    assert detail["status"] == "sent"
    sent = detail["timeline"][-1]
    assert sent["entry"] == "sent"
    assert sent["data"]["refused"] == [
        {
            "address": "gone@example.org",
            "code": 550,
            "reply": "5.1.1 <gone@example.org>: User unknown",
        }
    ]
    health = alice.get("/v1/addresses/gone@example.org").json()
    assert health["error_count"] == 1
    assert [e["message_id"] for e in health["errors"]] == [message["id"]]
    assert alice.get(f"/v1/addresses/{TO}").status_code == 404  # nothing against the To


def test_a_refused_to_beside_an_accepted_cc_counts_against_the_to(
    alice: Caller, picky: tuple[SmtpServer, CountingHandler], picky_dispatcher: Dispatcher
) -> None:
    server, handler = picky
    handler.refused[TO] = "550 5.2.1 <camille@example.org>: Mailbox disabled"
    message = post_message(alice)
    send_due(picky_dispatcher)

    assert [sorted(r.recipients) for r in server.received] == [sorted(CC)]
    detail = alice.get(f"/v1/messages/{message['id']}").json()
    assert detail["timeline"][-1]["data"]["refused"][0]["address"] == TO
    health = alice.get(f"/v1/addresses/{TO}").json()
    assert (health["error_count"], health["last_error"]) == (
        1,
        "550 5.2.1 <camille@example.org>: Mailbox disabled",
    )


def test_a_temporarily_refused_cc_is_named_but_not_counted(
    alice: Caller, picky: tuple[SmtpServer, CountingHandler], picky_dispatcher: Dispatcher
) -> None:
    _, handler = picky
    handler.refused["louis@example.org"] = "452 4.2.2 Mailbox full"
    message = post_message(alice)
    send_due(picky_dispatcher)

    detail = alice.get(f"/v1/messages/{message['id']}").json()
    assert detail["timeline"][-1]["data"]["refused"] == [
        {"address": "louis@example.org", "code": 452, "reply": "4.2.2 Mailbox full"}
    ]
    assert alice.get("/v1/addresses/louis@example.org").status_code == 404
