"""The envelope's addresses are quoted exactly as smtplib quotes them."""

from __future__ import annotations

import smtplib

from hypothesis import given
from hypothesis import strategies as st

from courrier.channels.smtp_transaction import quoted_address


@given(st.emails())
def test_a_plain_address_is_quoted_as_smtplib_quotes_it(address: str) -> None:
    assert quoted_address(address) == smtplib.quoteaddr(address)


@given(st.text(alphabet=st.sampled_from('ab.@<>" ()\\,;:é\r\n'), max_size=20))
def test_any_other_text_is_quoted_as_smtplib_quotes_it(address: str) -> None:
    assert quoted_address(address) == smtplib.quoteaddr(address)
