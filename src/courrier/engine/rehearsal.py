"""A batch rehearsed before its transaction: what it computed, found again by equal inputs.

On SQLite one writer at a time holds the database, and rendering is most
of intake's work. Rendered inside the transaction, a batch of events keeps
the workers from claiming and recording until it commits. So intake first
plans the batch on a read snapshot, which takes no lock, writing nothing
(:meth:`courrier.engine.planner.BatchPlanner.rehearse`), and keeps what
that computes here; the transaction then plans for real and takes a result
from here only when the inputs it has now are equal (``==``) to the ones
the result came from.

What is kept is a pure function of its inputs: a message's texts of the
renderer (its templates), the kind, the locale, the context and the
subject's version; a calendar file of the method, the subject's state and
version, the tenant, the texts and the attendee, and of the time it was
made, which it keeps as its stamp (``DTSTAMP``, a moment before the
transaction). So a kept result is what computing it again would give (but
for that stamp), and whatever changed between the rehearsal and the
transaction (a contact renamed, a template edited, a subject moved by
another request) is computed again. The plans themselves, which depend on
the exact time, and the rows are always made in the transaction, with its
own time.
"""

from __future__ import annotations

from collections.abc import Hashable
from typing import Any

from courrier.render.templates import TemplateRenderer


class Rehearsal:
    """Results by their inputs, for the renderer ``renderer`` (its composer's).

    ``key`` narrows the search (the kind, the recipient, the subject); the
    inputs are then compared whole, so a key shared by different inputs
    costs a comparison, never a wrong result.
    """

    def __init__(self, renderer: TemplateRenderer) -> None:
        self.renderer = renderer
        self._made: dict[Hashable, list[tuple[Any, Any]]] = {}

    def find(self, key: Hashable, inputs: Any) -> Any:
        """The result kept for inputs equal to ``inputs``, or None."""
        for kept, result in self._made.get(key, ()):
            if kept == inputs:
                return result
        return None

    def keep(self, key: Hashable, inputs: Any, result: Any) -> Any:
        """Keep ``result`` of ``inputs`` (neither may change afterwards); returns it."""
        self._made.setdefault(key, []).append((inputs, result))
        return result
