"""Dataset calls of the SDK: upload, list, inspect, label columns, download."""

from __future__ import annotations

import io
import json
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from farpoint.sdk._http import _Base, segment
from farpoint.wire.datasets import DatasetOut, DatasetVersionOut

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["DatasetCalls"]

_PARQUET_MAGIC = b"PAR1"


class DatasetCalls(_Base):
    def upload_dataset(
        self,
        name: str,
        path_or_bytes: str | Path | bytes,
        *,
        roles: Mapping[str, str],
        filename: str | None = None,
        team: str | None = None,
    ) -> DatasetVersionOut:
        """Upload a CSV or Parquet file as the next version of dataset `name`.

        `roles` maps columns to their role (`feature`, `label`, `protected`, `pii`, ...).
        Bytes need a `filename` telling their format unless they are Parquet.
        """
        data: Any
        if isinstance(path_or_bytes, bytes):
            data = path_or_bytes
            if filename is None:
                filename = "data.parquet" if data[:4] == _PARQUET_MAGIC else "data.csv"
            return self._upload(name, filename, data, roles, team)
        path = Path(path_or_bytes)
        with path.open("rb") as fh:
            return self._upload(name, filename or path.name, fh, roles, team)

    def _upload(
        self, name: str, filename: str, data: Any, roles: Mapping[str, str], team: str | None
    ) -> DatasetVersionOut:
        form = {"roles": json.dumps(dict(roles))}
        if team is not None:
            form["team"] = team
        return self._one(
            DatasetVersionOut,
            "POST",
            f"datasets/{segment(name)}/versions",
            data=form,
            files={"file": (filename, data, "application/octet-stream")},
        )

    def list_datasets(self) -> list[DatasetOut]:
        """Every dataset, with its latest version number."""
        return self._all(DatasetOut, "datasets")

    def list_dataset_versions(self, name: str) -> list[DatasetVersionOut]:
        """Every version of dataset `name`, oldest first."""
        return self._all(DatasetVersionOut, f"datasets/{segment(name)}/versions")

    def _dataset_path(self, ref: str, version: int | None) -> str:
        name, number = self._versioned(ref, version, "datasets")
        return f"datasets/{segment(name)}/versions/{number}"

    def get_dataset_version(self, ref: str, version: int | None = None) -> DatasetVersionOut:
        """One dataset version by `name@3` (or `name`, 3); `name` alone means the latest."""
        return self._one(DatasetVersionOut, "GET", self._dataset_path(ref, version))

    def set_column_roles(
        self, ref: str, roles: Mapping[str, str], version: int | None = None
    ) -> DatasetVersionOut:
        """Replace the column roles of a dataset version."""
        # Sent unchecked (RolesUpdate's shape): the server names the allowed roles on a typo.
        return self._one(
            DatasetVersionOut,
            "PUT",
            self._dataset_path(ref, version) + "/roles",
            json={"roles": dict(roles)},
        )

    def download_dataset(self, ref: str, version: int | None = None) -> bytes:
        """The canonical Parquet bytes of a dataset version."""
        return self._request("GET", self._dataset_path(ref, version) + "/data").content

    def load_dataset(self, ref: str, version: int | None = None) -> pd.DataFrame:
        """A dataset version as a pandas DataFrame."""
        import pandas as pd

        return pd.read_parquet(io.BytesIO(self.download_dataset(ref, version)))
