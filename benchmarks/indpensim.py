"""The IndPenSim dev set as the drift benchmarks read it: canonical frames and the feature spec a
user's dataset spec for these files would give (every online column; feeds and off-gas by role)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from devset import find_dev_set

from models.features import FeatureSpec

DEV = find_dev_set()  # or --dev
TARGET = "titer_g_l"
OFFLINE = ("biomass_offline_g_l", "paa_offline_mg_l", "nh3_offline_mg_l", "viscosity_offline_cp")
FEEDS = ("sugar_feed_l_h", "oil_feed_l_h", "paa_feed_l_h", "water_feed_l_h", "acid_flow_l_h",
         "base_flow_l_h")  # fmt: skip
OFFGAS = ("o2_offgas_pct", "co2_offgas_pct")


def dev_features(dev: Path) -> FeatureSpec:
    columns = pd.read_csv(batch_paths(dev, "normal")[0], nrows=1).columns
    online = [c for c in columns if c not in ("batch_id", "time_h", TARGET, *OFFLINE)]
    return FeatureSpec(tuple(online), FEEDS, OFFGAS, (*OFFLINE, TARGET), TARGET)


def load_dev(dev: Path, folder: str) -> list[pd.DataFrame]:
    """The batches of `normal/` or `temperature-shift/`, by file name (arrival order)."""
    return [pd.read_csv(p).rename(columns={"time_h": "time"}) for p in batch_paths(dev, folder)]


def batch_paths(dev: Path, folder: str) -> list[Path]:
    paths = sorted((dev / folder).glob("*.csv"))
    if not paths:
        raise FileNotFoundError(f"no batch files in {dev / folder}: give the dev set with --dev")
    return paths
