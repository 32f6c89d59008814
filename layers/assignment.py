"""Assignment by polygon: the one engine that places issues on ground, site and units."""

from __future__ import annotations

from collections.abc import Sequence
from importlib import resources
from typing import Any

import psycopg

# A point this far outside every jurisdiction polygon still goes to the nearest one (flagged
# outside_all); a GPS fix on the far kerb of a border road is typically within 30 m.
DEFAULT_TOLERANCE_M = 50.0

# Packaged constant SQL; values always go in as parameters.
_ASSIGN_SQL = resources.files("layers").joinpath("sql/assign_issues.sql").read_text("utf-8")


def assign_issues(
    conn: psycopg.Connection[Any],
    ids: Sequence[int] | None = None,
    *,
    tolerance_m: float = DEFAULT_TOLERANCE_M,
) -> int:
    """(Re)assign the given issues, or every issue when ``ids`` is None; return how many.

    Territorial jurisdiction and unit, linked site, functional and lead unit, the flags
    ``on_boundary``/``outside_all``/``via_buffer``, and the deadline when none is set.
    """
    cur = conn.execute(
        _ASSIGN_SQL,
        {"ids": list(ids) if ids is not None else None, "tolerance_m": tolerance_m},
    )
    return cur.rowcount
