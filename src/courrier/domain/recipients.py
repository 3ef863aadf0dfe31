"""Recipients: the roles a kind sends to, resolved to contact ids. Pure.

A role is one of:

- a field of the subject's state holding a contact id or a list of them
  (``booker``, ``participants``, ``host``, ``cohosts``, ``requester``,
  ``assigned_manager``, ``followers``, ``member``, ``subscribers``...);
- ``event.<field>``: a contact id (or list) in the event's payload
  (``event.participant``: the participant just added);
- ``staff:<profile>``: every staff member with that profile; ``{field}``
  in the profile is filled from the subject (``staff:category:{category}``);
- ``booking_copy:each`` / ``booking_copy:digest``: staff who asked for a
  copy of every booking, one by one or as a daily digest;
- ``resource_bookers``: contacts booked on the resource (a resource
  subject) during its maintenance window;
- an alias below (``category_managers``, ``default_manager``, ``managers``).

What needs the database (staff lists, bookings on a resource) comes in a
:class:`Directory` the caller fills.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

ALIASES: dict[str, tuple[str, ...]] = {
    "category_managers": ("staff:category:{category}",),
    "default_manager": ("staff:default_manager",),
    "managers": ("assigned_manager", "staff:category:{category}"),
}
_PLACEHOLDER = re.compile(r"\{([a-z_][a-z0-9_]*)\}")
DIRECTORY_PREFIXES = ("staff:", "booking_copy:")
DIRECTORY_ROLES = frozenset({"resource_bookers"})


@dataclass(frozen=True)
class Directory:
    """Tenant-wide facts some roles need: staff by profile, copy modes, bookers of a resource."""

    staff_by_profile: Mapping[str, Sequence[str]] = field(default_factory=dict)
    booking_copy: Mapping[str, Sequence[str]] = field(default_factory=dict)  # mode -> ids
    resource_bookers: Sequence[str] = ()


EMPTY_DIRECTORY = Directory()


def expand(role: str) -> tuple[str, ...]:
    """A role with its alias resolved (a plain role stands for itself)."""
    return ALIASES.get(role, (role,))


def needs_directory(roles: Iterable[str]) -> bool:
    """True when resolving these roles needs staff lists or bookings from the database."""
    return any(
        r.startswith(DIRECTORY_PREFIXES) or r in DIRECTORY_ROLES
        for role in roles
        for r in expand(role)
    )


def _ids(value: object) -> list[str]:
    if isinstance(value, str) and value:
        return [value]
    if isinstance(value, list):
        return [v for v in value if isinstance(v, str) and v]
    return []


def _profile(template: str, state: Mapping[str, Any]) -> str | None:
    """``category:{category}`` filled from the subject; None when a field is missing."""
    missing = False

    def fill(match: re.Match[str]) -> str:
        nonlocal missing
        value = state.get(match.group(1))
        if not isinstance(value, str | int) or isinstance(value, bool) or value == "":
            missing = True
            return ""
        return str(value)

    profile = _PLACEHOLDER.sub(fill, template)
    return None if missing else profile


def role_contacts(
    role: str,
    state: Mapping[str, Any],
    payload: Mapping[str, Any] | None = None,
    directory: Directory = EMPTY_DIRECTORY,
) -> list[str]:
    """The contact ids a role names, in a stable order, each once."""
    found: list[str] = []
    for part in expand(role):
        found.extend(_one(part, state, payload or {}, directory))
    return list(dict.fromkeys(found))


def _one(
    role: str, state: Mapping[str, Any], payload: Mapping[str, Any], directory: Directory
) -> list[str]:
    if role.startswith("event."):
        return _ids(payload.get(role.removeprefix("event.")))
    if role.startswith("staff:"):
        profile = _profile(role.removeprefix("staff:"), state)
        return list(directory.staff_by_profile.get(profile, ())) if profile else []
    if role.startswith("booking_copy:"):
        return list(directory.booking_copy.get(role.removeprefix("booking_copy:"), ()))
    if role == "resource_bookers":
        return list(directory.resource_bookers)
    return _ids(state.get(role))


def recipients_of(
    roles: Sequence[str],
    exclude: Sequence[str],
    state: Mapping[str, Any],
    payload: Mapping[str, Any] | None = None,
    directory: Directory = EMPTY_DIRECTORY,
) -> dict[str, list[str]]:
    """Contact ids per role, without those named by the ``exclude`` roles (a comment's author)."""
    left_out = {c for role in exclude for c in role_contacts(role, state, payload, directory)}
    return {
        role: [c for c in role_contacts(role, state, payload, directory) if c not in left_out]
        for role in roles
    }


def check_role(role: str) -> str | None:
    """What is wrong with a role name, or None."""
    for part in expand(role):
        if part.startswith("event."):
            name = part.removeprefix("event.")
        elif part.startswith("staff:"):
            name = part.removeprefix("staff:")
            if not name:
                return f"{role!r} names no staff profile"
            continue
        elif part.startswith("booking_copy:"):
            name = part.removeprefix("booking_copy:")
            if name not in ("each", "digest"):
                return f"{role!r}: booking copies are 'each' or 'digest'"
            continue
        else:
            name = part
        if not re.fullmatch(r"[a-z_][a-z0-9_]*", name):
            return f"{role!r} is not a role: a subject field, event.<field>, staff:<profile>"
    return None
