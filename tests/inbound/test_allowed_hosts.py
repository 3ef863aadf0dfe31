"""A tenant's mailbox cannot make the server connect into the operator's network.

By default only public addresses are reached; ``COURRIER_IMAP_ALLOWED_NETWORKS``
lets an operator open internal networks (the other inbound tests list
127.0.0.0/8, where their Dovecot listens).
"""

from __future__ import annotations

import ipaddress
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.engine import Engine
from starlette.testclient import TestClient

from courrier.api.app import create_app
from courrier.clock import ManualClock
from courrier.inbound.allowed_hosts import AddressNotAllowed, allowed_address, parse_networks
from courrier.inbound.reader import MailboxReader
from courrier.settings import Settings
from courrier.store.schema import mailboxes
from courrier.store.tenants import Tenant
from tests.inbound.conftest import add_mailbox
from tests.inbound.test_api import Api, mailbox_body
from tests.support.dovecot import MailboxUser


@pytest.fixture
def strict_settings(inbound_settings: Settings) -> Settings:
    """The default: no internal network allowed."""
    return inbound_settings.model_copy(update={"imap_allowed_networks": ""})


@pytest.fixture
def strict_api(
    strict_settings: Settings, engine: Engine, clock: ManualClock, api_key: str
) -> Iterator[Api]:
    with TestClient(create_app(strict_settings, engine=engine, clock=clock)) as client:
        yield Api(client, api_key)


@pytest.fixture
def listed_api(
    inbound_settings: Settings, engine: Engine, clock: ManualClock, api_key: str
) -> Iterator[Api]:
    """COURRIER_IMAP_ALLOWED_NETWORKS=127.0.0.0/8, as in the other inbound tests."""
    with TestClient(create_app(inbound_settings, engine=engine, clock=clock)) as client:
        yield Api(client, api_key)


def check(api: Api, user: MailboxUser, **changes: Any) -> dict[str, Any]:
    answer = api.post("/v1/mailboxes/test", json=mailbox_body(user, **changes))
    assert answer.status_code == 200, answer.text
    return dict(answer.json())


def test_testing_a_loopback_host_is_refused_by_default(
    strict_api: Api, mailbox_user: MailboxUser
) -> None:
    answer = check(strict_api, mailbox_user, host="127.0.0.1")
    assert (answer["ok"], answer["reason"], answer["message"]) == (
        False,
        "address_not_allowed",
        "127.0.0.1 resolves to 127.0.0.1, a loopback address; "
        "an operator can allow it with COURRIER_IMAP_ALLOWED_NETWORKS",
    )


def test_testing_a_private_host_is_refused_by_default(
    strict_api: Api, mailbox_user: MailboxUser
) -> None:
    answer = check(strict_api, mailbox_user, host="10.0.0.5", security="tls")
    assert answer["reason"] == "address_not_allowed"
    assert "10.0.0.5, a private address" in answer["message"]


def test_a_name_resolving_to_loopback_is_refused(
    strict_api: Api, mailbox_user: MailboxUser
) -> None:
    answer = check(strict_api, mailbox_user, host="localhost")
    assert answer["reason"] == "address_not_allowed"
    assert answer["message"].startswith("localhost resolves to ")


@pytest.mark.parametrize("host", ["::1", "::ffff:127.0.0.1", "::ffff:10.0.0.5", "::", "0.0.0.0"])
def test_ipv6_loopback_mapped_and_unspecified_addresses_are_refused(
    strict_api: Api, mailbox_user: MailboxUser, host: str
) -> None:
    answer = check(strict_api, mailbox_user, host=host, security="tls")
    assert answer["reason"] == "address_not_allowed"


@pytest.mark.parametrize("host", ["169.254.169.254", "fe80::1", "fd00::1", "224.0.0.1"])
def test_link_local_unique_local_and_multicast_addresses_are_refused(host: str) -> None:
    with pytest.raises(AddressNotAllowed):
        allowed_address(host, 993, ())


def test_a_listed_network_is_allowed_and_mapped_forms_follow_it() -> None:
    loopback = parse_networks("10.0.0.0/8, 127.0.0.0/8", "COURRIER_IMAP_ALLOWED_NETWORKS")
    assert allowed_address("127.0.0.1", 143, loopback) == "127.0.0.1"
    mapped = allowed_address("::ffff:10.1.2.3", 143, loopback)
    assert ipaddress.ip_address(mapped) == ipaddress.ip_address("::ffff:10.1.2.3")
    with pytest.raises(AddressNotAllowed):
        allowed_address("::1", 143, loopback)


def test_testing_a_loopback_host_works_when_its_network_is_listed(
    listed_api: Api, mailbox_user: MailboxUser
) -> None:
    assert check(listed_api, mailbox_user, host="127.0.0.1")["ok"] is True
    saved = listed_api.post("/v1/mailboxes", json=mailbox_body(mailbox_user, host="127.0.0.1"))
    assert saved.status_code == 201


def test_saving_an_internal_host_is_a_422_naming_the_host(
    strict_api: Api, mailbox_user: MailboxUser
) -> None:
    answer = strict_api.post("/v1/mailboxes", json=mailbox_body(mailbox_user, host="127.0.0.1"))
    assert answer.status_code == 422
    assert answer.json()["error"]["field"] == "host"
    assert "COURRIER_IMAP_ALLOWED_NETWORKS" in answer.json()["error"]["message"]


def test_testing_a_saved_internal_mailbox_is_refused(
    strict_api: Api,
    engine: Engine,
    strict_settings: Settings,
    tenant: Tenant,
    mailbox_user: MailboxUser,
) -> None:
    mailbox = add_mailbox(
        engine, strict_settings, tenant, mailbox_user
    )  # saved before a DNS change
    answer = strict_api.post(f"/v1/mailboxes/{mailbox}/test").json()
    assert answer["reason"] == "address_not_allowed"


def _last_error(engine: Engine, mailbox: int) -> str | None:
    with engine.connect() as conn:
        query = select(mailboxes.c.last_error).where(mailboxes.c.id == mailbox)
        return conn.execute(query).scalar_one()  # type: ignore[no-any-return]


def test_the_reader_records_a_refused_address_without_connecting(
    engine: Engine, strict_settings: Settings, tenant: Tenant, mailbox_user: MailboxUser
) -> None:
    with socket.create_server(("127.0.0.1", 0)) as listener:
        listener.setblocking(False)
        port = listener.getsockname()[1]
        mailbox = add_mailbox(engine, strict_settings, tenant, mailbox_user, port=port)
        stop = threading.Event()
        reader = MailboxReader(engine, strict_settings, mailbox, stop=stop, owner="test")
        thread = threading.Thread(target=reader.run)
        thread.start()
        try:
            deadline = time.monotonic() + 10
            while _last_error(engine, mailbox) is None and time.monotonic() < deadline:
                time.sleep(0.05)
        finally:
            stop.set()
            thread.join(10)
        assert "127.0.0.1 resolves to 127.0.0.1, a loopback address" in str(
            _last_error(engine, mailbox)
        )
        with pytest.raises(BlockingIOError):
            listener.accept()  # nobody ever connected
