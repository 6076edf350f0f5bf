"""SQLite writers take turns on the lock file: a waiting writer goes on as soon as the holder's
transaction ends (commit, rollback or close), in this process and in another one."""
from __future__ import annotations

import fcntl
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from sqlalchemy import text

from scim_server.db import make_engine

HOLD_S = 0.4


@pytest.fixture()
def database(tmp_path: Path) -> str:
    engine = make_engine(f"sqlite:///{tmp_path / 'w.db'}")
    with engine.begin() as connection:
        connection.execute(text("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)"))
    engine.dispose()
    return str(tmp_path / "w.db")


def _turn_taken(database: str) -> bool:
    """Whether some connection holds the writers' turn (the lock file is locked)."""
    fd = os.open(database + "-writers.lock", os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False


def _end(connection, transaction, end: str) -> None:
    """End the transaction as ``end`` says: commit, rollback, or closing the connection with it open."""
    if end == "commit":
        transaction.commit()
    elif end == "rollback":
        transaction.rollback()
    connection.close()


@pytest.mark.parametrize("end", ["commit", "rollback", "close"])
def test_the_turn_is_held_from_the_first_write_to_the_end_of_the_transaction(database: str, end: str) -> None:
    engine = make_engine(f"sqlite:///{database}")
    connection = engine.connect()
    transaction = connection.begin()
    connection.execute(text("SELECT count(*) FROM t"))
    assert not _turn_taken(database), "a read takes no turn"
    connection.execute(text("INSERT INTO t (v) VALUES ('x')"))
    assert _turn_taken(database)
    connection.execute(text("UPDATE t SET v = 'y'"))  # the same turn: no second acquisition (no deadlock)
    assert _turn_taken(database)
    _end(connection, transaction, end)
    assert not _turn_taken(database)
    engine.dispose()


def _timed_insert(engine, started: threading.Event, done: list[float]) -> None:
    started.set()
    with engine.begin() as connection:
        connection.execute(text("INSERT INTO t (v) VALUES ('waiter')"))
    done.append(time.monotonic())


@pytest.mark.parametrize("end", ["commit", "rollback", "close"])
def test_a_waiting_writer_goes_on_when_the_holder_ends_its_transaction(database: str, end: str) -> None:
    engine = make_engine(f"sqlite:///{database}")
    holder = engine.connect()
    transaction = holder.begin()
    holder.execute(text("INSERT INTO t (v) VALUES ('holder')"))
    started, done = threading.Event(), []
    waiter = threading.Thread(target=_timed_insert, args=(engine, started, done))
    waiter.start()
    started.wait()
    time.sleep(HOLD_S)
    assert not done, "the second writer wrote while the first one held its turn"
    ended = time.monotonic()
    _end(holder, transaction, end)
    waiter.join(10)
    assert done and done[0] - ended < 1.0
    with engine.connect() as connection:
        values = sorted(connection.execute(text("SELECT v FROM t")).scalars())
    assert values == (["holder", "waiter"] if end == "commit" else ["waiter"])
    engine.dispose()


def test_readers_do_not_wait_for_a_writer(database: str) -> None:
    engine = make_engine(f"sqlite:///{database}")
    with engine.connect() as holder:
        holder.begin()
        holder.execute(text("INSERT INTO t (v) VALUES ('uncommitted')"))
        started = time.monotonic()
        with engine.connect() as reader:
            assert reader.execute(text("SELECT count(*) FROM t")).scalar() == 0
        assert time.monotonic() - started < 0.2
    engine.dispose()


def test_a_writer_in_another_process_waits_for_its_turn(database: str) -> None:
    engine = make_engine(f"sqlite:///{database}")
    holder = engine.connect()
    transaction = holder.begin()
    holder.execute(text("INSERT INTO t (v) VALUES ('holder')"))
    script = (
        "import sys, time\n"
        "from sqlalchemy import text\n"
        "from scim_server.db import make_engine\n"
        "engine = make_engine('sqlite:///' + sys.argv[1])\n"
        "print('ready', flush=True)\n"
        "with engine.begin() as c:\n"
        "    c.execute(text(\"INSERT INTO t (v) VALUES ('other process')\"))\n"
        "print(time.time(), flush=True)\n"
    )
    child = subprocess.Popen([sys.executable, "-c", script, database], stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout is not None and child.stdout.readline().strip() == "ready"
        time.sleep(HOLD_S)
        assert child.poll() is None, "the other process wrote while this one held its turn"
        committed = time.time()
        transaction.commit()
        holder.close()
        wrote = float(child.stdout.readline())
        assert child.wait(10) == 0
        assert wrote - committed < 2.0
    finally:
        child.kill()
        engine.dispose()
    with make_engine(f"sqlite:///{database}").connect() as connection:
        assert sorted(connection.execute(text("SELECT v FROM t")).scalars()) == ["holder", "other process"]
