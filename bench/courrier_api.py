"""Courrier as integrators feed it: events posted over HTTP, timed until every mail is sent.

The other Courrier paths call the engine in the benchmark's process. Here
Courrier runs as an operator runs it, in processes of its own: ``courrier
serve`` (API and dispatcher in one process) on SQLite, ``courrier api`` and
one ``courrier worker`` on PostgreSQL. The benchmark's process is the
integrator's platform, posting the ``booking.created`` events:

* ``batch``: ``POST /v1/events/batch``, 500 events a request, one client;
* ``single``: ``POST /v1/events``, one event a request, from
  :data:`CLIENTS` clients at once (as the request handlers of a busy
  platform would), each on its own keep-alive connection.

Untimed: the database made and seeded as for the other paths, an API key,
the processes started and answering ``/healthz``, every request body
encoded. Timed: from the first request until the database holds N messages
``sent``. The CPU and memory columns are Courrier's processes' (from ``/proc``,
added up); the client's own CPU is in the notes. The client is ``http.client`` over
persistent connections, to cost the platform as little as it can.
"""

from __future__ import annotations

import http.client
import json
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.courrier_path import (
    CourrierOptions,
    booking_event,
    message_statuses,
    seeded_database,
    server_note,
)
from bench.courrier_workers import (
    SENT_POLL,
    all_sent,
    process_cpu,
    stop_workers,
    worker_environment,
)
from bench.results import ScenarioResult, cpu_seconds, postgres_cpu
from bench.sink import free_port
from bench.workload import Booking, Venue
from courrier.store.tenants import create_api_key

#: clients posting at once in the ``single`` way
CLIENTS = 8
#: events a request in the ``batch`` way (the endpoint's most)
BATCH = 500
READY_TIMEOUT = 30.0


def run_courrier_api(
    port: int, bookings: list[Booking], options: CourrierOptions, way: str
) -> ScenarioResult:
    """Post the bookings' events to Courrier's API (``way``: batch or single) until all are sent."""
    with seeded_database(options, bookings) as (url, engine, tenant):
        with engine.begin() as conn:
            key = create_api_key(conn, tenant.id, now=datetime.now(UTC))
        now = datetime.now(UTC)
        bodies = [_body(booking_event(b, Venue(), now)) for b in bookings]
        api_port = free_port()
        processes = _start(url, api_port, port, options)
        try:
            _wait_ready(api_port, processes)
            result = _timed(engine, api_port, key, bodies, processes, options, way)
        finally:
            stop_workers(processes)
        result.checks["statuses"] = message_statuses(engine)
    return result


def _body(event: Any) -> bytes:
    return json.dumps(
        {
            "type": event.type,
            "idempotency_key": event.idempotency_key,
            "occurred_at": event.occurred_at.isoformat(),
            "subject": event.subject,
        }
    ).encode()


def _environment(
    url: str, api_port: int, sink_port: int, options: CourrierOptions
) -> dict[str, str]:
    """A worker's variables (:func:`bench.courrier_workers.worker_environment`), and the API's."""
    env = worker_environment(url, sink_port, options)
    env.update(COURRIER_HOST="127.0.0.1", COURRIER_PORT=str(api_port), COURRIER_LOG_LEVEL="warning")
    return env


def _start(
    url: str, api_port: int, sink_port: int, options: CourrierOptions
) -> list[subprocess.Popen[bytes]]:
    """``courrier serve`` on SQLite; ``courrier api`` and a ``courrier worker`` on PostgreSQL."""
    courrier = str(Path(sys.executable).with_name("courrier"))
    env = _environment(url, api_port, sink_port, options)
    commands = [["serve"]] if options.database == "sqlite" else [["api"], ["worker"]]
    return [
        subprocess.Popen(
            [courrier, *command],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for command in commands
    ]


def _wait_ready(api_port: int, processes: list[subprocess.Popen[bytes]]) -> None:
    deadline = time.monotonic() + READY_TIMEOUT
    while time.monotonic() < deadline:
        if any(p.poll() is not None for p in processes):
            raise RuntimeError("a courrier process exited at start")
        try:
            connection = http.client.HTTPConnection("127.0.0.1", api_port, timeout=2)
            connection.request("GET", "/healthz")
            if connection.getresponse().status == 200:
                connection.close()
                time.sleep(0.5)  # the worker, too, is up and polling
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError("courrier did not answer /healthz in time")


def _post(connection: http.client.HTTPConnection, path: str, body: bytes, key: str) -> None:
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    connection.request("POST", path, body, headers)
    response = connection.getresponse()
    answer = response.read()
    if response.status != 202:
        raise RuntimeError(f"{path} answered {response.status}: {answer[:300]!r}")


def _client(api_port: int, key: str, requests: list[tuple[str, bytes]], errors: list[str]) -> None:
    connection = http.client.HTTPConnection("127.0.0.1", api_port, timeout=120)
    try:
        for path, body in requests:
            _post(connection, path, body, key)
    except Exception as exc:  # reported by the scenario: the run is not counted
        errors.append(str(exc))
    finally:
        connection.close()


def _requests(bodies: list[bytes], way: str) -> list[list[tuple[str, bytes]]]:
    """Each client's requests, in order."""
    if way == "batch":
        batches = [bodies[i : i + BATCH] for i in range(0, len(bodies), BATCH)]
        return [[("/v1/events/batch", b'{"events": [' + b", ".join(b) + b"]}") for b in batches]]
    return [[("/v1/events", body) for body in bodies[k::CLIENTS]] for k in range(CLIENTS)]


def _status_mib(pid: int, field: str) -> float:
    """A ``/proc/PID/status`` memory line (kB) in MiB; 0 when it cannot be read."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def _resident_mib(pid: int) -> float:
    return _status_mib(pid, "VmRSS")


def _peak_rss_mib(pid: int) -> float:
    return _status_mib(pid, "VmHWM")


def _timed(
    engine: Any,
    api_port: int,
    key: str,
    bodies: list[bytes],
    processes: list[subprocess.Popen[bytes]],
    options: CourrierOptions,
    way: str,
) -> ScenarioResult:
    per_client = _requests(bodies, way)
    errors: list[str] = []
    threads = [
        threading.Thread(target=_client, args=(api_port, key, requests, errors))
        for requests in per_client
    ]
    courrier_cpu = sum(process_cpu(p.pid) for p in processes)
    baseline = sum(_resident_mib(p.pid) for p in processes)
    server_started = postgres_cpu()
    client_started = cpu_seconds()
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    posted = time.perf_counter() - started
    client_cpu = cpu_seconds() - client_started
    while not errors and not all_sent(engine, len(bodies)):
        time.sleep(SENT_POLL)
    seconds = time.perf_counter() - started
    courrier_cpu = sum(process_cpu(p.pid) for p in processes) - courrier_cpu
    server_cpu = postgres_cpu() - server_started
    peak = sum(_peak_rss_mib(p.pid) for p in processes)
    if errors:
        raise RuntimeError(f"{len(errors)} clients failed: {errors[0]}")
    count = len(bodies)
    database = "SQLite" if options.database == "sqlite" else "PostgreSQL"
    shape = "courrier serve" if options.database == "sqlite" else "courrier api + 1 worker"
    how = (
        f"POST /v1/events/batch, {BATCH} a request"
        if way == "batch"
        else f"POST /v1/events, {CLIENTS} clients"
    )
    result = ScenarioResult(
        name=f"courrier-{options.database}-api-{way}",
        label=f"Courrier over HTTP, {database} ({shape}), {how}",
        messages=count,
        seconds=seconds,
        cpu_seconds=courrier_cpu,
        baseline_rss_mib=baseline,
        peak_rss_mib=peak,
        stages={"posting": posted, "until all sent": seconds - posted},
        stage_cpu={"client (the platform)": client_cpu},
        checks={"way": way, "clients": len(per_client)},
        notes=[
            "CPU ms/msg is Courrier's processes' (from /proc); the posting client used"
            f" {client_cpu / count * 1000:.2f} ms a message besides",
            f"every event posted after {posted:.2f} s ({count / posted:,.0f} events/s accepted)",
        ],
    )
    if options.database == "postgres":
        result.notes.append(server_note(server_cpu, count))
    return result
