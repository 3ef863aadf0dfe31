"""A reader killed with SIGKILL in the middle of a folder loses nothing and repeats nothing."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.engine import Engine

from courrier.settings import Settings
from courrier.store.schema import inbound_mails
from courrier.store.tenants import Tenant
from tests.inbound import mails
from tests.inbound.conftest import add_mailbox
from tests.support.dovecot import Dovecot, MailboxUser, message_ids_with_keyword

MAILS = 120


def reader_process(settings: Settings, cwd: Path) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "COURRIER_DATABASE_URL": settings.database_url,
        "COURRIER_SECRET_KEY": "test-secret-key",
        "COURRIER_DOCUMENTS_DIR": str(settings.documents_dir),
        "COURRIER_INBOUND_BATCH_SIZE": "2",
        "COURRIER_IMAP_POLL_SECONDS": "0.3",
        "COURRIER_IMAP_RETRY_SECONDS": "0.1",
        "COURRIER_IMAP_ALLOWED_NETWORKS": settings.imap_allowed_networks,
    }
    return subprocess.Popen(
        [sys.executable, "-m", "courrier.inbound.reader"],
        env=env,
        cwd=cwd,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def stored_ids(engine: Engine) -> list[str]:
    with engine.connect() as conn:
        return list(conn.execute(select(inbound_mails.c.message_id_header)).scalars())


def wait_for(engine: Engine, at_least: int, timeout: float) -> int:
    deadline = time.monotonic() + timeout
    while True:
        with engine.connect() as conn:
            found = int(conn.execute(select(func.count()).select_from(inbound_mails)).scalar_one())
        if found >= at_least or time.monotonic() > deadline:
            return found
        time.sleep(0.01)


@pytest.mark.slow
def test_a_reader_killed_mid_folder_and_restarted_imports_every_mail_once(
    engine: Engine,
    inbound_settings: Settings,
    tenant: Tenant,
    dovecot: Dovecot,
    mailbox_user: MailboxUser,
    tmp_path: Path,
) -> None:
    ids = [f"<{uuid.uuid4().hex}@member.example>" for _ in range(MAILS)]
    scan = ("logbook.pdf", "application/pdf", os.urandom(20_000))
    dovecot.append(
        mailbox_user,
        *(
            mails.member_mail(f"m{i}@club.example", message_id=mid, attachments=[scan])
            for i, mid in enumerate(ids)
        ),
    )
    add_mailbox(engine, inbound_settings, tenant, mailbox_user)

    first = reader_process(inbound_settings, tmp_path)
    try:
        at_kill = wait_for(engine, 10, timeout=30)
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait()
    assert 0 < at_kill < MAILS, "the reader must be killed in the middle of the folder"
    committed = set(stored_ids(engine))
    flagged = message_ids_with_keyword(dovecot, mailbox_user, "$Courrier")
    assert flagged <= committed, "a mail was flagged on the server before it was committed"

    # The dead reader's lease (COURRIER_IMAP_LEASE_SECONDS, 300 s) is not waited out:
    # its process is gone from this machine.
    second = reader_process(inbound_settings, tmp_path)
    try:
        assert wait_for(engine, MAILS, timeout=30) == MAILS
        time.sleep(0.3)  # a duplicate, if any, would land now
    finally:
        second.send_signal(signal.SIGTERM)
        assert second.wait(timeout=15) == 0
    stored = stored_ids(engine)
    assert sorted(stored) == sorted(ids)  # every mail, once
    assert message_ids_with_keyword(dovecot, mailbox_user, "$Courrier") == set(ids)
