"""The score ranking as a workbook for meetings (创建工作例会): a title naming the group and
the period, a line in Chinese and one in English saying how to read the rates, the table of
:func:`layers.supervision.scores.ranking` with bilingual headers, numbers stored as numbers
and rates formatted as percentages, so the sheet can be sorted and summed; a second sheet
holds the line/block hand-over matrix (:mod:`layers.supervision.handovers`) when given, a
third the street ranking (街道排名, :mod:`layers.supervision.street_ranking`) when given.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import astuple, fields
from datetime import date, datetime, time, timedelta, tzinfo
from typing import Any

from layers.catalog.phases import Phase
from layers.io import xlsx
from layers.supervision.handovers import Matrix, Pair
from layers.supervision.scores import Group, Score
from layers.supervision.street_ranking import StreetScore

# The sheet's columns are the ranking's fields, in their order (the cells are their values).
FIELDS = tuple(f.name for f in fields(Score))
LABELS = {
    "rank": "排名", "code": "编码", "name": "名称", "kind": "类型", "layer": "点位图层",
    "issues": "问题数", "open": "未结案", "overdue_open": "超期未结", "points_at_risk": "风险分值",
    "points_lost": "失分", "reworks": "返工次数", "rework_cases": "返工率案卷数",
    "rework_rate": "返工率", "rework_rate_low": "返工率下限(95%)",
    "rework_rate_high": "返工率上限(95%)", "rework_rate_adjusted": "返工率(调整)",
    "on_time_cases": "按期结案率案卷数", "on_time_rate": "按期结案率",
    "on_time_rate_low": "按期结案率下限(95%)", "on_time_rate_high": "按期结案率上限(95%)",
    "on_time_rate_adjusted": "按期结案率(调整)", "avg_hours_to_rectify": "平均整改用时(小时)",
    "too_few_cases": "备注",
}
NUMBER_FORMATS = {"points_at_risk": "0.00", "points_lost": "0.00",
                  "avg_hours_to_rectify": "0.0",
                  **{f: "0.0%" for f in FIELDS if "_rate" in f}}
TOO_FEW_CASES = "案卷过少，不排名 / too few cases"
HANDOVER_FIELDS = tuple(f.name for f in fields(Pair))
HANDOVER_LABELS = {
    "from_code": "移出单位编码", "from_name": "移出单位", "from_kind": "移出单位类型",
    "to_code": "移入单位编码", "to_name": "移入单位", "to_kind": "移入单位类型",
    "direction": "方向", "reassign": "改派", "assign": "交办改派", "rework": "返工移交",
    "total": "合计",
}
DIRECTION_NAMES = {"territorial->functional": "块转条（属地→职能）",
                   "functional->territorial": "条转块（职能→属地）",
                   "territorial->territorial": "块转块（属地→属地）",
                   "functional->functional": "条转条（职能→职能）"}
# Kinds in words a meeting reads; the API keeps the codes.
KIND_NAMES = {"territorial": "属地单位", "functional": "职能部门", "community": "社区",
              "site": "点位", "street": "街道"}
GROUP_NAMES = {"unit": ("责任单位", "unit"), "community": ("社区", "community"),
               "site": ("点位", "site")}
# The street ranking's columns: each measure beside its rank, then the counts behind them.
STREET_FIELDS = ("rank", "code", "name", "name_en", "points_lost", "points_lost_rank",
                 "on_time_rate", "on_time_cases", "on_time_rank", "rework_rate",
                 "rework_cases", "rework_rank", "issues", "open", "overdue_open",
                 "points_at_risk")
STREET_LABELS = {**LABELS, "name": "街道", "name_en": "英文名称", "points_lost": "扣分",
                 "points_lost_rank": "扣分排名", "on_time_rate": "按期办结率",
                 "on_time_cases": "按期办结率案卷数", "on_time_rank": "按期办结率排名",
                 "rework_rank": "返工率排名"}


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
          zone: tzinfo, street: str | None = None) -> tuple[str, str]:
    """The Chinese and English titles, e.g. ``创建工作得分排名（责任单位） 2026-05-01 至
    2026-06-30`` (local days in ``zone``); one street's ranking is headed by the street's
    name (``street``)."""
    first, last = days(since, until, zone)
    zh_group, en_group = GROUP_NAMES[group]
    zh_phase = f"{phase.name_zh} " if phase else ""
    en_phase = f", {phase.name_en} phase" if phase else ""
    zh_street = f"{street} " if street else ""
    en_street = f"{street}: " if street else ""
    return (f"{zh_street}创建工作得分排名（{zh_group}） {zh_phase}{first} 至 {last}",
            f"{en_street}Scores and rankings by {en_group}{en_phase}, {first} to {last}")


def explanation(min_cases: int) -> tuple[str, str]:
    """How to read the rates, in one line of Chinese and one of English (the workbook, the
    terminal table and the API's description say the same)."""
    return ("调整率：经验贝叶斯估计，把各单位的比率向全体平均率收缩，案卷越少收缩越多，"
            f"按比率排名时采用；上下限为95%威尔逊置信区间；案卷少于{min_cases}件的不参与比率排名（案卷过少，不排名）。",
            f"Adjusted rate: empirical Bayes, each rate shrunk toward the overall rate, the more "
            f"the fewer its cases, used when ranking by a rate; low/high: 95 % Wilson interval; "
            f"under {min_cases} cases a rate is not ranked (too few cases).")


def _cells(row: Score) -> list[object]:
    values: list[object] = list(astuple(row))
    values[FIELDS.index("kind")] = KIND_NAMES.get(row.kind, row.kind)
    values[FIELDS.index("too_few_cases")] = TOO_FEW_CASES if row.too_few_cases else None
    return values


def workbook(rows: Sequence[Score], group: Group, since: datetime, until: datetime,
             *, zone: tzinfo, phase: Phase | None = None, as_of: datetime | None = None,
             min_cases: int, handovers: Matrix | None = None,
             streets: Sequence[StreetScore] | None = None, street: str | None = None) -> bytes:
    """The ranking as XLSX bytes: title rows, the rates' explanation (Chinese, then
    English), two header rows, one row per entry; days and the time it was made as local in
    ``zone``. With ``handovers``, a second sheet holds its unit pairs; with ``streets``,
    another the street ranking (街道排名); ``street`` names the one street the rows are of."""
    from openpyxl import Workbook
    from openpyxl.styles import Font

    zh, en = title(group, since, until, phase, zone=zone, street=street)
    as_of = (as_of or datetime.now(zone)).astimezone(zone)
    book = Workbook(write_only=True)
    sheet = book.create_sheet("得分排名")
    grey = Font(italic=True, color="808080")
    title_cells = [xlsx.cell(sheet, zh, font=Font(bold=True, size=14)),
                   xlsx.cell(sheet, f"{en}; as of 截至 {as_of:%Y-%m-%d %H:%M}", font=grey),
                   *(xlsx.cell(sheet, line, font=grey) for line in explanation(min_cases))]
    xlsx.write_table(sheet, FIELDS, LABELS, (_cells(r) for r in rows),
                     number_formats=NUMBER_FORMATS, title=title_cells)
    if handovers is not None:
        _handover_sheet(book.create_sheet("条块移交"), handovers, zone)
    if streets is not None:
        _street_sheet(book.create_sheet("街道排名"), streets, since, until, zone, phase)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def _handover_sheet(sheet: Any, found: Matrix, zone: tzinfo) -> None:
    """The hand-over matrix: a title, the four directions' totals, then one row per pair."""
    from openpyxl.styles import Font

    first, last = days(found.since, found.until, zone)
    heading = [xlsx.cell(sheet, f"条块移交矩阵 {first} 至 {last}", font=Font(bold=True, size=14)),
               xlsx.cell(sheet, f"Line/block hand-overs of the issues reported {first} to "
                                f"{last}: reassignment, assignment, rework",
                         font=Font(italic=True, color="808080"))]
    totals = [[xlsx.cell(sheet, DIRECTION_NAMES.get(d.direction, d.direction)),
               xlsx.cell(sheet, d.total)] for d in found.directions]
    kinds = (HANDOVER_FIELDS.index("from_kind"), HANDOVER_FIELDS.index("to_kind"))
    cells = ([KIND_NAMES.get(str(v), v) if i in kinds else v
              for i, v in enumerate(astuple(p))] for p in found.pairs)
    xlsx.write_table(sheet, HANDOVER_FIELDS, HANDOVER_LABELS, cells,
                     title=[*heading, *totals])


def _street_sheet(sheet: Any, rows: Sequence[StreetScore], since: datetime, until: datetime,
                  zone: tzinfo, phase: Phase | None) -> None:
    """The street ranking: a title, how it ranks, one row per street (ordered by points lost)."""
    from openpyxl.styles import Font

    first, last = days(since, until, zone)
    zh_phase = f"{phase.name_zh} " if phase else ""
    en_phase = f", {phase.name_en} phase" if phase else ""
    grey = Font(italic=True, color="808080")
    heading = [
        xlsx.cell(sheet, f"街道排名 {zh_phase}{first} 至 {last}", font=Font(bold=True, size=14)),
        xlsx.cell(sheet, f"Street ranking{en_phase}, {first} to {last}", font=grey),
        xlsx.cell(sheet, "扣分、按期办结率、返工率各自排名，1 为最差；案卷过少的比率不排名。",
                  font=grey),
        xlsx.cell(sheet, "Points lost, on-time closure rate and rework rate each ranked, 1 the "
                         "worst; a rate over too few cases is not ranked.", font=grey)]
    xlsx.write_table(sheet, STREET_FIELDS, STREET_LABELS,
                     ([getattr(r, f) for f in STREET_FIELDS] for r in rows),
                     number_formats={f: v for f, v in NUMBER_FORMATS.items()
                                     if f in STREET_FIELDS}, title=heading)
