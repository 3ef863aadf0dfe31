"""Reading mails without a server: whatever the bytes, parsing gives an answer and never raises."""

from __future__ import annotations

import email
import email.policy

from hypothesis import given, settings
from hypothesis import strategies as st

from courrier.inbound.html import safe_html
from courrier.inbound.parsing import parse_mail
from courrier.inbound.reports import classify
from tests.inbound import mails


@settings(max_examples=150, deadline=None)
@given(st.binary(max_size=2000))
def test_any_bytes_parse_without_raising(raw: bytes) -> None:
    parsed = parse_mail(raw)
    assert parsed.raw_size == len(raw)
    assert isinstance(parsed.defects, list)


VISIBLE = st.characters(blacklist_categories=("Cc", "Cs", "Zl", "Zp"))


@settings(max_examples=60, deadline=None)
@given(
    subject=st.text(VISIBLE, max_size=80),
    name=st.text(VISIBLE, max_size=40),
    body=st.text(VISIBLE, max_size=300),
    filename=st.text(VISIBLE, min_size=1, max_size=40).filter(
        lambda s: s.strip() and "/" not in s and "\\" not in s
    ),
)
def test_what_a_standard_client_writes_reads_back_the_same(
    subject: str, name: str, body: str, filename: str
) -> None:
    """Encoded words, RFC 2231 names and any charset the stdlib writes come back unchanged."""
    message = email.message.EmailMessage(policy=email.policy.SMTP)
    message["From"] = email.headerregistry.Address(
        display_name=name, addr_spec="sender@club.example"
    )
    message["Subject"] = subject
    message.set_content(body)
    message.add_attachment(
        b"data", maintype="application", subtype="octet-stream", filename=filename
    )
    parsed = parse_mail(message.as_bytes())
    assert parsed.from_addr == "sender@club.example"
    assert (parsed.subject or "") == " ".join(subject.split())
    assert (parsed.from_name or "") == " ".join(name.split())
    assert (parsed.text or "").strip() == body.strip()
    assert parsed.attachments[0].filename == " ".join(filename.split())


def test_an_outlook_style_encoded_word_file_name_is_decoded() -> None:
    raw = (
        b"From: a@club.example\r\nContent-Type: multipart/mixed; boundary=B\r\n\r\n"
        b"--B\r\nContent-Type: text/plain\r\n\r\nhi\r\n"
        b"--B\r\nContent-Type: application/pdf;\r\n"
        b' name="=?UTF-8?B?Y2VydGlmaWNhdCBtw6lkaWNhbC5wZGY=?="\r\n'
        b"Content-Disposition: attachment\r\n\r\n%PDF\r\n--B--\r\n"
    )
    [part] = parse_mail(raw).attachments
    assert part.filename == "certificat médical.pdf"


def test_an_attached_mail_stays_one_attachment() -> None:
    inner = mails.member_mail("inner@club.example", "Forwarded original")
    outer = email.message.EmailMessage()
    outer["From"] = "outer@club.example"
    outer.set_content("See the mail below")
    outer.add_attachment(email.message_from_bytes(inner, policy=email.policy.default))
    parsed = parse_mail(outer.as_bytes())
    assert parsed.text is not None and "See the mail below" in parsed.text
    [part] = parsed.attachments
    assert part.content_type == "message/rfc822"
    assert b"Forwarded original" in part.content


def test_a_non_standard_bounce_is_recognised_by_heuristics() -> None:
    raw = (
        b"From: MAILER-DAEMON@old-mx.example\r\n"
        b"To: noreply@club.example\r\n"
        b"Subject: failure notice\r\n\r\n"
        b"Hi. This is the qmail-send program at old-mx.example.\r\n"
        b"I'm afraid I wasn't able to deliver your message to the following addresses.\r\n"
        b"This is a permanent error; I've given up. Sorry it didn't work out.\r\n\r\n"
        b"<lost@old-mx.example>:\r\n"
        b"Sorry, no mailbox here by that name. (#5.1.1)\r\n\r\n"
        b"--- Below this line is a copy of the message.\r\n\r\n"
        b"Message-ID: <abc@club.example>\r\n"
    )
    parsed = parse_mail(raw)
    found = classify(parsed.message, parsed.from_addr)
    assert found.kind == "bounce"
    assert [r.address for r in found.recipients] == ["lost@old-mx.example"]


def test_a_person_writing_from_a_postmaster_address_with_no_failure_is_member_mail() -> None:
    parsed = parse_mail(mails.member_mail("postmaster@club.example", "Our new opening hours"))
    assert classify(parsed.message, parsed.from_addr).kind == "member"


def test_precedence_bulk_alone_is_not_an_auto_reply() -> None:
    parsed = parse_mail(mails.member_mail("news@club.example", headers={"Precedence": "bulk"}))
    assert classify(parsed.message, parsed.from_addr).kind == "member"


def test_safe_html_keeps_embedded_images_and_drops_links_that_run_code() -> None:
    html = '<a href="javascript:alert(1)">x</a><img src="cid:logo@club"><a href="https://club.example">site</a>'
    cleaned = safe_html(html, cid_urls={"<logo@club>": "/v1/inbound/1/attachments/2"})
    assert "javascript" not in cleaned
    assert 'src="/v1/inbound/1/attachments/2"' in cleaned
    assert 'href="https://club.example"' in cleaned


def test_nul_characters_are_replaced_since_postgresql_cannot_store_them() -> None:
    """Dovecot turns NULs into 0x80 itself; other servers hand them over as they are."""
    raw = (
        b"From: A\x00B <a@club.example>\r\nSubject: x\x00y\r\nMessage-ID: <a\x00b@club.example>\r\n"
        b"Content-Type: multipart/mixed; boundary=Q\r\n\r\n"
        b"--Q\r\nContent-Type: text/plain\r\n\r\nhi\x00there\r\n"
        b'--Q\r\nContent-Type: application/pdf; name="f\x00.pdf"\r\n\r\n%PDF\r\n--Q--\r\n'
    )
    parsed = parse_mail(raw)
    texts = [
        parsed.subject,
        parsed.from_name,
        parsed.text,
        parsed.message_id,
        parsed.attachments[0].filename,
    ]
    texts += [value for _, value in parsed.headers]
    assert not any("\x00" in (t or "") for t in texts)
    assert (parsed.subject, parsed.text) == ("x\ufffdy", "hi\ufffdthere")
