"""A content-addressed local blob store: atomic writes, verified reads."""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from farpoint.core.digest import hex_of
from farpoint.core.errors import FarpointError, NotFound, PayloadTooLarge

__all__ = ["BlobCorrupted", "BlobStore"]

_CHUNK = 1 << 20


class BlobCorrupted(FarpointError):
    status = 500
    code = "blob-corrupted"
    title = "Stored blob is corrupted"


class BlobStore:
    """Blobs live at `<root>/sha256/<aa>/<hex>`; a blob's name is its digest."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        (self.root / "tmp").mkdir(parents=True, exist_ok=True)

    def path(self, digest: str) -> Path:
        h = hex_of(digest)
        return self.root / "sha256" / h[:2] / h

    def exists(self, digest: str) -> bool:
        return self.path(digest).is_file()

    def size(self, digest: str) -> int:
        try:
            return self.path(digest).stat().st_size
        except FileNotFoundError as exc:
            raise NotFound(f"blob {digest} is not stored") from exc

    def put_bytes(self, data: bytes) -> str:
        import io

        return self.put_stream(io.BytesIO(data))

    def put_stream(self, stream: BinaryIO, max_bytes: int | None = None) -> str:
        """Store the stream's content; write to a temp file, fsync, then rename into place."""
        h = hashlib.sha256()
        size = 0
        fd, tmp = tempfile.mkstemp(dir=self.root / "tmp")
        try:
            with os.fdopen(fd, "wb") as out:
                while chunk := stream.read(_CHUNK):
                    size += len(chunk)
                    if max_bytes is not None and size > max_bytes:
                        raise PayloadTooLarge(f"blob exceeds the limit of {max_bytes} bytes")
                    h.update(chunk)
                    out.write(chunk)
                out.flush()
                os.fsync(out.fileno())
            digest = "sha256:" + h.hexdigest()
            dest = self.path(digest)
            dest.parent.mkdir(parents=True, exist_ok=True)
            if dest.exists():
                os.unlink(tmp)
            else:
                os.replace(tmp, dest)
                _fsync_dir(dest.parent)
            return digest
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise

    def delete(self, digest: str) -> bool:
        """Remove a blob (rows purged for retention or erasure); False if it was not there.
        Callers delete only after the transaction that stopped referring to it committed."""
        try:
            self.path(digest).unlink()
        except FileNotFoundError:
            return False
        return True

    def read_bytes(self, digest: str) -> bytes:
        """The whole blob, checked against its digest."""
        try:
            data = self.path(digest).read_bytes()
        except FileNotFoundError as exc:
            raise NotFound(f"blob {digest} is not stored") from exc
        if hashlib.sha256(data).hexdigest() != hex_of(digest):
            raise BlobCorrupted(f"blob {digest} does not match its digest")
        return data

    def iter_verified(self, digest: str) -> Iterator[bytes]:
        """Stream a blob; raises BlobCorrupted at the end if the content changed on disk."""
        path = self.path(digest)
        if not path.is_file():
            raise NotFound(f"blob {digest} is not stored")
        h = hashlib.sha256()
        with open(path, "rb") as f:
            while chunk := f.read(_CHUNK):
                h.update(chunk)
                yield chunk
        if h.hexdigest() != hex_of(digest):
            raise BlobCorrupted(f"blob {digest} does not match its digest")


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
