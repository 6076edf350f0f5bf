"""gunicorn settings for ``gunicorn wsgi:app`` (override any of them on the command line).

The bind address is the typed settings' ``host:port`` (JSM_SCIM_HOST / JSM_SCIM_PORT from the
environment or ``.env``, default 127.0.0.1:8000, as for ``jsm-scim serve``; set JSM_SCIM_HOST=0.0.0.0
to listen on every interface). Environment: WEB_CONCURRENCY (worker
processes, default 2 x cores + 1, at most 8), GUNICORN_WORKER_CONNECTIONS (open connections per
worker, default 1000), GUNICORN_TIMEOUT (seconds, default 60).

Slow clients: the workers are gevent workers. Every connection is a greenlet, so a client that
sends its headers one byte at a time (slowloris), or keeps an idle connection open, holds a few
kilobytes, not one of a handful of threads: with the previous ``gthread`` workers about 25 such
clients stopped the server answering at all. psycopg 3 (>= 3.1.14) cooperates with gevent's
monkey-patching by itself (it waits on patched selectors, no psycogreen needed); the JSM client's
deadline watchdog and the SQLAlchemy pool use patched threading primitives. SQLite calls block the
worker while they run (they are short, and SQLite is the one-machine story: ``jsm-scim serve``).
Requests are bounded (``scim_server/scim/limits.py``), so no greenlet holds the CPU for long.
Each worker accepts at most ``worker_connections``; beyond that the kernel backlog holds them.
An internet-facing deployment may still put a reverse proxy in front (TLS, request buffering);
the server does not need one to survive slow clients. Metrics of all workers are merged through
PROMETHEUS_MULTIPROC_DIR; when it is unset, a private temporary directory is created for this
server, because per-worker registries would make /metrics answer for one random worker only.

Set PROMETHEUS_MULTIPROC_DIR yourself (a directory on the same machine) and give the same value to
the ``jsm-scim worker`` processes there: their job outcomes and JSM call counters then appear on
this server's /metrics too. Files of processes that are no longer running are removed at start.
"""
import atexit
import contextlib
import multiprocessing
import os
import shutil
import tempfile

from scim_server.settings import load_settings

_MAX_WORKERS = 8


def _int_env(name: str, default: int) -> int:
    raw = os.environ.get(name, "").strip()
    return int(raw) if raw else default


_settings = load_settings()  # imports no part of the app: metrics must be set up first (below)
bind = f"{_settings.host}:{_settings.port}"
workers = _int_env("WEB_CONCURRENCY", min(2 * multiprocessing.cpu_count() + 1, _MAX_WORKERS))
worker_class = "gevent"
worker_connections = _int_env("GUNICORN_WORKER_CONNECTIONS", 1000)
timeout = _int_env("GUNICORN_TIMEOUT", 60)
graceful_timeout = 30
keepalive = 5
max_requests = 10000  # recycle workers now and then (bounded memory growth), with jitter
max_requests_jitter = 1000
accesslog = None  # the application writes its own access log line, with the request id
errorlog = "-"
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1")

# Metrics must be set up before the app (and prometheus-client) is imported in the workers. The
# directory this file creates is recorded in the environment, so that a configuration reload (SIGHUP
# re-reads this file) neither creates a second one nor forgets to remove the first.
_OWN_DIR_MARKER = "JSM_SCIM_OWN_METRICS_DIR"
if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = os.environ[_OWN_DIR_MARKER] = tempfile.mkdtemp(prefix="jsm-scim-metrics-")
_MASTER_PID = os.getpid()

# Imported now, not in child_exit: an import inside the SIGCHLD handler can fail (an import already in
# progress in the interrupted frame, or interpreter shutdown), which raised and left files behind.
from prometheus_client import multiprocess as _multiprocess  # noqa: E402


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def on_starting(server) -> None:
    """Drop the metric files of processes that are gone: a previous run's values would be counted
    again. Files of live processes (``jsm-scim worker``s sharing the directory) are kept."""
    directory = os.environ["PROMETHEUS_MULTIPROC_DIR"]
    os.makedirs(directory, exist_ok=True)
    for name in os.listdir(directory):
        stem, _, pid = name.removesuffix(".db").rpartition("_")
        if name.endswith(".db") and stem and not (pid.isdigit() and _pid_alive(int(pid))):
            with contextlib.suppress(OSError):
                os.remove(os.path.join(directory, name))


def child_exit(server, worker) -> None:
    """Drop the live-gauge files of a dead worker so they are not reported forever. Runs in the
    master's SIGCHLD handling: it must never raise."""
    try:
        _multiprocess.mark_process_dead(worker.pid)
    except Exception:  # noqa: BLE001 - a missing or half-written file must not disturb the master
        pass


def _remove_own_directory() -> None:
    """Remove the metrics directory this file created (never one the operator configured)."""
    directory = os.environ.get(_OWN_DIR_MARKER)
    if directory and os.getpid() == _MASTER_PID and os.environ.get("PROMETHEUS_MULTIPROC_DIR") == directory:
        shutil.rmtree(directory, ignore_errors=True)


def on_exit(server) -> None:
    _remove_own_directory()


# The master can also end without on_exit (e.g. it fails to bind, or a worker cannot boot): remove the
# directory at interpreter exit too. Forked workers run atexit handlers as well, hence the pid check.
atexit.register(_remove_own_directory)
