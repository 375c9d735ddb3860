"""File requests: the owner's pages, and the upload-only pages and JSON calls of a request's senders."""
