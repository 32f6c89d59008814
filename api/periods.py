"""Period query parameters: every route's spelling of "from when to when" becomes one
:class:`layers.catalog.periods.Period` here, read in the district's zone (``Settings.zone``).

The routes keep their public names (``period``, ``phase``/``year``, ``since``/``until``,
Open311's ``start_date``/``end_date``) and pass the text on unparsed, so that one parser
(:func:`layers.catalog.periods.resolve`) reads them all and answers bad input with the same
message everywhere.
"""

from __future__ import annotations

from typing import Any

import psycopg

from layers.catalog import periods
from layers.db.settings import Settings


def read_period(conn: psycopg.Connection[Any], settings: Settings, *,
                period: str | None = None, phase: str | None = None, year: int | None = None,
                since: str | None = None, until: str | None = None,
                names: tuple[str, str] = ("since", "until")) -> periods.Period:
    """The period a request's parameters name (see :func:`layers.catalog.periods.resolve`)."""
    return periods.resolve(conn, settings.zone, period=period, phase=phase, year=year,
                           since=since, until=until, names=names)
