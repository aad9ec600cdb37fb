"""Imports point downward: pure layers never reach I/O or the composition on top."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "monitord"

# module prefix -> monitord modules it must not import
FORBIDDEN = {
    "monitord.model": ("monitord.",),
    "monitord.values": ("monitord.config", "monitord.checks", "monitord.probes", "monitord.runner"),
    "monitord.expressions": (
        "monitord.config",
        "monitord.checks",
        "monitord.probes",
        "monitord.runner",
    ),
    "monitord.checks": (
        "monitord.probes",
        "monitord.config",
        "monitord.runner",
        "monitord.scheduler",
    ),
    "monitord.probes": (
        "monitord.checks",
        "monitord.config",
        "monitord.expressions",
        "monitord.runner",
    ),
    "monitord.config": (
        "monitord.probes",
        "monitord.checks",
        "monitord.runner",
        "monitord.scheduler",
    ),
    "monitord.runner": ("monitord.config", "monitord.scheduler", "monitord.daemon"),
    "monitord.scheduler": ("monitord.daemon", "monitord.probes", "monitord.checks"),
    "monitord.tracker": ("monitord.",),  # pure: model only
    "monitord.metrics": ("monitord.config", "monitord.probes", "monitord.store", "monitord.api"),
    "monitord.store": ("monitord.config", "monitord.probes", "monitord.scheduler", "monitord.api"),
    "monitord.heartbeat": ("monitord.config", "monitord.monitor", "monitord.api"),
    "monitord.watch": ("monitord.monitor", "monitord.daemon", "monitord.api"),
    "monitord.monitor": ("monitord.api", "monitord.daemon"),
    "monitord.api": ("monitord.daemon",),
    "monitord.sdnotify": ("monitord.",),
    "monitord.events": (
        "monitord.api",
        "monitord.daemon",
        "monitord.monitor",
        "monitord.probes",
        "monitord.checks",
        "monitord.runner",
        "monitord.scheduler",
    ),
    "monitord.events.body": ("monitord.",),  # pure: model only
    "monitord.batch": ("monitord.",),  # pure: model only
    "monitord.envelope": ("monitord.",),
    "monitord.jsonout": ("monitord.",),  # a leaf: JSON writing only
    "monitord.scenario_files": (
        "monitord.api",
        "monitord.monitor",
        "monitord.daemon",
        "monitord.probes",
        "monitord.store",
    ),
    "monitord.httpbase": ("monitord.api", "monitord.daemon"),
    "monitord.receiver": ("monitord.api", "monitord.daemon", "monitord.store"),
    "monitord.scenario_api": ("monitord.api", "monitord.daemon", "monitord.store"),
}
# Pure modules may still import the model at the bottom.
ALLOWED = {
    "monitord.tracker": ("monitord.model",),
    "monitord.sdnotify": (),
    "monitord.events.body": ("monitord.model",),
    "monitord.batch": ("monitord.model",),
    "monitord.envelope": ("monitord.jsonout",),
    "monitord.jsonout": (),
}
NOBODY_IMPORTS = ("monitord.cli", "monitord.__main__")


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return {n for n in names if n == "monitord" or n.startswith("monitord.")}


MODULES = {module_name(p): imports_of(p) for p in sorted(PACKAGE.rglob("*.py"))}


@pytest.mark.parametrize("module", sorted(MODULES))
def test_imports_point_downward(module: str) -> None:
    for prefix, forbidden in FORBIDDEN.items():
        if module == prefix or module.startswith(prefix + "."):
            allowed = ALLOWED.get(prefix, ())
            bad = {
                i
                for i in MODULES[module]
                if i.startswith(forbidden) and not i.startswith((prefix, *allowed))
            }
            assert not bad, f"{module} imports {sorted(bad)}"
    importers = {i for i in MODULES[module] if i in NOBODY_IMPORTS}
    if module != "monitord.__main__":
        assert not importers, f"{module} imports {sorted(importers)}"


def test_the_table_names_real_modules() -> None:
    for prefix in FORBIDDEN:
        assert any(m == prefix or m.startswith(prefix + ".") for m in MODULES), prefix
