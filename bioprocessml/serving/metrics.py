"""Prometheus metrics of the prediction service, served by BentoML at /metrics next to its own
request metrics (prometheus_client's registry; BentoML sets up multiprocess mode)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

PREDICTIONS = Counter(
    "bioprocessml_predictions",
    "Model predictions by task, model version, role, route and outcome (ok | failed)",
    ["task", "model_version", "role", "route", "outcome"],
)
LATENCY = Histogram(
    "bioprocessml_prediction_seconds",
    "Time one model took to predict, by task, model version and role",
    ["task", "model_version", "role"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
)
REJECTED = Counter(
    "bioprocessml_rejected_requests",
    "Requests answered with an error, by HTTP status",
    ["status"],
)
DISAGREEMENT = Histogram(
    "bioprocessml_shadow_disagreement",
    "Absolute difference between champion and challenger means (target unit), by task",
    ["task"],
    buckets=(0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0),
)
STAGE = Gauge(
    "bioprocessml_rollout_stage",
    "1 for the task's current rollout stage (none | shadow | canary)",
    ["task", "stage"],
    multiprocess_mode="livemax",
)
LOG_WAITING = Gauge(
    "bioprocessml_log_rows_waiting",
    "Prediction-log and batch rows waiting to be written to the serving database",
    multiprocess_mode="livesum",
)
LOG_LOST = Counter(
    "bioprocessml_log_rows_lost",
    "Rows dropped because too many waited for an unavailable serving database, by table",
    ["table"],
)
LOG_FAILURES = Counter(
    "bioprocessml_log_write_failures",
    "Failed attempts to write waiting rows to the serving database (retried)",
)
BATCHES_HELD = Gauge(
    "bioprocessml_running_batches",
    "Running batches whose rows the service holds in memory (incremental API)",
    multiprocess_mode="livesum",
)
BATCH_REBUILDS = Counter(
    "bioprocessml_batch_rebuilds",
    "Running batches rebuilt into memory from their stored rows (after a restart or eviction)",
)
BATCH_EVICTIONS = Counter(
    "bioprocessml_batch_evictions",
    "Running batches that left memory, by reason (idle | full | ended)",
    ["reason"],
)
SHADOW_DROPPED = Counter(
    "bioprocessml_shadow_dropped",
    "Shadow predictions not made: too many waited (the service was overloaded) or the worker "
    "running them stopped",
)
SHADOW_SKIPPED = Counter(
    "bioprocessml_shadow_skipped",
    "Requests the other model did not shadow: its batch was shadowed in this slot of batch time "
    "already (rollout.shadow_every_h)",
)
SHADOW_RESTARTS = Counter(
    "bioprocessml_shadow_worker_restarts",
    "Times the thread running shadow predictions had stopped and was started again",
)
