"""Inbound benchmark: mails per second from Dovecot into Courrier, beside a plain imaplib loop.

    .venv/bin/python bench/inbound.py                 # N=1000, SQLite and PostgreSQL
    .venv/bin/python bench/inbound.py --quick         # N=200
    .venv/bin/python bench/inbound.py --write-docs docs/benchmarks.md

A Dovecot on loopback (its own config in a temp folder, as the tests start
it) gets N member mails by IMAP APPEND: most from known contacts, one in
three with a PDF attachment, the rest from strangers. In the same run:

- the reference: a plain ``imaplib`` loop that logs in, lists the UIDs and
  fetches the same mails in batches with ``BODY.PEEK[]``, parsing each with
  ``email.message_from_bytes`` (stdlib, ``policy.default``); nothing is stored;
- Courrier: one pass of the mailbox reader (fetch, parse, match the sender
  against every contact address, store attachments by hash, commit each
  batch with the folder position, then flag the batch on the server), on a
  fresh SQLite file and a fresh PostgreSQL database.

It prints mails/second and the ratio to the reference; it asserts nothing
about speed, only that every mail was stored once.
"""

from __future__ import annotations

import argparse
import email
import email.policy
import imaplib
import os
import shutil
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

if __package__ in (None, ""):  # run as a file: make ``bench`` and ``tests`` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import create_engine, func, select, text
from sqlalchemy.engine import make_url
from tests.inbound.mails import member_mail
from tests.support.dovecot import Dovecot, MailboxUser

from bench.report import write_section
from courrier.inbound.parsing import parse_mail
from courrier.inbound.passwords import PasswordBox
from courrier.inbound.reader import MailboxReader
from courrier.settings import Settings
from courrier.store import inbound as inbound_store
from courrier.store.contacts import ContactData, upsert_contact
from courrier.store.db import create_db_engine, normalise_url
from courrier.store.migrate import migrate
from courrier.store.schema import documents, inbound_mails
from courrier.store.tenants import create_tenant

START = "<!-- bench:inbound:start -->"
END = "<!-- bench:inbound:end -->"
CONTACTS = 500


@dataclass
class Result:
    name: str
    seconds: float
    mails: int

    @property
    def rate(self) -> float:
        return self.mails / self.seconds if self.seconds else 0.0


def make_mails(n: int) -> list[bytes]:
    """N mails: 80 % from known contacts, one in three with a 40 kB PDF."""
    pdf = b"%PDF-1.4\n" + os.urandom(40_000)
    found = []
    for i in range(n):
        sender = f"member{i % CONTACTS}@club.example" if i % 5 else f"stranger{i}@elsewhere.example"
        attachments = (
            [(f"certificate-{i}.pdf", "application/pdf", pdf + str(i).encode())]
            if i % 3 == 0
            else []
        )
        found.append(member_mail(sender, f"Mail number {i}", attachments=attachments))
    return found


def fill_mailbox(server: Dovecot, user: MailboxUser, raw_mails: list[bytes]) -> None:
    client = server.connect(user)
    when = imaplib.Time2Internaldate(datetime(2026, 3, 1, 9, 0, tzinfo=UTC))
    for raw in raw_mails:
        client.append("INBOX", "", when, raw)
    client.logout()


def imaplib_reference(user: MailboxUser, batch: int) -> Result:
    """Log in, list UIDs, fetch every mail in batches (BODY.PEEK[]), parse each with the stdlib."""
    started = time.perf_counter()
    client = imaplib.IMAP4(user.host, user.port)
    client.login(user.username, user.password)
    client.select("INBOX")
    _, data = client.uid("SEARCH", "ALL")
    uids = (data[0] or b"").split()
    parsed = 0
    for start in range(0, len(uids), batch):
        chunk = b",".join(uids[start : start + batch])
        _, fetched = client.uid("FETCH", chunk, "(BODY.PEEK[])")
        for item in fetched:
            if isinstance(item, tuple):
                message = email.message_from_bytes(item[1], policy=email.policy.default)
                parsed += message.get("Subject") is not None
    client.logout()
    return Result(
        "plain imaplib fetch + stdlib parse (nothing stored)", time.perf_counter() - started, parsed
    )


def parse_times(raw_mails: list[bytes]) -> tuple[float, float]:
    """Seconds to parse every mail with Courrier's parser, and with ``policy.default``."""
    started = time.perf_counter()
    for raw in raw_mails:
        parse_mail(raw)
    ours = time.perf_counter() - started
    started = time.perf_counter()
    for raw in raw_mails:
        email.message_from_bytes(raw, policy=email.policy.default).get("Subject")
    return ours, time.perf_counter() - started


def prepare_database(kind: str, folder: Path, pg_url: str) -> tuple[str, str | None]:
    """A fresh, migrated database: its URL, and the PostgreSQL database name to drop after."""
    if kind == "sqlite":
        url = f"sqlite:///{folder / 'bench.db'}"
        engine = create_db_engine(url)
        migrate(engine)
        engine.dispose()
        return url, None
    name = f"courrier_bench_inbound_{uuid.uuid4().hex[:8]}"
    admin = create_engine(normalise_url(pg_url), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    url = make_url(normalise_url(pg_url)).set(database=name).render_as_string(hide_password=False)
    engine = create_db_engine(url)
    migrate(engine)
    engine.dispose()
    return url, name


def drop_database(pg_url: str, name: str) -> None:
    admin = create_engine(normalise_url(pg_url), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def courrier_pass(kind: str, user: MailboxUser, args: argparse.Namespace, work: Path) -> Result:
    """One reader pass over the mailbox into a fresh database with CONTACTS contacts."""
    work = work / uuid.uuid4().hex[:8]  # a fresh database file and documents folder each turn
    work.mkdir()
    url, pg_name = prepare_database(kind, work, args.pg_url)
    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        database_url=url,
        secret_key="bench-secret",  # type: ignore[arg-type]
        documents_dir=work / f"documents-{kind}",
        inbound_batch_size=args.batch,
        imap_allowed_networks="127.0.0.0/8",  # the bench's Dovecot is on loopback
    )
    engine = create_db_engine(url)
    try:
        now = datetime.now(UTC)
        with engine.begin() as conn:
            tenant = create_tenant(conn, "Bench club", from_email="noreply@club.example", now=now)
            for i in range(CONTACTS):
                upsert_contact(
                    conn, tenant.id, f"m-{i}", ContactData(email=f"member{i}@club.example"), now=now
                )
            mailbox = inbound_store.create_mailbox(
                conn,
                tenant.id,
                {
                    "label": "bench",
                    "host": user.host,
                    "port": user.port,
                    "security": "plain",
                    "username": user.username,
                    "password_encrypted": PasswordBox(settings).encrypt(user.password),
                    "folders": ["INBOX"],
                },
                now=now,
            )
        reader = MailboxReader(engine, settings, mailbox, stop=threading.Event(), owner="bench")
        started = time.perf_counter()
        reader.read_once()
        seconds = time.perf_counter() - started
        with engine.connect() as conn:
            stored = int(conn.execute(select(func.count()).select_from(inbound_mails)).scalar_one())
            filed = int(
                conn.execute(
                    select(func.count())
                    .select_from(inbound_mails)
                    .where(inbound_mails.c.contact_id.is_not(None))
                ).scalar_one()
            )
            docs = int(conn.execute(select(func.count()).select_from(documents)).scalar_one())
        if stored != args.n:
            raise SystemExit(f"Courrier on {kind} stored {stored} mails, not {args.n}")
        print(f"  {kind}: {stored} stored, {filed} filed on a contact, {docs} documents")
        return Result(
            f"Courrier on {'SQLite' if kind == 'sqlite' else 'PostgreSQL'}", seconds, stored
        )
    finally:
        engine.dispose()
        if pg_name:
            drop_database(args.pg_url, pg_name)


def report(results: list[Result], reference: Result, args: argparse.Namespace) -> str:
    lines = [
        "## Inbound: the shared member inbox",
        "",
        f"`bench/inbound.py`: {args.n} mails put into a Dovecot on loopback by IMAP APPEND "
        f"({CONTACTS} contacts; 80 % of the mails from them, one in three with a 40 kB PDF), "
        f"then read in batches of {args.batch}; fastest of {args.repeat} turns per path, each "
        "Courrier turn on a fresh mailbox and database. The reference fetches and parses the "
        "same mails "
        "with plain `imaplib` and stores nothing; Courrier parses robustly, matches each sender, "
        "keeps attachments by hash, commits each batch with its folder position and then flags "
        "it on the server.",
        "",
        "Courrier parses with the `compat32` policy and its own decoding, the plain loop with "
        "`policy.default`; parsing alone, measured in the same run, took "
        f"{args.parse_times[0]:.2f} s with Courrier's parser and {args.parse_times[1]:.2f} s with "
        "`policy.default`. The reference's later turns read a mailbox Dovecot has just served; "
        "Courrier's each read a new one. On this shared two-CPU machine, where other test "
        "suites ran at the same time, single runs vary by ±30 % and more.",
        "",
        "| path | seconds | mails/s | vs imaplib |",
        "|---|---:|---:|---:|",
    ]
    for result in [reference, *results]:
        ratio = result.rate / reference.rate if reference.rate else 0.0
        lines.append(
            f"| {result.name} | {result.seconds:.2f} | {result.rate:,.0f} | {ratio:.2f}x |"
        )
    lines += [
        "",
        f"Machine: {os.cpu_count()} CPUs, Python {sys.version.split()[0]}, measured "
        f"{datetime.now(UTC):%Y-%m-%d}.",
        "",
        "Rerun: `.venv/bin/python bench/inbound.py --write-docs docs/benchmarks.md` "
        "(or `--quick` for N=200, printing only).",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--n", type=int, default=1000, help="mails in the mailbox")
    parser.add_argument("--quick", action="store_true", help="N=200")
    parser.add_argument(
        "--batch", type=int, default=50, help="mails fetched and committed together"
    )
    parser.add_argument("--databases", default="sqlite,postgres")
    parser.add_argument("--pg-url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--repeat", type=int, default=3, help="turns per path; the fastest is kept")
    parser.add_argument("--write-docs", type=Path)
    args = parser.parse_args(argv)
    if args.quick:
        args.n, args.repeat = 200, 1
    work = Path(tempfile.mkdtemp(prefix="courrier-bench-inbound-"))
    server = Dovecot().start()
    try:
        raw_mails = make_mails(args.n)
        args.parse_times = parse_times(raw_mails)
        reference_user = server.add_user()
        fill_mailbox(server, reference_user, raw_mails)
        turns = [imaplib_reference(reference_user, args.batch) for _ in range(args.repeat)]
        reference = min(turns, key=lambda r: r.seconds)
        print(f"  imaplib: {reference.mails} mails in {reference.seconds:.2f} s")
        results = []
        for kind in [k.strip() for k in args.databases.split(",") if k.strip()]:
            turns = []
            for _ in range(args.repeat):  # a fresh mailbox and database each turn
                user = server.add_user()
                fill_mailbox(server, user, raw_mails)
                turns.append(courrier_pass(kind, user, args, work))
            results.append(min(turns, key=lambda r: r.seconds))
        section = report(results, reference, args)
        print(section)
        if args.write_docs:
            write_section(args.write_docs, START, END, section)
    finally:
        server.cleanup()
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
