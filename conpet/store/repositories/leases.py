"""The project's leases: one row per lease name while some job holds it (``conpet.project.lease`` is the API
the jobs use). Taking one is a compare-and-set in one short transaction, portable to PostgreSQL: insert the
row (a concurrent insert of the same name fails on the primary key), or take over a row whose holder is gone
with ``UPDATE … WHERE holder = <the old token>`` (only one taker's update matches)."""

from __future__ import annotations

import threading
import uuid
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from sqlalchemy import delete, update
from sqlalchemy.exc import IntegrityError

from conpet.store.errors import LeaseHeldError, LeaseLostError
from conpet.store.models import Lease, utcnow
from conpet.store.records import LeaseRecord
from conpet.store.repositories.runs import owner, process_alive

if TYPE_CHECKING:
    from conpet.store.db import Database

# Tokens of the leases this process holds now: a row of this process with another token was left by a
# job of this process that ended without releasing it (it cannot be live).
_HELD_HERE: set[str] = set()
_HELD_LOCK = threading.Lock()


def lease_record(row: Lease) -> LeaseRecord:
    return LeaseRecord(name=row.name, holder=row.holder, purpose=row.purpose, host=row.host, pid=row.pid,
                       acquired_at=row.acquired_at, heartbeat_at=row.heartbeat_at, expires_at=row.expires_at)


def is_live(row: Lease | LeaseRecord, pid_started: str | None = None, now: datetime | None = None) -> bool:
    """Whether the holder of ``row`` may still be working: on this host while its process runs (this
    process: while it still holds that token), on another host until the expiry its heartbeat renews."""
    host, pid, _ = owner()
    if row.host != host:
        return row.expires_at > (now or utcnow())
    if row.pid == pid:
        with _HELD_LOCK:
            return row.holder in _HELD_HERE
    return process_alive(row.pid, pid_started)


class LeaseRepository:
    def __init__(self, db: Database) -> None:
        self._db = db

    def current(self, name: str) -> LeaseRecord | None:
        """The live holder of lease ``name``, or None (free, or its holder is gone)."""
        with self._db.read() as s:
            row = s.get(Lease, name)
            return lease_record(row) if row is not None and is_live(row, row.pid_started) else None

    def acquire(self, name: str, purpose: str, ttl: timedelta) -> LeaseRecord:
        """Take lease ``name`` for ``purpose`` (expiring after ``ttl`` unless renewed); LeaseHeldError
        naming the holder when a live one has it."""
        token = uuid.uuid4().hex
        host, pid, started = owner()
        now = utcnow()
        values = {"holder": token, "purpose": purpose, "host": host, "pid": pid, "pid_started": started,
                  "acquired_at": now, "heartbeat_at": now, "expires_at": now + ttl}
        try:
            with self._db.transaction() as s:
                row = s.get(Lease, name)
                if row is None:
                    s.add(Lease(name=name, **values))
                    s.flush()  # a concurrent insert of the same name fails here, on the primary key
                else:
                    if is_live(row, row.pid_started, now):
                        raise LeaseHeldError(f"the project is busy: {lease_record(row).describe()} is running; "
                                             "try again when it has finished")
                    taken = s.execute(update(Lease).where(Lease.name == name, Lease.holder == row.holder)
                                      .values(**values).execution_options(synchronize_session=False))
                    if taken.rowcount != 1:
                        raise LeaseHeldError("the project is busy: another job took it just now; try again")
                    s.expire(row)
        except IntegrityError as exc:
            raise LeaseHeldError("the project is busy: another job took it just now; try again") from exc
        with _HELD_LOCK:
            _HELD_HERE.add(token)
        return LeaseRecord(name=name, holder=token, purpose=purpose, host=host, pid=pid, acquired_at=now,
                           heartbeat_at=now, expires_at=now + ttl)

    def renew(self, name: str, holder: str, ttl: timedelta) -> bool:
        """The heartbeat: push the expiry on; False when the lease is no longer ``holder``'s."""
        now = utcnow()
        with self._db.transaction() as s:
            done = s.execute(update(Lease).where(Lease.name == name, Lease.holder == holder)
                             .values(heartbeat_at=now, expires_at=now + ttl)
                             .execution_options(synchronize_session=False))
            return done.rowcount == 1

    def confirm(self, name: str, holder: str) -> None:
        """Inside the transaction that records a job's result: LeaseLostError unless ``holder`` still has
        the lease (a job whose lease was taken over must not record anything)."""
        with self._db.transaction() as s:
            row = s.get(Lease, name, populate_existing=True)
            if row is None or row.holder != holder:
                raise LeaseLostError(f"this job's hold on the project ended before it finished (another job took "
                                     f"the project over: {lease_record(row).describe() if row else 'none now'}); "
                                     "nothing was recorded")

    def release(self, name: str, holder: str) -> None:
        with _HELD_LOCK:
            _HELD_HERE.discard(holder)
        with self._db.transaction() as s:
            s.execute(delete(Lease).where(Lease.name == name, Lease.holder == holder)
                      .execution_options(synchronize_session=False))
