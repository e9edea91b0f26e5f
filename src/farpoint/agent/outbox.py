"""The bounded on-disk queue of telemetry records, sent oldest first when the link is up.

Layout under `<state>/telemetry/`:

    seg-<first seq>.log   records, one line each: `<seq> <crc32 hex> <json>\\n`, appended
                          and fsynced; a new segment every SEGMENT_BYTES
    cursor.json           `{"done": S, "dropped": D}`: every record with seq <= S was
                          accepted by the server or dropped; D dropped records the server
                          has not been told about yet (written atomically)

A record is deleted only after the server accepted the report that carried it (a
segment goes when none of its records is left). Past `max_records` or `max_bytes` the
oldest records are dropped and counted. A power cut mid-append leaves a torn last line:
on start it is skipped (counted as dropped, since its counts are lost) and cut off, and
a line whose checksum fails anywhere is skipped the same way; neither is fatal.
Sequence numbers only grow, across restarts, so the server's `(device, seq)` key never
mistakes a new record for a retry.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import zlib
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .state import atomic_write, fsync_dir

__all__ = [
    "DEFAULT_MAX_BYTES",
    "DEFAULT_MAX_RECORDS",
    "MAX_RECORD_BYTES",
    "SEGMENT_BYTES",
    "Outbox",
]

log = logging.getLogger("farpoint.agent")

DEFAULT_MAX_RECORDS = 10_000
"""About 28 hours of 10-second windows."""
DEFAULT_MAX_BYTES = 8 << 20
MAX_RECORD_BYTES = 56 << 10
"""A record must fit a 64 KiB status report beside the statuses and the heartbeat."""
SEGMENT_BYTES = 256 << 10
_CURSOR = "cursor.json"
_PREFIX = "seg-"
_SUFFIX = ".log"


@dataclass(frozen=True)
class _Entry:
    seq: int
    segment: Path
    offset: int
    """Where the JSON starts in the segment."""
    length: int
    """Bytes of JSON."""
    crc: int


def _segment_name(seq: int) -> str:
    return f"{_PREFIX}{seq:012d}{_SUFFIX}"


def _parse_line(line: bytes) -> tuple[int, int, int] | None:
    """(seq, crc, offset of the JSON) of a complete line that checks out, else None."""
    parts = line.split(b" ", 2)
    if len(parts) != 3 or not parts[0].isdigit() or len(parts[1]) != 8:
        return None
    try:
        crc = int(parts[1], 16)
    except ValueError:
        return None
    body = parts[2][:-1]  # the newline
    if zlib.crc32(body) != crc:
        return None
    return int(parts[0]), crc, len(parts[0]) + len(parts[1]) + 2


class Outbox:
    """Telemetry records queued durably; thread-safe."""

    def __init__(
        self,
        directory: Path,
        max_records: int = DEFAULT_MAX_RECORDS,
        max_bytes: int = DEFAULT_MAX_BYTES,
        max_record_bytes: int = MAX_RECORD_BYTES,
        segment_bytes: int = SEGMENT_BYTES,
    ) -> None:
        self.directory = directory
        self.max_records = max_records
        self.max_bytes = max_bytes
        self.max_record_bytes = max_record_bytes
        self.segment_bytes = segment_bytes
        self._lock = threading.Lock()
        self._entries: deque[_Entry] = deque()
        self._bytes = 0
        self._done = -1
        self._dropped = 0
        self._next_seq = 0
        self.skipped = 0
        """Lines found torn or corrupt when the queue was opened."""
        directory.mkdir(parents=True, exist_ok=True)
        self._load()

    # opening

    def _load(self) -> None:
        try:
            cursor = json.loads((self.directory / _CURSOR).read_bytes())
            self._done = int(cursor["done"])
            self._dropped = int(cursor["dropped"])
        except FileNotFoundError:
            pass
        except (ValueError, KeyError, TypeError) as exc:
            # written atomically, so this is damage; resending is safe (the server keeps
            # each seq once), losing records is not
            log.warning("telemetry cursor unreadable (%s); resending what is queued", exc)
        highest = self._done
        segments = sorted(self.directory.glob(f"{_PREFIX}*{_SUFFIX}"))
        for i, segment in enumerate(segments):
            data = segment.read_bytes()
            pos = 0
            while pos < len(data):
                end = data.find(b"\n", pos)
                if end < 0:  # a torn last line: the append never finished
                    self.skipped += 1
                    self._dropped += 1
                    if i == len(segments) - 1:
                        os.truncate(segment, pos)
                    log.warning("telemetry: skipped a torn record at the end of %s", segment)
                    break
                parsed = _parse_line(data[pos : end + 1])
                if parsed is None:
                    self.skipped += 1
                    self._dropped += 1
                    log.warning("telemetry: skipped a corrupt record in %s", segment)
                else:
                    seq, crc, start = parsed
                    highest = max(highest, seq)
                    if seq > self._done:
                        length = end - pos - start
                        self._entries.append(_Entry(seq, segment, pos + start, length, crc))
                        self._bytes += length + 1
                pos = end + 1
        self._next_seq = highest + 1
        if self.skipped:
            self._save_cursor()
        self._delete_spent_segments()

    # queueing

    def append(self, record: dict[str, Any]) -> int | None:
        """Queue a record under the next seq, durably; the oldest go past the bounds.

        None (and the record counted as dropped) when it is too big to ever be sent or
        the disk refuses it.
        """
        with self._lock:
            seq = self._next_seq
            body = json.dumps({**record, "seq": seq}, separators=(",", ":")).encode()
            if len(body) > self.max_record_bytes:
                log.error(
                    "telemetry record of %d B is over %d B; dropped",
                    len(body),
                    self.max_record_bytes,
                )
                self._dropped += 1
                self._save_cursor()
                return None
            crc = zlib.crc32(body)
            head = f"{seq} {crc:08x} ".encode()
            segment = self._segment_for_append(seq)
            fresh = not segment.exists()
            offset = segment.stat().st_size if not fresh else 0
            try:
                with open(segment, "ab") as f:
                    f.write(head + body + b"\n")
                    f.flush()
                    os.fsync(f.fileno())
                if fresh:
                    fsync_dir(self.directory)
            except OSError as exc:  # a full or failing disk: these counts are lost, say so
                log.error("telemetry record %d not queued: %s", seq, exc)
                self._dropped += 1
                try:
                    os.truncate(segment, offset)  # no half line for the next append to follow
                    self._save_cursor()
                except OSError:
                    pass
                return None
            self._next_seq = seq + 1
            self._entries.append(_Entry(seq, segment, offset + len(head), len(body), crc))
            self._bytes += len(body) + 1
            dropped = 0
            while len(self._entries) > self.max_records or self._bytes > self.max_bytes:
                self._pop_oldest()
                dropped += 1
            if dropped:
                self._dropped += dropped
                self._save_cursor()
                self._delete_spent_segments()
            return seq

    def _segment_for_append(self, seq: int) -> Path:
        if self._entries:
            last = self._entries[-1].segment
            if last.exists() and last.stat().st_size < self.segment_bytes:
                return last
        return self.directory / _segment_name(seq)

    def _pop_oldest(self) -> _Entry:
        entry = self._entries.popleft()
        self._bytes -= entry.length + 1
        self._done = max(self._done, entry.seq)
        return entry

    # sending

    @property
    def pending(self) -> int:
        return len(self._entries)

    @property
    def queued_bytes(self) -> int:
        return self._bytes

    @property
    def dropped(self) -> int:
        """Records dropped that no accepted report has counted yet."""
        return self._dropped

    def batch(self, max_bytes: int) -> list[dict[str, Any]]:
        """The oldest records whose JSON, comma-separated, fits in `max_bytes`."""
        with self._lock:
            out: list[dict[str, Any]] = []
            used = 0
            rotten: list[_Entry] = []
            handles: dict[Path, Any] = {}
            try:
                for entry in self._entries:
                    if used + entry.length + 1 > max_bytes:
                        break
                    f = handles.get(entry.segment)
                    if f is None:
                        f = handles[entry.segment] = open(entry.segment, "rb")  # noqa: SIM115
                    f.seek(entry.offset)
                    body = f.read(entry.length)
                    if zlib.crc32(body) != entry.crc:
                        rotten.append(entry)
                        continue
                    out.append(json.loads(body))
                    used += entry.length + 1
            finally:
                for f in handles.values():
                    f.close()
            if rotten:  # the disk changed under us: those counts are lost, say so
                log.warning("telemetry: %d queued records no longer check out", len(rotten))
                self._entries = deque(e for e in self._entries if e not in rotten)
                self._bytes -= sum(e.length + 1 for e in rotten)
                self._dropped += len(rotten)
                self._save_cursor()
            return out

    def ack(self, last_seq: int, dropped_reported: int = 0) -> None:
        """The server accepted every record up to `last_seq` and `dropped_reported` drops."""
        with self._lock:
            while self._entries and self._entries[0].seq <= last_seq:
                self._pop_oldest()
            self._done = max(self._done, last_seq)
            self._dropped = max(0, self._dropped - dropped_reported)
            self._save_cursor()
            self._delete_spent_segments()

    def drop_oldest(self) -> int | None:
        """Give up on the oldest record (the server refuses it); its seq, or None."""
        with self._lock:
            if not self._entries:
                return None
            entry = self._pop_oldest()
            self._dropped += 1
            self._save_cursor()
            self._delete_spent_segments()
            return entry.seq

    # housekeeping

    def _save_cursor(self) -> None:
        doc = {"done": self._done, "dropped": self._dropped}
        atomic_write(self.directory / _CURSOR, json.dumps(doc).encode())

    def _delete_spent_segments(self) -> None:
        live = {e.segment for e in self._entries}
        for segment in self.directory.glob(f"{_PREFIX}*{_SUFFIX}"):
            if segment not in live:
                segment.unlink(missing_ok=True)
