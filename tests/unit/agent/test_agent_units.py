"""Pure pieces of the agent: parsers, input checks, backoff, percentiles, atomic files."""

from __future__ import annotations

import json
import os
import stat
import typing
from pathlib import Path

import numpy as np
import pytest
from agent_fakes import OnnxModel, make_manifest
from hypothesis import given
from hypothesis import strategies as st

from farpoint.agent import payloads
from farpoint.agent.loop import MAX_BACKOFF_S, Backoff
from farpoint.agent.runtime import MAX_ROWS, InputError, columns_for, rows_from_body
from farpoint.agent.slots import CacheCheck
from farpoint.agent.state import atomic_write
from farpoint.agent.telemetry import percentile
from farpoint.core import digest


def test_backoff_grows_and_stays_under_the_cap() -> None:
    backoff = Backoff(base_s=0.5)
    delays = [backoff.next() for _ in range(20)]
    assert 0.25 <= delays[0] <= 0.5
    assert all(d <= MAX_BACKOFF_S for d in delays)
    assert min(delays[-5:]) >= MAX_BACKOFF_S / 2  # jittered, but it did grow to the cap
    backoff.reset()
    assert backoff.next() <= 0.5


@given(st.lists(st.floats(0, 1e6, allow_nan=False), min_size=1, max_size=200))
def test_percentile_matches_numpys_nearest_rank(values: list[float]) -> None:
    for q in (50, 95):
        assert percentile(values, q) == float(
            np.percentile(np.array(values), q, method="inverted_cdf")
        )


def test_columns_and_rows_give_the_same_rows() -> None:
    rows = rows_from_body({"columns": {"a": [1, 2], "b": ["x", "y"]}})
    assert rows == [{"a": 1, "b": "x"}, {"a": 2, "b": "y"}]
    with pytest.raises(OverflowError):
        rows_from_body({"rows": [{}] * (MAX_ROWS + 1)})


def test_inputs_are_typed_by_the_signature() -> None:
    specs: list[payloads.TensorSpec] = [
        {"name": "x", "dtype": "float32", "shape": [None, 1]},
        {"name": "s", "dtype": "string", "shape": [None, 1]},
        {"name": "n", "dtype": "int64", "shape": [None, 1]},
    ]
    feeds = columns_for(specs, [{"x": 1, "s": "a", "n": 3}, {"x": 2.5, "s": "b", "n": 4}])
    assert feeds["x"].dtype == np.float32 and feeds["x"].shape == (2, 1)
    assert feeds["s"].dtype == object and feeds["n"].dtype == np.int64
    with pytest.raises(InputError, match="'s' must be a string, got int") as info:
        columns_for(specs, [{"x": 1, "s": 5, "n": 3}])
    assert (info.value.row, info.value.field) == (0, "s")
    with pytest.raises(InputError, match="'n' must be an integer, got float"):
        columns_for(specs, [{"x": 1, "s": "a", "n": 3.5}])


def test_manifest_parser_names_the_wrong_field(model_a: OnnxModel) -> None:
    good = make_manifest(1, model_a)
    assert payloads.parse_manifest(good)["model_ref"] == "churn@1"
    for key, value, words in [
        ("release_id", "1", "'release_id'"),
        ("release_id", True, "'release_id'"),
        ("schema", "other/v9", "unknown schema"),
        ("classes", [0.5, 1], "classes"),
    ]:
        bad = {**good, key: value}
        with pytest.raises(payloads.PayloadError, match=words):
            payloads.parse_manifest(bad)
    bad = json.loads(json.dumps(good))
    del bad["golden"]["labels"][0]
    with pytest.raises(payloads.PayloadError, match="differ in length"):
        payloads.parse_manifest(bad)


def test_desired_state_parser_rejects_a_missing_digest() -> None:
    doc = {"device_id": "d", "etag": "e", "models": [{"model": "m", "release_id": 1}]}
    with pytest.raises(payloads.PayloadError, match=r"models\[0\].*'manifest_digest'"):
        payloads.parse_desired_state(doc)


def test_atomic_write_replaces_whole_files_with_the_given_mode(tmp_path: Path) -> None:
    target = tmp_path / "deep" / "key.pem"
    atomic_write(target, b"one", mode=0o600)
    atomic_write(target, b"two", mode=0o600)
    assert target.read_bytes() == b"two"
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert os.listdir(target.parent) == ["key.pem"]  # no temporary file left behind


# The agent's payloads mirror farpoint.wire; the tests (not the agent) may import it.


@pytest.mark.parametrize(
    ("ours", "wire_name"),
    [
        (payloads.EnrollRequest, "EnrollRequest"),
        (payloads.EnrollResponse, "EnrollResponse"),
        (payloads.DesiredModel, "DesiredModel"),
        (payloads.DesiredState, "DesiredState"),
        (payloads.DeviceStatusReport, "DeviceStatusReport"),
    ],
)
def test_agent_payloads_have_the_wire_models_fields(ours: type, wire_name: str) -> None:
    wire = pytest.importorskip("farpoint.wire.devices")
    model = getattr(wire, wire_name)
    if wire_name == "EnrollResponse":
        # the agent reads only what it trusts: the root the token names, not a server key
        assert set(typing.get_type_hints(ours)) <= set(model.model_fields)
        assert "root_json_b64" in typing.get_type_hints(ours)
        return
    assert set(typing.get_type_hints(ours)) == set(model.model_fields)


def test_agent_status_model_fields_are_a_subset_of_the_wires() -> None:
    wire = pytest.importorskip("farpoint.wire.devices")
    ours = set(typing.get_type_hints(payloads.DeviceModelStatus))
    assert ours <= set(wire.DeviceModelStatus.model_fields)
    phases = typing.get_args(wire.DeviceModelStatus.model_fields["phase"].annotation)
    assert set(payloads.PHASES) == set(phases) == set(typing.get_args(payloads.Phase))


def test_what_the_agent_sends_validates_as_the_wire_models(tmp_path: Path) -> None:
    wire = pytest.importorskip("farpoint.wire.devices")
    from farpoint.agent.registry import Registry
    from farpoint.agent.state import hardware_profile
    from farpoint.agent.telemetry import InferenceStats

    registry = Registry()
    registry.set_phase("churn", 3, "failed", "model digest mismatch")
    registry.set_phase("fraud", None, "pending")
    stats = InferenceStats()
    stats.record("churn", 5, 0.002, error=False)
    report: payloads.DeviceStatusReport = {
        "models": registry.statuses(),
        "heartbeat": {"models": stats.snapshot()},
    }
    wire.DeviceStatusReport.model_validate_json(json.dumps(report))
    request: payloads.EnrollRequest = {
        "token": "fpe1.s." + "a" * 64,
        "name": "edge-1",
        "public_key_pem": "pem",
        "labels": {"site": "lab"},
        "hardware": hardware_profile(),
    }
    wire.EnrollRequest.model_validate_json(json.dumps(request))


def test_a_cache_check_counts_only_for_the_file_it_hashed(tmp_path: Path) -> None:
    path = tmp_path / "blob"
    path.write_bytes(b"model bytes")
    check = CacheCheck(path)
    assert check.result_for(path) == (11, digest.digest_bytes(b"model bytes"))
    # the blob replaced (renamed over) after it was hashed: its old hash says nothing
    other = tmp_path / "other"
    other.write_bytes(b"tampered bytes")
    other.replace(path)
    assert check.result_for(path) is None
    assert check.result_for(tmp_path / "elsewhere") is None
