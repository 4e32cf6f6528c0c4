"""The import graph points one way: doors → flows → tasks → stages → ground.

The ground (settings, spec, spec_draft, units, dataset, events, errors) imports no stage; a stage (ingest,
simulation, serving, stack, models, monitoring) never imports tasks, flows or a door (the CLI,
`service.py`); tasks never import flows. Imports inside functions count too.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from bioprocessml.settings import PROJECT_ROOT

GROUND = {"settings", "spec", "spec_draft", "units", "dataset", "events", "errors"}
RANKS = {"ground": 0, "stage": 1, "tasks": 2, "flows": 3, "door": 4}
PACKAGES = ("bioprocessml", "models", "monitoring", "tasks", "flows")


def layer_of(module: str) -> str | None:
    """The layer of a project module name, None for a third-party one."""
    parts = module.split(".")
    if parts[0] == "service":
        return "door"
    if parts[0] in ("tasks", "flows"):
        return parts[0]
    if parts[0] in ("models", "monitoring"):
        return "stage"
    if parts[0] != "bioprocessml":
        return None
    if len(parts) == 1 or parts[1] in GROUND:
        return "ground"
    return "door" if parts[1] == "cli" else "stage"


def module_name(root: Path, path: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported(tree: ast.AST) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def layer_violations(root: Path) -> list[str]:
    """Every import that points up the layers, as 'importer (layer) → imported (layer)'."""
    files = [p for pkg in PACKAGES for p in (root / pkg).rglob("*.py")]
    files += [root / "service.py"] if (root / "service.py").exists() else []
    found = []
    for path in files:
        importer = module_name(root, path)
        own = layer_of(importer)
        assert own is not None, importer
        for name in sorted(imported(ast.parse(path.read_text()))):
            other = layer_of(name)
            if other is not None and RANKS[other] > RANKS[own]:
                found.append(f"{importer} ({own}) → {name} ({other})")
    return sorted(set(found))


def test_the_project_imports_point_one_way() -> None:
    assert layer_violations(PROJECT_ROOT) == []


@pytest.mark.parametrize(
    ("path", "source", "words"),
    [
        ("bioprocessml/spec.py", "from models.base import TASKS\n", "bioprocessml.spec (ground)"),
        ("monitoring/x.py", "def f():\n    import flows.retrain\n", "→ flows.retrain (flows)"),
        ("bioprocessml/ingest/x.py", "from tasks import ingest\n", "→ tasks.ingest (tasks)"),
        ("models/x.py", "from bioprocessml.cli.app import app\n", "→ bioprocessml.cli.app (door)"),
    ],
)
def test_an_upward_import_is_caught(tmp_path: Path, path: str, source: str, words: str) -> None:
    target = tmp_path / path
    target.parent.mkdir(parents=True)
    target.write_text(source)
    assert any(words in v for v in layer_violations(tmp_path))
