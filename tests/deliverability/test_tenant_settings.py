"""GET and PATCH /v1/tenant: tracking, bounce domain, DKIM key (write-only), limits."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from sqlalchemy import select
from sqlalchemy.engine import Engine
from typer.testing import CliRunner

from courrier.cli.main import app
from courrier.store.schema import tenants
from tests.api.conftest import Caller


def pem_of(key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode("ascii")


@pytest.fixture(scope="module")
def rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def test_a_new_tenant_tracks_and_has_no_dkim_nor_limits(alice: Caller) -> None:
    body = alice.get("/v1/tenant").json()
    assert body["name"] == "Alpha"
    assert body["tracking"] is True
    assert body["dkim"] is None
    assert body["bounce_domain"] is None
    assert body["block_threshold"] == 12
    assert (body["rate_per_minute"], body["domain_rate_per_minute"]) == (None, None)


def test_settings_change_and_read_back_and_a_left_out_field_keeps_its_value(
    alice: Caller, bob: Caller
) -> None:
    changes = {
        "tracking": False,
        "bounce_domain": "bounces.alpha.example",
        "block_threshold": 5,
        "rate_per_minute": 600,
        "domain_rate_per_minute": 60,
    }
    response = alice.patch("/v1/tenant", json=changes)
    assert response.status_code == 200, response.text
    assert alice.patch("/v1/tenant", json={"rate_per_minute": None}).status_code == 200
    body = alice.get("/v1/tenant").json()
    assert {k: body[k] for k in changes} == {**changes, "rate_per_minute": None}
    assert bob.get("/v1/tenant").json()["tracking"] is True  # another tenant's stay


def test_the_dkim_key_is_stored_encrypted_and_shown_as_its_dns_record(
    alice: Caller, engine: Engine, rsa_key: rsa.RSAPrivateKey
) -> None:
    pem = pem_of(rsa_key)
    response = alice.patch("/v1/tenant", json={"dkim_selector": "s1", "dkim_private_key": pem})
    assert response.status_code == 200, response.text
    dkim = alice.get("/v1/tenant").json()["dkim"]
    assert (dkim["selector"], dkim["domain"]) == ("s1", "alpha.example")
    public = rsa_key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    record = f"v=DKIM1; k=rsa; p={base64.b64encode(public).decode()}"
    assert dkim["public_key_dns_record"] == record
    assert "PRIVATE" not in response.text
    with engine.connect() as conn:
        stored = conn.execute(select(tenants.c.dkim_key_encrypted)).scalars().all()
    assert stored[0] and "PRIVATE" not in stored[0] and pem not in stored[0]
    assert alice.patch("/v1/tenant", json={"dkim_selector": None}).status_code == 200
    assert alice.get("/v1/tenant").json()["dkim"] is None


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"dkim_selector": "s1", "dkim_private_key": "not a key"}, "dkim_private_key"),
        ({"dkim_selector": "s1"}, "dkim_private_key"),
        ({"dkim_selector": "bad selector!", "dkim_private_key": "x"}, "dkim_selector"),
        ({"bounce_domain": "no domain\r\nBcc: x"}, "bounce_domain"),
        ({"block_threshold": 0}, "block_threshold"),
        ({"block_threshold": None}, "block_threshold"),
        ({"rate_per_minute": 0}, "rate_per_minute"),
        ({"domain_rate_per_minute": "many"}, "domain_rate_per_minute"),
        ({"tracking": None}, "tracking"),
        ({"from_email": "x@y.example"}, "from_email"),
    ],
)
def test_a_bad_setting_is_a_422_naming_its_field_and_nothing_changes(
    alice: Caller, body: dict[str, object], field: str
) -> None:
    before = alice.get("/v1/tenant").json()
    response = alice.patch("/v1/tenant", json=body)
    assert response.status_code == 422, response.text
    assert response.json()["error"]["field"] == field
    assert alice.get("/v1/tenant").json() == before


def test_a_key_that_is_not_rsa_is_refused(alice: Caller) -> None:
    key = pem_of(ec.generate_private_key(ec.SECP256R1()))
    response = alice.patch("/v1/tenant", json={"dkim_selector": "s1", "dkim_private_key": key})
    assert response.status_code == 422
    assert response.json()["error"]["field"] == "dkim_private_key"


def test_the_tenant_settings_need_an_api_key(alice: Caller) -> None:
    assert alice.client.get("/v1/tenant").status_code == 401
    assert alice.client.patch("/v1/tenant", json={"tracking": False}).status_code == 401


def test_the_dkim_command_stores_the_key_and_prints_the_dns_record(
    alice: Caller, database_url: str, tmp_path: Path, rsa_key: rsa.RSAPrivateKey
) -> None:
    key_file = tmp_path / "key.pem"
    key_file.write_text(pem_of(rsa_key))
    env = {"COURRIER_DATABASE_URL": database_url, "COURRIER_SECRET_KEY": "test-secret-key"}
    args = ["tenant", "dkim", "Alpha", "--selector", "s1", "--key-file", str(key_file)]
    result = CliRunner().invoke(app, args, env=env)
    assert result.exit_code == 0, result.stderr
    dkim = alice.get("/v1/tenant").json()["dkim"]
    assert f's1._domainkey.alpha.example TXT "{dkim["public_key_dns_record"]}"' in result.stdout


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["Alpha", "--selector", "s1", "--key-file", "{bad}"], ["--key-file", "PEM"]),
        (["Alpha", "--selector", "s1", "--key-file", "{missing}"], ["--key-file"]),
        (["Alpha", "--selector", "no way", "--key-file", "{good}"], ["--selector"]),
        (["Nobody", "--selector", "s1", "--key-file", "{good}"], ["Nobody"]),
    ],
)
def test_the_dkim_command_fails_in_one_line(
    alice: Caller,
    database_url: str,
    tmp_path: Path,
    rsa_key: rsa.RSAPrivateKey,
    args: list[str],
    words: list[str],
) -> None:
    (tmp_path / "good.pem").write_text(pem_of(rsa_key))
    (tmp_path / "bad.pem").write_text("hello")
    files = {n: str(tmp_path / f"{n}.pem") for n in ("good", "bad", "missing")}
    env = {"COURRIER_DATABASE_URL": database_url, "COURRIER_SECRET_KEY": "test-secret-key"}
    result = CliRunner().invoke(
        app, ["tenant", "dkim", *(a.format(**files) for a in args)], env=env
    )
    assert result.exit_code == 2, result.stdout
    [line] = result.stderr.strip().splitlines()
    assert line.startswith("error: ") and all(word in line for word in words), line
    assert alice.get("/v1/tenant").json()["dkim"] is None
