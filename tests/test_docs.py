"""The documents name only code that exists: every `conpet/...` path (and every path under app/, tests/,
docs/ and resources/: the screenshots and result folders the README links to) and every `conpet.x.y` dotted
name in README.md and docs/ARCHITECTURE.md resolves to a file or folder of the repository, a dotted name to a
module (and its first part after the module to a name that module defines); README.md stays short, and
neither document points outside the repository."""

from __future__ import annotations

import ast
import re
from functools import cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCUMENTS = ("README.md", "docs/ARCHITECTURE.md")
README_MAX_LINES = 260

# Not preceded by a word character, '/' or '.', so that `~/.cache/conpet/backbones` and `people.conpet.zip`
# are not read as names of the package.
PATH_RE = re.compile(r"(?<![\w/.-])(?:conpet|app|tests|docs|resources)(?:/[\w-]+(?:\.\w+)?)+")
DOTTED_RE = re.compile(r"(?<![\w/.-])conpet(?:\.\w+)+")


def _module_file(parts: list[str]) -> Path | None:
    """The file of the module `conpet.<parts>` (a package's __init__.py), or None."""
    base = ROOT.joinpath("conpet", *parts)
    if (base / "__init__.py").is_file():
        return base / "__init__.py"
    if base.with_suffix(".py").is_file():
        return base.with_suffix(".py")
    return None


@cache
def _top_level_names(path: Path) -> frozenset[str]:
    """What a module defines or imports at its top level (classes, functions, assignments, imports)."""
    names: set[str] = set()
    for node in ast.parse(path.read_text(encoding="utf-8")).body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, ast.Assign):
            names.update(t.id for t in node.targets if isinstance(t, ast.Name))
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names.add(node.target.id)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names.update((a.asname or a.name).split(".")[0] for a in node.names)
    return frozenset(names)


def path_problem(name: str) -> str | None:
    """Why a path names nothing in the repository, or None when it exists."""
    return None if (ROOT / name).exists() else f"{name}: no such file or folder"


def dotted_problem(name: str) -> str | None:
    """Why `conpet.a.b[.attr]` names no module (or its first part after the module no name the module
    defines), or None when it resolves."""
    parts = name.split(".")[1:]
    depth = 0
    while depth < len(parts) and _module_file(parts[: depth + 1]) is not None:
        depth += 1
    if depth == 0:
        return f"{name}: no module conpet.{parts[0]}"
    if depth == len(parts):
        return None
    module = "conpet." + ".".join(parts[:depth])
    if parts[depth] not in _top_level_names(_module_file(parts[:depth])):
        return f"{name}: {module} has no module or name {parts[depth]!r}"
    return None


def name_problems(text: str) -> list[str]:
    """Every `conpet` path or dotted name in the text that does not resolve, with the reason."""
    problems = [path_problem(m.group(0)) for m in PATH_RE.finditer(text)]
    problems += [dotted_problem(m.group(0)) for m in DOTTED_RE.finditer(text)]
    return sorted({p for p in problems if p})


@pytest.mark.parametrize("document", DOCUMENTS)
def test_every_module_a_document_names_exists(document):
    text = (ROOT / document).read_text(encoding="utf-8")
    assert PATH_RE.search(text) or DOTTED_RE.search(text), f"{document} names no module: the check checks nothing"
    problems = name_problems(text)
    assert not problems, f"{document} names what does not exist:\n" + "\n".join(problems)


@pytest.mark.parametrize("document", DOCUMENTS)
def test_no_document_points_outside_the_repository(document):
    text = (ROOT / document).read_text(encoding="utf-8")
    assert "../shared" not in text, f"{document} points to ../shared, outside the repository"


def test_readme_is_short():
    lines = (ROOT / "README.md").read_text(encoding="utf-8").splitlines()
    assert len(lines) <= README_MAX_LINES, f"README.md has {len(lines)} lines (at most {README_MAX_LINES})"


def test_the_check_catches_made_up_names():
    text = (
        "`conpet/methods/teleport.py`, `conpet/oracle/`, `conpet.methods.teleport`, `conpet.oracle`, "
        "`conpet.methods.router.NoSuchRouter`, [shot](docs/screenshots/teleport.png); fine: "
        "`conpet/methods/router.py`, `conpet.methods.router`, [label](docs/screenshots/label.png), "
        "`conpet.methods.router.GaussianRouter.update`, `conpet.bundle.Bundle`, `~/.cache/conpet/x`, "
        "`people.conpet.zip`."
    )
    assert name_problems(text) == [
        "conpet.methods.router.NoSuchRouter: conpet.methods.router has no module or name 'NoSuchRouter'",
        "conpet.methods.teleport: conpet.methods has no module or name 'teleport'",
        "conpet.oracle: no module conpet.oracle",
        "conpet/methods/teleport.py: no such file or folder",
        "conpet/oracle: no such file or folder",
        "docs/screenshots/teleport.png: no such file or folder",
    ]
