"""Events posted one at a time, accepted together: one transaction for the events that wait.

``POST /v1/events`` carries one event, and a transaction costs far more than
an event in it (on SQLite about 1.7 ms for a transaction of one booking,
0.3 ms a booking in a transaction of hundreds). Requests that arrive
together wait for one another anyway: on SQLite for the write lock, on
PostgreSQL for the rows and the log. So, as databases do with their log
(group commit), the events that arrived while a transaction ran go
together in the next one. Nothing waits for a timer: an event that finds
no transaction running goes at once, alone.

Each event still gets exactly the answer it would get alone. The events
of a group are accepted with :meth:`Intake.accept_many` (those of one
tenant, as each request read it, in the order they arrived): all of them
or none. When one is refused (``ValidationError`` naming its position) it
is taken out and accepted on its own, to get its own answer, and the
others go again together. Any other failure (the database unreachable, a
lost race) is every event's answer at once, as it would have been for
each alone, instead of trying each in turn while the others wait. Each
caller is woken as soon as its answer is known.

Intake keeps one :class:`GroupCommit` per tenant (a lane): one tenant's
burst never waits behind another's transaction.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from courrier.errors import ValidationError

if TYPE_CHECKING:
    from courrier.engine.intake import IntakeResult
    from courrier.engine.intake_batch import EventInput
    from courrier.store.tenants import Tenant

__all__ = ["GROUP_LIMIT", "GroupCommit"]

#: events accepted at most in one transaction of a group
GROUP_LIMIT = 200

AcceptMany = Callable[["Tenant", Sequence["EventInput"]], list["IntakeResult"]]


@dataclass(eq=False)
class _Waiting:
    """One caller's event, and what became of it."""

    tenant: Tenant
    event: EventInput
    woken: threading.Event = field(default_factory=threading.Event)
    done: bool = False
    result: IntakeResult | None = None
    error: BaseException | None = None

    def settle(
        self, result: IntakeResult | None = None, error: BaseException | None = None
    ) -> None:
        """Its answer: known now, and its caller woken."""
        self.result, self.error, self.done = result, error, True
        self.woken.set()

    def outcome(self) -> IntakeResult:
        if self.error is not None:
            raise self.error
        assert self.result is not None
        return self.result


class GroupCommit:
    """Accepts events one call each; those that wait while a group runs go in the next group.

    The caller that finds no group running leads: it takes every event
    waiting (its own first), accepts them, wakes their callers, and hands
    the lead to the first caller still waiting, if any.
    """

    def __init__(self, accept_many: AcceptMany, *, limit: int = GROUP_LIMIT) -> None:
        self._accept_many = accept_many
        self.limit = limit
        self._lock = threading.Lock()
        self._waiting: list[_Waiting] = []
        self._running = False  # when False, nobody waits (the lead is handed on otherwise)

    def accept(self, tenant: Tenant, event: EventInput) -> IntakeResult:
        """Accept one event (with the events that arrive meanwhile); its own answer."""
        me = _Waiting(tenant, event)
        with self._lock:
            self._waiting.append(me)
            leading = not self._running
            self._running = True
        if not leading:
            me.woken.wait()  # its answer, or the lead handed on
        if not me.done:
            self._lead()
        return me.outcome()

    def _lead(self) -> None:
        with self._lock:
            group = self._waiting[: self.limit]
            del self._waiting[: self.limit]
        try:
            by_tenant: dict[Tenant, list[_Waiting]] = {}
            for waiting in group:
                by_tenant.setdefault(waiting.tenant, []).append(waiting)
            for together in by_tenant.values():
                self._accept_together(together)
        finally:
            for waiting in group:
                if not waiting.done:  # only if something above failed unexpectedly
                    waiting.settle(error=RuntimeError("the event was not accepted"))
            with self._lock:
                following = self._waiting[0] if self._waiting else None
                self._running = following is not None
            if following is not None:
                following.woken.set()  # not done: it leads the next group

    def _accept_together(self, group: list[_Waiting]) -> None:
        """Accept one tenant's events in one transaction; a refused one on its own."""
        while len(group) > 1:
            try:
                results = self._accept_many(group[0].tenant, [w.event for w in group])
            except ValidationError as exc:
                if exc.event is None or not 0 <= exc.event < len(group):
                    break  # not one event's fault: each is tried alone for its own answer
                self._accept_alone(group.pop(exc.event))
                continue
            except Exception as exc:  # the same for each of them: no point trying each in turn
                for waiting in group:
                    waiting.settle(error=exc)
                return
            for waiting, result in zip(group, results, strict=True):
                waiting.settle(result)
            return
        for waiting in group:
            self._accept_alone(waiting)

    def _accept_alone(self, waiting: _Waiting) -> None:
        try:
            [result] = self._accept_many(waiting.tenant, [waiting.event])
        except Exception as exc:
            waiting.settle(error=exc)
        else:
            waiting.settle(result)
