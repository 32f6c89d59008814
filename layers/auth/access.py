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
"""

from __future__ import annotations

from typing import Any

import psycopg

from layers.auth.tokens import Principal
from layers.errors import Forbidden, NotFound, ValidationFailed

PERSONAL_DATA_READERS = ("admin", "supervisor")
# Roles that see the photos of every issue; a unit sees those of its own issues only.
PHOTO_READERS = ("admin", "supervisor", "inspector", "viewer")


def sees_personal_data(caller: Principal | None) -> bool:
    """Whether the caller may read reporters' names and contacts."""
    return caller is not None and caller.role in PERSONAL_DATA_READERS


def responsible(caller: Principal, lead: int | None, territorial: int | None,
                functional: int | None) -> bool:
    """Whether the caller's unit answers for an issue with these units."""
    return caller.unit_id is not None and caller.unit_id in (lead, territorial, functional)


def sees_photos(caller: Principal | None, unit_codes: tuple[str | None, ...],
                own_code: str | None) -> bool:
    """Whether the caller sees the photos of an issue whose lead, territorial and functional
    units are ``unit_codes``; ``own_code`` is the code of the caller's unit, if any."""
    if caller is None:
        return False
    if caller.role in PHOTO_READERS:
        return True
    return caller.role == "unit" and own_code is not None and own_code in unit_codes


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
    if caller.role != "admin":
        raise Forbidden("only an admin reads the original of a photo (with its metadata)")


def require_issue_detail(conn: psycopg.Connection[Any], caller: Principal,
                         public_id: str) -> None:
    """A unit reads an issue's audit trail and photos only when the issue is its own."""
    if caller.role != "unit":
        return
    row = conn.execute("SELECT lead_unit_id, territorial_unit_id, functional_unit_id"
                       " FROM issue WHERE public_id = %s", [public_id]).fetchone()
    if row is None:
        raise NotFound(f"no issue {public_id!r}")
    if not responsible(caller, *row):
        raise Forbidden("a unit sees the details of its own issues only")


def require_own_unit(caller: Principal, unit_id: int, what: str) -> None:
    """A unit reads only its own ``what`` (orders, accountability register)."""
    if caller.role == "unit" and caller.unit_id != unit_id:
        raise Forbidden(f"a unit sees its own {what} only")


def require_evidence(conn: psycopg.Connection[Any], caller: Principal, ref: str) -> None:
    """A unit fetches a photo it (its unit) uploaded, or one attached to (or reported with)
    its issues. Transitions take only the caller's own uploads (``require_own_evidence``),
    so another unit's photo cannot become "attached" by naming it."""
    if caller.role != "unit":
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


def personal_data(conn: psycopg.Connection[Any], public_ids: list[str]
                  ) -> dict[str, dict[str, str | None]]:
    """Reporter name and contact by public id (for PERSONAL_DATA_READERS only)."""
    rows = conn.execute("SELECT public_id, reporter, reporter_contact FROM issue"
                        " WHERE public_id = ANY(%s)", [public_ids]).fetchall()
    return {r[0]: {"reporter": r[1], "reporter_contact": r[2]} for r in rows}
