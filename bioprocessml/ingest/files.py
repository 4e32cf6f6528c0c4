"""Files as arrivals name them: only regular files inside incoming/ are read, and what the gate
writes is written whole (temp file, fsync, rename) or not at all."""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path

from bioprocessml.errors import BioprocessMLError


class PayloadRefused(BioprocessMLError):
    """An arrival event names a path that must not be read (outside incoming/, missing, …)."""


def sha256_of(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def resolve_incoming(incoming: Path, relative: str) -> Path:
    """The file an event payload names, refused unless it is a regular file inside incoming/."""
    rel = Path(relative)
    if not relative or rel.is_absolute():
        raise PayloadRefused(f"path {relative!r} must be relative to the incoming folder")
    if ".." in rel.parts:
        raise PayloadRefused(f"path {relative!r} must not contain '..'")
    candidate = incoming / rel
    root = incoming.resolve()
    if not candidate.resolve().is_relative_to(root):
        raise PayloadRefused(f"path {relative!r} leads outside the incoming folder (symlink)")
    if not candidate.is_file():
        raise PayloadRefused(f"path {relative!r} is not a file in the incoming folder")
    return candidate


def write_durably(path: Path, data: bytes) -> None:
    """Write via a temporary file, fsync, then rename: a crash never leaves half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=path.parent, delete=False, prefix=".tmp-") as tmp:
        tmp.write(data)
        tmp.flush()
        os.fsync(tmp.fileno())
    os.replace(tmp.name, path)
