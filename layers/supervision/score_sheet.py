"""The score ranking as a workbook for meetings (创建工作例会): a title naming the group and
the period, the table of :func:`layers.supervision.scores.ranking` with bilingual headers,
numbers stored as numbers and rates formatted as percentages, so the sheet can be sorted and summed.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import astuple, fields
from datetime import date, datetime, time, timedelta, tzinfo

from layers.catalog.phases import Phase
from layers.io import xlsx
from layers.supervision.scores import Group, Score

# The sheet's columns are the ranking's fields, in their order (the cells are their values).
FIELDS = tuple(f.name for f in fields(Score))
LABELS = {
    "rank": "排名", "code": "编码", "name": "名称", "kind": "类型", "layer": "点位图层",
    "issues": "问题数", "open": "未结案", "overdue_open": "超期未结", "points_at_risk": "风险分值",
    "points_lost": "失分", "reworks": "返工次数", "rework_rate": "返工率",
    "on_time_rate": "按期结案率", "avg_hours_to_rectify": "平均整改用时(小时)",
}
NUMBER_FORMATS = {"points_at_risk": "0.00", "points_lost": "0.00", "rework_rate": "0.0%",
                  "on_time_rate": "0.0%", "avg_hours_to_rectify": "0.0"}
# Kinds in words a meeting reads; the API keeps the codes.
KIND_NAMES = {"territorial": "属地单位", "functional": "职能部门", "community": "社区",
              "site": "点位"}
GROUP_NAMES = {"unit": ("责任单位", "unit"), "community": ("社区", "community"),
               "site": ("点位", "site")}


def days(since: datetime, until: datetime, zone: tzinfo) -> tuple[date, date]:
    """The first and last local day (in ``zone``) inside the period ``[since, until)``."""
    end = until.astimezone(zone)
    # An exclusive end at midnight means the period's last day is the one before.
    last = (end - timedelta(days=1)).date() if end.time() == time() else end.date()
    return since.astimezone(zone).date(), last


def filename(group: Group, since: datetime, until: datetime, *, zone: tzinfo) -> str:
    """An ASCII file name for the workbook, e.g. ``scores-unit-2026-05-01-2026-06-30.xlsx``
    (local days in ``zone``)."""
    first, last = days(since, until, zone)
    return f"scores-{group}-{first}-{last}.xlsx"


def title(group: Group, since: datetime, until: datetime, phase: Phase | None = None, *,
          zone: tzinfo) -> tuple[str, str]:
    """The Chinese and English titles, e.g. ``创建工作得分排名（责任单位） 2026-05-01 至
    2026-06-30`` (local days in ``zone``)."""
    first, last = days(since, until, zone)
    zh_group, en_group = GROUP_NAMES[group]
    zh_phase = f"{phase.name_zh} " if phase else ""
    en_phase = f", {phase.name_en} phase" if phase else ""
    return (f"创建工作得分排名（{zh_group}） {zh_phase}{first} 至 {last}",
            f"Scores and rankings by {en_group}{en_phase}, {first} to {last}")


def workbook(rows: Sequence[Score], group: Group, since: datetime, until: datetime,
             *, zone: tzinfo, phase: Phase | None = None, as_of: datetime | None = None
             ) -> bytes:
    """The ranking as XLSX bytes: title rows, two header rows, one row per ranked entry;
    days and the time it was made as local in ``zone``."""
    from openpyxl import Workbook
    from openpyxl.styles import Font

    zh, en = title(group, since, until, phase, zone=zone)
    as_of = (as_of or datetime.now(zone)).astimezone(zone)
    book = Workbook(write_only=True)
    sheet = book.create_sheet("得分排名")
    title_cells = [xlsx.cell(sheet, zh, font=Font(bold=True, size=14)),
                   xlsx.cell(sheet, f"{en}; as of 截至 {as_of:%Y-%m-%d %H:%M}",
                             font=Font(italic=True, color="808080"))]
    kind = FIELDS.index("kind")
    cells = ([KIND_NAMES.get(v, v) if i == kind else v for i, v in enumerate(astuple(r))]
             for r in rows)
    xlsx.write_table(sheet, FIELDS, LABELS, cells, number_formats=NUMBER_FORMATS,
                     title=title_cells)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()
