"""Every setting and CLI command is documented; the README's first screen has the essentials."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import typer.main

from courrier.cli.main import app
from courrier.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"


def commands(group: Any, prefix: str = "courrier") -> list[str]:
    """Every command line, e.g. ``courrier tenant create`` (groups have ``commands``)."""
    found = []
    for name, command in sorted(group.commands.items()):
        found.append(f"{prefix} {name}")
        if hasattr(command, "commands"):
            found += commands(command, f"{prefix} {name}")
    return found


@pytest.mark.parametrize("field", sorted(Settings.model_fields))
def test_every_setting_is_documented(field: str) -> None:
    assert f"`COURRIER_{field.upper()}`" in (DOCS / "settings.md").read_text(), (
        f"document COURRIER_{field.upper()} in docs/settings.md"
    )


COMMANDS = commands(typer.main.get_group(app))


@pytest.mark.parametrize("command", COMMANDS)
def test_every_cli_command_is_documented(command: str) -> None:
    assert f"## `{command}" in (DOCS / "cli.md").read_text(), f"document `{command}` in docs/cli.md"


def test_the_command_list_is_complete() -> None:
    expected = {
        "serve",
        "api",
        "worker",
        "migrate",
        "tenant",
        "tenant create",
        "tenant key",
        "demo",
    }
    assert {c.removeprefix("courrier ") for c in COMMANDS} >= expected


def test_readme_first_screen_shows_the_two_commands_and_an_example() -> None:
    first_screen = "\n".join((ROOT / "README.md").read_text().splitlines()[:60])
    for essential in (
        "scripts/serve",
        "scripts/test",
        "PUT",
        "/v1/contacts/",
        "/v1/events",
        "/v1/messages",
    ):
        assert essential in first_screen


def _routes() -> list[str]:
    from courrier.api.app import create_app

    settings = Settings(_env_file=None, database_url="sqlite://", secret_key="docs-check")  # type: ignore[call-arg]
    paths = create_app(settings).openapi()["paths"]
    return [f"{method.upper()} {path}" for path, item in sorted(paths.items()) for method in item]


@pytest.mark.parametrize("route", _routes())
def test_every_api_route_is_documented(route: str) -> None:
    method, path = route.split(" ", 1)
    # a path parameter may be named otherwise in prose ({id} for {mailbox_id})
    shape = re.escape(path)
    shape = re.sub(r"\\\{[^}]*\\\}", lambda _m: r"\{[a-z_]+\}", shape)
    text = "\n".join(page.read_text() for page in sorted(DOCS.glob("*.md")))
    end = r"(?![\w/{])"  # the whole path, not the start of a longer one
    assert re.search(rf"(?:{method}|`{method}`/`[A-Z]+) {shape}{end}", text), (
        f"document {route} in docs/api.md"
    )
