"""Reading a user's batch files without a spec: their CSV dialect, and what each column holds.

Only what the files show is measured here (numbers or text, how filled, how it changes step to
step); what it means is decided in `draft.py`.
"""

from __future__ import annotations

import codecs
import csv
import io
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from bioprocessml.dataset import to_number
from bioprocessml.errors import BioprocessMLError
from bioprocessml.spec import CsvFormat, Encoding

NUMERIC_SHARE = 0.95  # a column is numeric when this share of its filled cells are numbers
COMMA_DECIMAL = re.compile(r"(?:^|[;\t|])\s*-?\d+,\d+\s*(?=[;\t|]|$)", re.MULTILINE)
DOT_DECIMAL = re.compile(r"(?:^|[;\t|,])\s*-?\d*\.\d+\s*(?=[;\t|,]|$)", re.MULTILINE)


@dataclass
class Column:
    """One header over all files: its numbers (NaN where empty or text) and its text, per file."""

    header: str
    numbers: list[np.ndarray] = field(default_factory=list)
    texts: list[pd.Series] = field(default_factory=list)

    @property
    def filled(self) -> float:
        """Share of non-empty cells over the files that have the column."""
        cells = sum(len(t) for t in self.texts)
        return sum(int(t.notna().sum()) for t in self.texts) / cells if cells else 0.0

    @property
    def numeric(self) -> bool:
        filled = sum(int(t.notna().sum()) for t in self.texts)
        parsed = sum(int(np.isfinite(n).sum()) for n in self.numbers)
        return filled > 0 and parsed >= NUMERIC_SHARE * filled

    @property
    def values(self) -> np.ndarray:
        """All numbers of all files, empty cells left out."""
        joined = np.concatenate(self.numbers) if self.numbers else np.array([])
        return joined[np.isfinite(joined)]

    @property
    def worst_missing(self) -> float:
        """The largest share of empty cells in one file."""
        return max((float(t.isna().mean()) for t in self.texts), default=1.0)

    def constant_share(self) -> float:
        """Share of steps between consecutive readings where the value did not change: near 1
        for a set-point held through phases, near 0 for a measured signal."""
        steps = [np.diff(n[np.isfinite(n)]) for n in self.numbers]
        changes = np.concatenate(steps) if steps else np.array([])
        return float((changes == 0).mean()) if len(changes) else 0.0


@dataclass
class Files:
    paths: list[Path]
    frames: list[pd.DataFrame]
    csv: CsvFormat
    columns: dict[str, Column]
    absent: dict[str, int]  # header → in how many files it is missing


def decode(path: Path) -> tuple[str, Encoding]:
    """The file's text and its encoding: a byte-order mark, else UTF-8, else Windows-1252."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise BioprocessMLError(f"{path}: cannot read: {exc.strerror or exc}") from None
    for bom, encoding in ((codecs.BOM_UTF8, "utf-8-sig"), (codecs.BOM_UTF16_LE, "utf-16"),
                          (codecs.BOM_UTF16_BE, "utf-16")):  # fmt: skip
        if data.startswith(bom):
            return data.decode(encoding), encoding  # type: ignore[return-value]
    try:
        return data.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        return data.decode("cp1252", errors="replace"), "cp1252"


def sniff_format(path: Path) -> CsvFormat:
    """Delimiter, decimal mark and encoding from the first lines of a file."""
    text, encoding = decode(path)
    sample = "\n".join(text.splitlines()[:50])
    if not sample.strip():
        raise BioprocessMLError(f"{path}: empty file, nothing to draft a spec from")
    try:
        delimiter = csv.Sniffer().sniff(sample, delimiters=",;\t|").delimiter
    except csv.Error:
        delimiter = ","
    comma = len(COMMA_DECIMAL.findall(sample)) > len(DOT_DECIMAL.findall(sample))
    decimal = "," if delimiter != "," and comma else "."
    return CsvFormat(delimiter=delimiter, decimal=decimal, encoding=encoding)


def read_files(paths: list[Path]) -> Files:
    """Every file as text with the first file's dialect; columns in order of first appearance."""
    if not paths:
        raise BioprocessMLError("give at least one batch file to draft a spec from")
    fmt = sniff_format(paths[0])
    frames = []
    for path in paths:
        text, _ = decode(path)
        try:
            frame = pd.read_csv(io.StringIO(text), sep=fmt.delimiter, dtype=str)
        except (pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
            raise BioprocessMLError(f"{path}: not a readable CSV: {exc}".strip()) from None
        if frame.empty:
            raise BioprocessMLError(f"{path}: header only, no data rows")
        frames.append(frame)
    columns: dict[str, Column] = {}
    for frame in frames:
        for header in frame.columns:
            column = columns.setdefault(str(header), Column(str(header)))
            column.texts.append(frame[header])
            column.numbers.append(to_number(frame[header], fmt.decimal).to_numpy(dtype=float))
    absent = {
        h: len(frames) - len(c.texts) for h, c in columns.items() if len(c.texts) < len(frames)
    }
    return Files(list(paths), frames, fmt, columns, absent)
