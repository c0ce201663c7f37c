"""Tasks: the ordered steps of continual learning, each a disjoint set of types."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from sqlalchemy import func, select
from sqlalchemy.orm import Session, selectinload

from conpet.store.errors import NotFoundError, StoreError
from conpet.store.models import KnowledgeType, Task, utcnow
from conpet.store.records import TaskRecord
from conpet.store.repositories._common import TypeRef, get_types

if TYPE_CHECKING:
    from conpet.store.db import Database


def task_record(t: Task) -> TaskRecord:
    types = sorted(t.types, key=lambda k: k.id)
    return TaskRecord(id=t.id, index=t.index, name=t.name, frozen=t.frozen,
                      type_ids=tuple(k.id for k in types), type_names=tuple(k.name for k in types),
                      created_at=t.created_at, frozen_at=t.frozen_at)


def _get_task(s: Session, task_id: int) -> Task:
    t = s.get(Task, task_id)
    if t is None:
        raise NotFoundError(f"there is no task with id {task_id}")
    return t


def _claim(s: Session, task: Task, types: list[KnowledgeType]) -> None:
    taken = [k for k in types if k.task_id is not None and k.task_id != task.id]
    if taken:
        names = ", ".join(f"{k.name!r} (task {k.task.index if k.task else k.task_id})" for k in taken)
        raise StoreError(f"types already belong to a task (tasks are disjoint): {names}")
    for k in types:
        k.task = task


class TaskRepository:
    def __init__(self, db: Database) -> None:
        self._db = db

    def list(self) -> list[TaskRecord]:
        with self._db.read() as s:
            rows = s.scalars(select(Task).options(selectinload(Task.types)).order_by(Task.index))
            return [task_record(t) for t in rows]

    def get(self, task_id: int) -> TaskRecord:
        with self._db.read() as s:
            return task_record(_get_task(s, task_id))

    def by_index(self, index: int) -> TaskRecord | None:
        with self._db.read() as s:
            t = s.scalar(select(Task).where(Task.index == index))
            return task_record(t) if t is not None else None

    def create_next(self, types: Iterable[TypeRef], *, name: str = "") -> TaskRecord:
        """Task number max+1 holding ``types`` (live types that no task holds yet)."""
        with self._db.transaction() as s:
            rows = get_types(s, types)
            if not rows:
                raise StoreError("a task needs at least one type")
            index = int(s.scalar(select(func.max(Task.index))) or 0) + 1
            task = Task(index=index, name=name or f"Task {index}")
            s.add(task)
            s.flush()
            _claim(s, task, rows)
            s.flush()
            return task_record(task)

    def add_types(self, task_id: int, types: Iterable[TypeRef]) -> TaskRecord:
        with self._db.transaction() as s:
            task = _get_task(s, task_id)
            if task.frozen:
                raise StoreError(f"task {task.index} is frozen (its modules are trained); start a new task")
            _claim(s, task, get_types(s, types))
            s.flush()
            return task_record(task)

    def freeze(self, task_id: int) -> TaskRecord:
        with self._db.transaction() as s:
            task = _get_task(s, task_id)
            if task.frozen:  # two trainings of one task: the second must not record a second model for it
                raise StoreError(f"task {task.index} is already frozen (another training learnt it first)")
            task.frozen = True
            task.frozen_at = utcnow()
            return task_record(task)
