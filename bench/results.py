"""What one benchmark scenario measured, and the process facts every scenario records."""

from __future__ import annotations

import os
import resource
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any


def peak_rss_mib() -> float:
    """This process's peak resident memory so far (``getrusage`` ``ru_maxrss``, KiB on Linux)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def cpu_seconds() -> float:
    """CPU time (user + system) this process has used so far, all threads together."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def postgres_cpu() -> float:
    """CPU seconds the local PostgreSQL server's processes have used so far.

    Every ``postgres`` process's user + system time, plus its waited-for
    children's (the postmaster's: backends that have exited). Zero where
    ``/proc`` does not show them.
    """
    ticks = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:  # the process has exited
            continue
        name, _, rest = text.partition(") ")
        if not name.endswith("(postgres"):
            continue
        fields = rest.split()
        ticks += sum(int(f) for f in fields[11:15])  # utime, stime, cutime, cstime
    return ticks / os.sysconf("SC_CLK_TCK")


@dataclass
class ScenarioResult:
    """One path's figures: N messages in ``seconds``, with a breakdown by stage.

    ``stages`` holds seconds spent per stage; a stage measured across
    threads sums the time of every thread, so it can exceed the wall time.
    """

    name: str
    label: str
    messages: int
    seconds: float
    cpu_seconds: float = 0.0
    stages: dict[str, float] = field(default_factory=dict)
    stage_cpu: dict[str, float] = field(default_factory=dict)
    baseline_rss_mib: float = 0.0
    peak_rss_mib: float = 0.0
    mean_bytes: float = 0.0
    checks: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    @property
    def rate(self) -> float:
        """Messages per second, end to end."""
        return self.messages / self.seconds if self.seconds > 0 else 0.0

    @property
    def verified(self) -> bool:
        """Every message reached the sink, and (Courrier) every message ended ``sent``."""
        statuses = self.checks.get("statuses")
        delivered = self.messages > 0 and self.checks.get("sink_received") == self.messages
        return delivered and (statuses is None or statuses == {"sent": self.messages})

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ScenarioResult:
        return cls(**data)


class StageClock:
    """Adds up wall and CPU time per named stage: ``with clock.stage("build"): ...``.

    :meth:`stage` counts the CPU of the whole process (for stages that run one
    after the other and may use threads); :meth:`timed_call` counts the CPU of
    the calling thread (for calls made from several threads at once).
    """

    def __init__(self) -> None:
        self.totals: dict[str, float] = {}
        self.cpu: dict[str, float] = {}

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        started, cpu_started = time.perf_counter(), cpu_seconds()
        try:
            yield
        finally:
            self.add(name, time.perf_counter() - started, cpu_seconds() - cpu_started)

    @contextmanager
    def timed_call(self, name: str) -> Iterator[None]:
        started, cpu_started = time.perf_counter(), time.thread_time()
        try:
            yield
        finally:
            self.add(name, time.perf_counter() - started, time.thread_time() - cpu_started)

    def add(self, name: str, seconds: float, cpu: float = 0.0) -> None:
        self.totals[name] = self.totals.get(name, 0.0) + seconds
        self.cpu[name] = self.cpu.get(name, 0.0) + cpu
