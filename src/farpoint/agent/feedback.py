"""Prediction ids and the ground truth applications post about them (`POST /v1/feedback`).

Every prediction the local API answers gets a short random id; the agent remembers, for
a bounded number of recent predictions and a bounded time, which model and release made
it and what it predicted. Feedback names the id, the true label and the values of the
protected attributes the application knows (the model never sees them); it becomes
confusion counts (`InferenceStats.record_feedback`), never a stored row.
"""

from __future__ import annotations

import base64
import os
import re
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = [
    "DEFAULT_CAPACITY",
    "DEFAULT_MAX_AGE_S",
    "MAX_ATTRIBUTES",
    "MAX_FEEDBACK_BYTES",
    "MAX_VALUE_CHARS",
    "Feedback",
    "FeedbackError",
    "Prediction",
    "RecentPredictions",
    "check_label",
    "label_text",
    "new_ids",
    "parse_feedback",
]

DEFAULT_CAPACITY = 10_000
DEFAULT_MAX_AGE_S = 3600.0
MAX_FEEDBACK_BYTES = 8 * 1024
MAX_ATTRIBUTES = 8
MAX_VALUE_CHARS = 32
_ID_BYTES = 12  # 96 random bits: 16 url-safe characters, no padding
_ID_CHARS = 16
_ID = re.compile(r"^[A-Za-z0-9_-]{16}$")
_ATTRIBUTE = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]{0,31}$")


def new_ids(n: int) -> list[str]:
    """`n` unguessable ids from one read of the system's random source."""
    if n <= 0:
        return []
    # base64 of a multiple of 3 bytes has no padding, so 12-byte chunks encode alone
    text = base64.urlsafe_b64encode(os.urandom(_ID_BYTES * n)).decode()
    return [text[i : i + _ID_CHARS] for i in range(0, len(text), _ID_CHARS)]


def label_text(label: Any) -> str:
    """A label as the counts key it: integers and strings as their text."""
    return label if isinstance(label, str) else str(label)


@dataclass(frozen=True)
class Prediction:
    model: str
    release_id: int | None
    predicted: str
    classes: Sequence[int | str]
    """The release's classes (shared with its manifest): what a true label may be."""


class RecentPredictions:
    """The last `capacity` predictions, each for `max_age_s`; feedback claims one once."""

    def __init__(
        self,
        capacity: int = DEFAULT_CAPACITY,
        max_age_s: float = DEFAULT_MAX_AGE_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.capacity = capacity
        self.max_age_s = max_age_s
        self._clock = clock
        self._lock = threading.Lock()
        # id -> (prediction, when, claimed); insertion order is age order
        self._items: OrderedDict[str, tuple[Prediction, float, bool]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._items)

    def _expire(self, now: float) -> None:
        items = self._items
        while len(items) > self.capacity:
            items.popitem(last=False)
        oldest = now - self.max_age_s
        while items:
            first = next(iter(items.values()))
            if first[1] >= oldest:
                break
            items.popitem(last=False)

    def remember(
        self,
        ids: Sequence[str],
        model: str,
        release_id: int | None,
        predicted: Sequence[str],
        classes: Sequence[int | str],
    ) -> None:
        shared: dict[str, Prediction] = {}  # one object per distinct label of the batch
        for label in predicted:
            if label not in shared:
                shared[label] = Prediction(model, release_id, label, classes)
        with self._lock:
            now = self._clock()
            items = self._items
            for pid, label in zip(ids, predicted, strict=True):
                items[pid] = (shared[label], now, False)
            self._expire(now)

    def claim(self, prediction_id: str) -> Prediction:
        """The prediction behind an id, marked as having its feedback; KeyError when the
        id is unknown or expired, LookupError (not KeyError) when it was claimed before."""
        with self._lock:
            self._expire(self._clock())
            found = self._items.get(prediction_id)
            if found is None:
                raise KeyError(prediction_id)
            prediction, when, claimed = found
            if claimed:
                raise LookupError(prediction_id)
            self._items[prediction_id] = (prediction, when, True)
            return prediction

    def unclaim(self, prediction_id: str) -> None:
        """Give an id back after its feedback was refused, so a corrected one may follow."""
        with self._lock:
            found = self._items.get(prediction_id)
            if found is not None:
                self._items[prediction_id] = (found[0], found[1], False)


class FeedbackError(ValueError):
    """A feedback body that is not acceptable; `field` names the part that is wrong."""

    def __init__(self, detail: str, field: str | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.field = field


@dataclass(frozen=True)
class Feedback:
    prediction_id: str
    label: int | str
    attributes: dict[str, str]


def parse_feedback(body: Any) -> Feedback:
    """Check a feedback body's shape (the label against the model comes later)."""
    if not isinstance(body, dict):
        raise FeedbackError('body must be a JSON object with "prediction_id" and "label"')
    unknown = sorted(set(body) - {"prediction_id", "label", "attributes"})
    if unknown:
        raise FeedbackError(f"unknown field {unknown[0]!r}", field=unknown[0])
    pid = body.get("prediction_id")
    if not isinstance(pid, str):
        raise FeedbackError(
            '"prediction_id" must be the id string a prediction answered with',
            field="prediction_id",
        )
    if not _ID.match(pid):
        raise FeedbackError(
            f"prediction id {pid[:40]!r} is not one this device gives (16 characters "
            "of A-Z a-z 0-9 _ -)",
            field="prediction_id",
        )
    if "label" not in body:
        raise FeedbackError('missing field "label": the true label', field="label")
    label = body["label"]
    if isinstance(label, bool) or not isinstance(label, int | str):
        raise FeedbackError(
            f'"label" must be an integer or a string, got {type(label).__name__}', field="label"
        )
    raw = body.get("attributes", {})
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise FeedbackError('"attributes" must be an object of name: value', field="attributes")
    if len(raw) > MAX_ATTRIBUTES:
        raise FeedbackError(
            f"{len(raw)} attributes; at most {MAX_ATTRIBUTES} per feedback", field="attributes"
        )
    attributes: dict[str, str] = {}
    for name, value in raw.items():
        where = f"attributes.{name}"
        if not _ATTRIBUTE.match(name):
            raise FeedbackError(
                f"attribute name {name[:40]!r} must be 1-32 characters of letters, digits, "
                "_ . - starting with a letter or _",
                field=where[:80],
            )
        if isinstance(value, bool) or not isinstance(value, int | str):
            raise FeedbackError(
                f"attribute {name!r} must be a string or an integer, got {type(value).__name__}",
                field=where,
            )
        text = label_text(value)
        if not text or len(text) > MAX_VALUE_CHARS:
            raise FeedbackError(
                f"attribute {name!r} is {len(text)} characters; 1 to {MAX_VALUE_CHARS} "
                "allowed (send a group such as an age band)",
                field=where,
            )
        attributes[name] = text
    return Feedback(pid, label, attributes)


def check_label(label: int | str, classes: Sequence[int | str]) -> str:
    """The true label as counted, if it is one of the release's classes."""
    if label in classes and type(label) in {type(c) for c in classes}:
        return label_text(label)
    kinds = {type(c).__name__ for c in classes}
    kind = "an integer" if kinds == {"int"} else "a string" if kinds == {"str"} else "a class"
    raise FeedbackError(
        f"label {label!r} is not one of the model's classes {list(classes)[:20]}; "
        f"send {kind} from that list",
        field="label",
    )
