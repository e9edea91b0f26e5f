"""What the app holds for its lifetime: settings, database, blobs, signing key, notifier,
and the writer that group-commits what devices write."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from farpoint.core import keys
from farpoint.server.blobs.store import BlobStore
from farpoint.server.db import Database
from farpoint.server.group_commit import GroupCommit
from farpoint.server.notify import Notifier
from farpoint.server.settings import Settings

__all__ = ["AppContext"]


@dataclass
class AppContext:
    settings: Settings
    db: Database
    blobs: BlobStore
    signing_key: keys.PrivateKey
    notifier: Notifier = field(default_factory=Notifier)
    clock: Callable[[], float] = time.time
    device_writes: GroupCommit = field(init=False)
    """What devices' requests write (status reports, director signing, last seen) goes
    through this writer (`group_commit.py`): a fleet checking in never fights over the
    database's write lock."""

    def __post_init__(self) -> None:
        self.device_writes = GroupCommit(self.db, "farpoint-device-writes")

    def now(self) -> datetime:
        """The app clock's current time, aware UTC (tests inject the clock)."""
        return datetime.fromtimestamp(self.clock(), UTC)

    @property
    def signing_key_id(self) -> str:
        return keys.key_id(self.signing_key.public_key())
