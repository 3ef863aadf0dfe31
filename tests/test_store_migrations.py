"""The migrations build exactly the schema the code declares, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import select, text
from sqlalchemy.engine import Connection, Engine

from courrier.domain.planning import direct_send_key
from courrier.engine.followups import follow_up_key
from courrier.store.db import create_db_engine
from courrier.store.events import stored_answers
from courrier.store.migrate import alembic_config, current_revision, head_revision, migrate
from courrier.store.schema import bounce_reports, inbound_mails, message_contents, metadata

RECEIVED = datetime(2026, 11, 1, 9, 30, tzinfo=UTC)


def downgrade(engine: Engine, revision: str) -> None:
    config = alembic_config()
    with engine.begin() as conn:
        config.attributes["connection"] = conn
        command.downgrade(config, revision)


def add_club(conn: Connection) -> None:
    """Tenant 1, in the columns every revision has."""
    conn.execute(
        text(
            "INSERT INTO tenants (id, name, from_email, timezone, locale, created_at)"
            " VALUES (1, 'Club', 'club@club.example', 'UTC', 'en', :at)"
        ),
        {"at": RECEIVED},
    )


def add_sent_message(conn: Connection) -> None:
    """Message 7 of tenant 1 with its bodies in its row (revisions before 0005), and its
    timeline entry."""
    conn.execute(
        text(
            "INSERT INTO messages (id, tenant_id, kind, channel, address, status, priority,"
            " due_at, attempts, send_key, message_id_header, locale, from_addr, subject_line,"
            " body_text, body_html, attachments, created_at, updated_at) VALUES (7, 1,"
            " 'booking.confirmation', 'email', 'ada@example.org', 'sent', 50, :at, 1, 'k',"
            " '<m7@club.example>', 'en', 'club@club.example', 'Booked', 'Hello Ada',"
            " '<p>Hello Ada</p>', :files, :at, :at)"
        ),
        {"at": RECEIVED, "files": '[{"filename": "invite.ics"}]'},
    )
    conn.execute(
        text(
            "INSERT INTO message_events (message_id, at, status, entry)"
            " VALUES (7, :at, 'sent', 'sent')"
        ),
        {"at": RECEIVED},
    )


def timeline_entries(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(text("SELECT count(*) FROM message_events")).scalar_one())


def test_migrated_database_is_at_the_newest_revision(engine: Engine) -> None:
    assert current_revision(engine) == head_revision()


def test_migrations_match_the_declared_schema(engine: Engine) -> None:
    """A table or column added to schema.py without a migration fails here."""
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": False})
        diff = compare_metadata(context, metadata)
    assert diff == []


def test_mail_filed_before_the_deliverability_upgrade_is_not_applied_again(engine: Engine) -> None:
    """Upgrading to 0004 marks old inbox mail as applied: no old bounce blocks an address."""
    downgrade(engine, "0003")
    with engine.begin() as conn:
        add_club(conn)
        conn.execute(
            text(
                "INSERT INTO inbound_mails (id, tenant_id, content_hash, kind, to_addrs, cc_addrs,"
                " received_at, size, headers, defects) VALUES (1, 1, 'h', 'bounce', '[]', '[]',"
                " :at, 10, '[]', '[]')"
            ),
            {"at": RECEIVED},
        )
        conn.execute(
            text(
                "INSERT INTO bounce_reports (id, tenant_id, inbound_mail_id, recipient, action)"
                " VALUES (1, 1, 1, 'gone@example.org', 'failed')"
            )
        )
    migrate(engine)
    with engine.connect() as conn:
        assert conn.execute(select(inbound_mails.c.feedback_at)).scalar_one() == RECEIVED
        assert conn.execute(select(bounce_reports.c.applied_at)).scalar_one() == RECEIVED
    assert current_revision(engine) == head_revision()


def test_bodies_move_to_their_own_table_and_back_without_losing_a_timeline(
    engine: Engine,
) -> None:
    """0005 moves each message's bodies into message_contents, and back on a downgrade; its
    timeline stays whole (rebuilding the messages table would delete it by cascade on SQLite)."""
    downgrade(engine, "0004")
    with engine.begin() as conn:
        add_club(conn)
        add_sent_message(conn)
    migrate(engine)
    with engine.connect() as conn:
        body = conn.execute(
            select(
                message_contents.c.body_text,
                message_contents.c.body_html,
                message_contents.c.attachments,
            ).where(message_contents.c.message_id == 7)
        ).one()
    assert tuple(body) == ("Hello Ada", "<p>Hello Ada</p>", [{"filename": "invite.ics"}])
    assert timeline_entries(engine) == 1
    downgrade(engine, "0004")
    with engine.connect() as conn:
        back = conn.execute(text("SELECT body_text, body_html FROM messages WHERE id = 7")).one()
    assert tuple(back) == ("Hello Ada", "<p>Hello Ada</p>")
    assert timeline_entries(engine) == 1
    migrate(engine)


@pytest.mark.sqlite_only
def test_upgrading_a_database_with_history_keeps_every_timeline(tmp_path: Path) -> None:
    """0004 rebuilds the messages table on SQLite: with foreign keys on, dropping the old one
    deleted every timeline entry by cascade. Migrations run with them off, checked after."""
    engine = create_db_engine(f"sqlite:///{tmp_path / 'old.db'}")
    try:
        migrate(engine, "0003")
        with engine.begin() as conn:
            add_club(conn)
            add_sent_message(conn)
        migrate(engine)
        assert timeline_entries(engine) == 1
        with engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar_one() == 1
    finally:
        engine.dispose()


def body_storage(engine: Engine) -> dict[str, tuple[str, str]]:
    """How PostgreSQL keeps each body column of message_contents: (storage, compression)."""
    with engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT attname, attstorage, attcompression FROM pg_attribute"
                " WHERE attrelid = 'message_contents'::regclass"
                " AND attname IN ('body_text', 'body_html', 'attachments')"
            )
        )
        return {name: (storage, compression) for name, storage, compression in rows}


def server_has_lz4(engine: Engine) -> bool:
    with engine.connect() as conn:
        return bool(
            conn.execute(
                text(
                    "SELECT count(*) FROM pg_settings"
                    " WHERE name = 'default_toast_compression' AND 'lz4' = ANY(enumvals)"
                )
            ).scalar()
        )


@pytest.mark.postgres_only
def test_bodies_are_kept_in_their_row_compressed_with_lz4_and_back_on_a_downgrade(
    engine: Engine,
) -> None:
    """0008: the bodies are compressed (LZ4 where the server has it) and kept in the row; a
    body too large for a page still goes out of line and reads back whole."""
    compression = "l" if server_has_lz4(engine) else ""
    assert set(body_storage(engine).values()) == {("m", compression)}
    # 64 KiB that compresses badly, and a body that compresses well: both read back whole
    html = "".join(f"<p>{i * 7919 % 104729:x}</p>" for i in range(8000))
    text_body = "Hello Ada. " * 5000
    downgrade(engine, "0004")
    with engine.begin() as conn:
        add_club(conn)
        add_sent_message(conn)
    migrate(engine)  # through 0005, which moves its bodies into message_contents
    with engine.begin() as conn:
        conn.execute(
            message_contents.update()
            .where(message_contents.c.message_id == 7)
            .values(body_text=text_body, body_html=html)
        )
    with engine.connect() as conn:
        stored = conn.execute(
            select(message_contents.c.body_text, message_contents.c.body_html)
        ).one()
    assert tuple(stored) == (text_body, html)
    downgrade(engine, "0007")
    assert set(body_storage(engine).values()) == {("x", "")}
    migrate(engine)


def test_answers_given_before_they_moved_to_their_own_table_are_still_replayed(
    engine: Engine,
) -> None:
    """0009 moves each event's answer from its row into event_answers, and back on a
    downgrade: a repeat of a key answered before the upgrade gets the same answer."""
    answer = {"event_id": 3, "messages": [{"id": 7, "kind": "booking.confirmation"}]}
    downgrade(engine, "0008")
    with engine.begin() as conn:
        add_club(conn)
        for event_id, key, response in ((3, "k-3", answer), (4, "k-4", None)):
            conn.execute(
                text(
                    "INSERT INTO events (id, tenant_id, type, idempotency_key, payload,"
                    " occurred_at, received_at, response)"
                    " VALUES (:id, 1, 'booking.created', :key, '{}', :at, :at, :response)"
                ),
                {
                    "id": event_id,
                    "key": key,
                    "at": RECEIVED,
                    "response": None if response is None else json.dumps(response),
                },
            )
    migrate(engine)
    with engine.connect() as conn:
        replayed = stored_answers(conn, 1, ["k-3", "k-4"])
    assert replayed == {"k-3": answer, "k-4": {"event_id": 4, "messages": []}}
    downgrade(engine, "0008")
    with engine.connect() as conn:
        back = conn.execute(text("SELECT response FROM events ORDER BY id")).scalars().all()
    assert [r if r is None or isinstance(r, dict) else json.loads(r) for r in back] == [
        answer,
        None,
    ]
    migrate(engine)


def add_direct_message(conn: Connection, message_id: int, key: str, follow_up: int | None) -> None:
    conn.execute(
        text(
            "INSERT INTO messages (id, tenant_id, kind, channel, address, status, priority,"
            " due_at, attempts, send_key, message_id_header, locale, from_addr, subject_line,"
            " follow_up_index, created_at, updated_at) VALUES (:id, 1, 'direct', 'email',"
            " 'ada@example.org', 'sent', 50, :at, 1, :key, :header, 'en', 'club@club.example',"
            " 'Renewal', :n, :at, :at)"
        ),
        {
            "id": message_id,
            "key": key,
            "header": f"<m{message_id}@club.example>",
            "n": follow_up,
            "at": RECEIVED,
        },
    )


def send_keys(engine: Engine) -> dict[int, str]:
    with engine.connect() as conn:
        return {i: k for i, k in conn.execute(text("SELECT id, send_key FROM messages"))}


def test_one_off_messages_posted_before_their_keys_were_escaped_are_still_found(
    engine: Engine,
) -> None:
    """0010 escapes the idempotency key in one-off messages' send keys (and their
    follow-ups'), so posting a key again after the upgrade answers the message it made, even
    when an old key is another's new one; a downgrade writes them back."""
    before = {
        1: ("direct:a:b", None),  # the idempotency key "a:b"
        2: ("direct:a:b:follow-up:1", 1),  # its first follow-up
        3: ("direct:a%3Ab", None),  # "a%3Ab": its old key is "a:b"'s new one
        4: ("direct:plain", None),  # nothing to escape: unchanged
        5: ("direct:plain:follow-up:2", 2),
        6: ("direct:order:#5", None),  # ":#" as a client wrote it, not a hashed key's mark
    }
    downgrade(engine, "0009")
    with engine.begin() as conn:
        add_club(conn)
        for message_id, (key, follow_up) in before.items():
            add_direct_message(conn, message_id, key, follow_up)
    migrate(engine)
    assert send_keys(engine) == {
        1: direct_send_key("a:b"),
        2: follow_up_key(direct_send_key("a:b"), 1),
        3: direct_send_key("a%3Ab"),
        4: "direct:plain",
        5: "direct:plain:follow-up:2",
        6: direct_send_key("order:#5"),
    }
    downgrade(engine, "0009")
    assert send_keys(engine) == {message_id: key for message_id, (key, _) in before.items()}
    migrate(engine)
