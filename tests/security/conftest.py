"""One world per module: a real server, a proxy, a real agent serving release 1."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from harness import World, build_world


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    yield from build_world(tmp_path_factory.mktemp("security"))


@pytest.fixture
def w(world: World) -> Iterator[World]:
    """The world for one attack; afterwards the proxy is honest and release 1 serves again."""
    world.proxy.clear()
    yield world
    world.restore()
