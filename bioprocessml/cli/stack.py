"""Commands on the embedded stack: config, up, down and the demo campaign."""

from __future__ import annotations

import time
from typing import Annotated

import typer

from bioprocessml.cli.app import JsonOption, app, console, print_json
from bioprocessml.settings import Settings
from bioprocessml.stack.prometheus import alerts_page


@app.command()
def config(as_json: JsonOption = False) -> None:
    """Print the effective settings (from BIOPROCESSML_* variables and .env); --json prints
    them as one JSON object for scripts, the MLflow tracking URI included."""
    import json

    settings = Settings()
    if as_json:
        print_json(json.loads(settings.model_dump_json()) | {"tracking_uri": settings.tracking_uri})
        return
    console.print_json(settings.model_dump_json())
    console.print(f"MLflow tracking URI: {settings.tracking_uri}")


@app.command()
def up(
    watch: Annotated[bool, typer.Option(help="Also start the incoming-folder watcher.")] = True,
) -> None:
    """Start the embedded stack: Prefect server (SQLite), deployments, a worker, the watcher and
    the BentoML prediction service."""
    from bioprocessml.stack.servers import up as start

    settings = Settings()
    with console.status("starting Prefect server, deploying flows, worker, service…"):
        start(settings, watch=watch)
    console.print(f"Prefect UI: {settings.prefect_api_url.removesuffix('/api')}")
    console.print(f"prediction service (Swagger UI): {settings.serving.url}")
    console.print(f"plant page: {settings.serving.url}/ui/")  # issue 18
    console.print(f"Evidently dashboard: http://127.0.0.1:{settings.observability.evidently_port}")
    console.print(f"Prometheus alerts: {alerts_page(settings.observability.prometheus_port)}")
    console.print(f"drop batch files into {settings.incoming_dir.resolve()}")


@app.command(hidden=True)
def runner() -> None:
    """Run the chain's flow runs in this one process (started by `up`; see stack/runner.py)."""
    import logging
    import threading

    from bioprocessml.cli.app import prefect_ready
    from bioprocessml.stack.runner import serve_forever
    from bioprocessml.stack.servers import WORK_POOL

    settings = Settings()
    prefect_ready(settings, wait=300)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    threading.Thread(target=_warm_imports, daemon=True).start()
    serve_forever(WORK_POOL, settings.runtime.concurrency, settings.runtime.poll_seconds)


def _warm_imports() -> None:
    """The stages' heavy libraries, imported while the runner already polls."""
    import importlib

    for module in ("great_expectations", "evidently", "mlflow", "torch"):
        importlib.import_module(module)


@app.command()
def down() -> None:
    """Stop every process `bioprocessml up` started for this state folder."""
    from bioprocessml.stack.servers import down as stop

    stopped = stop(Settings())
    console.print(f"stopped: {', '.join(stopped) or 'nothing was running'}")


@app.command()
def demo(
    quick: Annotated[
        bool, typer.Option(help="Shorter run: 10 normal batches, first model after 6, PLS + GP.")
    ] = False,
    changed: Annotated[
        int, typer.Option(min=3, help="Most batches after the process change.")
    ] = 14,
) -> None:
    """The campaign, live: start the stack, drop batch files into incoming/ and watch the chain
    bootstrap a champion, quarantine bad files, detect drift, retrain, roll out and roll back."""
    from bioprocessml.stack.campaign import CampaignPlan, demo_settings, run_campaign
    from bioprocessml.stack.timeline import build_timeline, format_timeline

    settings = demo_settings(Settings(), quick)
    plan = CampaignPlan(normal=10 if quick else 20, changed=changed)
    started = time.monotonic()

    def say(text: str) -> None:
        console.print(f"[dim]{time.monotonic() - started:6.0f} s[/dim]  {text}")

    report, seconds = run_campaign(settings, plan, say)
    rows = build_timeline(settings)
    text = format_timeline(rows)
    (settings.state_dir / "campaign" / "timeline.txt").write_text(text + "\n")
    console.print(text, highlight=False, markup=False, soft_wrap=True)
    if report is not None:
        console.print(f"/predict calls: {report.sent} sent, {report.failed} failed, "
                      f"p50 {report.p50_ms:.0f} ms, p99 {report.p99_ms:.0f} ms")  # fmt: skip
    console.print(f"campaign: {seconds / 60:.1f} min")
    print_urls(settings)
    console.print("the stack keeps running for you to look around; stop it with `make stop`")


def print_urls(settings: Settings) -> None:
    prefect = settings.prefect_api_url.removesuffix("/api")
    mlflow = f"http://127.0.0.1:{settings.mlflow_ui_port}"
    docs = sorted(settings.quarantine_dir.resolve().glob("*/**/index.html"))
    obs = settings.observability
    for name, url in [
        ("Prefect deployments", f"{prefect}/deployments"), ("Prefect events", f"{prefect}/events"),
        ("Prefect flow runs", f"{prefect}/runs"), ("MLflow runs", f"{mlflow}/#/experiments"),
        ("MLflow registry (aliases)", f"{mlflow}/#/models"),
        ("BentoML Swagger UI", settings.serving.url),
        ("plant page", f"{settings.serving.url}/ui/"),  # issue 18: the next four
        ("Evidently dashboard", f"http://127.0.0.1:{obs.evidently_port}"),
        ("Prometheus alerts", alerts_page(obs.prometheus_port)),
        ("pipeline metrics", f"http://127.0.0.1:{obs.exporter_port}/metrics"),
        ("Evidently reports", str(settings.reports_dir.resolve())),
        ("GX Data Docs", str(docs[0]) if docs else "none"),
    ]:  # fmt: skip
        console.print(f"  {name:<26} {url}")
