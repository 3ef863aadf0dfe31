"""What ``shared/booking.jinja`` sets, computed in Python for the shipped templates.

Every booking message file imports ``shared/booking.jinja`` (the place and
time, the detail rows, old and new times); evaluated as a Jinja module it
costs a quarter of a booking message. The shipped environment
(:mod:`courrier.render.template_sources`) asks :func:`booking_values`
instead, which writes the same values for the usual shapes: a subject that
is a dict, a resource that is a dict with a name, a list of services...
For anything else it answers None, and the Jinja file is evaluated as
before, so an odd value gives the template's own answer or error.

The Jinja file stays the reference: tenants' templates import it (in the
sandbox), and tests/render/test_booking_values.py checks that both give the
same values for every sample.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from courrier.render.formats import (
    CONTEXT_KEY,
    FormatSettings,
    MomentPhrase,
    format_moment,
    format_money,
)

#: the types of ``payload`` and ``people`` whose ``get`` Jinja would call as Python does
_MAPPINGS = (dict, MappingProxyType)
#: between a span's start and end, as the file's ``span`` macro writes it
_DASH = " \u2013 "


def booking_values(names: Mapping[str, Any]) -> dict[str, Any] | None:
    """The variables ``shared/booking.jinja`` sets from ``names`` (its context), else None.

    None when a value has a shape this function does not follow, or when
    computing raises: the caller then evaluates the Jinja file itself.
    """
    try:
        return _values(names)
    except Exception:  # the Jinja file gives the answer (or the error) for such values
        return None


def _values(names: Mapping[str, Any]) -> dict[str, Any] | None:
    s, subject = names["s"], names["subject"]
    previous, payload, people = names["previous"], names["payload"], names["people"]
    settings = names[CONTEXT_KEY]
    if not (
        isinstance(s, dict)
        and type(subject) is dict
        and (previous is None or type(previous) is dict)
        and type(payload) in _MAPPINGS
        and type(people) in _MAPPINGS
        and isinstance(settings, FormatSettings)
        and type(s["when"]) is MomentPhrase
        and type(s["brief"]) is MomentPhrase
    ):
        return None
    when: MomentPhrase = s["when"]
    resource = subject.get("resource")
    resource_name = _name(resource) if resource else None
    status = s["statuses"].get(subject.get("status"), subject.get("status")) or ""
    where = (str(resource_name) + ", " if resource else "") + str(s["brief"].text(subject["start"]))
    rows = ([(s["resource"], resource_name)] if resource else []) + [
        (s["start"], when.text(subject["start"])),
        (s["end"], when.text(subject["end"])),
        (s["timezone"], names["venue_timezone"]),
        (s["booking"], subject["id"]),
    ]
    booker = (
        subject.get("booker_name") or people.get(subject.get("booker")) or subject.get("booker")
    )
    old_resource = previous.get("resource") if previous else None
    moved_rows = (
        [(s["before"], _span(previous, when, settings)), (s["now"], _span(subject, when, settings))]
        if previous and previous.get("start") and previous.get("end")
        else []
    )
    resource_rows = (
        [(str(s["resource"]) + " (" + str(s["before"]).lower() + ")", _name(old_resource))]
        if old_resource and resource and _name(old_resource) != resource_name
        else []
    )
    amount = subject.get("amount")
    if amount is None:
        amount_rows = []
    elif subject.get("currency"):
        amount_rows = [(s["amount"], format_money(amount, subject["currency"], settings))]
    else:
        amount_rows = [(s["amount"], amount)]
    service_list = payload.get("services") or subject.get("services") or []
    services = _joined(service_list)
    if services is None:
        return None
    return {
        "resource": resource,
        "status": status,
        "where": where,
        "rows": rows,
        "booker": booker,
        "staff_rows": rows + ([(s["booked_by"], booker)] if booker else []),
        "old_resource": old_resource,
        "moved_rows": moved_rows,
        "resource_rows": resource_rows,
        "change_rows": moved_rows + resource_rows,
        "amount": amount,
        "amount_rows": amount_rows,
        "service_list": service_list,
        "services": services,
    }


def _name(holder: Any) -> Any:
    """``holder.name`` for a dict holding a name (KeyError, hence the Jinja file, otherwise)."""
    if type(holder) is not dict:
        raise KeyError("name")
    return holder["name"]


def _span(state: dict[str, Any], when: MomentPhrase, settings: FormatSettings) -> str:
    """The file's ``span`` macro: start and end, the end's date left out on the same day."""
    start, end = state["start"], state["end"]
    if format_moment("date", start, "yyyy-MM-dd", settings) == format_moment(
        "date", end, "yyyy-MM-dd", settings
    ):
        return f"{when.text(start)}{_DASH}{format_moment('time', end, 'short', settings)}"
    return f"{when.text(start)}{_DASH}{when.text(end)}"


def _joined(service_list: Any) -> str | None:
    """The services' names joined by commas (a list of names or of dicts with a name)."""
    if type(service_list) not in (list, tuple):
        return None
    if service_list and isinstance(service_list[0], str):
        return ", ".join(map(str, service_list))
    if not all(type(item) is dict and "name" in item for item in service_list):
        return None
    return ", ".join(str(item["name"]) for item in service_list)
