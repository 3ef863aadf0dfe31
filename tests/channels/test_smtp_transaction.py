"""The envelope's addresses are quoted, and the content dot-stuffed, exactly as smtplib does."""

from __future__ import annotations

import re
import smtplib

from hypothesis import given
from hypothesis import strategies as st

from courrier.channels.smtp_transaction import dot_stuffed, quoted_address


@given(st.emails())
def test_a_plain_address_is_quoted_as_smtplib_quotes_it(address: str) -> None:
    assert quoted_address(address) == smtplib.quoteaddr(address)


@given(st.text(alphabet=st.sampled_from('ab.@<>" ()\\,;:é\r\n'), max_size=20))
def test_any_other_text_is_quoted_as_smtplib_quotes_it(address: str) -> None:
    assert quoted_address(address) == smtplib.quoteaddr(address)


LINES = st.lists(st.sampled_from([b".", b"..", b"\n", b"\r", b"\r\n", b"a", b".a\r\n"]))


@given(st.binary(max_size=40) | LINES.map(b"".join))
def test_the_content_is_dot_stuffed_and_ended_as_smtplib_data_sends_it(data: bytes) -> None:
    stuffed = re.sub(rb"(?m)^\.", b"..", data)  # smtplib._quote_periods
    if stuffed[-2:] != b"\r\n":
        stuffed += b"\r\n"
    assert dot_stuffed(data) == stuffed + b".\r\n"
