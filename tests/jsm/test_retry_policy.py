"""Unit tests of the backoff policy and the header parsers."""

from __future__ import annotations

import random
from datetime import datetime, timezone

import pytest

from jsm_client.errors import (
    JsmAuthError,
    JsmBadRequest,
    JsmConflict,
    JsmError,
    JsmNotFound,
    JsmRateLimited,
    JsmUnavailable,
    error_class_for,
)
from jsm_client.retry import BackoffPolicy, parse_rate_limit_reset, parse_retry_after

NOW = datetime(2024, 5, 1, 10, 15, 0, tzinfo=timezone.utc)


@pytest.mark.parametrize(
    ("header", "seconds"),
    [("5", 5.0), (" 0 ", 0.0), ("1.5", 1.5), ("-3", 0.0), ("Wed, 01 May 2024 10:15:30 GMT", 30.0),
     ("Wed, 01 May 2024 10:14:00 GMT", 0.0), ("soon", None), ("", None), (None, None)],
)
def test_parse_retry_after(header, seconds):
    assert parse_retry_after(header, now=NOW) == seconds


@pytest.mark.parametrize(
    ("header", "seconds"),
    [("2024-05-01T10:16Z", 60.0), ("2024-05-01T10:15:30+00:00", 30.0), ("2024-05-01T10:00Z", 0.0), ("x", None)],
)
def test_parse_rate_limit_reset(header, seconds):
    assert parse_rate_limit_reset(header, now=NOW) == seconds


def test_full_jitter_grows_exponentially_up_to_the_cap():
    policy = BackoffPolicy(base=0.5, cap=4.0, rng=random.Random(7))
    for attempt, ceiling in [(1, 0.5), (2, 1.0), (3, 2.0), (4, 4.0), (10, 4.0)]:
        waits = [policy.backoff(attempt) for _ in range(200)]
        assert all(0 <= w <= ceiling for w in waits)
        assert max(waits) > ceiling * 0.8  # jitter spans the range, not a constant


def test_next_wait_honours_retry_after_and_adds_only_positive_jitter():
    policy = BackoffPolicy(base=0.5, rng=random.Random(1))
    waits = [policy.next_wait(1, elapsed=0, retry_after=10) for _ in range(100)]
    assert all(10 <= w <= 10.5 for w in waits)


def test_next_wait_gives_up_on_attempts_and_budget():
    policy = BackoffPolicy(max_attempts=3, max_retry_seconds=10, base=1, cap=1, max_rate_limit_seconds=100)
    assert policy.next_wait(2, elapsed=0) is not None
    assert policy.next_wait(3, elapsed=0) is None
    assert policy.next_wait(1, elapsed=10) is None  # our own backoff stays within max_retry_seconds


def test_server_directed_waits_have_their_own_budget():
    policy = BackoffPolicy(max_attempts=10, max_retry_seconds=10, base=1, cap=1, max_rate_limit_seconds=100)
    assert 11 <= policy.next_wait(1, elapsed=9.5, retry_after=11) <= 12  # a long Retry-After is waited out
    assert policy.next_wait(1, elapsed=0, retry_after=101) is None  # beyond max_rate_limit_seconds
    assert policy.next_wait(2, elapsed=95, retry_after=10, directed=95) is None  # 95 s waited already
    assert policy.next_wait(2, elapsed=50, directed=45) is not None  # 5 s of own time spent: backoff ok


@pytest.mark.parametrize(
    ("status", "cls"),
    [(400, JsmBadRequest), (401, JsmAuthError), (403, JsmAuthError), (404, JsmNotFound), (409, JsmConflict),
     (412, JsmBadRequest), (429, JsmRateLimited), (500, JsmUnavailable), (503, JsmUnavailable),
     (None, JsmUnavailable), (302, JsmError)],
)
def test_error_class_for_status(status, cls):
    assert error_class_for(status) is cls


def test_error_text_names_the_call():
    err = JsmNotFound("Organization 9 does not exist.", status=404, method="GET", path="/rest/servicedeskapi/organization/9")
    assert str(err) == "GET /rest/servicedeskapi/organization/9 -> 404: Organization 9 does not exist."
    assert isinstance(err, JsmError) and err.message == "Organization 9 does not exist."
