"""Admin pages: dashboard, moderation, users, audit log, jobs."""
