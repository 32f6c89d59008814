"""Who may see what: the rules behind docs/access.md, in one place.

- Every ``/api/v1`` route needs a token; the public interfaces (maps, Open311 reads, OGC API
  Features) show public fields only.
- Reporters' personal data (name, contact) is read only by the roles that handle reports:
  admin and supervisor.
- A unit is responsible for an issue when it is the issue's lead, territorial or functional
  unit. A unit token sees its own issues in full (audit trail, photos), its own orders and its
  own accountability register; of the rest it sees the public fields (no photos). It never
  sees the supervision group's inspection plans: inspections are unannounced.
- Photos: the staff roles see every issue's photos; a unit those of its own issues; anonymous
  callers none, anywhere. Evidence named in a transition must be the caller's own upload (its
  token's or its unit's), and the photo as uploaded (with its EXIF) is for admins only.

Which role holds which permission is the table of ``layers.auth.roles``; this module applies
it to a caller and a thing (an issue, an order, a photo).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg import sql

from layers.auth import roles
from layers.auth.roles import Permission
from layers.auth.tokens import Principal
from layers.db import partitions
from layers.errors import Forbidden, NotFound, ValidationFailed


def holds(caller: Principal, permission: Permission, units: tuple[int | None, ...] = ()
          ) -> bool:
    """Whether the caller holds ``permission`` for a thing that the units ``units`` (ids)
    answer for: a unit holding it for its own things only must be one of them."""
    if not roles.allows(caller.role, permission):
        return False
    if roles.own_only(caller.role, permission):
        return caller.unit_id is not None and caller.unit_id in units
    return True


def require(caller: Principal, permission: Permission) -> None:
    """Forbidden unless the caller's role holds ``permission`` (for all things or its own)."""
    if not roles.allows(caller.role, permission):
        raise Forbidden(roles.refusal(caller.role, permission))


def sees_personal_data(caller: Principal | None) -> bool:
    """Whether the caller may read reporters' names and contacts."""
    return caller is not None and holds(caller, "read_personal_data")


def responsible(caller: Principal, lead: int | None, territorial: int | None,
                functional: int | None) -> bool:
    """Whether the caller's unit answers for an issue with these units."""
    return caller.unit_id is not None and caller.unit_id in (lead, territorial, functional)


def sees_photos(caller: Principal | None, unit_codes: tuple[str | None, ...],
                own_code: str | None) -> bool:
    """Whether the caller sees the photos of an issue whose lead, territorial and functional
    units are ``unit_codes``; ``own_code`` is the code of the caller's unit, if any."""
    if caller is None or not roles.allows(caller.role, "read_photos"):
        return False
    if roles.own_only(caller.role, "read_photos"):
        return own_code is not None and own_code in unit_codes
    return True


def unit_code(conn: psycopg.Connection[Any], caller: Principal | None) -> str | None:
    """The code of the caller's unit (None without a unit)."""
    if caller is None or caller.unit_id is None:
        return None
    row = conn.execute("SELECT code FROM unit WHERE id = %s", [caller.unit_id]).fetchone()
    return None if row is None else str(row[0])


def require_own_evidence(conn: psycopg.Connection[Any], caller: Principal,
                         refs: list[str]) -> None:
    """Each of ``refs`` was uploaded by the caller's token or unit.

    ValidationFailed names the others, with the same message whether a photo is someone
    else's or unknown: a caller learns nothing about photos it did not upload.
    """
    rows = conn.execute(
        "SELECT DISTINCT 'sha256:' || sha256 FROM evidence_upload"
        " WHERE sha256 = ANY(%s) AND (token_id = %s OR unit_id = %s)",
        [[r.removeprefix("sha256:") for r in refs], caller.token_id,
         caller.unit_id]).fetchall()
    foreign = sorted(set(refs) - {r[0] for r in rows})
    if foreign:
        raise ValidationFailed(f"evidence {', '.join(foreign)} is not a photo you (or your "
                               "unit) uploaded: upload the photo first")


def require_original(caller: Principal) -> None:
    """The photo as uploaded, with its EXIF (position, camera), is read by admins only."""
    if not holds(caller, "read_original_photo"):
        raise Forbidden("only an admin reads the original of a photo (with its metadata)")


def require_issue_detail(conn: psycopg.Connection[Any], caller: Principal,
                         public_id: str) -> None:
    """A unit reads an issue's audit trail and photos only when the issue is its own."""
    require(caller, "read_issue_details")
    if not roles.own_only(caller.role, "read_issue_details"):
        return
    row = conn.execute(sql.SQL("SELECT lead_unit_id, territorial_unit_id, functional_unit_id"
                               " FROM issue i WHERE {}").format(partitions.ISSUE_BY_PUBLIC_ID),
                       [public_id]).fetchone()
    if row is None:
        raise NotFound(f"no issue {public_id!r}")
    if not holds(caller, "read_issue_details", tuple(row)):
        raise Forbidden("a unit sees the details of its own issues only")


def require_own_unit(caller: Principal, unit_id: int, permission: Permission, what: str
                     ) -> None:
    """The caller holds ``permission`` for a thing of unit ``unit_id``: a unit reads only its
    own ``what`` (orders, accountability register)."""
    require(caller, permission)
    if not holds(caller, permission, (unit_id,)):
        raise Forbidden(f"a unit sees its own {what} only")


def require_evidence(conn: psycopg.Connection[Any], caller: Principal, ref: str) -> None:
    """A unit fetches a photo it (its unit) uploaded, or one attached to (or reported with)
    its issues. Transitions take only the caller's own uploads (``require_own_evidence``),
    so another unit's photo cannot become "attached" by naming it."""
    require(caller, "read_issue_details")
    if not roles.own_only(caller.role, "read_issue_details"):
        return
    sha256 = ref.removeprefix("sha256:")
    ref = f"sha256:{sha256}"
    # From the photo to its issues, through the partial GIN indexes of migration 0012 (the
    # "<> '[]'" conditions let the planner use them), not from the unit's issues to photos.
    row = conn.execute("""
        SELECT EXISTS (SELECT 1 FROM evidence_upload
                       WHERE sha256 = %(sha)s AND unit_id = %(unit)s)
            OR EXISTS (SELECT 1 FROM issue i
                       WHERE i.photos <> '[]'::jsonb AND i.photos ? %(ref)s
                         AND %(unit)s IN (i.lead_unit_id, i.territorial_unit_id,
                                          i.functional_unit_id))
            OR EXISTS (SELECT 1 FROM issue_event v JOIN issue i ON i.id = v.issue_id
                       WHERE v.evidence <> '[]'::jsonb AND v.evidence ? %(ref)s
                         AND %(unit)s IN (i.lead_unit_id, i.territorial_unit_id,
                                          i.functional_unit_id))""",
                       {"sha": sha256, "unit": caller.unit_id, "ref": ref}).fetchone()
    if not (row and row[0]):
        raise Forbidden("a unit sees the photos of its own issues only")


@dataclass(frozen=True)
class PersonalData:
    """Who reported an issue and how to reach them."""

    reporter: str | None
    reporter_contact: str | None


def personal_data(conn: psycopg.Connection[Any], public_ids: list[str]
                  ) -> dict[str, PersonalData]:
    """Reporter name and contact by public id (for callers who ``sees_personal_data``)."""
    rows = conn.execute("SELECT public_id, reporter, reporter_contact FROM issue"
                        " WHERE public_id = ANY(%s)", [public_ids]).fetchall()
    return {r[0]: PersonalData(r[1], r[2]) for r in rows}
