"""Packaging: entry points, what importing a package loads, gunicorn's bind, migrations in the package,
the licence, the version in one place, dependency bounds and the ``[postgres]`` extra.

Each check runs in a fresh interpreter, so modules loaded by other tests cannot hide a stray import.
"""
from __future__ import annotations

import hashlib
import os
import re
import subprocess
import sys
from pathlib import Path

from packaging.requirements import Requirement

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


# The Apache License 2.0 exactly as https://www.apache.org/licenses/LICENSE-2.0.txt serves it.
APACHE_2_SHA256 = "cfc7749b96f63bd31c3c42b5c471bf756814053e847c10f3eb003417bc523d30"


def _setup_cfg() -> dict:
    """setup.cfg as setuptools resolves it (``attr:`` included), without building anything."""
    from setuptools.config.setupcfg import read_configuration

    return read_configuration(str(REPO_ROOT / "setup.cfg"))


def test_licence_is_the_complete_apache_2_text_and_the_metadata_says_so():
    text = (REPO_ROOT / "LICENSE").read_text(encoding="utf-8")
    assert hashlib.sha256(text.encode("utf-8")).hexdigest() == APACHE_2_SHA256
    assert "Apache License" in text and "Version 2.0, January 2004" in text and "END OF TERMS AND CONDITIONS" in text
    metadata = _setup_cfg()["metadata"]
    assert metadata["license"] == "Apache-2.0"
    assert metadata["license_files"] == ["LICENSE"]


def test_version_lives_in_one_place_and_the_changelog_has_its_entry():
    assert _setup_cfg()["metadata"]["version"] == scim_server.__version__  # setup.cfg: attr:
    assert "__version__" not in (REPO_ROOT / "setup.cfg").read_text().replace("attr: scim_server.__version__", "")
    changelog = (REPO_ROOT / "CHANGELOG.md").read_text(encoding="utf-8")
    headings = re.findall(r"^## \[([^\]]+)\](?: - (\d{4}-\d{2}-\d{2}))?$", changelog, flags=re.MULTILINE)
    assert headings[0] == ("Unreleased", "")  # keep-a-changelog: Unreleased on top, then releases, newest first
    assert headings[1][0] == scim_server.__version__ and headings[1][1]


def test_healthz_reports_the_version(tmp_path):
    from scim_server.app import create_app
    from scim_server.settings import Settings

    settings = Settings(database_url=f"sqlite:///{tmp_path / 'v.db'}", secret_file=str(tmp_path / "secret"))
    app = create_app(settings)
    try:
        answer = app.test_client().get("/healthz")
        assert answer.status_code == 200
        assert answer.get_json() == {"status": "ok", "version": scim_server.__version__}
    finally:
        from scim_server.services import services_of

        services_of(app).engine.dispose()


def _requirements(lines: list[str]) -> list[Requirement]:
    return [Requirement(line) for line in lines if line.strip()]


def test_every_runtime_dependency_has_an_upper_bound_and_postgres_is_an_extra():
    options = _setup_cfg()["options"]
    runtime = _requirements(options["install_requires"])
    extras = {name: _requirements(lines) for name, lines in options["extras_require"].items()}
    for requirement in runtime + extras["postgres"]:
        assert any(spec.operator in ("<", "<=", "==", "~=") for spec in requirement.specifier), \
            f"{requirement} has no upper bound"
    assert "psycopg" not in {r.name for r in runtime}
    assert [(r.name, r.extras) for r in extras["postgres"]] == [("psycopg", {"binary"})]
    assert "psycopg" in {r.name for r in extras["test"]}  # the suite runs every database test on PostgreSQL too
    assert ".[postgres,test,bench]" in (REPO_ROOT / "scripts" / "test.sh").read_text()


def test_postgres_url_without_the_driver_is_a_one_line_error_naming_the_extra(tmp_path):
    # psycopg made unimportable, as in an install without the [postgres] extra
    code = ("import sys; sys.modules['psycopg'] = None; from scim_server.cli import main; "
            "main(['db', 'upgrade'], prog_name='jsm-scim')")
    result = python(code, cwd=tmp_path, env={"JSM_SCIM_DATABASE_URL": "postgresql://nobody@127.0.0.1:1/none",
                                             "PYTHONPATH": str(REPO_ROOT)})
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1, result.stderr
    assert result.stderr.startswith("error: ") and "extra [postgres]" in result.stderr
