"""The plant page at `/ui` (static assets bundled in `static/`, no CDN) and its JSON at
`/ui/api/overview`, mounted into the BentoML service.

The service keeps the latest request of each running batch in memory (`OperatorView.remember`:
a reference, no work on the `/predict` path); the page's "why" panel explains the newest of them
only when the page asks, and caches it by request id.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
from fastapi import FastAPI, HTTPException
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles

from bioprocessml.serving import overview
from bioprocessml.serving.db import engine_for
from bioprocessml.serving.deployed import Deployment
from bioprocessml.serving.explain import ExplainResponse, explain_frame
from bioprocessml.serving.request import PredictResponse
from bioprocessml.settings import Settings
from bioprocessml.spec import DatasetSpec

STATIC = Path(__file__).parent / "static"
KEEP_BATCHES = 20
TOP_ATTRIBUTIONS = 8
DESCRIPTION = """\
**BioProcessML prediction service** — titer *now* (soft sensor) and *at harvest* for a running
fermentation batch, each with a calibrated 95 % interval.

* `POST /predict` — the batch's rows so far, in the dataset spec's column names and units (like a
  batch file): answers `titer_now` and `titer_at_harvest` with `mean`, `lower`, `upper`, the
  registered model and version, and the route (champion, or canary during a rollout).
* `POST /explain` — the same rows: SHAP values of each answer per spec column, adding up with the
  base value (the average batch's answer) to the prediction.
* `/ui` — the plant page: running and recent batches, alarms, quarantines, rollouts and links.
* `/metrics` (Prometheus), `/livez`, `/readyz`; `/admin/*` needs the admin bearer token.

Models come from the MLflow registry aliases (`champion`, `challenger`) and the active rollout.
"""


class OperatorView:
    """What the page needs from the running service: settings, spec, the live deployment and
    the latest request of each batch."""

    def __init__(
        self, settings: Settings, spec: DatasetSpec, deployment: Callable[[], Deployment]
    ) -> None:
        self.settings, self.spec, self.deployment = settings, spec, deployment
        self.engine = engine_for(settings.prediction_log_url)
        self.latest: OrderedDict[str, tuple[Callable[[], pd.DataFrame], str]] = OrderedDict()
        self.explained: tuple[str, ExplainResponse] | None = None
        self.lock = threading.Lock()

    def remember(self, frame_of: Callable[[], pd.DataFrame], response: PredictResponse) -> None:
        """The batch's latest answer; its rows are read only when the page needs them."""
        with self.lock:
            self.latest[response.batch_id] = (frame_of, response.request_id)
            self.latest.move_to_end(response.batch_id)
            while len(self.latest) > KEEP_BATCHES:
                self.latest.popitem(last=False)

    def explain_latest(self) -> ExplainResponse | None:
        with self.lock:
            if not self.latest:
                return None
            frame_of, request_id = next(reversed(self.latest.values()))
        cached = self.explained
        if cached is not None and cached[0] == request_id:
            return cached[1]
        response = explain_frame(self.deployment(), frame_of(), self.spec, self.settings)
        self.explained = (request_id, response)
        return response

    def overview(self) -> dict[str, Any]:
        ids = overview.recent_batch_ids(self.engine)
        with self.lock:
            latest = {b: f for b, (f, _) in self.latest.items()}
        batches = [
            overview.batch_view(self.engine, b, self.settings, self.spec, latest.get(b))
            for b in ids
        ]
        return {
            "target": {
                "column": self.spec.variable(self.spec.target).column,
                "unit": self.spec.variable(self.spec.target).canonical_unit,
            },
            "models": models_now(self.deployment()),
            "batches": [
                b.model_dump() | {"coverage": overview.coverage(b.titer_now, b.assays)}
                for b in batches
            ],
            "alarms": overview.alarms(self.settings.reports_dir),
            "quarantines": overview.quarantines(self.settings),
            "rollouts": overview.stage_changes(self.engine),
            "explanation": explanation_summary(self.explain_latest()),
            "links": links(self.settings),
        }


def models_now(deployment: Deployment) -> dict[str, Any]:
    return {
        task: {
            "champion": m.wanted.champion,
            "challenger": m.wanted.challenger,
            "stage": m.wanted.stage or "none",
            "reason": m.wanted.reason,
        }
        for task, m in deployment.tasks.items()
    }


def explanation_summary(response: ExplainResponse | None) -> dict[str, Any] | None:
    """The newest answer's top attributions per task (the page shows these)."""
    if response is None:
        return None
    out: dict[str, Any] = {"batch_id": response.batch_id, "time_h": response.time_h}
    for field in ("titer_now", "titer_at_harvest"):
        task = getattr(response, field)
        if task is None:
            continue
        e = task.explanation
        out[field] = {
            "version": task.version,
            "route": task.route,
            "error": task.error,
            "base_value": e.base_value if e else None,
            "prediction": e.prediction if e else None,
            "method": e.method if e else None,
            "top": [a.model_dump() for a in e.top(TOP_ATTRIBUTIONS)] if e else [],
        }
    return out


def links(settings: Settings) -> dict[str, str]:
    obs = settings.observability
    return {
        "Prefect": settings.prefect_api_url.removesuffix("/api"),
        "MLflow": f"http://127.0.0.1:{settings.mlflow_ui_port}",
        "Evidently": f"http://127.0.0.1:{obs.evidently_port}",
        "Prometheus": f"http://127.0.0.1:{obs.prometheus_port}/alerts",
        "API (Swagger)": "/",
    }


_view: OperatorView | None = None
app = FastAPI(title="BioProcessML plant page", docs_url=None, redoc_url=None, openapi_url=None)


def attach(view: OperatorView) -> OperatorView:
    """Called by the service once it has settings and models (the app is made at import)."""
    global _view
    _view = view
    return view


@app.get("/api/overview")
def get_overview() -> dict[str, Any]:
    if _view is None:
        raise HTTPException(503, "the service is starting")
    return _view.overview()


@app.get("/")
def index() -> FileResponse:
    return FileResponse(STATIC / "index.html")


app.mount("/static", StaticFiles(directory=STATIC), name="static")


def describe_service(service: Any) -> None:
    """BentoML's Swagger page shows `Service.doc`: its own boilerplate unless the service runs
    from a built bento. A subclass with the same slots swaps in this service's description."""

    class Described(type(service)):  # type: ignore[misc]
        __slots__ = ()

        @property
        def doc(self) -> str:
            return DESCRIPTION

    service.__class__ = Described
