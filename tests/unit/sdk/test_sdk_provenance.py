"""What log_run and register_sklearn_model record: git state, versions, the estimator."""

from __future__ import annotations

import subprocess
from importlib import metadata
from pathlib import Path
from typing import Any

import httpx
import pytest

from farpoint.sdk import Client
from farpoint.sdk.provenance import code_ref, environment, estimator_flavor
from farpoint.wire.models import ModelVersionMeta, RunCreate, RunOut


def git(repo: Path, *args: str) -> str:
    done = subprocess.run(
        [
            "git",
            "-C",
            str(repo),
            "-c",
            "user.name=Test",
            "-c",
            "user.email=test@example.com",
            "-c",
            "commit.gpgsign=false",
            *args,
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout.strip()


@pytest.fixture
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A directory git cannot see out of, so an enclosing repository never answers."""
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path))
    for var in ("GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE"):
        monkeypatch.delenv(var, raising=False)
    work = tmp_path / "work"
    work.mkdir()
    return work


class RunRecorder:
    """A fake server that answers POST /runs with the run it was sent."""

    def __init__(self) -> None:
        self.sent: list[RunCreate] = []

    def handle(self, request: httpx.Request) -> httpx.Response:
        assert (request.method, request.url.path) == ("POST", "/api/v1/runs")
        body = RunCreate.model_validate_json(request.read())
        self.sent.append(body)
        out = RunOut(
            **body.model_dump(),
            id=len(self.sent),
            created_by="ada",
            created_at="2025-03-01T12:00:00Z",
        )  # type: ignore[arg-type]
        return httpx.Response(201, json=out.model_dump(mode="json"))


def test_log_run_records_the_commit_and_whether_the_tree_is_dirty(isolated: Path) -> None:
    git(isolated, "init", "-q")
    (isolated / "train.py").write_text("print('fit')\n")
    git(isolated, "add", "train.py")
    git(isolated, "commit", "-q", "-m", "first")
    git(isolated, "remote", "add", "origin", "https://ada:s3cret@git.example.com/icu/risk.git")
    head = git(isolated, "rev-parse", "HEAD")
    server = RunRecorder()
    with Client("http://farpoint.test", "t", transport=httpx.MockTransport(server.handle)) as c:
        clean = c.log_run(
            name="baseline",
            params={"C": 1.0},
            metrics={"auc": 0.91},
            datasets=["vitals@1"],
            code_dir=isolated,
        )
        (isolated / "train.py").write_text("print('fit harder')\n")
        dirty = c.log_run(name="tweak", params={}, metrics={}, datasets=[], code_dir=isolated)
    assert clean.code.git_commit == head and clean.code.dirty is False
    assert clean.code.repository == "https://git.example.com/icu/risk.git"  # no credentials
    assert clean.params == {"C": 1.0} and clean.metrics == {"auc": 0.91}
    assert clean.datasets == ["vitals@1"] and clean.name == "baseline"
    assert dirty.code.git_commit == head and dirty.code.dirty is True


def test_log_run_outside_git_records_no_code_and_still_succeeds(isolated: Path) -> None:
    server = RunRecorder()
    with Client("http://farpoint.test", "t", transport=httpx.MockTransport(server.handle)) as c:
        run = c.log_run(name="scratch", params={}, metrics={}, datasets=[], code_dir=isolated)
    assert run.code.git_commit is None and run.code.dirty is None
    assert code_ref(isolated / "does-not-exist").git_commit is None


def test_a_repository_without_commits_has_no_commit(isolated: Path) -> None:
    git(isolated, "init", "-q")
    (isolated / "new.py").write_text("x = 1\n")
    ref = code_ref(isolated)
    assert ref.git_commit is None and ref.dirty is True


def test_environment_lists_installed_versions() -> None:
    env = environment()
    assert env["numpy"] == metadata.version("numpy")
    assert env["farpoint"] == metadata.version("farpoint")
    assert "python" in env
    assert "not-a-package" not in environment(("not-a-package",))


def test_flavor_names_pipeline_steps() -> None:
    pytest.importorskip("sklearn")
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    pipe = Pipeline([("scale", StandardScaler()), ("clf", LogisticRegression())])
    assert estimator_flavor(pipe) == "Pipeline(StandardScaler, LogisticRegression)"
    nested = Pipeline(
        [
            (
                "prep",
                ColumnTransformer(
                    [("num", StandardScaler(), ["a"]), ("cat", OneHotEncoder(), ["b"])]
                ),
            ),
            ("clf", LogisticRegression()),
        ]
    )
    assert estimator_flavor(nested) == (
        "Pipeline(ColumnTransformer(StandardScaler, OneHotEncoder), LogisticRegression)"
    )
    assert estimator_flavor(LogisticRegression()) == "LogisticRegression"


class ModelRecorder:
    def __init__(self) -> None:
        self.uploads = 0
        self.meta: ModelVersionMeta | None = None

    def handle(self, request: httpx.Request) -> httpx.Response:
        import email
        import email.policy

        self.uploads += 1
        head = f"Content-Type: {request.headers['content-type']}\r\n\r\n".encode()
        message = email.message_from_bytes(head + request.read(), policy=email.policy.HTTP)
        fields: dict[str, Any] = {
            part.get_param("name", header="content-disposition"): part.get_payload(decode=True)
            for part in message.iter_parts()
        }
        self.meta = ModelVersionMeta.model_validate_json(fields["meta"])
        out = {
            **self.meta.model_dump(mode="json", exclude={"policy"}),
            "model": "risk",
            "version": 1,
            "ref": "risk@1",
            "digest": "sha256:" + "2" * 64,
            "size_bytes": len(fields["file"]),
            "datasets": [],
            "status": "registered",
            "created_by": "ada",
            "created_at": "2025-03-01T12:00:00Z",
        }
        return httpx.Response(201, json=out)


def _fitted() -> tuple[Any, Any]:
    pd = pytest.importorskip("pandas")
    pytest.importorskip("skl2onnx")
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    frame = pd.DataFrame(
        {"age": [30.0, 45.0, 60.0, 75.0, 50.0, 80.0], "hr": [70.0, 80, 95, 110, 85, 120]}
    )
    labels = [0, 0, 1, 1, 0, 1]
    model = Pipeline([("s", StandardScaler()), ("lr", LogisticRegression())]).fit(frame, labels)
    return model, frame


def test_register_sklearn_model_converts_and_uploads() -> None:
    model, frame = _fitted()
    server = ModelRecorder()
    with Client("http://farpoint.test", "t", transport=httpx.MockTransport(server.handle)) as c:
        out = c.register_sklearn_model(
            "risk", model, frame, ["age", "hr"], run_id=3, label_column="deteriorated"
        )
    assert out.ref == "risk@1"
    assert server.meta is not None
    assert server.meta.flavor == "Pipeline(StandardScaler, LogisticRegression)"
    assert server.meta.run_id == 3 and server.meta.label_column == "deteriorated"
    assert server.meta.classes == [0, 1]
    assert [s.name for s in server.meta.signature.inputs] == ["age", "hr"]
    assert server.meta.golden.rows


def test_parity_failure_propagates_and_uploads_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    model, frame = _fitted()
    from farpoint.ml import onnx_export

    def disagreeing(*args: Any, **kwargs: Any) -> Any:
        raise onnx_export.ParityError("ONNX and scikit-learn disagree on 3 of 6 rows")

    monkeypatch.setattr(onnx_export, "convert_sklearn", disagreeing)
    server = ModelRecorder()
    with (
        Client("http://farpoint.test", "t", transport=httpx.MockTransport(server.handle)) as c,
        pytest.raises(onnx_export.ParityError, match="disagree on 3 of 6 rows"),
    ):
        c.register_sklearn_model("risk", model, frame, ["age", "hr"], run_id=3, label_column="y")
    assert server.uploads == 0
