"""``jsm-scim directories create|set|list`` and the claim rules behind them (store.directories)."""
from __future__ import annotations

import json

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from scim_server.cli import main
from scim_server.models.audit import AuditEvent
from scim_server.store import Scope, create_user
from scim_server.store import directories as store


@pytest.fixture
def cli(database_url, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    runner = CliRunner()

    def run(*args: str):
        return runner.invoke(main, list(args), env={"JSM_SCIM_DATABASE_URL": database_url}, catch_exceptions=False)

    return run


def listing(cli) -> dict[str, dict]:
    result = cli("directories", "list", "--json")
    assert result.exit_code == 0, result.output
    return {row["name"]: row for row in json.loads(result.stdout)}


def one_line_error(result, *fragments: str) -> str:
    assert result.exit_code != 0
    assert result.stdout == ""
    message = result.stderr.strip()
    assert "\n" not in message and message.startswith("error: "), message
    for fragment in fragments:
        assert fragment in message, message
    return message


def test_create_set_and_list(cli):
    result = cli("directories", "create", "acme", "--display-name", "Acme Corp", "--domain", "ACME.com",
                 "--domain", "@acme.co.uk")
    assert result.exit_code == 0, result.output
    assert listing(cli)["acme"] == {"name": "acme", "display_name": "Acme Corp", "domains": ["acme.co.uk", "acme.com"],
                                    "users": 0, "groups": 0, "keys": 0,
                                    "created_at": listing(cli)["acme"]["created_at"]}

    assert cli("directories", "set", "acme", "--domain", "acme.com", "--domain", "acme.de").exit_code == 0
    assert listing(cli)["acme"]["domains"] == ["acme.com", "acme.de"]  # exactly these: acme.co.uk released
    assert cli("directories", "set", "acme", "--display-name", "ACME Inc.").exit_code == 0
    row = listing(cli)["acme"]
    assert (row["display_name"], row["domains"]) == ("ACME Inc.", ["acme.com", "acme.de"])
    assert cli("directories", "set", "acme", "--no-domains").exit_code == 0
    assert listing(cli)["acme"]["domains"] == []

    text = cli("directories", "list")
    assert text.exit_code == 0 and "ACME Inc." in text.stdout and "(any unclaimed)" in text.stdout


def test_keys_create_still_creates_directories_and_counts_show(cli):
    assert cli("keys", "create", "--name", "okta", "--directory", "globex").exit_code == 0
    assert listing(cli)["globex"]["keys"] == 1 and listing(cli)["globex"]["domains"] == []


def test_changes_are_audited(cli, session_factory):
    cli("directories", "create", "acme", "--domain", "acme.com")
    cli("directories", "set", "acme", "--domain", "acme.org")
    with session_factory() as session:
        events = session.scalars(select(AuditEvent).where(AuditEvent.target_type == "directory")
                                 .order_by(AuditEvent.id)).all()
    assert [(e.action, e.detail["domains"]) for e in events] == [
        ("directory.create", ["acme.com"]), ("directory.update", ["acme.org"])]
    assert events[1].detail["released"] == ["acme.com"]


@pytest.mark.parametrize("args, fragment", [
    (("directories", "create", "bad name"), "directory name"),
    (("directories", "create", "acme", "--domain", "not a domain"), "is not an e-mail domain"),
    (("directories", "create", "acme", "--domain", "localhost"), "is not an e-mail domain"),
    (("directories", "set", "nobody", "--domain", "x.com"), "no directory named 'nobody'"),
    (("directories", "set", "default"), "nothing to change"),
])
def test_bad_input_is_one_line(cli, args, fragment):
    cli("directories", "create", "default")
    one_line_error(cli(*args), fragment)


def test_create_twice_is_refused(cli):
    assert cli("directories", "create", "acme").exit_code == 0
    one_line_error(cli("directories", "create", "acme"), "already exists")


@pytest.mark.parametrize("taken, wanted", [
    ("acme.com", "ACME.COM"),      # the same domain
    ("acme.com", "eu.acme.com"),   # a subdomain of another directory's claim
    ("eu.acme.com", "acme.com"),   # a parent of another directory's claim
])
def test_overlapping_claims_of_two_directories_are_refused(cli, taken, wanted):
    assert cli("directories", "create", "acme", "--domain", taken).exit_code == 0
    message = one_line_error(cli("directories", "create", "globex", "--domain", wanted),
                             "claimed by another directory")
    assert "acme " not in message.replace(wanted.lower(), "")
    assert "globex" not in listing(cli)  # the whole command rolled back


def test_one_directory_may_claim_a_domain_and_its_subdomain(cli):
    assert cli("directories", "create", "acme", "--domain", "acme.com", "--domain", "eu.acme.com").exit_code == 0
    assert listing(cli)["acme"]["domains"] == ["acme.com", "eu.acme.com"]


def test_idn_and_look_alike_domains_are_stored_in_ascii(cli, session_factory):
    assert cli("directories", "create", "acme", "--domain", "bücher.example", "--domain", "ａｃｍｅ.com").exit_code == 0
    assert listing(cli)["acme"]["domains"] == ["acme.com", "xn--bcher-kva.example"]
    with session_factory() as session:
        assert store.claiming_directory(session, "BÜCHER.example") == "acme"
        assert store.claiming_directory(session, "mail.acme.com") == "acme"
        assert store.claiming_directory(session, "acme.com.evil.example") is None
        assert store.claiming_directory(session, "notacme.com") is None


def test_claiming_a_domain_other_directories_use_lists_the_conflicts(cli, session_factory):
    """Decision: a claim never takes users away from another directory; the admin resolves it first."""
    with session_factory() as session, session.begin():
        globex = store.ensure_directory(session, "globex")
        for name, emails in (("mallory", ["mallory@acme.com"]), ("eve@eu.acme.com", []), ("bob", ["bob@globex.com"])):
            create_user(session, Scope(globex.id), name,
                        {"userName": name, "emails": [{"value": e} for e in emails]})
    message = one_line_error(cli("directories", "create", "acme", "--domain", "acme.com"), "cannot claim acme.com")
    assert "directory globex has 2 user(s)" in message and "mallory" in message and "eve@eu.acme.com" in message
    assert "bob" not in message
    assert "acme" not in listing(cli)
    # the domain nobody in another directory uses can be claimed
    assert cli("directories", "create", "acme", "--domain", "acme.org").exit_code == 0
    one_line_error(cli("directories", "set", "acme", "--domain", "acme.com"), "directory globex has 2 user(s)")
    assert listing(cli)["acme"]["domains"] == ["acme.org"]  # unchanged


def test_interface_functions(session_factory):
    with session_factory() as session, session.begin():
        store.ensure_directory(session, "acme", display_name="Acme")
        store.claim_domains(session, "acme", ["acme.com"])
        store.claim_domains(session, "acme", ["acme.com"])  # idempotent
        store.ensure_directory(session, "globex")
        with pytest.raises(store.DomainClaimed) as refused:
            store.claim_domains(session, "globex", ["sales.acme.com"])
        assert "acme" not in str(refused.value).replace("sales.acme.com", "")
        assert store.email_allowed(session, "acme", "a@acme.com")
        assert not store.email_allowed(session, "globex", "a@Sales.ACME.com")
        assert store.email_allowed(session, "globex", "a@globex.com")  # nobody claims it
        assert store.email_allowed(session, "acme", "a@globex.com")  # a claim is not a restriction
        assert store.claiming_directory(session, "acme.com") == "acme"
        assert store.ensure_directory(session, "acme").display_name == "Acme"
