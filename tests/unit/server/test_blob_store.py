"""The content-addressed blob store: atomic writes, verified reads, bounded uploads."""

from __future__ import annotations

import io

import pytest

from farpoint.core.digest import digest_bytes
from farpoint.core.errors import NotFound, PayloadTooLarge
from farpoint.server.blobs.store import BlobCorrupted, BlobStore


def test_put_and_read_back(tmp_path):
    store = BlobStore(tmp_path)
    d = store.put_bytes(b"hello")
    assert d == digest_bytes(b"hello")
    assert store.read_bytes(d) == b"hello"
    assert store.put_bytes(b"hello") == d  # idempotent
    assert b"".join(store.iter_verified(d)) == b"hello"


def test_corruption_on_disk_is_detected(tmp_path):
    store = BlobStore(tmp_path)
    d = store.put_bytes(b"model bytes")
    store.path(d).write_bytes(b"evil bytes!")
    with pytest.raises(BlobCorrupted):
        store.read_bytes(d)
    with pytest.raises(BlobCorrupted):
        b"".join(store.iter_verified(d))


def test_oversized_stream_leaves_nothing_behind(tmp_path):
    store = BlobStore(tmp_path)
    with pytest.raises(PayloadTooLarge):
        store.put_stream(io.BytesIO(b"x" * 100), max_bytes=10)
    assert list((tmp_path / "tmp").iterdir()) == []
    assert not (tmp_path / "sha256").exists() or not any((tmp_path / "sha256").rglob("*"))


def test_missing_blob(tmp_path):
    store = BlobStore(tmp_path)
    with pytest.raises(NotFound):
        store.read_bytes(digest_bytes(b"absent"))
