"""Contacts keep every address they were ever given, normalised, with one primary."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import func, select
from sqlalchemy.engine import Engine

from courrier.errors import ValidationError
from courrier.store.contacts import ContactData, get_contact, upsert_contact
from courrier.store.schema import contact_addresses
from courrier.store.tenants import Tenant, create_tenant
from tests.store.conftest import NOW


def test_a_new_contact_is_created_with_normalised_addresses(engine: Engine, tenant: Tenant) -> None:
    data = ContactData(
        name="Ada",
        email="  Ada@Example.COM ",
        other_emails=["ada.work@Example.com"],
        roles=["member"],
    )
    with engine.begin() as conn:
        contact, created = upsert_contact(conn, tenant.id, "m-17", data, now=NOW)
    assert created
    assert contact["email"] == "ada@example.com"
    assert contact["other_emails"] == ["ada.work@example.com"]
    assert contact["roles"] == ["member"]


def test_a_changed_primary_address_keeps_the_old_one(engine: Engine, tenant: Tenant) -> None:
    with engine.begin() as conn:
        upsert_contact(
            conn, tenant.id, "m-17", ContactData(name="Ada", email="ada@old.test"), now=NOW
        )
        contact, created = upsert_contact(
            conn, tenant.id, "m-17", ContactData(name="Ada L.", email="ada@new.test"), now=NOW
        )
    assert not created
    assert contact["name"] == "Ada L."
    assert contact["email"] == "ada@new.test"
    assert contact["other_emails"] == ["ada@old.test"]
    assert [a["primary"] for a in contact["addresses"]].count(True) == 1


def test_an_update_without_email_keeps_the_primary(engine: Engine, tenant: Tenant) -> None:
    with engine.begin() as conn:
        upsert_contact(conn, tenant.id, "m-1", ContactData(email="a@x.test"), now=NOW)
        contact, _ = upsert_contact(
            conn, tenant.id, "m-1", ContactData(phone="+33600000000"), now=NOW
        )
    assert contact["email"] == "a@x.test"
    assert contact["phone"] == "+33600000000"


def test_the_same_address_given_twice_is_stored_once(engine: Engine, tenant: Tenant) -> None:
    data = ContactData(email="a@x.test", other_emails=["A@X.test", "b@x.test", "b@x.test"])
    with engine.begin() as conn:
        upsert_contact(conn, tenant.id, "m-1", data, now=NOW)
        upsert_contact(conn, tenant.id, "m-1", data, now=NOW)
        count = conn.execute(select(func.count()).select_from(contact_addresses)).scalar_one()
    assert count == 2


@pytest.mark.parametrize(
    ("data", "field"),
    [
        (ContactData(email="not-an-address"), "email"),
        (ContactData(email="a@x.test", other_emails=["ok@x.test", "a b@x.test"]), "other_emails.1"),
    ],
)
def test_a_bad_address_is_refused_naming_its_field(
    engine: Engine, tenant: Tenant, data: ContactData, field: str
) -> None:
    with engine.begin() as conn, pytest.raises(ValidationError) as caught:
        upsert_contact(conn, tenant.id, "m-1", data, now=NOW)
    assert caught.value.field == field


def test_contacts_of_another_tenant_are_not_seen(engine: Engine, tenant: Tenant) -> None:
    with engine.begin() as conn:
        other = create_tenant(conn, "Other", from_email="o@o.test", now=NOW)
        upsert_contact(conn, other.id, "m-1", ContactData(email="a@x.test"), now=NOW)
        assert get_contact(conn, tenant.id, "m-1") is None
        assert get_contact(conn, other.id, "m-1") is not None


def test_concurrent_upserts_of_one_new_contact_make_one_contact_with_every_address(
    engine: Engine, tenant: Tenant
) -> None:
    barrier = threading.Barrier(5)
    created: list[bool] = []
    errors: list[BaseException] = []

    def put(n: int) -> None:
        data = ContactData(name="Ada", email=f"ada{n}@x.test", other_emails=["ada@x.test"])
        barrier.wait()
        try:
            with engine.begin() as conn:
                created.append(upsert_contact(conn, tenant.id, "m-17", data, now=NOW)[1])
        except BaseException as exc:  # reported by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=put, args=(n,)) for n in range(5)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert errors == []
    assert sorted(created) == [False] * 4 + [True]
    with engine.connect() as conn:
        contact = get_contact(conn, tenant.id, "m-17")
    assert contact is not None
    assert sorted(a["address"] for a in contact["addresses"]) == [
        "ada0@x.test",
        "ada1@x.test",
        "ada2@x.test",
        "ada3@x.test",
        "ada4@x.test",
        "ada@x.test",
    ]
    assert [a["primary"] for a in contact["addresses"]].count(True) == 1
