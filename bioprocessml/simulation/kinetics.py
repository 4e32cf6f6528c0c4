"""The fed-batch process itself: recipes, per-batch random kinetics and their integration.

Monod growth with oxygen, temperature and pH factors; Luedeking–Piret product formation; an
exponential substrate feed after a batch phase; dissolved oxygen from kLa with an agitation
cascade; off-gas O2/CO2 from the oxygen uptake rate; volume grows by feeding and shrinks by
sampling. All batches of a call are integrated together (vectorised over batches).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

Array = npt.NDArray[np.float64]

O2_SATURATION_MMOL_L = 0.25  # dissolved O2 at 100 % air saturation
AIR_O2_PCT = 20.95
MOLAR_VOLUME_L = 22.4
NOISE_STD = {
    "temperature": 0.05,
    "ph": 0.01,
    "dissolved_oxygen": 0.8,
    "agitation": 2.0,
    "aeration": 0.03,
    "feed_rate": 0.01,  # relative
    "volume": 0.01,
    "offgas_o2": 0.02,
    "offgas_co2": 0.02,
}


@dataclass(frozen=True)
class Recipe:
    """The manipulated side of a batch: what a recipe change changes."""

    name: str = "R1"
    feed_start_h: float = 10.0
    feed_rate0_lph: float = 0.010
    feed_growth_per_h: float = 0.05
    feed_max_lph: float = 0.06
    feed_conc_gl: float = 250.0
    temperature_c: float = 30.0
    induction_h: float = 24.0
    induction_temperature_c: float = 30.0
    ph: float = 6.8
    do_setpoint_pct: float = 30.0
    air_lpm: float = 5.0


NORMAL_RECIPE = Recipe()

# A new feed recipe: earlier, steeper feeding and a temperature shift at induction.
CHANGED_RECIPE = Recipe(
    name="R2",
    feed_start_h=8.0,
    feed_rate0_lph=0.014,
    feed_growth_per_h=0.07,
    feed_max_lph=0.09,
    feed_conc_gl=220.0,
    induction_temperature_c=27.0,
)


@dataclass(frozen=True)
class SimConfig:
    duration_h: float = 96.0
    online_interval_min: float = 5.0
    offline_interval_h: float = 12.0
    sample_volume_l: float = 0.03
    missing_offline_prob: float = 0.05


@dataclass
class Draws:
    """Every random number of a run, drawn up front so that scenarios share them."""

    n: int
    rng: np.random.Generator
    params: dict[str, Array] = field(default_factory=dict)

    def lognormal(self, name: str, median: float, cv: float) -> None:
        self.params[name] = median * np.exp(self.rng.normal(0.0, cv, self.n))


def draw_batches(n: int, seed: int, steps: int) -> tuple[Draws, dict[str, Array]]:
    """Batch-to-batch variability (kinetics, initial state) and the noise sequences."""
    draws = Draws(n, np.random.default_rng(seed))
    # Most titer variation comes from growth (mu_max, yxs, x0), which off-gas and DO reveal; the
    # product yields (alpha, beta, kd) vary little: sensors carry information, as a soft sensor
    # needs (with yields varying 8-10 %, no model beat the mean trajectory of past batches).
    for name, median, cv in [
        ("mu_max", 0.25, 0.10),
        ("ks", 0.10, 0.10),
        ("yxs", 0.45, 0.05),
        ("ms", 0.02, 0.10),
        ("alpha", 0.02, 0.02),
        ("beta", 0.0016, 0.02),
        ("kd", 0.002, 0.03),
        ("yxo", 0.04, 0.04),
        ("mo", 1.0, 0.08),
        ("kla0", 50.0, 0.06),
        ("x0", 0.4, 0.30),
        ("s0", 20.0, 0.05),
        ("v0", 5.0, 0.01),
        ("feed_gain", 1.0, 0.08),  # the feed pump's delivery: seen by the feed-rate sensor
    ]:
        draws.lognormal(name, median, cv)
    rng = draws.rng
    noise = {name: rng.standard_normal((steps, n)) for name in NOISE_STD}
    noise["temp_ar"] = rng.standard_normal((steps, n))
    noise["ph_ar"] = rng.standard_normal((steps, n))
    noise["offline"] = rng.standard_normal((4, 64, n))
    noise["offline_missing"] = rng.random((64, n))
    noise["offline_jitter"] = rng.uniform(-0.5, 0.5, (64, n))
    noise["event_time"] = rng.uniform(0.35, 0.6, n)
    noise["lot"] = rng.integers(1, 6, n).astype(float)
    return draws, noise


def feed_profile(t: float, recipe: Recipe) -> float:
    if t < recipe.feed_start_h:
        return 0.0
    rate = recipe.feed_rate0_lph * np.exp(recipe.feed_growth_per_h * (t - recipe.feed_start_h))
    return float(min(rate, recipe.feed_max_lph))


def temperature_setpoint(t: float, recipe: Recipe) -> float:
    return recipe.temperature_c if t < recipe.induction_h else recipe.induction_temperature_c


def integrate(
    draws: Draws, noise: dict[str, Array], recipes: list[Recipe], cfg: SimConfig
) -> dict[str, Array]:
    """Integrate all batches on the online grid (two sub-steps per sample), returning true states.

    Substrate uses a linearly implicit step: uptake near S≈0 is stiff (rate ∝ X/Ks), and the
    implicit form keeps S positive and stable at the sampling step.
    """
    p = draws.params
    n = draws.n
    dt_sample = cfg.online_interval_min / 60.0
    times = np.arange(0.0, cfg.duration_h + 1e-9, dt_sample)
    sample_times = np.arange(0.0, cfg.duration_h + 1e-9, cfg.offline_interval_h)
    x, s, prod, v = p["x0"].copy(), p["s0"].copy(), np.zeros(n), p["v0"].copy()
    temp_dev, ph_dev = np.zeros(n), np.zeros(n)
    out = {k: np.empty((len(times), n)) for k in STATE_KEYS}
    next_sample = 1
    for i, t in enumerate(times):
        feed = np.array([feed_profile(t, r) for r in recipes]) * p["feed_gain"]
        t_set = np.array([temperature_setpoint(t, r) for r in recipes])
        temp_dev = 0.9 * temp_dev + 0.04 * noise["temp_ar"][i]
        ph_dev = 0.9 * ph_dev + 0.008 * noise["ph_ar"][i]
        temp = t_set + temp_dev
        ph = np.array([r.ph for r in recipes]) + ph_dev
        f_temp = np.exp(-(((temp - 30.0) / 8.0) ** 2))
        f_ph = np.exp(-(((ph - 6.8) / 1.0) ** 2))
        f_prod = np.exp(0.08 * (30.0 - temp))
        # Oxygen: agitation cascade holds DO at setpoint if kLa allows, else DO falls.
        mu_pot = p["mu_max"] * f_temp * f_ph * s / (p["ks"] + s)
        our = (mu_pot / p["yxo"] + p["mo"]) * x
        do_set = np.array([r.do_setpoint_pct for r in recipes])
        kla_needed = our / (O2_SATURATION_MMOL_L * (1 - do_set / 100.0))
        agitation = np.clip(300.0 * np.sqrt(np.maximum(kla_needed / p["kla0"], 1e-9)), 300, 1200)
        kla = p["kla0"] * (agitation / 300.0) ** 2
        do = np.clip(100.0 * (1 - our / (kla * O2_SATURATION_MMOL_L)), 0.5, 100.0)
        f_o2 = do / (5.0 + do)
        air = np.array([r.air_lpm for r in recipes])
        air_mmol_h = air * 60.0 / MOLAR_VOLUME_L * 1000.0
        d_o2 = our * f_o2 * v / air_mmol_h * 100.0
        for key, value in [
            ("x", x), ("s", s), ("p", prod), ("v", v), ("feed", feed), ("temperature", temp),
            ("ph", ph), ("dissolved_oxygen", do), ("agitation", agitation), ("aeration", air),
            ("offgas_o2", AIR_O2_PCT - d_o2), ("offgas_co2", 0.04 + 1.02 * d_o2),
        ]:  # fmt: skip
            out[key][i] = value
        for _ in range(2):
            h = dt_sample / 2
            dil = feed / v
            mu_coef = p["mu_max"] * f_temp * f_ph * f_o2
            uptake = (mu_coef / p["yxs"] + p["ms"]) * x
            s = (s + h * dil * np.array([r.feed_conc_gl for r in recipes])) / (
                1 + h * dil + h * uptake / (p["ks"] + s)
            )
            mu = mu_coef * s / (p["ks"] + s)
            prod = prod + h * ((p["alpha"] * mu + p["beta"] * f_prod) * x - (dil + p["kd"]) * prod)
            x = x + h * (mu - dil) * x
            v = v + h * feed
        if next_sample < len(sample_times) and t + dt_sample > sample_times[next_sample]:
            v = v - cfg.sample_volume_l
            next_sample += 1
    out["time"] = np.repeat(times[:, None], n, axis=1)
    return out


STATE_KEYS = (
    "x", "s", "p", "v", "feed", "temperature", "ph", "dissolved_oxygen", "agitation",
    "aeration", "offgas_o2", "offgas_co2",
)  # fmt: skip
