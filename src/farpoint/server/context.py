"""What the app holds for its lifetime: settings, database, blobs, signing key, notifier."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from farpoint.core import keys
from farpoint.server.blobs.store import BlobStore
from farpoint.server.db import Database
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

    @property
    def signing_key_id(self) -> str:
        return keys.key_id(self.signing_key.public_key())
