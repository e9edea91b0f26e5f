"""CSV errors: Arrow says what went wrong; a streaming scan of our own says where.

The scans read the file again, a chunk or a record at a time, only once an ingest has failed,
so they cost nothing on the way to a good file and never hold the file in memory.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

from farpoint.core.errors import ValidationFailed

__all__ = ["BlockTooSmall", "csv_failure", "is_blank", "lines_of_rows", "not_utf8"]


class BlockTooSmall(Exception):
    """One row is longer than a block."""


def csv_failure(exc: Exception, path: Path, filename: str, width: int | None) -> Exception:
    """The error to raise for Arrow's `exc`, located in the file where that is possible."""
    text = str(exc)
    if isinstance(exc, UnicodeDecodeError) or "UTF8" in text or "UTF-8" in text:
        return not_utf8(path, filename)
    if "straddl" in text:
        return BlockTooSmall()
    expected = re.search(r"Expected (\d+) columns, got", text)
    if expected:
        width = width or int(expected.group(1))
        found = _first_ragged(path, width)
        if found is not None:
            line, fields = found
            return ValidationFailed(
                f"{filename!r} line {line} has {fields} field{'s' * (fields != 1)}, "
                f"the header has {width}; "
                "every row needs one field per column (quote fields that contain commas)",
                line=line,
            )
        return ValidationFailed(f"{filename!r} has a row with the wrong number of fields: {text}")
    return ValidationFailed(f"{filename!r} is not a readable CSV file: {text}")


def not_utf8(path: Path, filename: str) -> ValidationFailed:
    """The refusal of a file that is not UTF-8, with the line and offset of the first bad byte."""
    found = _first_bad_utf8(path)
    if found is None:
        return ValidationFailed(f"{filename!r} is not UTF-8 text: save it as UTF-8 CSV")
    line, offset = found
    return ValidationFailed(
        f"{filename!r} is not UTF-8 text: line {line} has an undecodable byte at byte offset "
        f"{offset}; save it as UTF-8 CSV",
        line=line,
        byte_offset=offset,
    )


def _first_bad_utf8(path: Path) -> tuple[int, int] | None:
    """(line, byte offset) of the first byte that is not UTF-8, read 1 MiB at a time."""
    line, offset, carry = 1, 0, b""
    with open(path, "rb") as f:
        while True:
            chunk = f.read(1 << 20)
            data = carry + chunk
            if not data:
                return None
            try:
                data.decode("utf-8")
                good, carry = len(data), b""
            except UnicodeDecodeError as exc:
                truncated = exc.reason == "unexpected end of data" and exc.end == len(data)
                if not (truncated and chunk):
                    return line + data.count(b"\n", 0, exc.start), offset + exc.start
                good, carry = exc.start, data[exc.start :]  # a character split by the chunk
            line += data.count(b"\n", 0, good)
            offset += good


def is_blank(path: Path) -> bool:
    """Whether the file holds nothing but a byte-order mark and white space."""
    with open(path, "rb") as f:
        chunk = f.read(1 << 20).removeprefix(b"\xef\xbb\xbf")
        while chunk:
            if chunk.strip():
                return False
            chunk = f.read(1 << 20)
    return True


def _csv_records(path: Path) -> Iterator[tuple[int, list[str]]]:
    """(first line, fields) of each record after the header, skipping blank lines as Arrow does."""
    import csv

    with open(path, encoding="utf-8-sig", errors="replace", newline="") as f:
        reader = csv.reader(f)
        seen_header = False
        last_line = 0
        for fields in reader:
            start, last_line = last_line + 1, reader.line_num
            if not fields:
                continue
            if seen_header:
                yield start, fields
            seen_header = True


def _first_ragged(path: Path, width: int) -> tuple[int, int] | None:
    import csv

    try:
        for line, fields in _csv_records(path):
            if len(fields) != width:
                return line, len(fields)
    except csv.Error:
        return None
    return None


def lines_of_rows(path: Path, rows: list[int]) -> dict[int, int | None]:
    """Data row index → the physical line it starts on; None where the scan cannot tell."""
    import csv

    wanted = set(rows)
    lines: dict[int, int | None] = dict.fromkeys(wanted)
    found = 0
    try:
        for row, (line, _) in enumerate(_csv_records(path)):
            if row in wanted:
                lines[row] = line
                found += 1
                if found == len(wanted):
                    break
    except csv.Error:
        pass  # a field past the csv module's size limit: say "data row" instead
    return lines
