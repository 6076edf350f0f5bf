"""Which JSM portals a user may use (for the SAML login shim), from the same planner as propagation."""
from __future__ import annotations

from sqlalchemy.orm import Session

from scim_server.sync import facts, ownership, planner
from scim_server.sync.rules import Rules


def allowed_project_keys(session: Session, rules: Rules, user_id: str) -> set[str] | None:
    """Project keys of the service desks the user may use; ``None`` means unrestricted.

    Unrestricted when the rules have neither a ``[portals]`` section nor one for the user's
    directory. Otherwise the user gets the desks of the organizations the planner puts it in (never
    through another directory's organization): none when the user is unknown, inactive or has no
    usable e-mail address.
    """
    user = facts.load_user(session, user_id)
    if rules.portals is None and (user is None or rules.of(user.directory).portals is None):
        return None
    if user is None:
        return set()
    groups = facts.group_names_of_user(session, user_id)
    owners = ownership.owners_of(session, [g.organization for g in planner.user_grants(rules, user, groups)])
    organizations = planner.user_organizations(rules, user, groups, owners)
    return planner.allowed_project_keys_for(rules, organizations, user.directory, owners) or set()
