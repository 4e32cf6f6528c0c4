"""Screenshots of the operator's pages of a running stack (after `make demo`), for the README:
`PYTHONPATH=. .venv/bin/python docs/screenshots.py` → docs/plant-page.png, docs/evidently-dashboard.png,
docs/prometheus-alerts.png. Uses the same headless Chromium as the tests (tests/browser.py)."""

from __future__ import annotations

import sys
import time
from pathlib import Path

from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from bioprocessml.settings import Settings
from bioprocessml.stack.campaign import demo_settings
from bioprocessml.stack.prometheus import alerts_page
from monitoring.dashboard import open_project
from tests.browser import chromium

DOCS = Path(__file__).parent


def shoot(url: str, path: Path, ready: str, width: int, height: int, settle: float = 3.0) -> None:
    """Load `url`, wait until the page contains the text `ready`, settle, save the screenshot."""
    with chromium(width, height) as driver:
        driver.get(url)
        WebDriverWait(driver, 90).until(lambda d: ready in d.find_element(By.TAG_NAME, "body").text)
        time.sleep(settle)  # charts animate in
        driver.save_screenshot(str(path))
    print(f"{path} ({path.stat().st_size // 1024} KiB) from {url}")


def main() -> None:
    settings = demo_settings(Settings(), quick="--quick" in sys.argv)
    obs = settings.observability
    shoot(f"{settings.serving.url}/ui/", DOCS / "plant-page.png", "Why this answer", 1400, 1650)
    _, project = open_project(settings)
    shoot(
        f"http://127.0.0.1:{obs.evidently_port}/projects/{project.id}",
        DOCS / "evidently-dashboard.png",
        "Interval coverage",
        1400,
        2300,
        settle=6.0,
    )
    shoot(
        alerts_page(obs.prometheus_port),
        DOCS / "prometheus-alerts.png",
        "RolloutRolledBack",
        1400,
        1300,
    )


if __name__ == "__main__":
    main()
