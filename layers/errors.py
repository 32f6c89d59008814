"""Domain errors: each carries an HTTP status, a stable code and a message safe to show.

The API maps them to RFC 9457 problem+json in one table (api/errors.py); the CLI prints the
message. Database text never goes into these messages.
"""

from __future__ import annotations

from typing import Any, ClassVar, TypeVar

T = TypeVar("T")


class DomainError(Exception):
    """Base class: ``status`` and ``code`` are stable; ``message`` is safe for users.

    A kind of error states its three in its class line, for example
    ``class Gone(DomainError, status=410, code="gone", title="Gone")``; what it leaves out it
    inherits.
    """

    status: ClassVar[int] = 400
    code: ClassVar[str] = "bad-request"
    title: ClassVar[str] = "Bad request"

    def __init_subclass__(cls, *, status: int | None = None, code: str | None = None,
                          title: str | None = None, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls.status = cls.status if status is None else status
        cls.code = cls.code if code is None else code
        cls.title = cls.title if title is None else title

    def __init__(self, message: str, *, details: object = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details


class ValidationFailed(DomainError, status=422, code="validation-failed",
                       title="Validation failed"):
    """Input was understood but is not acceptable."""


class NotFound(DomainError, status=404, code="not-found", title="Not found"):
    """The thing named does not exist."""


class Conflict(DomainError, status=409, code="conflict", title="Conflict"):
    """The request conflicts with the current state (stale version, duplicate key)."""


class DatabaseUnavailable(DomainError, status=503, code="database-unavailable",
                          title="Service unavailable"):
    """The database cannot be reached right now; the client may retry."""


class Unauthorized(DomainError, status=401, code="unauthorized", title="Unauthorized"):
    """No valid credentials were presented."""


class Forbidden(DomainError, status=403, code="forbidden", title="Forbidden"):
    """The caller is known but may not do this."""


class PayloadTooLarge(DomainError, status=413, code="payload-too-large",
                      title="Payload too large"):
    """The request body or an uploaded file is over its size limit."""


def found(row: T | None, missing: str) -> T:
    """``row``, or :class:`NotFound` saying ``missing`` when a lookup found none."""
    if row is None:
        raise NotFound(missing)
    return row
