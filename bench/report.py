"""The benchmark's figures as Markdown: printed, and written into ``docs/benchmarks.md``.

Only the part between the two ``bench:outbound`` markers is rewritten, so the
prose around it (what the figures mean, where the time goes) survives a rerun.
"""

from __future__ import annotations

import argparse
import os
import platform
import sqlite3
import subprocess
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.results import ScenarioResult

START = "<!-- bench:outbound:start -->"
END = "<!-- bench:outbound:end -->"
STAGE_ORDER = (
    "plan",
    "plan: subjects, events",
    "plan: compose",
    "plan: templates",
    "plan: insert messages",
    "send",
    "claim",
    "render",
    "build",
    "smtp",
    "record",
    "serialise+send",
)
AIM_STDLIB = 10.0
AIM_RAW = 0.8


def machine_facts(args: argparse.Namespace) -> dict[str, Any]:
    """What the figures depend on: machine, versions, load, workload size and settings."""
    load = os.getloadavg()
    return {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "cpus": os.cpu_count(),
        "load": f"{load[0]:.2f} {load[1]:.2f} {load[2]:.2f}",
        "python": platform.python_version(),
        "system": f"{platform.system()} {platform.release()} {platform.machine()}",
        "sqlite": sqlite3.sqlite_version,
        "postgresql": postgres_version(args.pg_url),
        "commit": source_commit(),
        "n": args.n,
        "pool_size": args.pool_size,
        "batch_size": args.batch_size,
        "chunk": args.chunk or "per path",
    }


def postgres_version(url: str) -> str:
    """The server's version, or why it could not be read."""
    from sqlalchemy import create_engine, text

    from courrier.store.db import normalise_url

    try:
        engine = create_engine(normalise_url(url))
        with engine.connect() as conn:
            version = str(conn.execute(text("SHOW server_version")).scalar_one())
        engine.dispose()
        return version
    except Exception as exc:
        return f"unavailable ({exc.__class__.__name__})"


def source_commit() -> str:
    """The commit of the ``courrier`` package the run imports (not of the folder it runs
    from: a comparison may import another tree), noting changes not committed in it."""
    import courrier

    folder = str(Path(courrier.__file__).resolve().parent)
    commit = _git("-C", folder, "rev-parse", "--short", "HEAD")
    changed = subprocess.run(
        ["git", "-C", folder, "status", "--porcelain", "--", "."],
        capture_output=True,
        text=True,
        check=False,
    ).stdout.strip()
    return f"{commit} with uncommitted changes to it" if changed else commit


def _git(*argv: str) -> str:
    done = subprocess.run(["git", *argv], capture_output=True, text=True, check=False)
    return done.stdout.strip() or "unknown"


def _ratio(value: float, reference: ScenarioResult | None) -> str:
    if reference is None or not reference.rate or not value:
        return "-"
    return f"{value / reference.rate:.2f}x"


def results_table(results: list[ScenarioResult]) -> list[str]:
    by_name = {r.name: r for r in results}
    stdlib, raw = by_name.get("stdlib"), by_name.get("raw")
    lines = [
        "| path | msg/s | seconds | x stdlib | x raw | CPU ms/msg | size | peak RSS | verified |",
        "|---|--:|--:|--:|--:|--:|--:|--:|---|",
    ]
    for r in results:
        if not r.messages:
            lines.append(f"| {r.label} | - | - | - | - | - | - | - | {'; '.join(r.notes)} |")
            continue
        lines.append(
            f"| {r.label} | {r.rate:,.0f} | {r.seconds:.2f} | {_ratio(r.rate, stdlib)} "
            f"| {_ratio(r.rate, raw)} | {1000 * r.cpu_seconds / r.messages:.2f} "
            f"| {f'{r.mean_bytes / 1024:.1f} KiB' if r.mean_bytes else '-'} "
            f"| {r.peak_rss_mib:.0f} MiB ({r.baseline_rss_mib:.0f} before) | {_verification(r)} |"
        )
    return lines


def _verification(result: ScenarioResult) -> str:
    sink = result.checks.get("sink_received")
    text = f"sink got {sink}/{result.messages}"
    statuses = result.checks.get("statuses")
    if statuses is not None:
        text += ", DB: " + ", ".join(f"{k} {v}" for k, v in sorted(statuses.items()))
    return ("✔ " if result.verified else "✘ ") + text


def stage_table(results: list[ScenarioResult]) -> list[str]:
    lines = [
        "| path | stage | seconds | ms / message | CPU ms / message | calls |",
        "|---|---|--:|--:|--:|--:|",
    ]
    for r in results:
        calls = r.checks.get("calls", {})
        names = sorted(
            {*r.stages, *r.stage_cpu},
            key=lambda s: STAGE_ORDER.index(s) if s in STAGE_ORDER else 99,
        )
        for stage in names:
            wall = r.stages.get(stage)
            seconds = f"{wall:.3f}" if wall is not None else "-"
            per = f"{1000 * wall / r.messages:.3f}" if wall is not None and r.messages else "-"
            cpu = 1000 * r.stage_cpu.get(stage, 0.0) / r.messages if r.messages else 0.0
            lines.append(
                f"| {r.label} | {stage} | {seconds} | {per} | {cpu:.3f} | {calls.get(stage, '')} |"
            )
    return lines


def aims(results: list[ScenarioResult]) -> list[str]:
    by_name = {r.name: r for r in results}
    stdlib, raw = by_name.get("stdlib"), by_name.get("raw")
    lines = []
    for r in results:
        if not r.name.startswith("courrier-") or not r.messages or not stdlib or not raw:
            continue
        to_stdlib, to_raw = r.rate / stdlib.rate, r.rate / raw.rate
        send = r.stages.get("send")
        alone = f" Its send stage alone: {r.messages / send:,.0f} msg/s." if send else ""
        lines.append(
            f"- {r.label}: {to_stdlib:.2f}x the stdlib way (aim ≥ {AIM_STDLIB:g}x: "
            f"{'met' if to_stdlib >= AIM_STDLIB else 'not met'}), {to_raw:.2f}x the raw transport "
            f"(aim ≥ {AIM_RAW:g}x: {'met' if to_raw >= AIM_RAW else 'not met'}).{alone}"
        )
    return lines


def format_report(results: list[ScenarioResult], facts: dict[str, Any]) -> str:
    """The figures as Markdown: throughput, ratios against the aims, stages, notes."""
    lines = [
        f"N = {facts['n']} booking confirmations (text + HTML + .ics) per path, "
        f"into Postfix's smtp-sink on 127.0.0.1; {facts['date']}, commit {facts['commit']}.",
        "",
        *results_table(results),
        "",
        *aims(results),
        "",
        "Time per stage (Courrier's claim, build, smtp and record add up every sending thread,",
        "so together they can exceed the send stage's wall time):",
        "",
        *stage_table(results),
        "",
        "Machine: "
        f"{facts['cpus']} CPUs, {facts['system']}, Python {facts['python']}, "
        f"SQLite {facts['sqlite']}, PostgreSQL {facts['postgresql']}, "
        f"load average at start {facts['load']}.",
    ]
    notes = [f"- {r.label}: {note}" for r in results for note in r.notes]
    settings = {r.name: r.checks for r in results if "pool_size" in r.checks}
    for name, checks in settings.items():
        notes.append(
            f"- {name}: smtp_pool_size {checks['pool_size']}, batch_size {checks['batch_size']}, "
            f"{checks['chunk']} events per accept_many, {checks['dispatch_rounds']} claims"
        )
    if notes:
        lines += ["", "Notes:", "", *notes]
    return "\n".join(lines)


DOC_HEAD = """# Benchmarks

## Outbound: booking confirmations

`bench/outbound.py` plans and sends N booking confirmations (text, HTML and an
`.ics` invitation) through Courrier, durable end to end, and times two
references in the same run, into the same Postfix `smtp-sink` on loopback.

"""

DOC_TAIL = """

Rerun: `scripts/bench` (N=10,000, writes this page), or
`.venv/bin/python bench/outbound.py --quick` (N=200, prints only).
"""


def write_docs(path: Path, report: str, facts: dict[str, Any]) -> None:
    """Put ``report`` between the markers of ``path`` (creating the page when missing)."""
    block = f"{START}\n{report}\n{END}"
    if path.exists() and START in (current := path.read_text()) and END in current:
        head, _, rest = current.partition(START)
        _, _, tail = rest.partition(END)
        path.write_text(head + block + tail)
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(DOC_HEAD + block + DOC_TAIL)


def write_section(path: Path, start: str, end: str, section: str) -> None:
    """Put another benchmark's section between its markers, or at the end of the page
    (made as this benchmark makes it, its own figures still to come, when missing)."""
    block = f"{start}\n{section}\n{end}"
    pending = "_Not measured yet: run `scripts/bench`._"
    current = (
        path.read_text() if path.exists() else f"{DOC_HEAD}{START}\n{pending}\n{END}{DOC_TAIL}"
    )
    if start in current and end in current:
        head, _, rest = current.partition(start)
        _, _, tail = rest.partition(end)
        path.write_text(head + block + tail)
    else:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(current.rstrip("\n") + "\n\n" + block + "\n")
