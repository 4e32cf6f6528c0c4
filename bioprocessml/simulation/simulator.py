"""A textbook fed-batch fermentation, simulated for many batches at once: the process
(`kinetics.py`), then what sensors and the lab see of it, per scenario. All batches of a call
are integrated together (vectorised over batches), so 50 batches take well under a second.

Every scenario draws the same random numbers for the same seed, so batch k of a `sensor-drift`
run is batch k of a `normal` run with only the drifting probe changed: tests compare them exactly.
"""

from __future__ import annotations

from typing import Literal, get_args

import numpy as np
import pandas as pd

from bioprocessml.dataset import BATCH_ID, TIME
from bioprocessml.simulation.kinetics import (
    CHANGED_RECIPE,
    NOISE_STD,
    NORMAL_RECIPE,
    Array,
    Draws,
    Recipe,
    SimConfig,
    draw_batches,
    integrate,
)

Scenario = Literal[
    "normal", "feed-change", "raw-material", "sensor-drift", "stuck-sensor", "corrupt"
]
SCENARIOS: tuple[str, ...] = get_args(Scenario)
PREFIX = {
    "normal": "N",
    "feed-change": "FC",
    "raw-material": "RM",
    "sensor-drift": "SD",
    "stuck-sensor": "SS",
    "corrupt": "C",
}


def measure_online(true: dict[str, Array], noise: dict[str, Array]) -> dict[str, Array]:
    """Sensor readings: true value plus white measurement noise (relative for the feed pump)."""
    sig = NOISE_STD
    steps = true["x"].shape[0]
    nz = {k: v[:steps] for k, v in noise.items() if k in sig}
    return {
        "temperature": true["temperature"] + sig["temperature"] * nz["temperature"],
        "ph": true["ph"] + sig["ph"] * nz["ph"],
        "dissolved_oxygen": np.clip(
            true["dissolved_oxygen"] + sig["dissolved_oxygen"] * nz["dissolved_oxygen"], 0, 100
        ),
        "agitation": np.round(true["agitation"] + sig["agitation"] * nz["agitation"]),
        "aeration": true["aeration"] + sig["aeration"] * nz["aeration"],
        "feed_rate": true["feed"] * (1 + sig["feed_rate"] * nz["feed_rate"]),
        "volume": true["v"] + sig["volume"] * nz["volume"],
        "offgas_o2": true["offgas_o2"] + sig["offgas_o2"] * nz["offgas_o2"],
        "offgas_co2": np.maximum(true["offgas_co2"] + sig["offgas_co2"] * nz["offgas_co2"], 0),
    }


def sample_offline(
    true: dict[str, Array], noise: dict[str, Array], cfg: SimConfig
) -> dict[str, Array]:
    """Sparse assays (~every 12 h with jitter, some missing, always one at harvest); NaN elsewhere."""
    steps, n = true["x"].shape
    dt = cfg.online_interval_min / 60.0
    nominal = np.arange(0.0, cfg.duration_h + 1e-9, cfg.offline_interval_h)
    result = {name: np.full((steps, n), np.nan) for name in ("biomass", "substrate", "titer")}
    for k, t_nom in enumerate(nominal):
        last = k == len(nominal) - 1
        for b in range(n):
            if k > 0 and not last and noise["offline_missing"][k, b] < cfg.missing_offline_prob:
                continue
            t = t_nom if k == 0 else t_nom + noise["offline_jitter"][k, b]
            row = steps - 1 if last else int(np.clip(round(t / dt), 0, steps - 1))
            for j, (name, key, rel, absolute) in enumerate(ASSAYS):
                value = true[key][row, b] * (1 + rel * noise["offline"][j, k, b])
                result[name][row, b] = max(0.0, value + absolute * noise["offline"][3, k, b])
    return result


ASSAYS = [("biomass", "x", 0.04, 0.05), ("substrate", "s", 0.05, 0.02), ("titer", "p", 0.03, 0.02)]


def apply_scenario(
    scenario: str, draws: Draws, noise: dict[str, Array]
) -> tuple[list[Recipe], list[str]]:
    """Scenario effects on the process itself: recipe and raw-material lot per batch."""
    lots = [f"LOT-A{int(k)}" for k in noise["lot"]]
    recipes = [NORMAL_RECIPE] * draws.n
    if scenario == "feed-change":
        recipes = [CHANGED_RECIPE] * draws.n
    elif scenario == "raw-material":
        draws.params["yxs"] = draws.params["yxs"] * 0.8
        draws.params["beta"] = draws.params["beta"] * 0.75
        lots = [f"LOT-B{int(k)}" for k in noise["lot"]]
    return recipes, lots


def apply_sensor_faults(
    scenario: str, online: dict[str, Array], times: Array, noise: dict[str, Array]
) -> None:
    """Scenario effects on the probes only (the process is unchanged)."""
    onset = noise["event_time"] * times[-1]
    if scenario == "sensor-drift":
        # The pH probe drifts upward; control runs on a redundant probe, so only the reading moves.
        online["ph"] = online["ph"] + SENSOR_DRIFT_PH_PER_H * np.maximum(times[:, None] - onset, 0)
    elif scenario == "stuck-sensor":
        stuck_from = np.searchsorted(times, onset)
        for b, row in enumerate(stuck_from):
            online["dissolved_oxygen"][row:, b] = online["dissolved_oxygen"][row, b]


SENSOR_DRIFT_PH_PER_H = 0.015


def simulate(
    n_batches: int,
    scenario: str = "normal",
    seed: int = 0,
    start: int = 1,
    cfg: SimConfig | None = None,
) -> list[pd.DataFrame]:
    """Simulate `n_batches` batches of a scenario as canonical frames (see `bioprocessml.dataset`).

    `corrupt` returns normal batches; `bioprocessml.simulation.faults` turns them into broken files.
    """
    if scenario not in SCENARIOS:
        raise ValueError(f"unknown scenario {scenario!r}; choose from {', '.join(SCENARIOS)}")
    if n_batches < 1:
        raise ValueError("n_batches must be at least 1")
    cfg = cfg or SimConfig()
    steps = len(np.arange(0.0, cfg.duration_h + 1e-9, cfg.online_interval_min / 60.0))
    draws, noise = draw_batches(n_batches, seed, steps)
    recipes, lots = apply_scenario(scenario, draws, noise)
    true = integrate(draws, noise, recipes, cfg)
    times = true["time"][:, 0]
    online = measure_online(true, noise)
    apply_sensor_faults(scenario, online, times, noise)
    offline = sample_offline(true, noise, cfg)
    prefix = PREFIX[scenario]
    frames = []
    for b in range(n_batches):
        frame = pd.DataFrame({BATCH_ID: f"{prefix}{start + b:03d}", TIME: times})
        for name, values in {**online, **offline}.items():
            frame[name] = values[:, b]
        frame["recipe"] = recipes[b].name
        frame["raw_material_lot"] = lots[b]
        frames.append(frame)
    return frames
