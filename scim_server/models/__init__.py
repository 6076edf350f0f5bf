"""All SQLAlchemy models; importing this package registers every table on ``Base.metadata``."""
from scim_server.models import audit, idp, sso, sync  # noqa: F401  (tables owned by those features)
from scim_server.models.instance import InstanceValue
from scim_server.models.keys import ApiKey, Directory, DirectoryDomain
from scim_server.models.resources import Group, GroupMember, User, UserValue

__all__ = ["ApiKey", "Directory", "DirectoryDomain", "Group", "GroupMember", "InstanceValue", "User", "UserValue"]
