"""The ``courrier`` command: what an operator runs.

Every failure an operator can fix (bad setting, database or SMTP server
unreachable, port in use, unknown tenant) prints one line starting with
``error:`` and exits with code 2, without a traceback.
"""

from __future__ import annotations

from typing import Annotated

import typer

from courrier.api.app import create_app
from courrier.cli import demo as demo_module
from courrier.cli import tenants
from courrier.cli.embedded import Embedded
from courrier.cli.errors import one_line_errors
from courrier.cli.runtime import listen_socket, load_settings, open_database, run_http
from courrier.heap import settle_heap

app = typer.Typer(
    name="courrier",
    help="Courrier: notification and mail hub for booking and membership platforms.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.add_typer(tenants.app, name="tenant")

HostOption = Annotated[
    str | None, typer.Option("--host", help="Address to listen on (COURRIER_HOST).")
]
PortOption = Annotated[
    int | None, typer.Option("--port", min=0, max=65535, help="Port to listen on (COURRIER_PORT).")
]


@app.command()
@one_line_errors
def serve(host: HostOption = None, port: PortOption = None) -> None:
    """Run API, dispatcher and (without COURRIER_SMTP_URL) local mail capture in one process."""
    settings = load_settings(host=host, port=port)
    engine = open_database(settings, upgrade=not settings.is_postgres)
    try:
        with (
            listen_socket(settings.host, settings.port) as sock,
            Embedded(settings, engine) as embedded,
        ):
            web = create_app(settings, engine=engine, wakeup=embedded.wakeup)
            address = f"http://{settings.host}:{sock.getsockname()[1]}"
            typer.echo(f"Courrier serving on {address} (API docs: {address}/docs)")
            if embedded.capture is not None:
                typer.echo(f"Mail is captured locally: see {address}/captured")
            run_http(web, sock, settings)
    finally:
        engine.dispose()


@app.command()
@one_line_errors
def api(host: HostOption = None, port: PortOption = None) -> None:
    """Run the API only (run workers beside it with `courrier worker`)."""
    settings = load_settings(host=host, port=port)
    engine = open_database(settings)
    try:
        with listen_socket(settings.host, settings.port) as sock:
            typer.echo(f"Courrier API on http://{settings.host}:{sock.getsockname()[1]}")
            app = create_app(settings, engine=engine)
            settle_heap()
            run_http(app, sock, settings)
    finally:
        engine.dispose()


@app.command()
@one_line_errors
def worker() -> None:
    """Run a dispatcher that sends due messages, until SIGTERM or SIGINT."""
    from courrier.engine.worker import run_worker
    from courrier.inbound.reader import MailboxReaders

    settings = load_settings()
    engine = open_database(settings)
    readers = MailboxReaders(engine, settings).start()  # the shared inbox's mailboxes
    try:
        run_worker(settings)
    finally:
        readers.stop()
        engine.dispose()


@app.command()
@one_line_errors
def migrate() -> None:
    """Bring the database to the newest schema (safe to run again)."""
    settings = load_settings()
    open_database(settings, upgrade=True).dispose()
    typer.echo("database is at the newest schema")


@app.command()
@one_line_errors
def demo() -> None:
    """Create (or reuse) the demo tenant with members and bookings; print a new API key."""
    demo_module.run(load_settings())


def main() -> None:
    """Entry point of the ``courrier`` script."""
    app()
