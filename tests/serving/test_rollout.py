"""Rollout decisions on simulated batches, through the service and the prediction log: a better
challenger is promoted, an equal one is never promoted, a worse one is rolled back."""

from __future__ import annotations

from typing import Any

import pandas as pd
import pytest
from starlette.testclient import TestClient

from bioprocessml.serving import rollout
from bioprocessml.serving.db import engine_for
from bioprocessml.serving.request import request_rows
from bioprocessml.serving.rollout_store import all_rollouts, evidence_of, transitions
from bioprocessml.settings import Settings
from bioprocessml.spec import DatasetSpec
from models.base import Task
from models.biased import BiasedModel
from models.registry import CHALLENGER, CHAMPION, PREVIOUS, alias_version, set_alias
from tests.serving.conftest import (
    AUTH,
    register_champions,
    register_model,
    wait_for_rows,
)

CUTS_H = (12.0, 24.0, 36.0, 47.0)


@pytest.fixture
def serving_settings(serving_settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """A canary share of 0.3: of the live batches N101…N112, N104 and N108 are canary-routed
    (their stable hash is below 0.3), so users of N108 get the challenger's answers in canary."""
    monkeypatch.setenv("BIOPROCESSML_ROLLOUT__CANARY_SHARE", "0.3")
    return Settings()


def run_batches(
    client: TestClient, settings: Settings, batches: list[pd.DataFrame], spec: DatasetSpec
) -> list[str]:
    """Each batch: the client asks at several times while it runs, then its file is accepted and
    scored. Returns the soft-sensor rollout's stage after each batch."""
    stages = []
    for batch in batches:
        batch_id = str(batch["batch_id"].iloc[0])
        for cut in CUTS_H:
            response = client.post(
                "/predict", json={"batch_id": batch_id, "rows": request_rows(batch, spec, cut)}
            )
            assert response.status_code == 200, response.text
        # Both tasks' answers and the soft-sensor shadow, per request, before the batch ends.
        wait_for_rows(settings, 3 * len(CUTS_H) * (len(stages) + 1))
        batch.to_csv(settings.accepted_dir / f"{batch_id}.csv", index=False)
        decision = rollout.score_batch(settings, batch_id).get("soft_sensor")
        stages.append(decision.stage if decision else "none")
        client.post("/admin/reload", headers=AUTH)
        if stages[-1] not in ("shadow", "canary"):
            break
    return stages


@pytest.fixture
def started(
    request: pytest.FixtureRequest, serving_settings: Settings, pls: dict[Task, Any],
    training_batches: list[pd.DataFrame],
) -> str:  # fmt: skip
    """Champions registered and a soft-sensor challenger in shadow: `param` = (champion offset,
    challenger offset) in g/L added to the same PLS model's answers."""
    champion_offset, challenger_offset = request.param
    example = training_batches[0].head(12)
    champions = {t: BiasedModel(m, champion_offset) for t, m in pls.items()}
    register_champions(serving_settings, champions, example)
    version = register_model(
        serving_settings, BiasedModel(pls["soft_sensor"], challenger_offset), example
    )
    set_alias("soft_sensor", CHALLENGER, version)
    rollout.begin(serving_settings, "soft_sensor", version, "test")
    return version


@pytest.mark.parametrize("started", [(0.4, 0.0)], indirect=True)
def test_better_challenger_is_promoted_only_after_users_got_its_canary_answers(
    started: str, client: TestClient, serving_settings: Settings,
    live_batches: list[pd.DataFrame], spec: DatasetSpec,
) -> None:  # fmt: skip
    stages = run_batches(client, serving_settings, live_batches, spec)
    # Canary from N105 on; N106 and N107 are not canary-routed: better, but nobody got the
    # challenger's answer yet, so no promotion until N108's users did.
    assert stages == ["shadow"] * 4 + ["canary"] * 3 + ["promoted"]
    assert str(alias_version("soft_sensor", CHAMPION).version) == started  # type: ignore[union-attr]
    assert str(alias_version("soft_sensor", PREVIOUS).version) == "1"  # type: ignore[union-attr]
    assert alias_version("soft_sensor", CHALLENGER) is None
    engine = engine_for(serving_settings.prediction_log_url)
    reasons = [t.reason for t in transitions(engine)]
    assert (
        reasons[-1].startswith("better: 8 batches")
        and "4 canary answers in 1 batches" in reasons[-1]
    )
    [state] = all_rollouts(engine)
    served = {e.batch_id: e.canary_answers for e in evidence_of(engine, state.id)}
    assert served["N108"] == len(CUTS_H) and served["N106"] == served["N107"] == 0
    rows = request_rows(live_batches[-1], spec, 24)
    answer = client.post("/predict", json={"batch_id": "N112", "rows": rows}).json()
    assert answer["titer_now"]["version"] == started


@pytest.mark.parametrize("started", [(0.0, 0.0)], indirect=True)
def test_equal_challenger_reaches_canary_and_is_never_promoted(
    started: str, client: TestClient, serving_settings: Settings,
    live_batches: list[pd.DataFrame], spec: DatasetSpec,
) -> None:  # fmt: skip
    stages = run_batches(client, serving_settings, live_batches[:8], spec)
    assert stages == ["shadow"] * 4 + ["canary"] * 4
    assert str(alias_version("soft_sensor", CHAMPION).version) == "1"  # type: ignore[union-attr]


@pytest.mark.parametrize("started", [(0.0, 0.4)], indirect=True)
def test_worse_challenger_is_rolled_back(
    started: str, client: TestClient, serving_settings: Settings,
    live_batches: list[pd.DataFrame], spec: DatasetSpec,
) -> None:  # fmt: skip
    stages = run_batches(client, serving_settings, live_batches, spec)
    assert stages == ["shadow"] * 4 + ["rolled_back"]
    assert str(alias_version("soft_sensor", CHAMPION).version) == "1"  # type: ignore[union-attr]
    assert alias_version("soft_sensor", CHALLENGER) is None
    status = client.get("/admin/status", headers=AUTH).json()["tasks"]["soft_sensor"]
    assert status == {"champion": "1", "challenger": None, "stage": None}
