"""The real `bioprocessml` entry point, run as a user would: exit codes and one-line errors."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from bioprocessml.settings import DEFAULT_SPEC

CLI = str(Path(sys.executable).parent / "bioprocessml")


def run(*args: str, cwd: Path | None = None, **env_vars: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": "200", **env_vars}
    return subprocess.run(
        [CLI, *args], capture_output=True, text=True, cwd=cwd, env=env, timeout=120
    )


def test_simulate_writes_files_with_progress(tmp_path: Path) -> None:
    result = run(
        "simulate",
        "-n",
        "3",
        "--scenario",
        "stuck-sensor",
        "--out",
        str(tmp_path),
        "--duration-h",
        "24",
    )
    assert result.returncode == 0, result.stderr
    assert "wrote 3 batch files" in result.stdout and "3/3" in result.stdout
    assert sorted(p.name for p in tmp_path.iterdir()) == ["SS001.csv", "SS002.csv", "SS003.csv"]
    inspect = run("inspect", *[str(p) for p in sorted(tmp_path.iterdir())])
    assert inspect.returncode == 0 and "SS003" in inspect.stdout


def test_every_command_has_help() -> None:
    for command in (["--help"], ["simulate", "--help"], ["inspect", "--help"], ["spec", "check", "--help"],
                    ["spec", "draft", "--help"], ["config", "--help"], ["demo", "--help"],
                    ["scenarios", "--help"]):  # fmt: skip
        result = run(*command)
        assert result.returncode == 0 and "Usage" in result.stdout


def test_spec_check_ok() -> None:
    result = run("spec", "check", str(DEFAULT_SPEC))
    assert result.returncode == 0 and "dissolved_oxygen" in result.stdout and "ok" in result.stdout


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["spec", "check", "missing.yaml"], "missing.yaml: dataset spec not found"),
        (["simulate", "--out", "x", "--scenario", "meteor"], "unknown scenario 'meteor'"),
        (["inspect", "nothing.csv"], "nothing.csv: file not found"),
        (["spec", "draft", "nothing.csv"], "nothing.csv: file not found"),
        (["spec", "draft", "b.csv", "--out", "bad.yaml"], "bad.yaml exists: choose another"),
        (["spec", "draft", "b.csv", "--target", "titr"], "did you mean 'titer'?"),
        (
            ["simulate", "--out", "x", "--spec", "bad.yaml"],
            "bad.yaml: invalid dataset spec: online[0] (temperature).unit",
        ),
        (["spec", "check", "reversed.yaml"], "range must be [low, high] with low < high"),
    ],
)
def test_user_mistakes_are_one_line_errors(tmp_path: Path, args: list[str], words: str) -> None:
    (tmp_path / "bad.yaml").write_text(
        DEFAULT_SPEC.read_text().replace("unit: degC", "unit: Celsuis")
    )
    (tmp_path / "reversed.yaml").write_text(  # brackets in a message are not Rich markup
        re.sub(r"range: \[(\S+), (\S+)\]", r"range: [\2, \1]", DEFAULT_SPEC.read_text(), count=1)
    )
    (tmp_path / "b.csv").write_text("time_h,titer\n0,\n1,2\n2,\n3,\n")
    result = run(*args, cwd=tmp_path)
    assert result.returncode == 1
    assert words in result.stderr, result.stderr
    assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_wrong_option_is_a_usage_error() -> None:
    result = run("simulate", "--out", "x", "--batches", "0")
    assert result.returncode == 2 and "Traceback" not in result.stderr


def test_runner_and_watcher_wait_for_a_slow_prefect_server(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A runner restarted while the server is busy must wait, not exit (CI: a 5 s /health
    timeout under a burst killed the restarted runner and every later run waited forever)."""
    import threading
    import time
    from http.server import BaseHTTPRequestHandler, HTTPServer

    from bioprocessml.cli.app import prefect_ready
    from bioprocessml.errors import BioprocessMLError
    from bioprocessml.settings import Settings
    from bioprocessml.stack.servers import free_port

    class Healthy(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    monkeypatch.setenv("PREFECT_API_URL", "restored after the test")
    port = free_port()
    settings = Settings(prefect_api_url=f"http://127.0.0.1:{port}/api", state_dir=tmp_path)
    with pytest.raises(BioprocessMLError, match="no Prefect server"):
        prefect_ready(settings)  # one-shot commands fail at once
    servers: list[HTTPServer] = []

    def start_late() -> None:
        servers.append(HTTPServer(("127.0.0.1", port), Healthy))
        servers[0].serve_forever()

    late = threading.Thread(target=lambda: (time.sleep(3.0), start_late()), daemon=True)
    late.start()
    try:
        prefect_ready(settings, wait=60)  # nothing listens for 3 s, then it answers: found
    finally:
        for server in servers:
            server.shutdown()
            server.server_close()
