"""Probe flow: started by `bioprocess.stack.probe` (see prefect.yaml); does nothing, so its
start time measures the bare event → flow-run latency of the stack (benchmarks/pace.py)."""

from __future__ import annotations

from prefect import flow


@flow(name="probe")
def probe(sent: str = "") -> str:
    """Answer with the time the event was sent, so a caller can match runs to its events."""
    return sent
