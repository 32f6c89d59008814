"""Spreadsheet tables people read and machines re-read, one layout for every workbook we write.

A table has two header rows: Chinese labels for people, then the English field names in grey
for machines (the importers recognise that row). Data follows; the headers stay frozen while
scrolling, and columns are wide enough for their contents.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from openpyxl.worksheet.worksheet import Worksheet

# Wider columns than this only push the rest of the table off the screen.
MAX_WIDTH = 60


def write_table(sheet: Worksheet, fields: Sequence[str], labels: Mapping[str, str],
                rows: Iterable[Sequence[object]], *,
                number_formats: Mapping[str, str] | None = None) -> None:
    """Append header rows and ``rows`` below whatever ``sheet`` already holds.

    ``labels`` maps a field to its Chinese label (the field name when missing);
    ``number_formats`` maps a field to an Excel format such as ``"0.0%"``.
    """
    from openpyxl.styles import Font
    from openpyxl.utils import get_column_letter

    header = [labels.get(f, f) for f in fields]
    sheet.append(header)
    labels_row = sheet.max_row
    sheet.append(list(fields))
    for cell in sheet[labels_row]:
        cell.font = Font(bold=True)
    for cell in sheet[labels_row + 1]:
        cell.font = Font(italic=True, color="808080")
    sheet.freeze_panes = f"A{labels_row + 2}"
    widths = [max(_display_width(h), len(f)) for h, f in zip(header, fields, strict=True)]
    formats = [(number_formats or {}).get(f) for f in fields]
    for values in rows:
        sheet.append(list(values))
        for i, (cell, value) in enumerate(zip(sheet[sheet.max_row], values, strict=False)):
            number_format = formats[i]
            if number_format:
                cell.number_format = number_format
            widths[i] = max(widths[i], _display_width(value))
    for i, width in enumerate(widths, start=1):
        sheet.column_dimensions[get_column_letter(i)].width = min(width + 2, MAX_WIDTH)


def _display_width(value: object) -> int:
    """Character cells ``value`` takes on screen: Chinese characters take two."""
    if value is None:
        return 0
    text = value if isinstance(value, str) else str(value)
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)
