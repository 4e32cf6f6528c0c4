from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from bioprocessml.settings import TELEMETRY_OFF, Settings, disable_telemetry


def test_env_prefix_and_nested_thresholds(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("BIOPROCESSML_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("BIOPROCESSML_SERVING__PORT", "3999")
    monkeypatch.setenv("BIOPROCESSML_THRESHOLDS__DRIFT_SHARE", "0.5")
    settings = Settings()
    assert settings.serving.port == 3999
    assert settings.serving.url == "http://127.0.0.1:3999"
    assert settings.thresholds.drift_share == 0.5
    assert settings.tracking_uri == f"sqlite:///{tmp_path / 'state' / 'mlflow.db'}"


def test_explicit_tracking_uri_wins(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BIOPROCESSML_MLFLOW_TRACKING_URI", "http://127.0.0.1:5000")
    assert Settings().tracking_uri == "http://127.0.0.1:5000"


def test_invalid_setting_is_rejected(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BIOPROCESSML_SERVING__PORT", "70000")
    with pytest.raises(ValueError, match="port"):
        Settings()


def test_import_has_no_side_effects(tmp_path: Path) -> None:
    """Importing the package and reading settings creates no folder and sets no variable."""
    env = {k: v for k, v in os.environ.items() if k not in TELEMETRY_OFF}
    code = (
        "import os, bioprocessml.settings as s, bioprocessml.cli; s.Settings();"
        "print(sorted(k for k in s.TELEMETRY_OFF if k in os.environ))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    assert out.stdout.strip() == "[]"
    assert list(tmp_path.iterdir()) == []


def test_disable_telemetry_respects_user_choice(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in TELEMETRY_OFF:
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("DO_NOT_TRACK", "false")
    disable_telemetry()
    assert os.environ["DO_NOT_TRACK"] == "false"
    assert os.environ["BENTOML_DO_NOT_TRACK"] == "true"
    assert os.environ["MLFLOW_DISABLE_TELEMETRY"] == "true"


def test_prepare_creates_folders(tmp_path: Path) -> None:
    settings = Settings(state_dir=tmp_path / "s", data_dir=tmp_path / "d").prepare()
    assert all(
        p.is_dir() for p in (settings.incoming_dir, settings.quarantine_dir, settings.accepted_dir)
    )
