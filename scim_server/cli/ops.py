"""``jsm-scim`` commands of the ops feature (placeholder)."""
