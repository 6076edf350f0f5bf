"""SQLite writers take turns through a lock file instead of SQLite's busy handler.

SQLite lets one connection write at a time. A writer that finds the lock taken is put to sleep by
the busy handler for 1, 2, 5, 10 ... 100 ms and then tries again, whether or not the lock was freed
meanwhile: with several gunicorn workers creating users at once, much of a write's time went into
those sleeps (create p99 of 300-1,200 ms under 8 clients, and a CPU idle while the lock was free).

Here every connection of every process on the database queues on an exclusive ``flock`` of
``DATABASE-writers.lock`` just before its first INSERT, UPDATE or DELETE, and releases it once its
transaction has committed or rolled back: the kernel wakes the next writer the moment the lock is
free. Within a process, writers first queue on a process lock (cooperative under gevent), so one
waiting request never blocks the other greenlets of its worker. SQLite's own locking is unchanged
(it still decides correctness; the file lock only orders the writers), as are the transactions,
their durability (``synchronous=FULL``) and what commits together. The lock is held exactly as long
as SQLite's write lock is: from the first write statement to the end of the transaction.

It lives in the driver's connection class (``sqlite3.connect(factory=...)``), not in SQLAlchemy
events: an engine with statement events pays for their dispatch on every statement, reads too.
"""
from __future__ import annotations

import fcntl
import os
import re
import sqlite3
import threading
from typing import Any

_WRITE = re.compile(r"\s*(INSERT|UPDATE|DELETE|REPLACE)\b", re.IGNORECASE)
# As long as SQLite's busy timeout (db.py): past it the writer goes on without its turn and SQLite's
# own locking decides, as before (a writer nested inside another's transaction then fails as it did).
WAIT_SECONDS = 30.0

# One per database file and process, whatever the connections. Keyed by pid too: a queue inherited
# across fork (gunicorn --preload) shares its open file with the parent, so its flock would not
# exclude the parent, and its lock was made before gevent patched threading.
_queues: dict[tuple[str, int], "WriterQueue"] = {}
_queues_lock = threading.Lock()


class WriterQueue:
    """The lock file of one database, shared by every connection to it in this process."""

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


def queue_for(database: str) -> WriterQueue:
    key = (os.path.abspath(database) + "-writers.lock", os.getpid())
    with _queues_lock:
        queue = _queues.get(key)
        if queue is None:
            queue = _queues[key] = WriterQueue(key[0])
        return queue


class WriterCursor(sqlite3.Cursor):
    def execute(self, sql: str, parameters: Any = (), /) -> "WriterCursor":
        self.connection.take_turn(sql)  # type: ignore[attr-defined]
        return super().execute(sql, parameters)

    def executemany(self, sql: str, seq_of_parameters: Any, /) -> "WriterCursor":
        self.connection.take_turn(sql)  # type: ignore[attr-defined]
        return super().executemany(sql, seq_of_parameters)


class WriterConnection(sqlite3.Connection):
    """A ``sqlite3`` connection whose writes wait for their turn in the database's ``WriterQueue``."""

    def __init__(self, database: Any, *args: Any, **kwargs: Any) -> None:
        super().__init__(database, *args, **kwargs)
        self._database = os.fspath(database)
        self._queue = queue_for(self._database)
        self._pid = os.getpid()
        self._holding = False

    def take_turn(self, sql: str) -> None:
        if not self._holding and _WRITE.match(sql):
            if self._pid != os.getpid():  # a connection inherited across fork: this process's queue
                self._queue, self._pid = queue_for(self._database), os.getpid()
            self._holding = self._queue.acquire()

    def _end_turn(self) -> None:
        if self._holding:
            self._holding = False
            self._queue.release()

    def cursor(self, factory: Any = WriterCursor) -> Any:  # type: ignore[override]
        return super().cursor(factory)

    def execute(self, sql: str, parameters: Any = (), /) -> Any:  # type: ignore[override]
        return self.cursor().execute(sql, parameters)

    def executemany(self, sql: str, parameters: Any, /) -> Any:  # type: ignore[override]
        return self.cursor().executemany(sql, parameters)

    def commit(self) -> None:
        try:
            super().commit()
        finally:
            self._end_turn()

    def rollback(self) -> None:
        try:
            super().rollback()
        finally:
            self._end_turn()

    def close(self) -> None:
        try:
            super().close()
        finally:
            self._end_turn()
