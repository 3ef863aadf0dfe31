"""Tenants and API keys: a key finds its tenant, and only its hash is stored."""

from __future__ import annotations

import hashlib

import pytest
from sqlalchemy import select, update
from sqlalchemy.engine import Engine

from courrier.errors import NotFoundError
from courrier.store.schema import api_keys
from courrier.store.tenants import (
    Tenant,
    create_api_key,
    create_tenant,
    get_tenant,
    tenant_by_name,
    tenant_for_key,
)
from tests.store.conftest import NOW


def test_a_key_finds_its_tenant_and_no_other(engine: Engine, tenant: Tenant) -> None:
    with engine.begin() as conn:
        other = create_tenant(conn, "Bistro", from_email="hello@bistro.test", now=NOW)
        key = create_api_key(conn, tenant.id, now=NOW, label="platform")
        other_key = create_api_key(conn, other.id, now=NOW)
    with engine.connect() as conn:
        assert tenant_for_key(conn, key) == tenant
        assert tenant_for_key(conn, other_key) == other


def test_the_key_itself_is_never_stored_only_its_sha256(engine: Engine, tenant: Tenant) -> None:
    with engine.begin() as conn:
        key = create_api_key(conn, tenant.id, now=NOW)
        rows = conn.execute(select(api_keys)).all()
    assert key.startswith("ck_") and len(key) > 40
    assert len(rows) == 1
    stored = [str(v) for v in rows[0]._mapping.values()]
    assert key not in stored
    assert rows[0].key_hash == hashlib.sha256(key.encode()).hexdigest()


@pytest.mark.parametrize(
    "mangle",
    [
        lambda k: k[:-1] + ("A" if k[-1] != "A" else "B"),
        lambda k: "",
        lambda k: "ck_",
        lambda k: k.upper(),
    ],
    ids=["last-char-changed", "empty", "bare-prefix", "upper-cased"],
)
def test_a_wrong_key_finds_no_tenant(engine: Engine, tenant: Tenant, mangle: object) -> None:
    with engine.begin() as conn:
        key = create_api_key(conn, tenant.id, now=NOW)
    with engine.connect() as conn:
        assert tenant_for_key(conn, mangle(key)) is None  # type: ignore[operator]


def test_a_revoked_key_no_longer_works(engine: Engine, tenant: Tenant) -> None:
    with engine.begin() as conn:
        key = create_api_key(conn, tenant.id, now=NOW)
        conn.execute(update(api_keys).values(revoked_at=NOW))
    with engine.connect() as conn:
        assert tenant_for_key(conn, key) is None


def test_tenants_are_found_by_id_and_name(engine: Engine, tenant: Tenant) -> None:
    with engine.connect() as conn:
        assert get_tenant(conn, tenant.id) == tenant
        assert tenant_by_name(conn, tenant.name) == tenant
        assert tenant_by_name(conn, "nobody") is None
        with pytest.raises(NotFoundError):
            get_tenant(conn, tenant.id + 100)
    assert tenant.mail_domain == "club.test"
