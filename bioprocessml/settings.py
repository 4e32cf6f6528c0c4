"""One typed settings object, read from `BIOPROCESSML_*` environment variables (or a `.env` file).

Nothing happens at import: directories are created and telemetry is switched off only when a
command calls `Settings.prepare()` / `disable_telemetry()`.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

PROJECT_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_SPEC = PROJECT_ROOT / "data" / "datasets" / "fedbatch.yaml"
BASE_CANDIDATES = ("pls", "gp", "lstm", "hybrid")
ASSAYS_SUFFIX = "+assays"  # a soft sensor corrected by the batch's own assays (models.anchored)

# Each tool's own switch, checked in its code at the pinned versions (see ../shared/NOTES.md).
TELEMETRY_OFF = {
    "DO_NOT_TRACK": "true",
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "MLFLOW_DISABLE_TELEMETRY": "true",
    "BENTOML_DO_NOT_TRACK": "true",
}


class Thresholds(BaseModel):
    """Decision thresholds of the pipeline's gates."""

    max_missing_fraction: float = Field(0.05, ge=0, le=1, description="nulls allowed per column")
    drift_share: float = Field(0.3, gt=0, le=1, description="share of drifted features = drift")
    drift_p_value: float = Field(0.01, gt=0, lt=1, description="window test: K-S level per feature")
    drift_window: int = Field(5, ge=1, description="recent batches pooled in the window test")
    drift_limit_level: float = Field(
        0.2, gt=0, lt=1, description="P(a normal batch has any feature beyond its limits)"
    )
    drift_min_reference: int = Field(8, ge=2, description="reference batches before drift counts")
    drift_tolerance: float = Field(
        0.02, ge=0, lt=1, description="smallest change that counts, share of a channel's scale"
    )
    drift_confirm_batches: int = Field(
        2, ge=1, le=5, description="consecutive batches beyond a limit (recipe channels: 1)"
    )
    cusum_k: float = Field(0.5, ge=0, description="concept CUSUM slack, in robust z of log error")
    cusum_h: float = Field(4.0, gt=0, description="concept CUSUM alarm level (same units)")
    concept_burn_in: int = Field(
        4, ge=0, description="live batches pooled into the champion's reference error"
    )
    concept_min_log_spread: float = Field(
        0.35, gt=0, description="floor of the spread of log per-batch errors"
    )
    bootstrap_batches: int = Field(8, ge=4, description="accepted batches before a first model")
    retrain_cooldown_batches: int = Field(3, ge=0, description="batches between retrain requests")
    challenger_margin: float = Field(0.05, ge=0, description="relative RMSE gain to challenge")
    naive_window: int = Field(
        3, ge=1, description="live batches over which a champion worse than naive alarms"
    )
    naive_margin: float = Field(
        0.05, ge=0, lt=1, description="relative RMSE gain over the naive forecast to serve at all"
    )
    coverage_bounds: tuple[float, float] = (0.85, 0.99)


class Rollout(BaseModel):
    """Live comparison of a challenger with the champion on paired per-batch errors."""

    confidence: float = Field(0.95, gt=0.5, lt=1, description="one-sided Wilcoxon test level")
    min_batches: int = Field(5, ge=2, description="paired batches before shadow → canary")
    canary_min_batches: int = Field(
        1, ge=1, description="finished batches whose users got canary answers, before promotion"
    )
    min_canary_answers: int = Field(4, ge=1, description="canary answers served before promotion")
    max_batches: int = Field(15, ge=3, description="not better after this many → rolled back")
    canary_share: float = Field(0.2, gt=0, lt=1, description="share of batches (stable hash)")
    canary_tolerance: float = Field(
        0.1, ge=0, description="canary only if the challenger's mean error is ≤ this much higher"
    )
    max_error_rate: float = Field(0.05, ge=0, lt=1, description="challenger failures → rollback")
    min_requests_for_error_rate: int = Field(20, ge=1)
    shadow_every_h: float = Field(
        1.0, ge=0, description="the other model predicts for the first request of each batch in "
        "every this many hours of batch time (0: every request); the paired errors use those",
    )  # fmt: skip


class Serving(BaseModel):
    """The BentoML prediction service."""

    host: str = "127.0.0.1"
    port: int = Field(3000, ge=1, le=65535)
    prediction_log_url: str | None = Field(None, description="SQLAlchemy URL; default SQLite")
    admin_token: SecretStr | None = Field(None, description="bearer token of /admin/*")
    poll_seconds: float = Field(5.0, gt=0, description="how often the service checks aliases")
    max_rows: int = Field(
        20_000, ge=1, description="rows of one batch: in a /predict request, or held while followed"
    )
    batch_cache: int = Field(256, ge=1, description="running batches held in memory at most")
    batch_idle_hours: float = Field(
        6.0, gt=0, description="a running batch idle this long leaves memory (rebuilt on return)"
    )
    batch_retention_days: float = Field(
        30.0, gt=0, description="stored rows of running batches are deleted after this"
    )
    log_buffer_rows: int = Field(
        100_000, ge=1, description="rows waiting for an unavailable database; more are dropped"
    )
    shadow_queue: int = Field(
        10_000, ge=1, description="shadow predictions waiting at most; more are dropped, counted"
    )

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"


class Training(BaseModel):
    """Retraining: which candidates, how batches are held out, how tasks run."""

    candidates: list[str] = Field(
        ["pls", "gp", "lstm", "gp+assays"],
        description="pls, gp, lstm, hybrid; '<name>+assays' (soft sensor only) is that candidate "
        "corrected by the batch's own titer assays",
    )

    @field_validator("candidates")
    @classmethod
    def _known_candidates(cls, names: list[str]) -> list[str]:
        unknown = [n for n in names if n.removesuffix(ASSAYS_SUFFIX) not in BASE_CANDIDATES]
        if unknown:
            raise ValueError(
                f"unknown candidates {unknown}: use {', '.join(BASE_CANDIDATES)}, or one of "
                f"them with '{ASSAYS_SUFFIX}' for the soft sensor (e.g. 'pls{ASSAYS_SUFFIX}')"
            )
        if len(set(names)) < len(names) or not names:
            raise ValueError(f"name each candidate once, at least one: got {names}")
        return names

    holdout_fraction: float = Field(0.33, gt=0, lt=1, description="share of batches held out")
    holdout: Literal["spread", "newest"] = Field(
        "spread", description="held-out batches spread over arrival order, or the newest"
    )
    seed: int = 0
    task_runner: Literal["threads", "dask"] = Field("threads", description="dask: prefect-dask")
    max_workers: int = Field(2, ge=1, description="candidates trained at once")
    gp_sparse_threshold: int = Field(
        500, ge=100, description="training rows above which the GP is variational (linear cost)"
    )


class Runtime(BaseModel):
    """How flow runs execute and how lost work is found again."""

    executor: Literal["runner", "process"] = Field(
        "runner",
        description="runner: one long-lived process runs flows in threads (imports paid once); "
        "process: a Prefect process worker, a new process per flow run",
    )
    concurrency: int = Field(4, ge=1, description="flow runs at once in the runner")
    poll_seconds: float = Field(1.0, gt=0, description="how often the runner asks for runs")
    reconcile_seconds: int = Field(60, ge=5, description="interval of the reconcile flow")
    reconcile_grace_seconds: float = Field(
        30.0, ge=0, description="an arrival without a live flow run this long is redone"
    )


class Observability(BaseModel):
    """What `up` serves for operators next to the pipeline (issue 18), and the alert rules."""

    evidently_port: int = Field(8000, ge=1, le=65535, description="Evidently UI (monitoring)")
    prometheus_port: int = Field(9090, ge=1, le=65535, description="Prometheus, if installed")
    exporter_port: int = Field(9108, ge=1, le=65535, description="the pipeline's own metrics")
    scrape_seconds: float = Field(5.0, gt=0, description="Prometheus scrape/evaluation interval")
    no_batch_hours: float = Field(24.0, gt=0, description="alert when no batch arrived this long")
    webhook_url: str | None = Field(
        None, description="Slack/Teams-style JSON on quarantine, drift, promotion, rollback"
    )
    local_receiver: bool = Field(
        False, description="`up` runs a local webhook receiver (<state_dir>/notifications.jsonl)"
    )
    receiver_port: int = Field(9109, ge=1, le=65535, description="port of that receiver")


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="BIOPROCESSML_", env_nested_delimiter="__", env_file=".env", extra="ignore"
    )

    state_dir: Path = Field(Path(".bioprocessml"), description="servers' databases, logs, reports")
    data_dir: Path = Field(Path("data"), description="incoming/, quarantine/, accepted/")
    spec_path: Path = Field(DEFAULT_SPEC, description="dataset spec YAML of the batch files")
    prefect_api_url: str = "http://127.0.0.1:4200/api"
    mlflow_tracking_uri: str | None = Field(None, description="default: SQLite in state_dir")
    mlflow_ui_port: int = Field(5000, ge=1, le=65535, description="`up` serves the MLflow UI here")
    max_file_mb: float = Field(50.0, gt=0)
    dvc_remote: Path | None = Field(
        None, description="DVC remote folder; default <state_dir>/dvc-remote"
    )
    watch_settle_seconds: float = Field(
        1.0, gt=0, description="a file unchanged this long is complete"
    )
    thresholds: Thresholds = Thresholds()
    training: Training = Training()
    rollout: Rollout = Rollout()
    serving: Serving = Serving()
    observability: Observability = Observability()
    runtime: Runtime = Runtime()
    experiment: str = Field("bioprocessml", description="MLflow experiment of training runs")
    reports_dir: Path = Field(Path("monitoring/reports"), description="drift reports (HTML, JSON)")

    @property
    def tracking_uri(self) -> str:
        if self.mlflow_tracking_uri:
            return self.mlflow_tracking_uri
        return f"sqlite:///{(self.state_dir / 'mlflow.db').resolve()}"

    @property
    def prediction_log_url(self) -> str:
        if self.serving.prediction_log_url:
            return self.serving.prediction_log_url
        return f"sqlite:///{(self.state_dir / 'predictions.db').resolve()}"

    @property
    def dvc_remote_path(self) -> Path:
        return (self.dvc_remote or self.state_dir / "dvc-remote").resolve()

    @property
    def incoming_dir(self) -> Path:
        return self.data_dir / "incoming"

    @property
    def quarantine_dir(self) -> Path:
        return self.data_dir / "quarantine"

    @property
    def accepted_dir(self) -> Path:
        return self.data_dir / "accepted"

    def prepare(self) -> Settings:
        """Create the state and data folders (the only side effect, done on demand)."""
        for path in (self.state_dir, self.incoming_dir, self.quarantine_dir, self.accepted_dir):
            path.mkdir(parents=True, exist_ok=True)
        return self


def disable_telemetry() -> None:
    """Switch every tool's telemetry off unless the user set the variable explicitly."""
    for key, value in TELEMETRY_OFF.items():
        os.environ.setdefault(key, value)
