"""The user's files: listing, details, download, delete."""
