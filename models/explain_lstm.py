"""Gradient-based SHAP values of the LSTM ensemble: integrated gradients from the golden batch.

The LSTM reads each channel as its deviation from the training batches' mean trajectory, so the
natural reference is that average batch itself: zero deviation on every sensor and assay
channel, elapsed time and sampling pattern as in the batch explained. Integrated gradients along
the straight path from it (the Aumann–Shapley value; shap's GradientExplainer estimates the same
path integral by sampling) give each channel-and-step its share of the prediction; they add up
to prediction − reference prediction up to the quadrature error, which is reported as the
explanation's residual. Shares are summed over the steps into one per spec column.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import torch

from bioprocessml.spec import DatasetSpec
from models.attribution import (
    Attribution,
    Explanation,
    column_attribution,
    explanation,
    floor_attribution,
)
from models.base import FloatArray

STEPS = 128  # midpoint-rule nodes along the path


def _forward(model: Any, base: torch.Tensor, elapsed: FloatArray) -> torch.Tensor:
    """The ensemble's mean standardized output for sequences `base` (k, steps, channels)."""
    from models.trajectories import _Batch

    k, n = base.shape[0], base.shape[1]
    data = _Batch(
        base, torch.arange(k), torch.full((k,), n, dtype=torch.long), base[:, -1], elapsed
    )
    return torch.stack([net(data) for net in model.nets_]).mean(0)


def _attributed_channels(model: Any) -> list[tuple[int, str, str]]:
    """(channel index, variable name, feature words) of the channels the reference zeroes."""
    fs = model.features
    out = [(i, n, "its trajectory so far") for i, n in enumerate(fs.online)]
    start = len(fs.online)
    out += [(start + i, n, "amount fed so far") for i, n in enumerate(fs.cumulative)]
    if model.task == "harvest":
        first = start + len(fs.cumulative) + 1  # after the elapsed-time channel
        out += [(first + i, n, "its assays so far") for i, n in enumerate(fs.offline)]
    return out


def explain_lstm(model: Any, history: pd.DataFrame, spec: DatasetSpec) -> Explanation:
    from models.threads import torch_threads
    from models.trajectories import _encode, _raw

    sc = model.scaling_
    raw = _raw(history, model.features, model.task, model.step_h)
    x = torch.tensor(_encode(raw, sc), dtype=torch.float32)[None]
    channels = _attributed_channels(model)
    reference = x.clone()
    reference[..., [c for c, _, _ in channels]] = 0.0
    elapsed = np.array([raw.elapsed_h])
    alphas = (torch.arange(STEPS, dtype=torch.float32) + 0.5) / STEPS
    with torch_threads(1), torch.enable_grad():
        path = (reference + alphas[:, None, None] * (x - reference)).requires_grad_(True)
        _forward(model, path, np.repeat(elapsed, STEPS)).sum().backward()
        assert path.grad is not None
        grads = path.grad.mean(0, keepdim=True)
        with torch.no_grad():
            z_x, z_ref = (float(_forward(model, t, elapsed)[0]) for t in (x, reference))
    shares = ((x - reference) * grads)[0].sum(0).numpy().astype(float) * sc.y_scale
    curve = float(sc.curve(sc.base, elapsed)[0])
    base, raw_mean = curve + sc.y_scale * z_ref, curve + sc.y_scale * z_x
    attributions: list[Attribution] = [
        column_attribution(spec, name, words, shares[c]) for c, name, words in channels
    ]
    final = float(model.predict([history]).mean[0])
    if final != raw_mean:
        attributions.append(floor_attribution(spec, final - raw_mean))
    method = f"integrated gradients from the golden batch ({STEPS} steps, gradient-based SHAP)"
    return explanation(spec, model.name, method, base, final, attributions)
