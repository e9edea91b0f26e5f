"""The audit chain against the real app on SQLite and PostgreSQL: what writes record, who
may read it, and `farpoint audit verify` catching each way of tampering with the tables."""

from __future__ import annotations

import json
import threading
import time
from datetime import UTC, datetime

import pandas as pd
import pytest
from flow_helpers import upload_csv
from release_fixtures import enroll_device, make_release
from sqlalchemy import select, text

from conftest import bearer
from farpoint.core import audit_chain, dsse, keys
from farpoint.server.audit import repository as audit_repo
from farpoint.server.audit import service as audit_service
from farpoint.server.audit.tables import AuditCheckpoint, AuditEvent


@pytest.fixture
def clock(app):
    """The app's clock, frozen until a test moves it: `clock[0] += 61`."""
    now = [time.time()]
    app.state.ctx.clock = lambda: now[0]
    return now


def _entries(api, token):
    r = api.get("/api/v1/audit", params={"limit": 500}, headers=bearer(token))
    assert r.status_code == 200, r.text
    return r.json()["items"]


def _teams(api, admin_token, n, prefix="t"):
    for i in range(n):
        r = api.post("/api/v1/teams", json={"name": f"{prefix}{i}"}, headers=bearer(admin_token))
        assert r.status_code == 201, r.text


def _sql(app, statement, **params):
    with app.state.ctx.db.engine.begin() as conn:
        return conn.execute(text(statement), params)


def _checkpoint(api, admin_token):
    r = api.post("/api/v1/audit/checkpoints", headers=bearer(admin_token))
    assert r.status_code == 200, r.text
    return r.json()


# --- what is recorded ------------------------------------------------------------------


def test_writes_through_the_api_are_audited(app, api, admin_token, token_for, clock):
    h = bearer(admin_token)
    assert api.post("/api/v1/teams", json={"name": "icu"}, headers=h).status_code == 201
    ds = token_for("data-scientist")  # user.create + token.create
    ops, mlops = token_for("it-ops"), token_for("mlops-engineer")
    ds_token_id = int(ds.split("_")[1])
    assert api.delete(f"/api/v1/tokens/{ds_token_id}", headers=h).status_code == 204
    ds = token_for("ai-engineer", "data-scientist")

    frame = pd.DataFrame({"hr": [60, 70, 80, 90], "label": [0, 1, 0, 1]})
    r = upload_csv(api, ds, "vitals", frame, {"label": "label"})
    assert r.status_code == 201, r.text
    dataset_digest = r.json()["digest"]
    r = api.put(
        "/api/v1/datasets/vitals/versions/1/roles",
        json={"roles": {"label": "label", "hr": "feature"}},
        headers=bearer(ds),
    )
    assert r.status_code == 200, r.text

    dev = enroll_device(app, api, ops, "bed-1")
    assert dev.report(("vitals", None, "pending")).status_code == 204
    assert dev.report(("vitals", None, "pending")).status_code == 204  # no change: no entry
    release = make_release(app)
    r = api.post("/api/v1/fleets", json={"name": "all"}, headers=bearer(ops))
    assert r.status_code == 201, r.text
    r = api.post("/api/v1/rollouts", json={"fleet": "all", "release_id": release.id},
                 headers=bearer(mlops))  # fmt: skip
    assert r.status_code == 201, r.text
    rollout_id = r.json()["id"]
    assert dev.report(("vitals", release.id, "active")).status_code == 204

    entries = _entries(api, token_for("business"))
    assert [e["seq"] for e in entries] == list(range(1, len(entries) + 1))
    by_action = {}
    for e in entries:
        by_action.setdefault(e["action"], []).append(e)
    assert [(e["actor"], e["subject"]) for e in by_action["team.create"]] == [("root", "team/icu")]
    assert [e["action"] for e in entries].count("token.revoke") == 1
    assert by_action["token.revoke"][0]["subject"] == f"token/{ds_token_id}"
    [created] = by_action["dataset.version.create"]
    assert created["subject"] == "vitals@1"
    assert created["digests"] == {"dataset": dataset_digest}
    assert created["actor"].startswith("u-ai-data-")
    [roles] = by_action["dataset.version.roles"]
    assert roles["digests"]["roles"] == audit_service.digest_of({"hr": "feature", "label": "label"})
    [enrolled] = by_action["device.enroll"]
    assert enrolled["actor"].startswith("enroll:") and enrolled["subject"] == f"device/{dev.id}"
    assert enrolled["digests"] == {"key": keys.key_id(dev.key.public_key())}
    [rollout] = by_action["rollout.create"]
    assert rollout["subject"] == f"rollout/{rollout_id}"
    assert rollout["digests"] == {"release": release.manifest_digest}
    phases = [(e["actor"], e["subject"], e["digests"]) for e in by_action["device.phase"]]
    assert phases == [
        (f"device:{dev.id}", f"device/{dev.id}/vitals=pending", {}),
        (f"device:{dev.id}", f"device/{dev.id}/vitals=active",
         {"manifest": release.manifest_digest}),
    ]  # fmt: skip
    for e in entries:  # every entry hashes as documented in core.audit_chain
        entry = audit_chain.Entry(**{**e, "at": datetime.fromisoformat(e["at"])})
        assert entry.recomputed() == e["hash"]


def test_a_change_is_not_kept_when_its_entry_cannot_be_appended(app, api, admin_token, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("audit store unavailable")

    monkeypatch.setattr(audit_service, "append", broken)
    with pytest.raises(RuntimeError):
        api.post("/api/v1/teams", json={"name": "ghost"}, headers=bearer(admin_token))
    monkeypatch.undo()
    teams = api.get("/api/v1/teams", headers=bearer(admin_token)).json()["items"]
    assert "ghost" not in [t["name"] for t in teams]
    assert _entries(api, admin_token) == []


def test_who_may_read_the_log(api, admin_token, token_for):
    _teams(api, admin_token, 1)
    business = token_for("business")
    for token in (admin_token, business):
        for path in ("/api/v1/audit", "/api/v1/audit/checkpoints", "/api/v1/audit/key"):
            assert api.get(path, headers=bearer(token)).status_code == 200, path
    for role in ("data-scientist", "mlops-engineer", "it-ops"):
        token = token_for(role)
        for path in ("/api/v1/audit", "/api/v1/audit/checkpoints", "/api/v1/audit/key"):
            assert api.get(path, headers=bearer(token)).status_code == 403, (role, path)
    r = api.post("/api/v1/audit/checkpoints", headers=bearer(business))
    assert r.status_code == 403


def test_entries_page_by_seq_both_ways(api, admin_token):
    _teams(api, admin_token, 5)
    h = bearer(admin_token)
    first = api.get("/api/v1/audit", params={"limit": 2}, headers=h).json()
    assert [e["seq"] for e in first["items"]] == [1, 2]
    second = api.get(
        "/api/v1/audit", params={"limit": 2, "cursor": first["next_cursor"]}, headers=h
    ).json()
    assert [e["seq"] for e in second["items"]] == [3, 4]
    newest = api.get("/api/v1/audit", params={"limit": 2, "order": "desc"}, headers=h).json()
    assert [e["seq"] for e in newest["items"]] == [5, 4]


# --- checkpoints -------------------------------------------------------------------------


def test_head_is_signed_on_append_when_the_last_checkpoint_is_old(app, api, admin_token, clock):
    h = bearer(admin_token)
    _teams(api, admin_token, 3, "a")
    cps = api.get("/api/v1/audit/checkpoints", headers=h).json()["items"]
    assert [c["seq"] for c in cps] == [1]  # the first entry; the next ones are within 60 s
    clock[0] += 61
    _teams(api, admin_token, 2, "b")
    cps = api.get("/api/v1/audit/checkpoints", headers=h).json()["items"]
    assert [c["seq"] for c in cps] == [1, 4]

    made = _checkpoint(api, admin_token)
    assert made["seq"] == 5
    assert _checkpoint(api, admin_token)["id"] == made["id"]  # the head did not move
    key = keys.load_public_key(api.get("/api/v1/audit/key", headers=h).json()["public_key_pem"])
    payload = dsse.verify_envelope(
        made["envelope"], {keys.key_id(key): key}, audit_chain.CHECKPOINT_TYPE
    )
    assert payload == {"seq": 5, "hash": made["hash"], "at": payload["at"]}


def test_checkpoint_of_an_empty_log_is_409(api, admin_token):
    r = api.post("/api/v1/audit/checkpoints", headers=bearer(admin_token))
    assert r.status_code == 409


# --- concurrency -----------------------------------------------------------------------


def test_concurrent_appends_form_one_chain(app):
    ctx = app.state.ctx
    errors: list[BaseException] = []

    def writer(n: int) -> None:
        try:
            for i in range(12):
                with ctx.db.session() as s:
                    audit_service.record(s, ctx, f"w{n}", "test.append", f"item/{n}/{i}")
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    with ctx.db.session() as s:
        rows = audit_repo.events(s, 0, 500)
        cps = audit_repo.checkpoints(s, 0, 500)
        entries = [
            audit_chain.Entry(
                seq=r.seq, at=r.at, actor=r.actor, action=r.action, subject=r.subject,
                digests=r.digests, prev_hash=r.prev_hash, hash=r.hash,
            )
            for r in rows
        ]  # fmt: skip
        checkpoints = [audit_chain.Checkpoint(id=c.id, envelope=c.envelope) for c in cps]
    assert [e.seq for e in entries] == list(range(1, 97))
    result = audit_chain.verify(entries, checkpoints, ctx.signing_key.public_key())
    assert result.ok, result.problem


# --- verify, client side -----------------------------------------------------------------


def test_untampered_chain_verifies(app, api, admin_token, cli, tmp_path, clock):
    _teams(api, admin_token, 6)
    _checkpoint(api, admin_token)
    r = cli(admin_token, "audit", "verify")
    assert r.exit_code == 0, r.output
    head = _entries(api, admin_token)[-1]["hash"]
    assert f"audit chain verified: 6 entries, head {head}, 2 checkpoints" in r.output
    saved = json.loads((tmp_path / "state/farpoint/audit-127.0.0.1-8750.json").read_text())
    assert (saved["seq"], saved["hash"]) == (6, head)

    listed = cli(admin_token, "audit", "list", "--json", "--limit", "2")
    assert listed.exit_code == 0, listed.output
    assert [e["seq"] for e in json.loads(listed.output)] == [5, 6]
    key_id = keys.key_id(app.state.ctx.signing_key.public_key())
    r = cli(admin_token, "audit", "verify", "--key-id", key_id, "--json")
    assert r.exit_code == 0 and json.loads(r.output)["ok"] is True, r.output


def _rows(s, *seqs):
    q = select(AuditEvent).where(AuditEvent.seq.in_(seqs)).order_by(AuditEvent.seq)
    return s.scalars(q).all()


def _swap(app, a, b):
    """Exchange two entries' content, each keeping its seq."""
    fields = ("at", "actor", "action", "subject", "digests", "prev_hash", "hash")
    with app.state.ctx.db.session() as s:
        ra, rb = _rows(s, a, b)
        va, vb = ({f: getattr(r, f) for f in fields} for r in (ra, rb))
        ra.prev_hash, rb.prev_hash = "parked-a", "parked-b"  # prev_hash is unique
        s.flush()
        for row, values in ((ra, vb), (rb, va)):
            for f, v in values.items():
                setattr(row, f, v)


def _rehash(app, start, stop=None):
    """What an attacker with the database does after an edit: recompute the hashes of
    entries start..stop (to the end by default), relinking each to the one before."""
    with app.state.ctx.db.session() as s:
        rows = s.scalars(select(AuditEvent).order_by(AuditEvent.seq)).all()
        prev = next(r.hash for r in rows if r.seq == start - 1) if start > 1 else None
        for row in rows:
            if row.seq < start or (stop is not None and row.seq > stop):
                continue
            row.prev_hash = prev or audit_chain.GENESIS
            row.hash = audit_chain.entry_hash(
                seq=row.seq, at=row.at, actor=row.actor, action=row.action,
                subject=row.subject, digests=row.digests, prev=row.prev_hash,
            )  # fmt: skip
            prev = row.hash


TAMPERING = {
    "edited": (
        lambda app: _sql(app, "UPDATE audit_events SET actor = 'mallory' WHERE seq = 3"),
        "entry 3: hash does not match its content (edited?)",
    ),
    "deleted": (
        lambda app: _sql(app, "DELETE FROM audit_events WHERE seq = 4"),
        "entry 4 missing: seq jumps from 3 to 5 (deleted?)",
    ),
    "swapped": (
        lambda app: _swap(app, 3, 4),
        "entry 3: holds the content of entry 4 (reordered?)",
    ),
    "edited and its hash recomputed": (
        lambda app: (
            _sql(app, "UPDATE audit_events SET subject = 'team/other' WHERE seq = 3"),
            _rehash(app, 3, 3),
        ),
        "entry 4: prev_hash does not link to entry 3",
    ),
    "rewritten and rehashed to the end": (
        lambda app: (
            _sql(app, "UPDATE audit_events SET subject = 'team/other' WHERE seq = 3"),
            _rehash(app, 3),
        ),
        "entry 8: hash differs from the one checkpoint 2 signed (entries up to 8 rewritten?)",
    ),
    "tail cut off": (
        lambda app: _sql(app, "DELETE FROM audit_events WHERE seq > 5"),
        "chain ends at 5 but checkpoint 2 covers 8 (truncated)",
    ),
}


@pytest.mark.parametrize("how", list(TAMPERING))
def test_verify_names_the_first_bad_entry(app, api, admin_token, cli, clock, how):
    _teams(api, admin_token, 8)
    _checkpoint(api, admin_token)  # checkpoint 2 covers entry 8 (1 was made at entry 1)
    assert cli(admin_token, "audit", "verify").exit_code == 0
    tamper, message = TAMPERING[how]
    tamper(app)
    r = cli(admin_token, "audit", "verify")
    assert r.exit_code == 1, r.output
    assert message in r.output
    as_json = cli(admin_token, "audit", "verify", "--json")
    assert as_json.exit_code == 1
    assert message in json.loads(as_json.stdout)["problem"]


def test_truncation_with_its_checkpoints_removed_is_caught_by_a_previous_verifier(
    app, api, admin_token, cli, clock, tmp_path
):
    _teams(api, admin_token, 8)
    _checkpoint(api, admin_token)
    state = tmp_path / "seen.json"
    assert cli(admin_token, "audit", "verify", "--state-file", str(state)).exit_code == 0
    _sql(app, "DELETE FROM audit_events WHERE seq > 5")
    _sql(app, "DELETE FROM audit_checkpoints WHERE seq > 5")

    r = cli(admin_token, "audit", "verify", "--state-file", str(state))
    assert r.exit_code == 1, r.output
    assert "chain ends at 5 but a checkpoint verified on" in r.output
    assert "covered 8 (truncated, and its checkpoints removed)" in r.output
    # Without that memory the cut is invisible: why the state file exists.
    fresh = cli(admin_token, "audit", "verify", "--state-file", str(tmp_path / "new.json"))
    assert fresh.exit_code == 0, fresh.output


def test_forged_checkpoint_and_unexpected_key_are_refused(app, api, admin_token, cli, clock):
    _teams(api, admin_token, 3)
    other = keys.generate_private_key()
    head = _entries(api, admin_token)[-1]
    now = datetime.now(UTC)
    payload = audit_chain.checkpoint_payload(3, head["hash"], now)
    with app.state.ctx.db.session() as s:
        s.add(
            AuditCheckpoint(
                seq=3, hash=head["hash"], at=now, key_id=keys.key_id(other.public_key()),
                envelope=dsse.sign_envelope(payload, audit_chain.CHECKPOINT_TYPE, other),
            )
        )  # fmt: skip
    r = cli(admin_token, "audit", "verify")
    assert r.exit_code == 1, r.output
    assert "checkpoint 2: no signature on the envelope verifies with a trusted key" in r.output

    _sql(app, "DELETE FROM audit_checkpoints WHERE id = 2")
    wrong = keys.key_id(other.public_key())
    r = cli(admin_token, "audit", "verify", "--key-id", wrong)
    assert r.exit_code == 1, r.output
    assert f"not the expected {wrong}" in r.output
