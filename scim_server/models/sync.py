"""Tables owned by the sync feature (filled in by that feature)."""
