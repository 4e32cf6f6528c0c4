"""Write simulated batches as files in a dataset spec's format (the `simulate` command)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from bioprocessml.dataset import BATCH_ID, write_batch
from bioprocessml.errors import BioprocessMLError
from bioprocessml.simulation.faults import FAULTS, corrupt_file
from bioprocessml.simulation.simulator import SimConfig, simulate
from bioprocessml.spec import DatasetSpec

SIMULATED_VARIABLES = {
    "temperature", "ph", "dissolved_oxygen", "agitation", "aeration", "feed_rate", "volume",
    "offgas_o2", "offgas_co2", "biomass", "substrate", "titer",
}  # fmt: skip


def check_spec_fits_simulator(spec: DatasetSpec) -> None:
    """The simulator writes through a spec only if the spec names the simulated variables."""
    missing = sorted(SIMULATED_VARIABLES - {v.name for v in spec.variables})
    if missing:
        raise BioprocessMLError(
            f"{spec.source}: the simulator needs spec variables named {missing}; "
            "use names as in data/datasets/fedbatch.yaml"
        )


def write_simulated(
    out: Path,
    spec: DatasetSpec,
    n_batches: int,
    scenario: str = "normal",
    seed: int = 0,
    start: int = 1,
    cfg: SimConfig | None = None,
    on_file: Callable[[Path], None] | None = None,
) -> list[Path]:
    """Simulate and write one file per batch; `corrupt` cycles through every fault kind."""
    check_spec_fits_simulator(spec)
    out.mkdir(parents=True, exist_ok=True)
    frames = simulate(n_batches, scenario, seed=seed, start=start, cfg=cfg)
    kinds = list(FAULTS)
    paths = []
    for i, frame in enumerate(frames):
        batch_id = str(frame[BATCH_ID].iloc[0])
        if scenario == "corrupt":
            kind = kinds[i % len(kinds)]
            path = out / f"{batch_id}-{kind}.csv"
            path.write_bytes(corrupt_file(frame, spec, kind))
        else:
            path = write_batch(frame, out / f"{batch_id}.csv", spec)
        paths.append(path)
        if on_file is not None:
            on_file(path)
    return paths
