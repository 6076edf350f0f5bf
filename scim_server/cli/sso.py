"""``jsm-scim`` commands of the sso feature (placeholder)."""
