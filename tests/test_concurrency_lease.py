"""Issue 24 (1): the project's lease on model-changing work: one holder at a time across threads and
processes, the holder named in the refusal, a dead holder's (or an expired foreign) lease taken over, a job
whose lease was taken over records nothing; and a task is frozen once."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import update

from conpet.project.lease import LEASE_TTL, MODEL_LEASE, confirm_lease, hold_lease, lease_holder
from conpet.store import Project, StoreError
from conpet.store.errors import LeaseHeldError, LeaseLostError
from conpet.store.models import Lease, utcnow

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def project(tmp_path):
    with Project.create(tmp_path / "proj") as p:
        yield p


def _holder_process(folder: Path, purpose: str = "train") -> subprocess.Popen:
    """A process that takes the lease, says so, and holds it until killed."""
    script = textwrap.dedent(f"""
        import sys, time
        from conpet.project.lease import hold_lease
        from conpet.store import Project
        with Project.open({str(folder)!r}) as p, hold_lease(p, {purpose!r}):
            print("held", flush=True)
            sys.stdin.readline()
    """)
    proc = subprocess.Popen([sys.executable, "-c", script], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            text=True, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert proc.stdout.readline().strip() == "held"
    return proc


def test_a_second_holder_in_another_process_is_refused_with_the_holders_name_until_it_dies(project):
    proc = _holder_process(project.folder)
    try:
        holder = lease_holder(project)
        assert holder is not None and holder.pid == proc.pid and holder.purpose == "train"
        with pytest.raises(LeaseHeldError, match=rf"a training \(process {proc.pid} on host"), \
                hold_lease(project, "predict"):
            pass
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert lease_holder(project) is None  # its process is gone: the lease is dead
    with hold_lease(project, "train") as lease:
        assert lease_holder(project).holder == lease.holder
    assert lease_holder(project) is None


def test_a_second_holder_in_another_thread_is_refused_and_nested_holds_join(project):
    errors: list[BaseException] = []
    with hold_lease(project, "import") as outer:
        with hold_lease(project, "train") as inner:  # the same thread: one job calling another
            assert inner.holder == outer.holder

        def other() -> None:
            try:
                with hold_lease(project, "train"):
                    pass
            except BaseException as exc:  # noqa: BLE001 - handed to the test's thread
                errors.append(exc)

        t = threading.Thread(target=other)
        t.start()
        t.join()
    assert len(errors) == 1 and isinstance(errors[0], LeaseHeldError)
    assert "a bundle import" in str(errors[0])


def test_another_hosts_lease_holds_until_it_expires(project):
    lease = project.leases.acquire(MODEL_LEASE, "train", LEASE_TTL)
    project.leases.release(MODEL_LEASE, lease.holder)
    now = utcnow()
    with project.transaction() as s:
        s.add(Lease(name=MODEL_LEASE, holder="foreign", purpose="train", host="elsewhere", pid=1,
                    acquired_at=now, heartbeat_at=now, expires_at=now + timedelta(seconds=60)))
    with pytest.raises(LeaseHeldError, match="host elsewhere"):
        project.leases.acquire(MODEL_LEASE, "train", LEASE_TTL)
    with project.transaction() as s:  # its heartbeat stopped: the expiry passes
        s.execute(update(Lease).values(expires_at=now - timedelta(seconds=1)))
    taken = project.leases.acquire(MODEL_LEASE, "train", LEASE_TTL)
    assert not project.leases.renew(MODEL_LEASE, "foreign", LEASE_TTL)  # the old holder learns it lost it
    with pytest.raises(LeaseLostError):
        project.leases.confirm(MODEL_LEASE, "foreign")
    project.leases.confirm(MODEL_LEASE, taken.holder)
    project.leases.release(MODEL_LEASE, taken.holder)


def test_a_job_whose_lease_was_taken_over_records_nothing(project):
    with hold_lease(project, "train"):
        with project.transaction() as s:  # another host took it over after an expiry
            s.execute(update(Lease).values(holder="usurper", host="elsewhere"))
        with pytest.raises(LeaseLostError), project.transaction():
            confirm_lease(project)
    with pytest.raises(LeaseLostError):
        confirm_lease(project)  # not inside a hold at all


def test_a_task_is_frozen_once(project):
    t = project.types.add("Person", "entity")
    task = project.tasks.create_next([t.id])
    project.tasks.freeze(task.id)
    with pytest.raises(StoreError, match="already frozen"):
        project.tasks.freeze(task.id)


def test_an_older_project_gets_the_lease_table_on_open(tmp_path, fixtures_dir):
    import shutil

    from conpet.store import schema

    db = tmp_path / "old" / "project.sqlite"
    db.parent.mkdir()
    shutil.copy(fixtures_dir / "store" / "project_v1" / "project.sqlite", db)
    with Project.open(db.parent) as p:
        assert p.upgrade is not None and p.upgrade.to_version == schema.head_version() >= 4
        with hold_lease(p, "train"):
            assert lease_holder(p) is not None


def test_the_heartbeat_pushes_the_expiry_on_while_the_lease_is_held(project, monkeypatch):
    import time

    import conpet.project.lease as lease_module

    monkeypatch.setattr(lease_module, "HEARTBEAT_SECONDS", 0.02)
    with hold_lease(project, "train") as lease:
        deadline = time.monotonic() + 30
        while lease_holder(project).expires_at <= lease.expires_at:
            assert time.monotonic() < deadline, "the heartbeat never renewed the lease"
            time.sleep(0.02)
        assert lease_holder(project).heartbeat_at > lease.heartbeat_at
    assert lease_holder(project) is None
