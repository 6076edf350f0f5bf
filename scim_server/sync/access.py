"""Which JSM portals a user may use (for the SAML login shim), from the same planner as propagation."""
from __future__ import annotations

from sqlalchemy.orm import Session

from scim_server.sync import facts, planner
from scim_server.sync.rules import Rules


def allowed_project_keys(session: Session, rules: Rules, user_id: str) -> set[str] | None:
    """Project keys of the service desks the user may use; ``None`` means unrestricted.

    Unrestricted when the rules have no ``[portals]`` section. With one, the user gets the desks of
    the organizations the planner puts it in: none when the user is unknown, inactive or has no
    usable e-mail address.
    """
    if rules.portals is None:
        return None
    user = facts.load_user(session, user_id)
    if user is None:
        return set()
    organizations = planner.user_organizations(rules, user, facts.group_names_of_user(session, user_id))
    return planner.allowed_project_keys_for(rules, organizations) or set()
