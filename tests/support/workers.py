"""Real worker processes for delivery tests: `python -m courrier.engine.worker` on the test DB.

Each worker gets its settings through ``COURRIER_*`` variables, as an
operator's would, and logs to a file the test can read.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.engine import Engine

from courrier.store.schema import messages


class WorkerProcess:
    """One running worker; ``log`` is where its stderr goes."""

    def __init__(self, folder: Path, name: str, settings: dict[str, str]) -> None:
        self.log = folder / f"worker-{name}.log"
        env = {k: v for k, v in os.environ.items() if not k.startswith("COURRIER_")}
        env.update({f"COURRIER_{k.upper()}": v for k, v in settings.items()})
        with self.log.open("wb") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "courrier.engine.worker"],
                cwd=folder,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def wait_ready(self, timeout: float = 15.0) -> None:
        """Wait for the worker's "ready" line; fail with its output if it dies first."""
        deadline = time.monotonic() + timeout
        while "ready" not in self.output():
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise AssertionError(f"worker did not start:\n{self.output()}")
            time.sleep(0.05)

    def stop(self, timeout: float = 10.0) -> int:
        """SIGTERM, then wait; the exit code."""
        if self.process.poll() is None:
            self.process.terminate()
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            raise AssertionError(f"worker ignored SIGTERM:\n{self.output()}") from None


def wait_until_all(engine: Engine, status: str, count: int, timeout: float) -> None:
    """Poll the database until ``count`` messages are in ``status``."""
    deadline = time.monotonic() + timeout
    query = select(func.count()).where(messages.c.status == status)
    while True:
        with engine.connect() as conn:
            done = int(conn.execute(query).scalar_one())
        if done >= count:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"only {done} of {count} messages {status} after {timeout}s")
        time.sleep(0.1)
