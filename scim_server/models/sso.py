"""Tables owned by the sso feature (filled in by that feature)."""
