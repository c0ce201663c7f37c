"""The importer's side of relation argument types (``conpet.store.repositories.arguments``): a file's
declarations join the project's lists, and relations that fall outside the lists refuse the file.

A declared list is taken where the project's list for that role is empty, kept where they are equal;
where the file does not restrict a role the project's list stays; two different lists refuse the file
(the user decides which one holds). Every relation of the file's sentences (old and new) is then checked
against the lists with the mention types the import leaves, so that an import never makes a gold
relation the labelling view would refuse.
"""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from conpet.core.errors import DataFormatError
from conpet.data.example import Span
from conpet.data.jsonl import RelationTypeArguments
from conpet.store.errors import StoreError
from conpet.store.models import KnowledgeType
from conpet.store.repositories.arguments import allowed_ids, narrowing_problem, replace_arguments

Allowed = dict[int, tuple[set[int], set[int]]]  # relation type id -> (head ids, tail ids)
LiveKey = tuple[str, tuple[Span, ...], int]  # (kind, spans, type id), as the importer keys annotations


def apply_declarations(s: Session, path: Path, declarations: list[RelationTypeArguments],
                       type_ids: dict[tuple[str, str], int]) -> None:
    for d in declarations:
        t = s.get(KnowledgeType, type_ids[("relation", d.type)])
        assert t is not None
        for role, names in (("head", d.head_types), ("tail", d.tail_types)):
            wanted = {type_ids[("entity", n)] for n in names}
            have = allowed_ids(t, role)
            if not wanted or wanted == have:
                continue
            if have:
                raise DataFormatError(path, (
                    f"relation type {d.type!r} takes a {role} of type {', '.join(sorted(names))} in this file, "
                    f"but {', '.join(sorted(_names(s, have)))} in the project; make the two agree (the Types "
                    "view, or the file's relation_type line) and import again"))
            try:
                narrowing_problem(s, t, role, wanted)
            except StoreError as exc:
                raise DataFormatError(path, str(exc)) from None
            replace_arguments(s, t, role, [s.get(KnowledgeType, i) for i in sorted(wanted)])


def allowed_lists(s: Session) -> Allowed:
    """The lists of every relation type that restricts something."""
    out: Allowed = {}
    q = select(KnowledgeType).options(selectinload(KnowledgeType.arguments)).where(KnowledgeType.kind == "relation")
    for t in s.scalars(q):
        if t.arguments:
            out[t.id] = (allowed_ids(t, "head"), allowed_ids(t, "tail"))
    return out


def sentence_problems(allowed: Allowed, live: dict[LiveKey, str], text: str, names: dict[int, str]) -> list[str]:
    """Each gold relation of one sentence whose head or tail mention has a type its relation type refuses."""
    if not allowed:
        return []
    typed = {spans[0]: tid for (kind, spans, tid), status in live.items() if kind == "entity" and status == "gold"}
    out: list[str] = []
    for (kind, spans, tid), status in live.items():
        if kind != "relation" or status != "gold" or tid not in allowed:
            continue
        for role, span, ids in zip(("head", "tail"), spans, allowed[tid], strict=True):
            entity = typed.get(span)
            if ids and entity is not None and entity not in ids:
                out.append(f"{names[tid]!r} takes a {role} of type {' or '.join(sorted(names[i] for i in ids))}, "
                           f"and the {role} {text[span.start:span.end]!r} is {names[entity]!r}")
    return out


def _names(s: Session, ids: set[int]) -> list[str]:
    return [t.name for t in s.scalars(select(KnowledgeType).where(KnowledgeType.id.in_(list(ids))))]
