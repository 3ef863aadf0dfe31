"""``courrier serve`` as a real process: the demo's confirmations show up in the captured mail.

This is what a newcomer sees after ``scripts/serve``: a SQLite file, local
capture, the demo run against it, the mails visible through the API and on
the captured-mail page within seconds.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import icalendar
import pytest

from courrier.store.db import create_db_engine
from courrier.store.migrate import migrate
from tests.support.services import free_port

COURRIER = str(Path(sys.executable).with_name("courrier"))


def environment(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("COURRIER_")}
    env |= {
        "COURRIER_DATABASE_URL": f"sqlite:///{tmp_path / 'courrier.db'}",
        "COURRIER_SECRET_KEY": "smoke-test",
        "COURRIER_POLL_SECONDS": "0.2",
        "COURRIER_LOG_LEVEL": "warning",
    }
    return env


def wait_until(check: Any, timeout: float = 10.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        try:
            result = check()
            if result:
                return result
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline:
            raise AssertionError(f"not true after {timeout}s: {check}")
        time.sleep(0.1)


def stop(process: subprocess.Popen[bytes]) -> str:
    """SIGTERM, as an operator would; the output, once the process has exited."""
    process.send_signal(signal.SIGTERM)
    try:
        output, _ = process.communicate(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()
        output, _ = process.communicate()
    return output.decode(errors="replace")


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[str, dict[str, str]]]:
    """``courrier serve`` on a free port; its base URL and environment."""
    env = environment(tmp_path)
    port = free_port()
    command = [COURRIER, "serve", "--port", str(port)]
    process = subprocess.Popen(
        command, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    base = f"http://127.0.0.1:{port}"

    def healthy() -> bool:
        if process.poll() is not None:
            raise AssertionError("courrier serve exited:\n" + stop(process))
        return httpx.get(f"{base}/healthz").status_code == 200

    wait_until(healthy)
    yield base, env
    output = stop(process)
    assert process.returncode == 0, output


def test_the_demo_mails_show_up_through_the_api_and_the_page(
    served: tuple[str, dict[str, str]], tmp_path: Path
) -> None:
    base, env = served
    demo = subprocess.run(
        [COURRIER, "demo"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60
    )
    assert demo.returncode == 0, demo.stderr
    [key] = re.findall(r"\bck_[A-Za-z0-9_\-]+", demo.stdout)
    headers = {"Authorization": f"Bearer {key}"}

    def three_captured() -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = httpx.get(f"{base}/v1/captured", headers=headers).json()[
            "items"
        ]
        return items if len(items) == 3 else []

    items = wait_until(three_captured, timeout=10)
    detail = httpx.get(f"{base}/v1/captured/{items[0]['id']}", headers=headers).json()
    ics = httpx.get(base + detail["ics_url"], headers=headers)
    assert icalendar.Calendar.from_ical(ics.content).walk("VEVENT")
    page = httpx.get(f"{base}/captured")
    assert page.status_code == 200
    for item in items:
        assert item["recipients"][0] in page.text


def test_courrier_api_serves_until_sigterm_then_exits_0(tmp_path: Path) -> None:
    env = environment(tmp_path)
    engine = create_db_engine(env["COURRIER_DATABASE_URL"])
    migrate(engine)
    engine.dispose()
    port = free_port()
    process = subprocess.Popen(
        [COURRIER, "api", "--port", str(port)],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        wait_until(lambda: httpx.get(f"http://127.0.0.1:{port}/healthz").status_code == 200)
        schema = httpx.get(f"http://127.0.0.1:{port}/openapi.json").json()
        assert "/v1/events" in schema["paths"]
    finally:
        output = stop(process)
    assert process.returncode == 0, output
