"""Outbound benchmark: Courrier against the stdlib way and the raw transport, on one smtp-sink.

    .venv/bin/python bench/outbound.py            # N=10,000, SQLite and PostgreSQL
    .venv/bin/python bench/outbound.py --quick    # N=200, a few seconds
    .venv/bin/python bench/outbound.py --write-docs docs/benchmarks.md

Each path runs in its own child process (``--scenario``), one after the
other, so that its peak memory (``ru_maxrss``) is its own and no path warms
caches for another; all of them send into the same ``smtp-sink``, whose
counter must grow by N for each. The benchmark is not a test: it prints
figures and writes them to the docs; it asserts nothing about speed.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a file: make ``bench`` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.report import format_report, machine_facts, write_docs
from bench.results import ScenarioResult
from bench.sink import SinkError, SmtpSink
from bench.workload import make_bookings

ROOT = Path(__file__).resolve().parent.parent
RESULT_PREFIX = "BENCH-RESULT "
#: events per ``accept_many`` (one transaction): the most ``POST /v1/events/batch`` takes
CHUNK = 500
#: the same on SQLite with worker processes beside intake: each batch's sending overlaps the
#: next batch's planning, and what is left after intake's last commit is one batch to send.
#: (PostgreSQL keeps 500: see docs/benchmarks.md, "2026-12-07".)
WORKERS_CHUNK = 100
SCENARIOS = (
    "stdlib",
    "raw",
    "raw-pipelined",
    "courrier-sqlite",
    "courrier-postgres",
    "courrier-sqlite-workers",
    "courrier-postgres-workers",
    "courrier-sqlite-api-batch",
    "courrier-postgres-api-batch",
    "courrier-sqlite-api-single",
    "courrier-postgres-api-single",
)


def database_of(scenario: str) -> str:
    """``sqlite`` or ``postgres`` for a Courrier path (``courrier-sqlite-api-batch``...)."""
    return scenario.split("-")[1]


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--n", type=int, default=10_000, help="booking confirmations per path")
    parser.add_argument("--quick", action="store_true", help="N=200: a check that runs in seconds")
    parser.add_argument(
        "--databases", default="sqlite,postgres", help="Courrier on these (comma-separated)"
    )
    parser.add_argument(
        "--pg-url",
        default="postgresql://postgres@127.0.0.1:5432/postgres",
        help="PostgreSQL server where a database is created for the run and dropped after",
    )
    parser.add_argument("--pool-size", type=int, help="SMTP connections (default: the setting's)")
    parser.add_argument(
        "--batch-size", type=int, help="messages claimed at once (default: setting)"
    )
    parser.add_argument(
        "--workers", type=int, default=1, help="worker processes in the *-workers paths"
    )
    parser.add_argument(
        "--chunk",
        type=int,
        help=f"events per accept_many transaction (default {CHUNK}; {WORKERS_CHUNK} in the"
        " courrier-sqlite-workers path, whose workers send a batch while intake plans the next)",
    )
    parser.add_argument(
        "--intakes",
        type=int,
        default=1,
        help="intake processes in the *-workers paths (as API processes), each a share of the events",
    )
    parser.add_argument("--profile", type=Path, help="folder for cProfile stats of Courrier's path")
    parser.add_argument(
        "--repeat", type=int, default=1, help="run every path this many times, keep the fastest"
    )
    parser.add_argument("--only", help="run only these scenarios (comma-separated)")
    parser.add_argument("--write-docs", type=Path, help="write the figures into this Markdown file")
    parser.add_argument("--scenario", choices=SCENARIOS, help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.quick:
        args.n = 200
    return args


def run_scenario(args: argparse.Namespace) -> ScenarioResult:
    """In the child: run one path against the sink on ``args.port``."""
    bookings = make_bookings(args.n)
    if args.scenario == "stdlib":
        from bench.references import run_stdlib

        return run_stdlib(args.port, bookings)
    if args.scenario in ("raw", "raw-pipelined"):
        from bench.references import run_raw

        return run_raw(args.port, bookings, pipelined=args.scenario == "raw-pipelined")
    from bench.courrier_path import CourrierOptions, run_courrier

    database = database_of(args.scenario)
    profile = args.profile / f"courrier-{database}.pstats" if args.profile else None
    options = CourrierOptions(
        database=database,
        pg_admin_url=args.pg_url,
        chunk=args.chunk
        or (WORKERS_CHUNK if args.scenario == "courrier-sqlite-workers" else CHUNK),
        pool_size=args.pool_size,
        batch_size=args.batch_size,
        profile_to=profile,
        workers=args.workers,
        intakes=args.intakes,
    )
    if args.scenario.endswith("-workers"):
        from bench.courrier_workers import run_courrier_with_workers

        return run_courrier_with_workers(args.port, bookings, options)
    if "-api-" in args.scenario:
        from bench.courrier_api import run_courrier_api

        way = args.scenario.rpartition("-")[2]
        return run_courrier_api(args.port, bookings, options, way)
    return run_courrier(args.port, bookings, options)


def child_command(args: argparse.Namespace, scenario: str, port: int) -> list[str]:
    argv = [sys.executable, "-m", "bench.outbound", "--scenario", scenario, "--port", str(port)]
    argv += ["--n", str(args.n), "--pg-url", args.pg_url]
    argv += ["--workers", str(args.workers), "--intakes", str(args.intakes)]
    for flag, value in (
        ("--chunk", args.chunk),
        ("--pool-size", args.pool_size),
        ("--batch-size", args.batch_size),
    ):
        if value:
            argv += [flag, str(value)]
    if args.profile:
        argv += ["--profile", str(args.profile.resolve())]
    return argv


def run_child(args: argparse.Namespace, scenario: str, sink: SmtpSink) -> ScenarioResult:
    """Run one path in a child process and check the sink received every message."""
    before = sink.messages
    done = subprocess.run(
        child_command(args, scenario, sink.port), cwd=ROOT, capture_output=True, text=True
    )
    lines = [ln for ln in done.stdout.splitlines() if ln.startswith(RESULT_PREFIX)]
    if done.returncode != 0 or not lines:
        reason = (done.stderr.strip().splitlines() or ["no output"])[-1]
        failed = ScenarioResult(name=scenario, label=scenario, messages=0, seconds=0.0)
        failed.notes.append(f"did not run: {reason}")
        failed.checks["error"] = done.stderr[-4000:]
        print(f"{scenario} failed:\n{done.stderr[-2000:]}", file=sys.stderr)
        return failed
    result = ScenarioResult.from_json(json.loads(lines[-1].removeprefix(RESULT_PREFIX)))
    result.checks["sink_received"] = sink.wait_for_messages(before + args.n) - before
    return result


def fastest(runs: list[ScenarioResult]) -> ScenarioResult:
    """The fastest verified run of a path, noting every run's rate and any failed run."""
    verified = [r for r in runs if r.verified]
    best = max(verified or runs, key=lambda r: r.rate)
    if len(runs) > 1:
        rates = sorted(r.rate for r in verified)
        if rates:
            best.notes.append(
                f"{len(runs)} runs: {', '.join(f'{r:,.0f}' for r in rates)} msg/s; "
                f"median {rates[len(rates) // 2]:,.0f}; the fastest is shown"
            )
    failed = [r for r in runs if not r.verified]
    if failed and verified:
        reasons = "; ".join(dict.fromkeys(n for r in failed for n in r.notes if "did not" in n))
        best.notes.append(f"{len(failed)} of {len(runs)} runs failed or were short: {reasons}")
    return best


def scenarios_to_run(args: argparse.Namespace) -> list[str]:
    if args.only:
        return [s for s in args.only.split(",") if s in SCENARIOS]
    databases = {d.strip() for d in args.databases.split(",")}
    return [s for s in SCENARIOS if not s.startswith("courrier-") or database_of(s) in databases]


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.scenario:
        result = run_scenario(args)
        print(RESULT_PREFIX + json.dumps(result.to_json()), flush=True)
        return 0
    if args.profile:
        args.profile.mkdir(parents=True, exist_ok=True)
    facts = machine_facts(args)
    runs: dict[str, list[ScenarioResult]] = {s: [] for s in scenarios_to_run(args)}
    try:
        with SmtpSink() as sink:
            for round_ in range(1, args.repeat + 1):  # round-robin: drift hits every path alike
                for scenario, done in runs.items():
                    print(f"run {round_}/{args.repeat}: {scenario} (N={args.n})", file=sys.stderr)
                    done.append(run_child(args, scenario, sink))
    except SinkError as exc:
        print(f"bench/outbound.py: {exc}", file=sys.stderr)
        return 2
    results = [fastest(done) for done in runs.values()]
    report = format_report(results, facts)
    print(report)
    if args.write_docs:
        write_docs(args.write_docs, report, facts)
        print(f"wrote {args.write_docs}", file=sys.stderr)
    return 0 if all(r.verified for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
