"""in-toto Statement v1: what an attestation says, about which artifacts.

A Statement names its subjects by digest and carries one typed predicate; it travels
signed inside a DSSE envelope (`PAYLOAD_TYPE`). Parsing is strict where ambiguity could
be exploited (duplicate keys, non-finite numbers, malformed digests) and, as the spec
asks, ignores top-level fields it does not know.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from farpoint.core.errors import ValidationFailed

__all__ = [
    "APPROVAL_V1",
    "DATASET_V1",
    "MAX_SUBJECTS",
    "PAYLOAD_TYPE",
    "SLSA_PROVENANCE_V1",
    "STATEMENT_TYPE",
    "TEST_RESULT_V01",
    "TRAINING_BUILD_TYPE",
    "Statement",
    "Subject",
    "parse_statement",
    "statement_bytes",
]

STATEMENT_TYPE = "https://in-toto.io/Statement/v1"
PAYLOAD_TYPE = "application/vnd.in-toto+json"

DATASET_V1 = "https://farpoint.dev/attestation/dataset/v1"
SLSA_PROVENANCE_V1 = "https://slsa.dev/provenance/v1"
TEST_RESULT_V01 = "https://in-toto.io/attestation/test-result/v0.1"
APPROVAL_V1 = "https://farpoint.dev/attestation/approval/v1"
TRAINING_BUILD_TYPE = "https://farpoint.dev/training/v1"

MAX_SUBJECTS = 256
"""More subjects than any Farpoint predicate needs; a bound on work per statement."""

_HEX64 = re.compile(r"^[0-9a-f]{64}$")
_MAX_NAME = 1024
_MAX_TYPE = 512


@dataclass(frozen=True)
class Subject:
    """One artifact a statement is about: a name and its `sha256:<hex>` address."""

    name: str
    digest: str

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "digest": {"sha256": self.digest.split(":", 1)[1]}}


@dataclass(frozen=True)
class Statement:
    subjects: tuple[Subject, ...]
    predicate_type: str
    predicate: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "_type": STATEMENT_TYPE,
            "subject": [s.to_json() for s in self.subjects],
            "predicateType": self.predicate_type,
            "predicate": self.predicate,
        }

    @property
    def digests(self) -> list[str]:
        return [s.digest for s in self.subjects]

    @classmethod
    def build(
        cls, subjects: Iterable[Subject], predicate_type: str, predicate: Mapping[str, Any]
    ) -> Statement:
        """A statement, checked by the same rules a parser applies."""
        statement = cls(tuple(subjects), predicate_type, dict(predicate))
        return parse_statement(statement_bytes(statement))


def statement_bytes(statement: Statement) -> bytes:
    """The statement as compact JSON with sorted keys (the bytes a signer signs)."""
    return json.dumps(
        statement.to_json(), sort_keys=True, separators=(",", ":"), allow_nan=False
    ).encode()


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise ValidationFailed(f"the statement repeats the key {key!r}; keys must be unique")
        out[key] = value
    return out


def _no_constant(name: str) -> Any:
    raise ValidationFailed(f"the statement holds {name}, which is not JSON")


def _load(data: bytes | str) -> Any:
    try:
        return json.loads(data, object_pairs_hook=_no_duplicates, parse_constant=_no_constant)
    except (ValueError, RecursionError) as exc:
        if isinstance(exc, ValidationFailed):
            raise
        raise ValidationFailed(f"the statement is not JSON: {exc}") from exc


def _subject(index: int, raw: Any) -> Subject:
    where = f"subject[{index}]"
    if not isinstance(raw, dict):
        raise ValidationFailed(f"{where} must be an object with name and digest")
    name = raw.get("name", "")
    if not isinstance(name, str) or len(name) > _MAX_NAME:
        raise ValidationFailed(f"{where}.name must be a string of at most {_MAX_NAME} characters")
    digest = raw.get("digest")
    if not isinstance(digest, dict) or "sha256" not in digest:
        raise ValidationFailed(f"{where}.digest must hold a sha256 entry")
    hexpart = digest["sha256"]
    if not isinstance(hexpart, str) or not _HEX64.match(hexpart):
        raise ValidationFailed(f"{where}.digest.sha256 must be 64 lowercase hex characters")
    return Subject(name=name, digest="sha256:" + hexpart)


def parse_statement(data: bytes | str | Mapping[str, Any]) -> Statement:
    """A Statement from JSON bytes or an already decoded object; ValidationFailed says why not."""
    raw = _load(data) if isinstance(data, bytes | str) else dict(data)
    if not isinstance(raw, dict):
        raise ValidationFailed("the statement must be a JSON object")
    if raw.get("_type") != STATEMENT_TYPE:
        raise ValidationFailed(f"the statement's _type must be {STATEMENT_TYPE!r}")
    subjects = raw.get("subject")
    if not isinstance(subjects, list) or not subjects:
        raise ValidationFailed("the statement must name at least one subject")
    if len(subjects) > MAX_SUBJECTS:
        raise ValidationFailed(f"the statement names more than {MAX_SUBJECTS} subjects")
    predicate_type = raw.get("predicateType")
    if not isinstance(predicate_type, str) or not predicate_type or len(predicate_type) > _MAX_TYPE:
        raise ValidationFailed("the statement's predicateType must be a non-empty URI")
    predicate = raw.get("predicate", {})
    if predicate is None:  # the spec treats null and absent alike
        predicate = {}
    if not isinstance(predicate, dict):
        raise ValidationFailed("the statement's predicate must be a JSON object")
    return Statement(
        subjects=tuple(_subject(i, s) for i, s in enumerate(subjects)),
        predicate_type=predicate_type,
        predicate=predicate,
    )
