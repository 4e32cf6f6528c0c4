"""Gaussian-process candidate: an exact GP on the tabular features (a sparse variational GP above
`sparse_threshold` rows), with its 95 % intervals calibrated over held-out *batches*.

Why calibrate by batch: rows of one batch are strongly correlated, so a row-level GP nearly
interpolates them and its intervals covered only ~70 % of held-out points. Grouped
cross-validation gives out-of-fold residuals on batches the GP has not seen; they set the
interval's width by elapsed time and its batch-conformal factor (`models.calibration`). The GP's
own predictive std widens the interval where it extrapolates (ratio to its noise std, above 1).

Why exact Cholesky: gpytorch's default CG/Lanczos solver at n≈2000 fitted the noise wrongly and
gave variances 5–30× off; `max_cholesky_size` keeps every solve exact.
"""

from __future__ import annotations

import logging
import time
import warnings
from typing import Any

import gpytorch
import numpy as np
import numpy.typing as npt
import pandas as pd
import torch
from sklearn.cluster import KMeans
from sklearn.model_selection import GroupKFold

from models.base import FloatArray, Prediction, Samples, Task
from models.calibration import IntervalCalibration
from models.features import FeatureSpec, feature_matrix, fill_missing, tabular_features
from models.gp_core import (
    INDUCING,
    ROW_STATE,
    _ExactGP,
    _likelihood,
    _SparseGP,
    _torch_session,
    _train_exact,
    _train_variational,
)
from models.online import FeatureView

log = logging.getLogger(__name__)

CV_FOLDS = 5  # calibration folds for many batches
LEAVE_ONE_OUT_UP_TO = 20  # batches up to which every batch is its own calibration fold
PREDICT_CHUNK = 4096
VOLUME = "volume"  # the broth-volume sensor's canonical name, if the spec has one
STATE_SUFFIXES = ("_cum", "_int", "_last", "_rate", "_age_h")
TOTAL_SUFFIXES = ("_cum", "_int")
_States = dict[str, dict[str, torch.Tensor]]


def state_features(
    matrix: FloatArray, names: list[str], volume: bool
) -> tuple[FloatArray, list[str]]:
    """The GP's inputs: the features that carry a batch's accumulated state, plus totals per litre.

    Titer accumulates, so it follows elapsed time, the totals (volume fed, integrated off-gas ≈
    O2 used and CO2 made), the offline assays so far and, through dilution, the broth volume;
    totals divided by the volume are amounts per litre, like the titer itself. Instantaneous
    readings of controlled variables (temperature, pH, DO at their set-points) are dropped:
    they are mostly noise, and with ~10 rows per batch ARD length scales over them overfit
    (held-out RMSE ~8 % worse in trials on simulated batches).
    """
    keep = [i for i, n in enumerate(names) if n == "elapsed_h" or n.endswith(STATE_SUFFIXES)]
    columns, out = [matrix[:, keep]], [names[i] for i in keep]
    if volume and f"{VOLUME}_now" in names:
        v = names.index(f"{VOLUME}_now")
        totals = [i for i, n in enumerate(names) if n.endswith(TOTAL_SUFFIXES)]
        litres = np.where(matrix[:, v] > 0, matrix[:, v], np.nan)[:, None]
        per_litre = np.nan_to_num(matrix[:, totals] / litres)
        columns += [matrix[:, [v]], per_litre]
        out += [names[v]] + [f"{names[i]}_per_l" for i in totals]
    return np.hstack(columns), out


class GPModel:
    """Candidate `gp`. `fit`/`predict` take batch histories; `fit_matrix`/`predict_matrix` take
    a ready feature matrix (used on analytic data in tests). `iterations` counts Adam steps of
    the exact GP, epochs of minibatches of the variational one. After fitting: `calibration_`
    (None if `calibrate` is off: raw Gaussian intervals), `oof_` (out-of-fold means of the
    training rows), `params_` (flat, loggable, incl. `kind`)."""

    name = "gp"

    def __init__(
        self,
        task: Task,
        features: FeatureSpec,
        seed: int = 0,
        iterations: int = 150,
        sparse_threshold: int = 2000,
        inducing_points: int = 256,
        calibrate: bool = True,
    ) -> None:
        self.task, self.features, self.seed = task, features, seed
        self.iterations, self.sparse_threshold = iterations, sparse_threshold
        self.inducing_points, self.calibrate = inducing_points, calibrate
        self.calibration_: IntervalCalibration | None = None
        self.oof_ = np.zeros(0)
        self.params_: dict[str, float | int | str] = {}
        self.kind_, self.n_train_ = "exact", 0
        self.input_names_: list[str] = []
        self._x_mean = self._x_std = np.zeros(0)
        self._y_mean, self._y_std = 0.0, 1.0
        self._train_x = self._train_y = torch.zeros(0, dtype=torch.float64)
        self._model: Any = None
        self._likelihood: Any = None
        self.fill_: FloatArray | None = None

    def fit(self, samples: Samples) -> GPModel:
        inputs, names = self._inputs(samples.histories, fit=True)
        return self.fit_matrix(inputs, samples.targets, samples.groups, names, inputs[:, 0])

    def predict(self, histories: list[pd.DataFrame]) -> Prediction:
        """Titer-like targets: mean and lower bound never below zero."""
        if not histories:
            return Prediction.gaussian(np.zeros(0), np.zeros(0))
        return self._predict(np.vstack([tabular_features(h, self.features, self.task)
                                        for h in histories]))  # fmt: skip

    def predict_online(self, view: FeatureView) -> Prediction:
        """The same answer as `predict` of the history the view was made of."""
        return self._predict(view.features[self.task][None, :])

    def _predict(self, raw: FloatArray) -> Prediction:
        names = self.features.names(self.task)
        matrix = fill_missing(raw, self.fill_)
        inputs = state_features(matrix, names, VOLUME in self.features.online)[0]
        return self.predict_matrix(inputs, inputs[:, 0], lower_bound=0.0)

    def fit_matrix(
        self,
        x: FloatArray,
        y: FloatArray,
        groups: npt.ArrayLike | None = None,
        names: list[str] | None = None,
        elapsed: FloatArray | None = None,
    ) -> GPModel:
        """Fit on a feature matrix; `groups` (batch ids) drive the calibration (rows if None),
        `names` (of the columns) label the length scales in `params_`, `elapsed` (hours, of
        each row) lets the interval width depend on batch time (constant if None)."""
        start = time.perf_counter()
        x, y = np.asarray(x, float), np.asarray(y, float)
        if x.ndim != 2 or len(x) != len(y) or not (np.isfinite(x).all() and np.isfinite(y).all()):
            raise ValueError(f"need finite x (n, d) and y (n,), got {x.shape} and {y.shape}")
        self.input_names_ = names or [f"x{i}" for i in range(x.shape[1])]
        kind = "variational" if len(y) > self.sparse_threshold else "exact"
        with _torch_session(len(y), kind, self.seed):
            loss = self._train(x, y, kind, self.iterations)
            if self.calibrate:
                at = np.zeros(len(y)) if elapsed is None else np.asarray(elapsed, float)
                self.calibration_ = self._calibrate(x, y, groups, at)
        self.params_ = self._describe(loss, time.perf_counter() - start)
        log.info("gp (%s) fitted on %d rows", kind, len(y))
        return self

    def predict_matrix(
        self, x: FloatArray, elapsed: FloatArray | None = None, lower_bound: float | None = None
    ) -> Prediction:
        mean, std = self._moments(np.asarray(x, float))
        if self.calibration_ is None:
            return Prediction.gaussian(mean, std)
        at = np.zeros(len(mean)) if elapsed is None else np.asarray(elapsed, float)
        return self.calibration_.interval(mean, at, std / self._noise_std(), lower_bound)

    def _noise_std(self) -> float:
        """The likelihood's noise std in target units: the predictive std far inside the data."""
        return float(self._likelihood.noise.detach().sqrt()) * self._y_std

    def _inputs(
        self, histories: list[pd.DataFrame], fit: bool = False
    ) -> tuple[FloatArray, list[str]]:
        """Model inputs; missing values are filled with the training means kept at fit."""
        names = self.features.names(self.task)
        matrix = feature_matrix(
            histories, self.features, self.task, fill=None if fit else self.fill_
        )
        if fit:
            self.fill_ = matrix.mean(axis=0)
        return state_features(matrix, names, VOLUME in self.features.online)

    def _train(
        self, x: FloatArray, y: FloatArray, kind: str, steps: int, warm: _States | None = None
    ) -> float:
        """Standardize with these rows' statistics, build the modules (from `warm`'s
        hyperparameters and inducing points if given) and optimize them."""
        self._x_mean, self._x_std = x.mean(axis=0), x.std(axis=0)
        self._x_std[self._x_std < 1e-12] = 1.0
        self._y_mean, self._y_std = float(y.mean()), max(float(y.std()), 1e-12)
        self.kind_, self.n_train_ = kind, len(y)
        xs, ys = self._scaled(x), torch.from_numpy((y - self._y_mean) / self._y_std)
        if kind == "exact":
            self._train_x, self._train_y = xs, ys
            self._build(None)
        else:
            k = min(self.inducing_points, len(y))
            km = KMeans(n_clusters=k, n_init=1, max_iter=50, random_state=self.seed).fit(xs.numpy())
            self._build(torch.from_numpy(km.cluster_centers_).double())
        if warm is not None:
            self._load(warm, hyperparameters_only=True)
        self._model.train()
        self._likelihood.train()
        if kind == "exact":
            loss = _train_exact(self._model, xs, ys, steps)
        else:
            loss = _train_variational(self._model, self._likelihood, xs, ys, steps)
        self._model.eval()
        self._likelihood.eval()
        return loss

    def _build(self, inducing: torch.Tensor | None) -> None:
        self._likelihood = _likelihood().double()
        if self.kind_ == "exact":
            self._model = _ExactGP(self._train_x, self._train_y, self._likelihood).double()
        elif inducing is not None:
            self._model = _SparseGP(inducing.clone()).double()
        else:
            raise ValueError("a variational GP needs inducing points")

    def _state(self) -> _States:
        return {
            "model": {k: v.detach().clone() for k, v in self._model.state_dict().items()},
            "likelihood": {k: v.detach().clone() for k, v in self._likelihood.state_dict().items()},
        }

    def _load(self, state: _States, hyperparameters_only: bool = False) -> None:
        """Load module states; `hyperparameters_only` leaves the variational posterior (fitted to
        other rows, it would leak them into a calibration fold) at its fresh initialization."""
        model = state["model"]
        if hyperparameters_only:
            model = {k: v for k, v in model.items() if not k.startswith(ROW_STATE)}
        self._model.load_state_dict(model, strict=not hyperparameters_only)
        self._likelihood.load_state_dict(state["likelihood"])

    def _scaled(self, x: FloatArray) -> torch.Tensor:
        return torch.from_numpy((x - self._x_mean) / self._x_std).double()

    def _moments(self, x: FloatArray) -> tuple[FloatArray, FloatArray]:
        """Predictive mean and std (noise included, not calibrated) in target units."""
        if self._model is None:
            raise RuntimeError("GPModel is not fitted")
        means, variances = [], []
        with (
            _torch_session(self.n_train_, self.kind_),
            torch.no_grad(),
            warnings.catch_warnings(),
        ):
            warnings.simplefilter("ignore", gpytorch.utils.warnings.GPInputWarning)
            for start in range(0, len(x), PREDICT_CHUNK):
                dist = self._likelihood(self._model(self._scaled(x[start : start + PREDICT_CHUNK])))
                means.append(dist.mean.numpy())
                variances.append(dist.variance.clamp_min(0.0).numpy())
        mean = np.concatenate(means) * self._y_std + self._y_mean
        return mean, np.sqrt(np.concatenate(variances)) * self._y_std

    def _calibrate(
        self, x: FloatArray, y: FloatArray, groups: Any, elapsed: FloatArray
    ) -> IntervalCalibration | None:
        """Out-of-fold residuals over batches held out by GroupKFold → `IntervalCalibration`.

        Few batches: leave one batch out. Five folds of 12 dev batches fitted each fold on ~10
        and were much worse than the final GP on all 12 (its held-out errors were 0.67× what
        the calibration expected, the median batch covered every point); leaving one out, 0.84×.
        Above `LEAVE_ONE_OUT_UP_TO` batches five folds: one more batch matters little there.

        Each fold starts from the full fit's hyperparameters (not its inducing points or
        variational posterior: those are fitted to rows) and re-optimizes on its training
        batches. Exact folds take a third of the steps: near their own optimum at a third of
        the cost (one exact step at n=2000 takes ~1 s). Variational folds take all of them:
        shorter ones predicted wider than the final model and under-calibrated it."""
        groups = np.arange(len(y)).astype(str) if groups is None else np.asarray(groups, str)
        batches = len(np.unique(groups))
        folds = batches if batches <= LEAVE_ONE_OUT_UP_TO else CV_FOLDS
        if folds < 2:
            log.warning("gp: one batch only, intervals left uncalibrated")
            return None
        warm = self._state()
        exact = self.kind_ == "exact"
        steps = max(10, self.iterations // 3) if exact else self.iterations
        self.oof_, spread = np.zeros(len(y)), np.ones(len(y))
        for train, test in GroupKFold(folds).split(x, y, groups):
            fold = type(self)(
                self.task, self.features, self.seed, inducing_points=self.inducing_points,
                calibrate=False,
            )  # fmt: skip
            fold._train(x[train], y[train], self.kind_, steps, warm)
            self.oof_[test], std = fold._moments(x[test])
            spread[test] = std / fold._noise_std()
        return IntervalCalibration.fit(y - self.oof_, elapsed, groups, spread)

    def _describe(self, loss: float, seconds: float) -> dict[str, float | int | str]:
        """Flat parameters for experiment tracking; length scales in standardized units."""
        kernel = self._model.covar_module
        params: dict[str, float | int | str] = {
            "kind": self.kind_,
            "n_train": self.n_train_,
            "iterations": self.iterations,
            "final_loss": round(loss, 5),
            "noise_std": float(self._likelihood.noise.detach().sqrt()) * self._y_std,
            "outputscale": float(kernel.outputscale.detach()),
            "calibration_factor": self.calibration_.factor if self.calibration_ else float("nan"),
            "fit_seconds": round(seconds, 2),
        }
        if self.kind_ == "variational":
            params["inducing_points"] = int(
                self._model.variational_strategy.inducing_points.shape[0]
            )
        lengthscales = kernel.base_kernel.lengthscale.detach().numpy().ravel()
        names = self.input_names_
        params.update(
            {f"lengthscale_{n}": float(v) for n, v in zip(names, lengthscales, strict=True)}
        )
        return params

    def __getstate__(self) -> dict[str, Any]:
        """Plain tensors and state dicts only: the gpytorch modules are rebuilt on load."""
        state = self.__dict__.copy()
        fitted = state.pop("_model") is not None
        state.pop("_likelihood")
        state["_modules"] = self._state() if fitted else None
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        modules = state.pop("_modules")
        self.__dict__.update(state)
        self._model = self._likelihood = None
        if modules is not None:
            self._build(modules["model"].get(INDUCING))
            self._load(modules)
            self._model.eval()
            self._likelihood.eval()
