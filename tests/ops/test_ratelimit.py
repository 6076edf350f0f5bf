"""Per-key token buckets: unit behaviour with a fake clock, and 429 + Retry-After over HTTP."""
from __future__ import annotations

import pytest

from scim_server.app import create_app
from scim_server.ratelimit import TokenBucketLimiter
from scim_server.scim.errors import ERROR_SCHEMA
from scim_server.services import services_of
from tests.fixtures.db import issue_token
from tests.fixtures.protected import protected_path


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_bucket_allows_burst_then_refills_at_rate():
    clock = FakeClock()
    limiter = TokenBucketLimiter(rate=2.0, burst=3, clock=clock)
    assert [limiter.try_acquire("k") for _ in range(3)] == [0.0, 0.0, 0.0]
    assert limiter.try_acquire("k") == pytest.approx(0.5)
    assert limiter.try_acquire("other") == 0.0  # buckets are per key
    clock.now += 0.5
    assert limiter.try_acquire("k") == 0.0
    assert limiter.try_acquire("k") > 0
    clock.now += 100
    assert [limiter.try_acquire("k") for _ in range(3)] == [0.0, 0.0, 0.0]  # never more than the burst
    assert limiter.try_acquire("k") > 0


def test_zero_rate_disables_limiting():
    limiter = TokenBucketLimiter(rate=0, burst=1)
    assert all(limiter.try_acquire("k") == 0.0 for _ in range(100))


def test_http_429_with_retry_after_after_burst(settings, session_factory):
    app = create_app(settings.with_overrides(rate_limit_per_key=0.25, rate_limit_burst=3), migrate=False)
    try:
        path = protected_path(app)
        client = app.test_client()
        slow, other = issue_token(session_factory, "slow"), issue_token(session_factory, "other")
        statuses = [client.get(path, headers={"Authorization": f"Bearer {slow}"}).status_code for _ in range(3)]
        assert statuses == [200, 200, 200]
        limited = client.get(path, headers={"Authorization": f"Bearer {slow}"})
        assert limited.status_code == 429
        assert 1 <= int(limited.headers["Retry-After"]) <= 4
        body = limited.get_json(force=True)
        assert body["schemas"] == [ERROR_SCHEMA] and body["status"] == "429"
        assert client.get(path, headers={"Authorization": f"Bearer {other}"}).status_code == 200
        metrics_text = client.get("/metrics").get_data(as_text=True)
        assert 'status="429"' in metrics_text
    finally:
        services_of(app).engine.dispose()
