"""Received mails as their senders' software writes them, for the inbound tests and benchmark."""

from __future__ import annotations

import uuid
from email.message import EmailMessage


def member_mail(
    sender: str,
    subject: str = "Medical certificate",
    *,
    text: str = "Hello, here is my certificate.",
    html: str | None = None,
    attachments: list[tuple[str, str, bytes]] | None = None,
    message_id: str | None = None,
    to: str = "office@club.example",
    headers: dict[str, str] | None = None,
) -> bytes:
    """A mail from ``sender``: text, optional HTML, ``(filename, type, bytes)`` attachments."""
    mail = EmailMessage()
    mail["From"] = sender
    mail["To"] = to
    mail["Subject"] = subject
    mail["Date"] = "Sun, 01 Mar 2026 10:00:00 +0100"
    mail["Message-ID"] = message_id or f"<{uuid.uuid4().hex}@member.example>"
    for name, value in (headers or {}).items():
        mail[name] = value
    mail.set_content(text)
    if html is not None:
        mail.add_alternative(html, subtype="html")
    for filename, content_type, content in attachments or []:
        maintype, _, subtype = content_type.partition("/")
        mail.add_attachment(content, maintype=maintype, subtype=subtype, filename=filename)
    return mail.as_bytes()


def latin1_mail(sender: str) -> bytes:
    """An ISO-8859-1 mail: encoded-word subject and sender name, quoted-printable body."""
    return (
        f"From: =?ISO-8859-1?Q?Ren=E9e_L=E9ger?= <{sender}>\r\n"
        "To: office@club.example\r\n"
        "Subject: =?ISO-8859-1?Q?Cotisation_r=E9gl=E9e?=\r\n"
        f"Message-ID: <{uuid.uuid4().hex}@latin1.example>\r\n"
        "MIME-Version: 1.0\r\n"
        "Content-Type: text/plain; charset=ISO-8859-1\r\n"
        "Content-Transfer-Encoding: quoted-printable\r\n"
        "\r\n"
        "J'ai r=E9gl=E9 ma cotisation =E0 l'a=E9roclub.\r\n"
    ).encode("ascii")


def koi8_mail_with_rfc2231_name(sender: str) -> bytes:
    """A KOI8-R text part and an attachment whose name is RFC 2231 encoded (UTF-8)."""
    body = "Привет, вот мой диплом.".encode("koi8-r")
    return (
        b"From: " + sender.encode() + b"\r\n"
        b"To: office@club.example\r\n"
        b"Subject: =?KOI8-R?B?5MnQzM/N?=\r\n"
        b"Message-ID: <" + uuid.uuid4().hex.encode() + b"@koi8.example>\r\n"
        b"MIME-Version: 1.0\r\n"
        b'Content-Type: multipart/mixed; boundary="BOUND"\r\n'
        b"\r\n--BOUND\r\n"
        b"Content-Type: text/plain; charset=koi8-r\r\n"
        b"Content-Transfer-Encoding: 8bit\r\n\r\n" + body + b"\r\n"
        b"--BOUND\r\n"
        b"Content-Type: application/pdf\r\n"
        b"Content-Disposition: attachment; filename*=UTF-8''dipl%C3%B4me%20pilote.pdf\r\n"
        b"Content-Transfer-Encoding: base64\r\n\r\n"
        b"JVBERi0xLjQKJcfsj6IK\r\n"
        b"--BOUND--\r\n"
    )


def unknown_charset_mail(sender: str) -> bytes:
    """A part in a charset nobody knows, holding bytes that are in fact Windows-1252."""
    return (
        b"From: " + sender.encode() + b"\r\n"
        b"Subject: =?x-unknown-charset?Q?Caf=E9?=\r\n"
        b"Message-ID: <" + uuid.uuid4().hex.encode() + b"@unknown.example>\r\n"
        b"Content-Type: text/plain; charset=x-no-such-charset\r\n"
        b"Content-Transfer-Encoding: 8bit\r\n\r\n"
        b"Caf\xe9 cr\xe8me\r\n"
    )


def malformed_mail(sender: str) -> bytes:
    """A multipart mail whose closing boundary never comes; raw 8-bit headers; bad base64."""
    return (
        b"From: J\xc3\xa9r\xc3\xb4me <" + sender.encode() + b">\r\n"
        b"Subject: Logbook \xe9t\xe9\r\n"
        b"Date: not a date at all\r\n"
        b"Message-ID: <" + uuid.uuid4().hex.encode() + b"@broken.example>\r\n"
        b'Content-Type: multipart/mixed; boundary="NEVER"\r\n'
        b"\r\n"
        b"--NEVER\r\n"
        b"Content-Type: text/plain; charset=utf-8\r\n\r\n"
        b"My logbook is attached\r\n"
        b"--NEVER\r\n"
        b'Content-Type: application/octet-stream; name="log.bin"\r\n'
        b"Content-Transfer-Encoding: base64\r\n\r\n"
        b"!!!not base64 at all%%%\r\n"
    )


def delivery_report(original_message_id: str, failed: str, *, status: str = "5.1.1") -> bytes:
    """An RFC 3464 bounce as Postfix writes it, returning ``original_message_id``."""
    boundary = "DSN-" + uuid.uuid4().hex
    return (
        "From: MAILER-DAEMON@mx.club.example (Mail Delivery System)\r\n"
        "To: noreply@club.example\r\n"
        "Subject: Undelivered Mail Returned to Sender\r\n"
        f"Message-ID: <{uuid.uuid4().hex}@mx.club.example>\r\n"
        "Auto-Submitted: auto-replied\r\n"
        "MIME-Version: 1.0\r\n"
        f'Content-Type: multipart/report; report-type=delivery-status; boundary="{boundary}"\r\n'
        "\r\n"
        f"--{boundary}\r\n"
        "Content-Type: text/plain\r\n\r\n"
        "I'm sorry to have to inform you that your message could not be delivered.\r\n\r\n"
        f"--{boundary}\r\n"
        "Content-Type: message/delivery-status\r\n\r\n"
        "Reporting-MTA: dns; mx.club.example\r\n"
        "Arrival-Date: Sun,  1 Mar 2026 10:00:00 +0100 (CET)\r\n\r\n"
        f"Final-Recipient: rfc822; {failed}\r\n"
        f"Original-Recipient: rfc822;{failed}\r\n"
        "Action: failed\r\n"
        f"Status: {status}\r\n"
        f"Diagnostic-Code: smtp; 550 {status} <{failed}>: "
        "Recipient address rejected: User unknown\r\n\r\n"
        f"--{boundary}\r\n"
        "Content-Type: text/rfc822-headers\r\n\r\n"
        "From: Club <noreply@club.example>\r\n"
        f"To: {failed}\r\n"
        "Subject: Your booking is confirmed\r\n"
        f"Message-ID: {original_message_id}\r\n\r\n"
        f"--{boundary}--\r\n"
    ).encode("ascii")


def vacation_reply(sender: str, in_reply_to: str) -> bytes:
    """An RFC 3834 out-of-office answer to a mail Courrier sent."""
    return (
        f"From: {sender}\r\n"
        "To: noreply@club.example\r\n"
        "Subject: Out of office: Your booking is confirmed\r\n"
        f"Message-ID: <{uuid.uuid4().hex}@member.example>\r\n"
        f"In-Reply-To: {in_reply_to}\r\n"
        "Auto-Submitted: auto-replied\r\n"
        "Content-Type: text/plain; charset=utf-8\r\n\r\n"
        "I am away until Monday.\r\n"
    ).encode("ascii")
