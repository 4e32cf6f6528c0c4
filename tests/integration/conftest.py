"""The shared stack and its helpers live in tests/stack.py (one stack for the whole session)."""

from tests.stack import drop, events, flow_runs, prefect_post, wait_until

__all__ = ["drop", "events", "flow_runs", "prefect_post", "wait_until"]
