"""SQLite writers take turns through a lock file instead of SQLite's busy handler.

SQLite lets one connection write at a time. A writer that finds the lock taken is put to sleep by
the busy handler for 1, 2, 5, 10 ... 100 ms and then tries again, whether or not the lock was freed
meanwhile: with several gunicorn workers creating users at once, most of a write's time went into
those sleeps (create p99 of 300-1,200 ms under 8 clients, and a CPU idle while the lock was free).

Here every connection of every process on the database queues on an exclusive ``flock`` of
``DATABASE-writers.lock`` just before its first INSERT, UPDATE or DELETE, and releases it once the
transaction has committed or rolled back: the kernel wakes the next writer the moment the lock is
free. Within a process, writers first queue on a process lock (cooperative under gevent), so one
waiting request never blocks the other greenlets of its worker. SQLite's own locking is unchanged
(it still decides correctness; the file lock only orders the writers), as are the transactions,
their durability (``synchronous=FULL``) and what commits together. The lock is held exactly as long
as SQLite's write lock would be: from the first write statement to the end of the transaction.
"""
from __future__ import annotations

import fcntl
import os
import re
import threading
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Engine

_WRITE = re.compile(r"\s*(INSERT|UPDATE|DELETE|REPLACE)\b", re.IGNORECASE)
_HELD = "sqlite_writer_lock_held"
# As long as SQLite's busy timeout (db.py): past it the writer goes on without its turn and SQLite's
# own locking decides, as before (a writer nested inside another's transaction then fails as it did).
WAIT_SECONDS = 30.0

_queues: dict[str, "WriterQueue"] = {}  # one per database file and process, whatever the engines
_queues_lock = threading.Lock()


class WriterQueue:
    """The lock file of one database, shared by the engine's connections in this process."""

    def __init__(self, lock_path: str) -> None:
        self.path = lock_path
        self._in_process = threading.Lock()  # gevent's lock once gunicorn's gevent worker patched threading
        self._fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)

    def acquire(self) -> bool:
        """Wait for this writer's turn; False (go on without it) after ``WAIT_SECONDS`` in this process."""
        if not self._in_process.acquire(timeout=WAIT_SECONDS):
            return False
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX)
        except BaseException:
            self._in_process.release()
            raise
        return True

    def release(self) -> None:
        try:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
        finally:
            self._in_process.release()


def install(engine: Engine, database_path: str) -> WriterQueue:
    """Make ``engine``'s connections queue on ``DATABASE-writers.lock`` before writing."""
    path = os.path.abspath(database_path) + "-writers.lock"
    with _queues_lock:
        queue = _queues.get(path) or _queues.setdefault(path, WriterQueue(path))

    def before_cursor_execute(connection: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        info = connection.info
        if not info.get(_HELD) and _WRITE.match(statement) and queue.acquire():
            info[_HELD] = True

    def finish(dbapi_connection: Any, info: dict[str, Any], end: str) -> None:
        """End the transaction on the driver connection first, then let the next writer in
        (SQLAlchemy's own commit/rollback that follows is a no-op on a connection with none open)."""
        if not info.pop(_HELD, False):
            return
        try:
            getattr(dbapi_connection, end)()
        finally:
            queue.release()

    def commit(connection: Any) -> None:
        finish(connection.connection.dbapi_connection, connection.info, "commit")

    def rollback(connection: Any) -> None:
        finish(connection.connection.dbapi_connection, connection.info, "rollback")

    def checkin(dbapi_connection: Any, record: Any) -> None:
        # Returned to the pool without a commit or rollback through the Connection (an error, a
        # closed session): the pool's reset has rolled back already.
        if record.info.pop(_HELD, False):
            queue.release()

    event.listen(engine, "before_cursor_execute", before_cursor_execute)
    event.listen(engine, "commit", commit)
    event.listen(engine, "rollback", rollback)
    event.listen(engine.pool, "checkin", checkin)
    return queue
