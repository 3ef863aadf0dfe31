"""Rendering what Courrier sends: MIME messages, calendar invitations, templates.

No I/O here beyond reading the package's own template files: every
function turns values into text or bytes.

* :mod:`courrier.render.mime` — :func:`build_mime` for an :class:`OutgoingMail`
* :mod:`courrier.render.ics` — :func:`booking_invitation` (iCalendar text)
* :mod:`courrier.render.templates` — :class:`TemplateRenderer` (sandboxed Jinja2, Babel)
* :mod:`courrier.render.template_check` — templates checked at save time, with the line
* :mod:`courrier.render.samples` — sample data for every kind (preview, checks)
"""

from courrier.render.ics import booking_invitation
from courrier.render.mime import MailAttachment, OutgoingMail, build_mime, new_message_id
from courrier.render.templates import RenderedMessage, TemplateRenderer, TemplateSourceError

__all__ = [
    "MailAttachment",
    "OutgoingMail",
    "RenderedMessage",
    "TemplateRenderer",
    "TemplateSourceError",
    "booking_invitation",
    "build_mime",
    "new_message_id",
]
