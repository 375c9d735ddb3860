"""Use cases: one unit of work per function; callers pass the user and ids explicitly."""
