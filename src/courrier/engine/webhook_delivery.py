"""Posting queued webhook deliveries, signed the Standard Webhooks way, retried with backoff.

A batch is claimed under a lease in one transaction; each delivery is then
posted and its attempt recorded in a transaction of its own, so a crash
loses at most the post in flight, which is made again once the lease runs
out (at-least-once: ``webhook-id`` stays the same, so the receiver can drop
the copy). A 2xx answer delivers; anything else (another status, a
redirect, a timeout, a refused connection, a TLS certificate that does not
verify, an address no longer allowed) waits about 5 s, 5 min, 30 min, 2 h,
5 h, then 10 h, each ±20 % so that endpoints coming back from an outage are
not hit by every retry at once, until ``COURRIER_WEBHOOK_MAX_ATTEMPTS``
marks the delivery failed.

An ``https://`` receiver must show a certificate for the URL's host name
that chains to a public CA (certifi's bundle, as httpx trusts by default) or
to one in ``COURRIER_WEBHOOK_CA_FILE``; there is no switch to skip the
check, and a refused certificate is never a reason to post in clear.
"""

from __future__ import annotations

import json
import logging
import os
import random
import re
import secrets
import socket
import ssl
import threading
import time
from datetime import timedelta

import httpx
from sqlalchemy.engine import Engine

from courrier.clock import Clock, utcnow
from courrier.domain import webhook_signing
from courrier.engine.webhook_urls import UrlNotAllowed, target
from courrier.errors import ConfigurationError
from courrier.secretbox import SecretBox
from courrier.settings import Settings
from courrier.store import webhooks as store

__all__ = ["WebhookDeliverer", "retry_delay"]

log = logging.getLogger(__name__)
#: seconds to wait after the 1st, 2nd... failed attempt; the last repeats
RETRY_DELAYS = (5, 300, 1800, 7200, 18000, 36000)
JITTER = 0.2
#: how much of a receiver's answer is kept with a failed attempt
ANSWER_CHARS = 200
USER_AGENT = "Courrier-Webhooks/1"
CA_FILE_SETTING = "COURRIER_WEBHOOK_CA_FILE"
#: OpenSSL's "[SSL: CODE] words (_ssl.c:1006)" around the words worth keeping
_OPENSSL_NOISE = re.compile(r"^\[[^]]*\]\s*|\s*\(_ssl\.c:\d+\)$")


def retry_delay(failed_attempts: int, rng: random.Random) -> timedelta:
    """How long to wait after ``failed_attempts`` failures: the schedule, ±20 %."""
    base = RETRY_DELAYS[min(failed_attempts, len(RETRY_DELAYS)) - 1]
    return timedelta(seconds=base * rng.uniform(1 - JITTER, 1 + JITTER))


def tls_context(ca_file: str) -> ssl.SSLContext:
    """What a receiver's certificate is checked against: httpx's default trust, plus ``ca_file``.

    Read once, when the deliverer starts; a file that cannot be read or holds
    no certificate is a ConfigurationError naming the setting.
    """
    context = httpx.create_ssl_context(trust_env=False)
    if ca_file:
        try:
            context.load_verify_locations(cafile=ca_file)
        except (OSError, ssl.SSLError) as exc:
            words = exc.strerror or _OPENSSL_NOISE.sub("", str(exc))
            raise ConfigurationError(
                f"{CA_FILE_SETTING}: cannot load CA certificates from {ca_file}: {words}"
            ) from exc
    return context


def _tls_failure(exc: BaseException) -> str | None:
    """Why TLS failed, in words, if it is what made ``exc`` (httpx wraps the ssl error)."""
    cause: BaseException | None = exc
    while cause is not None and not isinstance(cause, ssl.SSLError):
        cause = cause.__cause__ or cause.__context__
    if isinstance(cause, ssl.SSLCertVerificationError):
        why = str(cause.verify_message or "").rstrip(".")
        return "TLS: certificate verify failed" + (f": {why[:1].lower()}{why[1:]}" if why else "")
    if isinstance(cause, ssl.SSLError):
        return f"TLS: {_OPENSSL_NOISE.sub('', str(cause.args[-1]))}"
    return None


class WebhookDeliverer:
    """Delivers due webhook deliveries; ``run`` loops until ``stop``."""

    def __init__(
        self,
        engine: Engine,
        settings: Settings,
        *,
        clock: Clock = utcnow,
        worker_id: str | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.engine = engine
        self.settings = settings
        self.clock = clock
        self.worker_id = worker_id or (
            f"{socket.gethostname()[:40]}:{os.getpid()}:{secrets.token_hex(3)}"
        )
        self._rng = rng or random.Random()
        self._box = SecretBox(settings)  # as the API encrypted the secret
        # No redirects (a 3xx is a failed attempt, not a way around the address check),
        # no proxy from the environment: settings are the one source of configuration.
        # No kept-alive connections either: the pool knows a connection by its address, and
        # one made (and its TLS certificate checked) for one host name must not carry a post
        # for another name on the same address.
        self._client = httpx.Client(
            verify=tls_context(settings.webhook_ca_file),
            timeout=settings.webhook_timeout,
            follow_redirects=False,
            trust_env=False,
            limits=httpx.Limits(max_keepalive_connections=0),
        )

    def run_once(self) -> int:
        """Claim and post one batch of due deliveries; how many were attempted."""
        now = self.clock()
        size = self.settings.webhook_batch_size
        # Long enough for every post of the batch to time out, one after the other.
        lease = timedelta(seconds=size * (self.settings.webhook_timeout + 1) + 30)
        with self.engine.begin() as conn:
            claimed = store.claim_due(
                conn, now=now, worker_id=self.worker_id, lease_until=now + lease, limit=size
            )
        for delivery in claimed:
            self._deliver(delivery)
        return len(claimed)

    def _deliver(self, delivery: store.ClaimedDelivery) -> None:
        started = time.perf_counter()
        code, error = self._post(delivery)
        duration_ms = round((time.perf_counter() - started) * 1000)
        now = self.clock()
        next_attempt_at = None
        if code is not None and 200 <= code < 300:
            status = "delivered"
        elif delivery.attempts >= self.settings.webhook_max_attempts:
            status = "failed"
            error = f"gave up after {delivery.attempts} attempts: {error}"
        else:
            status = "pending"
            next_attempt_at = now + retry_delay(delivery.attempts, self._rng)
        with self.engine.begin() as conn:
            kept = store.record_attempt(
                conn,
                delivery.id,
                worker_id=self.worker_id,
                at=now,
                status_code=code,
                error=error,
                duration_ms=duration_ms,
                status=status,
                next_attempt_at=next_attempt_at,
            )
        if not kept:
            log.warning("webhook delivery %s had been taken over by another worker", delivery.id)

    def _post(self, delivery: store.ClaimedDelivery) -> tuple[int | None, str | None]:
        """Post one delivery; the status code and, unless 2xx, what went wrong."""
        try:
            secret = self._box.decrypt(delivery.secret_encrypted, "webhook secret")
        except ConfigurationError:
            return None, (
                "the endpoint's secret cannot be decrypted (the encryption key changed); "
                "create the endpoint again"
            )
        try:
            where = target(delivery.url, self.settings.webhook_networks)
        except UrlNotAllowed as exc:
            return None, str(exc)
        body = json.dumps(delivery.payload, separators=(",", ":")).encode("utf-8")
        signed = webhook_signing.headers(
            secret, f"msg_{delivery.id}", int(self.clock().timestamp()), body
        )
        headers = {**signed, "host": where.host_header, "user-agent": USER_AGENT}
        try:
            response = self._client.post(
                where.url, content=body, headers=headers, extensions=where.extensions
            )
        except httpx.TimeoutException:
            return None, f"no answer within {self.settings.webhook_timeout:g} s"
        except httpx.HTTPError as exc:
            tls = _tls_failure(exc)
            return None, tls or f"could not post: {exc.__class__.__name__}: {exc}"
        code = response.status_code
        if 200 <= code < 300:
            return code, None
        if 300 <= code < 400:
            return code, f"answered {code}; redirects are not followed: give the final URL"
        answer = response.text[:ANSWER_CHARS].strip()
        return code, f"answered {code}" + (f": {answer}" if answer else "")

    def run(self, stop: threading.Event) -> None:
        """Post batches until ``stop``; a failing batch is logged and tried again later."""
        while not stop.is_set():
            try:
                handled = self.run_once()
            except Exception:
                log.exception("webhook batch failed; again in %.1fs", self.settings.poll_seconds)
                handled = 0
            if not handled:
                stop.wait(self.settings.poll_seconds)

    def close(self) -> None:
        """Free the HTTP client."""
        self._client.close()
