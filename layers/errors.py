"""Domain errors: each carries an HTTP status, a stable code and a message safe to show.

The API maps them to RFC 9457 problem+json in one table (api/errors.py); the CLI prints the
message. Database text never goes into these messages.
"""

from __future__ import annotations


class DomainError(Exception):
    """Base class: ``status`` and ``code`` are stable; ``message`` is safe for users."""

    status = 400
    code = "bad-request"
    title = "Bad request"

    def __init__(self, message: str, *, details: object = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details


class ValidationFailed(DomainError):
    """Input was understood but is not acceptable."""

    status = 422
    code = "validation-failed"
    title = "Validation failed"


class NotFound(DomainError):
    """The thing named does not exist."""

    status = 404
    code = "not-found"
    title = "Not found"


class Conflict(DomainError):
    """The request conflicts with the current state (stale version, duplicate key)."""

    status = 409
    code = "conflict"
    title = "Conflict"


class DatabaseUnavailable(DomainError):
    """The database cannot be reached right now; the client may retry."""

    status = 503
    code = "database-unavailable"
    title = "Service unavailable"


class Unauthorized(DomainError):
    """No valid credentials were presented."""

    status = 401
    code = "unauthorized"
    title = "Unauthorized"


class Forbidden(DomainError):
    """The caller is known but may not do this."""

    status = 403
    code = "forbidden"
    title = "Forbidden"


class PayloadTooLarge(DomainError):
    """The request body or an uploaded file is over its size limit."""

    status = 413
    code = "payload-too-large"
    title = "Payload too large"
