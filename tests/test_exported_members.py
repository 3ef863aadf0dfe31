"""The Python API is exactly ``courrier.__all__``: sorted, and every name resolves."""

from __future__ import annotations

import courrier


def test_all_is_sorted_and_every_name_is_importable() -> None:
    assert courrier.__all__ == sorted(courrier.__all__)
    for name in courrier.__all__:
        member = getattr(courrier, name)
        assert member is not None
        if name.startswith("__"):
            continue
        module = str(getattr(member, "__module__", None) or getattr(member, "__name__", ""))
        assert module.startswith("courrier"), f"{name} comes from {module}"


def test_the_exported_members_are_pinned() -> None:
    assert courrier.__all__ == [
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
