"""Who is working: the name the store records as the author of every annotation, decision, type edit and
training run. The CLI's ``--user`` sets it for a command; the app sets it from its settings; otherwise it
is ``$CONPET_USER`` or the operating-system user."""

from __future__ import annotations

import getpass
import os

from conpet.store.errors import StoreError

MAX_LENGTH = 200
_chosen: str | None = None


def check_user(name: str) -> str:
    """A usable author name (stripped), or StoreError saying why not."""
    clean = " ".join(str(name).split())
    if not clean:
        raise StoreError("a user name must not be empty")
    if len(clean) > MAX_LENGTH:
        raise StoreError(f"a user name has at most {MAX_LENGTH} characters (got {len(clean)})")
    return clean


def os_user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no name for this uid (a bare container): still someone
        return f"uid-{os.getuid()}" if hasattr(os, "getuid") else "user"


def default_user() -> str:
    """The name new projects record: the one chosen for this process, else $CONPET_USER, else the OS user."""
    return _chosen or os.environ.get("CONPET_USER") or os_user()


def choose_user(name: str | None) -> None:
    """Record ``name`` as this process's user (None: back to $CONPET_USER / the OS user)."""
    global _chosen
    _chosen = check_user(name) if name is not None else None
