"""Files only this service's user may read: the SQLite database (with its -wal/-shm files) and the
installation secret file. Created 0600 (directories 0700), whatever the umask; existing ones are
tightened on start, so an install from before this rule is fixed by upgrading.

SQLite creates the -wal and -shm files with the permissions of the database file, so creating the
database file 0600 before SQLite opens it covers all three.
"""
from __future__ import annotations

import logging
import os
import stat
from pathlib import Path
from typing import Callable

log = logging.getLogger(__name__)

FILE_MODE = 0o600
DIRECTORY_MODE = 0o700
SQLITE_COMPANIONS = ("", "-wal", "-shm", "-journal")


def ensure_private_file(path: Path) -> None:
    """Create ``path`` empty with mode 0600 if missing (in an existing directory: a missing one is
    a configuration error for the caller to report); tighten an existing file that others could
    read or write."""
    if not path.parent.is_dir():
        return
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE))
    except FileExistsError:
        tighten(path)


def make_private_directories(directory: Path) -> None:
    """Create the missing directories of ``directory`` with mode 0700 (existing ones are left as
    they are: they belong to the operator)."""
    missing = []
    while not directory.exists():
        missing.append(directory)
        directory = directory.parent
    for path in reversed(missing):
        try:
            path.mkdir(mode=DIRECTORY_MODE)
        except FileExistsError:  # another process made it meanwhile
            pass


def tighten(path: Path) -> None:
    """Remove group and other permissions from an existing file (no-op if it is missing)."""
    try:
        mode = stat.S_IMODE(path.stat().st_mode)
    except FileNotFoundError:
        return
    if mode & 0o077:
        os.chmod(path, mode & 0o700)
        log.warning("%s was readable by other users; its mode is now %o", path, mode & 0o700)


def prepare_sqlite(database: str) -> None:
    """Before SQLite opens ``database`` (a file path): the file exists 0600, companions tightened."""
    path = Path(database)
    ensure_private_file(path)
    for suffix in SQLITE_COMPANIONS[1:]:
        tighten(path.with_name(path.name + suffix))


def read_or_create_secret(path: Path, generate: Callable[[], str]) -> str:
    """The secret in ``path``; on first use ``generate()`` is written there, 0600, race-safe: of
    several processes starting together exactly one writes and all read the same value."""
    try:
        text = path.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        text = ""
    if text:
        tighten(path)
        return text
    write_new_secret(path, generate())
    return path.read_text(encoding="utf-8").strip()


def write_private_text(path: Path, text: str) -> None:
    """Write (or replace) ``path`` with ``text``, mode 0600, atomically."""
    make_private_directories(path.parent)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, FILE_MODE)
    with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
        handle.write(text + "\n")
    os.replace(temporary, path)


def write_new_secret(path: Path, secret: str) -> bool:
    """Write ``secret`` to ``path`` unless it already exists; True if this call wrote it."""
    make_private_directories(path.parent)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, FILE_MODE)
    with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
        handle.write(secret + "\n")
        handle.flush()
        os.fsync(handle.fileno())
    try:
        os.link(temporary, path)  # atomic, and fails if another process was first
        return True
    except FileExistsError:
        return False
    finally:
        temporary.unlink(missing_ok=True)
