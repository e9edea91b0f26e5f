"""The SDK against a small in-memory fake of the HTTP API (httpx.MockTransport)."""

from __future__ import annotations

import email
import email.policy
import io
import json
import re
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from farpoint.core.errors import (
    Conflict,
    FarpointError,
    Forbidden,
    NotFound,
    Unauthorized,
    ValidationFailed,
)
from farpoint.sdk import Client, ServerUnreachable
from farpoint.wire.datasets import ColumnSchema, DatasetVersionOut
from farpoint.wire.identity import Me, TeamOut
from farpoint.wire.models import ModelVersionMeta, ModelVersionOut, RunCreate, RunOut
from farpoint.wire.rollouts import RolloutDevice, RolloutOut

NOW = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
TOKEN = "fpt_1_secret"
Handler = Callable[[httpx.Request, re.Match[str]], httpx.Response]


def problem(status: int, title: str, detail: str, **extra: Any) -> httpx.Response:
    body = {"type": "about:blank", "title": title, "status": status, "detail": detail, **extra}
    return httpx.Response(status, json=body, headers={"content-type": "application/problem+json"})


def form_parts(request: httpx.Request) -> dict[str, tuple[str | None, bytes]]:
    """A multipart body as field name → (filename, bytes), parsed by the standard library."""
    head = f"Content-Type: {request.headers['content-type']}\r\n\r\n".encode()
    message = email.message_from_bytes(head + request.read(), policy=email.policy.HTTP)
    parts: dict[str, tuple[str | None, bytes]] = {}
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        parts[str(name)] = (part.get_filename(), part.get_payload(decode=True))
    return parts


class FakeFarpoint:
    """Just enough of the server for these tests, speaking the wire models."""

    def __init__(self) -> None:
        self.teams = [
            TeamOut(id=i, name=f"team-{i}", created_at=NOW).model_dump(mode="json")
            for i in range(1, 6)
        ]
        self.uploads: list[dict[str, tuple[str | None, bytes]]] = []
        self.rollout_states = ["paused", "running", "succeeded"]
        self.model_versions = [1, 2, 3]
        self.seen: list[httpx.Request] = []
        self.routes: list[tuple[str, re.Pattern[str], Handler]] = [
            ("GET", re.compile(r"/api/v1/me"), self.me),
            ("GET", re.compile(r"/api/v1/teams"), self.list_teams),
            ("POST", re.compile(r"/api/v1/datasets/(?P<name>[^/]+)/versions"), self.upload),
            ("POST", re.compile(r"/api/v1/runs"), self.create_run),
            ("POST", re.compile(r"/api/v1/models/(?P<name>[^/]+)/versions"), self.register),
            ("GET", re.compile(r"/api/v1/models/(?P<name>[^/]+)/versions"), self.versions),
            (
                "GET",
                re.compile(r"/api/v1/models/(?P<name>[^/]+)/versions/(?P<v>\d+)"),
                self.model_version,
            ),
            ("GET", re.compile(r"/api/v1/rollouts/(?P<id>\d+)"), self.rollout),
        ]

    def handle(self, request: httpx.Request) -> httpx.Response:
        self.seen.append(request)
        if request.headers.get("authorization") != f"Bearer {TOKEN}":
            return problem(401, "Not authenticated", "no bearer token in the request")
        for method, pattern, handler in self.routes:
            match = pattern.fullmatch(request.url.path)
            if match and request.method == method:
                return handler(request, match)
        return problem(404, "Not found", f"no route {request.method} {request.url.path}")

    def me(self, request: httpx.Request, match: re.Match[str]) -> httpx.Response:
        me = Me(
            user="ada",
            kind="person",
            roles=["data-scientist"],  # type: ignore[list-item]
            teams=[],
            token_id=1,
            expires_at=NOW,
        )
        return httpx.Response(200, json=me.model_dump(mode="json"))

    def list_teams(self, request: httpx.Request, match: re.Match[str]) -> httpx.Response:
        limit = int(request.url.params.get("limit", "100"))
        after = int(request.url.params.get("cursor", "0"))
        page = [t for t in self.teams if t["id"] > after][:limit]
        more = len(page) == limit and page[-1]["id"] < self.teams[-1]["id"]
        cursor = str(page[-1]["id"]) if more else None
        return httpx.Response(200, json={"items": page, "next_cursor": cursor})

    def upload(self, request: httpx.Request, match: re.Match[str]) -> httpx.Response:
        parts = form_parts(request)
        self.uploads.append(parts)
        roles = json.loads(parts["roles"][1])
        filename, _ = parts["file"]
        out = DatasetVersionOut(
            dataset=match["name"],
            version=1,
            ref=f"{match['name']}@1",
            digest="sha256:" + "0" * 64,
            size_bytes=10,
            row_count=2,
            columns=[ColumnSchema(name=c, dtype="int64", nullable=False) for c in roles],
            roles=roles,
            source_filename=filename or "",
            created_by="ada",
            created_at=NOW,
        )
        return httpx.Response(201, json=out.model_dump(mode="json"))

    def create_run(self, request: httpx.Request, match: re.Match[str]) -> httpx.Response:
        body = RunCreate.model_validate_json(request.read())
        out = RunOut(**body.model_dump(), id=7, created_by="ada", created_at=NOW)
        return httpx.Response(201, json=out.model_dump(mode="json"))

    def _version(self, name: str, version: int, meta: ModelVersionMeta) -> dict[str, Any]:
        out = ModelVersionOut(
            model=name,
            version=version,
            ref=f"{name}@{version}",
            digest="sha256:" + "1" * 64,
            size_bytes=100,
            datasets=[],
            status="registered",
            created_by="ada",
            created_at=NOW,
            **meta.model_dump(exclude={"policy"}),
        )
        return out.model_dump(mode="json")

    def register(self, request: httpx.Request, match: re.Match[str]) -> httpx.Response:
        parts = form_parts(request)
        self.uploads.append(parts)
        meta = ModelVersionMeta.model_validate_json(parts["meta"][1])
        return httpx.Response(201, json=self._version(match["name"], 1, meta))

    def versions(self, request: httpx.Request, match: re.Match[str]) -> httpx.Response:
        items = [self._version(match["name"], v, _meta()) for v in self.model_versions]
        return httpx.Response(200, json={"items": items, "next_cursor": None})

    def model_version(self, request: httpx.Request, match: re.Match[str]) -> httpx.Response:
        version = int(match["v"])
        if version not in self.model_versions:
            return problem(
                404, "Not found", f"model version {match['name']}@{version} does not exist"
            )
        return httpx.Response(200, json=self._version(match["name"], version, _meta()))

    def rollout(self, request: httpx.Request, match: re.Match[str]) -> httpx.Response:
        state = (
            self.rollout_states.pop(0) if len(self.rollout_states) > 1 else self.rollout_states[0]
        )
        phase = {"paused": "pending", "running": "downloading"}.get(state, "active")
        out = RolloutOut(
            id=int(match["id"]),
            fleet="ward-a",
            model="deterioration",
            from_release_id=None,
            to_release_id=2,
            strategy="all-at-once",
            state=state,  # type: ignore[arg-type]
            progress={},
            devices=[
                RolloutDevice(
                    device_id="d1",
                    device_name="bed-1",
                    batch=0,
                    phase=phase,  # type: ignore[arg-type]
                    error=None,
                )
            ],
            created_by="ops",
            created_at=NOW,
            finished_at=None,
        )
        return httpx.Response(200, json=out.model_dump(mode="json"))


def _meta() -> ModelVersionMeta:
    return ModelVersionMeta.model_validate(
        {
            "run_id": 7,
            "flavor": "LogisticRegression",
            "signature": {
                "inputs": [{"name": "age", "dtype": "float32", "shape": [None, 1]}],
                "outputs": [{"name": "label", "dtype": "int64", "shape": [None]}],
            },
            "label_column": "y",
            "classes": [0, 1],
            "golden": {"rows": [{"age": 1.0}], "labels": [0], "probabilities": [[0.9, 0.1]]},
        }
    )


@pytest.fixture
def fake() -> FakeFarpoint:
    return FakeFarpoint()


@pytest.fixture
def client(fake: FakeFarpoint) -> Client:
    with Client("http://farpoint.test", TOKEN, transport=httpx.MockTransport(fake.handle)) as c:
        yield c  # type: ignore[misc]


# -- errors -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "cls"),
    [
        (401, Unauthorized),
        (403, Forbidden),
        (404, NotFound),
        (409, Conflict),
        (422, ValidationFailed),
    ],
)
def test_problem_details_become_the_matching_exception(
    status: int, cls: type[FarpointError]
) -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        return problem(status, "Some title", f"refused with {status}", errors=[{"location": "x"}])

    with (
        Client("http://farpoint.test", TOKEN, transport=httpx.MockTransport(answer)) as c,
        pytest.raises(cls) as caught,
    ):
        c.me()
    assert str(caught.value) == f"refused with {status}"
    assert caught.value.detail == f"refused with {status}"
    assert caught.value.extra["title"] == "Some title"
    assert caught.value.extra["errors"] == [{"location": "x"}]


def test_a_response_that_is_not_a_problem_keeps_its_text_and_status() -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(502, text="upstream went away")

    with (
        Client("http://farpoint.test", transport=httpx.MockTransport(answer)) as c,
        pytest.raises(FarpointError) as caught,
    ):
        c.list_teams()
    assert caught.value.status == 502
    assert "upstream went away" in str(caught.value)


def test_missing_token_is_unauthorized_and_the_token_is_sent_as_bearer(fake: FakeFarpoint) -> None:
    with (
        Client("http://farpoint.test", transport=httpx.MockTransport(fake.handle)) as anonymous,
        pytest.raises(Unauthorized, match="no bearer token"),
    ):
        anonymous.me()
    with Client("http://farpoint.test/", TOKEN, transport=httpx.MockTransport(fake.handle)) as c:
        assert c.me().user == "ada"
    assert fake.seen[-1].url.path == "/api/v1/me"


def test_unreachable_server_names_the_url() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("[Errno 111] Connection refused", request=request)

    with (
        Client("http://10.0.0.9:8750", TOKEN, transport=httpx.MockTransport(refuse)) as c,
        pytest.raises(ServerUnreachable) as caught,
    ):
        c.health()
    assert "cannot reach the Farpoint server at http://10.0.0.9:8750" in str(caught.value)
    assert "Connection refused" in str(caught.value)


# -- lists and references ------------------------------------------------------------------


def test_lists_follow_cursors_to_the_end(client: Client, fake: FakeFarpoint) -> None:
    client.page_size = 2
    teams = client.list_teams()
    assert [t.name for t in teams] == [f"team-{i}" for i in range(1, 6)]
    assert all(isinstance(t, TeamOut) for t in teams)
    cursors = [r.url.params.get("cursor") for r in fake.seen]
    assert cursors == [None, "2", "4"]
    assert {r.url.params["limit"] for r in fake.seen} == {"2"}


def test_a_repeated_cursor_stops_instead_of_looping() -> None:
    def stuck(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"items": [], "next_cursor": "same"})

    with (
        Client("http://farpoint.test", TOKEN, transport=httpx.MockTransport(stuck)) as c,
        pytest.raises(FarpointError, match="repeated the cursor"),
    ):
        c.list_teams()


def test_references_with_and_without_a_version(client: Client) -> None:
    assert client.get_model_version("risk@2").version == 2
    assert client.get_model_version("risk", 1).ref == "risk@1"
    assert client.get_model_version("risk").version == 3  # the latest
    with pytest.raises(NotFound, match="risk@9 does not exist"):
        client.get_model_version("risk@9")
    with pytest.raises(ValueError, match="positive integer"):
        client.get_model_version("risk@latest")


# -- uploads -----------------------------------------------------------------------------------


def test_upload_sends_the_file_roles_as_json_and_team(
    client: Client, fake: FakeFarpoint, tmp_path
) -> None:  # type: ignore[no-untyped-def]
    csv = tmp_path / "vitals.csv"
    csv.write_bytes(b"age,y\n40,0\n71,1\n")
    version = client.upload_dataset(
        "vitals", csv, roles={"age": "feature", "y": "label"}, team="icu"
    )
    assert version.ref == "vitals@1"
    assert version.roles == {"age": "feature", "y": "label"}
    sent = fake.uploads[-1]
    assert sent["file"] == ("vitals.csv", b"age,y\n40,0\n71,1\n")
    assert json.loads(sent["roles"][1]) == {"age": "feature", "y": "label"}
    assert sent["team"][1] == b"icu"


def test_upload_of_bytes_names_parquet_by_its_magic(client: Client, fake: FakeFarpoint) -> None:
    client.upload_dataset("vitals", b"PAR1...PAR1", roles={})
    assert fake.uploads[-1]["file"][0] == "data.parquet"
    assert "team" not in fake.uploads[-1]
    client.upload_dataset("vitals", b"a,b\n1,2\n", roles={}, filename="x.csv")
    assert fake.uploads[-1]["file"][0] == "x.csv"


def test_register_onnx_model_sends_file_and_meta(client: Client, fake: FakeFarpoint) -> None:
    out = client.register_onnx_model("risk", b"onnx-bytes", _meta())
    assert out.ref == "risk@1" and out.flavor == "LogisticRegression"
    sent = fake.uploads[-1]
    assert sent["file"] == ("model.onnx", b"onnx-bytes")
    assert ModelVersionMeta.model_validate_json(sent["meta"][1]) == _meta()


# -- rollouts ------------------------------------------------------------------------------------


def test_wait_rollout_polls_until_done(client: Client) -> None:
    states: list[str] = []
    done = client.wait_rollout(
        4, timeout_s=10, poll_s=0, on_update=lambda r: states.append(r.state)
    )
    assert done.state == "succeeded"
    assert states == ["paused", "running", "succeeded"], "a paused rollout is waited for"
    assert done.devices[0].phase == "active"


def test_wait_rollout_times_out(client: Client, fake: FakeFarpoint) -> None:
    fake.rollout_states = ["running"]
    with pytest.raises(TimeoutError, match="rollout 4 is still running"):
        client.wait_rollout(4, timeout_s=0, poll_s=0)


def test_from_env_reads_url_and_token(monkeypatch: pytest.MonkeyPatch, fake: FakeFarpoint) -> None:
    monkeypatch.setenv("FARPOINT_URL", "http://elsewhere:9000")
    monkeypatch.setenv("FARPOINT_TOKEN", TOKEN)
    with Client.from_env(transport=httpx.MockTransport(fake.handle)) as c:
        assert c.base_url == "http://elsewhere:9000"
        assert c.me().user == "ada"
    assert str(fake.seen[-1].url) == "http://elsewhere:9000/api/v1/me"
    monkeypatch.delenv("FARPOINT_URL")
    with Client.from_env() as c:
        assert c.base_url == "http://127.0.0.1:8750"


def test_load_dataset_reads_parquet() -> None:
    pd = pytest.importorskip("pandas")
    buffer = io.BytesIO()
    pd.DataFrame({"age": [40, 71], "y": [0, 1]}).to_parquet(buffer)

    def serve(request: httpx.Request) -> httpx.Response:
        assert request.url.path == "/api/v1/datasets/vitals/versions/2/data"
        return httpx.Response(200, content=buffer.getvalue())

    with Client("http://farpoint.test", TOKEN, transport=httpx.MockTransport(serve)) as c:
        frame = c.load_dataset("vitals@2")
    assert list(frame["age"]) == [40, 71]
