"""Rendering what Courrier sends: MIME messages, calendar invitations, templates.

No I/O here: every function turns values into text or bytes.
"""

from courrier.render.mime import MailAttachment, OutgoingMail, build_mime, new_message_id

__all__ = ["MailAttachment", "OutgoingMail", "build_mime", "new_message_id"]
