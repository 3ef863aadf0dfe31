"""The two references Courrier is measured against, on the same sink and the same bookings.

* ``stdlib``: what a developer writes with the standard library alone —
  render (plain Jinja2 for text and HTML, ``str.format`` for the .ics), build
  an ``email.message.EmailMessage`` (``set_content``, ``add_alternative``,
  ``add_attachment``), send it with ``send_message`` over one persistent
  ``smtplib`` connection. Nothing is stored: it is not durable.
* ``raw``: the same messages serialised to bytes before the clock starts,
  sent with ``sendmail`` over one persistent connection: the transport
  ceiling for any Python sender on one connection.
"""

from __future__ import annotations

import smtplib
import time
from datetime import UTC, datetime
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid

from bench.pipelining import PipelinedSmtp
from bench.results import ScenarioResult, StageClock, cpu_seconds, peak_rss_mib
from bench.workload import Booking, ReferenceRenderer, RenderedConfirmation, Venue

MSGID_DOMAIN = "deux-rives.example"


def build_message(venue: Venue, booking: Booking, content: RenderedConfirmation) -> EmailMessage:
    """The confirmation as an ``EmailMessage``: text, HTML alternative, .ics attachment."""
    message = EmailMessage()
    message["From"] = Address(venue.name, addr_spec=venue.from_email)
    message["To"] = Address(booking.name, addr_spec=booking.email)
    message["Reply-To"] = venue.reply_to
    message["Subject"] = content.subject
    message["Date"] = format_datetime(datetime.now(UTC))
    message["Message-ID"] = make_msgid(domain=MSGID_DOMAIN)
    message.set_content(content.text)
    message.add_alternative(content.html, subtype="html")
    message.add_attachment(
        content.ics, subtype="calendar", filename="invite.ics", params={"method": "REQUEST"}
    )
    return message


def serialise(message: EmailMessage) -> bytes:
    """The message as ``send_message`` puts it on the wire: CRLF line endings."""
    return message.as_bytes(policy=message.policy.clone(linesep="\r\n"))


def run_stdlib(port: int, bookings: list[Booking]) -> ScenarioResult:
    """Render, build and send each booking confirmation, one at a time, on one connection."""
    venue = Venue()
    renderer = ReferenceRenderer(venue)
    clock = StageClock()
    baseline = peak_rss_mib()
    cpu_started = cpu_seconds()
    started = time.perf_counter()
    with smtplib.SMTP("127.0.0.1", port) as smtp:
        for booking in bookings:
            with clock.stage("render"):
                content = renderer.render(booking, datetime.now(UTC))
            with clock.stage("build"):
                message = build_message(venue, booking, content)
            with clock.stage("serialise+send"):
                smtp.send_message(message)
    seconds = time.perf_counter() - started
    cpu = cpu_seconds() - cpu_started
    return ScenarioResult(
        name="stdlib",
        label="stdlib way (Jinja2 + EmailMessage + smtplib, 1 connection)",
        messages=len(bookings),
        seconds=seconds,
        cpu_seconds=cpu,
        stages=clock.totals,
        stage_cpu=clock.cpu,
        baseline_rss_mib=baseline,
        peak_rss_mib=peak_rss_mib(),
        mean_bytes=mean_size(venue, renderer, bookings[:50]),
    )


def mean_size(venue: Venue, renderer: ReferenceRenderer, sample: list[Booking]) -> float:
    """Mean serialised size of the stdlib messages for ``sample`` (measured after the timing)."""
    sizes = [
        len(serialise(build_message(venue, b, renderer.render(b, datetime.now(UTC)))))
        for b in sample
    ]
    return sum(sizes) / len(sizes) if sizes else 0.0


def prebuild(bookings: list[Booking]) -> tuple[list[bytes], float]:
    """The stdlib messages serialised once, and the seconds rendering+building+serialising took."""
    venue = Venue()
    renderer = ReferenceRenderer(venue)
    started = time.perf_counter()
    payloads = [
        serialise(build_message(venue, b, renderer.render(b, datetime.now(UTC)))) for b in bookings
    ]
    return payloads, time.perf_counter() - started


def run_raw(port: int, bookings: list[Booking], *, pipelined: bool = False) -> ScenarioResult:
    """Send the prebuilt messages on one persistent connection.

    ``smtplib.sendmail`` by default; with ``pipelined``, the minimal RFC 2920
    client of :mod:`bench.pipelining` (what a pipelining sender could reach).
    """
    venue = Venue()
    baseline = peak_rss_mib()
    payloads, prep_seconds = prebuild(bookings)
    clock = StageClock()
    cpu_started = cpu_seconds()
    started = time.perf_counter()
    if pipelined:
        with PipelinedSmtp("127.0.0.1", port) as client:
            for booking, data in zip(bookings, payloads, strict=True):
                client.sendmail(venue.from_email, booking.email, data)
    else:
        with smtplib.SMTP("127.0.0.1", port) as smtp:
            for booking, data in zip(bookings, payloads, strict=True):
                smtp.sendmail(venue.from_email, [booking.email], data)
    seconds = time.perf_counter() - started
    cpu = cpu_seconds() - cpu_started
    clock.add("send", seconds, cpu)
    rate = len(bookings) / prep_seconds if prep_seconds else 0.0
    return ScenarioResult(
        name="raw-pipelined" if pipelined else "raw",
        label=(
            "raw transport, pipelined (prebuilt bytes, RFC 2920, 1 connection)"
            if pipelined
            else "raw transport (prebuilt bytes, smtplib.sendmail, 1 connection)"
        ),
        messages=len(bookings),
        seconds=seconds,
        cpu_seconds=cpu,
        stages=clock.totals,
        stage_cpu=clock.cpu,
        baseline_rss_mib=baseline,
        peak_rss_mib=peak_rss_mib(),
        mean_bytes=sum(map(len, payloads)) / len(payloads) if payloads else 0.0,
        checks={"prebuild_seconds": prep_seconds, "prebuild_rate": rate},
        notes=[
            f"prebuilding (render + EmailMessage + as_bytes), untimed: {rate:,.0f} msg/s",
        ],
    )
