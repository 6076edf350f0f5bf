"""Typed settings, read once from the environment (and an optional ``.env``-style file).

Nothing else in the code base reads ``os.environ``: every component receives a ``Settings``.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Mapping

PREFIX = "JSM_SCIM_"


class SettingsError(ValueError):
    """A setting has a value we cannot use."""


@dataclass(frozen=True)
class Settings:
    database_url: str = "sqlite:///jsm-scim.db"
    jsm_url: str | None = None
    jsm_email: str | None = None
    jsm_api_token: str | None = field(default=None, repr=False)
    public_url: str | None = None
    secret_key: str | None = field(default=None, repr=False)
    secret_file: str = "jsm-scim.secret"  # where a generated secret is kept (0600) without secret_key
    mappings_path: str | None = None
    host: str = "127.0.0.1"
    port: int = 8000
    # Hardening
    max_body_bytes: int = 10 * 1024 * 1024
    # Per key: Entra requires an app to take at least 25 requests/s per tenant; a conformance run or
    # an IdP's first sync comes as a burst of a few hundred requests. A runaway loop is held at 50/s.
    rate_limit_per_key: float = 50.0  # sustained SCIM requests per second per key
    rate_limit_burst: int = 2000
    # Propagation
    run_worker_in_process: bool = True
    sync_batch_size: int = 50
    sync_max_attempts: int = 12
    # Dead jobs are re-queued (for a few more attempts) this often, once JSM answers again (0: never)
    sync_dead_retry_s: float = 1800.0
    # A worker reconciles JSM with the stored state this often (0: never); one worker per period
    reconcile_every_s: float = 0.0
    # JSM pacing: requests per second per route for the whole installation (None: learnt from
    # JSM's X-RateLimit-Limit); the longest a call waits when JSM asks it to (Retry-After)
    jsm_rate_limit: float | None = None
    jsm_max_rate_limit_wait_s: float = 900.0
    # Keep the JSM organizations the bridge created when their group is deleted (or their rule removed)
    keep_deleted_organizations: bool = False
    # Revoke the portal-only access of accounts the bridge created when their user is deleted (irreversible via API)
    revoke_portal_access_on_delete: bool = False
    # Logging
    log_level: str = "INFO"
    log_json: bool = False
    # SSO: allow http and loopback/private addresses for IdP metadata URLs and OIDC issuers (labs, tests)
    allow_private_idp_urls: bool = False
    # SSO: at most this many seconds of a login are spent pushing the user to JSM (the rest goes on in the background)
    login_converge_deadline_s: float = 3.0
    # Key expiry warnings are logged while a used key expires within this many days
    key_expiry_warning_days: int = 30
    # A verified API key is trusted this long per process before it is read again (0: every request)
    key_cache_seconds: float = 10.0
    # Customer pages: the company's name, logo, accent colour and support contact (escaped on every page)
    brand_name: str = "Service desk sign-in"
    brand_logo_url: str | None = None
    brand_color: str = "#0052cc"
    support_contact: str | None = None

    def __post_init__(self) -> None:
        scheme = self.database_url.partition(":")[0].partition("+")[0].lower()
        if scheme not in _DATABASES or "://" not in self.database_url:
            raise SettingsError(f"{PREFIX}DATABASE_URL must be sqlite:///PATH or postgresql://..., got "
                                f"{self.database_url.partition('://')[0]!r}")
        if self.brand_logo_url is not None and not _LOGO_URL.match(self.brand_logo_url):
            raise SettingsError(f"{PREFIX}BRAND_LOGO_URL must be an http:// or https:// URL, got {self.brand_logo_url!r}")
        if not _HEX_COLOR.match(self.brand_color):
            raise SettingsError(f"{PREFIX}BRAND_COLOR must be a CSS hex colour like #0052cc, got {self.brand_color!r}")

    @property
    def effective_public_url(self) -> str:
        """Externally visible base URL without a trailing slash."""
        return (self.public_url or f"http://{self.host}:{self.port}").rstrip("/")

    @property
    def uses_emulator(self) -> bool:
        return not self.jsm_url

    def with_overrides(self, **changes: object) -> "Settings":
        return replace(self, **changes)


_DATABASES = ("sqlite", "postgresql", "postgres")
_LOGO_URL = re.compile(r"^https?://[^\s\"'<>\\]{1,2000}\Z")
_HEX_COLOR = re.compile(r"^#(?:[0-9a-fA-F]{3}|[0-9a-fA-F]{6})\Z")

_FIELDS = {
    "DATABASE_URL": ("database_url", str),
    "JSM_URL": ("jsm_url", str),
    "JSM_EMAIL": ("jsm_email", str),
    "JSM_API_TOKEN": ("jsm_api_token", str),
    "PUBLIC_URL": ("public_url", str),
    "SECRET_KEY": ("secret_key", str),
    "SECRET_FILE": ("secret_file", str),
    "MAPPINGS": ("mappings_path", str),
    "HOST": ("host", str),
    "PORT": ("port", int),
    "MAX_BODY_BYTES": ("max_body_bytes", int),
    "RATE_LIMIT_PER_KEY": ("rate_limit_per_key", float),
    "RATE_LIMIT_BURST": ("rate_limit_burst", int),
    "RUN_WORKER_IN_PROCESS": ("run_worker_in_process", "bool"),
    "SYNC_BATCH_SIZE": ("sync_batch_size", int),
    "SYNC_MAX_ATTEMPTS": ("sync_max_attempts", int),
    "SYNC_DEAD_RETRY": ("sync_dead_retry_s", "duration"),
    "RECONCILE_EVERY": ("reconcile_every_s", "duration"),
    "JSM_RATE_LIMIT": ("jsm_rate_limit", float),
    "JSM_MAX_RATE_LIMIT_WAIT": ("jsm_max_rate_limit_wait_s", "duration"),
    "KEEP_DELETED_ORGANIZATIONS": ("keep_deleted_organizations", "bool"),
    "REVOKE_PORTAL_ACCESS_ON_DELETE": ("revoke_portal_access_on_delete", "bool"),
    "LOG_LEVEL": ("log_level", str),
    "LOG_JSON": ("log_json", "bool"),
    "KEY_EXPIRY_WARNING_DAYS": ("key_expiry_warning_days", int),
    "KEY_CACHE_SECONDS": ("key_cache_seconds", float),
    "ALLOW_PRIVATE_IDP_URLS": ("allow_private_idp_urls", "bool"),
    "LOGIN_CONVERGE_DEADLINE_S": ("login_converge_deadline_s", float),
    "BRAND_NAME": ("brand_name", str),
    "BRAND_LOGO_URL": ("brand_logo_url", str),
    "BRAND_COLOR": ("brand_color", str),
    "SUPPORT_CONTACT": ("support_contact", str),
}

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*$")
_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(raw: str) -> float:
    """Seconds of ``90``, ``90s``, ``30m``, ``6h`` or ``1d``; ``ValueError`` otherwise."""
    match = _DURATION.match(raw.lower())
    if not match:
        raise ValueError(f"expected a duration such as 90s, 30m, 6h or 1d, got {raw!r}")
    return float(match.group(1)) * _UNITS[match.group(2)]


def _convert(name: str, raw: str, kind: object) -> object:
    if kind == "duration":
        try:
            return parse_duration(raw)
        except ValueError as exc:
            raise SettingsError(f"{PREFIX}{name}: {exc}") from None
    if kind == "bool":
        lowered = raw.strip().lower()
        if lowered in _TRUE:
            return True
        if lowered in _FALSE:
            return False
        raise SettingsError(f"{PREFIX}{name} must be a boolean, got {raw!r}")
    try:
        return kind(raw)  # type: ignore[operator]
    except ValueError as exc:
        raise SettingsError(f"{PREFIX}{name} has an invalid value {raw!r}") from exc


def read_env_file(path: Path) -> dict[str, str]:
    """Parse a ``.env``-style file: ``KEY=VALUE`` lines, ``#`` comments, optional quotes."""
    values: dict[str, str] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, _, value = line.partition("=")
        values[key.strip().removeprefix("export ").strip()] = value.strip().strip("'\"")
    return values


def load_settings(environ: Mapping[str, str] | None = None, **overrides: object) -> Settings:
    """Build settings from ``environ`` (default ``os.environ``) plus ``JSM_SCIM_ENV_FILE`` or ``./.env``.

    Real environment variables win over the file; keyword overrides win over both.
    """
    env = dict(os.environ if environ is None else environ)
    env_file = Path(env.get(f"{PREFIX}ENV_FILE", ".env"))
    merged = {**read_env_file(env_file), **env} if env_file.is_file() else env
    values: dict[str, object] = {}
    for name, (attr, kind) in _FIELDS.items():
        raw = merged.get(PREFIX + name)
        if raw is not None and raw != "":
            values[attr] = _convert(name, raw, kind)
    values.update(overrides)
    return Settings(**values)  # type: ignore[arg-type]
