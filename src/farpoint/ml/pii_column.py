"""The column under judgement: an even sample of its values, read as text, and its
name, split into tokens so that `patientEmail`, `patient-email` and `PATIENT_EMAIL` read
alike.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from datetime import date, datetime, time
from functools import cached_property

from farpoint.ml.pii_checks import is_code
from farpoint.ml.pii_words import (
    ENDINGS,
    MEASURE_TAIL,
    NOT_PERSON,
    PROTECTED,
    PROTECTED_TAIL,
    fold,
)

__all__ = ["Column", "sample"]

_MISSING = {"", "na", "n/a", "nan", "null", "none", "nil", "-", "--", "?", "unknown", "#n/a"}


def _is_null(value: object) -> bool:
    if value is None:
        return True
    if isinstance(value, float):
        return math.isnan(value)
    if isinstance(value, str):
        return value.strip().lower() in _MISSING
    # pandas.NA and NaT without importing pandas
    return type(value).__name__ in ("NAType", "NaTType")


def _text(value: object) -> str:
    if isinstance(value, str):
        return value.strip()
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() and abs(value) < 1e17 else repr(value)
    if isinstance(value, date | datetime | time):
        return value.isoformat()
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace").strip()
    return str(value).strip()


def _kind_of(values: Sequence[object], dtype: str) -> str:
    """string | integer | float | bool | temporal | other, from the values, else the dtype."""
    types = {type(v) for v in values}
    if types and types <= {bool}:
        return "bool"
    if types and all(issubclass(t, int) and t is not bool for t in types):
        return "integer"
    if types and types <= {int, float}:
        as_floats = [float(v) for v in values]  # type: ignore[arg-type]
        return "integer" if all(f.is_integer() for f in as_floats) else "float"
    if types and all(issubclass(t, date | datetime | time) for t in types):
        return "temporal"
    if types and types <= {str}:
        return "string"
    d = dtype.lower()
    if d.startswith("dictionary"):
        d = d.partition("values=")[2]
    for kind, marks in (
        ("bool", ("bool",)),
        ("temporal", ("date", "time")),
        ("integer", ("int",)),
        ("float", ("float", "double", "decimal")),
        ("string", ("str", "utf8", "object", "category")),
    ):
        if any(m in d for m in marks):
            return kind
    return "other"


_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")
_LETTER_DIGIT = re.compile(r"(?<=[A-Za-z])(?=\d)|(?<=\d)(?=[A-Za-z])")


def _tokens(name: str) -> tuple[str, ...]:
    spaced = _LETTER_DIGIT.sub(" ", _CAMEL.sub(" ", name))
    return tuple(t for t in re.split(r"[^a-z0-9ß]+", fold(spaced)) if t)


class Column:
    """One column as the checks see it: its name in tokens, its sampled values as text."""

    def __init__(self, name: str, values: Sequence[object], dtype: str) -> None:
        self.name = name
        self.tokens = _tokens(name)
        t = self.tokens
        # Every run of up to four consecutive tokens, joined: `e_mail`, `eMail` and
        # `email` all yield "email"; substrings of a token (`zip` for "ip") never match.
        self.runs = frozenset(
            "".join(t[i:j]) for i in range(len(t)) for j in range(i + 1, min(len(t), i + 4) + 1)
        )
        self.values = list(values)
        self.kind = _kind_of(self.values, dtype)
        self.texts = [_text(v) for v in self.values]
        self.n = len(self.texts)

    @cached_property
    def distinct(self) -> float:
        return len(set(self.texts)) / self.n if self.n else 0.0

    @cached_property
    def codes(self) -> int:
        """How many sampled values are written as codes; none in a float, bool or date column."""
        if self.kind not in ("string", "integer", "other"):
            return 0
        return sum(1 for t in self.texts if is_code(t))

    def says(self, words: frozenset[str]) -> bool:
        """The name contains one of `words` as a token run or, for words of five letters
        or more, at the end of a token (`customeremail`) or at its start before a plain
        ending (`emailaddress`; not `longitudinal`)."""
        if self.tokens and self.tokens[-1] in MEASURE_TAIL and self.tokens[-1] not in words:
            return False  # cell_count, email_domain, phone_model: about the thing, not it
        if self.runs & words:
            return True
        return any(
            len(w) >= 5 and (tok.endswith(w) or (tok.startswith(w) and tok[len(w) :] in ENDINGS))
            for tok in self.tokens
            for w in words
        )

    @cached_property
    def about_a_thing(self) -> bool:
        """The name qualifies a thing, not a person (`product_name`, `vehicle_age`)."""
        return bool(set(self.tokens) & NOT_PERSON)

    @cached_property
    def protected_attribute(self) -> str | None:
        """The protected attribute the name is about, honouring `race_time` and `vehicle_age`."""
        t = self.tokens
        for i in range(len(t)):
            for j in range(min(len(t), i + 3), i, -1):
                attribute = PROTECTED.get("".join(t[i:j]))
                if attribute is None:
                    continue
                if set(t[:i]) & NOT_PERSON:
                    continue  # vehicle_age
                rest = t[j:]
                if rest and rest[0] in ("at", "of", "on", "when"):
                    return attribute  # age_at_admission
                if all(r in PROTECTED_TAIL for r in rest):
                    return attribute
        return None


def sample(values: Sequence[object], limit: int) -> list[object]:
    """At most `limit` non-null values at evenly spaced positions: deterministic, and
    spread over the whole column rather than its head (exports are often sorted)."""
    if len(values) > 4 * limit:  # thin out before filtering, keeping the spread
        step = len(values) / (4 * limit)
        values = [values[int(i * step)] for i in range(4 * limit)]
    present = [v for v in values if not _is_null(v)]
    if len(present) <= limit:
        return present
    step = len(present) / limit
    return [present[int(i * step)] for i in range(limit)]
