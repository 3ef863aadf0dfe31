"""A batch's timeline entries: written in order, each with its own values, whichever way."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy.engine import Engine

from courrier.store import timeline
from tests.support.factories import seed

NOW = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)


def test_runs_of_alike_entries_and_single_ones_are_written_in_order(engine: Engine) -> None:
    ids = seed(engine, 6, now=NOW)
    shared: dict[str, Any] = {"worker": "w1", "attempt": 1}
    later = NOW + timedelta(seconds=5)
    entries = [
        timeline.TimelineEntry(message_id=i, at=NOW, status="sending", entry="claimed", data=shared)
        for i in ids[:3]
    ]
    entries.append(
        timeline.TimelineEntry(
            message_id=ids[3], at=NOW, status="sending", entry="taken_over", reason="lease", data={}
        )
    )
    entries += [
        timeline.TimelineEntry(message_id=i, at=later, status="sent", entry="sent", reason="250 ok")
        for i in ids[3:]
    ]
    with engine.begin() as conn:
        timeline.record(conn, entries)
        rows = [row for i in ids for row in timeline.timeline_of(conn, i)]
    assert [(r["message_id"], r["entry"]) for r in sorted(rows, key=lambda r: r["id"])] == [
        (e["message_id"], e["entry"]) for e in entries
    ]
    written = sorted(rows, key=lambda r: r["id"])
    assert [(r["at"], r["status"], r["reason"], r["data"]) for r in written] == [
        (e["at"], e["status"], e.get("reason"), e.get("data")) for e in entries
    ]
