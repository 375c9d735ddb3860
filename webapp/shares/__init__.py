"""Public share pages: /s/<token>."""
