"""Named benchmark data sets and loading any supported file.

Named sets (under the data root, see ``find_data_root``):

========== ============================================== ============ =============
name       files                                          kind         default tasks
========== ============================================== ============ =============
fewrel80   fewrel/fewrel80_lower.json + fewrel/pid2name   relation     10 (random)
fewrel16   fewrel/val_wiki.json + fewrel/pid2name         relation     4 (random)
fewnerd    fewnerd/inter_dev.txt + fewnerd/inter_test.txt entity       10 (random) or
                                                                       "coarse" (8)
========== ============================================== ============ =============

Any other argument is a file path; the reader is chosen by extension (``.json`` FewRel, with a
``pid2name.json`` beside it used for names when present; ``.txt``/``.tsv``/``.conll`` Few-NERD;
``.jsonl`` the project's JSONL), else by sniffing the content.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from conpet.core.errors import ConpetError, DataFormatError
from conpet.data._io import read_text
from conpet.data.example import Example
from conpet.data.fewnerd import read_fewnerd
from conpet.data.fewrel import read_fewrel
from conpet.data.jsonl import read_jsonl
from conpet.data.tasks import TaskData, build_tasks, split_types_by, split_types_random

_REPO_ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class _Named:
    files: tuple[str, ...]
    pid2name: str | None
    default_k: int


NAMED: dict[str, _Named] = {
    "fewrel80": _Named(("fewrel/fewrel80_lower.json",), "fewrel/pid2name.json", 10),
    "fewrel16": _Named(("fewrel/val_wiki.json",), "fewrel/pid2name.json", 4),
    "fewnerd": _Named(("fewnerd/inter_dev.txt", "fewnerd/inter_test.txt"), None, 10),
}


@dataclass(frozen=True)
class Dataset(Sequence[Example]):
    """A loaded data set. It is also a read-only sequence of its examples."""

    name: str
    examples: tuple[Example, ...]
    default_k: int

    @property
    def types(self) -> list[str]:
        return sorted({e.label for e in self.examples})

    @property
    def kind(self) -> str:
        kinds = {e.kind for e in self.examples}
        return kinds.pop() if len(kinds) == 1 else "mixed"

    def default_tasks(self, k: int | str | None = None, seed: int = 0) -> list[tuple[str, ...]]:
        """The task types: ``k`` random clusters (default ``default_k``), or ``"coarse"`` to split by group."""
        if k == "coarse":
            return split_types_by(self.examples)
        if isinstance(k, str):
            raise ConpetError(f"unknown task split {k!r}: give a number of tasks or 'coarse'")
        return split_types_random(self.types, self.default_k if k is None else k, seed)

    def tasks(self, k: int | str | None = None, seed: int = 0) -> list[TaskData]:
        """The full task sequence (types and 8:1:1 example splits) for ``default_tasks(k, seed)``."""
        return build_tasks(self.examples, self.default_tasks(k, seed), seed)

    def __len__(self) -> int:
        return len(self.examples)

    def __getitem__(self, i):  # type: ignore[override]
        return self.examples[i]

    def __iter__(self) -> Iterator[Example]:
        return iter(self.examples)


def data_root_candidates() -> list[Path]:
    """Where the named sets are looked for, in order: $CONPET_DATA, ./../shared/data, <repo>/../shared/data."""
    out: list[Path] = []
    env = os.environ.get("CONPET_DATA")
    if env:
        out.append(Path(env))
    out.append(Path.cwd() / ".." / "shared" / "data")
    out.append(_REPO_ROOT.parent / "shared" / "data")
    return out


def find_data_root(data_root: str | os.PathLike[str] | None = None) -> Path:
    if data_root is not None:
        root = Path(data_root)
        if not root.is_dir():
            raise ConpetError(f"data folder {root} does not exist")
        return root
    candidates = data_root_candidates()
    for c in candidates:
        if c.is_dir():
            return c.resolve()
    where = ", ".join(str(c) for c in candidates)
    raise ConpetError(f"benchmark data folder not found; looked in: {where} (set CONPET_DATA to its path)")


def load_named(
    name_or_path: str | os.PathLike[str], data_root: str | os.PathLike[str] | None = None
) -> Dataset:
    """Load a named benchmark set (``fewrel80``, ``fewrel16``, ``fewnerd``) or a data file."""
    key = str(name_or_path)
    if key in NAMED and not Path(key).is_file():
        spec = NAMED[key]
        root = find_data_root(data_root)
        paths = [root / f for f in spec.files]
        for p in paths + ([root / spec.pid2name] if spec.pid2name else []):
            if not p.is_file():
                raise ConpetError(f"data set {key!r}: file {p} is missing (data folder {root})")
        examples: list[Example] = []
        for p in paths:
            if spec.pid2name:
                examples.extend(read_fewrel(p, root / spec.pid2name))
            else:
                examples.extend(read_fewnerd(p))
        return Dataset(key, tuple(examples), spec.default_k)
    path = Path(name_or_path)
    if not path.exists():
        raise ConpetError(f"{key!r} is neither a named data set ({', '.join(NAMED)}) nor an existing file")
    examples = read_any(path)
    n_types = len({e.label for e in examples})
    return Dataset(path.stem, tuple(examples), max(1, min(10, n_types)))


def read_any(path: str | os.PathLike[str]) -> list[Example]:
    """Read a data file with the reader that its extension (or, failing that, its content) calls for."""
    p = Path(path)
    if p.is_dir():
        raise DataFormatError(p, "is a folder; give a data file (.json, .txt/.tsv, .jsonl)")
    ext = p.suffix.lower()
    if ext == ".jsonl":
        return read_jsonl(p)
    if ext == ".json":
        return _read_fewrel_with_names(p)
    if ext in (".txt", ".tsv", ".conll"):
        return read_fewnerd(p)
    text = read_text(p)
    first = next(line for line in text.splitlines() if line.strip()).strip()
    if first.startswith("{"):
        try:
            obj = json.loads(first)
        except json.JSONDecodeError:
            return _read_fewrel_with_names(p)
        return read_jsonl(p) if isinstance(obj, dict) and "text" in obj else _read_fewrel_with_names(p)
    if "\t" in first:
        return read_fewnerd(p)
    raise DataFormatError(p, "unknown data format: expected FewRel JSON, Few-NERD token<TAB>tag or JSONL", 1)


def _read_fewrel_with_names(p: Path) -> list[Example]:
    names = p.with_name("pid2name.json")
    return read_fewrel(p, names if names.is_file() and names != p else None)
