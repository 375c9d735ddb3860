"""Storage events: S3 ObjectCreated notifications in, promotions out."""
