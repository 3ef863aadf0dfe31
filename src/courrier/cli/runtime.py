"""What the commands share: settings read once, a checked database, a listening socket.

Each step turns its failure into a :class:`ConfigurationError` with one line
saying what to fix, which the command prints before exiting with code 2.
"""

from __future__ import annotations

import errno
import signal
import socket
import threading
from types import FrameType
from typing import Any

import uvicorn
from pydantic import ValidationError as SettingsError
from sqlalchemy.engine import Engine

from courrier.errors import ConfigurationError
from courrier.settings import Settings
from courrier.store.db import check_connection, create_db_engine
from courrier.store.migrate import current_revision, head_revision, migrate

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


def load_settings(**overrides: Any) -> Settings:
    """Settings from ``COURRIER_*`` and ``.env``, with command-line ``overrides`` (None ignored)."""
    given = {name: value for name, value in overrides.items() if value is not None}
    try:
        return Settings(**given)
    except SettingsError as exc:
        error = exc.errors()[0]
        name = str(error["loc"][0]) if error.get("loc") else "settings"
        setting = f"COURRIER_{name.upper()}"
        message = str(error.get("msg", "is not valid")).removeprefix("Value error, ")
        message = message.removeprefix(f"{setting}: ").removeprefix(f"{setting} ")
        raise ConfigurationError(f"{setting}: {message}") from exc


def open_database(settings: Settings, *, upgrade: bool = False) -> Engine:
    """A reachable database at the newest schema.

    ``upgrade`` migrates when behind (``courrier serve`` on SQLite); otherwise
    a database behind the code is an error telling to run ``courrier migrate``.
    """
    engine = create_db_engine(settings.database_url)
    try:
        check_connection(engine)
        if current_revision(engine) != head_revision():
            if not upgrade:
                raise ConfigurationError(
                    "the database schema is not up to date: run `courrier migrate` first"
                )
            migrate(engine)
    except ConfigurationError:
        engine.dispose()
        raise
    return engine


def listen_socket(host: str, port: int) -> socket.socket:
    """A socket bound to ``host:port`` and listening, handed to uvicorn (no race on the port)."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise ConfigurationError(
            f"cannot listen on {host}: not a known address ({exc.strerror})"
        ) from exc
    family, kind, proto, _, address = infos[0]
    sock = socket.socket(family, kind, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(address)
        sock.listen(2048)
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise ConfigurationError(
                f"port {port} on {host} is already in use: "
                "stop what uses it or choose another with --port"
            ) from exc
        raise ConfigurationError(f"cannot listen on {host}:{port}: {exc.strerror}") from exc
    return sock


def _stopping(_signal: int, _frame: FrameType | None) -> None:
    """Uvicorn re-raises the stop signal after its shutdown; this lets the caller clean up."""


def run_http(app: Any, sock: socket.socket, settings: Settings) -> None:
    """Serve ``app`` with uvicorn on ``sock`` until SIGINT or SIGTERM, then return.

    Returning (instead of dying by the re-raised signal) lets ``courrier serve``
    stop its dispatcher cleanly: it finishes or releases what it holds.
    """
    config = uvicorn.Config(
        app, log_level=settings.log_level, access_log=settings.log_level == "debug"
    )
    main_thread = threading.current_thread() is threading.main_thread()
    previous = {sig: signal.signal(sig, _stopping) for sig in STOP_SIGNALS} if main_thread else {}
    try:
        uvicorn.Server(config).run(sockets=[sock])
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
