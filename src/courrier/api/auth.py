"""Who is calling: the tenant behind a Bearer API key, and the app's shared parts.

Route functions ask for these as FastAPI dependencies, so every tenant-scoped
query gets its tenant from the key and nowhere else.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.engine import Engine

from courrier.clock import Clock
from courrier.errors import AuthenticationError
from courrier.settings import Settings
from courrier.store.db import read_only
from courrier.store.tenants import Tenant, tenant_for_key

#: Longest key accepted before looking it up; real keys are far shorter.
MAX_KEY_LENGTH = 200


def get_engine(request: Request) -> Engine:
    """The database engine the app was built with."""
    engine: Engine = request.app.state.engine
    return engine


def get_clock(request: Request) -> Clock:
    """The app's clock (a ManualClock in tests)."""
    clock: Clock = request.app.state.clock
    return clock


def get_settings(request: Request) -> Settings:
    """The settings the app was built with."""
    settings: Settings = request.app.state.settings
    return settings


def bearer_key(request: Request) -> str:
    """The key of an ``Authorization: Bearer <key>`` header, or 401."""
    header = request.headers.get("authorization")
    if not header:
        raise AuthenticationError("send your API key as 'Authorization: Bearer <key>'")
    scheme, _, key = header.partition(" ")
    key = key.strip()
    if scheme.lower() != "bearer" or not key:
        raise AuthenticationError("the Authorization header must be 'Bearer <key>'")
    if len(key) > MAX_KEY_LENGTH or not key.isprintable():
        raise AuthenticationError("this API key is not valid")
    return key


def current_tenant(request: Request) -> Tenant:
    """The tenant whose API key the request carries; 401 when there is none."""
    key = bearer_key(request)
    with read_only(get_engine(request)) as conn:
        tenant = tenant_for_key(conn, key)
    if tenant is None:
        raise AuthenticationError("this API key is not valid (unknown or revoked)")
    return tenant


CurrentTenant = Annotated[Tenant, Depends(current_tenant)]
DbEngine = Annotated[Engine, Depends(get_engine)]
AppClock = Annotated[Clock, Depends(get_clock)]
AppSettings = Annotated[Settings, Depends(get_settings)]
