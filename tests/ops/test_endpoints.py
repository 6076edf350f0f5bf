"""/healthz, /readyz, /metrics, request IDs and the access log."""
from __future__ import annotations

import logging
import re

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from scim_server import __version__, metrics
from scim_server.app import create_app
from scim_server.settings import Settings


def sample_value(text: str, name: str, **labels: str) -> float:
    total = 0.0
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                total += sample.value
    return total


def test_healthz(client):
    response = client.get("/healthz")
    assert response.status_code == 200 and response.get_json() == {"status": "ok", "version": __version__}


def test_readyz_with_database(live_server):
    response = requests.get(live_server + "/readyz", timeout=10)
    assert response.status_code == 200 and response.json()["status"] == "ok"


@pytest.mark.parametrize("url", ["sqlite:////nonexistent-dir/nope/x.db", "postgresql://postgres@127.0.0.1:1/nope"])
def test_readyz_503_when_database_unreachable(url, caplog):
    app = create_app(Settings(database_url=url, secret_key="s" * 32), migrate=False)
    client = app.test_client()
    assert client.get("/healthz").status_code == 200  # alive, just not ready
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.get_json()["status"] == "unavailable"
    assert "nope" not in response.get_data(as_text=True)  # no connection details leak out


def test_metrics_count_scim_requests_by_route_template(client, protected, token):
    before = client.get("/metrics").get_data(as_text=True)
    client.get("/healthz")
    client.get("/portals")
    client.post("/saml/acs")
    client.get(protected, headers={"Authorization": f"Bearer {token}"})
    client.get(protected)  # 401
    client.get("/scim/v2/no/such/path/12345")
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.content_type.startswith("text/plain")
    text = response.get_data(as_text=True)

    def delta(**labels: str) -> float:
        name = "jsm_scim_scim_requests_total"
        return sample_value(text, name, **labels) - sample_value(before, name, **labels)

    assert delta(method="GET", route=protected, status="200") == 1
    assert delta(method="GET", route=protected, status="401") == 1
    assert delta(route="<unmatched>", status="404") == 1
    for route in ("/healthz", "/portals", "/saml/acs", "/metrics"):  # no SCIM traffic
        assert f'route="{route}"' not in text
    assert "/no/such/path/12345" not in text  # raw paths never become labels
    assert sample_value(text, "jsm_scim_scim_request_duration_seconds_count", route=protected) >= 2
    assert re.search(r"^jsm_scim_jsm_rate_limited_total [0-9.e+]+$", text, re.M)
    assert re.search(r'^jsm_scim_build_info\{version="[0-9][^"]*"\} 1\.0$', text, re.M)
    names = {line.split("{")[0].split(" ")[0] for line in text.splitlines() if line and not line.startswith("#")}
    ours = {name for name in names if not name.startswith(("python_", "process_"))}  # the client library's own
    assert ours and all(name.startswith("jsm_scim_") for name in ours), ours
    assert "_created" not in text  # no per-series creation timestamps (halves the scrape size)


def test_metrics_queue_gauges_from_probe(client):
    metrics.register_queue_probe(lambda: (7, 42.5, 3))
    try:
        text = client.get("/metrics").get_data(as_text=True)
        assert sample_value(text, "jsm_scim_sync_queue_depth") == 7
        assert sample_value(text, "jsm_scim_sync_oldest_pending_age_seconds") == 42.5
        assert sample_value(text, "jsm_scim_sync_dead_jobs") == 3
        metrics.register_queue_probe(lambda: 1 / 0)
        broken = client.get("/metrics")
        assert broken.status_code == 200 and "jsm_scim_sync_queue_depth" not in broken.get_data(as_text=True)
    finally:
        metrics.register_queue_probe(None)


def test_jsm_and_sync_helpers_count(client):
    before = client.get("/metrics").get_data(as_text=True)
    metrics.observe_jsm_call("post", "/rest/servicedeskapi/customer", 429)
    metrics.observe_sync_job("done")
    text = client.get("/metrics").get_data(as_text=True)
    def delta(name: str, **labels: str) -> float:
        return sample_value(text, name, **labels) - sample_value(before, name, **labels)

    assert delta("jsm_scim_jsm_rate_limited_total") == 1
    assert delta("jsm_scim_jsm_calls_total", method="POST", route="/rest/servicedeskapi/customer", status="429") == 1
    assert delta("jsm_scim_sync_jobs_total", outcome="done") == 1


def test_request_id_round_trip_over_http(live_server):
    sent = requests.get(live_server + "/healthz", headers={"X-Request-ID": "abc-123.def"}, timeout=10)
    assert sent.headers["X-Request-ID"] == "abc-123.def"
    generated = requests.get(live_server + "/healthz", timeout=10).headers["X-Request-ID"]
    assert re.fullmatch(r"[0-9a-f]{32}", generated)
    for insane in ("x" * 300, "has space", "semi;colon", "<script>"):
        replaced = requests.get(live_server + "/healthz", headers={"X-Request-ID": insane}, timeout=10)
        assert re.fullmatch(r"[0-9a-f]{32}", replaced.headers["X-Request-ID"])


def test_access_log_line_carries_request_id(client, caplog):
    caplog.set_level(logging.INFO, logger="jsm_scim.access")
    client.get("/healthz", headers={"X-Request-ID": "req-42"})
    lines = [r for r in caplog.records if r.name == "jsm_scim.access"]
    assert len(lines) == 1
    record = lines[0]
    assert record.status == 200 and record.path == "/healthz" and record.method == "GET"
    assert record.request_id == "req-42"
    assert "GET /healthz 200" in record.getMessage()
