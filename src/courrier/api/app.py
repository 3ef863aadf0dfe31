"""The FastAPI application, built from settings by :func:`create_app`.

Routers are listed in :data:`ROUTERS`; a feature adds its router there.
The app keeps its engine, clock, settings and intake on ``app.state`` so
tests can build one per database and clock.
"""

from __future__ import annotations

from functools import partial

from fastapi import APIRouter, FastAPI
from sqlalchemy.engine import Engine

from courrier.api import (
    addresses,
    captured,
    contacts,
    events,
    health,
    inbound,
    kinds,
    message_actions,
    messages,
    preferences,
    preview,
    tenant,
    tracking,
    webhooks,
)
from courrier.api.errors import install_error_handlers
from courrier.api.limits import BodyLimit
from courrier.api.models import ERROR_RESPONSES
from courrier.clock import Clock, utcnow
from courrier.console import captured as captured_page
from courrier.console import preferences as preference_page
from courrier.engine.intake import Intake
from courrier.engine.wakeup import Wakeup
from courrier.settings import Settings
from courrier.store.db import create_db_engine

ROUTERS: list[APIRouter] = [
    health.router,
    contacts.router,
    preferences.router,
    preview.router,
    kinds.router,
    events.router,
    messages.router,
    message_actions.router,
    captured.router,
    captured_page.router,
    preference_page.router,
    inbound.router,
    tenant.router,
    tracking.router,
    addresses.router,
    webhooks.router,
]

#: Routers that need no API key; every other one may answer the errors of ERROR_RESPONSES.
UNAUTHENTICATED = (health.router, captured_page.router, preference_page.router)

DESCRIPTION = """Courrier's REST API: contacts, events, the message history, captured mail.

Authenticate with `Authorization: Bearer <tenant API key>` (made by `courrier tenant create`).
Every error answers `{"error": {"code", "message", "field"?}}`; invalid input is a 422 whose
`field` is a dotted path into the request.
"""


def create_app(
    settings: Settings,
    *,
    engine: Engine | None = None,
    clock: Clock = utcnow,
    wakeup: Wakeup | None = None,
) -> FastAPI:
    """The API for ``settings``; ``engine`` defaults to one made from ``settings.database_url``.

    ``wakeup`` is poked when an event plans a message due now, so an
    in-process dispatcher sends it at once.
    """
    app = FastAPI(
        title="Courrier", version="1", description=DESCRIPTION, openapi_url="/openapi.json"
    )
    app.state.settings = settings
    app.state.engine = engine if engine is not None else create_db_engine(settings.database_url)
    app.state.clock = clock
    app.state.wakeup = wakeup
    app.state.intake = Intake(
        app.state.engine,
        clock=clock,
        wakeup=wakeup,
        preference_links=partial(preference_page.preference_url, settings),
    )
    install_error_handlers(app)
    for router in ROUTERS:
        public = router in UNAUTHENTICATED
        app.include_router(router, responses=None if public else ERROR_RESPONSES)
    app.add_middleware(BodyLimit)
    return app
