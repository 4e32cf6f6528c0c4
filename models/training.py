"""Training one candidate and scoring it, or the registered champion, on held-out batches.

Plain functions: the retraining flow wraps them in Prefect tasks, tests call them directly.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from bioprocessml.dataset import BATCH_ID
from bioprocessml.ingest.accepted import TrainingData
from bioprocessml.settings import ASSAYS_SUFFIX, Settings
from bioprocessml.spec import DatasetSpec
from models.base import Candidate, Prediction, Samples, Task
from models.evaluate import score, split_batches
from models.explain_masking import attach_reference
from models.features import FeatureSpec, make_samples
from models.naive import NaiveModel
from models.plots import plot_parity, plot_trajectories
from models.registry import Lineage, alias_version, git_commit, load_alias


def candidates_for(task: Task, settings: Settings) -> list[str]:
    """The configured candidates that apply to a task: `+assays` ones correct a soft sensor by
    the batch's titer assays, so the harvest forecast skips them."""
    names = settings.training.candidates
    return [n for n in names if task == "soft_sensor" or not n.endswith(ASSAYS_SUFFIX)]


def build_candidate(name: str, task: Task, features: FeatureSpec, settings: Settings) -> Candidate:
    """`pls`, `gp`, `lstm`, `hybrid`; a soft sensor name with `+assays` (e.g. `gp+assays`) is
    that candidate corrected by the batch's own titer assays (`models.anchored`)."""
    seed = settings.training.seed
    if name.endswith(ASSAYS_SUFFIX):
        from models.anchored import AssayAnchoredModel

        return AssayAnchoredModel(
            build_candidate(name.removesuffix(ASSAYS_SUFFIX), task, features, settings)
        )
    if name == "pls":
        from models.pls import PLSModel

        return PLSModel(task, features)
    if name == "gp":
        from models.gp import GPModel

        return GPModel(
            task, features, seed=seed, sparse_threshold=settings.training.gp_sparse_threshold
        )
    if name == "lstm":
        from models.lstm import LSTMModel

        return LSTMModel(task, features, seed=seed)
    if name == "hybrid":
        from models.hybrid import HybridModel

        return HybridModel(task, features, seed=seed)
    raise ValueError(f"unknown candidate {name!r}; known: pls, gp, lstm, hybrid (+assays)")


@dataclass
class Split:
    """Training and held-out batches (whole batches) and the lineage of both."""

    train: list[pd.DataFrame]
    holdout: list[pd.DataFrame]
    lineage: Lineage
    features: FeatureSpec
    samples: dict[str, tuple[Samples, Samples]] = field(default_factory=dict)

    def for_task(self, task: Task) -> tuple[Samples, Samples]:
        if task not in self.samples:
            self.samples[task] = (
                make_samples(self.train, self.features, task),
                make_samples(self.holdout, self.features, task),
            )
        return self.samples[task]


def split_data(
    data: TrainingData, spec: DatasetSpec, settings: Settings,
    trained_on: frozenset[str] = frozenset(),
) -> Split:  # fmt: skip
    """Whole batches for training and holding out; `trained_on` (the champion's training
    batches) are never held out."""
    train_ids, holdout_ids = split_batches(
        data.batch_ids, settings.training.holdout_fraction, settings.training.holdout, trained_on
    )
    by_id = dict(zip(data.batch_ids, data.batches, strict=True))
    lineage = Lineage(
        data_version=data.data_version, git_commit=git_commit(), spec_sha256=spec.sha256,
        train_batches=train_ids, holdout_batches=holdout_ids,
    )  # fmt: skip
    return Split(
        [by_id[i] for i in train_ids],
        [by_id[i] for i in holdout_ids],
        lineage,
        FeatureSpec.from_spec(spec),
    )


@dataclass
class CandidateRun:
    candidate: Candidate
    metrics: dict[str, float]
    plots: list[Path]


def evaluate(prediction: Prediction, task: Task, split: Split) -> dict[str, float]:
    """Held-out metrics, with the naive forecast of the same training batches beside them."""
    train, holdout = split.for_task(task)
    naive = NaiveModel(task).fit(train).predict(holdout.histories)
    return score(prediction, holdout, task, naive)


def train_candidate(
    name: str, task: Task, split: Split, settings: Settings, plot_dir: Path
) -> CandidateRun:
    train, holdout = split.for_task(task)
    candidate = build_candidate(name, task, split.features, settings).fit(train)
    attach_reference(candidate, split.train, split.features)  # issue 18: explanations
    prediction = candidate.predict(holdout.histories)
    metrics = evaluate(prediction, task, split)
    title = (
        f"{task} · {name} · held-out RMSE {metrics['rmse']:.3f}, coverage {metrics['coverage']:.0%}"
    )
    plot_dir.mkdir(parents=True, exist_ok=True)
    plots = [
        plot_parity(prediction, holdout, title, plot_dir / f"{task}-{name}-parity.png"),
        plot_trajectories(
            prediction, holdout, task, title, plot_dir / f"{task}-{name}-trajectory.png"
        ),
    ]
    return CandidateRun(candidate, metrics, plots)


def histories_frame(histories: list[pd.DataFrame]) -> pd.DataFrame:
    """Histories as one frame for a pyfunc model, each under its own id (cuts of one batch
    must not merge)."""
    return pd.concat(
        [h.assign(**{BATCH_ID: f"{h[BATCH_ID].iloc[0]}@{i}"}) for i, h in enumerate(histories)]
    )


def score_alias(alias: str, task: Task, split: Split) -> dict[str, float] | None:
    """Score the registered model behind `alias` on this split's held-out batches."""
    if alias_version(task, alias) is None:
        return None
    _, holdout = split.for_task(task)
    output = pd.DataFrame(load_alias(task, alias).predict(histories_frame(holdout.histories)))
    prediction = Prediction(*(output[c].to_numpy(dtype=float) for c in ("mean", "lower", "upper")))
    return evaluate(prediction, task, split)


def example_input(split: Split, rows: int = 12) -> pd.DataFrame:
    return split.holdout[0].head(rows)
