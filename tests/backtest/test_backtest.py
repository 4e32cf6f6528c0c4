"""The backtest replays a short simulated history through the chain's functions, offline, and
writes a scorecard of every decision: verdicts, drift flags, retrainings, champions, errors."""

from __future__ import annotations

import json
from pathlib import Path

import mlflow
import pytest

from bioprocessml.backtest.run import find_files, run_backtest
from bioprocessml.errors import BioprocessMLError
from bioprocessml.settings import Settings, Thresholds, Training
from bioprocessml.simulation.generate import write_simulated
from bioprocessml.simulation.simulator import SimConfig
from bioprocessml.spec import DatasetSpec

SHORT = SimConfig(duration_h=72.0, online_interval_min=10.0)


@pytest.fixture(scope="module")
def history(tmp_path_factory: pytest.TempPathFactory, spec: DatasetSpec) -> tuple[Path, Path]:
    """10 normal batches, two broken files (the second's first times unreadable: the replayed
    client must not trip over them), 3 batches of a new raw-material lot; labels CSV."""
    root = tmp_path_factory.mktemp("history")
    normal = write_simulated(root / "a-normal", spec, 10, "normal", seed=41, cfg=SHORT)
    broken = write_simulated(root / "b-broken", spec, 1, "corrupt", seed=42, start=900, cfg=SHORT)
    [late] = write_simulated(root / "b-broken", spec, 1, "normal", seed=44, start=901, cfg=SHORT)
    lines = late.read_text().splitlines()
    time_at = lines[0].split(",").index(spec.time.column)
    for i in range(1, 6):
        cells = lines[i].split(",")
        cells[time_at] = "n/a"
        lines[i] = ",".join(cells)
    late.write_text("\n".join(lines) + "\n")
    changed = write_simulated(
        root / "c-lot-b", spec, 3, "raw-material", seed=43, start=11, cfg=SHORT
    )
    labels = root / "labels.csv"
    rows = [f"{p.stem},normal" for p in normal] + [f"{p.stem},lot B" for p in changed]
    labels.write_text("batch_id,label\n" + "\n".join(rows) + "\n")
    assert broken
    return root, labels


def test_files_are_found_in_arrival_order_with_labels(history: tuple[Path, Path]) -> None:
    root, labels = history
    from bioprocessml.backtest.run import read_labels

    files = find_files(root, read_labels(labels), "name", skip=labels)
    assert [p.parent.name for p, _ in files] == ["a-normal"] * 10 + ["b-broken"] * 2 + [
        "c-lot-b"
    ] * 3
    assert [label for _, label in files][-5:] == ["", "", "lot B", "lot B", "lot B"]
    assert files[9][0].stem == "N010"  # natural order: N002 before N010


def test_labels_name_batches_by_their_id_when_files_are_named_otherwise(
    history: tuple[Path, Path], tmp_path: Path, spec: DatasetSpec
) -> None:
    """A plant's export names files its own way (EXPORT_<id>.csv); the labels CSV's batch_id
    is the batch id in the file, and its row order is the arrival order."""
    from bioprocessml.backtest.run import read_labels

    root, _ = history
    normal = sorted((root / "a-normal").glob("*.csv"))[:3]
    export = tmp_path / "export"
    export.mkdir()
    for path in normal:
        (export / f"EXPORT_{path.stem}.csv").write_bytes(path.read_bytes())
    ids = [path.stem for path in normal]  # the simulator names a file by its batch id
    labels = tmp_path / "labels.csv"
    labels.write_text(f"batch_id,label\n{ids[2]},lot B\n{ids[0]},normal\n{ids[1]},normal\n")
    files = find_files(export, read_labels(labels), "labels", spec=spec)
    assert [(p.name, label) for p, label in files] == [
        (f"EXPORT_{ids[2]}.csv", "lot B"), (f"EXPORT_{ids[0]}.csv", "normal"),
        (f"EXPORT_{ids[1]}.csv", "normal"),
    ]  # fmt: skip
    labels.write_text("batch_id,label\nX1,normal\n")
    with pytest.raises(BioprocessMLError, match="none of the 1 labels names one of the 3 files"):
        find_files(export, read_labels(labels), "labels", spec=spec)


def test_backtest_scores_every_decision(history: tuple[Path, Path], tmp_path: Path) -> None:
    root, labels = history
    base = Settings(
        state_dir=tmp_path / "user",
        thresholds=Thresholds(bootstrap_batches=8),
        training=Training(candidates=["pls"]),
    )
    card = run_backtest(base, root, tmp_path / "out", labels, "name")
    batches, totals = card.batches, card.totals
    assert [b.verdict for b in batches].count("quarantined") == 2 and totals.accepted == 13
    assert batches[10].verdict == "quarantined" and batches[10].reason
    assert batches[11].verdict == "quarantined" and "time values" in batches[11].reason
    # the first model trains at the 8th batch; from the 9th on, the client got answers
    assert "bootstrap" in batches[7].decision and batches[7].retrain
    served = [b for b in batches[8:] if b.verdict == "accepted"]
    assert all(b.champions["soft_sensor"] for b in served) or "rejected" in batches[7].retrain
    assert all(b.now_rmse is not None and b.now_naive_rmse is not None for b in served
               if b.champions["soft_sensor"])  # fmt: skip
    assert totals.harvest_lowest is None or totals.harvest_lowest >= 0.0
    assert set(totals.false_alarms) <= {b.batch_id for b in batches if b.label == "normal"}
    [change] = totals.changes
    assert change.label == "lot B" and change.first_batch == "RM011"
    # outputs: Markdown, JSON (the same card), plot, and an MLflow run in the user's store
    out = tmp_path / "out"
    assert json.loads((out / "scorecard.json").read_text())["totals"] == totals.model_dump(
        mode="json"
    )
    text = (out / "scorecard.md").read_text()
    assert "false data-drift alarms" in text and "| 11 | " in text
    assert (out / "scorecard.png").stat().st_size > 10_000
    mlflow.set_tracking_uri(base.tracking_uri)
    runs = mlflow.search_runs(experiment_names=["bioprocessml-backtest"], output_format="list")
    assert runs and runs[0].data.metrics["accepted"] == 13


def test_a_quarantined_file_judges_no_model_but_what_was_served_counts() -> None:
    """The client was answered about a batch whose file then failed the gate (titer in mg/L:
    assays 1000× off): those assays score nothing, the lower bound it was served still counts."""
    import pandas as pd

    from bioprocessml.backtest.replay import Answer, Step
    from bioprocessml.backtest.scorecard import score_step
    from bioprocessml.serving.request import PredictResponse, TaskAnswer

    told = TaskAnswer(mean=5.0, lower=4.0, upper=6.0, unit="g/L", model="m", version="1",
                      route="champion")  # fmt: skip
    response = PredictResponse(request_id="r", batch_id="C901", time_h=10.0, titer_now=told,
                               titer_at_harvest=told)  # fmt: skip
    batch = pd.DataFrame({"time": [0.0, 10.0, 20.0], "titer": [0.0, 5000.0, 9000.0]})
    for verdict, scored in (("accepted", True), ("quarantined", False)):
        step = Step(order=1, file="C901.csv", label="", batch_id="C901", verdict=verdict,
                    answers=[Answer(fraction=0.5, response=response)])  # fmt: skip
        score = score_step(step, batch, "titer")
        assert bool(score.harvest_errors) is scored and score.harvest_lowest == 4.0


def test_the_replayed_client_sends_only_rows_with_a_readable_time() -> None:
    """A file whose first times are unreadable (the gate quarantines it later) is asked about
    from its first readable time on; one with none is refused at every cut, nothing raised."""
    import types

    import pandas as pd

    from bioprocessml.backtest.replay import CUT_FRACTIONS, Replay
    from bioprocessml.serving.request import PredictResponse

    asked: list[pd.DataFrame] = []

    def answer(deployment: object, frame: pd.DataFrame, request_id: str) -> tuple[object, list]:
        asked.append(frame)
        response = PredictResponse(request_id=request_id, batch_id="B1", time_h=0.0, titer_now=None,
                                   titer_at_harvest=None)  # fmt: skip
        return response, []

    client = types.SimpleNamespace(answerer=types.SimpleNamespace(answer=answer), deployment=None)
    batch = pd.DataFrame({"batch_id": "B1", "time": [None, None, 0.0, 10.0, 20.0, 30.0]})
    answers = Replay.ask(client, batch)  # type: ignore[arg-type]
    assert [a.fraction for a in answers] == list(CUT_FRACTIONS) and len(asked) == 4
    assert all(f["time"].notna().all() and len(f) for f in asked)
    assert [f["time"].max() for f in asked] == [0.0, 10.0, 20.0, 30.0]
    none = Replay.ask(client, batch.assign(time=None))  # type: ignore[arg-type]
    assert len(asked) == 4 and all(a.refused and a.response is None for a in none)


def test_a_change_is_credited_only_with_alarms_on_its_own_batches() -> None:
    """One broken-but-accepted batch labelled `broken`, then a pH probe offset flagged at its
    second batch: the pH change is found at its batch 2, the broken batch is not credited
    with the pH change's drift."""
    from bioprocessml.backtest.scorecard import BatchScore, changes_detected

    def score(order: int, label: str, drift: bool = False) -> BatchScore:
        return BatchScore(order=order, file=f"f{order}", batch_id=f"B{order}", label=label,
                          verdict="accepted", data_drift=drift, columns=["ph"] * drift)  # fmt: skip

    scores = [score(1, "normal"), score(2, "broken"), score(3, "ph"), score(4, "ph", drift=True)]
    broken, ph = changes_detected(scores)
    assert (broken.label, broken.delay, broken.data_drift_delay) == ("broken", None, None)
    assert (ph.flagged_at, ph.delay, ph.data_drift_delay, ph.columns) == ("B4", 2, 2, ["ph"])


def test_a_rejected_retraining_says_why_in_the_scorecard() -> None:
    from bioprocessml.backtest.scorecard import retrain_text
    from models.retraining import GateOutcome

    why = "RMSE 0.7075 does not beat champion's 0.3357 by the margin 5% (needs < 0.3189)"
    rejected = GateOutcome(task="soft_sensor", decision="rejected", candidate="gp", reason=why)
    assert retrain_text(rejected) == f"soft_sensor: rejected (gp): {why}"
    crowned = GateOutcome(task="harvest", decision="champion", candidate="gp", reason="no champion",
                          version="1")  # fmt: skip
    assert retrain_text(crowned) == "harvest: champion v1 (gp)"
