"""Dataset calls of the SDK: upload (files or DataFrames), inspect, classify, validate,
profile, compare, transform, retain, erase, download."""

from __future__ import annotations

import hashlib
import io
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from farpoint.core.errors import SignatureError
from farpoint.sdk._http import _Base, segment
from farpoint.wire.datasets import (
    ClassificationOut,
    ContractOut,
    DatasetOut,
    DatasetVersionOut,
    ErasureOut,
    LineageOut,
    QualityOut,
    RetentionSweepOut,
    VersionComparison,
)

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["DatasetCalls"]

_PARQUET_MAGIC = b"PAR1"


def _is_dataframe(obj: Any) -> bool:
    # Duck-typed so neither pandas nor polars is imported to tell.
    module = type(obj).__module__.split(".", 1)[0]
    return module in ("pandas", "polars") and type(obj).__name__ == "DataFrame"


def _content_digest(parquet: bytes) -> str:
    """The canonical content digest (docs/data.md) of Parquet bytes, batch by batch."""
    import pyarrow.parquet as pq

    from farpoint.ml.canonical import TableHasher, canonical_schema, cast_batch

    pf = pq.ParquetFile(io.BytesIO(parquet))
    schema = canonical_schema(pf.schema_arrow)
    hasher = TableHasher(schema)
    for batch in pf.iter_batches(batch_size=65_536):
        hasher.update(cast_batch(batch, schema))
    return hasher.hexdigest()


class DatasetCalls(_Base):
    def upload_dataset(
        self,
        name: str,
        data: str | Path | bytes | Any,
        *,
        roles: Mapping[str, str],
        filename: str | None = None,
        team: str | None = None,
        types: Mapping[str, str] | None = None,
    ) -> DatasetVersionOut:
        """Upload the next version of dataset `name`: a CSV or Parquet file (path or bytes),
        or a pandas or polars DataFrame (sent as Parquet).

        `roles` maps columns to their role (`feature`, `label`, `protected`, `pii`, ...);
        `types` forces a CSV column's type (`{"zip": "string"}`). Bytes need a `filename`
        telling their format unless they are Parquet. The answer carries the quality
        summary and the columns proposed as PII or protected, to review."""
        if _is_dataframe(data):
            from farpoint.ml.ingest import dataframe_to_parquet_bytes

            payload = dataframe_to_parquet_bytes(data)
            return self._upload(name, filename or "dataframe.parquet", payload, roles, team, types)
        if isinstance(data, bytes):
            if filename is None:
                filename = "data.parquet" if data[:4] == _PARQUET_MAGIC else "data.csv"
            return self._upload(name, filename, data, roles, team, types)
        if not isinstance(data, str | Path):
            raise TypeError(
                f"upload_dataset takes a path, bytes or a pandas/polars DataFrame, "
                f"not {type(data).__name__}"
            )
        path = Path(data)
        with path.open("rb") as fh:
            return self._upload(name, filename or path.name, fh, roles, team, types)

    def _upload(
        self,
        name: str,
        filename: str,
        data: Any,
        roles: Mapping[str, str],
        team: str | None,
        types: Mapping[str, str] | None,
    ) -> DatasetVersionOut:
        form = {"roles": json.dumps(dict(roles)), "types": json.dumps(dict(types or {}))}
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

    def get_dataset(self, name: str) -> DatasetOut:
        return self._one(DatasetOut, "GET", f"datasets/{segment(name)}")

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

    def get_classification(self, ref: str) -> ClassificationOut:
        """The columns proposed as PII, protected or identifiers, with evidence and status."""
        return self._one(
            ClassificationOut, "GET", self._dataset_path(ref, None) + "/classification"
        )

    def review_classification(
        self, ref: str, *, accept: Sequence[str] = (), reject: Sequence[str] = ()
    ) -> ClassificationOut:
        """Accept proposals (the column takes the proposed role) or reject them."""
        return self._one(
            ClassificationOut,
            "POST",
            self._dataset_path(ref, None) + "/classification",
            json={"accept": list(accept), "reject": list(reject)},
        )

    def get_quality(self, ref: str) -> QualityOut:
        """The quality report and contract validation of a version."""
        return self._one(QualityOut, "GET", self._dataset_path(ref, None) + "/quality")

    def get_profile(self, ref: str) -> dict[str, Any]:
        """Per-column statistics and histograms with frozen bin edges."""
        result: dict[str, Any] = self._json("GET", self._dataset_path(ref, None) + "/profile")
        return result

    def dataset_lineage(self, ref: str) -> LineageOut:
        return self._one(LineageOut, "GET", self._dataset_path(ref, None) + "/lineage")

    def compare_dataset_versions(self, name: str, old: int, new: int) -> VersionComparison:
        """Schema diff and distribution shift (PSI, JS distance) from `old` to `new`."""
        return self._one(
            VersionComparison,
            "GET",
            f"datasets/{segment(name)}/compare",
            params={"old": old, "new": new},
        )

    def get_contract(self, name: str, version: int | None = None) -> ContractOut:
        params = {"version": version} if version is not None else None
        return self._one(ContractOut, "GET", f"datasets/{segment(name)}/contract", params=params)

    def set_contract(self, name: str, yaml_text: str) -> ContractOut:
        """A new version of the dataset's contract; later versions are validated against it."""
        return self._one(
            ContractOut, "PUT", f"datasets/{segment(name)}/contract", json={"yaml": yaml_text}
        )

    def pseudonymize(self, ref: str, columns: Sequence[str]) -> DatasetVersionOut:
        """A derived version whose `columns` hold keyed hashes instead of identifiers."""
        return self._one(
            DatasetVersionOut,
            "POST",
            self._dataset_path(ref, None) + "/pseudonymize",
            json={"columns": list(columns)},
        )

    def set_retention(self, name: str, days: int | None) -> DatasetOut:
        """Rows of every version expire `days` after registration (None: kept)."""
        return self._one(
            DatasetOut, "PUT", f"datasets/{segment(name)}/retention", json={"days": days}
        )

    def sweep_retention(self) -> RetentionSweepOut:
        """Purge expired rows now."""
        return self._one(RetentionSweepOut, "POST", "retention/sweep")

    def erase_subjects(
        self,
        name: str,
        column: str,
        identifiers: Sequence[str | int],
        reason: str = "data subject request",
    ) -> ErasureOut:
        """Delete data subjects' rows from every stored version of `name`; the answer lists
        the new version and every model version and release trained on their data."""
        return self._one(
            ErasureOut,
            "POST",
            f"datasets/{segment(name)}/erasures",
            json={"column": column, "identifiers": list(identifiers), "reason": reason},
        )

    def list_erasures(self, name: str) -> list[ErasureOut]:
        return self._all(ErasureOut, f"datasets/{segment(name)}/erasures")

    def download_dataset(
        self, ref: str, version: int | None = None, *, verify: bool = True
    ) -> bytes:
        """The canonical Parquet bytes of a dataset version, checked against the stored
        file's digest and the version's content digest (unless erasure removed rows from it
        since it was registered)."""
        response = self._request("GET", self._dataset_path(ref, version) + "/data")
        data = response.content
        if not verify:
            return data
        blob = response.headers.get("X-Farpoint-Blob-Digest")
        if blob and "sha256:" + hashlib.sha256(data).hexdigest() != blob:
            raise SignatureError(f"the file received for {ref} is not the one stored ({blob})")
        expected = response.headers.get("X-Farpoint-Dataset-Digest")
        if expected and response.headers.get("X-Farpoint-Erased-Rows", "0") == "0":
            actual = _content_digest(data)
            if actual != expected:
                raise SignatureError(
                    f"the rows received for {ref} do not match its digest: expected "
                    f"{expected}, got {actual}"
                )
        return data

    def load_dataset(self, ref: str, version: int | None = None) -> pd.DataFrame:
        """A dataset version as a pandas DataFrame."""
        import pandas as pd

        return pd.read_parquet(io.BytesIO(self.download_dataset(ref, version)))
