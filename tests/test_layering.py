"""`conpet` must import neither `app` nor Qt: checked on the source, and on a live import."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FORBIDDEN = ("app", "PySide6", "PyQt5", "PyQt6", "shiboken6")


def _imported_roots(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    roots: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            roots.update(a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            roots.add(node.module.split(".")[0])
    return roots


def test_conpet_sources_import_no_app_or_qt():
    offenders = []
    for path in sorted((ROOT / "conpet").rglob("*.py")):
        bad = _imported_roots(path) & set(FORBIDDEN)
        if bad:
            offenders.append(f"{path.relative_to(ROOT)} imports {sorted(bad)}")
    assert not offenders, "\n".join(offenders)


def test_importing_conpet_loads_no_qt():
    code = (
        "import sys, pkgutil, importlib, conpet\n"
        "for m in pkgutil.walk_packages(conpet.__path__, 'conpet.'):\n"
        "    if '.migrations' in m.name: continue\n"
        "    importlib.import_module(m.name)\n"
        f"bad = [n for n in sys.modules if n.split('.')[0] in {FORBIDDEN!r}]\n"
        "print(bad); sys.exit(1 if bad else 0)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_checker_catches_a_violation(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text("from app.main_window import MainWindow\nimport PySide6.QtCore\n")
    assert _imported_roots(bad) >= {"app", "PySide6"}


# What each package of `conpet` may import (besides itself); each package's __init__ says the same in words.
# Only `project`, `bench` and `cli` know both the store and the methods; only `cli` imports `bench` (the benches
# are plain functions, their commands' parsing is in `cli`); nothing imports `cli`.
ALLOWED: dict[str, set[str]] = {
    "core": set(),
    "data": {"core"},
    "model": {"core", "data"},
    "store": {"core", "data"},
    "methods": {"core", "data", "model"},
    "suggest": {"core", "data", "model", "methods"},
    "eval": {"core", "data", "model", "methods", "suggest"},
    "bundle": {"core", "data", "model", "methods", "suggest", "eval"},
    "project": {"core", "data", "model", "methods", "suggest", "eval", "bundle", "store"},
    "bench": {"core", "data", "model", "methods", "suggest", "eval", "bundle", "store", "project"},
    "cli": {"core", "data", "model", "methods", "suggest", "eval", "bundle", "store", "project", "bench"},
}


def _conpet_package_imports(path: Path) -> set[str]:
    """The `conpet` sub-packages a file imports, lazy imports inside functions included."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    names: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.append(node.module)
    return {n.split(".")[1] for n in names if n.startswith("conpet.") and n.count(".") >= 1}


def _layering_offences(root: Path) -> list[str]:
    offences = []
    for path in sorted(root.rglob("*.py")):
        rel = path.relative_to(root)
        if len(rel.parts) < 2 or "migrations" in rel.parts:
            continue
        package = rel.parts[0]
        bad = _conpet_package_imports(path) - ALLOWED.get(package, set()) - {package}
        if bad:
            offences.append(f"conpet/{rel} ({package}) imports {sorted(bad)}")
    return offences


def test_every_conpet_package_is_in_the_layering_table():
    packages = {p.name for p in (ROOT / "conpet").iterdir() if (p / "__init__.py").exists()}
    assert packages == set(ALLOWED)


def test_packages_import_only_the_layers_below_them():
    assert not _layering_offences(ROOT / "conpet")


def test_layering_check_catches_an_upward_import(tmp_path):
    (tmp_path / "methods").mkdir()
    (tmp_path / "methods" / "x.py").write_text("def f():\n    from conpet.store import Project\n")
    assert _layering_offences(tmp_path) == ["conpet/methods/x.py (methods) imports ['store']"]


def test_only_the_cli_imports_the_benches_and_nothing_imports_the_cli():
    assert {p for p, allowed in ALLOWED.items() if "bench" in allowed} == {"cli"}
    assert not any("cli" in allowed for allowed in ALLOWED.values())


def _argument_parsers(root: Path) -> list[str]:
    """Files outside `cli/` that import argparse: command-line parsing belongs to `conpet.cli`."""
    return [f"conpet/{path.relative_to(root)}" for path in sorted(root.rglob("*.py"))
            if path.relative_to(root).parts[0] != "cli" and "argparse" in _imported_roots(path)]


def test_argument_parsing_lives_in_the_cli_package():
    assert not _argument_parsers(ROOT / "conpet")


def test_argument_parsing_check_catches_a_parser_elsewhere(tmp_path):
    (tmp_path / "bench").mkdir()
    (tmp_path / "bench" / "x.py").write_text("import argparse\n")
    (tmp_path / "cli").mkdir()
    (tmp_path / "cli" / "y.py").write_text("import argparse\n")
    assert _argument_parsers(tmp_path) == ["conpet/bench/x.py"]
