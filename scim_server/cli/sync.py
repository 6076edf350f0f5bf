"""``jsm-scim`` commands of the sync feature (placeholder)."""
