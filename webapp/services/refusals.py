"""Domain errors; webapp.errors turns them into HTTP responses."""


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
    status = 422
    code = "invalid"


class NotFound(ServiceError):
    status = 404
    code = "not_found"

    def __init__(self, message="Not found.", code=None):
        super().__init__(message, code)


class Conflict(ServiceError):
    status = 409
    code = "conflict"


class TooLarge(ServiceError):
    status = 413
    code = "too_large"


class Unavailable(ServiceError):
    """A dependency (S3, Redis, clamd) is down; the client may retry."""

    status = 503
    code = "unavailable"
