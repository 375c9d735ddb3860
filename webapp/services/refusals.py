"""The refusals services raise (a code, a message, an HTTP status); webapp.errors turns them into
pages or JSON."""


class ServiceError(Exception):
    """A refusal with a machine-readable code, a human message and an HTTP status."""

    status = 400
    code = "bad_request"

    def __init__(self, message, code=None, status=None):
        super().__init__(message)
        self.message = message
        if code:
            self.code = code
        if status:
            self.status = status


class InvalidInput(ServiceError):
    """The request is well formed but its values are not acceptable."""

    status = 422
    code = "invalid"


class NotFound(ServiceError):
    """No such thing, or not the caller's: the two are never told apart."""

    status = 404
    code = "not_found"

    def __init__(self, message="Not found.", code=None):
        super().__init__(message, code)


class Conflict(ServiceError):
    """The thing is not in a state that allows this (it may have changed meanwhile)."""

    status = 409
    code = "conflict"


class TooLarge(ServiceError):
    """Over a size, quota or count limit."""

    status = 413
    code = "too_large"


class Unavailable(ServiceError):
    """A dependency (S3, Redis, clamd) is down; the client may retry."""

    status = 503
    code = "unavailable"
