"""Training-side calls of the SDK: runs and model versions."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from farpoint.sdk import provenance
from farpoint.sdk._http import _Base, segment
from farpoint.sdk.provenance import estimator_flavor, plain
from farpoint.wire.models import (
    CodeRef,
    ModelOut,
    ModelVersionMeta,
    ModelVersionOut,
    RunCreate,
    RunOut,
)

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["TrainingCalls"]


class TrainingCalls(_Base):
    def create_run(
        self,
        *,
        name: str = "",
        params: Mapping[str, Any] | None = None,
        metrics: Mapping[str, float] | None = None,
        code: CodeRef | Mapping[str, Any] | None = None,
        environment: Mapping[str, str] | None = None,
        datasets: Iterable[str] = (),
    ) -> RunOut:
        """Record a training run exactly as given (see `log_run` to fill code and environment)."""
        body = RunCreate.model_validate(
            {
                "name": name,
                "params": plain(dict(params or {})),
                "metrics": plain(dict(metrics or {})),
                "code": code if code is not None else CodeRef(),
                "environment": dict(environment or {}),
                "datasets": list(datasets),
            }
        )
        return self._one(RunOut, "POST", "runs", json=body.model_dump(mode="json"))

    def log_run(
        self,
        *,
        name: str,
        params: Mapping[str, Any] | None = None,
        metrics: Mapping[str, float] | None = None,
        datasets: Iterable[str] = (),
        code_dir: str | Path = ".",
    ) -> RunOut:
        """Record a training run with the git state of `code_dir` and the package versions."""
        return self.create_run(
            name=name,
            params=params,
            metrics=metrics,
            code=provenance.code_ref(code_dir),
            environment=provenance.environment(),
            datasets=datasets,
        )

    def list_runs(self) -> list[RunOut]:
        """Every training run, oldest first."""
        return self._all(RunOut, "runs")

    def get_run(self, run_id: int) -> RunOut:
        """One training run."""
        return self._one(RunOut, "GET", f"runs/{segment(run_id)}")

    def register_sklearn_model(
        self,
        name: str,
        model: Any,
        sample: pd.DataFrame,
        feature_columns: Sequence[str],
        *,
        run_id: int,
        label_column: str,
        policy: str | None = None,
    ) -> ModelVersionOut:
        """Convert a fitted scikit-learn estimator to ONNX, check parity, register it.

        `policy` (`NAME@VERSION`) names whose `data:` rules judge the training data; the
        defaults apply without it. A `ParityError` (ONNX and scikit-learn disagree on
        `sample`) propagates and nothing is uploaded.
        """
        from farpoint.ml.onnx_export import convert_sklearn

        converted = convert_sklearn(model, sample, list(feature_columns))
        meta = ModelVersionMeta.model_validate(
            {
                "run_id": run_id,
                "framework": "sklearn",
                "flavor": estimator_flavor(model),
                "signature": plain(converted.signature),
                "label_column": label_column,
                "classes": plain(list(converted.classes)),
                "golden": plain(converted.golden),
                "parity": plain(converted.parity),
                "policy": policy,
            }
        )
        return self.register_onnx_model(name, converted.onnx_bytes, meta)

    def register_onnx_model(
        self,
        name: str,
        onnx_bytes: bytes | Path,
        meta: ModelVersionMeta | Mapping[str, Any],
    ) -> ModelVersionOut:
        """Register a prebuilt single-file ONNX model as the next version of `name`."""
        if not isinstance(meta, ModelVersionMeta):
            meta = ModelVersionMeta.model_validate(dict(meta))
        data = onnx_bytes if isinstance(onnx_bytes, bytes) else Path(onnx_bytes).read_bytes()
        return self._one(
            ModelVersionOut,
            "POST",
            f"models/{segment(name)}/versions",
            data={"meta": meta.model_dump_json()},
            files={"file": ("model.onnx", data, "application/octet-stream")},
        )

    def list_models(self) -> list[ModelOut]:
        """Every registered model, with its latest version number."""
        return self._all(ModelOut, "models")

    def list_model_versions(self, name: str) -> list[ModelVersionOut]:
        """Every version of model `name`, oldest first."""
        return self._all(ModelVersionOut, f"models/{segment(name)}/versions")

    def _model_path(self, ref: str, version: int | None) -> str:
        name, number = self._versioned(ref, version, "models")
        return f"models/{segment(name)}/versions/{number}"

    def get_model_version(self, ref: str, version: int | None = None) -> ModelVersionOut:
        """One model version by `name@3` (or `name`, 3); `name` alone means the latest."""
        return self._one(ModelVersionOut, "GET", self._model_path(ref, version))

    def download_model(self, ref: str, version: int | None = None) -> bytes:
        """The ONNX bytes of a model version."""
        return self._request("GET", self._model_path(ref, version) + "/artifact").content
