"""The jurisdiction hierarchy's one rule: a street has no parent, a community's parent is a
street, a grid's a community (街道 > 社区 > 网格; each level's parent is the level before it
in ``layers.vocab.LEVELS``).

The REST writes (``layers.catalog.jurisdictions``) and the imports (``layers.io.imports``)
both ask this module, so the same mistake is refused with the same message on either path.
Since a parent is always exactly one level up, the hierarchy cannot form a cycle.
"""

from __future__ import annotations

from typing import Any

import psycopg

from layers.errors import ValidationFailed
from layers.text import quoted
from layers.vocab import LEVELS

_ZH = {"street": "街道", "community": "社区", "grid": "网格"}


def level_problem(level: str | None) -> str | None:
    """Why ``level`` is not a level, or None."""
    if level in LEVELS:
        return None
    return f"级别须为 {'、'.join(LEVELS)} / level must be one of {', '.join(LEVELS)}"


def parent_problem(level: str, parent: str | None, parent_level: str | None) -> str | None:
    """Why a ``level`` jurisdiction may not hang under ``parent`` (a code; None: no parent)
    whose level is ``parent_level`` (None: no such jurisdiction); None when it fits.

    >>> parent_problem("grid", "S1", "street")
    "网格的上级须为社区，'S1' 是街道 / parent 'S1' is a street; a grid's parent must be a community"
    >>> parent_problem("street", None, None) is None
    True
    """
    wrong_level = level_problem(level)
    if wrong_level is not None:
        return wrong_level
    rank = next(i for i, name in enumerate(LEVELS) if name == level)
    if rank == 0:
        return None if parent is None else f"{_ZH[level]}没有上级 / a {level} has no parent"
    expected = LEVELS[rank - 1]
    if parent is None:
        return f"{_ZH[level]}须有上级{_ZH[expected]} / a {level} needs a parent {expected}"
    if parent_level is None:
        return f"上级辖区 {quoted(parent)} 不存在 / unknown parent {quoted(parent)}"
    if parent_level != expected:
        return (f"{_ZH[level]}的上级须为{_ZH[expected]}，{quoted(parent)} 是"
                f"{_ZH.get(parent_level, parent_level)} / parent {quoted(parent)} is a "
                f"{parent_level}; a {level}'s parent must be a {expected}")
    return None


def misfit_message(child: str, parent: str) -> str:
    """The refusal of a change after which the stored ``child`` no longer fits ``parent``."""
    return (f"下级辖区 {quoted(child)} 将不再适合挂在 {quoted(parent)} 下，请先移动它 / "
            f"stored jurisdiction {quoted(child)} would no longer fit under {quoted(parent)}; "
            "move it first")


def require_fit(conn: psycopg.Connection[Any], level: str, parent: str | None) -> None:
    """ValidationFailed unless a ``level`` jurisdiction may hang under the stored ``parent``."""
    parent_level = None
    if parent is not None:
        row = conn.execute("SELECT level FROM jurisdiction WHERE code = %s",
                           [parent]).fetchone()
        parent_level = None if row is None else str(row[0])
    problem = parent_problem(level, parent, parent_level)
    if problem is not None:
        raise ValidationFailed(problem)


def misfits(conn: psycopg.Connection[Any], parent: str | None = None
            ) -> list[tuple[str, str]]:
    """(child, parent) codes of stored jurisdictions whose level no longer fits their
    parent's: the children of ``parent``, or of any jurisdiction when it is None."""
    rows = conn.execute(
        "SELECT c.code, p.code FROM jurisdiction c JOIN jurisdiction p ON p.id = c.parent_id"
        " WHERE (%(parent)s::text IS NULL OR p.code = %(parent)s)"
        "  AND array_position(%(levels)s::text[], c.level)"
        "   <> array_position(%(levels)s::text[], p.level) + 1 ORDER BY c.code",
        {"parent": parent, "levels": list(LEVELS)}).fetchall()
    return [(str(child), str(up)) for child, up in rows]


def misfits_among(codes: list[str], levels: list[str], parents: list[str | None]
                  ) -> list[tuple[str, str]]:
    """:func:`misfits` of a set of jurisdictions held in memory (a preview's new set): the
    (child, parent) codes, by child code, whose level does not fit their parent's.

    >>> misfits_among(["S", "C"], ["grid", "community"], [None, "S"])
    [('C', 'S')]
    """
    level_of = dict(zip(codes, levels, strict=True))
    bad = [(child, parent) for child, level, parent in zip(codes, levels, parents, strict=True)
           if parent is not None and parent in level_of
           and LEVELS.index(level) != LEVELS.index(level_of[parent]) + 1]
    return sorted(bad)
