"""SDK calls for signing keys, attestations and approvals.

Statements are built from the server's own records, signed on this machine with a key
that never leaves it, and posted; the server checks them against the same records.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from farpoint.core import dsse, intoto, keys
from farpoint.core.errors import SignatureError
from farpoint.core.intoto import Statement, Subject
from farpoint.sdk import keystore
from farpoint.sdk._http import _Base, segment
from farpoint.wire.datasets import DatasetVersionOut
from farpoint.wire.evaluations import EvaluationOut
from farpoint.wire.models import ModelVersionOut, RunOut
from farpoint.wire.releases import ReleaseOut
from farpoint.wire.trust import AttestationOut, KeyCreate, KeyOut

__all__ = [
    "BUILDER_ID",
    "TrustCalls",
    "approval_statement",
    "dataset_statement",
    "evaluation_statement",
    "training_statement",
]

BUILDER_ID = "https://farpoint.dev/builders/sdk/v1"


def dataset_statement(v: DatasetVersionOut) -> Statement:
    """A dataset attestation: digest, row count, schema and column roles of one version."""
    return Statement.build(
        [Subject(v.ref, v.digest)],
        intoto.DATASET_V1,
        {
            "dataset": v.ref,
            "row_count": v.row_count,
            "columns": [c.model_dump(mode="json") for c in v.columns],
            "roles": {k: str(r) for k, r in v.roles.items()},
        },
    )


def training_statement(
    mv: ModelVersionOut, run: RunOut, datasets: Sequence[DatasetVersionOut]
) -> Statement:
    """SLSA provenance v1 of a model version: its run, environment, datasets and commit."""
    deps: list[dict[str, Any]] = [
        {"uri": f"farpoint:dataset/{d.ref}", "digest": {"sha256": d.digest.split(":", 1)[1]}}
        for d in datasets
    ]
    if run.code.git_commit:
        where = run.code.repository or ""
        deps.append(
            {
                "uri": f"git+{where}" if where else "git",
                "digest": {"gitCommit": run.code.git_commit},
            }
        )
    return Statement.build(
        [Subject(mv.ref, mv.digest)],
        intoto.SLSA_PROVENANCE_V1,
        {
            "buildDefinition": {
                "buildType": intoto.TRAINING_BUILD_TYPE,
                "externalParameters": {"model": mv.ref, "run_id": run.id, "parameters": run.params},
                "internalParameters": {"environment": run.environment},
                "resolvedDependencies": deps,
            },
            "runDetails": {
                "builder": {"id": BUILDER_ID},
                "metadata": {
                    "invocationId": f"farpoint:run/{run.id}",
                    "startedOn": run.created_at.isoformat(),
                },
            },
        },
    )


def evaluation_statement(
    ev: EvaluationOut, mv: ModelVersionOut, dataset: DatasetVersionOut
) -> Statement:
    """An in-toto test result: the evaluation's verdict, gates and metrics on a model."""
    return Statement.build(
        [Subject(mv.ref, mv.digest)],
        intoto.TEST_RESULT_V01,
        {
            "result": "PASSED" if ev.passed else "FAILED",
            "configuration": [{"uri": f"farpoint:policy/{ev.policy}"}],
            "passedTests": sorted(g.name for g in ev.gates if g.passed),
            "failedTests": sorted(g.name for g in ev.gates if not g.passed),
            "warnedTests": [],
            "evaluation_id": ev.id,
            "dataset": {
                "uri": f"farpoint:dataset/{dataset.ref}",
                "digest": {"sha256": dataset.digest.split(":", 1)[1]},
            },
            "metrics": ev.metrics,
        },
    )


def approval_statement(
    subject: Subject,
    role: str,
    *,
    release_id: int | None = None,
    evaluation_id: int | None = None,
    comment: str = "",
    approved_at: datetime | None = None,
) -> Statement:
    predicate: dict[str, Any] = {
        "role": role,
        "comment": comment,
        "approved_at": (approved_at or datetime.now(UTC)).isoformat(),
    }
    if release_id is not None:
        predicate["release_id"] = release_id
    if evaluation_id is not None:
        predicate["evaluation_id"] = evaluation_id
    return Statement.build([subject], intoto.APPROVAL_V1, predicate)


class TrustCalls(_Base):
    keys_dir: str | Path | None = None
    """Where local keys live; None means `$FARPOINT_KEYS_DIR` or `~/.config/farpoint/keys`."""

    # -- keys ---------------------------------------------------------------------------
    def create_key(self, name: str, passphrase: str | bytes) -> keys.PrivateKey:
        """Make a signing key on this machine (nothing is sent to the server)."""
        return keystore.create_key(name, passphrase, self.keys_dir)

    def load_key(self, name: str, passphrase: str | bytes) -> keys.PrivateKey:
        return keystore.load_key(name, passphrase, self.keys_dir)

    def register_key(self, name: str) -> KeyOut:
        """Send the public half of local key `name` to the server, bound to your user."""
        body = KeyCreate(name=name, public_key_pem=keystore.public_key_pem(name, self.keys_dir))
        return self._one(KeyOut, "POST", "keys", json=body.model_dump(mode="json"))

    def list_keys(self, user: str | None = None) -> list[KeyOut]:
        """Your registered keys (an admin sees everyone's, or `user`'s)."""
        return self._all(KeyOut, "keys", {"user": user} if user else None)

    def get_key(self, key_id: str) -> KeyOut:
        return self._one(KeyOut, "GET", f"keys/{segment(key_id)}")

    def revoke_key(self, key_id: str) -> None:
        """Revoke a key: it stays on record and signs nothing any more."""
        self._request("DELETE", f"keys/{segment(key_id)}")

    # -- records the statements are built from -----------------------------------------------
    def _dataset_version(self, ref: str) -> DatasetVersionOut:
        name, version = self._versioned(ref, None, "datasets")
        path = f"datasets/{segment(name)}/versions/{version}"
        return self._one(DatasetVersionOut, "GET", path)

    def _model_version(self, ref: str) -> ModelVersionOut:
        name, version = self._versioned(ref, None, "models")
        return self._one(ModelVersionOut, "GET", f"models/{segment(name)}/versions/{version}")

    # -- attestations ------------------------------------------------------------------------
    def post_statement(self, statement: Statement, key: keys.PrivateKey) -> AttestationOut:
        """Sign `statement` here with `key` and hand the envelope to the server."""
        envelope = dsse.sign_envelope(intoto.statement_bytes(statement), intoto.PAYLOAD_TYPE, key)
        return self._one(AttestationOut, "POST", "attestations", json={"envelope": envelope})

    def attest_dataset(self, ref: str, key: keys.PrivateKey) -> AttestationOut:
        """Sign that dataset version `ref` has the digest, schema and roles on record."""
        return self.post_statement(dataset_statement(self._dataset_version(ref)), key)

    def attest_training(self, model_ref: str, key: keys.PrivateKey) -> AttestationOut:
        """Sign the SLSA provenance of a model version: run, environment, datasets, commit."""
        mv = self._model_version(model_ref)
        run = self._one(RunOut, "GET", f"runs/{segment(mv.run_id)}")
        used = [self._dataset_version(ref) for ref in run.datasets]
        return self.post_statement(training_statement(mv, run, used), key)

    def attest_evaluation(self, evaluation_id: int, key: keys.PrivateKey) -> AttestationOut:
        """Sign an evaluation's verdict, gate results and metrics about its model."""
        ev = self._one(EvaluationOut, "GET", f"evaluations/{segment(evaluation_id)}")
        mv = self._model_version(ev.model)
        statement = evaluation_statement(ev, mv, self._dataset_version(ev.dataset))
        return self.post_statement(statement, key)

    def approve(
        self,
        *,
        release_id: int | None = None,
        evaluation_id: int | None = None,
        role: str,
        key: keys.PrivateKey,
        comment: str = "",
    ) -> AttestationOut:
        """Sign your approval, as `role`, of a release or of an evaluation."""
        if (release_id is None) == (evaluation_id is None):
            raise ValueError("approve exactly one of release_id or evaluation_id")
        if release_id is not None:
            release = self._one(ReleaseOut, "GET", f"releases/{segment(release_id)}")
            subject = Subject(f"release/{release.id}", release.manifest_digest)
        else:
            ev = self._one(EvaluationOut, "GET", f"evaluations/{segment(evaluation_id or 0)}")
            mv = self._model_version(ev.model)
            subject = Subject(mv.ref, mv.digest)
        statement = approval_statement(
            subject, role, release_id=release_id, evaluation_id=evaluation_id, comment=comment
        )
        return self.post_statement(statement, key)

    def list_attestations(
        self, subject: str | None = None, predicate_type: str | None = None
    ) -> list[AttestationOut]:
        params = {k: v for k, v in (("subject", subject), ("predicate_type", predicate_type)) if v}
        return self._all(AttestationOut, "attestations", params)

    def get_attestation(self, attestation_id: int) -> AttestationOut:
        return self._one(AttestationOut, "GET", f"attestations/{segment(attestation_id)}")

    def verify_attestation(self, attestation: AttestationOut | int) -> Statement:
        """Check, here, that the signer's registered key signed exactly what the server shows.

        Raises SignatureError naming the first thing that does not hold.
        """
        if isinstance(attestation, int):
            attestation = self.get_attestation(attestation)
        key = self.get_key(attestation.key_id)
        if key.user != attestation.signer:
            raise SignatureError(
                f"key {key.key_id} belongs to {key.user!r}, not to the claimed signer "
                f"{attestation.signer!r}"
            )
        if key.revoked_at is not None:
            raise SignatureError(f"the signing key {key.key_id} was revoked at {key.revoked_at}")
        public = keys.load_public_key(key.public_key_pem)
        if keys.key_id(public) != key.key_id:
            raise SignatureError(f"the server's public key does not hash to {key.key_id}")
        envelope = attestation.envelope.model_dump()
        dsse.verify_envelope(envelope, {key.key_id: public}, intoto.PAYLOAD_TYPE)
        statement = intoto.parse_statement(base64.b64decode(envelope["payload"]))
        shown = [(s.name, s.digest) for s in attestation.subjects]
        if statement.predicate_type != attestation.predicate_type or shown != [
            (s.name, s.digest) for s in statement.subjects
        ]:
            raise SignatureError("the server's summary differs from the signed statement")
        return statement
