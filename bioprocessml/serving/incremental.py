"""The incremental prediction API: a client following a running batch sends only the rows since
its last call (`POST /batches/{batch_id}/rows`); the service adds them to the batch it holds
and answers as `/predict` would with the whole history.

`first_row` says where the sent rows belong (0 for a batch's first rows, then the `rows` of the
previous answer), so a client and the service never silently disagree about a batch: rows
that overlap rows held, leave a gap, or start before the last held row's time are refused with
409 and what the service holds, from which the client re-sends (after a restart the service
rebuilds what it stored; what it could not store, it asks for again).
"""

from __future__ import annotations

import uuid

from pydantic import BaseModel, Field

from bioprocessml.events import safe_name
from bioprocessml.serving.answering import Answerer, Shadow, Unavailable
from bioprocessml.serving.batch_state import BatchHistory, BatchSummary
from bioprocessml.serving.batch_store import BatchStore
from bioprocessml.serving.deployed import Deployment
from bioprocessml.serving.request import PredictResponse
from bioprocessml.serving.rows import Cell, CheckedRows, InputError, check_rows
from bioprocessml.spec import DatasetSpec


class RowsRequest(BaseModel):
    first_row: int = Field(
        ge=0, description="position of the first sent row in the batch: 0 for its first rows, "
        "then the previous answer's `rows`"
    )  # fmt: skip
    rows: list[dict[str, Cell]] = Field(
        description="the new rows: the dataset spec's column names and units, like a batch file; "
        "time and online channels required, offline assays optional"
    )


class RowsResponse(PredictResponse):
    rows: int = Field(description="rows of the batch the service holds: the next `first_row`")


class Discontinuity(Exception):
    """Rows that do not continue the batch the service holds (answered 409)."""

    def __init__(self, message: str, summary: BatchSummary) -> None:
        super().__init__(message)
        self.summary = summary


class RowsRefused(Exception):
    """A request answered with an error: its HTTP status, why, and what the service holds of
    the batch now (so the client knows where to continue)."""

    def __init__(self, status: int, message: str, summary: BatchSummary) -> None:
        super().__init__(message)
        self.status, self.message, self.summary = status, message, summary

    def body(self) -> dict[str, object]:
        return {"error": self.message, **self.summary.model_dump()}


def summary_of(history: BatchHistory) -> BatchSummary:
    time_h = history.time_h if history.rows else None
    return BatchSummary(batch_id=history.batch_id, rows=history.rows, time_h=time_h)


def check_continues(history: BatchHistory, first_row: int, rows: CheckedRows) -> None:
    held, name = history.rows, history.batch_id
    where = f"the service holds {held} rows of batch {name!r}" + (
        f", the last at {history.time_h:g} h" if held else ""
    )
    if first_row < held:
        raise Discontinuity(
            f"{where}: rows from row {first_row} overlap rows {first_row}…{held - 1} sent "
            f"before; send the rows from row {held} on", summary_of(history),
        )  # fmt: skip
    if first_row > held:
        raise Discontinuity(
            f"{where}: rows from row {first_row} leave rows {held}…{first_row - 1} out (not "
            f"received, or not stored before a restart); send the rows from row {held} on",
            summary_of(history),
        )  # fmt: skip
    if held and rows.time[0] <= history.time_h:
        raise Discontinuity(
            f"{where}: the first sent row's time {rows.time[0]:g} h is not after it (time "
            "goes back or rows overlap)", summary_of(history),
        )  # fmt: skip


def add_rows(
    store: BatchStore, answerer: Answerer, deployment: Deployment, spec: DatasetSpec,
    max_rows: int, batch_id: str, request: RowsRequest,
) -> tuple[RowsResponse, list[Shadow]]:  # fmt: skip
    """Check and add the rows, store them, answer. RowsRefused 422: rows the spec refuses,
    409: rows that do not continue the batch (neither adds anything); 503: no model can
    answer now (the rows are added and kept); 500: a champion failed."""
    check_batch_id(batch_id)
    with store.open(batch_id) as history:
        try:
            rows = check_rows(batch_id, request.rows, spec, max_rows, origin=history.origin)
            check_continues(history, request.first_row, rows)
            if history.rows + len(rows) > max_rows:
                raise InputError(
                    f"batch {batch_id!r} would hold {history.rows + len(rows)} rows; at most "
                    f"{max_rows} (serving.max_rows)"
                )
        except InputError as exc:
            raise RowsRefused(422, str(exc), summary_of(history)) from None
        except Discontinuity as exc:
            raise RowsRefused(409, str(exc), exc.summary) from None
        history.extend(rows)
        store.keep(history, request.first_row, rows)
        try:
            response, shadows = answerer.answer(deployment, history, uuid.uuid4().hex)
        except Unavailable as exc:
            raise RowsRefused(503, f"rows kept; {exc}", summary_of(history)) from None
        except RuntimeError as exc:
            raise RowsRefused(500, f"rows kept; {exc}", summary_of(history)) from None
        return RowsResponse(**response.model_dump(), rows=history.rows), shadows


def batch_summary(store: BatchStore, batch_id: str) -> BatchSummary:
    """What the service holds of a batch (rebuilt from its stored rows if need be)."""
    check_batch_id(batch_id)
    with store.open(batch_id) as history:
        return summary_of(history)


def check_batch_id(batch_id: str) -> None:
    if safe_name(batch_id) != batch_id:
        raise RowsRefused(
            422, f"batch_id {batch_id!r}: use letters, digits, '_', '-' and '.' only",
            BatchSummary(batch_id=batch_id, rows=0, time_h=None),
        )  # fmt: skip
