"""Spreadsheet tables people read and machines re-read, one layout for every workbook we write.

A table has two header rows: Chinese labels for people, then the English field names in grey
for machines (the importers recognise that row). Data follows; the headers stay frozen while
scrolling, and columns are wide enough for their contents.

Every cell value goes through :func:`cell`, the one place that makes stored text safe in a
workbook: text stays text (a description ``=HYPERLINK(...)`` must not become a live formula,
OWASP "CSV injection") and characters XML cannot hold are dropped (openpyxl refuses them, and
one such description would fail every export). :func:`csv_text` does the same for CSV cells.
"""

from __future__ import annotations

import io
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from itertools import chain, islice
from typing import TYPE_CHECKING, Any

from layers.text import xml_safe

if TYPE_CHECKING:
    from openpyxl.cell.cell import Cell
    from openpyxl.styles import Font
    from openpyxl.worksheet._write_only import WriteOnlyWorksheet
    from openpyxl.worksheet.worksheet import Worksheet

# Wider columns than this only push the rest of the table off the screen.
MAX_WIDTH = 60
# Column widths are measured on the first rows only: a write-only sheet takes its layout
# before its first row, and a table may be a million rows long.
WIDTH_SAMPLE = 1000
# A spreadsheet reads a cell starting with one of these as a formula (OWASP's list).
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def text(value: str) -> str:
    """``value`` without the control characters an XLSX (XML 1.0) file cannot hold.

    >>> text("bell\\x07 tab\\tkept")
    'bell tab\\tkept'
    """
    return xml_safe(value, "")


def csv_text(value: str) -> str:
    """A CSV cell that a spreadsheet shows as the text it is, never runs as a formula.

    >>> csv_text('=HYPERLINK("http://x")'), csv_text("-3 lamps"), csv_text("路灯不亮")
    ('\\'=HYPERLINK("http://x")', "'-3 lamps", '路灯不亮')
    """
    return "'" + value if value.startswith(FORMULA_START) else value


def cell(sheet: Worksheet | WriteOnlyWorksheet, value: Any, *,
         number_format: str | None = None, font: Font | None = None) -> Cell:
    """A cell of ``sheet`` for ``sheet.append``: strings stored as text, whatever they start
    with (openpyxl would store ``=...`` as a formula and ``#N/A`` as an error)."""
    from openpyxl.cell import WriteOnlyCell

    if isinstance(value, str):
        result = WriteOnlyCell(sheet, text(value))
        result.data_type = "s"
    else:
        result = WriteOnlyCell(sheet, value)
    if number_format:
        result.number_format = number_format
    if font is not None:
        result.font = font
    return result


def entry(sheet: Worksheet | WriteOnlyWorksheet, value: Any, *,
          number_format: str | None = None) -> Any:
    """What to append for ``value``: the value itself where openpyxl stores it as it is (the
    fast path of a write-only sheet, which fills one reused cell), else :func:`cell`.

    >>> from openpyxl import Workbook
    >>> sheet = Workbook().active
    >>> entry(sheet, "路灯\\x07"), entry(sheet, 3), entry(sheet, "=1+1").data_type
    ('路灯', 3, 's')
    """
    from openpyxl.cell.cell import ERROR_CODES

    if isinstance(value, str):
        value = text(value)
        if value.startswith("=") or value in ERROR_CODES:
            return cell(sheet, value, number_format=number_format)
    if number_format:
        return cell(sheet, value, number_format=number_format)
    return value


def write_table(sheet: Worksheet | WriteOnlyWorksheet, fields: Sequence[str],
                labels: Mapping[str, str], rows: Iterable[Sequence[object]], *,
                number_formats: Mapping[str, str] | None = None,
                title: Sequence[Cell | Sequence[Cell]] = ()) -> int:
    """Write ``title`` (a cell, or a few cells, a line), the two header rows and ``rows`` to
    an empty ``sheet``; return the number of rows written.

    One pass over ``rows`` and nothing kept but the first WIDTH_SAMPLE: on a write-only sheet
    a table of any length streams to disk in constant memory and linear time.
    ``labels`` maps a field to its Chinese label (the field name when missing);
    ``number_formats`` maps a field to an Excel format such as ``"0.0%"``.
    """
    from openpyxl.styles import Font
    from openpyxl.utils import get_column_letter

    header = [labels.get(f, f) for f in fields]
    remaining = iter(rows)
    sample = list(islice(remaining, WIDTH_SAMPLE))
    widths = [max(_display_width(h), len(f)) for h, f in zip(header, fields, strict=True)]
    for values in sample:
        for i, value in enumerate(values[:len(widths)]):
            widths[i] = max(widths[i], _display_width(value))
    dimensions = sheet.column_dimensions  # type: ignore[union-attr]  # write-only sheets have it too; the stubs miss it
    for i, width in enumerate(widths, start=1):
        dimensions[get_column_letter(i)].width = min(width + 2, MAX_WIDTH)
    sheet.freeze_panes = f"A{len(title) + 3}"
    for line in title:
        sheet.append(list(line) if isinstance(line, Sequence) else [line])
    bold, grey = Font(bold=True), Font(italic=True, color="808080")
    sheet.append([cell(sheet, h, font=bold) for h in header])
    sheet.append([cell(sheet, f, font=grey) for f in fields])
    formats = [(number_formats or {}).get(f) for f in fields]
    written = 0
    for values in chain(sample, remaining):
        sheet.append([entry(sheet, v, number_format=f)
                      for v, f in zip(values, formats, strict=False)])
        written += 1
    return written


def table_workbook(sheet_name: str, fields: Sequence[str], labels: Mapping[str, str],
                   rows: Sequence[Sequence[object]], *, heading: str,
                   lines: Sequence[tuple[str, object]] = ()) -> bytes:
    """One table as a printable workbook: ``heading`` (bold) and ``lines`` (label, value) above
    the table :func:`write_table` lays out; on paper A4 landscape, fit to the page's width,
    long text wrapped, the header rows repeated on every page.

    For documents of a few hundred rows (a supervision order): the sheet is kept in memory to
    be styled; long tables stream through a write-only sheet with :func:`write_table` instead.
    """
    from openpyxl import Workbook
    from openpyxl.styles import Alignment, Font
    from openpyxl.worksheet.properties import PageSetupProperties

    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.title = text(sheet_name)[:31]  # Excel's limit on sheet names
    bold = Font(bold=True)
    title: list[Cell | Sequence[Cell]] = [cell(sheet, heading, font=Font(bold=True, size=14))]
    title += [[cell(sheet, label, font=bold), cell(sheet, value)] for label, value in lines]
    write_table(sheet, fields, labels, rows, title=title)
    header = len(title) + 1
    for row in sheet.iter_rows(min_row=header + 2):
        for written in row:
            written.alignment = Alignment(wrap_text=True, vertical="top")
    sheet.print_title_rows = f"{header}:{header + 1}"
    sheet.page_setup.paperSize = sheet.PAPERSIZE_A4
    sheet.page_setup.orientation = "landscape"
    sheet.page_setup.fitToWidth = 1
    sheet.page_setup.fitToHeight = 0
    sheet.sheet_properties.pageSetUpPr = PageSetupProperties(fitToPage=True)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def _display_width(value: object) -> int:
    """Character cells ``value`` takes on screen: Chinese characters take two."""
    if value is None:
        return 0
    shown = value if isinstance(value, str) else str(value)
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in shown)
