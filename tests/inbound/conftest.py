"""The inbound tests' real parts: one Dovecot per session, a mailbox per test, a tenant."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.engine import Engine

from courrier.clock import ManualClock
from courrier.inbound.passwords import PasswordBox
from courrier.inbound.reader import MailboxReader
from courrier.settings import Settings
from courrier.store import inbound as store
from courrier.store.contacts import ContactData, upsert_contact
from courrier.store.tenants import Tenant, create_api_key, create_tenant
from tests.support.dovecot import Dovecot, MailboxUser


@pytest.fixture(scope="session")
def dovecot() -> Iterator[Dovecot]:
    server = Dovecot().start()
    yield server
    server.cleanup()


@pytest.fixture
def mailbox_user(dovecot: Dovecot) -> MailboxUser:
    return dovecot.add_user()


@pytest.fixture
def inbound_settings(database_url: str, tmp_path: Path) -> Settings:
    """Settings for the inbound side: its own documents folder, quick retries and small batches."""
    return Settings(
        _env_file=None,  # type: ignore[call-arg]
        database_url=database_url,
        secret_key="test-secret-key",  # type: ignore[arg-type]
        documents_dir=tmp_path / "documents",
        imap_poll_seconds=0.5,
        imap_retry_seconds=0.1,
        imap_timeout=5.0,
        imap_lease_seconds=30.0,
        imap_allowed_networks="127.0.0.0/8",  # Dovecot listens on loopback
        inbound_batch_size=5,
    )


@pytest.fixture
def tenant(engine: Engine, clock: ManualClock) -> Tenant:
    with engine.begin() as conn:
        return create_tenant(conn, "Aeroclub", from_email="noreply@club.example", now=clock())


@pytest.fixture
def api_key(engine: Engine, clock: ManualClock, tenant: Tenant) -> str:
    with engine.begin() as conn:
        return create_api_key(conn, tenant.id, now=clock())


def add_contact(
    engine: Engine,
    tenant: Tenant,
    external_id: str,
    email: str,
    others: Sequence[str] = (),
    **data: Any,
) -> int:
    with engine.begin() as conn:
        contact, _ = upsert_contact(
            conn,
            tenant.id,
            external_id,
            ContactData(name=data.get("name", external_id), email=email, other_emails=others),
            now=ManualClock()(),
        )
    return int(contact["id"])


def add_mailbox(
    engine: Engine, settings: Settings, tenant: Tenant, user: MailboxUser, **values: Any
) -> int:
    with engine.begin() as conn:
        return store.create_mailbox(
            conn,
            tenant.id,
            {
                "label": "Club office",
                "host": user.host,
                "port": user.port,
                "security": "plain",
                "username": user.username,
                "password_encrypted": PasswordBox(settings).encrypt(user.password),
                "folders": ["INBOX"],
                **values,
            },
            now=ManualClock()(),
        )


def read_once(engine: Engine, settings: Settings, mailbox_id: int, owner: str = "test") -> None:
    """One pass of a reader over the mailbox, in this thread."""
    import threading

    MailboxReader(engine, settings, mailbox_id, stop=threading.Event(), owner=owner).read_once()
