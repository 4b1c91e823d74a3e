"""CSV files as real exports arrive: any of the usual delimiters, quoted or not, with or without a
byte-order mark, in UTF-8 or a Windows code page.

The delimiter is chosen from the header line: the candidate that splits it into the most of the
contract's column names wins, since the contract knows what the header must hold (a sniffer
guessing from the rows alone picks a comma inside a quoted comment as readily as the real
delimiter). Text that is not UTF-8 is read as Windows-1252 (Latin-1 where a byte has no
Windows-1252 meaning), with a warning naming where the first non-UTF-8 byte sits.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path

import polars as pl

DELIMITERS = (",", ";", "\t", "|")
_BOM = b"\xef\xbb\xbf"


class UnreadableFile(ValueError):
    """A landing file that cannot be read as a table at all; `rows` is what the file itself holds
    (its lines less the header, for text), so the row accounting stays whole."""

    def __init__(self, reason: str, rows: int) -> None:
        super().__init__(reason)
        self.reason = reason
        self.rows = rows


@dataclass(frozen=True)
class CsvRead:
    frame: pl.DataFrame
    warnings: tuple[str, ...]


def _delimiter(header: str, columns: Collection[str]) -> str:
    def matches(delimiter: str) -> int:
        names = next(csv.reader([header], delimiter=delimiter), [])
        return sum(name.strip().strip('"') in columns for name in names)

    best = max(DELIMITERS, key=matches)  # ties keep the earlier, so a lone column reads as ","
    return best if matches(best) else ","


def data_lines(data: bytes) -> int:
    """Non-blank lines after the header: the rows a text file holds when it cannot be parsed."""
    lines = [line for line in data.splitlines() if line.strip()]
    return max(len(lines) - 1, 0)


def _decode(data: bytes) -> tuple[str, str | None]:
    """The file's text and, when it was not UTF-8, a warning saying where that shows first."""
    try:
        return data.decode("utf-8"), None
    except UnicodeDecodeError as err:
        line = data[: err.start].count(b"\n") + 1
        try:
            text, encoding = data.decode("cp1252"), "Windows-1252"
        except UnicodeDecodeError:
            text, encoding = data.decode("latin-1"), "Latin-1"
        return text, (
            f"not UTF-8 (first at line {line}, byte {err.start}): read as {encoding}; "
            "export UTF-8 to be sure of accented letters"
        )


def _locate(text: str, delimiter: str) -> str:
    """Where a CSV stops being a table: the first record whose field count differs from the
    header's, by line and byte."""
    lines = text.splitlines(keepends=True)
    starts = [0]
    for line in lines:
        starts.append(starts[-1] + len(line.encode("utf-8")))
    reader = csv.reader(io.StringIO(text), delimiter=delimiter, strict=True)
    try:
        header = next(reader)
        record_start = reader.line_num + 1
        for record in reader:
            if len(record) != len(header):
                return (
                    f"the record at line {record_start} (byte {starts[record_start - 1]}) has "
                    f"{len(record)} fields, the header {len(header)}"
                )
            record_start = reader.line_num + 1
    except csv.Error as err:
        return f"line {reader.line_num} (byte {starts[max(reader.line_num - 1, 0)]}): {err}"
    return "no record is out of shape"


def read_csv(path: Path, columns: Collection[str]) -> CsvRead:
    """A CSV as text columns, in whatever dialect and encoding it came."""
    data = path.read_bytes()
    data = data.removeprefix(_BOM)
    if not data.strip():
        raise UnreadableFile("the file is empty", 0)
    text, warning = _decode(data)
    header = text[: text.find("\n")] if "\n" in text else text
    delimiter = _delimiter(header.rstrip("\r"), columns)
    try:
        frame = pl.read_csv(
            data if warning is None else text.encode("utf-8"),
            separator=delimiter,
            infer_schema=False,
        )
    except pl.exceptions.PolarsError as err:
        where = _locate(text, delimiter)
        shown = {",": "comma", ";": "semicolon", "\t": "tab", "|": "pipe"}[delimiter]
        raise UnreadableFile(
            f"cannot be read as CSV ({shown}-separated): {where} ({err})", data_lines(data)
        ) from err
    return CsvRead(frame, (warning,) if warning else ())
