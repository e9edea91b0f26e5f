"""Finds personal data and protected attributes in a table and proposes column roles.

A column is judged on two kinds of evidence: its name, split into tokens so that
`patientEmail`, `patient-email` and `PATIENT_EMAIL` read alike, and a fixed, evenly
spaced sample of at most 1,000 of its non-null values, checked against validators
(the Luhn check and issuer prefixes for card numbers, mod-97 and per-country lengths for
IBANs, the check digits or invalid ranges of six national identifiers, `ipaddress`).
The result is a proposal with the evidence in a sentence; a data scientist confirms it.

Thresholds (shares of the sampled non-null values):

- values alone decide at 80% (90% for the 9- and 10-digit mod-11 identifiers, which a
  random number passes one time in eleven), and never for bare numbers that could be
  anything (a phone number needs formatting, an SSN its dashes, a coordinate its name);
- a name that agrees lowers the bar to 30%, because real columns are dirty;
- a name alone, with values of the right shape that fail the check, gives a low
  confidence proposal; with values of the wrong shape, nothing (`phone_count` is not a
  phone number column).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from farpoint.ml import pii_checks as checks
from farpoint.ml import pii_words as words
from farpoint.ml.pii_checks import card_brand, iban_valid, luhn_valid, national_id_scheme
from farpoint.ml.pii_column import Column, sample

if TYPE_CHECKING:
    import pyarrow as pa

__all__ = [
    "KINDS",
    "SAMPLE_LIMIT",
    "Finding",
    "card_brand",
    "detect_column",
    "iban_valid",
    "luhn_valid",
    "national_id_scheme",
    "propose_classification",
]

SAMPLE_LIMIT = 1000
KINDS: dict[str, str] = {
    "email": "pii",
    "phone": "pii",
    "national_id": "pii",  # US SSN, UK NINO, French NIR, Dutch BSN, Spanish DNI/NIE, NHS
    "card_number": "pii",
    "iban": "pii",
    "ip_address": "pii",
    "coordinates": "pii",  # precise to ~11 m or better
    "person_name": "pii",
    "person_identifier": "pii",  # an id that points at a person: MRN, patient_id, username
    "birth_date": "pii",
    "protected_attribute": "protected",
    "identifier": "id",  # an id that points at a thing: order_id, a UUID
}
"""Every `Finding.kind`, with the role it proposes."""
_MIN_VALUES = 5  # below this many non-null values, values prove nothing either way
_ALONE = 0.8
_ALONE_MOD11 = 0.9
_WITH_NAME = 0.3
_SHAPE_ONLY = 0.5  # name agrees and this share has the shape but fails the check
_SCHEMES_ALONE = {"ssn": _ALONE, "nino": _ALONE, "nir": _ALONE, "dni": _ALONE}
_SCHEMES_ALONE |= {"bsn": _ALONE_MOD11, "nhs": _ALONE_MOD11}  # ssn_digits: never alone


@dataclass(frozen=True)
class Finding:
    """A proposed role for one column, with the evidence behind it."""

    column: str
    role: str  # "pii" | "protected" | "id"
    kind: str  # one of KINDS
    confidence: float  # 0..1
    evidence: str  # one sentence a person can check
    source: str  # "name", "values" or "both"


# -- turning counts into findings ---------------------------------------------------------


def _finding(col: Column, kind: str, confidence: float, evidence: str, source: str) -> Finding:
    return Finding(col.name, KINDS[kind], kind, round(confidence, 3), evidence, source)


def _decide(
    col: Column,
    kind: str,
    hits: int,
    what: str,
    *,
    named: bool,
    alone: float | None = _ALONE,
    shape_hits: int = 0,
    checked: bool = True,
    note: str = "",
) -> Finding | None:
    """The finding for `hits` of the sampled values passing kind's check, if any.

    `alone` is the share that decides without the name (None: the values never decide
    alone); `checked` marks a check with a checksum or parser behind it, which earns more
    confidence than a shape."""
    label = words.LABELS[kind]
    said = f"the name says {label}"
    n = col.n
    if n < _MIN_VALUES:
        if named and (n == 0 or hits):
            return _finding(col, kind, 0.4, f"{said}; {n or 'no'} non-null values to check", "name")
        return None
    share = hits / n
    counted = f"{hits} of {n} sampled values are {what}"
    tail = f"; {note}" if note else ""
    if named and share >= _WITH_NAME:
        return _finding(col, kind, 0.8 + 0.19 * share, f"{counted}; {said}{tail}", "both")
    if alone is not None and share >= alone:
        base, slope = (0.6, 0.38) if checked else (0.5, 0.4)
        return _finding(col, kind, base + slope * share, f"{counted}{tail}", "values")
    if named and shape_hits / n >= _SHAPE_ONLY:
        return _finding(
            col,
            kind,
            0.45,
            f"{said} and {shape_hits} of {n} sampled values have the shape, but only {hits} "
            f"pass the check (test data, or masked?)",
            "name",
        )
    return None


# -- one check per kind --------------------------------------------------------------------


def _email(col: Column) -> Finding | None:
    if col.kind not in ("string", "other"):
        return None
    hits = sum(1 for t in col.texts if checks.is_email(t))
    return _decide(col, "email", hits, "e-mail addresses", named=col.says(words.EMAIL))


def _phone_check(col: Column) -> Finding | None:
    if col.kind not in ("string", "integer", "other"):
        return None
    named = col.says(words.PHONE)
    parsed = [checks.phone_number(t) for t in col.texts]
    if named:
        hits = sum(1 for p in parsed if p)
        return _decide(col, "phone", hits, "phone numbers", named=True)
    if col.kind != "string" or col.distinct < 0.5:
        return None
    # Without the name, only formatted numbers long enough to carry an area code count:
    # a bare 7-digit number is as likely a quantity or a code.
    hits = sum(1 for p in parsed if p and p[1] and p[0] >= 9)
    return _decide(col, "phone", hits, "formatted phone numbers", named=False, checked=False)


def _national_id(col: Column) -> Finding | None:
    if col.kind not in ("string", "integer", "other"):
        return None
    named = col.says(words.NATIONAL_ID)
    counts: dict[str, int] = {}
    shaped = 0
    for t in col.texts:
        found = checks.schemes(t)
        for scheme in found:
            counts[scheme] = counts.get(scheme, 0) + 1
        if not found and checks.id_shaped(t):
            shaped += 1
    best: Finding | None = None
    for scheme, hits in sorted(counts.items(), key=lambda kv: -kv[1]):
        what = f"valid {checks.SCHEMES[scheme]}s"
        f = _decide(col, "national_id", hits, what, named=named, alone=_SCHEMES_ALONE.get(scheme))
        if f and (best is None or f.confidence > best.confidence):
            best = f
    if best is None and named:
        return _decide(col, "national_id", 0, "national ids", named=True, shape_hits=shaped)
    return best


def _card(col: Column) -> Finding | None:
    if col.kind not in ("string", "integer", "other"):
        return None
    brands = [card_brand(t) for t in col.texts]
    hits = sum(1 for b in brands if b)
    shaped = sum(1 for t in col.texts if checks.card_digits(t))
    networks = sorted({b for b in brands if b})
    note = f"networks: {', '.join(networks)}" if networks else ""
    what = "card numbers passing the Luhn check with a known issuer prefix"
    named = col.says(words.CARD)
    return _decide(col, "card_number", hits, what, named=named, shape_hits=shaped, note=note)


def _iban(col: Column) -> Finding | None:
    if col.kind not in ("string", "other"):
        return None
    hits = sum(1 for t in col.texts if iban_valid(t))
    shaped = sum(1 for t in col.texts if checks.iban_compact(t))
    what = "IBANs with a valid length and mod-97 check"
    return _decide(col, "iban", hits, what, named=col.says(words.IBAN), shape_hits=shaped)


def _ip(col: Column) -> Finding | None:
    if col.kind not in ("string", "other"):
        return None
    versions = [checks.ip_version(t) for t in col.texts]
    hits = sum(1 for v in versions if v)
    named = col.says(words.IP)
    # Four-part version numbers (1.2.0.3) parse as IPv4; addresses seldom keep every
    # octet under 32, versions usually do.
    spread = sum(
        1
        for t, v in zip(col.texts, versions, strict=True)
        if v == 6 or (v == 4 and max(int(o) for o in t.partition(":")[0].split(".")) >= 32)
    )
    alone: float | None = _ALONE
    if col.says(words.VERSION) or col.distinct < 0.2 or spread < hits / 2:
        alone = None
    v6 = sum(1 for v in versions if v == 6)
    note = f"{v6} are IPv6" if v6 else ""
    return _decide(col, "ip_address", hits, "IP addresses", named=named, alone=alone, note=note)


_PRECISE_SHARE = 0.6  # a tenth of 4-decimal values end in 0 and print with 3


def _coordinates(col: Column) -> Finding | None:
    last = col.tokens[-1] if col.tokens else ""
    lat = col.says(words.LATITUDE)
    lon = col.says(words.LONGITUDE) or (last == "long" and len(col.tokens) <= 2)
    numbers = []
    if lat or lon:
        for t in col.texts:
            with contextlib.suppress(ValueError):
                numbers.append((float(t), checks.decimals(t)))
    if numbers and len(numbers) >= 0.8 * col.n and col.n >= _MIN_VALUES:
        bound = 90.0 if lat else 180.0
        in_range = sum(1 for x, _ in numbers if -bound <= x <= bound)
        precise = sum(
            1 for x, d in numbers if -bound <= x <= bound and d >= checks.PRECISE_DECIMALS
        )
        if in_range >= 0.95 * col.n and precise >= _PRECISE_SHARE * col.n:
            axis = "latitude" if lat else "longitude"
            return _finding(
                col,
                "coordinates",
                0.8 + 0.19 * precise / col.n,
                f"{precise} of {col.n} sampled values have {checks.PRECISE_DECIMALS} or more "
                f"decimal places (11 m or finer) and {in_range} lie within ±{bound:g}; "
                f"the name says {axis}",
                "both",
            )
        return None  # a named coordinate rounded to a neighbourhood is not precise
    if col.kind not in ("string", "other"):
        return None
    hits = sum(1 for t in col.texts if checks.precise_pair(t))
    what = f"latitude, longitude pairs with {checks.PRECISE_DECIMALS}+ decimal places"
    named = lat or lon or col.says(words.PLACE)
    return _decide(col, "coordinates", hits, what, named=named, checked=False)


def _person_name(col: Column) -> Finding | None:
    if col.kind not in ("string", "other") or col.about_a_thing:
        return None
    strong = col.says(words.PERSON_NAME)
    weak = bool(col.runs & words.NAME_WORDS or set(col.tokens) & words.PERSON)
    parsed = [checks.name_words(t) for t in col.texts]
    shaped = sum(1 for p in parsed if p)
    full = sum(1 for p in parsed if p and len(p) >= 2)
    given = sum(1 for p in parsed if p and words.fold(p[0]) in words.GIVEN)
    n = max(col.n, 1)
    if strong:
        return _decide(col, "person_name", shaped, "capitalised names", named=True)
    what = "two to four capitalised words like a given and a family name"
    known = f"{given} start with a common given name"
    if weak and full >= 0.7 * n and given >= 0.1 * n and col.distinct >= 0.3:
        return _decide(col, "person_name", full, what, named=True, note=known)
    # Many distinct values, or a few people named again and again (`assigned_to`): the
    # given-name share must then carry more of the weight.
    varied = (col.distinct >= 0.5 and given >= 0.2 * n) or (
        given >= 0.5 * n and len(set(col.texts)) >= 3
    )
    if col.n >= _MIN_VALUES and varied and full >= 0.8 * n:
        return _decide(col, "person_name", full, what, named=False, checked=False, note=known)
    if col.n >= _MIN_VALUES and shaped - full >= 0.8 * n and given >= 0.7 * n:
        return _decide(col, "person_name", given, "common given names", named=False)
    return None


def _person_identifier(col: Column) -> Finding | None:
    tokens = set(col.tokens)
    entity = tokens & words.PERSON
    special = col.says(words.PERSON_ID)
    if not special and not (entity and tokens <= words.PERSON | words.ID_WORDS):
        return None
    if col.about_a_thing and not special:
        return None
    who = ", ".join(sorted(entity)) or f"a person ({col.name})"
    if col.n == 0:
        return _finding(col, "person_identifier", 0.4, f"the name says it identifies {who}", "name")
    ids = col.codes
    if ids < 0.8 * col.n or len(set(col.texts)) < 2:
        return None
    return _finding(
        col,
        "person_identifier",
        0.75,
        f"the name says it identifies {who}; {ids} of {col.n} sampled values are codes "
        f"({col.distinct:.0%} distinct)",
        "name",
    )


def _identifier(col: Column) -> Finding | None:
    if col.n < _MIN_VALUES:
        return None
    t = col.tokens
    last = t[-1] if t else ""
    named = last in words.ID_LAST or (
        last in words.NUMBER_LAST and len(t) >= 2 and t[0] not in words.COUNT_WORDS
    )
    uuids = sum(1 for x in col.texts if checks.is_uuid(x))
    if uuids >= 0.9 * col.n:
        return _decide(col, "identifier", uuids, "UUIDs", named=named)
    ids = col.codes
    if named and ids >= 0.8 * col.n and col.distinct >= 0.5:
        return _finding(
            col,
            "identifier",
            0.7,
            f"the name says identifier; {ids} of {col.n} sampled values are codes, "
            f"{col.distinct:.0%} distinct",
            "both",
        )
    return None


def _birth_date(col: Column) -> Finding | None:
    if not col.says(words.BIRTH):
        return None
    if col.kind == "temporal":
        hits = col.n
    else:
        years = sum(1 for x in col.texts if x.isdigit() and 1880 <= int(x) <= 2100)
        hits = sum(1 for x in col.texts if checks.is_date(x)) + years
    return _decide(col, "birth_date", hits, "dates or years", named=True, alone=None)


def _protected(col: Column) -> Finding | None:
    attribute = col.protected_attribute
    folded = [words.fold(x) for x in col.texts]
    n = col.n
    vocab, vocab_hits = words.protected_vocabulary(folded) if n >= _MIN_VALUES else (None, 0)
    if attribute is None:
        if vocab is None or n < _MIN_VALUES:
            return None
        return _finding(
            col,
            "protected_attribute",
            0.5 + 0.4 * vocab_hits / n,
            f"{vocab_hits} of {n} sampled values are {vocab} categories",
            "values",
        )
    if attribute == "age":
        numeric = sum(1 for x in folded if checks.is_age(x))
        if n and numeric < 0.9 * n:
            return None
        return _finding(
            col,
            "protected_attribute",
            0.55,
            "the name says age; age is protected under most equality law but also a "
            "common clinical feature: confirm it as protected, or keep it as a feature "
            "and monitor fairness across age groups",
            "name",
        )
    categorical = len(set(folded)) <= max(30, n // 2)
    if n and not (col.kind == "bool" or categorical):
        return None  # gender_pay_gap: many distinct numbers, a measurement
    if vocab is not None:
        return _finding(
            col,
            "protected_attribute",
            0.95,
            f"{vocab_hits} of {n} sampled values are {vocab} categories; the name says {attribute}",
            "both",
        )
    return _finding(
        col,
        "protected_attribute",
        0.85 if n else 0.6,
        f"the name says {attribute}; {len(set(folded))} distinct sampled values",
        "name",
    )


_PII_CHECKS: tuple[Callable[[Column], Finding | None], ...] = (
    _email,
    _card,
    _iban,
    _national_id,
    _phone_check,
    _ip,
    _coordinates,
    _birth_date,
    _person_name,
    _protected,
    _person_identifier,
)


def detect_column(name: str, values: Sequence[object], dtype: str = "string") -> Finding | None:
    """The most likely PII, protected or identifier role of one column, or None."""
    col = Column(name, sample(values, SAMPLE_LIMIT), dtype)
    found = [f for check in _PII_CHECKS if (f := check(col)) is not None]
    if found:  # ties go to the earlier check: checksums before shapes before names
        return max(found, key=lambda f: f.confidence)
    return _identifier(col)


def propose_classification(
    table: pa.Table | pa.RecordBatch, sample_rows: int = SAMPLE_LIMIT
) -> dict[str, Finding]:
    """Findings for the columns of a pyarrow Table or RecordBatch that have one."""
    import pyarrow as pa
    import pyarrow.compute as pc

    out: dict[str, Finding] = {}
    for field, column in zip(table.schema, table.columns, strict=True):
        value_type = field.type
        if pa.types.is_dictionary(value_type):
            value_type = value_type.value_type
        if pa.types.is_nested(value_type):
            continue
        present = pc.drop_null(column)
        size = len(present)
        k = min(size, sample_rows)
        indices = pa.array([i * size // k for i in range(k)], type=pa.int64())
        values = present.take(indices).to_pylist() if k else []
        finding = detect_column(field.name, values, str(value_type))
        if finding is not None:
            out[field.name] = finding
    return out
