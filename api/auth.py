"""Bearer-token authentication and role checks, as request dependencies.

The token is looked up by its hash (layers.auth.tokens); which role may do what is the table of
layers.auth.roles. Route modules declare what they need with
``Depends(require_permission(...))`` or the ``Caller`` alias.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

from fastapi import Depends, Request

from api import reads
from api.deps import Conn
from layers.auth import access, scope, tokens
from layers.auth.roles import Permission
from layers.auth.tokens import Principal
from layers.errors import Unauthorized

# Set in the request's scope once a token has really authenticated: the rate limits
# (api.guards) count a request as anonymous unless it carries this mark, so a made-up
# Authorization header buys nothing.
AUTHENTICATED = "sitewatch.authenticated"


def bearer_token(header: str) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header value, else None."""
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        return None
    return value.strip()


def authenticate(request: Request, conn: Conn, token: str) -> Principal | None:
    """The live token's principal (marking the request authenticated), else None.

    A street-scoped token's connection is confined to its street from here on
    (layers.auth.scope): every query the request makes sees that street only.
    """
    replica = reads.on_replica(request)  # a standby refuses the last-use update
    principal = tokens.authenticate(conn, token, touch_use=not replica)
    if principal is not None:
        request.scope[AUTHENTICATED] = True
        if replica:
            reads.touch_token(request, principal.token_id)
        if principal.street_id is not None:
            scope.enter(conn, principal.street_id)
    return principal


def optional_caller(request: Request, conn: Conn) -> Principal | None:
    """The caller when a valid token is presented, None for anonymous requests.

    A token that is presented but invalid is an error, not anonymity: clients must learn
    that their token expired rather than silently see less.
    """
    token = bearer_token(request.headers.get("authorization", ""))
    if token is None:
        if request.headers.get("authorization"):
            raise Unauthorized("use 'Authorization: Bearer <token>'")
        return None
    principal = authenticate(request, conn, token)
    if principal is None:
        raise Unauthorized("the token is unknown, expired or revoked")
    return principal


def required_caller(principal: Annotated[Principal | None, Depends(optional_caller)]
                    ) -> Principal:
    """The authenticated caller; 401 without a token."""
    if principal is None:
        raise Unauthorized("this route needs 'Authorization: Bearer <token>'")
    return principal


def require_permission(permission: Permission) -> Callable[[Principal], Principal]:
    """A dependency admitting only callers whose role holds ``permission`` (layers.auth.roles;
    a unit holding it for its own things only is admitted, the route checks "own")."""

    def check(principal: Annotated[Principal, Depends(required_caller)]) -> Principal:
        access.require(principal, permission)
        return principal

    return check


Caller = Annotated[Principal, Depends(required_caller)]
MaybeCaller = Annotated[Principal | None, Depends(optional_caller)]
#: The caller who may edit the catalog (units, categories, layers, jurisdictions, sites).
Admin = Annotated[Principal, Depends(require_permission("edit_catalog"))]
