"""What the webhook tests share: a receiver on loopback, and the API calls they repeat.

The receiver records every POST and answers scripted status codes. It is a
threaded ``http.server``, plain HTTP or, given a certificate, real TLS: the
handshake runs in the connection's own thread, so a client that refuses the
certificate is recorded (``tls_errors``) instead of stopping the server, and
the host name the client asked for in its TLS hello (SNI) is kept in
``server_names``.
"""

from __future__ import annotations

import json
import ssl
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from tests.api.conftest import Caller
from tests.support.certificates import ServerFiles

__all__ = ["Receiver", "Request", "add_endpoint", "deliveries"]


@dataclass
class Request:
    path: str
    headers: dict[str, str]
    body: bytes

    @property
    def json(self) -> Any:
        return json.loads(self.body)


class _Server(ThreadingHTTPServer):
    """With TLS, makes the handshake per connection, in that connection's thread."""

    daemon_threads = True

    def __init__(self, address: tuple[str, int], handler: Any, receiver: Receiver) -> None:
        super().__init__(address, handler)
        self.receiver = receiver

    def finish_request(self, request: Any, client_address: Any) -> None:
        context = self.receiver.tls
        if context is None:
            super().finish_request(request, client_address)
            return
        request.settimeout(5)
        try:
            tls = context.wrap_socket(request, server_side=True)
        except OSError as exc:  # the client refused the certificate, or spoke no TLS
            with self.receiver.lock:
                self.receiver.tls_errors.append(str(exc))
            return
        try:
            super().finish_request(tls, client_address)
        finally:
            tls.close()


class Receiver:
    """An HTTP(S) server that records POSTs and answers the scripted codes, then 200.

    ``codes`` may hold ``(code, {header: value})`` pairs for an answer with
    headers (a redirect's ``location``).
    """

    def __init__(self, host: str = "127.0.0.1", *, tls: ServerFiles | None = None) -> None:
        self.requests: list[Request] = []
        self.codes: list[int | tuple[int, dict[str, str]]] = []
        self.delay = 0.0
        self.server_names: list[str | None] = []
        self.tls_errors: list[str] = []
        self.lock = threading.Lock()
        self.tls: ssl.SSLContext | None = None
        if tls is not None:
            self.tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            self.tls.load_cert_chain(tls.cert, tls.key)
            self.tls.sni_callback = self._heard_name
        self.server = _Server((host, 0), self._handler(), self)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def _heard_name(self, _conn: Any, name: str | None, _context: ssl.SSLContext) -> None:
        with self.lock:
            self.server_names.append(name)

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                with receiver.lock:
                    receiver.requests.append(
                        Request(self.path, {k.lower(): v for k, v in self.headers.items()}, body)
                    )
                    scripted = receiver.codes.pop(0) if receiver.codes else 200
                code, extra = scripted if isinstance(scripted, tuple) else (scripted, {})
                time.sleep(receiver.delay)
                self.send_response(code)
                for name, value in extra.items():
                    self.send_header(name, value)
                self.send_header("content-length", "4")
                self.end_headers()
                self.wfile.write(b"boom" if code >= 300 else b"okay")

            def log_message(self, *args: Any) -> None:
                pass

        return Handler

    @property
    def port(self) -> int:
        return int(self.server.server_address[1])

    @property
    def url(self) -> str:
        """The receiver's URL by its address, the scheme after whether it speaks TLS."""
        return self.url_for(str(self.server.server_address[0]))

    def url_for(self, host: str, path: str = "/hooks/courrier") -> str:
        """The receiver's URL under another host name (one the test makes resolve to it)."""
        scheme = "https" if self.tls is not None else "http"
        return f"{scheme}://{host}:{self.port}{path}"

    def handshakes_refused(self, count: int, timeout: float = 5.0) -> list[str]:
        """The TLS errors seen, once there are ``count`` (a refused handshake ends in the
        server's thread a moment after the client gave up)."""
        deadline = time.monotonic() + timeout
        while len(self.tls_errors) < count and time.monotonic() < deadline:
            time.sleep(0.01)
        return list(self.tls_errors)

    def start(self) -> Receiver:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join()


def add_endpoint(caller: Caller, url: str, **body: Any) -> dict[str, Any]:
    """A webhook endpoint of ``caller``'s tenant, as created (with its secret)."""
    response = caller.post("/v1/webhooks", json={"url": url, **body})
    assert response.status_code == 201, response.text
    return dict(response.json())


def deliveries(caller: Caller, endpoint_id: int, **params: Any) -> list[dict[str, Any]]:
    """One page of an endpoint's deliveries, newest first, with their attempts."""
    response = caller.get(f"/v1/webhooks/{endpoint_id}/deliveries", params=params)
    assert response.status_code == 200, response.text
    return list(response.json()["items"])
