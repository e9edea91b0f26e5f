"""Which type a column of CSV text gets: the documented rules, value by value.

The rules (docs/data.md says the same for users):

- UTF-8 (a byte-order mark is ignored), comma-separated, a header row naming the columns.
  Fields may be double-quoted; "" inside quotes is one quote, and quoted fields may span
  lines. Blank lines are skipped. Every row has one field per header column.
- Null: an empty field, or a field that is exactly NA, N/A, null, NULL, NaN or nan (quoted
  or not). Nulls never decide a column's type.
- Values are taken as written: spaces are part of the value, so " 12" is text.
- The categories of a non-null value: bool is true or false in any letter case; integer is
  an optional sign and the digits 0-9; number is an integer, a decimal with an optional
  fraction and exponent (1.5, .5, 5., -1e-3, 2E+10), or inf / infinity in any case with an
  optional sign; date is YYYY-MM-DD; date-time is a date, then T or a space, then hh, hh:mm,
  hh:mm:ss or hh:mm:ss.f with 1 to 6 fraction digits, and it has a UTC offset if it then
  ends in Z, ±hh, ±hhmm or ±hh:mm; text is anything else.
- A column's type comes from all its values, the whole file: only bools → bool; only
  integers → int64; integers and numbers → float64; only dates → date32[day]; dates and
  date-times without offsets → timestamp[us]; date-times all with offsets →
  timestamp[us, tz=UTC], converted to UTC; only text, or only nulls → string.
- Any other mixture is refused, naming the column and the first line of each kind: text
  with numbers (or any typed value), numbers with dates, true/false with numbers, date-times
  with and without offsets. `types={"col": "string"}` keeps such a column as text.
- A value of a category that is not real (2023-02-30, hour 25, an integer outside int64) is
  refused with its line.
- `types` forces a column's type; every non-null value must then belong to it (float64
  takes integers, timestamp[us] takes dates, string takes anything).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pyarrow as pa

__all__ = [
    "FAMILY",
    "INVALID",
    "KIND_OF",
    "NULL_TOKENS",
    "TAKES",
    "AtRows",
    "classify",
    "first_index",
    "mixed_error",
    "narrowest_kind",
]

NULL_TOKENS = ("", "NA", "N/A", "null", "NULL", "NaN", "nan")

_BOOL_WORDS = ("true", "false")
_INT_RE = r"^[+-]?[0-9]+$"
_NUMBER_RE = r"^[+-]?(?:(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?|(?i:inf|infinity))$"
_DATE = r"[0-9]{4}-[0-9]{2}-[0-9]{2}"
_TIME = r"[T ][0-9]{2}(?::[0-9]{2}(?::[0-9]{2}(?:\.[0-9]{1,6})?)?)?"
_OFFSET = r"(?:Z|[+-][0-9]{2}(?::?[0-9]{2})?)"
_DATE_RE = f"^{_DATE}$"
_DATETIME_RE = f"^{_DATE}{_TIME}$"
_DATETIME_TZ_RE = f"^{_DATE}{_TIME}{_OFFSET}$"
_TYPED_RE = f"^(?:(?i:true|false)|{_NUMBER_RE[1:-1]}|{_DATE}(?:{_TIME}{_OFFSET}?)?)$"
# A value's category → the column type that holds it; a type → the categories it takes.
KIND_OF = {
    "bool": "bool",
    "int": "int64",
    "number": "float64",
    "date": "date32",
    "datetime": "timestamp_us",
    "datetime_tz": "timestamp_us_utc",
    "text": "string",
}
TAKES = {
    "bool": {"bool"},
    "int64": {"int"},
    "float64": {"int", "number"},
    "date32": {"date"},
    "timestamp_us": {"date", "datetime"},
    "timestamp_us_utc": {"datetime_tz"},
    "string": set(KIND_OF),
}
FAMILY = {
    "bool": "true/false values",
    "int": "numbers",
    "number": "numbers",
    "date": "dates",
    "datetime": "date-times",
    "datetime_tz": "date-times with a UTC offset",
    "text": "text",
}
INVALID = {
    "int64": "does not fit in a 64-bit integer",
    "date32": "is not a calendar date",
    "timestamp_us": "is not a valid date-time",
    "timestamp_us_utc": "is not a valid date-time",
}


class AtRows(Exception):
    """A problem at data rows (0-based), turned into a message once lines are known."""

    def __init__(
        self, rows: list[int], message: Callable[[dict[int, str]], str], **extra: Any
    ) -> None:
        super().__init__("at rows")
        self.rows = rows
        self.message = message
        self.extra = extra


def narrowest_kind(categories: set[str]) -> str | None:
    """The narrowest type taking every category; None when they do not mix."""
    if categories <= {"text"}:
        return "string"
    if "text" in categories:
        return None
    for kind in ("bool", "int64", "float64", "date32", "timestamp_us", "timestamp_us_utc"):
        if categories <= TAKES[kind]:
            return kind
    return None


def mixed_error(name: str, first: dict[str, tuple[int, str]]) -> AtRows:
    """The refusal of column `name`, whose first values per category are `first`, as mixed."""
    ordered = sorted(first.items(), key=lambda item: item[1][0])
    settled, (row_a, value_a) = ordered[0]
    odd, (row_b, value_b) = next(
        (c, rv) for c, rv in ordered[1:] if narrowest_kind({settled, c}) is None
    )
    if {settled, odd} == {"datetime", "datetime_tz"} or {settled, odd} == {"date", "datetime_tz"}:
        advice = "give every value a UTC offset, or none"
    else:
        advice = f"clean the column, or pass types={{{name!r}: 'string'}} to keep it all as text"
    if any(v != v.strip() for v in (value_a, value_b)):
        advice += " (spaces around a value make it text)"

    def message(where: dict[int, str]) -> str:
        return (
            f"column {name!r} mixes {FAMILY[settled]} and {FAMILY[odd]}: {where[row_a]} has "
            f"{value_a!r} but {where[row_b]} has {value_b!r}; {advice}"
        )

    return AtRows([row_a, row_b], message, column=name)


def classify(values: pa.Array, row0: int) -> dict[str, tuple[int, str]]:
    """Category → (row, value) of its first non-null value in this block, exactly by the rules."""
    import pyarrow.compute as pc

    found: dict[str, tuple[int, str]] = {}
    valid = len(values) - values.null_count
    if not valid:
        return found

    def note(category: str, mask: pa.Array) -> None:
        i = first_index(mask)
        if i >= 0:
            found[category] = (row0 + i, values[i].as_py())

    typed = pc.fill_null(pc.match_substring_regex(values, _TYPED_RE), False)
    note("text", pc.and_(values.is_valid(), pc.invert(typed)))
    # The typed categories do not overlap and together make up `typed`: once the values
    # found so far account for every typed value, the remaining categories are empty and
    # their regular expressions need not run (a column of integers takes three passes, not
    # seven).
    left = pc.sum(typed).as_py() or 0
    int_mask: list[pa.Array] = []

    def is_int() -> pa.Array:
        if not int_mask:
            int_mask.append(pc.fill_null(pc.match_substring_regex(values, _INT_RE), False))
        return int_mask[0]

    masks: list[tuple[str, Callable[[], pa.Array]]] = [
        ("bool", lambda: pc.is_in(values, value_set=_bool_spellings())),
        ("int", is_int),
        ("number", lambda: pc.and_not(pc.match_substring_regex(values, _NUMBER_RE), is_int())),
        ("date", lambda: pc.match_substring_regex(values, _DATE_RE)),
        ("datetime", lambda: pc.match_substring_regex(values, _DATETIME_RE)),
        ("datetime_tz", lambda: pc.match_substring_regex(values, _DATETIME_TZ_RE)),
    ]
    for category, mask_of in masks:
        if not left:
            break
        mask = mask_of()
        note(category, mask)
        left -= pc.sum(mask).as_py() or 0
    return found


def first_index(mask: pa.Array) -> int:
    """The index of the first true value of a boolean array; -1 if none."""
    import pyarrow.compute as pc

    index: int = pc.index(pc.fill_null(mask, False), True).as_py()
    return index


@cache
def _bool_spellings() -> pa.Array:
    import itertools

    import pyarrow as pa

    spellings = [
        "".join(letters)
        for word in _BOOL_WORDS
        for letters in itertools.product(*((c.lower(), c.upper()) for c in word))
    ]
    return pa.array(spellings)
