"""Built-in simulator batches together with their true titer at every row (for scoring only).

`bioprocessml.simulator.simulate` returns what a plant would record; the true product
concentration is an internal state, recovered here by running the same steps.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from bioprocessml.dataset import BATCH_ID, TIME
from bioprocessml.simulation.simulator import (
    PREFIX,
    SimConfig,
    apply_scenario,
    apply_sensor_faults,
    draw_batches,
    integrate,
    measure_online,
    sample_offline,
)


def simulate_with_truth(
    n: int, seed: int, scenario: str = "normal", cfg: SimConfig | None = None, start: int = 1
) -> tuple[list[pd.DataFrame], pd.DataFrame]:
    """Canonical frames as `simulate` makes them, and the dense truth (`batch_id`, `time`, titer)."""
    cfg = cfg or SimConfig()
    steps = len(np.arange(0.0, cfg.duration_h + 1e-9, cfg.online_interval_min / 60.0))
    draws, noise = draw_batches(n, seed, steps)
    recipes, _lots = apply_scenario(scenario, draws, noise)
    true = integrate(draws, noise, recipes, cfg)
    times = true["time"][:, 0]
    online = measure_online(true, noise)
    apply_sensor_faults(scenario, online, times, noise)
    offline = sample_offline(true, noise, cfg)
    frames, truth = [], []
    for b in range(n):
        batch_id = f"{PREFIX[scenario]}{start + b:03d}"
        frame = pd.DataFrame({BATCH_ID: batch_id, TIME: times})
        for name, values in {**online, **offline}.items():
            frame[name] = values[:, b]
        frames.append(frame)
        truth.append(pd.DataFrame({BATCH_ID: batch_id, TIME: times, "titer": true["p"][:, b]}))
    return frames, pd.concat(truth, ignore_index=True)
