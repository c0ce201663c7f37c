"""One model-changing job per project at a time, across threads, processes and machines.

A training step, a prediction that writes, a bundle import (and a refresh) each run inside
``hold_lease(project, purpose)``: it takes the project's ``model`` lease (a row in the project's database,
``conpet.store.repositories.leases``) or raises ``LeaseHeldError`` naming who holds it, renews it from a
heartbeat thread while the job runs, and releases it at the end. A holder that dies leaves a row that the
next taker recognises as dead (same host: its process is gone; another host: its heartbeat stopped and the
expiry passed). Before a job records its result it calls ``confirm_lease(project)`` inside the recording
transaction: a job whose lease was taken over records nothing. Housekeeping deletes nothing while the lease
is live (``conpet.project.housekeeping``).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from datetime import timedelta
from typing import Any

from conpet.core.errors import ConpetError
from conpet.store.errors import LeaseHeldError, LeaseLostError
from conpet.store.records import LeaseRecord

MODEL_LEASE = "model"
# A holder on another machine counts as gone this long after its last heartbeat.
LEASE_TTL = timedelta(seconds=120)
HEARTBEAT_SECONDS = 20.0

__all__ = ["HEARTBEAT_SECONDS", "LEASE_TTL", "MODEL_LEASE", "LeaseHeldError", "LeaseLostError", "confirm_lease",
           "hold_lease", "lease_holder"]

_local = threading.local()  # {database path: LeaseRecord} held by this thread (nested holds join the outer)


def _held() -> dict[Any, LeaseRecord]:
    if not hasattr(_local, "held"):
        _local.held = {}
    return _local.held


class _Heartbeat:
    """Renews the lease every ``HEARTBEAT_SECONDS`` until stopped; remembers when it found the lease gone."""

    def __init__(self, project: Any, lease: LeaseRecord) -> None:
        self.project, self.lease = project, lease
        self.lost = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"conpet-lease-{lease.purpose}", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(HEARTBEAT_SECONDS):
            try:
                if not self.project.leases.renew(self.lease.name, self.lease.holder, LEASE_TTL):
                    self.lost = True
                    return
            except ConpetError:  # a busy database: the next beat tries again (the TTL is several beats)
                continue

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)


@contextmanager
def hold_lease(project: Any, purpose: str) -> Iterator[LeaseRecord]:
    """Hold the project's model lease for ``purpose`` (train | predict | import | refresh) while the block
    runs; ``LeaseHeldError`` (naming the holder) when another job holds it. A hold nested on the same thread
    joins the outer one."""
    key = project.db_path
    outer = _held().get(key)
    if outer is not None:
        yield outer
        return
    lease = project.leases.acquire(MODEL_LEASE, purpose, LEASE_TTL)
    beat = _Heartbeat(project, lease)
    _held()[key] = lease
    beat.start()
    try:
        yield lease
    finally:
        beat.stop()
        del _held()[key]
        with suppress(ConpetError):  # a row left behind is recognised as dead (its token is released here)
            project.leases.release(MODEL_LEASE, lease.holder)


def confirm_lease(project: Any) -> None:
    """Inside a recording transaction: ``LeaseLostError`` unless this thread still holds the lease."""
    lease = _held().get(project.db_path)
    if lease is None:
        raise LeaseLostError("this job records a result without holding the project's lease")
    project.leases.confirm(MODEL_LEASE, lease.holder)


def lease_holder(project: Any) -> LeaseRecord | None:
    """Who holds the project's model lease now (None: nobody live)."""
    return project.leases.current(MODEL_LEASE)
