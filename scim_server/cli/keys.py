"""``jsm-scim`` commands of the keys feature (placeholder)."""
