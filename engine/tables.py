"""Tables as people have them: CSV in any common separator, decimal mark and encoding, and Excel
sheets with title rows above the header.

:func:`read_table` reads every cell as text first, finds the header (the first row holding the
columns asked for), then turns each column that is all numbers (``1 234,5``, ``1,234.5``,
``12 000``) into numbers. What it worked out (encoding, separator, decimal mark, header row,
rows skipped) is logged and returned, so a message can say how the file was read.

We sniff ourselves rather than with ``pandas.read_csv(sep=None)``: pandas' sniffer takes ``,``
for the separator of a ``;`` file with decimal commas (``5,5;2,25``) and never finds the decimal
mark; and ``read_excel`` takes a title row for the header.
"""

from __future__ import annotations

import csv
import io
import logging
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from carbonscape.errors import InputError

__all__ = ["TableFormat", "detect_encoding", "parse_number", "read_table"]

log = logging.getLogger(__name__)

EXCEL_SUFFIXES = (".xlsx", ".xlsm", ".xls")
# Tried in this order: UTF-8 (with or without BOM), then GB18030 (a superset of GBK and GB2312,
# as Chinese Excel and yearbook CSVs are saved), then Windows-1252 (Western European Excel).
ENCODINGS = ("utf-8", "gb18030", "cp1252")
SEPARATORS = (",", ";", "\t", "|")
HEADER_SEARCH_ROWS = 30


@dataclass
class TableFormat:
    """How a table file was read."""

    kind: str  # "csv" or "excel"
    encoding: str | None = None
    separator: str | None = None
    decimal: str = "."
    header_row: int = 1  # 1-based row (line) of the header in the file
    skipped: list[tuple[int, str]] = field(default_factory=list)  # (row, why) of rows left out

    def describe(self) -> str:
        parts = [self.kind.upper() if self.kind == "csv" else "Excel"]
        if self.encoding:
            parts.append(f"encoding {self.encoding}")
        if self.separator:
            parts.append(f"separator {_SEP_NAMES.get(self.separator, repr(self.separator))}")
        if self.decimal != ".":
            parts.append("decimal comma")
        if self.header_row != 1:
            parts.append(f"header on row {self.header_row}")
        if self.skipped:
            parts.append(f"{len(self.skipped)} row(s) skipped ({', '.join(f'row {r}: {why}' for r, why in self.skipped[:5])})")
        return ", ".join(parts)


_SEP_NAMES = {",": "','", ";": "';'", "\t": "tab", "|": "'|'"}


def detect_encoding(data: bytes) -> str:
    """The encoding of a text file's bytes: ``utf-8-sig`` (with BOM), ``utf-8``, ``gb18030`` or
    ``cp1252``, the first that decodes every byte.

    Raises
    ------
    InputError
        When none does (a binary file).
    """
    if data.startswith(b"\xef\xbb\xbf"):
        return "utf-8-sig"
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        return "utf-16"
    for encoding in ENCODINGS:
        try:
            data.decode(encoding)
        except UnicodeDecodeError:
            continue
        if encoding == "gb18030" and not _mostly_gb2312(data):
            continue  # GB18030 decodes nearly any bytes: "Zürich" in Windows-1252 is not Chinese
        return encoding
    raise InputError("not a text file in UTF-8, GBK/GB18030 or Windows-1252")


def _mostly_gb2312(data: bytes) -> bool:
    """Whether most double-byte characters lie in GB2312's range (A1-F7, A1-FE), where
    nearly all Chinese text saved as GBK falls and Latin-1 letters followed by ASCII do not."""
    common = pairs = i = 0
    while i < len(data):
        byte = data[i]
        if byte < 0x80:
            i += 1
            continue
        if i + 1 < len(data) and 0x30 <= data[i + 1] <= 0x39:  # a four-byte GB18030 sequence
            i += 4
            pairs += 1
            continue
        pairs += 1
        if i + 1 < len(data) and 0xA1 <= byte <= 0xF7 and 0xA1 <= data[i + 1] <= 0xFE:
            common += 1
        i += 2
    return pairs > 0 and common >= 0.5 * pairs


_NUMBER = {
    ".": re.compile(r"^[+-]?(\d{1,3}([, \u00a0\u202f']\d{3})+|\d+)(\.\d*)?([eE][+-]?\d+)?$|^[+-]?\.\d+([eE][+-]?\d+)?$"),
    ",": re.compile(r"^[+-]?(\d{1,3}([. \u00a0\u202f']\d{3})+|\d+)(,\d*)?([eE][+-]?\d+)?$|^[+-]?,\d+([eE][+-]?\d+)?$"),
}


def parse_number(text: str, *, decimal: str = ".") -> float | None:
    """A number as people write it (``12 000``, ``1,234.5``, ``1.234,5`` with ``decimal=","``,
    ``5,5``), or None when ``text`` is not one."""
    value = text.strip()
    if not value:
        return None
    if not _NUMBER[decimal].match(value):
        try:
            number = float(value)  # inf, nan, 1e5 and the like
        except ValueError:
            return None
        return number if decimal == "." else None
    thousands = "," if decimal == "." else "."
    cleaned = re.sub(r"[ \u00a0\u202f']", "", value).replace(thousands, "")
    return float(cleaned.replace(",", ".")) if decimal == "," else float(cleaned)


def _sniff_separator(lines: list[str]) -> str:
    """The separator that splits the first lines into the same number (> 1) of fields most often."""
    sample = [line for line in lines if line.strip()][:50]
    best, best_score = ",", (-1, 0)
    for sep in SEPARATORS:
        counts = [len(next(csv.reader([line], delimiter=sep))) for line in sample]
        if not counts:
            continue
        widest = max(counts)
        if widest < 2:
            continue
        # Lines agreeing on the most common width > 1, then that width.
        common = max(set(counts), key=counts.count)
        score = (counts.count(common) if common > 1 else 0, common)
        if score > best_score:
            best, best_score = sep, score
    return best


def _decimal_mark(rows: list[list[str]], separator: str) -> str:
    """``","`` when the cells' numbers are written with a decimal comma (only possible when the
    separator is not a comma), else ``"."``."""
    if separator == ",":
        return "."
    comma = point = dotted_thousands = 0
    for row in rows:
        for cell in row:
            cell = cell.strip()
            if re.fullmatch(r"[+-]?\d+,\d+", cell) and not re.fullmatch(r"[+-]?\d{1,3},\d{3}", cell):
                comma += 1
            elif re.fullmatch(r"[+-]?\d+\.\d+", cell) and not re.fullmatch(r"[+-]?\d{1,3}\.\d{3}", cell):
                point += 1
            elif re.fullmatch(r"[+-]?\d{1,3}(\.\d{3})+,\d+", cell):
                comma += 1
            elif re.fullmatch(r"[+-]?\d{1,3}(\.\d{3})+", cell):
                dotted_thousands += 1
    # "12.000" alone is ambiguous; in a file that is not comma-separated and writes no other
    # decimal point, it is twelve thousand (European style), as Excel there saves it.
    return "," if comma > point or (point == 0 and dotted_thousands > 0) else "."


def _excel_text(value: object) -> str:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return ""
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    if isinstance(value, (float, np.floating)):
        return str(int(value)) if float(value).is_integer() and abs(value) < 1e15 else repr(float(value))
    return str(value)


def _read_cells(source: Path, *, sheet: str | int | None) -> tuple[list[list[str]], TableFormat]:
    """Every cell as text, one list per row of the file (row i is the file's row i + 1)."""
    if source.suffix.lower() in EXCEL_SUFFIXES:
        try:
            raw = pd.read_excel(source, sheet_name=sheet if sheet is not None else 0, header=None, dtype=object)
        except ImportError as exc:
            raise InputError(f"{source}: reading Excel files needs openpyxl: `pip install openpyxl` (or save the sheet as CSV)") from exc
        except (ValueError, KeyError) as exc:  # a missing sheet, an unreadable workbook
            try:
                sheets = pd.ExcelFile(source).sheet_names
            except Exception:  # noqa: BLE001 - not a workbook at all
                raise InputError(f"{source}: not a readable Excel workbook ({exc})") from exc
            raise InputError(f"{source}: no sheet {sheet!r}; the sheets are {sheets}") from exc
        return [[_excel_text(v) for v in row] for row in raw.itertuples(index=False)], TableFormat(kind="excel")
    data = source.read_bytes()
    try:
        encoding = detect_encoding(data)
    except InputError as exc:
        raise InputError(f"{source}: {exc}; save it as UTF-8 CSV") from None
    text = data.decode(encoding)
    lines = text.splitlines()
    separator = _sniff_separator(lines)
    rows = list(csv.reader(io.StringIO(text, newline=""), delimiter=separator))
    # csv joins quoted line breaks into one row; rows then stay the file's lines in every normal file.
    fmt = TableFormat(kind="csv", encoding=encoding, separator=separator)
    fmt.decimal = _decimal_mark(rows[:200], separator)
    return rows, fmt


def _norm(name: str) -> str:
    return str(name).strip().lower()


def read_table(
    path: str | os.PathLike[str],
    *,
    columns: Sequence[str] = (),
    text_columns: Sequence[str] = (),
    sheet: str | int | None = None,
    case_insensitive: bool = False,
) -> tuple[pd.DataFrame, TableFormat]:
    """Read a CSV or Excel table as people save them.

    Parameters
    ----------
    path
        A ``.csv`` (or any delimited text) or ``.xlsx``/``.xlsm``/``.xls`` file.
    columns
        Columns the header must hold: the header is the first of the first 30 rows that holds
        them all (title rows above it are skipped and logged). Without any, the first row.
    text_columns
        Columns kept as text even when they look like numbers (county codes such as ``0101``).
    sheet
        Excel sheet name or 0-based position (default: the first).
    case_insensitive
        Match ``columns`` ignoring case and surrounding spaces (InVEST's rule for pools tables).

    Returns
    -------
    (pandas.DataFrame, TableFormat)
        The rows under the header, index = the file's row numbers (1-based, the header's row
        being ``fmt.header_row``); columns that are all numbers become float64 (int64 when
        whole), the others stay text ("" for an empty cell becomes NaN). Units rows right under
        the header (no number where every other row has one) and notes lines at the end (one
        filled cell) are skipped and listed in ``fmt.skipped``.

    Raises
    ------
    InputError
        When the file is missing, empty, not text, or not a readable workbook.
    """
    source = Path(path)
    if not source.is_file():
        raise InputError(f"{source}: no such file")
    rows, fmt = _read_cells(source, sheet=sheet)
    if not any(any(cell.strip() for cell in row) for row in rows):
        raise InputError(f"{source}: the file is empty")
    wanted = [_norm(c) if case_insensitive else str(c).strip() for c in columns]
    header_index = 0
    if wanted:
        for i, row in enumerate(rows[:HEADER_SEARCH_ROWS]):
            names = {_norm(c) if case_insensitive else c.strip() for c in row}
            if all(w in names for w in wanted):
                header_index = i
                break
        else:
            header_index = next(i for i, row in enumerate(rows) if any(c.strip() for c in row))
    header = [c.strip() for c in rows[header_index]]
    fmt.header_row = header_index + 1
    if header_index > 0 and any(any(c.strip() for c in row) for row in rows[:header_index]):
        fmt.skipped += [(i + 1, "title above the header") for i, row in enumerate(rows[:header_index]) if any(c.strip() for c in row)]
    width = len(header)
    # (the file's 1-based row number, the row's cells under the header)
    body = [(header_index + 2 + i, (row + [""] * width)[:width]) for i, row in enumerate(rows[header_index + 1:])]
    # Empty columns of the header (a trailing separator) are left out.
    keep = [j for j, name in enumerate(header) if name]
    header = [header[j] for j in keep]
    body = [(n, [row[j] for j in keep]) for n, row in body]
    body = [(n, row) for n, row in body if any(c.strip() for c in row)]
    text_set = {(_norm(c) if case_insensitive else c) for c in text_columns}

    def numbers_in(row: list[str]) -> int:
        return sum(parse_number(c, decimal=fmt.decimal) is not None for c in row)

    # Units rows right under the header: no number at all, where the rows below have some.
    while len(body) > 1 and numbers_in(body[0][1]) == 0 and numbers_in(body[1][1]) > 0:
        fmt.skipped.append((body[0][0], "units or notes under the header: " + ", ".join(c for c in body[0][1] if c.strip())[:60]))
        body = body[1:]
    # Notes lines at the end: one filled cell and no number, under rows with several cells.
    while len(body) > 1 and sum(bool(c.strip()) for c in body[-1][1]) == 1 and numbers_in(body[-1][1]) == 0 \
            and sum(bool(c.strip()) for c in body[-2][1]) > 1:
        fmt.skipped.append((body[-1][0], "a note: " + next(c for c in body[-1][1] if c.strip())[:60]))
        body = body[:-1]
    index = pd.Index([n for n, _ in body], name="row")
    frame = pd.DataFrame([row for _, row in body], columns=header, index=index, dtype=object) if body else \
        pd.DataFrame(columns=header, index=index, dtype=object)
    for name in frame.columns:
        column = frame[name].map(lambda c: c.strip() if isinstance(c, str) else c)
        key = _norm(name) if case_insensitive else name
        filled = column[column != ""]
        if key in text_set or filled.empty:
            frame[name] = column.where(column != "", np.nan)
            continue
        parsed = filled.map(lambda c: parse_number(c, decimal=fmt.decimal))
        if parsed.notna().all():
            values = pd.to_numeric(parsed.reindex(column.index), errors="coerce").astype(np.float64)
            whole = values.dropna()
            if not whole.empty and np.all(np.isfinite(whole)) and (whole == np.round(whole)).all() and values.notna().all() \
                    and whole.abs().max() < 2**53:
                frame[name] = values.astype(np.int64)
            else:
                frame[name] = values
        else:
            frame[name] = column.where(column != "", np.nan)
    notes = fmt.describe()
    if fmt.kind == "csv" and (fmt.encoding not in ("utf-8", "utf-8-sig") or fmt.separator != "," or fmt.decimal != "."):
        log.info("%s: read as %s", source, notes)
    elif fmt.header_row != 1 or fmt.skipped:
        log.info("%s: read as %s", source, notes)
    else:
        log.debug("%s: read as %s", source, notes)
    return frame, fmt
