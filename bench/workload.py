"""The benchmark's workload: N booking confirmations for one venue, made deterministically.

The same bookings feed every path: Courrier plans them from ``booking.created``
events; the references render them with the plain Jinja2 templates and the
``str.format`` calendar template in ``bench/templates``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from jinja2 import Environment, FileSystemLoader, select_autoescape

TEMPLATES = Path(__file__).with_name("templates")
VENUE_ZONE = "Europe/Paris"
FIRST_NAMES = (
    "Amélie",
    "Bruno",
    "Chloé",
    "Dmitri",
    "Élodie",
    "Farid",
    "Greta",
    "Hugo",
    "Inès",
    "Jonas",
)
LAST_NAMES = (
    "Martin",
    "Bernard",
    "Lefèvre",
    "Okafor",
    "Nguyen",
    "Schmidt",
    "Rossi",
    "Garcia",
    "Dubois",
)
RESOURCES = (
    "F-GKXA Robin DR400",
    "F-HBCD Cessna 172",
    "F-GMTE Piper PA-28",
    "Flight simulator Alsim",
)
INSTRUCTORS = ("Claire Fontaine", "Marc Aubert", "Sofia Almeida", "none (solo flight)")


@dataclass(frozen=True)
class Venue:
    """The tenant: a flying club."""

    name: str = "Aéroclub des Deux Rives"
    from_email: str = "reservations@deux-rives.example"
    reply_to: str = "accueil@deux-rives.example"
    address: str = "Aérodrome de Lognes, 77185 Lognes, France"
    phone: str = "+33 1 60 05 12 34"
    website: str = "https://deux-rives.example"
    timezone: str = VENUE_ZONE


@dataclass(frozen=True)
class Booking:
    """One booking and its booker, with what the confirmation shows."""

    number: int
    member_id: str
    name: str
    email: str
    start: datetime  # aware, UTC
    end: datetime
    resource: str
    instructor: str
    price_cents: int

    @property
    def reference(self) -> str:
        return f"B-{100000 + self.number}"

    @property
    def local_start(self) -> datetime:
        return self.start.astimezone(ZoneInfo(VENUE_ZONE))

    @property
    def local_end(self) -> datetime:
        return self.end.astimezone(ZoneInfo(VENUE_ZONE))

    @property
    def day(self) -> str:
        return self.local_start.strftime("%A %d %B %Y")

    @property
    def start_time(self) -> str:
        return self.local_start.strftime("%H:%M")

    @property
    def end_time(self) -> str:
        return self.local_end.strftime("%H:%M")

    @property
    def price(self) -> str:
        return f"{self.price_cents // 100},{self.price_cents % 100:02d} €"

    @property
    def manage_url(self) -> str:
        return f"https://deux-rives.example/bookings/{self.reference}?token=bm{self.number:08x}"


def make_bookings(count: int, *, now: datetime | None = None) -> list[Booking]:
    """``count`` bookings by ``count`` different members, spread over the next weeks."""
    base = (now or datetime(2026, 3, 1, 9, 0, tzinfo=UTC)).replace(
        minute=0, second=0, microsecond=0
    )
    bookings = []
    for i in range(count):
        first, last = FIRST_NAMES[i % len(FIRST_NAMES)], LAST_NAMES[(i // 10) % len(LAST_NAMES)]
        start = base + timedelta(days=2 + i % 40, hours=i % 9)
        bookings.append(
            Booking(
                number=i,
                member_id=f"m-{i:06d}",
                name=f"{first} {last}",
                email=f"member{i:06d}@members.example",
                start=start,
                end=start + timedelta(minutes=60 + 30 * (i % 3)),
                resource=RESOURCES[i % len(RESOURCES)],
                instructor=INSTRUCTORS[i % len(INSTRUCTORS)],
                price_cents=14500 + 500 * (i % 7),
            )
        )
    return bookings


@dataclass(frozen=True)
class RenderedConfirmation:
    """What the references put in a mail: subject, text, HTML and the .ics."""

    subject: str
    text: str
    html: str
    ics: str


class ReferenceRenderer:
    """Plain Jinja2 (autoescaped HTML, compiled once) and a ``str.format`` .ics template."""

    def __init__(self, venue: Venue) -> None:
        self.venue = venue
        env = Environment(
            loader=FileSystemLoader(TEMPLATES),
            autoescape=select_autoescape(enabled_extensions=("html.j2",), default=False),
        )
        self._text = env.get_template("confirmation.txt.j2")
        self._html = env.get_template("confirmation.html.j2")
        self._ics = (TEMPLATES / "invite.ics").read_text().replace("\n", "\r\n")

    def render(self, booking: Booking, dtstamp: datetime) -> RenderedConfirmation:
        context = {"booking": booking, "venue": self.venue}
        stamp = "%Y%m%dT%H%M%S"
        ics = self._ics.format(
            uid=f"booking-{booking.reference}@deux-rives.example",
            dtstamp=dtstamp.astimezone(UTC).strftime(stamp) + "Z",
            dtstart=booking.local_start.strftime(stamp),
            dtend=booking.local_end.strftime(stamp),
            summary=f"{booking.resource} \N{EN DASH} {self.venue.name}",
            location=self.venue.address.replace(",", "\\,"),
            description=f"Booking {booking.reference}\\, instructor {booking.instructor}",
            organizer_name=self.venue.name,
            organizer_email=self.venue.from_email,
            attendee_name=booking.name,
            attendee_email=booking.email,
        )
        return RenderedConfirmation(
            subject=f"Booking confirmed: {booking.resource}, {booking.day} {booking.start_time}",
            text=self._text.render(context),
            html=self._html.render(context),
            ics=ics,
        )
