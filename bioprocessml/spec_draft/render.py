"""A draft as YAML a person edits: one line per column, each guess's reason as a comment.

The text is checked against the spec schema before it is handed out, so a draft always passes
`spec check`; what it cannot know (which columns a plant really measures online) the comments say.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import yaml

from bioprocessml.spec import DatasetSpec
from bioprocessml.spec_draft import draft as d
from bioprocessml.spec_draft.columns import read_files
from bioprocessml.spec_draft.names import canonical_name, unique_names

COMMENT_AT = 60  # comments start in this column when the entry is shorter


def draft_spec(paths: list[Path], target: str | None = None) -> str:
    """Draft a dataset spec (YAML text with its guesses as comments) from batch files."""
    files = read_files(paths)
    time = d.find_time(files)
    batch_id = d.find_batch_id(files, time.entry["column"])
    taken = {time.entry["column"], batch_id.entry.get("column")}
    draft = d.Draft(
        name=d.process_name(files),
        description=f"Drafted from {len(paths)} file(s): {', '.join(p.name for p in paths[:3])}"
        + (" …" if len(paths) > 3 else ""),
        batch_id=batch_id, time=time, csv=files.csv,
    )  # fmt: skip
    numeric = [h for h, c in files.columns.items() if h not in taken and c.numeric]
    sparse = [h for h in numeric if files.columns[h].filled < d.SPARSE]
    goal, why = d.choose_target(files, sparse, target)
    for header, column in files.columns.items():
        if header in taken:
            continue
        if column.filled == 0:
            draft.left_out.append(f"{header!r}: empty in every file, left out")
        elif not column.numeric:
            draft.metadata.append(d.Guess({"name": header, "column": header}, "text"))
        elif header in sparse or header == goal:
            draft.offline.append(d.variable(header, column, files, online=False))
        else:
            draft.online.append(d.variable(header, column, files, online=True))
    unique(draft)
    target_entry = next(g for g in draft.offline if g.entry["column"] == goal)
    draft.target = d.Guess({"target": target_entry.entry["name"]}, why)
    draft.rules = d.batch_rules(files, time)
    text = render(draft)
    DatasetSpec.model_validate(yaml.safe_load(text))  # a draft that fails its own schema is a bug
    return text


def unique(draft: d.Draft) -> None:
    """Names unique over variables and metadata (metadata keeps a valid identifier too)."""
    for meta in draft.metadata:
        meta.entry["name"] = canonical_name(meta.entry["column"], 0)
    entries = [g.entry for g in [*draft.online, *draft.offline, *draft.metadata]]
    for entry, name in zip(entries, unique_names([e["name"] for e in entries]), strict=True):
        entry["name"] = name


def scalar(value: Any) -> str:
    """A YAML flow scalar: plain when YAML reads it back as the same string, else quoted."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return number(float(value))
    if isinstance(value, list):
        return "[" + ", ".join(scalar(v) for v in value) + "]"
    text = str(value)
    plain = any(c.isalnum() for c in text) and all(c.isalnum() or c in "_./-³µ" for c in text)
    if plain and yaml.safe_load(text) == text:
        return text
    return json.dumps(text, ensure_ascii=False)


def number(value: float) -> str:
    """Without an exponent (YAML 1.1 reads '1e-06' as text) and without float noise."""
    if value == int(value) and abs(value) < 1e15:
        return str(int(value))
    decimals = max(0, 6 - math.floor(math.log10(abs(value))))
    return f"{value:.{decimals}f}".rstrip("0").rstrip(".")


def line(text: str, note: str) -> str:
    return f"{text.ljust(COMMENT_AT)}  # {note}" if note else text


def flow(entry: dict[str, Any]) -> str:
    return "{" + ", ".join(f"{k}: {scalar(v)}" for k, v in entry.items()) + "}"


def render(draft: d.Draft) -> str:
    out = [
        "# Dataset spec drafted by `bioprocessml spec draft`: every guess has a comment. Check",
        "# them (units, roles, ranges, which columns a plant measures online), then run",
        "# `bioprocessml spec check` on this file and `bioprocessml inspect --spec` on a batch file.",
        f"name: {scalar(draft.name)}",
        f"description: {scalar(draft.description)}",
        "",
        "batch_id:",
        *[
            line(f"  {k}: {scalar(v)}", draft.batch_id.note)
            for k, v in draft.batch_id.entry.items()
        ],
        "",
        "time:",
        line(f"  column: {scalar(draft.time.entry['column'])}", ""),
        line(f"  unit: {scalar(draft.time.entry['unit'])}", draft.time.note),
        *[line(f"  format: {scalar(v)}", "") for k, v in draft.time.entry.items() if k == "format"],
        "",
        "online:" + ("" if draft.online else " []"),
        *[line(f"  - {flow(g.entry)}", g.note) for g in draft.online],
        "",
        "offline:",
        *[line(f"  - {flow(g.entry)}", g.note) for g in draft.offline],
        "",
        line(f"target: {scalar(draft.target.entry['target'])}", draft.target.note),
        "",
        "metadata:" + ("" if draft.metadata else " []"),
        *[line(f"  - {flow(g.entry)}", g.note) for g in draft.metadata],
        "",
        line(f"csv: {flow(draft.csv.model_dump())}", "dialect sniffed from the first file"),
        "",
        "rules:",
        *[line(f"  {k}: {scalar(v)}", g.note) for g in draft.rules for k, v in g.entry.items()],
    ]
    if draft.left_out:
        out += ["", "# Left out:", *[f"#   {note}" for note in draft.left_out]]
    return "\n".join(out) + "\n"
