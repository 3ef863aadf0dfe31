"""Signed tokens: the JSON they carry is what ``json.dumps`` would write, whatever the payload."""

from __future__ import annotations

import base64
import json
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from courrier.render.links import LinkSigner, _b64, _compact_json

SIGNER = LinkSigner("a secret of the test installation", "http://courrier.test")
ITEMS = st.one_of(st.integers(), st.text(), st.booleans(), st.none(), st.floats(allow_nan=False))


@given(st.lists(ITEMS, max_size=5))
def test_the_payload_is_written_as_compact_json(payload: list[Any]) -> None:
    assert _compact_json(payload) == json.dumps(payload, separators=(",", ":"), ensure_ascii=False)


@given(st.binary(max_size=40))
def test_base64url_is_unpadded_urlsafe_base64(data: bytes) -> None:
    assert _b64(data) == base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


@given(st.lists(st.one_of(st.integers(min_value=0), st.text()), max_size=4))
def test_a_token_gives_back_its_payload(payload: list[Any]) -> None:
    assert SIGNER.verify("click", SIGNER.token("click", payload)) == payload
