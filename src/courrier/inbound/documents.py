"""Received files on disk, stored once by content hash.

A file lives at ``<documents folder>/<first two hex digits>/<sha256>``; the
same certificate received ten times is one file. Files are written before
the database row that names them is committed (to a temporary name, then
renamed), and :meth:`DocumentFiles.sync` makes them durable, names included,
right before that commit, once for a whole batch: a row never points at a
missing or half-written file, and a crash in between leaves at most an
unreferenced file.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path

from courrier.errors import ConfigurationError, NotFoundError


class DocumentFiles:
    """The content-addressed folder of received files."""

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)
        self.unsynced = 0

    def sync(self) -> None:
        """Make every file written since the last call durable (one ``sync`` for a batch)."""
        if self.unsynced:
            os.sync()
            self.unsynced = 0

    def path(self, sha256: str) -> Path:
        if len(sha256) != 64 or any(c not in "0123456789abcdef" for c in sha256):
            raise NotFoundError("no such document")
        return self.folder / sha256[:2] / sha256

    def store(self, content: bytes) -> str:
        """Keep ``content`` (once); its SHA-256, hex."""
        sha256 = hashlib.sha256(content).hexdigest()
        target = self.path(sha256)
        if target.exists():
            return sha256
        try:
            if not target.parent.is_dir():
                target.parent.mkdir(parents=True, exist_ok=True)
            handle, temporary = tempfile.mkstemp(dir=target.parent, prefix=".incoming-")
            with os.fdopen(handle, "wb") as out:
                out.write(content)
            os.replace(temporary, target)
            self.unsynced += 1
        except OSError as exc:
            raise ConfigurationError(
                f"cannot write documents into {self.folder}: {exc.strerror}; "
                "check COURRIER_DOCUMENTS_DIR"
            ) from exc
        return sha256

    def read(self, sha256: str) -> bytes:
        path = self.path(sha256)
        try:
            return path.read_bytes()
        except FileNotFoundError as exc:
            raise NotFoundError(
                "the file of this document is missing from the documents folder"
            ) from exc
