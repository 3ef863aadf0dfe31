"""Webhook signatures: what an integrator checks with any Standard Webhooks library."""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from datetime import UTC, datetime

import pytest
from standardwebhooks import Webhook

from courrier.domain import webhook_signing

SECRET = "whsec_" + base64.b64encode(bytes(range(24))).decode()
BODY = b'{"type":"message.sent","data":{"message_id":7}}'


def test_a_new_secret_is_whsec_and_24_random_bytes() -> None:
    first, second = webhook_signing.new_secret(), webhook_signing.new_secret()
    assert first.startswith("whsec_") and first != second
    assert len(base64.b64decode(first.removeprefix("whsec_"))) == 24


def test_the_signature_is_hmac_sha256_over_id_timestamp_and_body_with_the_decoded_secret() -> None:
    digest = hmac.new(bytes(range(24)), b"msg_7.1700000000." + BODY, hashlib.sha256).digest()
    expected = "v1," + base64.b64encode(digest).decode()
    assert webhook_signing.sign(SECRET, "msg_7", 1700000000, BODY) == expected


def test_the_standardwebhooks_library_accepts_what_courrier_signs() -> None:
    now = int(time.time())
    headers = webhook_signing.headers(SECRET, "msg_42", now, BODY)
    assert headers["content-type"] == "application/json"
    assert Webhook(SECRET).verify(BODY, headers) == {
        "type": "message.sent",
        "data": {"message_id": 7},
    }


def test_courrier_accepts_what_the_standardwebhooks_library_signs() -> None:
    signature = Webhook(SECRET).sign(
        "msg_42", datetime.fromtimestamp(1700000000, UTC), BODY.decode()
    )
    assert webhook_signing.verify(SECRET, "msg_42", 1700000000, BODY, signature)
    assert webhook_signing.verify(SECRET, "msg_42", 1700000000, BODY, "v1,bm9wZQ== " + signature)


@pytest.mark.parametrize(
    ("webhook_id", "timestamp", "body"),
    [
        ("msg_43", 1700000000, BODY),
        ("msg_42", 1700000001, BODY),
        ("msg_42", 1700000000, BODY + b" "),
    ],
)
def test_a_changed_id_timestamp_or_body_fails_verification(
    webhook_id: str, timestamp: int, body: bytes
) -> None:
    signature = webhook_signing.sign(SECRET, "msg_42", 1700000000, BODY)
    assert not webhook_signing.verify(SECRET, webhook_id, timestamp, body, signature)
    other = webhook_signing.new_secret()
    assert not webhook_signing.verify(other, "msg_42", 1700000000, BODY, signature)


def test_a_secret_that_is_not_base64_is_refused() -> None:
    with pytest.raises(ValueError, match="base64"):
        webhook_signing.sign("whsec_not base64!", "msg_1", 1, BODY)
