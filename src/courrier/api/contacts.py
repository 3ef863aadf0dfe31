"""``PUT /v1/contacts/{external_id}`` and ``GET /v1/contacts/{external_id}``."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Response

from courrier.api.auth import AppClock, DbEngine, RequestKey, tenant_of
from courrier.api.models import ContactIn, ContactOut
from courrier.api.responses import model_response
from courrier.errors import NotFoundError
from courrier.store.contacts import ContactData, get_contact, upsert_contact
from courrier.store.db import read_only

router = APIRouter(prefix="/v1/contacts", tags=["contacts"])

ExternalId = Annotated[str, Path(min_length=1, max_length=200, pattern=r"^[^\x00-\x1f]+$")]


def contact_out(contact: dict[str, Any]) -> ContactOut:
    return ContactOut.model_validate({k: contact[k] for k in ContactOut.model_fields})


@router.put(
    "/{external_id}",
    response_model=ContactOut,
    responses={201: {"model": ContactOut, "description": "Created"}},
    summary="Create or update a contact",
)
def put_contact(
    external_id: ExternalId, body: ContactIn, key: RequestKey, engine: DbEngine, clock: AppClock
) -> Response:
    """Create the contact (201) or replace what is known of it (200).

    Addresses it had before are kept as known addresses, so mail from them is
    still recognised.
    """
    tenant = tenant_of(engine, key)  # in this thread, not one of its own (auth.request_key)
    data = ContactData(**body.model_dump())
    with engine.begin() as conn:
        contact, created = upsert_contact(conn, tenant.id, external_id, data, now=clock())
    return model_response(contact_out(contact), 201 if created else 200)


@router.get("/{external_id}", response_model=ContactOut, summary="Read a contact")
def read_contact(external_id: ExternalId, key: RequestKey, engine: DbEngine) -> Response:
    tenant = tenant_of(engine, key)
    with read_only(engine) as conn:
        contact = get_contact(conn, tenant.id, external_id)
    if contact is None:
        raise NotFoundError(f"no contact {external_id!r}")
    return model_response(contact_out(contact))
