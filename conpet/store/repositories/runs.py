"""Training runs: written by a worker thread (its own session per call) while the app reads."""

from __future__ import annotations

import json
import math
import os
import socket
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, suppress
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import select, text
from sqlalchemy.orm import Session

from conpet.core.errors import Cancelled, ConpetError
from conpet.store.errors import NotFoundError, StoreError
from conpet.store.models import RUN_STATUSES, Run, utcnow
from conpet.store.records import RunRecord

if TYPE_CHECKING:
    from conpet.store.db import Database

ACTIVE = ("queued", "running")
MAX_LOG_CHARS = 2_000_000  # the log keeps its tail beyond this
# A run owned by another machine (project on a shared drive) counts as dead after this much silence.
FOREIGN_HOST_STALE = timedelta(hours=1)


def _process_start_token(pid: int) -> str | None:
    """The process start time (Linux /proc), telling a live owner from a later process with its pid."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read().decode("ascii", "replace")
        fields = stat[stat.rindex(")") + 2:].split()
        if fields[0] in ("Z", "X"):  # zombie or dead
            return "dead"
        return fields[19]
    except (OSError, ValueError, IndexError):
        return None


def _owner() -> tuple[str, int, str | None]:
    pid = os.getpid()
    return socket.gethostname(), pid, _process_start_token(pid)


def owner() -> tuple[str, int, str | None]:
    """(host, process id, process start token) of this process: what a run or a lease records."""
    return _owner()


def process_alive(pid: int | None, started: str | None) -> bool:
    """Whether process ``pid`` of this host still runs and is the one that recorded ``started`` (a later
    process that got the same pid is not)."""
    if pid is None:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # exists, owned by someone else
    token = _process_start_token(pid)
    if token == "dead":
        return False
    return started is None or token is None or token == started


def _owner_alive(run: Run) -> bool:
    host, _, _ = _owner()
    if run.host != host:
        return utcnow() - run.updated_at < FOREIGN_HOST_STALE
    return process_alive(run.pid, run.pid_started)


def run_record(r: Run) -> RunRecord:
    return RunRecord(
        id=r.id, purpose=r.purpose, method=r.method, task_id=r.task_id, status=r.status,
        progress=r.progress, message=r.message, stage=r.stage, config=dict(r.config or {}),
        backbone=r.backbone, backbone_sha256=r.backbone_sha256,
        metrics=tuple(dict(m) for m in (r.metrics or [])), log=r.log, error=r.error,
        created_at=r.created_at, started_at=r.started_at, updated_at=r.updated_at,
        finished_at=r.finished_at, started_by=r.started_by,
    )


def _finite_or_none(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None  # JSON has no NaN/inf (SQLite's json functions refuse them)
    if isinstance(value, dict):
        return {k: _finite_or_none(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite_or_none(v) for v in value]
    return value


def _json_safe(value: Any, what: str) -> Any:
    """A plain-JSON copy (numpy numbers become floats; NaN and infinities become null)."""
    try:
        return _finite_or_none(json.loads(json.dumps(value, default=float)))
    except (TypeError, ValueError) as exc:
        raise StoreError(f"{what} must be JSON-serialisable: {exc}") from exc


def mark_dead_runs_interrupted(s: Session) -> list[int]:
    """Runs left queued/running by a process that no longer exists become 'interrupted'."""
    ids = []
    for run in s.scalars(select(Run).where(Run.status.in_(ACTIVE))):
        if not _owner_alive(run):
            run.status = "interrupted"
            run.error = run.error or "the process running it stopped (crash, kill or power loss)"
            run.message = "interrupted"
            run.finished_at = run.updated_at = utcnow()
            ids.append(run.id)
    return ids


# Append one JSON entry to a run's metrics list, in each database's own JSON functions.
_APPEND_METRICS = {
    "sqlite": "UPDATE runs SET metrics = json_insert(metrics, '$[#]', json(:entry)) WHERE id = :id",
    "postgresql": "UPDATE runs SET metrics = (metrics::jsonb || jsonb_build_array(CAST(:entry AS jsonb)))::json "
                  "WHERE id = :id",
}


class RunRepository:
    def __init__(self, db: Database) -> None:
        self._db = db

    # ----- reading
    def get(self, run_id: int) -> RunRecord:
        with self._db.read() as s:
            return run_record(self._get(s, run_id))

    def list(self, *, status: str | None = None, task_id: int | None = None,
             limit: int | None = None) -> list[RunRecord]:
        """Newest first."""
        with self._db.read() as s:
            q = select(Run).order_by(Run.id.desc())
            if status is not None:
                q = q.where(Run.status == status)
            if task_id is not None:
                q = q.where(Run.task_id == task_id)
            if limit is not None:
                q = q.limit(limit)
            return [run_record(r) for r in s.scalars(q)]

    def active(self) -> list[RunRecord]:
        with self._db.read() as s:
            return [run_record(r) for r in s.scalars(select(Run).where(Run.status.in_(ACTIVE)))]

    # ----- writing (each call is one short transaction)
    def start(self, method: str, *, config: Mapping[str, Any] | None = None, task_id: int | None = None,
              backbone: str = "", backbone_sha256: str | None = None, purpose: str = "train",
              queued: bool = False, author: str | None = None) -> RunRecord:
        """A new run owned by this process: 'running' (or 'queued' until ``mark_running``)."""
        with self._db.transaction() as s:
            host, pid, token = _owner()
            now = utcnow()
            run = Run(method=method, purpose=purpose, task_id=task_id,
                      status="queued" if queued else "running",
                      config=_json_safe(dict(config or {}), "a run's config"), backbone=backbone,
                      backbone_sha256=backbone_sha256, host=host, pid=pid, pid_started=token,
                      started_by=author or self._db.user,
                      started_at=None if queued else now, created_at=now, updated_at=now)
            s.add(run)
            s.flush()
            return run_record(run)

    def mark_running(self, run_id: int) -> RunRecord:
        with self._db.transaction() as s:
            run = self._active(s, run_id)
            host, pid, token = _owner()
            run.status, run.host, run.pid, run.pid_started = "running", host, pid, token
            run.started_at = run.updated_at = utcnow()
            return run_record(run)

    def update_progress(self, run_id: int, fraction: float, message: str = "", *, stage: str | None = None,
                        metrics: Mapping[str, Any] | None = None, step: int | None = None) -> None:
        """Progress 0..1 with a message; ``metrics`` (with its ``step``) is appended to the run's
        per-step metrics."""
        with self._db.transaction() as s:
            run = self._active(s, run_id)
            run.progress = min(max(float(fraction), 0.0), 1.0)
            run.message = message
            if stage is not None:
                run.stage = stage
            run.updated_at = utcnow()
            if metrics:
                entry = {"step": step, **_json_safe(dict(metrics), "metrics")}
                s.flush()
                # appended by the database itself: no re-serialising of a long run's whole history per step
                s.execute(text(_APPEND_METRICS[self._db.dialect]), {"entry": json.dumps(entry), "id": run_id})
                s.expire(run, ["metrics"])

    def append_log(self, run_id: int, text: str) -> None:
        with self._db.transaction() as s:
            run = self._get(s, run_id)
            log = run.log + (text if text.endswith("\n") else text + "\n")
            run.log = log[-MAX_LOG_CHARS:]
            run.updated_at = utcnow()

    def finish(self, run_id: int, message: str = "finished") -> RunRecord:
        return self._end(run_id, "finished", message=message, progress=1.0)

    def fail(self, run_id: int, error: str) -> RunRecord:
        return self._end(run_id, "failed", message="failed", error=error)

    def cancel(self, run_id: int, message: str = "cancelled by the user") -> RunRecord:
        return self._end(run_id, "cancelled", message=message)

    @contextmanager
    def recorded(self, run_id: int) -> Iterator[None]:
        """Ends the run as cancelled (on `Cancelled`) or failed (any other exception, with its text)
        when the block raises; the exception propagates. A run already ended is left as it is."""
        try:
            yield
        except Cancelled:
            with suppress(ConpetError):
                self.cancel(run_id)
            raise
        except BaseException as exc:
            with suppress(ConpetError):
                self.fail(run_id, f"{type(exc).__name__}: {exc}")
            raise

    def mark_interrupted(self, run_id: int, error: str = "interrupted") -> RunRecord:
        return self._end(run_id, "interrupted", message="interrupted", error=error)

    def _end(self, run_id: int, status: str, *, message: str, error: str | None = None,
             progress: float | None = None) -> RunRecord:
        assert status in RUN_STATUSES
        with self._db.transaction() as s:
            run = self._active(s, run_id)
            run.status = status
            run.message = message
            if error is not None:
                run.error = error
            if progress is not None:
                run.progress = progress
            run.finished_at = run.updated_at = utcnow()
            return run_record(run)

    @staticmethod
    def _get(s: Session, run_id: int) -> Run:
        run = s.get(Run, run_id)
        if run is None:
            raise NotFoundError(f"there is no run with id {run_id}")
        return run

    def _active(self, s: Session, run_id: int) -> Run:
        run = self._get(s, run_id)
        if run.status not in ACTIVE:
            raise StoreError(f"run {run_id} is already {run.status}; it cannot change any more")
        return run
