"""Storage of SCIM resources: one function per write, each in the caller's transaction.

Every write derives the index columns from the document, records an audit entry and marks the
entity dirty in the outbox in the same transaction, so a rollback undoes all three.
"""
from scim_server.store.common import MAX_PAGE_SIZE, ListQuery, Scope
from scim_server.store.groups import (
    create_group,
    delete_group,
    find_group,
    find_group_by_name,
    group_document,
    list_groups,
    member_count,
    members_of_groups,
    update_group,
    user_groups_in_directory,
)
from scim_server.store.users import (
    UserRecord,
    create_user,
    delete_user,
    find_user,
    groups_of_users,
    list_users,
    update_user,
    users_with_email,
)

__all__ = [
    "MAX_PAGE_SIZE", "ListQuery", "Scope",
    "create_group", "delete_group", "find_group", "find_group_by_name", "group_document", "list_groups",
    "member_count", "members_of_groups", "update_group", "user_groups_in_directory",
    "UserRecord", "create_user", "delete_user", "find_user", "groups_of_users", "list_users", "update_user", "users_with_email",
]
