"""Operator processes `up` starts: the pipeline's Prometheus exporter and a local webhook
receiver (a stand-in for a chat channel)."""

from __future__ import annotations

import time
from typing import Annotated

import typer

from bioprocessml.cli.app import app, console
from bioprocessml.settings import Settings


@app.command()
def exporter() -> None:
    """Serve the pipeline's metrics (batches, drift alarms, retrainings, rollouts, champion error
    and coverage) for Prometheus on `observability.exporter_port`, until stopped."""
    from bioprocessml.stack.exporter import serve_exporter

    settings = Settings()
    serve_exporter(settings)
    console.print(
        f"pipeline metrics on http://127.0.0.1:{settings.observability.exporter_port}/metrics"
    )
    while True:
        time.sleep(3600)


@app.command("webhook-receiver")
def webhook_receiver(
    port: Annotated[int, typer.Option(help="Port to listen on (127.0.0.1).")] = 9109,
) -> None:
    """Receive notification webhooks and append them to <state_dir>/notifications.jsonl."""
    from bioprocessml.stack.notify import WebhookReceiver

    settings = Settings().prepare()
    receiver = WebhookReceiver(port, settings.state_dir / "notifications.jsonl")
    console.print(f"receiving webhooks on {receiver.url}")
    receiver.server.serve_forever()
