"""Packaging: entry points, what importing a package loads, gunicorn's bind, migrations in the package.

Each check runs in a fresh interpreter, so modules loaded by other tests cannot hide a stray import.
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import scim_server
from scim_server.db import MIGRATIONS_DIR, alembic_config

REPO_ROOT = Path(__file__).resolve().parents[2]


def python(code: str, *, cwd: Path = REPO_ROOT, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("JSM_SCIM_")}
    return subprocess.run([sys.executable, "-c", code], cwd=cwd, env={**clean, **(env or {})},
                          capture_output=True, text=True, timeout=60)


def test_jsm_client_does_not_load_the_emulator():
    result = python("import sys, jsm_client; print(sorted(m for m in sys.modules if 'emulator' in m or m == 'flask'))")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_pure_scim_rules_load_no_database_layer():
    code = ("import sys; import scim_server.scim.patch, scim_server.scim.projection, scim_server.scim.resources; "
            "print(sorted(m for m in sys.modules if m.startswith(('sqlalchemy', 'scim_server.models', 'flask'))))")
    result = python(code)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_python_dash_m_runs_the_cli():
    result = subprocess.run([sys.executable, "-m", "scim_server", "--version"], capture_output=True, text=True,
                            timeout=60, cwd=REPO_ROOT)
    assert result.returncode == 0, result.stderr
    assert scim_server.__version__ in result.stdout
    assert "jsm-scim" in result.stdout


def test_gunicorn_binds_the_typed_settings_including_dot_env(tmp_path):
    (tmp_path / ".env").write_text("JSM_SCIM_HOST=127.0.0.2\nJSM_SCIM_PORT=8123\n")
    conf = REPO_ROOT / "gunicorn.conf.py"
    code = f"import runpy; print(runpy.run_path({str(conf)!r})['bind'])"
    from_file = python(code, cwd=tmp_path, env={"PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "m")})
    assert from_file.returncode == 0, from_file.stderr
    assert from_file.stdout.strip() == "127.0.0.2:8123"
    from_env = python(code, cwd=tmp_path, env={"PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "m"),
                                               "JSM_SCIM_PORT": "9001"})
    assert from_env.stdout.strip() == "127.0.0.2:9001"  # the environment wins over .env, as everywhere
    bad = python(code, cwd=tmp_path, env={"PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "m"), "JSM_SCIM_PORT": "x"})
    assert bad.returncode != 0 and "JSM_SCIM_PORT" in bad.stderr


def test_migrations_live_in_the_package_and_alembic_finds_them():
    assert MIGRATIONS_DIR.parent == Path(scim_server.__file__).resolve().parent
    from alembic.script import ScriptDirectory

    script = ScriptDirectory.from_config(alembic_config("sqlite://"))
    revisions = {rev.revision for rev in script.walk_revisions()}
    # Revision ids are what existing databases store in alembic_version: they must never change.
    assert {"0001", "0002", "0003", "0004"} <= revisions
    assert not (REPO_ROOT / "migrations").exists()


def test_wsgi_modules_expose_the_same_app(tmp_path):
    code = "import wsgi, scim_server.wsgi; assert wsgi.app is scim_server.wsgi.app; print(type(wsgi.app).__name__)"
    result = python(code, env={"JSM_SCIM_DATABASE_URL": f"sqlite:///{tmp_path / 'wsgi.db'}",
                               "PYTHONPATH": str(REPO_ROOT)})
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().endswith("Flask")
