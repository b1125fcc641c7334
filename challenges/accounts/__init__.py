"""People, organisations, roles, login sessions and emailed single-use links."""
