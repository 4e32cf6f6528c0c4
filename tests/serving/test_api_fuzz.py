"""API fuzzing: schemathesis generates requests (valid and invalid) for every operation of the
service's OpenAPI, sent to a real `bentoml serve`; none may be answered with a 5xx, and every
4xx must say why (`error` or `detail` in JSON; a path no route matches gets BentoML's plain
"Not Found")."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pandas as pd
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis.generation.modes import GenerationMode

from bioprocessml.settings import Settings
from bioprocessml.stack.servers import down, free_port, start_service
from models.base import Task
from tests.serving.conftest import TOKEN, register_champions

pytestmark = pytest.mark.integration
EXAMPLES = 60  # per operation and generation mode (valid, invalid)
SENT: list[tuple[str, int]] = []  # (operation, status) of every generated request


@pytest.fixture(scope="module")
def served(
    tmp_path_factory: pytest.TempPathFactory, pls: dict[Task, Any],
    training_batches: list[pd.DataFrame],
) -> Iterator[Settings]:  # fmt: skip
    root = tmp_path_factory.mktemp("fuzz")
    with pytest.MonkeyPatch.context() as env:
        for key, value in {
            "STATE_DIR": str(root / "state"), "DATA_DIR": str(root / "data"),
            "SERVING__ADMIN_TOKEN": TOKEN, "SERVING__PORT": str(free_port()),
            "SERVING__POLL_SECONDS": "600",
        }.items():  # fmt: skip
            env.setenv(f"BIOPROCESSML_{key}", value)
        settings = Settings().prepare()
        register_champions(settings, pls, training_batches[0].head(12))
        start_service(settings)
        try:
            yield settings
        finally:
            down(settings)


@pytest.fixture(scope="module")
def api(served: Settings) -> Any:
    for _ in range(120):  # live already; ready once the champions are loaded
        if httpx.get(f"{served.serving.url}/readyz", timeout=5).status_code == 200:
            break
    return schemathesis.openapi.from_url(f"{served.serving.url}/docs.json")


def check(case: Any) -> None:
    response = case.call(timeout=60)
    SENT.append((f"{case.method} {case.path}", response.status_code))
    assert response.status_code < 500, (case.as_curl_command(), response.text[:500])
    if 400 <= response.status_code < 500:  # JSON with `error`/`detail`, or a plain reason
        kind = " ".join({k.lower(): v for k, v in response.headers.items()}.get("content-type", []))
        if "json" in kind:
            body = response.json()
            message = body.get("error") or body.get("detail") if isinstance(body, dict) else None
        else:  # the server's own 404 for a path no route matches ("Not Found")
            message = response.text.strip()
        assert message, (case.as_curl_command(), response.status_code, response.text[:500])


def test_no_request_gets_a_5xx_and_every_4xx_says_why(api: Any) -> None:
    """Valid and invalid requests for every operation; at least 500 in all."""
    for result in api.get_all_operations():
        operation = result.ok()
        for mode in GenerationMode:

            @settings(max_examples=EXAMPLES, deadline=None, database=None,
                      suppress_health_check=list(HealthCheck))  # fmt: skip
            @given(case=operation.as_strategy(generation_mode=mode))
            def fuzz(case: Any) -> None:
                check(case)

            try:
                fuzz()
            except Unsatisfiable:  # nothing to make invalid (an operation without input)
                assert mode == GenerationMode.NEGATIVE, operation.label
    operations = {name for name, _ in SENT}
    assert len(SENT) >= 500, f"{len(SENT)} requests over {sorted(operations)}"
    assert {"POST /predict", "POST /batches/{batch_id}/rows", "GET /batches/{batch_id}",
            "DELETE /batches/{batch_id}", "POST /admin/stage"} <= operations  # fmt: skip
