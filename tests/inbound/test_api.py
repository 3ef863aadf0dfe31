"""The shared inbox over HTTP with a tenant key, on mail read from a real Dovecot."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.engine import Engine
from starlette.testclient import TestClient

from courrier.api.app import create_app
from courrier.clock import ManualClock
from courrier.settings import Settings
from courrier.store.schema import mailboxes
from courrier.store.tenants import Tenant, create_api_key, create_tenant
from tests.inbound import mails
from tests.inbound.conftest import add_contact, read_once
from tests.support.dovecot import Dovecot, MailboxUser
from tests.support.services import free_port


class Api:
    """An HTTP client that sends one tenant's key."""

    def __init__(self, client: TestClient, key: str) -> None:
        self.client, self.headers = client, {"Authorization": f"Bearer {key}"}

    def get(self, url: str, **kwargs: Any) -> Any:
        return self.client.get(url, headers=self.headers, **kwargs)

    def post(self, url: str, **kwargs: Any) -> Any:
        return self.client.post(url, headers=self.headers, **kwargs)

    def delete(self, url: str) -> Any:
        return self.client.delete(url, headers=self.headers)


@pytest.fixture
def client(inbound_settings: Settings, engine: Engine, clock: ManualClock) -> Iterator[TestClient]:
    with TestClient(create_app(inbound_settings, engine=engine, clock=clock)) as test_client:
        yield test_client


@pytest.fixture
def api(client: TestClient, api_key: str) -> Api:
    return Api(client, api_key)


def mailbox_body(user: MailboxUser, **changes: Any) -> dict[str, Any]:
    body = {
        "label": "Club office",
        "host": user.host,
        "port": user.port,
        "security": "plain",
        "username": user.username,
        "password": user.password,
        "folders": ["INBOX"],
    }
    return {**body, **changes}


def connect_and_read(api: Api, engine: Engine, settings: Settings, user: MailboxUser) -> int:
    created = api.post("/v1/mailboxes", json=mailbox_body(user))
    assert created.status_code == 201, created.text
    read_once(engine, settings, created.json()["id"])
    return int(created.json()["id"])


def test_a_mailbox_password_is_stored_encrypted_and_never_returned(
    api: Api, engine: Engine, mailbox_user: MailboxUser
) -> None:
    created = api.post("/v1/mailboxes", json=mailbox_body(mailbox_user, password="s3cret-app-pw"))
    assert created.status_code == 201
    listed = api.get("/v1/mailboxes").json()
    assert "s3cret-app-pw" not in created.text + str(listed)
    assert all("password" not in key for key in created.json())
    with engine.connect() as conn:
        stored = conn.execute(select(mailboxes.c.password_encrypted)).scalar_one()
    assert "s3cret-app-pw" not in stored


def test_plain_imap_is_refused_for_a_remote_host(api: Api, mailbox_user: MailboxUser) -> None:
    answer = api.post("/v1/mailboxes", json=mailbox_body(mailbox_user, host="imap.example.org"))
    assert answer.status_code == 422
    assert answer.json()["error"]["field"] == "security"


def test_testing_a_connection_says_what_is_wrong_in_plain_words(
    api: Api, dovecot: Dovecot, mailbox_user: MailboxUser
) -> None:
    def check(**changes: Any) -> dict[str, Any]:
        answer = api.post("/v1/mailboxes/test", json=mailbox_body(mailbox_user, **changes))
        assert answer.status_code == 200
        return dict(answer.json())

    assert check()["ok"] is True
    assert check(host="no-such-host.invalid", security="tls")["reason"] == "host_not_found"
    assert check(port=free_port())["reason"] == "connection_refused"
    assert (
        check(security="tls")["reason"] == "tls_failure"
    )  # Dovecot speaks plain IMAP on this port
    refused = check(password="wrong")
    assert (refused["reason"], refused["message"]) == (
        "login_refused",
        f"login refused for {mailbox_user.username}: check the user and the (app) password",
    )
    missing = check(folders=["INBOX", "Certificates"])
    assert (missing["reason"], missing["message"]) == (
        "folder_missing",
        "folder missing: 'Certificates'",
    )


def test_inbound_lists_search_filter_and_page_ten_at_a_time(
    api: Api,
    engine: Engine,
    inbound_settings: Settings,
    tenant: Tenant,
    dovecot: Dovecot,
    mailbox_user: MailboxUser,
) -> None:
    add_contact(engine, tenant, "m-1", "anne@club.example")
    dovecot.append(
        mailbox_user,
        *(mails.member_mail("anne@club.example", f"Logbook page {i}") for i in range(12)),
        mails.member_mail("stranger@elsewhere.example", "Question about membership"),
        mails.delivery_report("<x@club.example>", "gone@club.example"),
    )
    connect_and_read(api, engine, inbound_settings, mailbox_user)
    first = api.get("/v1/inbound").json()
    assert (first["total"], len(first["items"]), first["previous"]) == (14, 10, None)
    second = api.get(first["next"]).json()
    assert len(second["items"]) == 4 and second["next"] is None
    assert api.get(second["previous"]).json() == first
    unassigned = api.get("/v1/inbound", params={"view": "unassigned"}).json()["items"]
    assert [m["subject"] for m in unassigned] == ["Question about membership"]
    bounces = api.get("/v1/inbound", params={"view": "bounce"}).json()["items"]
    assert [m["kind"] for m in bounces] == ["bounce"]
    found = api.get("/v1/inbound", params={"q": "STRANGER@"}).json()["items"]
    assert [m["from_addr"] for m in found] == ["stranger@elsewhere.example"]
    assert (
        api.get("/v1/inbound", params={"q": "page 1", "view": "assigned"}).json()["total"] == 3
    )  # 1, 10, 11


def test_one_mail_shows_its_safe_html_and_attachments(
    api: Api,
    engine: Engine,
    inbound_settings: Settings,
    tenant: Tenant,
    dovecot: Dovecot,
    mailbox_user: MailboxUser,
) -> None:
    html = '<p onclick="steal()">Hi<script>alert(1)</script><img src="https://tracker.example/p.gif"></p>'
    dovecot.append(
        mailbox_user,
        mails.member_mail(
            "anne@club.example",
            html=html,
            attachments=[("diplôme.pdf", "application/pdf", b"%PDF diploma")],
        ),
    )
    connect_and_read(api, engine, inbound_settings, mailbox_user)
    [summary] = api.get("/v1/inbound").json()["items"]
    mail = api.get(f"/v1/inbound/{summary['id']}").json()
    assert mail["html"].strip() == "<p>Hi<img></p>"
    assert (
        "tracker.example"
        in api.get(f"/v1/inbound/{summary['id']}", params={"remote_images": True}).json()["html"]
    )
    [part] = mail["attachment_list"]
    assert (part["filename"], part["size"]) == ("diplôme.pdf", 12)
    download = api.get(part["download"])
    assert download.content == b"%PDF diploma"
    assert "filename*=UTF-8''dipl%C3%B4me.pdf" in download.headers["content-disposition"]
    assert ("Subject", "Medical certificate") in [tuple(h) for h in mail["headers"]]


def test_assigning_a_mail_files_it_and_its_documents_on_the_contact(
    api: Api,
    engine: Engine,
    inbound_settings: Settings,
    tenant: Tenant,
    dovecot: Dovecot,
    mailbox_user: MailboxUser,
) -> None:
    add_contact(engine, tenant, "m-7", "gil@club.example")
    dovecot.append(
        mailbox_user,
        mails.member_mail(
            "gil.private@mail.example",
            attachments=[("licence.pdf", "application/pdf", b"%PDF licence")],
        ),
    )
    mailbox = connect_and_read(api, engine, inbound_settings, mailbox_user)
    [mail] = api.get("/v1/inbound", params={"view": "unassigned"}).json()["items"]
    assert api.get("/v1/contacts/m-7/documents").json() == []
    assigned = api.post(
        f"/v1/inbound/{mail['id']}/assign", json={"contact": "m-7", "remember_address": True}
    )
    assert assigned.status_code == 200
    assert (assigned.json()["contact"], assigned.json()["assigned_by"]) == ("m-7", "staff")
    [document] = api.get("/v1/contacts/m-7/documents").json()
    assert (document["filename"], document["origin"], document["inbound_mail_id"]) == (
        "licence.pdf",
        "inbound",
        mail["id"],
    )
    assert api.get(document["download"]).content == b"%PDF licence"
    dovecot.append(mailbox_user, mails.member_mail("GIL.private@mail.example", "Next one"))
    read_once(engine, inbound_settings, mailbox)
    from_gil = api.get("/v1/contacts/m-7/inbound").json()["items"]
    assert [(m["subject"], m["assigned_by"]) for m in from_gil] == [
        ("Next one", "match"),
        ("Medical certificate", "staff"),
    ]


def test_assigning_to_an_unknown_contact_is_a_404(
    api: Api,
    engine: Engine,
    inbound_settings: Settings,
    dovecot: Dovecot,
    mailbox_user: MailboxUser,
) -> None:
    dovecot.append(mailbox_user, mails.member_mail("x@mail.example"))
    connect_and_read(api, engine, inbound_settings, mailbox_user)
    [mail] = api.get("/v1/inbound").json()["items"]
    answer = api.post(f"/v1/inbound/{mail['id']}/assign", json={"contact": "nobody"})
    assert answer.status_code == 404
    assert answer.json()["error"]["code"]


def test_another_tenant_sees_none_of_this_inbox(
    api: Api,
    client: TestClient,
    engine: Engine,
    inbound_settings: Settings,
    clock: ManualClock,
    tenant: Tenant,
    dovecot: Dovecot,
    mailbox_user: MailboxUser,
) -> None:
    add_contact(engine, tenant, "m-1", "anne@club.example")
    dovecot.append(
        mailbox_user,
        mails.member_mail("anne@club.example", attachments=[("a.pdf", "application/pdf", b"%PDF")]),
    )
    mailbox = connect_and_read(api, engine, inbound_settings, mailbox_user)
    [mail] = api.get("/v1/inbound").json()["items"]
    [document] = api.get("/v1/contacts/m-1/documents").json()
    with engine.begin() as conn:
        other_tenant = create_tenant(
            conn, "Restaurant", from_email="hello@resto.example", now=clock()
        )
        other = Api(client, create_api_key(conn, other_tenant.id, now=clock()))
    assert other.get("/v1/inbound").json()["total"] == 0
    assert other.get(f"/v1/inbound/{mail['id']}").status_code == 404
    assert other.get(document["download"]).status_code == 404
    assert other.get(f"/v1/mailboxes/{mailbox}").status_code == 404
    assert (
        other.post(f"/v1/inbound/{mail['id']}/assign", json={"contact": "m-1"}).status_code == 404
    )
    assert other.delete(f"/v1/mailboxes/{mailbox}").status_code == 404
    assert api.get("/v1/inbound").json()["total"] == 1


def test_a_saved_mailbox_can_be_tested_and_disconnected(
    api: Api,
    engine: Engine,
    inbound_settings: Settings,
    dovecot: Dovecot,
    mailbox_user: MailboxUser,
) -> None:
    mailbox = api.post(
        "/v1/mailboxes", json=mailbox_body(mailbox_user, folders=["INBOX", "Staff"])
    ).json()
    failed = api.post(f"/v1/mailboxes/{mailbox['id']}/test").json()
    assert (failed["ok"], failed["reason"]) == (False, "folder_missing")
    dovecot.append(mailbox_user, mails.member_mail("x@club.example"), folder="Staff")
    passed = api.post(f"/v1/mailboxes/{mailbox['id']}/test").json()
    assert passed["ok"] is True
    assert passed["folders"] == ["INBOX: 0 messages", "Staff: 1 messages"]
    assert api.delete(f"/v1/mailboxes/{mailbox['id']}").status_code == 204
    assert api.get(f"/v1/mailboxes/{mailbox['id']}").status_code == 404
    assert api.get("/v1/mailboxes").json() == []
