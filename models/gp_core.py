"""The Gaussian processes themselves (gpytorch): exact and sparse variational models, their
kernel and likelihood, and how each is trained; `models.gp` wraps them into a candidate.

Why exact Cholesky: gpytorch's default CG/Lanczos solver at n≈2000 fitted the noise wrongly and
gave variances 5–30× off; `max_cholesky_size` keeps every solve exact.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import gpytorch
import numpy as np
import torch
from gpytorch.constraints import GreaterThan

CHOLESKY_MAX = 10_000  # exact solves up to this size (see the module docstring)
NOISE_FLOOR = 1e-3  # likelihood noise variance floor, in standardized target units
MIN_LENGTHSCALE = 0.3  # in standardized input units (see `_kernel`)
EXACT_LR, VARIATIONAL_LR, NGD_LR = 0.1, 0.05, 0.1
BATCH_SIZE = 512  # minibatch rows of the variational GP
MAX_VARIATIONAL_STEPS = 600  # minibatches per variational fit (an epoch each up to 2048 rows)
# Threads: one unless an exact GP is large enough for parallel BLAS to pay. Minibatch and small
# solves gain nothing, and on a busy 2-core machine two spinning threads ran 5–10× slower.
SMALL_N, MAX_THREADS = 1000, 2
INDUCING = "variational_strategy.inducing_points"
# Fitted to particular rows (in a calibration fold, they would leak the held-out batches):
ROW_STATE = (INDUCING, "variational_strategy._variational", "variational_strategy.variational_")


class _ExactGP(gpytorch.models.ExactGP):
    def __init__(self, x: torch.Tensor, y: torch.Tensor, likelihood: Any) -> None:
        super().__init__(x, y, likelihood)
        self.mean_module = gpytorch.means.ConstantMean()
        self.covar_module = _kernel(x.shape[-1])

    def forward(self, x: torch.Tensor) -> gpytorch.distributions.MultivariateNormal:
        return gpytorch.distributions.MultivariateNormal(self.mean_module(x), self.covar_module(x))


class _SparseGP(gpytorch.models.ApproximateGP):
    def __init__(self, inducing: torch.Tensor) -> None:
        distribution = gpytorch.variational.NaturalVariationalDistribution(inducing.shape[0])
        strategy = gpytorch.variational.VariationalStrategy(
            self, inducing, distribution, learn_inducing_locations=True
        )
        super().__init__(strategy)
        self.mean_module = gpytorch.means.ConstantMean()
        self.covar_module = _kernel(inducing.shape[-1])

    def forward(self, x: torch.Tensor) -> gpytorch.distributions.MultivariateNormal:
        return gpytorch.distributions.MultivariateNormal(self.mean_module(x), self.covar_module(x))


def _kernel(dims: int) -> gpytorch.kernels.Kernel:
    """Scaled ARD RBF on standardized inputs, started smooth and kept from singling out batches.

    Length scales start at √d (smooth in d dimensions; the default 0.69 led Adam to wigglier
    optima) and stay above `MIN_LENGTHSCALE`: on harvest rows (one target repeated through a
    batch) ML-II otherwise chose ~0.01 on the assay features, a lookup of the training batches
    that forecast new ones no better than their mean (2 of 10 simulated splits from the default
    start, 1 of 10 from √d; none with the bound)."""
    constraint = GreaterThan(MIN_LENGTHSCALE)
    rbf = gpytorch.kernels.RBFKernel(ard_num_dims=dims, lengthscale_constraint=constraint)
    rbf.lengthscale = float(np.sqrt(dims))
    return gpytorch.kernels.ScaleKernel(rbf)


def _likelihood() -> gpytorch.likelihoods.GaussianLikelihood:
    return gpytorch.likelihoods.GaussianLikelihood(noise_constraint=GreaterThan(NOISE_FLOOR))


@contextlib.contextmanager
def _torch_session(n_train: int, kind: str, seed: int | None = None) -> Iterator[None]:
    """Exact solves, a capped thread count and (if seeded) a private RNG; all restored on exit.

    `torch.set_num_threads` is process-wide: don't run other torch work in parallel threads."""
    previous = torch.get_num_threads()
    large = kind == "exact" and n_train > SMALL_N
    torch.set_num_threads(min(previous, MAX_THREADS) if large else 1)
    try:
        with torch.random.fork_rng(devices=[]), gpytorch.settings.max_cholesky_size(CHOLESKY_MAX):
            if seed is not None:
                torch.manual_seed(seed)
            yield
    finally:
        torch.set_num_threads(previous)


def _train_exact(model: _ExactGP, x: torch.Tensor, y: torch.Tensor, steps: int) -> float:
    mll = gpytorch.mlls.ExactMarginalLogLikelihood(model.likelihood, model)
    optimizer = torch.optim.Adam(model.parameters(), lr=EXACT_LR)
    loss = torch.tensor(float("nan"))
    for _ in range(steps):
        optimizer.zero_grad()
        loss = -mll(model(x), y)
        loss.backward()
        optimizer.step()
    return float(loss.detach())


def _train_variational(
    model: _SparseGP, likelihood: Any, x: torch.Tensor, y: torch.Tensor, epochs: int
) -> float:
    """Natural-gradient steps for the variational posterior, Adam for the rest: with Adam alone
    the posterior was far from converged after hundreds of steps (calibration folds predicted
    1.5× wider than the final model, which then covered 92 % instead of 95 %). At most
    `MAX_VARIATIONAL_STEPS` minibatches in all, so the cost stops growing with the rows."""
    per_epoch = -(-len(y) // BATCH_SIZE)
    epochs = min(epochs, max(1, MAX_VARIATIONAL_STEPS // per_epoch))
    elbo = gpytorch.mlls.VariationalELBO(likelihood, model, num_data=len(y))
    ngd = gpytorch.optim.NGD(model.variational_parameters(), num_data=len(y), lr=NGD_LR)
    adam = torch.optim.Adam([*model.hyperparameters(), *likelihood.parameters()], VARIATIONAL_LR)
    loss = torch.tensor(float("nan"))
    for _ in range(epochs):
        for rows in torch.randperm(len(y)).split(BATCH_SIZE):
            ngd.zero_grad()
            adam.zero_grad()
            loss = -elbo(model(x[rows]), y[rows])
            loss.backward()
            ngd.step()
            adam.step()
    return float(loss.detach())
