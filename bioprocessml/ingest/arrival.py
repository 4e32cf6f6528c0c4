"""Judge one arrived file and file it: accepted (normalized, DVC-versioned) or quarantined.

The rule that matters: a file leaves `incoming/` only after its bytes are safely stored elsewhere
(the accepted copy is versioned, or the original bytes sit in quarantine with their reason), and
the catalogue has recorded the verdict. The same content arriving twice is filed once.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import tempfile
from pathlib import Path

import pandas as pd
from filelock import FileLock
from pydantic import BaseModel

from bioprocessml.errors import BioprocessMLError
from bioprocessml.events import safe_name
from bioprocessml.ingest.catalogue import Catalogue, Entry, Verdict
from bioprocessml.settings import Settings
from bioprocessml.spec import DatasetSpec

log = logging.getLogger(__name__)


class PayloadRefused(BioprocessMLError):
    """An arrival event names a path that must not be read (outside incoming/, missing, …)."""


class IngestResult(BaseModel):
    file: str
    verdict: Verdict
    sha256: str = ""
    size: int = 0
    batch_id: str | None = None
    reasons: list[str] = []
    warnings: list[str] = []
    data_version: str | None = None
    location: str | None = None


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


class Ingestor:
    """Files arrivals for one data folder; one instance per flow run or CLI call."""

    def __init__(self, settings: Settings, spec: DatasetSpec) -> None:
        self.settings = settings.prepare()
        self.spec = spec
        self.data_dir = settings.data_dir
        self.catalogue = Catalogue(self.data_dir / "catalogue.db")
        self.lock = FileLock(str(self.data_dir / ".ingest.lock"))

    def ingest(self, relative: str, sha256: str = "") -> IngestResult:
        """File `relative`; `sha256` (from the event) recognises a repeated event for a file
        already filed, e.g. announced both by the watcher and by `bioprocessml ingest`."""
        with self.lock:
            prior = self.catalogue.processed(sha256) if sha256 else None
            if prior is not None and not (self.settings.incoming_dir / relative).exists():
                return IngestResult(
                    file=relative, verdict="duplicate", sha256=sha256, batch_id=prior.batch_id,
                    location=prior.location, reasons=[f"repeated event: already {prior.verdict}"],
                )  # fmt: skip
            try:
                path = resolve_incoming(self.settings.incoming_dir, relative)
            except PayloadRefused as exc:
                return self._refuse(relative, str(exc))
            data = path.read_bytes()
            digest = sha256_of(data)
            prior = self.catalogue.processed(digest)
            if prior is not None:
                return self._duplicate(path, relative, data, prior)
            return self._judge(path, relative, data, digest)

    def _judge(self, path: Path, relative: str, data: bytes, digest: str) -> IngestResult:
        from bioprocessml.ingest.validation import validate_file

        result = IngestResult(file=relative, verdict="quarantined", sha256=digest, size=len(data))
        limit = int(self.settings.max_file_mb * 1024 * 1024)
        if len(data) > limit:
            result.reasons = [f"file is {len(data)} bytes, over the limit of {limit} bytes"]
            return self._quarantine(path, data, result, docs=None)
        with tempfile.TemporaryDirectory(dir=self.data_dir, prefix=".docs-") as docs:
            report, frame = validate_file(path, self.spec, docs_dir=Path(docs))
            result.batch_id, result.warnings = report.batch_id, report.warnings
            result.reasons = [check.reason for check in report.failures]
            if report.ok and frame is not None and report.batch_id is not None:
                clash = self.catalogue.accepted(report.batch_id)
                if clash is None:
                    return self._accept(path, frame, result)
                result.reasons = [
                    f"conflict: batch {report.batch_id!r} was already accepted from "
                    f"{clash.file!r} with different content (sha256 {clash.sha256[:12]}…)"
                ]
            site = (Path(docs), report.data_docs.relative_to(docs)) if report.data_docs else None
            return self._quarantine(path, data, result, docs=site)

    def _accept(self, path: Path, frame: pd.DataFrame, result: IngestResult) -> IngestResult:
        from bioprocessml.ingest.versioning import commit_version

        assert result.batch_id is not None
        name = f"{safe_name(result.batch_id)}.csv"
        write_durably(self.settings.accepted_dir / name, frame.to_csv(index=False).encode())
        version = commit_version(self.data_dir, self.settings.dvc_remote_path)
        result.verdict, result.data_version = "accepted", version.md5
        result.location = f"accepted/{name}"
        return self._record(path, result)

    def _quarantine(
        self, path: Path, data: bytes, result: IngestResult, docs: tuple[Path, Path] | None
    ) -> IngestResult:
        """Keep the original bytes with reason.json and the Data Docs of the failed checks."""
        qid = f"{safe_name(path.stem)}-{result.sha256[:8]}"
        qdir = self.settings.quarantine_dir / qid
        write_durably(qdir / safe_name(path.name), data)
        if docs is not None:
            shutil.copytree(docs[0], qdir / "data_docs", dirs_exist_ok=True)
        reason = result.model_dump(mode="json") | {
            "quarantine_id": qid,
            "data_docs": f"data_docs/{docs[1]}" if docs is not None else None,
        }
        write_durably(qdir / "reason.json", json.dumps(reason, indent=2).encode())
        result.location = f"quarantine/{qid}"
        log.warning("quarantined %s: %s", result.file, "; ".join(result.reasons))
        return self._record(path, result)

    def _duplicate(self, path: Path, relative: str, data: bytes, prior: Entry) -> IngestResult:
        result = IngestResult(
            file=relative, verdict="duplicate", sha256=prior.sha256, size=len(data),
            batch_id=prior.batch_id, location=prior.location,
            reasons=[f"same content as {prior.file!r}, already {prior.verdict} ({prior.location})"],
        )  # fmt: skip
        return self._record(path, result)

    def _refuse(self, relative: str, reason: str) -> IngestResult:
        result = IngestResult(file=relative, verdict="refused", reasons=[reason])
        log.warning("refused arrival %r: %s", relative, reason)
        self.catalogue.add(
            Entry(file=relative, sha256="", size=0, verdict="refused", reasons=[reason])
        )
        return result

    def _record(self, path: Path, result: IngestResult) -> IngestResult:
        """Catalogue the verdict, then (and only then) remove the file from incoming/."""
        self.catalogue.add(Entry(**result.model_dump(exclude={"warnings"})))
        path.unlink()
        return result


def ingest_file(
    relative: str, settings: Settings, spec: DatasetSpec, sha256: str = ""
) -> IngestResult:
    return Ingestor(settings, spec).ingest(relative, sha256)
