"""Prometheus metrics: the metric objects, request instrumentation and the scrape-time rendering.

Every metric is named ``jsm_scim_*`` (Prometheus naming: one prefix per exporter, ``_total`` for
counters, base units). SCIM request metrics count ``/scim/v2`` routes only.

Under several gunicorn workers, set ``PROMETHEUS_MULTIPROC_DIR`` (``gunicorn.conf.py`` does it for
you): prometheus-client then keeps every worker's values in shared files and ``render()`` merges
them. Without it, one process-local registry is exposed.
"""
from __future__ import annotations

import logging
import os
import time
from typing import Callable, Iterator

from flask import Flask, Response, g, request
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector

log = logging.getLogger(__name__)
disable_created_metrics()  # the *_created series double the scrape size and nobody graphs them

# prometheus-client reads this variable itself when the metric objects below are created; we must
# agree with it, so this is the one place outside settings.py that looks at the environment.
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
UNMATCHED_ROUTE = "<unmatched>"
KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})

PREFIX = "jsm_scim_"
SCIM_PATH = "/scim/v2"

scim_requests_total = Counter(
    PREFIX + "scim_requests_total", "SCIM requests served, by method, route template and status.",
    ["method", "route", "status"],
)
scim_request_duration_seconds = Histogram(
    PREFIX + "scim_request_duration_seconds",
    "SCIM request duration by route template.",
    ["route"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
jsm_calls_total = Counter(
    PREFIX + "jsm_calls_total", "Calls made to the JSM REST API, by method, route template and status.",
    ["method", "route", "status"],
)
jsm_rate_limited_total = Counter(PREFIX + "jsm_rate_limited_total", "JSM answers with HTTP 429 (rate limited).")
sync_jobs_total = Counter(PREFIX + "sync_jobs_total", "Propagation jobs finished, by outcome.", ["outcome"])
scim_rate_limited_total = Counter(PREFIX + "scim_rate_limited_total",
                                  "SCIM requests refused with 429 by the per-key limiter.")
logins_total = Counter(
    PREFIX + "logins_total",
    "Customer sign-ins by connection, outcome (success, refused) and reason (a short code).",
    ["connection", "outcome", "reason"],
)

#: ``() -> (pending_jobs, oldest_pending_age_seconds, dead_jobs)``; a 2-tuple omits the dead-jobs gauge.
QueueProbe = Callable[[], "tuple[int, float | None] | tuple[int, float | None, int]"]
_queue_probe: QueueProbe | None = None


def observe_jsm_call(method: str, route: str, status: int | str) -> None:
    """Count one JSM REST call; ``route`` is the path template (``/rest/servicedeskapi/organization/{id}``)."""
    jsm_calls_total.labels(method.upper(), route, str(status)).inc()
    if str(status) == "429":
        jsm_rate_limited_total.inc()


def observe_login(connection: str, outcome: str, reason: str) -> None:
    """Count one sign-in outcome; ``reason`` is a bounded code (``no_account``, ``saml_rejected``...)."""
    logins_total.labels(connection[:100], outcome, reason).inc()


def observe_sync_job(outcome: str) -> None:
    """Count one finished propagation job (``done``, ``retry``, ``dead``...)."""
    sync_jobs_total.labels(outcome).inc()


def register_queue_probe(probe: QueueProbe | None) -> None:
    """Install the callback /metrics calls at scrape time (see :data:`QueueProbe`)."""
    global _queue_probe
    _queue_probe = probe


class ScrapeCollector(Collector):
    """Yields what is computed at scrape time: build info and the sync queue gauges (from the probe)."""

    def collect(self) -> Iterator[GaugeMetricFamily]:
        from scim_server import __version__

        info = GaugeMetricFamily(PREFIX + "build_info", "The running version (always 1).", labels=["version"])
        info.add_metric([__version__], 1.0)
        yield info
        if _queue_probe is None:
            return
        try:
            stats = _queue_probe()
        except Exception:
            log.warning("sync queue probe failed; queue gauges omitted from this scrape", exc_info=True)
            return
        yield GaugeMetricFamily(PREFIX + "sync_queue_depth", "Propagation jobs waiting to run.", value=float(stats[0]))
        yield GaugeMetricFamily(
            PREFIX + "sync_oldest_pending_age_seconds",
            "Age of the oldest waiting propagation job (0 when none).",
            value=float(stats[1] or 0.0),
        )
        if len(stats) > 2:
            yield GaugeMetricFamily(PREFIX + "sync_dead_jobs", "Propagation jobs that gave up (jsm-scim sync retry).",
                                    value=float(stats[2]))  # type: ignore[misc]


def multiprocess_dir() -> str | None:
    return os.environ.get(MULTIPROC_ENV) or None


def render() -> bytes:
    """The Prometheus text exposition of every metric (merged across workers in multiprocess mode)."""
    if multiprocess_dir():
        registry = CollectorRegistry()
        MultiProcessCollector(registry)
    else:
        registry = REGISTRY
    scrape_registry = CollectorRegistry()
    scrape_registry.register(ScrapeCollector())
    return generate_latest(registry) + generate_latest(scrape_registry)


def metrics_response() -> Response:
    return Response(render(), mimetype=None, content_type=CONTENT_TYPE_LATEST)


def serve_metrics(host: str, port: int):
    """Serve ``GET /metrics`` from a background thread (a ``jsm-scim worker`` on its own machine,
    where no gunicorn shares its metrics); returns the server (``.server_port``, ``.shutdown()``)."""
    import threading

    from werkzeug.serving import WSGIRequestHandler, make_server

    class _Handler(WSGIRequestHandler):
        def version_string(self) -> str:  # not werkzeug's and Python's versions
            return "jsm-scim-bridge"
    from werkzeug.wrappers import Request

    @Request.application
    def application(request: Request) -> Response:
        if request.path != "/metrics":
            return Response("not found\n", status=404, mimetype="text/plain")
        return metrics_response()

    server = make_server(host, port, application, threaded=True, request_handler=_Handler)
    threading.Thread(target=server.serve_forever, name="metrics", daemon=True).start()
    return server


# --------------------------------------------------------------------------------------------
# Request instrumentation
# --------------------------------------------------------------------------------------------
def route_label() -> str:
    """The matched URL rule (``/scim/v2/Users/<id>``), never the raw path, to bound cardinality."""
    rule = request.url_rule
    return rule.rule if rule is not None else UNMATCHED_ROUTE


def install(app: Flask) -> None:
    app.before_request(_start_timer)
    app.after_request(_observe)


def _start_timer() -> None:
    g.metrics_started = time.perf_counter()


def _observe(response: Response) -> Response:
    if not (request.path == SCIM_PATH or request.path.startswith(SCIM_PATH + "/")):
        return response  # pages, SSO and ops endpoints are no SCIM traffic
    route = route_label()
    method = request.method if request.method in KNOWN_METHODS else "OTHER"
    scim_requests_total.labels(method, route, str(response.status_code)).inc()
    started = g.get("metrics_started")
    if started is not None:
        scim_request_duration_seconds.labels(route).observe(time.perf_counter() - started)
    return response
