"""Timing Courrier's stages from the outside, and profiling every thread of a run.

The benchmark does not edit the code it measures: it wraps a few functions
where the dispatcher looks them up (``module.attribute``) and adds up the
wall time spent inside each, across threads. A function that is not there
(renamed, or not written yet) is reported as not instrumented rather than
failing the run.
"""

from __future__ import annotations

import cProfile
import functools
import importlib
import io
import pstats
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from bench.results import StageClock


class ThreadSafeStageClock(StageClock):
    """A :class:`StageClock` that threads may add to at once; also counts calls."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: dict[str, int] = {}
        self._lock = threading.Lock()

    def add(self, name: str, seconds: float, cpu: float = 0.0) -> None:
        with self._lock:
            super().add(name, seconds, cpu)
            self.calls[name] = self.calls.get(name, 0) + 1


def _timed(function: Callable[..., Any], stage: str, clock: StageClock) -> Callable[..., Any]:
    @functools.wraps(function)
    def timed(*args: Any, **kwargs: Any) -> Any:
        with clock.timed_call(stage):
            return function(*args, **kwargs)

    return timed


@contextmanager
def instrumented(targets: list[tuple[str, str, str]], clock: StageClock) -> Iterator[list[str]]:
    """Wrap each ``(module, attribute, stage)`` for the block; yields what could not be wrapped.

    ``attribute`` may be dotted (``Class.method``) to time a method.
    """
    undo: list[tuple[Any, str, Any]] = []
    missing: list[str] = []
    for module_name, attribute, stage in targets:
        try:
            owner: Any = importlib.import_module(module_name)
            *path, name = attribute.split(".")
            for part in path:
                owner = getattr(owner, part)
            original = owner.__dict__[name] if isinstance(owner, type) else getattr(owner, name)
        except (ImportError, AttributeError, KeyError):
            missing.append(f"{stage} ({module_name}.{attribute})")
            continue
        undo.append((owner, name, original))
        setattr(owner, name, _timed(original, stage, clock))
    try:
        yield missing
    finally:
        for owner, name, original in reversed(undo):
            setattr(owner, name, original)


class AllThreadsProfile:
    """cProfile for the calling thread and for every thread started while it runs.

    Python 3.11 has no ``threading.setprofile_all_threads``; each new thread
    starts its own ``cProfile.Profile`` from the ``threading.setprofile`` hook,
    and the profiles are merged at the end.
    """

    def __init__(self) -> None:
        self._profiles: list[cProfile.Profile] = []
        self._lock = threading.Lock()

    def _start_in_thread(self, *_args: Any) -> None:
        profile = cProfile.Profile()
        with self._lock:
            self._profiles.append(profile)
        profile.enable()  # replaces this hook for the thread

    @contextmanager
    def running(self) -> Iterator[None]:
        main = cProfile.Profile()
        self._profiles.append(main)
        threading.setprofile(self._start_in_thread)
        main.enable()
        try:
            yield
        finally:
            main.disable()
            threading.setprofile(None)

    def stats(self) -> pstats.Stats:
        with self._lock:
            profiles = list(self._profiles)
        for profile in profiles:
            profile.disable()
        return pstats.Stats(*profiles)

    def report(self, path: Path, top: int = 40) -> str:
        """Save the merged stats to ``path``; the top functions by cumulative and own time."""
        stats = self.stats()
        stats.dump_stats(str(path))
        out = io.StringIO()
        stats.stream = out  # type: ignore[attr-defined]
        stats.sort_stats("cumulative").print_stats(top)
        stats.sort_stats("tottime").print_stats(top)
        return out.getvalue()
