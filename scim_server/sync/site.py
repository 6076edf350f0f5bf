"""Which JSM site the bridge talks to: the configured one, or the emulator a running ``serve`` published.

``jsm-scim serve`` without ``JSM_SCIM_JSM_URL`` runs the built-in emulator with a per-run token. It
publishes the emulator's URL and the path of its token file (``jsm-scim.emulator-token``, 0600) in
the database (``instance_values``), never the token itself: a CLI command or a ``jsm-scim worker``
beside it reads the URL there and the token from the file, so it needs both the database and the
file system of the running ``serve``.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from sqlalchemy import delete
from sqlalchemy.orm import Session, sessionmaker

from scim_server.db import transaction
from scim_server.models import InstanceValue
from scim_server.settings import Settings

PUBLISHED_EMULATOR = "serve_emulator"
#: Credentials sent to the built-in emulator: this e-mail and the per-run token.
EMULATOR_EMAIL = "bridge@emulator.invalid"


class SiteUnavailable(ValueError):
    """No JSM site is configured and none is published (or its token cannot be read)."""


def publish_emulator(session_factory: sessionmaker[Session], url: str, token_file: Path) -> None:
    """Record the running emulator (URL and token file path) for the other processes."""
    value = json.dumps({"url": url, "token_file": str(token_file.resolve())})
    with transaction(session_factory) as session:
        session.execute(delete(InstanceValue).where(InstanceValue.name == PUBLISHED_EMULATOR))
        session.add(InstanceValue(name=PUBLISHED_EMULATOR, value=value))


def withdraw_emulator(session_factory: sessionmaker[Session], url: str) -> None:
    """Forget the published emulator if it is still ``url`` (another ``serve`` may have replaced it)."""
    with transaction(session_factory) as session:
        published = _published(session)
        if published is not None and published.get("url") == url:
            session.execute(delete(InstanceValue).where(InstanceValue.name == PUBLISHED_EMULATOR))


def published_emulator(session_factory: sessionmaker[Session]) -> dict[str, Any] | None:
    """``{"url", "token_file"}`` of the emulator a running ``serve`` published, if any."""
    with transaction(session_factory) as session:
        return _published(session)


def _published(session: Session) -> dict[str, Any] | None:
    row = session.get(InstanceValue, PUBLISHED_EMULATOR)
    if row is None:
        return None
    try:
        value = json.loads(row.value)
    except ValueError:
        return None
    return value if isinstance(value, dict) and isinstance(value.get("url"), str) else None


def resolve_site(settings: Settings, session_factory: sessionmaker[Session]) -> Settings:
    """``settings`` with the JSM site filled in: unchanged when ``JSM_SCIM_JSM_URL`` is set, else the
    emulator of a running ``serve``. ``SiteUnavailable`` when there is neither."""
    if not settings.uses_emulator:
        return settings
    published = published_emulator(session_factory)
    if published is None:
        raise SiteUnavailable("JSM_SCIM_JSM_URL is not set and no `jsm-scim serve` with its built-in "
                              "emulator is running on this database")
    token_file = Path(str(published.get("token_file") or ""))
    try:
        token = token_file.read_text(encoding="utf-8").strip()
    except OSError:
        raise SiteUnavailable(f"the emulator of `jsm-scim serve` ({published['url']}) needs its token file "
                              f"{token_file}, which cannot be read here") from None
    return settings.with_overrides(jsm_url=published["url"], jsm_email=EMULATOR_EMAIL, jsm_api_token=token)
