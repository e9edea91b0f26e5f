"""Every room's tables, imported once so the metadata is complete (migrations, tests)."""

from __future__ import annotations

from farpoint.server.attestations import tables as _attestations  # noqa: F401
from farpoint.server.audit import tables as _audit  # noqa: F401
from farpoint.server.datasets import tables as _datasets  # noqa: F401
from farpoint.server.db import Base
from farpoint.server.devices import tables as _devices  # noqa: F401
from farpoint.server.evaluations import tables as _evaluations  # noqa: F401
from farpoint.server.fleets import tables as _fleets  # noqa: F401
from farpoint.server.identity import tables as _identity  # noqa: F401
from farpoint.server.keys import tables as _keys  # noqa: F401
from farpoint.server.models import tables as _models  # noqa: F401
from farpoint.server.releases import tables as _releases  # noqa: F401
from farpoint.server.rollouts import tables as _rollouts  # noqa: F401
from farpoint.server.telemetry import tables as _telemetry  # noqa: F401
from farpoint.server.tuf import tables as _tuf  # noqa: F401

metadata = Base.metadata

__all__ = ["metadata"]
