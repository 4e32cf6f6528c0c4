"""LSTM over the resampled batch history, with a cross-validated deep ensemble for 95 % intervals.

Every history is resampled on a fixed grid of `step_h` hours from the batch start. Each channel
is expressed as its deviation from the training batches' mean trajectory at that grid step (the
"golden batch", as batch-wise unfolding does in MPCA/MPLS): with twenty batches the network can
then learn how deviations *now* map to the target, instead of spending its data on re-learning
the shape of a normal batch. The output is the deviation of the target from its training mean
at the same elapsed time, so a zero output is the naive forecast (the mean of past batches).

With ~20 batches the network memorises each batch by its sensor noise unless prevented: the
sensors are noised heavily while training (their signal is spread over many steps, which the
LSTM averages), the newest assays also reach the output through a linear skip connection, and
weight decay shrinks everything towards the naive forecast. Measured on the simulator: the
harvest forecast at 50 % of batch time beats the naive one in 25 of 25 splits (RMSE ≈ 0.75 ×
naive on average), at 75 % ≈ 0.63 ×, at 25 % no better than naive; the soft sensor (online
sensors only) is no better than the mean titer trajectory, which is all the sensors carry here.

Member k of the ensemble leaves out the k-th group of training batches; its predictions on those
batches are out-of-fold residuals, which calibrate the intervals over held-out batches and by
elapsed time (`models.calibration`; the ensemble spread alone covered 100 %), once shrunk from
one member's error to the ensemble's (`as_ensemble`). Each training
epoch uses at most `max_batches` batches, so fitting cost stops growing with the data there.
"""

from __future__ import annotations

import time as clock
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn

from models.base import FloatArray, Prediction, Samples, Task
from models.calibration import IntervalCalibration, smooth_rms, time_grid
from models.features import FeatureSpec
from models.threads import torch_threads
from models.trajectories import (
    _Batch,
    _encode,
    _fit_scaling,
    _longest,
    _mean_curve,
    _raw,
    _Scaling,
    _shared_source,
    _tensors,
)


class _Net(nn.Module):
    """LSTM over the completed steps of the whole sequence; its state and a skip connection
    from the current step's non-sensor channels (elapsed time and, for the harvest forecast,
    the newest assays) feed one linear output: the target's standardized deviation from the
    naive forecast. The sensors reach the output only through the LSTM."""

    def __init__(self, n_in: int, n_online: int, hidden: int) -> None:
        super().__init__()
        self.n_online = n_online
        self.lstm = nn.LSTM(n_in, hidden, batch_first=True)
        self.head = nn.Linear(hidden + n_in - n_online, 1)

    def forward(self, data: _Batch) -> torch.Tensor:
        out, _ = self.lstm(data.base)  # causal: later steps and padding cannot reach a state
        before = torch.cat([torch.zeros_like(out[:, :1]), out[:, :-1]], dim=1)
        state = before[data.source, data.lengths - 1]
        return self.head(torch.cat([state, data.last[:, self.n_online :]], 1)).squeeze(1)


def as_ensemble(
    residual: FloatArray, members: FloatArray, counts: FloatArray, elapsed: FloatArray
) -> FloatArray:
    """Out-of-fold residuals of `counts` members each, shrunk to what the mean of all members
    would have made: the ensemble's error variance is one member's minus (1/c − 1/K) σ²(t),
    σ²(t) the variance between members by elapsed time. σ² is measured as the members'
    spread on the training rows (`members`: one column per member), where it matched their
    spread on held-out batches (0.54/0.60, 0.82/0.70, 0.77/0.80, 0.55/0.50 g/L in four folds of
    the IndPenSim dev set). Without this, intervals were calibrated on one member's errors,
    ~1.1× (up to 1.3×) the ensemble's, and covered every point of the median held-out batch.
    Each residual keeps at least half its size."""
    ok = np.isfinite(residual)
    if members.shape[1] < 2 or ok.sum() < 2:
        return residual
    grid, bandwidth = time_grid(elapsed)
    spread = smooth_rms(elapsed, members.std(axis=1, ddof=1), grid, bandwidth)
    single = smooth_rms(elapsed[ok], residual[ok], grid, bandwidth)
    excess = (1.0 / np.maximum(counts, 1) - 1.0 / members.shape[1]) * np.interp(
        elapsed, grid, spread**2
    )
    total = np.maximum(np.interp(elapsed, grid, single**2), 1e-300)
    return residual * np.sqrt(np.clip(1.0 - excess / total, 0.25, 1.0))


class LSTMModel:
    """Harvest forecast or soft sensor from the whole history so far (see module docstring).

    `l2` (head) and `l2_lstm` are Adam's coupled weight decay; `input_noise` is the standard
    deviation of Gaussian noise added to the sensor channels (z-scores) while training: with
    twenty batches the network otherwise memorises each batch by its sensor noise."""

    name = "lstm"

    def __init__(
        self, task: Task, features: FeatureSpec, seed: int = 0, step_h: float = 1.0,
        hidden: int = 32, epochs: int = 300, ensemble: int = 5, lr: float = 0.01,
        l2: float = 0.1, l2_lstm: float = 0.03, input_noise: float = 3.0, max_batches: int = 32,
    ) -> None:  # fmt: skip
        self.task = task
        self.features = features
        self.seed = seed
        self.step_h = step_h
        self.hidden = hidden
        self.epochs = epochs
        self.ensemble = ensemble
        self.lr = lr
        self.l2 = l2
        self.l2_lstm = l2_lstm
        self.input_noise = input_noise
        self.max_batches = max_batches
        self.params_: dict[str, Any] = {}
        self.oof_ = np.zeros(0)
        self.scaling_: _Scaling | None = None
        self.nets_: list[_Net] = []

    @property
    def n_online(self) -> int:
        return len(self.features.online) + len(self.features.cumulative)

    def fit(self, samples: Samples) -> LSTMModel:
        start = clock.perf_counter()
        raws = [_raw(h, self.features, self.task, self.step_h) for h in samples.histories]
        whole = _longest(samples.groups, [len(r.online) for r in raws])
        sc = _fit_scaling([raws[i] for i in whole.values()], self.step_h)
        sequences = [_encode(r, sc) for r in raws]
        elapsed = np.array([r.elapsed_h for r in raws])
        data = _tensors(sequences, _shared_source(sequences, samples.groups), elapsed)
        sc.base = _mean_curve(elapsed, samples.targets, sc.grid, 0.05 * sc.time_scale)
        deviation = samples.targets - sc.curve(sc.base, elapsed)
        sc.y_scale = float(deviation.std()) or 1.0
        y = torch.tensor(deviation / sc.y_scale, dtype=torch.float32)
        with torch_threads(1):
            oof, counts = self._fit_members(data, y, samples.groups)
            members = self._forward(self.nets_, data)
        residual = sc.y_scale * as_ensemble(deviation / sc.y_scale - oof, members, counts, elapsed)
        self.oof_ = samples.targets - residual
        self.calibration_ = IntervalCalibration.fit(residual, elapsed, samples.groups)
        ok = ~np.isnan(oof)
        self.scaling_ = sc
        self.params_ = {
            "step_h": self.step_h, "hidden": self.hidden, "epochs": self.epochs,
            "ensemble": self.ensemble, "lr": self.lr, "l2": self.l2, "l2_lstm": self.l2_lstm,
            "input_noise": self.input_noise, "inputs": int(data.base.shape[2]),
            "oof_rmse": float(np.sqrt(np.mean(residual[ok] ** 2))),
            "calibration_factor": self.calibration_.factor,
            "train_seconds": round(clock.perf_counter() - start, 2),
        }  # fmt: skip
        return self

    def _folds(self, groups: np.ndarray) -> tuple[np.ndarray, int]:
        """Fold of each sample: whole batches, shuffled by the seed."""
        names = np.unique(groups)
        n_folds = min(self.ensemble, len(names))
        order = np.random.default_rng(self.seed).permutation(len(names))
        fold_of = dict(zip(names[order], np.arange(len(names)) % n_folds, strict=True))
        return np.array([fold_of[g] for g in groups]), n_folds

    def _fit_members(
        self, data: _Batch, y: torch.Tensor, groups: np.ndarray
    ) -> tuple[FloatArray, FloatArray]:
        """Train the ensemble; member k leaves out fold k. Returns out-of-fold predictions
        (in-sample ones, optimistic, when there are too few batches to leave any out) and how
        many members made each."""
        folds, n_folds = self._folds(groups)
        total, count = np.zeros(len(y)), np.zeros(len(y))
        self.nets_ = []
        for k in range(self.ensemble):
            held = folds == k % n_folds if n_folds > 1 else np.zeros(len(y), bool)
            net = self._train_member(data.take(np.flatnonzero(~held)), y[~held], k)
            if held.any():
                total[held] += self._forward([net], data.take(np.flatnonzero(held)))[:, 0]
                count[held] += 1
            self.nets_.append(net)
        if n_folds < 2:
            return self._forward(self.nets_, data).mean(1), np.full(len(y), float(self.ensemble))
        return np.where(count > 0, total / np.maximum(count, 1), np.nan), count

    def _train_member(self, data: _Batch, y: torch.Tensor, member: int) -> _Net:
        """Full-batch Adam; a fixed seed per member, without touching the global RNG."""
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.seed * 1000 + member)
            net = _Net(data.base.shape[2], self.n_online, self.hidden)
            opt = torch.optim.Adam(
                [
                    {"params": net.lstm.parameters(), "weight_decay": self.l2_lstm},
                    {"params": net.head.parameters(), "weight_decay": self.l2},
                ],
                lr=self.lr,
            )
            noise = torch.zeros(data.base.shape[2])
            noise[: self.n_online] = self.input_noise
            source = data.source.numpy()
            pick = np.random.default_rng(self.seed * 1000 + member)
            for _ in range(self.epochs):
                rows = _subset(source, self.max_batches, pick)
                part = data if rows is None else data.take(rows)
                target = y if rows is None else y[torch.from_numpy(rows)]
                loss = nn.functional.mse_loss(net(part.noisy(noise)), target)
                opt.zero_grad()
                loss.backward()
                nn.utils.clip_grad_norm_(net.parameters(), 1.0)
                opt.step()
        return net.eval()

    @staticmethod
    def _forward(nets: list[_Net], data: _Batch) -> FloatArray:
        """Standardized predictions, one column per member."""
        with torch.no_grad():
            return np.column_stack([net(data).numpy() for net in nets]).astype(float)

    def predict(self, histories: list[pd.DataFrame]) -> Prediction:
        if self.scaling_ is None:
            raise RuntimeError("LSTMModel.predict called before fit")
        if not histories:
            return Prediction.gaussian(np.zeros(0), np.zeros(0))
        sc = self.scaling_
        raws = [_raw(h, self.features, self.task, self.step_h) for h in histories]
        sequences = [_encode(r, sc) for r in raws]
        elapsed = np.array([r.elapsed_h for r in raws])
        with torch_threads(1):
            z = self._forward(self.nets_, _tensors(sequences, np.arange(len(raws)), elapsed))
        mean = sc.curve(sc.base, elapsed) + sc.y_scale * z.mean(1)
        return self.calibration_.interval(mean, elapsed)

    def __getstate__(self) -> dict[str, Any]:
        """Plain arrays instead of modules: the weights and the training statistics."""
        state = {k: v for k, v in self.__dict__.items() if k != "nets_"}
        state["net_weights_"] = [
            {k: v.detach().numpy().copy() for k, v in net.state_dict().items()}
            for net in self.nets_
        ]
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        weights = state.pop("net_weights_")
        self.__dict__.update(state)
        self.nets_ = []
        for w in weights:
            net = _Net(w["lstm.weight_ih_l0"].shape[1], self.n_online, self.hidden)
            net.load_state_dict({k: torch.from_numpy(v) for k, v in w.items()})
            self.nets_.append(net.eval())


def _subset(source: np.ndarray, limit: int, rng: np.random.Generator) -> np.ndarray | None:
    """Samples of at most `limit` randomly chosen batches (sequences), or None for all."""
    batches = np.unique(source)
    if len(batches) <= limit:
        return None
    return np.flatnonzero(np.isin(source, rng.choice(batches, limit, replace=False)))
