"""Tables owned by the audit feature (filled in by that feature)."""
