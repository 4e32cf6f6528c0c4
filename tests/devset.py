"""Where the IndPenSim dev set is: `BIOPROCESSML_DEV_SET`, else `shared/` beside the clone, else
/work/shared, else the slice committed under tests/fixtures (six batches, every third row and
every assay row): tests run on a machine without the dev set too."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from bioprocessml.settings import PROJECT_ROOT

CANDIDATES = [
    *([Path(os.environ["BIOPROCESSML_DEV_SET"])] if "BIOPROCESSML_DEV_SET" in os.environ else []),
    PROJECT_ROOT.parent / "shared" / "datasets" / "indpensim-dev",
    Path("/work/shared/datasets/indpensim-dev"),
    Path(__file__).parent / "fixtures" / "indpensim-slice",
]


def dev_set() -> Path:
    for folder in CANDIDATES:
        if (folder / "normal").is_dir():
            return folder
    pytest.skip(f"IndPenSim dev set not found (looked in {', '.join(map(str, CANDIDATES))})")


def dev_files(*names: str) -> list[Path]:
    """Dev files by stem, found in normal/ or temperature-shift/."""
    root = dev_set()
    return [next(root.glob(f"*/{name}.csv")) for name in names]
