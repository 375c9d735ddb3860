"""A user's settings: personal API tokens and webhooks."""
