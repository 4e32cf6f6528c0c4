"""Notifications: Prefect automations that call a webhook (Slack/Teams-style JSON) on the
chain's events — a quarantined file, a drift alarm, a promotion, a rollback.

`up` installs them when `observability.webhook_url` is set: one Prefect Webhook block holding
the URL, and one automation per event whose CallWebhook action renders a JSON body with a
`text` line (what Slack and Teams incoming webhooks show), the event name, its resource and its
payload. The Prefect server sends them; nothing in the flows waits for them.
`WebhookReceiver` is a small local endpoint that keeps what it receives (the demo's and the
tests' stand-in for a chat channel).
"""

from __future__ import annotations

import json
import logging
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from bioprocessml.events import BATCH_QUARANTINED, DRIFT_DETECTED, MODEL_PROMOTED, MODEL_ROLLED_BACK
from bioprocessml.settings import Settings

log = logging.getLogger(__name__)
BLOCK = "bioprocessml-webhook"
PREFIX = "bioprocessml-notify-"
_TAIL = ', "event": "{{ event.event }}", "resource": "{{ event.resource.id }}", "payload": {{ event.payload | tojson }}}'
MESSAGES = {  # event: Jinja expression of the text line (Prefect renders it server-side)
    BATCH_QUARANTINED: '"Quarantined " ~ event.payload.file ~ ": " ~ (event.payload.reasons | join("; "))',
    DRIFT_DETECTED: '"Drift (" ~ event.payload.kind ~ ") at batch " ~ event.payload.batch_id ~ ": " ~ (event.payload.reasons | join("; "))',
    MODEL_PROMOTED: '"Promoted " ~ event.payload.model ~ " v" ~ event.payload.version ~ " (was v" ~ event.payload.champion_version ~ "): " ~ event.payload.reason',
    MODEL_ROLLED_BACK: '"Rolled back " ~ event.payload.model ~ " v" ~ event.payload.version ~ " (champion stays v" ~ event.payload.champion_version ~ "): " ~ event.payload.reason',
}


def payload_template(event: str) -> str:
    return '{"text": {{ (' + MESSAGES[event] + ") | tojson }}" + _TAIL


def install_notifications(settings: Settings, url: str | None = None) -> list[str]:
    """(Re)create the webhook block and one automation per event; returns the automation names.
    Nothing is created without a webhook URL (the old automations are removed)."""
    from prefect.automations import Automation
    from prefect.blocks.webhook import Webhook
    from prefect.events.actions import CallWebhook
    from prefect.events.schemas.automations import EventTrigger, Posture
    from prefect.settings import PREFECT_API_URL, temporary_settings

    url = url or settings.observability.webhook_url
    with temporary_settings({PREFECT_API_URL: settings.prefect_api_url}):
        remove_notifications()
        if not url:
            return []
        block = Webhook(url=url, headers={"Content-Type": "application/json"})
        block_id = block.save(BLOCK, overwrite=True)
        names = []
        for event in MESSAGES:
            name = PREFIX + event.removeprefix("bioprocess.").replace(".", "-")
            Automation(
                name=name,
                description=f"webhook on {event}",
                trigger=EventTrigger(
                    expect={event},
                    match={"prefect.resource.id": "bioprocess.*"},
                    posture=Posture.Reactive,
                    threshold=1,
                ),
                actions=[CallWebhook(block_document_id=block_id, payload=payload_template(event))],
            ).create()
            names.append(name)
    log.info("notifications to %s on %s", url, ", ".join(MESSAGES))
    return names


def remove_notifications() -> None:
    """Delete this project's automations (by name prefix) in the configured Prefect API."""
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        for automation in client.read_automations():
            if automation.name.startswith(PREFIX):
                client.delete_automation(automation.id)


class WebhookReceiver:
    """A local HTTP endpoint that records every JSON body POSTed to it (and to a file)."""

    def __init__(self, port: int, path: Path | None = None, host: str = "127.0.0.1") -> None:
        self.received: list[dict[str, Any]] = []
        self.path = path
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                receiver.keep(body)
                self.send_response(200)
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, format: str, *args: Any) -> None:
                log.debug(format, *args)

        self.server = ThreadingHTTPServer((host, port), Handler)
        self.url = f"http://{host}:{self.server.server_address[1]}/notify"

    def keep(self, body: bytes) -> None:
        try:
            message = json.loads(body)
        except ValueError:
            message = {"unparsed": body.decode(errors="replace")}
        self.received.append(message)
        if self.path is not None:
            with self.path.open("a") as out:
                out.write(json.dumps(message) + "\n")

    def start(self) -> WebhookReceiver:
        threading.Thread(target=self.server.serve_forever, name="webhook", daemon=True).start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
