"""The emulator's site endpoints (info, myself, mypermissions, /_emulator/site) and its state file."""
from __future__ import annotations

import requests

from jsm_client.emulator import EmulatorServer, JsmEmulator

EMAIL, TOKEN = "bot@example.com", "right"


def test_site_endpoints_answer_as_jsm_does(tmp_path):
    with EmulatorServer(emulator=JsmEmulator(expected_email=EMAIL, expected_token=TOKEN)) as site:
        url = site.url
        assert requests.get(f"{url}/rest/servicedeskapi/info", timeout=5).status_code == 200  # no credentials
        assert requests.get(f"{url}/rest/api/3/myself", auth=(EMAIL, "wrong"), timeout=5).status_code == 401
        me = requests.get(f"{url}/rest/api/3/myself", auth=(EMAIL, TOKEN), timeout=5).json()
        assert me["emailAddress"] == EMAIL and me["accountType"] == "atlassian"
        perms = f"{url}/rest/api/3/mypermissions"
        assert requests.get(perms, auth=(EMAIL, TOKEN), timeout=5).json()["errorMessages"]
        granted = requests.get(perms, params={"permissions": "ADMINISTER"}, auth=(EMAIL, TOKEN), timeout=5).json()
        assert granted["permissions"]["ADMINISTER"]["havePermission"] is True
        site.emulator.configure_site({"jira_admin": False, "servicedesks": {"HELP": {"openAccess": True}}})
        denied = requests.get(perms, params={"permissions": "ADMINISTER"}, auth=(EMAIL, TOKEN), timeout=5).json()
        assert denied["permissions"]["ADMINISTER"]["havePermission"] is False
        probe = requests.delete(f"{url}/rest/servicedeskapi/servicedesk/HELP/customer", json={"accountIds": []},
                                auth=(EMAIL, TOKEN), headers={"X-ExperimentalApi": "opt-in"}, timeout=5)
        assert probe.status_code == 400  # open access: JSM refuses removals
        assert requests.post(f"{url}/_emulator/site", json={"servicedesks": {"NOPE": {}}}, timeout=5).status_code == 400
        assert requests.get(f"{url}/_emulator/site", timeout=5).json()["servicedesks"]["HELP"] == {"openAccess": True}


def test_state_file_keeps_everything_across_restarts(tmp_path):
    path = tmp_path / "emulator.json"
    first = JsmEmulator(state_file=path)
    account = first.add_customer("alice@acme.com", "Alice")
    org = first.add_organization("Acme")
    with first._lock:
        first.state.change_members(first.state.organization(org), [account], add=True)
        first.state.link_organization(first.state.service_desk("HELP"), org, add=True)
        first.state.set_property(first.state.organization(org), "bridge", {"directory": "default"}, 10)
    first.configure_site({"servicedesks": {"BILL": {"openAccess": True}}})
    first.close()
    assert path.stat().st_mode & 0o777 == 0o600

    second = JsmEmulator(state_file=path)
    assert second.state_dict() == first.state_dict()
    assert second.site_dict()["servicedesks"]["BILL"] == {"openAccess": True}
    assert second.add_organization("Beta") == str(int(org) + 1)  # ids go on where they stopped
    assert second.state.organization(org).properties == {"bridge": {"directory": "default"}}
    path.write_text("not json")
    try:
        JsmEmulator(state_file=path)
    except ValueError as exc:
        assert "is not a saved JSM emulator state" in str(exc)
    else:
        raise AssertionError("a corrupt state file must not be replaced silently")
