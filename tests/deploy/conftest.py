"""Fixtures of the deployment proofs: scratch databases the tests create and drop themselves."""
from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Iterator

import pytest

from benchmarks.common import scratch_database
from tests.fixtures.db import BACKENDS, POSTGRES_URL


@contextlib.contextmanager
def scratch_database_or_skip(backend: str, label: str, directory: Path) -> Iterator[str]:
    """``scratch_database`` that skips the test (outside CI) when the backend is not reachable."""
    manager = scratch_database(backend, label, directory, admin_url=POSTGRES_URL)
    try:
        url = manager.__enter__()
    except Exception as exc:  # pragma: no cover - depends on the machine
        if os.environ.get("CI"):
            raise
        pytest.skip(f"{backend} not available: {exc}")
    try:
        yield url
    finally:
        manager.__exit__(None, None, None)


@pytest.fixture(params=BACKENDS)
def empty_database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A brand-new, unmigrated database on each configured backend, dropped after the test."""
    with scratch_database_or_skip(request.param, "migrations", tmp_path) as url:
        yield url
