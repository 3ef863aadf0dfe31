"""Signed tokens: the JSON they carry is what ``json.dumps`` would write, whatever the payload."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from courrier.render.links import LinkSigner, _b64, _compact_json, _hmac, _keyed

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


@given(st.binary(max_size=150), st.binary(max_size=300))
def test_the_mac_is_hmac_sha256(key: bytes, message: bytes) -> None:
    inner, outer = _keyed(key)
    assert _hmac(inner, outer, message) == hmac.new(key, message, hashlib.sha256).digest()
    assert _hmac(inner, outer, message) == hmac.new(key, message, hashlib.sha256).digest()


def test_tokens_and_verp_addresses_are_signed_with_hmac_sha256() -> None:
    secret = b"a secret of the test installation"
    key = hashlib.sha256(b"courrier.link:open:" + secret).digest()
    body = _b64(b"[42]")
    mac = _b64(hmac.new(key, body.encode(), hashlib.sha256).digest()[:16])
    assert SIGNER.token("open", [42]) == f"{body}.{mac}"
    verp = hmac.new(secret, b"courrier.verp:42", hashlib.sha256).hexdigest()[:12]
    assert SIGNER.verp_token(42) == f"42-{verp}"
