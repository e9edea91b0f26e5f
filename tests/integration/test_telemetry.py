"""The telemetry room: windows stored once per (device, seq), read back per device, summed
exactly per release and fleet; on every configured database."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from release_fixtures import Device, enroll_device, make_release
from sqlalchemy import func, select

from conftest import bearer
from farpoint.core.telemetry import LATENCY_BUCKETS, histogram_quantile, latency_bucket
from farpoint.server.telemetry.tables import TelemetryModel, TelemetryWindowRow

STATUS = "/api/v1/devices/self/status"
NOW = datetime.now(UTC).replace(microsecond=0)


def _at(minutes_ago: float) -> str:
    return (NOW - timedelta(minutes=minutes_ago)).isoformat()


def _hist(*latencies_ms: float) -> list[int]:
    counts = [0] * LATENCY_BUCKETS
    for ms in latencies_ms:
        counts[latency_bucket(ms)] += 1
    return counts


def _model(release_id: int, **counts: Any) -> dict[str, Any]:
    return {
        "release_id": release_id,
        "requests": 0, "inferences": 0, "errors": 0, "input_errors": 0,
        "latency_ms": [], "predictions": {}, "feedback": [], "confusion": [],
        **counts,
    }  # fmt: skip


def _window(seq: int, minutes_ago: float, models: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {
        "seq": seq,
        "start": _at(minutes_ago + 1),
        "end": _at(minutes_ago),
        "models": models,
        "resources": {"cpu_percent": 1.5, "rss_bytes": 40_000_000},
        **extra,
    }


def _report(dev: Device, windows: list[dict[str, Any]], dropped: int = 0) -> Any:
    body: dict[str, Any] = {
        "models": [],
        "heartbeat": {"uptime_s": 9, "cpu_percent": 2.0},
        "telemetry": windows,
    }
    if dropped:
        body["dropped_telemetry"] = dropped
    return dev.post_json(STATUS, body)


def _count(app: Any, table: Any) -> int:
    with app.state.ctx.db.session() as s:
        return int(s.scalar(select(func.count()).select_from(table)))


def _fb(attribute: str, group: str, label: str, predicted: str, n: int) -> dict[str, Any]:
    return {"attribute": attribute, "group": group, "label": label, "predicted": predicted,
            "count": n}  # fmt: skip


def test_windows_are_stored_once_and_read_back_as_sent(app, api, token_for):
    ops = token_for("it-ops")
    dev = enroll_device(app, api, ops, "bed-1")
    w0 = _window(
        0, 10,
        {"churn": _model(
            3, requests=10, inferences=12, errors=1, input_errors=2,
            latency_ms=_hist(0.2, 0.3, 0.9, 4.0, 4.0, 30.0, 9000.0),
            predictions={"0": 7, "1": 5},
            feedback=[_fb("sex", "F", "1", "1", 2), _fb("sex", "M", "0", "1", 1)],
            confusion=[{"label": "1", "predicted": "1", "count": 2},
                       {"label": "0", "predicted": "1", "count": 1}],
        )},
    )  # fmt: skip
    w1 = _window(1, 5, {})
    assert _report(dev, [w0, w1]).status_code == 204
    # the answer was lost; the device sends the same windows again, and one more
    w2 = _window(2, 1, {"churn": _model(3, requests=1, inferences=1)})
    assert _report(dev, [w0, w1, w2], dropped=4).status_code == 204
    assert _report(dev, [w2, w2]).status_code == 204
    assert _count(app, TelemetryWindowRow) == 3 and _count(app, TelemetryModel) == 2

    r = api.get(f"/api/v1/devices/{dev.id}/telemetry", headers=bearer(token_for("business")))
    assert r.status_code == 200, r.text
    doc = r.json()
    assert doc["dropped_total"] == 4 and doc["next_cursor"] is None
    assert [w["seq"] for w in doc["items"]] == [0, 1, 2]
    got = doc["items"][0]
    assert got["models"]["churn"]["latency_ms"] == w0["models"]["churn"]["latency_ms"]
    assert got["models"]["churn"]["predictions"] == {"0": 7, "1": 5}
    assert sorted(map(str, got["models"]["churn"]["feedback"])) == sorted(
        map(str, w0["models"]["churn"]["feedback"])
    )
    assert sorted(map(str, got["models"]["churn"]["confusion"])) == sorted(
        map(str, w0["models"]["churn"]["confusion"])
    )
    assert {k: got["models"]["churn"][k] for k in ("requests", "inferences", "errors")} == {
        "requests": 10, "inferences": 12, "errors": 1,
    }  # fmt: skip
    assert datetime.fromisoformat(got["end"]) == datetime.fromisoformat(w0["end"])
    assert got["resources"] == w0["resources"] and got["received_at"]
    assert doc["items"][1]["models"] == {}
    # the latest heartbeat gauges stay on the device, as before
    shown = api.get(f"/api/v1/devices/{dev.id}", headers=bearer(ops)).json()
    assert shown["heartbeat"] == {"uptime_s": 9, "cpu_percent": 2.0}


def test_device_windows_page_and_filter_by_time(app, api, token_for):
    dev = enroll_device(app, api, token_for("it-ops"), "bed-2")
    assert _report(dev, [_window(i, 50 - i * 10, {}) for i in range(5)]).status_code == 204
    h = bearer(token_for("ai-engineer"))
    path = f"/api/v1/devices/{dev.id}/telemetry"
    first = api.get(path, params={"limit": 2}, headers=h).json()
    assert [w["seq"] for w in first["items"]] == [0, 1] and first["next_cursor"] == "1"
    rest = api.get(path, params={"limit": 2, "cursor": "1"}, headers=h).json()
    assert [w["seq"] for w in rest["items"]] == [2, 3]
    ranged = api.get(path, params={"since": _at(35), "until": _at(15)}, headers=h).json()
    assert [w["seq"] for w in ranged["items"]] == [2, 3]  # ends at 30 and 20 minutes ago
    r = api.get(path, params={"since": _at(5), "until": _at(10)}, headers=h)
    assert r.status_code == 400 and "must be before" in r.json()["detail"]
    assert api.get("/api/v1/devices/nope/telemetry", headers=h).status_code == 404


def test_a_summary_sums_counts_exactly_per_release(app, api, token_for):
    ops = token_for("it-ops")
    rel_a, rel_b = make_release(app, "churn"), make_release(app, "churn")
    d1 = enroll_device(app, api, ops, "edge-1")
    d2 = enroll_device(app, api, ops, "edge-2")
    lat1, lat2 = [0.2] * 50 + [3.0] * 40, [0.4] * 5 + [40.0] * 5
    _report(d1, [
        _window(0, 30, {"churn": _model(
            rel_a.id, requests=90, inferences=95, errors=2, input_errors=1,
            latency_ms=_hist(*lat1), predictions={"0": 60, "1": 35},
            feedback=[_fb("sex", "F", "1", "1", 8), _fb("sex", "F", "0", "1", 2),
                      _fb("sex", "M", "0", "0", 5)],
            confusion=[{"label": "1", "predicted": "1", "count": 8},
                       {"label": "0", "predicted": "1", "count": 2},
                       {"label": "0", "predicted": "0", "count": 6}],
        )}),
        _window(1, 20, {"churn": _model(rel_b.id, requests=50, inferences=50)}),
    ])  # fmt: skip
    _report(d2, [
        _window(7, 25, {"churn": _model(
            rel_a.id, requests=10, inferences=10, errors=1,
            latency_ms=_hist(*lat2), predictions={"1": 10},
            feedback=[_fb("sex", "M", "0", "0", 3), _fb("sex", "F", "1", "0", 1)],
            confusion=[{"label": "0", "predicted": "0", "count": 3},
                       {"label": "1", "predicted": "0", "count": 1}],
        )}),
        _window(8, 60 * 30, {"churn": _model(rel_a.id, requests=999)}),  # 30 h ago
    ])  # fmt: skip
    h = bearer(token_for("business"))
    r = api.get("/api/v1/telemetry/summary", params={"release_id": rel_a.id}, headers=h)
    assert r.status_code == 200, r.text
    doc = r.json()
    assert doc["devices"] == 2
    [m] = doc["models"]
    assert (m["model"], m["release_id"], m["devices"], m["windows"]) == ("churn", rel_a.id, 2, 2)
    assert (m["requests"], m["inferences"], m["errors"], m["input_errors"]) == (100, 105, 3, 1)
    assert m["error_rate"] == pytest.approx(0.03)
    summed = _hist(*lat1, *lat2)
    assert m["latency"]["counts"] == summed
    for q, key in ((0.5, "p50_ms"), (0.95, "p95_ms"), (0.99, "p99_ms")):
        assert m["latency"][key] == histogram_quantile(summed, q)
    assert (m["latency"]["p50_ms"], m["latency"]["p99_ms"]) == (0.25, 50.0)
    assert m["predictions"] == {"0": 60, "1": 45}
    fb = m["feedback"]
    assert (fb["count"], fb["correct"]) == (20, 17) and fb["accuracy"] == pytest.approx(0.85)
    groups = {(g["attribute"], g["group"]): g for g in fb["groups"]}
    assert (groups[("sex", "F")]["count"], groups[("sex", "F")]["correct"]) == (11, 8)
    assert (groups[("sex", "M")]["count"], groups[("sex", "M")]["accuracy"]) == (8, 1.0)
    women = groups[("sex", "F")]["confusion"]
    assert {(c["label"], c["predicted"]): c["count"] for c in women} == {
        ("1", "1"): 8, ("0", "1"): 2, ("1", "0"): 1,
    }  # fmt: skip
    # the range is explicit: the old window counts when asked for
    older = api.get(
        "/api/v1/telemetry/summary",
        params={"release_id": rel_a.id, "since": _at(60 * 31)},
        headers=h,
    ).json()
    assert older["models"][0]["requests"] == 100 + 999
    # every release of the model, when no release is named
    everything = api.get("/api/v1/telemetry/summary", headers=h).json()
    assert [(x["release_id"], x["requests"]) for x in everything["models"]] == [
        (rel_a.id, 100), (rel_b.id, 50),
    ]  # fmt: skip


def test_a_fleet_summary_counts_the_devices_it_selects(app, api, token_for):
    ops = token_for("it-ops")
    rel = make_release(app, "churn")
    ward_a = enroll_device(app, api, ops, "a-1", {"ward": "a"})
    ward_b = enroll_device(app, api, ops, "b-1", {"ward": "b"})
    for i, dev in enumerate((ward_a, ward_b)):
        _report(dev, [_window(0, 5, {"churn": _model(rel.id, requests=10 ** (i + 1))})])
    h = bearer(ops)
    for name, selector in (("ward-a", {"ward": "a"}), ("all", {})):
        r = api.post("/api/v1/fleets", json={"name": name, "selector": selector}, headers=h)
        assert r.status_code == 201, r.text
    a = api.get("/api/v1/telemetry/summary", params={"fleet": "ward-a"}, headers=h).json()
    assert (a["devices"], a["models"][0]["requests"]) == (1, 10)
    both = api.get(
        "/api/v1/telemetry/summary", params={"fleet": "all", "release_id": rel.id}, headers=h
    ).json()
    assert (both["devices"], both["models"][0]["requests"]) == (2, 110)
    r = api.get("/api/v1/telemetry/summary", params={"fleet": "nope"}, headers=h)
    assert r.status_code == 404 and "fleet 'nope'" in r.json()["detail"]
    r = api.get("/api/v1/telemetry/summary", params={"release_id": 99999}, headers=h)
    assert r.status_code == 404
    nothing = api.get("/api/v1/telemetry/summary", params={"model": "fraud"}, headers=h).json()
    assert nothing["models"] == [] and nothing["devices"] == 0


@pytest.mark.parametrize(
    ("window", "words"),
    [
        (_window(0, 1, {"m": _model(1, latency_ms=[1, 2, 3])}), "expected 15"),
        (_window(0, 1, {"m": _model(1, requests=-1)}), "greater than or equal to 0"),
        ({**_window(0, 1, {}), "start": _at(0), "end": _at(5)}, "ends before it starts"),
        (_window(0, 1, {"m": _model(1, feedback=[_fb("", "F", "1", "1", 1)])}), "at least 1"),
        (_window(0, 1, {}, extra_field=1), "Extra inputs"),
    ],
)
def test_a_malformed_window_is_refused_whole(app, api, token_for, window, words):
    ops = token_for("it-ops")
    dev = enroll_device(app, api, ops, "bed-9")
    r = _report(dev, [_window(5, 2, {}), window])
    assert r.status_code == 422 and words in r.text
    assert _count(app, TelemetryWindowRow) == 0
    # nothing half-written: not the status either
    assert api.get(f"/api/v1/devices/{dev.id}", headers=bearer(ops)).json()["heartbeat"] == {}


def test_sdk_and_cli_read_device_telemetry_and_summaries(app, api, token_for, monkeypatch):
    import json

    from typer.testing import CliRunner

    import farpoint.cli.main as cli_main
    from farpoint.sdk import Client

    ops = token_for("it-ops")
    rel = make_release(app, "churn")
    dev = enroll_device(app, api, ops, "bed-3")
    windows = [
        _window(i, 30 - i, {"churn": _model(rel.id, requests=5, inferences=5,
                                             latency_ms=_hist(0.3, 0.3, 0.3, 4.0, 9000.0))})
        for i in range(3)
    ]  # fmt: skip
    assert _report(dev, windows, dropped=2).status_code == 204
    sdk = Client("http://testserver", ops, transport=api._transport)
    sdk.page_size = 2  # follow the cursor
    got = sdk.device_telemetry(dev.id)
    assert [w.seq for w in got.items] == [0, 1, 2] and got.dropped_total == 2
    assert [w.seq for w in sdk.device_telemetry(dev.id, limit=1).items] == [0]
    summary = sdk.telemetry_summary(release_id=rel.id)
    assert summary.models[0].requests == 15 and summary.models[0].latency.p50_ms == 0.5

    monkeypatch.setattr(
        cli_main,
        "make_client",
        lambda s, t: Client("http://testserver", t, transport=api._transport),
    )
    runner = CliRunner()
    r = runner.invoke(cli_main.app, ["--token", ops, "device", "telemetry", dev.id])
    assert r.exit_code == 0, r.output
    assert "churn@" in r.output and "dropped 2" in r.output
    r = runner.invoke(cli_main.app, ["--token", ops, "device", "telemetry", dev.id, "--json"])
    assert [w["seq"] for w in json.loads(r.output)["items"]] == [0, 1, 2]
    r = runner.invoke(
        cli_main.app, ["--token", ops, "telemetry", "summary", "--release", str(rel.id)]
    )
    assert r.exit_code == 0, r.output
    # quantiles are bucket bounds: ≤ 0.5 ms for p50, above the last edge for p99
    assert "churn" in r.output and "0.5" in r.output and "2500" in r.output
    r = runner.invoke(
        cli_main.app,
        ["--token", ops, "telemetry", "summary", "--release", str(rel.id), "--json"],
    )
    [m] = json.loads(r.output)["models"]
    assert (m["requests"], m["latency"]["p50_ms"], m["latency"]["p99_ms"]) == (15, 0.5, None)
    r = runner.invoke(cli_main.app, ["--token", ops, "telemetry", "summary", "--fleet", "none"])
    assert r.exit_code == 1 and "fleet 'none' does not exist" in r.output
    r = runner.invoke(cli_main.app, ["--token", ops, "device", "telemetry", dev.id, "--since", "x"])
    assert r.exit_code == 2
