"""Judge one arrived file and file it: accepted (normalized, DVC-versioned) or quarantined.

The rule that matters: a file leaves `incoming/` only after its bytes are safely stored elsewhere
(the accepted copy is versioned, or the original bytes sit in quarantine with their reason), and
the catalogue has recorded the verdict. The same content arriving twice is filed once.
"""

from __future__ import annotations

import json
import logging
import shutil
import tempfile
from pathlib import Path
from typing import Any, Literal

import pandas as pd
from filelock import FileLock
from pydantic import BaseModel, ValidationError

from bioprocessml.events import ArrivedPayload, safe_name
from bioprocessml.ingest.catalogue import Catalogue, Entry, Verdict
from bioprocessml.ingest.files import PayloadRefused, resolve_incoming, sha256_of, write_durably
from bioprocessml.settings import Settings
from bioprocessml.spec import DatasetSpec

log = logging.getLogger(__name__)


class IngestResult(BaseModel):
    """What became of one arrival: a catalogue verdict, or `superseded` (the file changed after
    it was announced; its new content is announced again) with no verdict of its own."""

    file: str
    verdict: Verdict | Literal["superseded"]
    sha256: str = ""
    size: int = 0
    batch_id: str | None = None
    reasons: list[str] = []
    warnings: list[str] = []
    data_version: str | None = None
    location: str | None = None


class Ingestor:
    """Files arrivals for one data folder; one instance per flow run or CLI call."""

    def __init__(self, settings: Settings, spec: DatasetSpec) -> None:
        self.arrival_id: str | None = None
        self.pending: list[tuple[Path, IngestResult, str | None]] = []
        self.settings = settings.prepare()
        self.spec = spec
        self.data_dir = settings.data_dir
        self.catalogue = Catalogue(self.data_dir / "catalogue.db")
        self.lock = FileLock(str(self.data_dir / ".ingest.lock"))

    def ingest(
        self, relative: str, sha256: str = "", arrival_id: str | None = None,
        flow_run_id: str | None = None,
    ) -> IngestResult:  # fmt: skip
        """File `relative`; `sha256` (from the event) recognises a repeated event for a file
        already filed, e.g. announced both by the watcher and by `bioprocessml ingest`.
        `arrival_id` (the event id) is settled with the verdict; a settled one is not redone."""
        with self.lock:
            result = self._one(relative, sha256, arrival_id, flow_run_id)
            self._flush()
            return result

    def drain(self, skip: set[str]) -> list[IngestResult]:
        """Judge every other open arrival now, oldest first, under the lock the caller holds:
        a burst is judged at the gate's pace, not at one flow run's start-up each (their own
        runs then find them settled). One that fails stays open for the reconcile flow."""
        results = []
        for arrival in self.catalogue.open_arrivals():
            if arrival.id in skip or not arrival.sha256:
                continue
            try:
                results.append(self._one(arrival.file, arrival.sha256, arrival.id, None))
            except (OSError, ValueError) as exc:
                log.error("%s left for later: %s: %s", arrival.file, type(exc).__name__, exc)
        return results

    def _one(
        self, relative: str, sha256: str, arrival_id: str | None, flow_run_id: str | None
    ) -> IngestResult:
        self.arrival_id = arrival_id
        if arrival_id:
            arrival = self.catalogue.claim(arrival_id, relative, sha256, 0, flow_run_id)
            if arrival.settled_at is not None:
                return IngestResult(
                    file=relative, verdict="duplicate", sha256=sha256,
                    reasons=[f"repeated event {arrival_id}: already {arrival.outcome}"],
                )  # fmt: skip
        prior = self.catalogue.processed(sha256) if sha256 else None
        if prior is not None and not (self.settings.incoming_dir / relative).exists():
            self._settle("duplicate")
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
        if sha256 and digest != sha256:
            return self._superseded(relative, sha256, digest)
        prior = self.catalogue.processed(digest)
        if prior is not None:
            return self._duplicate(path, relative, data, prior)
        return self._judge(path, relative, data, digest)

    def _settle(self, outcome: str) -> None:
        if self.arrival_id:
            self.catalogue.settle(self.arrival_id, outcome)

    def _superseded(self, relative: str, announced: str, found: str) -> IngestResult:
        reason = (
            f"{relative} changed after it was announced (sha256 {announced[:12]}… announced, "
            f"{found[:12]}… now): left in incoming/ for its new announcement"
        )
        log.warning("%s", reason)
        self._settle("superseded")
        return IngestResult(file=relative, verdict="superseded", sha256=found, reasons=[reason])

    def refuse_event(self, label: str, reason: str) -> IngestResult:
        """An arrival event that cannot be taken up (malformed payload): on record as refused."""
        with self.lock:
            if self.arrival_id:
                arrival = self.catalogue.claim(self.arrival_id, label, "", 0, None)
                if arrival.settled_at is not None:
                    reasons = [f"repeated event {self.arrival_id}: already {arrival.outcome}"]
                    return IngestResult(file=label, verdict="duplicate", reasons=reasons)
            return self._refuse(label, reason)

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
                clash = self.catalogue.accepted(report.batch_id) or next(
                    (Entry(**r.model_dump(exclude={"warnings"})) for _, r, _ in self.pending
                     if r.batch_id == report.batch_id), None,
                )  # fmt: skip
                if clash is None:
                    return self._accept(path, frame, result)
                result.reasons = [
                    f"conflict: batch {report.batch_id!r} was already accepted from "
                    f"{clash.file!r} with different content (sha256 {clash.sha256[:12]}…)"
                ]
            site = (Path(docs), report.data_docs.relative_to(docs)) if report.data_docs else None
            return self._quarantine(path, data, result, docs=site)

    def _accept(self, path: Path, frame: pd.DataFrame, result: IngestResult) -> IngestResult:
        """Write the normalized copy; it is versioned and recorded by `_flush` (once for all
        the files judged under one lock: one DVC commit for a burst)."""
        assert result.batch_id is not None
        name = f"{safe_name(result.batch_id)}.csv"
        write_durably(self.settings.accepted_dir / name, frame.to_csv(index=False).encode())
        result.verdict, result.location = "accepted", f"accepted/{name}"
        self.pending.append((path, result, self.arrival_id))
        return result

    def _flush(self) -> None:
        from bioprocessml.ingest.versioning import commit_version

        pending, self.pending = self.pending, []
        if not pending:
            return
        try:
            version = commit_version(self.data_dir, self.settings.dvc_remote_path)
        except BaseException:
            # Not versioned, so not accepted: take them back out, or the next version would
            # carry them (e.g. the disk filled up while DVC stored them).
            for _, result, _ in pending:
                (self.data_dir / str(result.location)).unlink(missing_ok=True)
            raise
        for path, result, arrival_id in pending:
            result.data_version = version.md5
            self.arrival_id = arrival_id
            self._record(path, result)

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
            Entry(file=relative, sha256="", size=0, verdict="refused", reasons=[reason]),
            self.arrival_id,
        )
        return result

    def _record(self, path: Path, result: IngestResult) -> IngestResult:
        """Catalogue the verdict, then (and only then) remove the file from incoming/."""
        self.catalogue.add(Entry(**result.model_dump(exclude={"warnings"})), self.arrival_id)
        path.unlink()
        return result


def ingest_file(
    relative: str, settings: Settings, spec: DatasetSpec, sha256: str = ""
) -> IngestResult:
    return Ingestor(settings, spec).ingest(relative, sha256)


def file_arrivals(
    settings: Settings, spec: DatasetSpec, payload: Any, event_id: str = "",
    label: str = "", flow_run_id: str | None = None, drain: bool = True,
) -> list[IngestResult]:  # fmt: skip
    """Take up an arrival event as it came, then (with `drain`) every other open arrival (see
    `Ingestor.drain`). The payload is validated here, not by the trigger's template, so a
    malformed one ends as a `refused` record with its reason, never lost."""
    ingestor = Ingestor(settings, spec)
    with ingestor.lock:
        own = _take_up(ingestor, payload, event_id, label, flow_run_id)
        others = ingestor.drain(skip={event_id}) if drain else []
        ingestor._flush()
    return [own, *others]


def _take_up(
    ingestor: Ingestor, payload: Any, event_id: str, label: str, flow_run_id: str | None
) -> IngestResult:
    ingestor.arrival_id = event_id or None
    try:
        arrival = ArrivedPayload.model_validate(payload)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(map(str, e['loc'])) or 'payload'}: {e['msg']}" for e in exc.errors()
        )
        name = payload.get("path") if isinstance(payload, dict) else None
        file = name if isinstance(name, str) and name else (label or f"event {event_id}")
        return ingestor.refuse_event(file, f"malformed arrival event {event_id}: {problems}")
    return ingestor._one(arrival.path, arrival.sha256, event_id or None, flow_run_id)
