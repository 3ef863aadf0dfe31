"""``GET`` and ``PUT /v1/contacts/{external_id}/preferences``: staff set what a contact hears.

A contact's preferences are rules (kind or ``"*"``, channel or ``"*"``, on or
off); ``PUT`` replaces them all. Rules staff write are recorded as set by
staff; the contact sees and can change them on the preference page. A kind
that preferences cannot switch off (a password reset) is refused with a 422.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field, StringConstraints
from sqlalchemy import Connection

from courrier.api.auth import AppClock, CurrentTenant, DbEngine
from courrier.api.contacts import ExternalId
from courrier.domain.kinds import Catalogue
from courrier.domain.preferences import ANY, CHANNELS, Preference, SetBy, suppression_reason
from courrier.errors import NotFoundError, ValidationError
from courrier.store.contacts import get_contact
from courrier.store.db import read_only
from courrier.store.preferences import preference_rows, replace_rules, rules_of, tenant_catalogue

router = APIRouter(prefix="/v1/contacts", tags=["preferences"])

KindName = Annotated[str, StringConstraints(min_length=1, max_length=100)]
ChannelName = Annotated[str, StringConstraints(min_length=1, max_length=16)]


class PreferenceIn(BaseModel):
    """One rule: a kind (or ``"*"``: every kind) on a channel (or ``"*"``) is on or off."""

    model_config = ConfigDict(extra="forbid")

    kind: KindName = Field(examples=["booking.reminder_1h"])
    channel: ChannelName = Field(default=ANY, examples=["email"])
    enabled: bool


class PreferencesIn(BaseModel):
    """Every rule of the contact; the ones left out are removed."""

    model_config = ConfigDict(extra="forbid")

    preferences: list[PreferenceIn] = Field(max_length=500)


class PreferenceOut(BaseModel):
    kind: str
    channel: str
    enabled: bool
    set_by: str  # "contact" (preference page) or "staff" (API)
    updated_at: datetime


class SwitchedOff(BaseModel):
    """A kind of the tenant, on one of its channels, that the rules stop for this contact."""

    kind: str
    channel: str
    reason: str


class PreferencesOut(BaseModel):
    contact: str
    preferences: list[PreferenceOut]
    switched_off: list[SwitchedOff]  # what the rules add up to, kind by kind


def _contact_id(conn: Connection, tenant_id: int, external_id: str) -> int:
    contact = get_contact(conn, tenant_id, external_id)
    if contact is None:
        raise NotFoundError(f"no contact {external_id!r}")
    return int(contact["id"])


def _out(conn: Connection, tenant_id: int, external_id: str, contact_id: int) -> PreferencesOut:
    rows: list[dict[str, Any]] = preference_rows(conn, tenant_id, contact_id)
    rules = rules_of(conn, tenant_id, [contact_id])[contact_id]
    kinds = sorted(tenant_catalogue(conn, tenant_id), key=lambda k: k.name)
    stopped = [
        SwitchedOff(kind=kind.name, channel=channel, reason=reason)
        for kind in kinds
        for channel in kind.channels
        if (reason := suppression_reason(rules, kind, channel)) is not None
    ]
    return PreferencesOut(
        contact=external_id,
        preferences=[PreferenceOut.model_validate(r) for r in rows],
        switched_off=stopped,
    )


def checked_rules(catalogue: Catalogue, rules: Sequence[PreferenceIn]) -> list[Preference]:
    """The rules as domain values; a 422 naming the rule for an unknown or locked kind."""
    seen: set[tuple[str, str]] = set()
    checked = []
    for i, rule in enumerate(rules):
        kind = catalogue.get(rule.kind)
        if rule.kind != ANY and kind is None:
            raise ValidationError(
                f"no kind {rule.kind!r} (GET /v1/kinds lists them; '*' means every kind)",
                f"preferences.{i}.kind",
            )
        if rule.channel != ANY and rule.channel not in CHANNELS:
            raise ValidationError(
                f"no channel {rule.channel!r}: one of {', '.join(CHANNELS)} or '*'",
                f"preferences.{i}.channel",
            )
        if kind is not None and not kind.preference_optional and not rule.enabled:
            raise ValidationError(
                f"{kind.name} cannot be switched off: it is always sent",
                f"preferences.{i}.enabled",
            )
        if (rule.kind, rule.channel) in seen:
            raise ValidationError(
                f"a second rule for {rule.kind} on {rule.channel}", f"preferences.{i}"
            )
        seen.add((rule.kind, rule.channel))
        checked.append(Preference(rule.kind, rule.channel, rule.enabled, SetBy.STAFF))
    return checked


@router.get(
    "/{external_id}/preferences",
    response_model=PreferencesOut,
    summary="Read a contact's notification preferences",
)
def read_preferences(
    external_id: ExternalId, tenant: CurrentTenant, engine: DbEngine
) -> PreferencesOut:
    """The contact's rules, with who set each (the contact or staff) and when."""
    with read_only(engine) as conn:
        return _out(conn, tenant.id, external_id, _contact_id(conn, tenant.id, external_id))


@router.put(
    "/{external_id}/preferences",
    response_model=PreferencesOut,
    summary="Replace a contact's notification preferences",
)
def put_preferences(
    external_id: ExternalId,
    body: PreferencesIn,
    tenant: CurrentTenant,
    engine: DbEngine,
    clock: AppClock,
) -> PreferencesOut:
    """Make ``preferences`` the contact's whole set of rules (staff's choice)."""
    with engine.begin() as conn:
        contact_id = _contact_id(conn, tenant.id, external_id)
        kinds = tenant_catalogue(conn, tenant.id, enabled_only=False)
        rules = checked_rules(kinds, body.preferences)
        replace_rules(conn, tenant.id, contact_id, rules, set_by=SetBy.STAFF, now=clock())
        return _out(conn, tenant.id, external_id, contact_id)
