"""Kinds as JSON: how the API shows a kind and reads one back, refusing what cannot work.

Durations are whole minutes (``offset_minutes``, ``min_lead_minutes``),
calendar days are ``days``, a time of day is ``"18:00"``. Every refusal is
a :class:`~courrier.errors.ValidationError` naming the field.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import time, timedelta
from typing import Any

from courrier.domain.conditions import OPERATORS, Condition
from courrier.domain.followup import policy_from_json
from courrier.domain.kinds import NotificationKind
from courrier.domain.recipients import check_role
from courrier.domain.timing import TimeZoneChoice, Timing, TimingMode
from courrier.errors import ValidationError

KIND_NAME = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+$")
SUBJECT_TYPE = re.compile(r"^[a-z][a-z0-9_]*$")
CHANNELS = ("email", "sms", "push")
ATTACHMENTS = ("ics.request", "ics.cancel")


def timing_json(timing: Timing) -> dict[str, Any]:
    data: dict[str, Any] = {"mode": timing.mode.value}
    if timing.mode is not TimingMode.NOW:
        data["offset_minutes"] = int(timing.offset.total_seconds() // 60)
    if timing.date_field:
        data["date_field"] = timing.date_field
    if timing.days:
        data["days"] = timing.days
    if timing.at is not None:
        data["at"] = timing.at.strftime("%H:%M")
    if timing.min_lead is not None:
        data["min_lead_minutes"] = int(timing.min_lead.total_seconds() // 60)
    data["zone"] = timing.zone.value
    return data


def kind_json(kind: NotificationKind) -> dict[str, Any]:
    """A kind as the API shows it."""
    return {
        "name": kind.name,
        "description": kind.description,
        "subject_type": kind.subject_type,
        "triggers": sorted(kind.triggers),
        "recipients": list(kind.recipients),
        "exclude": list(kind.exclude),
        "channels": list(kind.channels),
        "template": kind.template_kind,
        "timing": timing_json(kind.timing),
        "conditions": [c.as_json() for c in kind.conditions],
        "priority": kind.priority,
        "attachments": list(kind.attachments),
        "preference_optional": kind.preference_optional,
        "once_per_subject": kind.once_per_subject,
        "replan": kind.replan,
        "cancelled_by": sorted(kind.cancelled_by),
        "follow_up": kind.follow_up.as_json() if kind.follow_up is not None else None,
    }


def _strings(data: Mapping[str, Any], key: str, *, allowed: tuple[str, ...] = ()) -> list[str]:
    value = data.get(key, [])
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise ValidationError(f"{key} is a list of names", key)
    for item in value:
        if allowed and item not in allowed:
            raise ValidationError(f"{key}: {item!r} is not one of {', '.join(allowed)}", key)
    return value


def _minutes(data: Mapping[str, Any], key: str) -> timedelta | None:
    value = data.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 525_600:
        raise ValidationError(
            f"timing.{key} is a whole number of minutes, 0 to 525600", f"timing.{key}"
        )
    return timedelta(minutes=value)


def _time_of_day(value: object) -> time | None:
    if value is None:
        return None
    if not isinstance(value, str) or not re.fullmatch(r"([01]\d|2[0-3]):[0-5]\d", value):
        raise ValidationError("timing.at is a time of day like '18:00'", "timing.at")
    return time(int(value[:2]), int(value[3:]))


def timing_from_json(data: object) -> Timing:
    if not isinstance(data, Mapping):
        raise ValidationError("timing is an object with a mode", "timing")
    try:
        mode = TimingMode(data.get("mode", "now"))
    except ValueError:
        modes = ", ".join(m.value for m in TimingMode)
        raise ValidationError(f"timing.mode is one of {modes}", "timing.mode") from None
    try:
        zone = TimeZoneChoice(data.get("zone", "venue"))
    except ValueError:
        raise ValidationError("timing.zone is 'venue' or 'recipient'", "timing.zone") from None
    days = data.get("days", 0)
    if isinstance(days, bool) or not isinstance(days, int) or not 0 <= days <= 366:
        raise ValidationError("timing.days is a whole number of days, 0 to 366", "timing.days")
    date_field = data.get("date_field")
    if date_field is not None and (
        not isinstance(date_field, str)
        or not re.fullmatch(r"[a-z_][a-z0-9_]*(\|[a-z_][a-z0-9_]*)*", date_field)
    ):
        raise ValidationError(
            "timing.date_field names date fields of the subject, like 'start'", "timing.date_field"
        )
    try:
        return Timing(
            mode,
            offset=_minutes(data, "offset_minutes") or timedelta(0),
            date_field=date_field,
            min_lead=_minutes(data, "min_lead_minutes"),
            days=days,
            at=_time_of_day(data.get("at")),
            zone=zone,
        )
    except ValueError as exc:
        raise ValidationError(f"timing: {exc}", "timing") from exc


def conditions_from_json(data: object) -> tuple[Condition, ...]:
    if not isinstance(data, list):
        raise ValidationError("conditions is a list of {field, op, value}", "conditions")
    found = []
    for i, item in enumerate(data):
        where = f"conditions.{i}"
        if not isinstance(item, Mapping) or not isinstance(item.get("field"), str):
            raise ValidationError(f"{where} is an object {{field, op, value}}", where)
        if item.get("op") not in OPERATORS:
            raise ValidationError(f"{where}.op is one of {', '.join(OPERATORS)}", f"{where}.op")
        try:
            found.append(Condition(item["field"], item["op"], item.get("value")))
        except ValueError as exc:
            raise ValidationError(f"{where}: {exc}", where) from exc
    return tuple(found)


def kind_from_json(data: Mapping[str, Any]) -> NotificationKind:
    """A kind from its JSON form (a custom kind, or a default with a tenant's changes)."""
    name = data.get("name")
    if not isinstance(name, str) or len(name) > 100 or not KIND_NAME.match(name):
        raise ValidationError("name is a dotted lower-case name like 'order.shipped'", "name")
    subject_type = data.get("subject_type")
    if not isinstance(subject_type, str) or not SUBJECT_TYPE.match(subject_type):
        raise ValidationError("subject_type is a lower-case name like 'order'", "subject_type")
    recipients = _strings(data, "recipients")
    if not recipients:
        raise ValidationError("recipients names at least one role", "recipients")
    for key in ("recipients", "exclude"):
        for role in _strings(data, key):
            problem = check_role(role)
            if problem:
                raise ValidationError(f"{key}: {problem}", key)
    channels = _strings(data, "channels", allowed=CHANNELS) if "channels" in data else ["email"]
    if not channels:
        raise ValidationError("channels names at least one channel", "channels")
    priority = data.get("priority", 50)
    if isinstance(priority, bool) or not isinstance(priority, int) or not 0 <= priority <= 100:
        raise ValidationError("priority is a whole number from 0 to 100", "priority")
    flags = {}
    for key in ("preference_optional", "once_per_subject", "replan"):
        value = data.get(key, key != "replan")
        if not isinstance(value, bool):
            raise ValidationError(f"{key} is true or false", key)
        flags[key] = value
    template = data.get("template") or name
    if not isinstance(template, str) or not KIND_NAME.match(template):
        raise ValidationError("template names a kind's templates", "template")
    description = data.get("description", "")
    if not isinstance(description, str) or len(description) > 500:
        raise ValidationError("description is a text of at most 500 characters", "description")
    triggers = frozenset(_strings(data, "triggers"))
    timing = timing_from_json(data.get("timing", {"mode": "now"}))
    if not triggers and not flags["replan"] and timing.mode is not TimingMode.DAILY:
        raise ValidationError("triggers names the event types that plan this kind", "triggers")
    follow_up = policy_from_json(data.get("follow_up"))
    if follow_up is not None and (flags["replan"] or timing.anchored):
        raise ValidationError(
            "a reminder planned from a date (replan, or timing anchored to a date)"
            " cannot have follow-ups",
            "follow_up",
        )
    return NotificationKind(
        name=name,
        triggers=triggers,
        subject_type=subject_type,
        recipients=tuple(recipients),
        exclude=tuple(_strings(data, "exclude")),
        channels=tuple(channels),
        template="" if template == name else template,
        timing=timing,
        conditions=conditions_from_json(data.get("conditions", [])),
        priority=priority,
        attachments=tuple(_strings(data, "attachments", allowed=ATTACHMENTS)),
        cancelled_by=frozenset(_strings(data, "cancelled_by")),
        description=description,
        follow_up=follow_up,
        **flags,
    )
