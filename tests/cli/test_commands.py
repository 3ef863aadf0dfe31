"""The ``courrier`` command: what it prints, and one-line errors with exit code 2."""

from __future__ import annotations

import re
import socket
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.engine import Engine
from starlette.testclient import TestClient
from typer.testing import CliRunner

from courrier.api.app import create_app
from courrier.cli.main import app
from courrier.settings import Settings
from courrier.store.schema import message_contents, messages
from tests.support.services import free_port

KEY = re.compile(r"\bck_[A-Za-z0-9_\-]+")


def run(*args: str, **env: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(
        app, list(args), env={f"COURRIER_{k.upper()}": v for k, v in env.items()}
    )
    return result.exit_code, result.stdout, result.stderr


def assert_one_line_error(code: int, out: str, err: str, *words: str) -> None:
    assert code == 2, (out, err)
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert "Traceback" not in out + err
    for word in words:
        assert word in lines[0]


def test_tenant_create_prints_a_key_that_works(
    database_url: str, settings: Settings, engine: Engine
) -> None:
    code, out, err = run(
        "tenant",
        "create",
        "Aéroclub du Lac",
        "--from-email",
        "noreply@lac.example",
        "--timezone",
        "Europe/Paris",
        "--locale",
        "fr",
        database_url=database_url,
    )
    assert code == 0, err
    [key] = KEY.findall(out)
    with TestClient(create_app(settings, engine=engine)) as client:
        assert (
            client.get("/v1/messages", headers={"Authorization": f"Bearer {key}"}).status_code
            == 200
        )


def test_tenant_create_refuses_a_taken_name_in_one_line(database_url: str) -> None:
    assert run("tenant", "create", "Club", database_url=database_url)[0] == 0
    assert_one_line_error(
        *run("tenant", "create", "Club", database_url=database_url), "exists already"
    )


def test_tenant_create_refuses_a_bad_option_in_one_line(database_url: str) -> None:
    result = run("tenant", "create", "Club", "--timezone", "Paris", database_url=database_url)
    assert_one_line_error(*result, "--timezone")


def test_a_new_key_for_a_missing_tenant_is_one_line(database_url: str) -> None:
    assert_one_line_error(
        *run("tenant", "key", "Nobody", database_url=database_url), "no tenant named 'Nobody'"
    )


def test_demo_plans_the_confirmations_once(database_url: str, engine: Engine) -> None:
    code, out, err = run("demo", database_url=database_url)
    assert code == 0, err
    assert len(KEY.findall(out)) == 1
    assert "/captured" in out
    count = select(func.count()).select_from(messages)
    confirmations = count.where(messages.c.kind == "booking.confirmation")
    with engine.connect() as conn:
        assert conn.execute(confirmations).scalar_one() == 3
        total = conn.execute(count).scalar_one()
    code, out, _ = run("demo", database_url=database_url)
    assert code == 0 and "nothing new" in out
    with engine.connect() as conn:
        assert conn.execute(count).scalar_one() == total


def test_demo_mails_link_the_recipients_preference_page(database_url: str, engine: Engine) -> None:
    """Every email links its recipient's preference page, the demo's too."""
    code, _, err = run(
        "demo", database_url=database_url, secret_key="demo-test", base_url="http://club.test"
    )
    assert code == 0, err
    with engine.connect() as conn:
        bodies = conn.execute(
            select(message_contents.c.body_text, message_contents.c.body_html)
        ).all()
    assert bodies
    for text, html in bodies:
        assert "http://club.test/preferences/" in text
        assert "http://club.test/preferences/" in html


def test_migrate_brings_a_new_sqlite_file_to_the_newest_schema(tmp_path: Path) -> None:
    code, out, err = run("migrate", database_url=f"sqlite:///{tmp_path / 'new.db'}")
    assert code == 0, err
    assert "newest schema" in out


def test_serve_on_a_port_in_use_says_so_in_one_line(database_url: str, smtp_url: str) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = str(busy.getsockname()[1])
        result = run("serve", "--port", port, database_url=database_url, smtp_url=smtp_url)
    assert_one_line_error(*result, "already in use", port)


@pytest.mark.parametrize(
    ("url", "words"),
    [
        pytest.param("mysql://db.example/courrier", ["COURRIER_DATABASE_URL"], id="unknown kind"),
        pytest.param(
            "sqlite:////no/such/folder/courrier.db", ["does not exist"], id="missing folder"
        ),
        pytest.param(
            "postgresql://postgres@127.0.0.1:{port}/courrier",
            ["cannot reach the database"],
            id="unreachable",
        ),
    ],
)
def test_a_bad_database_url_is_one_line(url: str, words: list[str]) -> None:
    result = run("serve", "--port", "0", database_url=url.format(port=free_port()))
    assert_one_line_error(*result, *words)


@pytest.mark.parametrize(
    ("setting", "value"),
    [
        ("database_url", "mysql://db.example/courrier"),
        ("imap_allowed_networks", "10.0.0.0/8,intranet"),
        ("batch_size", "many"),
    ],
)
def test_a_wrong_setting_is_named_once(setting: str, value: str) -> None:
    code, out, err = run("migrate", **{setting: value})
    assert_one_line_error(code, out, err, f"COURRIER_{setting.upper()}: ")
    assert err.count(f"COURRIER_{setting.upper()}") == 1, err


@pytest.mark.parametrize("command", [["serve", "--port", "0"], ["worker"]])
def test_an_unreachable_smtp_server_is_one_line(database_url: str, command: list[str]) -> None:
    smtp = f"smtp://127.0.0.1:{free_port()}"
    result = run(*command, database_url=database_url, smtp_url=smtp)
    assert_one_line_error(*result, "SMTP server")


@pytest.mark.parametrize(
    "command",
    [["api", "--port", "0"], ["worker"], ["migrate"], ["demo"], ["tenant", "create", "X"]],
)
def test_every_command_says_in_one_line_that_the_database_is_unreachable(
    command: list[str],
) -> None:
    url = f"postgresql://postgres@127.0.0.1:{free_port()}/courrier"
    assert_one_line_error(*run(*command, database_url=url), "cannot reach the database")


def test_api_refuses_a_database_behind_the_code(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'empty.db'}"
    assert_one_line_error(*run("api", "--port", "0", database_url=url), "courrier migrate")


@pytest.fixture
def smtp_url(settings: Settings) -> str:
    assert settings.smtp_url is not None
    return settings.smtp_url.get_secret_value()


@pytest.mark.parametrize("setting", ["imap_allowed_networks", "webhook_allowed_networks"])
def test_a_bad_allowed_network_names_its_own_setting(database_url: str, setting: str) -> None:
    result = run("worker", database_url=database_url, **{setting: "10.0.0.0/8, the office"})
    assert_one_line_error(*result, f"COURRIER_{setting.upper()}", "'the office'")
