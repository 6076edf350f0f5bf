"""The example deployment in ``deploy/``: systemd units that systemd accepts and whose commands
migrate and serve, an nginx site that Debian's nginx accepts and that proxies TLS to the web unit's
gunicorn as the bridge expects, and a PostgreSQL setup script that creates a role and database the
bridge then migrates.

Missing tools (systemd-analyze, nginx, PostgreSQL) skip their test outside CI; ``.ci/run``
installs them, and under ``CI=true`` a missing tool fails.
"""
from __future__ import annotations

import contextlib
import datetime as dt
import ipaddress
import os
import shlex
import shutil
import socket
import ssl
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Iterator

import pytest
import requests
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from benchmarks.common import ManagedProcess, bridge_env, create_key, free_port, wait_until_ready
from jsm_client.emulator import EmulatorServer
from scim_server import __version__
from scim_server.db import alembic_config
from tests.fixtures.db import BACKENDS, POSTGRES_URL

REPO_ROOT = Path(__file__).resolve().parents[2]
DEPLOY = REPO_ROOT / "deploy"
INSTALL_PREFIX = "/opt/jsm-scim"  # where the units expect the checkout (deploy/README.md)


def _tool(name: str) -> str:
    found = shutil.which(name) or next((p for p in (f"/usr/sbin/{name}", f"/sbin/{name}") if os.access(p, os.X_OK)),
                                       None)
    if found is None:
        if os.environ.get("CI"):
            pytest.fail(f"{name} is not installed (.ci/run installs it)")
        pytest.skip(f"{name} is not installed")
    return found


# --- systemd -----------------------------------------------------------------------------------

def _installed_unit_text(name: str) -> str:
    """The unit as installed from this checkout: the install prefix is this tree and this venv."""
    unit = (DEPLOY / "systemd" / name).read_text()
    assert f"{INSTALL_PREFIX}/.venv/bin/" in unit
    return unit.replace(f"{INSTALL_PREFIX}/.venv", sys.prefix).replace(INSTALL_PREFIX, str(REPO_ROOT))


def _installed_unit(name: str, directory: Path) -> Path:
    path = directory / name
    path.write_text(_installed_unit_text(name))
    return path


def _unit_commands(name: str) -> dict[str, list[str]]:
    """``ExecStart``/``ExecStartPre`` of the installed unit, as argument lists."""
    lines = (line.split("=", 1) for line in _installed_unit_text(name).splitlines()
             if line.startswith(("ExecStart=", "ExecStartPre=")))
    return {key: shlex.split(value) for key, value in lines}


@pytest.mark.parametrize("unit", ["jsm-scim-web.service", "jsm-scim-worker.service"])
def test_systemd_units_pass_systemd_analyze_verify(unit, tmp_path):
    analyze = _tool("systemd-analyze")
    path = _installed_unit(unit, tmp_path)
    result = subprocess.run([analyze, "verify", str(path)], capture_output=True, text=True, timeout=60)
    # verify exits 0 on unknown keys and bad values too; it reports them on stderr
    assert result.returncode == 0 and result.stderr.strip() == "", result.stderr
    assert (Path(sys.prefix) / "bin" / "jsm-scim").exists()


def test_units_run_the_shipped_commands():
    web = (DEPLOY / "systemd" / "jsm-scim-web.service").read_text()
    worker = (DEPLOY / "systemd" / "jsm-scim-worker.service").read_text()
    assert f"ExecStart={INSTALL_PREFIX}/.venv/bin/gunicorn -c {INSTALL_PREFIX}/gunicorn.conf.py scim_server.wsgi:app" in web
    assert f"ExecStartPre={INSTALL_PREFIX}/.venv/bin/jsm-scim db upgrade" in web
    assert f"ExecStart={INSTALL_PREFIX}/.venv/bin/jsm-scim worker\n" in worker
    assert (REPO_ROOT / "gunicorn.conf.py").is_file()
    for unit in (web, worker):
        assert "EnvironmentFile=/etc/jsm-scim/jsm-scim.env" in unit
        assert "Environment=PROMETHEUS_MULTIPROC_DIR=/run/jsm-scim" in unit  # shared: one /metrics for both


def test_worker_unit_command_runs_outside_the_checkout(tmp_path):
    command = _unit_commands("jsm-scim-worker.service")["ExecStart"]
    with EmulatorServer() as emulator:
        env = bridge_env(f"sqlite:///{tmp_path / 'jsm-scim.db'}", jsm_url=emulator.url,
                         extra={"PROMETHEUS_MULTIPROC_DIR": str(tmp_path)})
        done = subprocess.run([*command, "--once"], env=env, cwd=tmp_path, capture_output=True, text=True,
                              timeout=180)
    assert done.returncode == 0, done.stderr  # migrated the new database, found nothing to do, exited


# --- nginx -------------------------------------------------------------------------------------

def _self_signed(directory: Path) -> tuple[Path, Path]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "bridge.example.com")])
    now = dt.datetime.now(dt.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("bridge.example.com"),
                                                        x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                           critical=False)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = directory / "bridge.pem", directory / "bridge.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    key_path.chmod(0o600)
    return cert_path, key_path


def _nginx_prefix(directory: Path, *, https_port: int = 443, http_port: int = 80, upstream: str | None = None) -> Path:
    """A self-contained nginx prefix whose http block includes the site file as an operator would,
    with only the certificate paths (and, to run it, ports and upstream) replaced."""
    cert, key = _self_signed(directory)
    site = (DEPLOY / "nginx" / "jsm-scim.conf").read_text()
    replacements = {"/etc/ssl/certs/bridge.example.com.pem": str(cert),
                    "/etc/ssl/private/bridge.example.com.key": str(key),
                    "/etc/nginx/jsm-scim-proxy.conf": str(DEPLOY / "nginx" / "jsm-scim-proxy.conf")}
    if https_port != 443:
        replacements.update({"listen 443 ssl;": f"listen 127.0.0.1:{https_port} ssl;", "listen [::]:443 ssl;": "",
                             "listen 80;": f"listen 127.0.0.1:{http_port};", "listen [::]:80;": ""})
    if upstream:
        replacements["server 127.0.0.1:8000;"] = f"server {upstream};"
    for old, new in replacements.items():
        assert old in site, old
        site = site.replace(old, new)
    (directory / "site.conf").write_text(site)
    temp = {kind: directory / kind for kind in ("body", "proxy", "fastcgi", "uwsgi", "scgi")}
    for path in temp.values():
        path.mkdir()
    user = "user root;\n" if os.geteuid() == 0 else ""  # workers must read the private temp directories
    (directory / "nginx.conf").write_text(
        f"{user}pid {directory}/nginx.pid;\nerror_log {directory}/error.log;\nevents {{}}\nhttp {{\n"
        f"    log_format with_id '$remote_addr \"$request\" $status $request_id';\n"
        f"    access_log {directory}/access.log with_id;\n"
        + "".join(f"    {kind}_temp_path {path};\n".replace("body_temp", "client_body_temp")
                  for kind, path in temp.items())
        + f"    include {directory}/site.conf;\n}}\n")
    return directory / "nginx.conf"


def test_nginx_site_passes_nginx_t(tmp_path):
    nginx = _tool("nginx")
    conf = _nginx_prefix(tmp_path)
    result = subprocess.run([nginx, "-t", "-c", str(conf), "-p", str(tmp_path)], capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 0, result.stderr
    assert "test is successful" in result.stderr


@pytest.fixture
def web_unit(tmp_path) -> Iterator[tuple[str, str]]:
    """The web unit's own commands, run as systemd would (outside the checkout, in the state
    directory): ``ExecStartPre`` migrates, ``ExecStart`` serves, on SQLite. (upstream, SCIM token)"""
    commands = _unit_commands("jsm-scim-web.service")
    state, metrics_dir = tmp_path / "state", tmp_path / "metrics"
    state.mkdir()
    metrics_dir.mkdir()
    port = free_port()
    env = bridge_env(f"sqlite:///{state / 'jsm-scim.db'}", extra={
        "JSM_SCIM_PORT": str(port), "WEB_CONCURRENCY": "1", "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir)})
    migrate = subprocess.run(commands["ExecStartPre"], env=env, cwd=state, capture_output=True, text=True,
                             timeout=180)
    assert migrate.returncode == 0, migrate.stderr
    token = create_key(env)
    web = ManagedProcess("gunicorn", commands["ExecStart"], env, tmp_path, cwd=state)
    try:
        wait_until_ready(f"http://127.0.0.1:{port}/healthz", web, timeout=180)
        yield f"127.0.0.1:{port}", token
    finally:
        web.stop()


@pytest.fixture
def proxied_bridge(web_unit, tmp_path) -> Iterator[tuple[str, str, Path]]:
    """nginx with the example site in front of the web unit's gunicorn: (https URL, SCIM token, CA file)."""
    nginx = _tool("nginx")
    upstream, token = web_unit
    https_port, http_port = free_port(), free_port()
    prefix = tmp_path / "nginx"
    prefix.mkdir()
    conf = _nginx_prefix(prefix, https_port=https_port, http_port=http_port, upstream=upstream)
    process = ManagedProcess("nginx", [nginx, "-c", str(conf), "-p", str(prefix), "-g", "daemon off;"],
                             dict(os.environ), tmp_path)
    try:
        base = f"https://127.0.0.1:{https_port}"
        _wait_for(base + "/healthz", prefix / "bridge.pem", process)
        yield base, token, prefix / "bridge.pem"
    finally:
        process.stop()


def _wait_for(url: str, ca: Path, process: ManagedProcess) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        assert process.alive, process.log_tail()
        with contextlib.suppress(requests.RequestException):
            if requests.get(url, verify=str(ca), timeout=2).status_code == 200:
                return
        time.sleep(0.2)
    pytest.fail(f"nginx not answering at {url}: {process.log_tail()}")


def test_nginx_proxies_tls_to_gunicorn_as_the_bridge_expects(proxied_bridge):
    base, token, ca = proxied_bridge
    health = requests.get(base + "/healthz", verify=str(ca), timeout=10)
    assert health.json() == {"status": "ok", "version": __version__}
    assert health.headers["Server"] == "nginx"  # server_tokens off: no version
    assert health.headers["Strict-Transport-Security"].startswith("max-age=")
    # nginx's $request_id reached the bridge, which logs and answers with it: one ID in both logs
    request_id = health.headers["X-Request-ID"]
    assert f'"GET /healthz HTTP/1.1" 200 {request_id}' in (ca.parent / "access.log").read_text()

    scim = requests.get(base + "/scim/v2/Users?count=1", headers={"Authorization": f"Bearer {token}"},
                        verify=str(ca), timeout=10)
    assert scim.status_code == 200 and scim.json()["totalResults"] == 0

    # Bodies up to the bridge's own limit pass nginx; beyond it the bridge answers with a SCIM 413.
    big = requests.post(base + "/scim/v2/Users", data=b"{" + b" " * (10 * 1024 * 1024 + 10) + b"}",
                        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/scim+json"},
                        verify=str(ca), timeout=60)
    assert big.status_code == 413
    assert big.headers["Content-Type"].startswith("application/scim+json"), big.text[:200]
    assert big.json()["status"] == "413"

    plain = base.replace("https://", "http://").rsplit(":", 1)[0]
    http_port = _site_http_port(ca.parent / "site.conf")
    redirect = requests.get(f"{plain}:{http_port}/scim/v2/Users", allow_redirects=False, timeout=10)
    assert redirect.status_code == 301 and redirect.headers["Location"].startswith("https://")


def _site_http_port(site: Path) -> int:
    line = next(line for line in site.read_text().splitlines() if line.strip().startswith("listen 127.0.0.1:")
                and "ssl" not in line)
    return int(line.strip().removeprefix("listen 127.0.0.1:").rstrip(";"))


def test_nginx_serves_metrics_to_this_machine_only(proxied_bridge):
    base, _token, ca = proxied_bridge
    assert requests.get(base + "/metrics", verify=str(ca), timeout=10).status_code == 200  # from 127.0.0.1
    port = int(base.rsplit(":", 1)[1])
    # From another address (127.0.0.2 is loopback too, but not in the allow list): 403.
    context = ssl.create_default_context(cafile=str(ca))
    with socket.create_connection(("127.0.0.1", port), timeout=10, source_address=("127.0.0.2", 0)) as raw, \
            context.wrap_socket(raw, server_hostname="bridge.example.com") as tls:
        tls.sendall(b"GET /metrics HTTP/1.1\r\nHost: bridge.example.com\r\nConnection: close\r\n\r\n")
        status_line = tls.recv(4096).split(b"\r\n", 1)[0]
    assert status_line == b"HTTP/1.1 403 Forbidden"


def current_head() -> str | None:
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head()


# --- PostgreSQL --------------------------------------------------------------------------------

@pytest.mark.postgres
@pytest.mark.skipif("postgresql" not in BACKENDS, reason="PostgreSQL backend not selected")
def test_postgresql_setup_script_creates_a_role_and_database_the_bridge_migrates(tmp_path):
    psql = _tool("psql")
    admin = make_url(POSTGRES_URL)
    suffix = uuid.uuid4().hex[:10]
    role, database = f"jsm_scim_t{suffix}", f"jsm_scim_t{suffix}_db"
    env = {**{k: v for k, v in os.environ.items() if not k.startswith(("JSM_SCIM_", "PG"))},
           "PGHOST": admin.host or "127.0.0.1", "PGPORT": str(admin.port or 5432), "PGUSER": admin.username or "postgres",
           "PATH": f"{Path(psql).parent}:{os.environ.get('PATH', '')}"}
    if admin.password:
        env["PGPASSWORD"] = admin.password
    admin_engine = create_engine(admin.set(drivername="postgresql+psycopg", database="postgres"),
                                 isolation_level="AUTOCOMMIT")
    try:
        with admin_engine.connect() as connection:
            connection.execute(text("SELECT 1"))
    except Exception as exc:  # pragma: no cover - depends on the machine
        if os.environ.get("CI"):
            raise
        pytest.skip(f"PostgreSQL not available: {exc}")
    script = DEPLOY / "postgresql" / "setup.sh"
    try:
        first = subprocess.run(["bash", str(script), role, database], env=env, cwd=tmp_path, capture_output=True,
                               text=True, timeout=120)
        assert first.returncode == 0, first.stderr
        url = first.stdout.strip().removeprefix("JSM_SCIM_DATABASE_URL=")
        assert url.startswith(f"postgresql://{role}:") and url.endswith(f"/{database}")
        again = subprocess.run(["bash", str(script), role, database], env=env, cwd=tmp_path, capture_output=True,
                               text=True, timeout=120)
        assert again.returncode == 0, again.stderr  # idempotent: a new password, the database kept
        url = again.stdout.strip().removeprefix("JSM_SCIM_DATABASE_URL=")

        upgrade = subprocess.run([sys.executable, "-m", "scim_server", "db", "upgrade"], cwd=tmp_path,
                                 env={**env, "JSM_SCIM_DATABASE_URL": url, "JSM_SCIM_ENV_FILE": os.devnull},
                                 capture_output=True, text=True, timeout=180)
        assert upgrade.returncode == 0, upgrade.stderr
        inside = create_engine(admin.set(drivername="postgresql+psycopg", database=database))
        with inside.connect() as connection:
            owners = connection.execute(text(
                "SELECT DISTINCT tableowner FROM pg_tables WHERE schemaname = 'public'")).scalars().all()
            revision = connection.execute(text("SELECT version_num FROM alembic_version")).scalar()
            public_connect = connection.execute(text(
                "SELECT has_database_privilege('public', :db, 'CONNECT')"), {"db": database}).scalar()
        inside.dispose()
        assert revision == current_head()
        assert owners == [role]  # the schema belongs to the bridge's role, created by `db upgrade` as that role
        assert public_connect is False
        bad = subprocess.run(["bash", str(script), "Robert'); DROP", database], env=env, cwd=tmp_path,
                             capture_output=True, text=True, timeout=60)
        assert bad.returncode == 2 and bad.stderr.startswith("error: ")
    finally:
        with admin_engine.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)'))
            connection.execute(text(f'DROP ROLE IF EXISTS "{role}"'))
        admin_engine.dispose()
