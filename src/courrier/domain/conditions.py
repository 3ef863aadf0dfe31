"""Conditions: facts about a subject's current state that a kind needs to hold. Pure.

A condition names a field of the subject's state by a dotted path
(``paid``, ``resource.id``) or of the event's payload (``event.visibility``),
an operator and a value. They are checked when a
message is planned, on every re-planning, and once more at send time, so a
payment reminder for a booking paid meanwhile never leaves.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

#: operator -> whether it takes a value
OPERATORS: dict[str, bool] = {
    "eq": True,
    "ne": True,
    "in": True,
    "not_in": True,
    "present": False,
    "absent": False,
}
_MISSING = object()


@dataclass(frozen=True)
class Condition:
    """``field op value``, e.g. ``paid eq False`` or ``status in ["confirmed"]``."""

    field: str
    op: str
    value: Any = None

    def __post_init__(self) -> None:
        if self.op not in OPERATORS:
            raise ValueError(f"unknown operator {self.op!r}: one of {', '.join(OPERATORS)}")
        if not self.field or any(not part for part in self.field.split(".")):
            raise ValueError(f"a condition names a field of the subject, not {self.field!r}")
        if self.op in ("in", "not_in") and not isinstance(self.value, list | tuple):
            raise ValueError(f"{self.op} compares with a list of values")

    @property
    def on_event(self) -> bool:
        """True for a condition on the event's payload (``event.visibility``), not the subject."""
        return self.field.startswith("event.")

    def holds(self, state: Mapping[str, Any], payload: Mapping[str, Any] | None = None) -> bool:
        """True when the subject's state (or the event's payload) satisfies this condition."""
        if self.on_event:
            actual = field_value(payload or {}, self.field.removeprefix("event."))
        else:
            actual = field_value(state, self.field)
        if self.op == "present":
            return actual is not _MISSING and actual is not None
        if self.op == "absent":
            return actual is _MISSING or actual is None
        if actual is _MISSING:
            actual = None
        if self.op == "eq":
            return bool(actual == self.value)
        if self.op == "ne":
            return bool(actual != self.value)
        if self.op == "in":
            return actual in self.value
        return actual not in self.value

    def describe(self) -> str:
        """In words, for a cancellation reason: ``paid eq False``."""
        if OPERATORS[self.op]:
            return f"{self.field} {self.op} {self.value!r}"
        return f"{self.field} {self.op}"

    def as_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"field": self.field, "op": self.op}
        if OPERATORS[self.op]:
            data["value"] = list(self.value) if isinstance(self.value, tuple) else self.value
        return data


def field_value(state: Mapping[str, Any], path: str) -> Any:
    """The value at a dotted path of the state, or a private marker when absent."""
    value: Any = state
    for part in path.split("."):
        # a dict first: states are dicts, and the Mapping check (an ABC's) costs several times more
        if not isinstance(value, (dict, Mapping)) or part not in value:
            return _MISSING
        value = value[part]
    return value


def failed_condition(
    conditions: Sequence[Condition],
    state: Mapping[str, Any],
    payload: Mapping[str, Any] | None = None,
    *,
    subject_only: bool = False,
) -> str | None:
    """Why the facts fail the conditions (the first that fails, in words), or None.

    ``subject_only`` skips conditions on the event's payload (at send time
    only the subject can have changed).
    """
    for condition in conditions:
        if subject_only and condition.on_event:
            continue
        if not condition.holds(state, payload):
            return f"condition no longer holds: {condition.describe()}"
    return None
