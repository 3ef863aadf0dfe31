"""Courrier: a self-hosted notification and mail hub for booking and membership platforms.

The names in ``__all__`` are the Python API. They are imported on first use
(PEP 562), so ``import courrier.domain`` stays free of the web and database
layers; a test pins the list.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from courrier import errors
    from courrier.api.app import create_app
    from courrier.channels.capture import LocalCapture
    from courrier.channels.email import SmtpSender
    from courrier.clock import ManualClock, utcnow
    from courrier.domain.status import MessageStatus
    from courrier.engine.dispatcher import Dispatcher
    from courrier.engine.intake import EventInput, Intake, IntakeResult, PlannedSummary
    from courrier.engine.wakeup import Wakeup
    from courrier.engine.worker import run_worker
    from courrier.errors import CourrierError
    from courrier.settings import Settings
    from courrier.store.tenants import Tenant

__version__ = "0.1.0"

#: public name → the module that defines it
_HOMES = {
    "CourrierError": "courrier.errors",
    "Dispatcher": "courrier.engine.dispatcher",
    "EventInput": "courrier.engine.intake",
    "Intake": "courrier.engine.intake",
    "IntakeResult": "courrier.engine.intake",
    "LocalCapture": "courrier.channels.capture",
    "ManualClock": "courrier.clock",
    "MessageStatus": "courrier.domain.status",
    "PlannedSummary": "courrier.engine.intake",
    "Settings": "courrier.settings",
    "SmtpSender": "courrier.channels.email",
    "Tenant": "courrier.store.tenants",
    "Wakeup": "courrier.engine.wakeup",
    "create_app": "courrier.api.app",
    "run_worker": "courrier.engine.worker",
    "utcnow": "courrier.clock",
}

__all__ = [
    "CourrierError",
    "Dispatcher",
    "EventInput",
    "Intake",
    "IntakeResult",
    "LocalCapture",
    "ManualClock",
    "MessageStatus",
    "PlannedSummary",
    "Settings",
    "SmtpSender",
    "Tenant",
    "Wakeup",
    "__version__",
    "create_app",
    "errors",
    "run_worker",
    "utcnow",
]


def __getattr__(name: str) -> Any:
    if name == "errors":
        return importlib.import_module("courrier.errors")
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'courrier' has no attribute {name!r}")
    return getattr(importlib.import_module(home), name)


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
