"""The IndPenSim development set (`/work/shared/datasets/indpensim-dev`, README there) as
canonical frames, the feature roles a plant's spec would give its columns, and the dense true
titer used only to score.

The files are read directly rather than through a dataset spec: the spec's units do not yet
cover kg, kJ, g/min, g/h, m³/min or cP. Columns keep their file names minus the unit suffix;
simulator states that no plant measures online (substrate, biomass, NH3, viscosity) are dropped.
"""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd

from bioprocessml.dataset import BATCH_ID, TIME
from models.features import FeatureSpec

NORMAL, TEMPERATURE_SHIFT = "normal", "temperature-shift"


def find_dev_set() -> Path:
    """$BIOPROCESSML_DEV_SET, else ../shared/datasets/indpensim-dev beside the project, else
    /work/shared/… (a git worktree sits deeper than the project); the first that holds normal/."""
    found = [
        Path(os.environ.get("BIOPROCESSML_DEV_SET", "")),
        Path(__file__).resolve().parents[2] / "shared" / "datasets" / "indpensim-dev",
        Path("/work/shared/datasets/indpensim-dev"),
    ]
    return next((p for p in found if p.parts and (p / NORMAL).is_dir()), found[1])


DEV_DIR = find_dev_set()


def dev_files(root: Path) -> list[Path]:
    """Every dev batch file, normal then temperature-shift; a clear error when there are none."""
    paths = sorted((root / NORMAL).glob("*.csv")) + sorted((root / TEMPERATURE_SHIFT).glob("*.csv"))
    if not paths:
        raise FileNotFoundError(
            f"no IndPenSim dev files under {root}/{NORMAL} or /{TEMPERATURE_SHIFT}: give it with "
            "--dev or $BIOPROCESSML_DEV_SET"
        )
    return paths


TARGET = "titer"
STATES = ("substrate_g_l", "biomass_g_l", "nh3_mg_l", "viscosity_cp")
SENSORS = (
    "dissolved_oxygen", "o2_offgas", "co2_offgas", "dissolved_co2", "ph", "temperature", "volume",
    "vessel_weight", "paa", "generated_heat", "our", "cer", "aeration", "agitator",
    "back_pressure", "discharge", "acid_flow", "base_flow", "cooling_water", "heating_water",
)  # fmt: skip
FEEDS = ("sugar_feed", "oil_feed", "water_feed", "paa_feed")  # inflows: cumulative volume fed
OFFGAS = ("o2_offgas", "co2_offgas", "our", "cer")  # integrated: ≈ O2 used, CO2 made
OFFLINE = ("biomass_offline", "paa_offline", "nh3_offline", "viscosity_offline", TARGET)
SUFFIXES = ("_g_l", "_mg_l", "_pct", "_c", "_l", "_kg", "_kj", "_g_min", "_g_h", "_l_h",
            "_m3_min", "_rpm", "_bar", "_cp")  # fmt: skip


def canonical_name(column: str) -> str:
    for suffix in sorted(SUFFIXES, key=len, reverse=True):
        if column.endswith(suffix):
            return column[: -len(suffix)]
    return column


def dev_features() -> FeatureSpec:
    """The roles a plant engineer would declare: sensors and manipulated variables online,
    inflows as feeds, off-gas and its derived rates integrated, lab assays offline."""
    return FeatureSpec(
        online=SENSORS + FEEDS, cumulative=FEEDS, integrated=OFFGAS, offline=OFFLINE,
        target=TARGET,
    )  # fmt: skip


def load_folder(kind: str, root: Path = DEV_DIR) -> list[pd.DataFrame]:
    """Batches of one folder as canonical frames (`batch_id`, `time` in h, variables)."""
    frames = []
    for path in sorted((root / kind).glob("*.csv")):
        raw = pd.read_csv(path).drop(columns=list(STATES))
        frame = raw.rename(columns={c: canonical_name(c) for c in raw.columns})
        frame = frame.rename(columns={"time_h": TIME})
        frame[BATCH_ID] = frame[BATCH_ID].astype(str)
        frames.append(frame)
    if not frames:
        raise FileNotFoundError(f"no batch files under {root / kind}")
    return frames


def load_truth(root: Path = DEV_DIR) -> pd.DataFrame:
    """Dense true titer (`batch_id`, `time`, `titer`): for scoring only, never a model input."""
    truth = pd.read_csv(root / "titer_truth.csv.gz")
    return truth.rename(columns={"time_h": TIME, "titer_g_l": TARGET})
