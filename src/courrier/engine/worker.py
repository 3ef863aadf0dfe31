"""A worker process: one dispatcher sending due messages until SIGTERM or SIGINT.

``python -m courrier.engine.worker`` (or ``courrier worker``) reads the
settings from ``COURRIER_*`` variables. On SIGTERM it stops claiming,
finishes the sends in flight, gives the claimed-but-unsent messages back
to the queue and exits 0. With no SMTP server configured it runs a local
capture, so mail is kept in the database instead of leaving the machine.
"""

from __future__ import annotations

import logging
import signal
import sys
import threading
from types import FrameType
from wsgiref.simple_server import WSGIServer

from prometheus_client import start_http_server

from courrier import metrics
from courrier.channels.capture import LocalCapture
from courrier.channels.email import SmtpSender
from courrier.engine.background import BackgroundLoops
from courrier.engine.dispatcher import Dispatcher
from courrier.engine.wakeup import Wakeup
from courrier.errors import ConfigurationError
from courrier.heap import settle_heap
from courrier.settings import Settings
from courrier.store.db import check_connection, create_db_engine

__all__ = ["main", "run_worker"]

log = logging.getLogger(__name__)


def run_worker(settings: Settings, *, stop: threading.Event | None = None) -> None:
    """Run a dispatcher until SIGTERM/SIGINT (or ``stop``, for embedding); then clean up.

    Raises :class:`ConfigurationError` (one line) when the database or the
    SMTP server cannot be reached at start.
    """
    stop = stop or threading.Event()
    engine = create_db_engine(settings.database_url)
    check_connection(engine)
    capture = None
    target = settings.smtp
    if target is None:
        capture = LocalCapture(engine, settings.capture_port)
        capture.start()
        target = capture.target
    sender = SmtpSender(target, pool_size=settings.smtp_pool_size, timeout=settings.smtp_timeout)
    wakeup = Wakeup()
    dispatcher = Dispatcher(engine, settings, sender, wakeup=wakeup)
    loops: BackgroundLoops | None = None
    exporter: WSGIServer | None = None
    try:
        exporter = _serve_metrics(settings)
        sender.check()
        _on_signals(stop, wakeup)
        loops = BackgroundLoops(engine, settings).start()  # inbox feedback, webhooks
        settle_heap()
        log.info("courrier worker %s ready", dispatcher.worker_id)
        dispatcher.run(stop)
        log.info("courrier worker %s stopped", dispatcher.worker_id)
    finally:
        if exporter is not None:
            exporter.shutdown()
            exporter.server_close()
        if loops is not None:
            loops.stop()
        wakeup.close()
        dispatcher.close()
        sender.close()
        if capture is not None:
            capture.stop()
        engine.dispose()


def _serve_metrics(settings: Settings) -> WSGIServer | None:
    """Prometheus metrics of this worker on ``COURRIER_METRICS_PORT`` (none when 0)."""
    if not settings.metrics_port:
        return None
    try:
        server, _thread = start_http_server(
            settings.metrics_port, addr=settings.host, registry=metrics.registry
        )
    except OSError as exc:
        raise ConfigurationError(
            f"cannot serve metrics on {settings.host}:{settings.metrics_port} ({exc.strerror}): "
            "choose another COURRIER_METRICS_PORT"
        ) from exc
    log.info("metrics on http://%s:%d/metrics", settings.host, settings.metrics_port)
    return server


def _on_signals(stop: threading.Event, wakeup: Wakeup) -> None:
    """SIGTERM and SIGINT set ``stop`` and wake the loop (main thread only)."""
    if threading.current_thread() is not threading.main_thread():
        return

    def handle(signum: int, _frame: FrameType | None) -> None:
        log.info(
            "signal %s: finishing sends in flight, releasing the rest", signal.Signals(signum).name
        )
        stop.set()
        wakeup.poke()

    signal.signal(signal.SIGTERM, handle)
    signal.signal(signal.SIGINT, handle)


def main() -> int:
    """Entry point of ``python -m courrier.engine.worker``."""
    if not logging.getLogger().handlers:
        logging.basicConfig(
            level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
        )
    try:
        run_worker(Settings())
    except ConfigurationError as exc:
        print(f"courrier worker: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
