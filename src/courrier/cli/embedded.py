"""Everything of ``courrier serve`` in one process: API, dispatcher thread, local mail capture.

The dispatcher sends through the configured SMTP server, or, with no
``COURRIER_SMTP_URL``, through a :class:`LocalCapture` on loopback whose mails
the API and the captured-mail page show.
"""

from __future__ import annotations

import threading
from types import TracebackType

import structlog
from sqlalchemy.engine import Engine

from courrier.channels.capture import LocalCapture
from courrier.channels.email import SmtpSender
from courrier.engine.background import BackgroundLoops
from courrier.engine.dispatcher import Dispatcher
from courrier.engine.wakeup import Wakeup
from courrier.heap import settle_heap
from courrier.inbound.reader import MailboxReaders
from courrier.settings import Settings

log = structlog.get_logger(__name__)


class Embedded:
    """The background half of ``courrier serve``; a context manager that starts and stops it."""

    def __init__(self, settings: Settings, engine: Engine) -> None:
        self.settings = settings
        self.engine = engine
        self.wakeup = Wakeup()
        self.capture: LocalCapture | None = None
        self.sender: SmtpSender | None = None
        self.stop = threading.Event()
        self.thread: threading.Thread | None = None
        self.readers: MailboxReaders | None = None
        self.loops: BackgroundLoops | None = None

    def start(self) -> None:
        """Start capture (when local), check the SMTP server, start the dispatcher thread."""
        target = self.settings.smtp
        if target is None:
            self.capture = LocalCapture(self.engine, port=self.settings.capture_port)
            self.capture.start()
            target = self.capture.target
        self.sender = SmtpSender(
            target, pool_size=self.settings.smtp_pool_size, timeout=self.settings.smtp_timeout
        )
        self.sender.check()
        self.wakeup.listen(self.engine)
        dispatcher = Dispatcher(self.engine, self.settings, self.sender, wakeup=self.wakeup)
        self.thread = threading.Thread(
            target=dispatcher.run, args=(self.stop,), name="courrier-dispatcher", daemon=True
        )
        self.thread.start()
        log.info("dispatcher started", smtp=repr(target))
        self.readers = MailboxReaders(self.engine, self.settings).start()
        self.loops = BackgroundLoops(self.engine, self.settings).start()
        settle_heap()

    def close(self) -> None:
        """Stop the dispatcher (it finishes or releases what it holds), the sender, the capture."""
        self.stop.set()
        self.wakeup.poke()
        if self.readers is not None:
            self.readers.stop()
        if self.loops is not None:
            self.loops.stop()
        if self.thread is not None:
            self.thread.join(timeout=max(30.0, self.settings.smtp_timeout))
        self.wakeup.close()
        if self.sender is not None:
            self.sender.close()
        if self.capture is not None:
            self.capture.stop()

    def __enter__(self) -> Embedded:
        try:
            self.start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
