"""Task sequences: which types each task brings, and each type's train/valid/test examples.

Everything here is deterministic given the seed: inputs are sorted before any seeded shuffle, and the
shuffles use ``random.Random`` seeded from explicit strings (never ``hash()``, which varies per run), so
the same seed gives the same tasks and splits on any machine, in any run, and whatever the input order.
"""

from __future__ import annotations

import hashlib
import random
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from conpet.core.errors import ConpetError
from conpet.data.example import Example


class SplitError(ConpetError, ValueError):
    """An impossible or inconsistent task/split request (names what is wrong)."""


@dataclass(frozen=True, slots=True)
class TaskData:
    """One task of a sequence: its index (0-based), its types and its examples."""

    index: int
    types: tuple[str, ...]
    train: tuple[Example, ...]
    valid: tuple[Example, ...]
    test: tuple[Example, ...]

    def __post_init__(self) -> None:
        for name in ("types", "train", "valid", "test"):
            object.__setattr__(self, name, tuple(getattr(self, name)))


TaskSplit = TaskData  # the name used in early notes


def _rng(seed: int | str, *parts: str) -> random.Random:
    key = "\x1f".join([str(seed), *parts]).encode("utf-8")
    return random.Random(int.from_bytes(hashlib.sha256(key).digest()[:8], "big"))


def split_types_random(types: Iterable[str], k: int, seed: int) -> list[tuple[str, ...]]:
    """Split types into ``k`` clusters at random (the paper's task sequences).

    The types are sorted, shuffled with ``random.Random(seed)`` and cut into ``k`` consecutive clusters
    whose sizes differ by at most one (the first ``n % k`` clusters get the extra type). Each cluster's
    types are returned sorted. Duplicates in ``types`` are an error.
    """
    items = list(types)
    unique = sorted(set(items))
    if len(unique) != len(items):
        dup = sorted({t for t in items if items.count(t) > 1})
        raise SplitError(f"duplicate type names: {dup}")
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise SplitError(f"the number of tasks must be a positive integer, got {k!r}")
    if k > len(unique):
        raise SplitError(f"cannot split {len(unique)} types into {k} non-empty tasks")
    random.Random(seed).shuffle(unique)
    size, extra = divmod(len(unique), k)
    out: list[tuple[str, ...]] = []
    pos = 0
    for i in range(k):
        n = size + (1 if i < extra else 0)
        out.append(tuple(sorted(unique[pos : pos + n])))
        pos += n
    return out


def split_types_by(
    examples: Iterable[Example], key: Callable[[Example], str | None] = lambda e: e.group
) -> list[tuple[str, ...]]:
    """One task per value of ``key`` (Few-NERD's coarse type by default), tasks sorted by that value.

    Every example of one type must have the same key value, and no key may be None.
    """
    group_of: dict[str, str] = {}
    for ex in examples:
        g = key(ex)
        if g is None:
            raise SplitError(f"example {ex.id} (type {ex.label!r}) has no group to split by")
        g = str(g)
        old = group_of.setdefault(ex.label, g)
        if old != g:
            raise SplitError(f"type {ex.label!r} appears in two groups ({old!r} and {g!r})")
    if not group_of:
        raise SplitError("no examples to split")
    tasks: dict[str, list[str]] = defaultdict(list)
    for label, g in group_of.items():
        tasks[g].append(label)
    return [tuple(sorted(tasks[g])) for g in sorted(tasks)]


def split_types_explicit(
    lists: Iterable[Iterable[str]], known_types: Iterable[str] | None = None
) -> list[tuple[str, ...]]:
    """Validate an explicit task list: every task non-empty, no type twice (within or across tasks).

    With ``known_types``, every named type must be one of them. The order is kept as given.
    """
    out: list[tuple[str, ...]] = []
    seen: dict[str, int] = {}
    known = set(known_types) if known_types is not None else None
    for i, group in enumerate(lists):
        if isinstance(group, str):
            raise SplitError(f"task {i}: expected a list of type names, got the string {group!r}")
        types = tuple(group)
        if not types:
            raise SplitError(f"task {i} has no types")
        for t in types:
            if not isinstance(t, str) or not t:
                raise SplitError(f"task {i}: type names must be non-empty strings, got {t!r}")
            if t in seen:
                where = "twice in that task" if seen[t] == i else f"also in task {seen[t]}"
                raise SplitError(f"task {i}: type {t!r} is {where} (tasks must be disjoint)")
            if known is not None and t not in known:
                raise SplitError(f"task {i}: unknown type {t!r}")
            seen[t] = i
        out.append(types)
    if not out:
        raise SplitError("no tasks given")
    return out


def _counts(n: int, ratios: tuple[int | float, int | float, int | float]) -> tuple[int, int, int]:
    if n < 3:
        return n, 0, 0
    total = float(sum(ratios))
    _, rv, rt = ratios
    n_valid = int(n * rv / total + 0.5)
    n_test = int(n * rt / total + 0.5)
    if rv > 0:
        n_valid = max(1, n_valid)
    if rt > 0:
        n_test = max(1, n_test)
    while n - n_valid - n_test < 1:  # keep at least one training example
        if n_valid >= n_test and n_valid > (1 if rv > 0 else 0):
            n_valid -= 1
        elif n_test > (1 if rt > 0 else 0):
            n_test -= 1
        else:
            break
    return n - n_valid - n_test, n_valid, n_test


def split_examples(
    examples: Iterable[Example], seed: int, ratios: Sequence[int | float] = (8, 1, 1)
) -> tuple[list[Example], list[Example], list[Example]]:
    """Split examples into (train, valid, test) per type, in proportion ``ratios``.

    Per type, the examples are sorted by id and shuffled with a generator seeded by (seed, type), so the
    split of one type depends only on its own examples and the seed, not on the input order or on which
    other types are present. Counts are rounded half up; a type with at least 3 examples gets at least one
    valid and one test example (where that ratio is not 0) and keeps at least one for training; a type with
    fewer than 3 examples goes wholly to training. The lists are ordered by type name, then shuffle order.
    Duplicate example ids are an error.
    """
    r = tuple(ratios)
    if len(r) != 3 or any(isinstance(x, bool) or not isinstance(x, (int, float)) or x < 0 for x in r):
        raise SplitError(f"ratios must be three non-negative numbers (train, valid, test), got {ratios!r}")
    if r[0] <= 0:
        raise SplitError(f"the training ratio must be positive, got {ratios!r}")
    by_type: dict[str, list[Example]] = defaultdict(list)
    seen: set[str] = set()
    for ex in examples:
        if ex.id in seen:
            raise SplitError(f"duplicate example id {ex.id} (type {ex.label!r})")
        seen.add(ex.id)
        by_type[ex.label].append(ex)
    train: list[Example] = []
    valid: list[Example] = []
    test: list[Example] = []
    for label in sorted(by_type):
        items = sorted(by_type[label], key=lambda e: e.id)
        _rng(seed, "split", label).shuffle(items)
        n_train, n_valid, _ = _counts(len(items), r)  # type: ignore[arg-type]
        train.extend(items[:n_train])
        valid.extend(items[n_train : n_train + n_valid])
        test.extend(items[n_train + n_valid :])
    return train, valid, test


def build_tasks(
    examples: Iterable[Example],
    type_groups: Sequence[Sequence[str]],
    seed: int,
    ratios: Sequence[int | float] = (8, 1, 1),
) -> list[TaskData]:
    """The task sequence: task i brings ``type_groups[i]`` with those types' train/valid/test examples.

    ``type_groups`` is validated as by ``split_types_explicit``; every named type must have examples.
    Examples whose type is in no task are left out (a sequence over a subset of the types is allowed).
    """
    groups = split_types_explicit(type_groups)
    task_of = {t: i for i, g in enumerate(groups) for t in g}
    chosen = [ex for ex in examples if ex.label in task_of]
    present = {ex.label for ex in chosen}
    missing = sorted(set(task_of) - present)
    if missing:
        raise SplitError(f"no examples for type(s) {missing}")
    train, valid, test = split_examples(chosen, seed, ratios)
    parts: list[tuple[list[Example], list[Example], list[Example]]] = [([], [], []) for _ in groups]
    for which, items in enumerate((train, valid, test)):
        for ex in items:
            parts[task_of[ex.label]][which].append(ex)
    return [TaskData(i, groups[i], *parts[i]) for i in range(len(groups))]
