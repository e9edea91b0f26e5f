"""The Python client of the Farpoint HTTP API (docs/api.md)."""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from typing import Any

from farpoint.sdk._http import _Base, segment
from farpoint.sdk.audit import AuditCalls
from farpoint.sdk.datasets import DatasetCalls
from farpoint.sdk.devices import DeviceCalls
from farpoint.sdk.rollouts import ROLLOUT_DONE, RolloutCalls
from farpoint.sdk.telemetry import TelemetryCalls
from farpoint.sdk.trace import TraceCalls
from farpoint.sdk.training import TrainingCalls
from farpoint.sdk.trust import TrustCalls
from farpoint.sdk.tuf import TufCalls
from farpoint.wire.common import Role, parse_ref
from farpoint.wire.devices import (
    FleetCreate,
    FleetOut,
)
from farpoint.wire.evaluations import EvaluationCreate, EvaluationOut, PolicyCreate, PolicyOut
from farpoint.wire.identity import (
    Me,
    TeamCreate,
    TeamOut,
    TokenCreate,
    TokenCreated,
    TokenOut,
    UserCreate,
    UserOut,
)
from farpoint.wire.releases import ReleaseCreate, ReleaseOut

__all__ = ["DEFAULT_URL", "ROLLOUT_DONE", "Client"]

DEFAULT_URL = "http://127.0.0.1:8750"


def _body(model: Any) -> dict[str, Any]:
    return model.model_dump(mode="json")  # type: ignore[no-any-return]


class Client(
    DatasetCalls,
    TrainingCalls,
    TraceCalls,
    TrustCalls,
    TufCalls,
    AuditCalls,
    RolloutCalls,
    TelemetryCalls,
    DeviceCalls,
    _Base,
):
    """A Farpoint server, seen through its HTTP API.

    Every call returns `farpoint.wire` models; every refusal raises the matching
    `farpoint.core.errors` exception (`NotFound`, `Forbidden`, ...), and a server that
    cannot be reached raises `ServerUnreachable`. Lists are followed to their end.
    """

    @classmethod
    def from_env(cls, **kwargs: Any) -> Client:
        """A client for `FARPOINT_URL` (default http://127.0.0.1:8750) with `FARPOINT_TOKEN`."""
        return cls(
            os.environ.get("FARPOINT_URL") or DEFAULT_URL,
            os.environ.get("FARPOINT_TOKEN") or None,
            **kwargs,
        )

    # -- the server and who is asking ------------------------------------------------
    def health(self) -> dict[str, str]:
        """`{"status": "ok", "version": ...}` when the server is up (no token needed)."""
        answer: dict[str, str] = self._json("GET", "health")
        return answer

    def me(self) -> Me:
        """The user and roles behind this client's token."""
        return self._one(Me, "GET", "me")

    # -- teams, users, tokens -----------------------------------------------------------
    def create_team(self, name: str) -> TeamOut:
        """Create a team (admin)."""
        return self._one(TeamOut, "POST", "teams", json=_body(TeamCreate(name=name)))

    def add_team_member(self, team: str, user: str) -> None:
        """Add a user to a team (admin)."""
        self._request("POST", f"teams/{segment(team)}/members/{segment(user)}")

    def list_teams(self) -> list[TeamOut]:
        return self._all(TeamOut, "teams")

    def create_user(
        self,
        name: str,
        roles: Iterable[str | Role],
        teams: Iterable[str] = (),
        kind: str = "person",
        email: str | None = None,
    ) -> UserOut:
        """Create a person or service account holding `roles` (admin)."""
        body = UserCreate.model_validate(
            {"name": name, "roles": list(roles), "teams": list(teams), "kind": kind, "email": email}
        )
        return self._one(UserOut, "POST", "users", json=_body(body))

    def list_users(self) -> list[UserOut]:
        return self._all(UserOut, "users")

    def create_token(
        self,
        user: str,
        roles: Iterable[str | Role] | None = None,
        expires_in_s: int = 30 * 24 * 3600,
        description: str = "",
    ) -> TokenCreated:
        """Issue an API token for `user`; its secret is in the answer, and only there."""
        body = TokenCreate.model_validate(
            {
                "user": user,
                "roles": list(roles) if roles is not None else None,
                "expires_in_s": expires_in_s,
                "description": description,
            }
        )
        return self._one(TokenCreated, "POST", "tokens", json=_body(body))

    def list_tokens(self) -> list[TokenOut]:
        return self._all(TokenOut, "tokens")

    def revoke_token(self, token_id: int) -> None:
        """Revoke a token at once (admin, or the token's owner)."""
        self._request("DELETE", f"tokens/{segment(token_id)}")

    # -- policies and evaluations ---------------------------------------------------------
    def create_policy(self, name: str, yaml_text: str) -> PolicyOut:
        """Store the next version of policy `name` from its YAML text."""
        body = PolicyCreate(name=name, yaml=yaml_text)
        return self._one(PolicyOut, "POST", "policies", json=_body(body))

    def list_policies(self) -> list[PolicyOut]:
        return self._all(PolicyOut, "policies")

    def get_policy(self, name: str, version: int | None = None) -> PolicyOut:
        """Policy `name` (its latest version unless `version`, or `name@3`, says which)."""
        if version is None and "@" in name:
            name, version = parse_ref(name)
        params = {"version": version} if version is not None else None
        return self._one(PolicyOut, "GET", f"policies/{segment(name)}", params=params)

    def evaluate(self, model_ref: str, dataset_ref: str, policy_ref: str) -> EvaluationOut:
        """Evaluate a model version on a dataset version against a policy's gates.

        The answer says whether every gate `passed`; a failed gate is not an exception.
        """
        body = EvaluationCreate(model=model_ref, dataset=dataset_ref, policy=policy_ref)
        return self._one(EvaluationOut, "POST", "evaluations", json=_body(body))

    def list_evaluations(self) -> list[EvaluationOut]:
        return self._all(EvaluationOut, "evaluations")

    def get_evaluation(self, evaluation_id: int) -> EvaluationOut:
        return self._one(EvaluationOut, "GET", f"evaluations/{segment(evaluation_id)}")

    # -- releases -------------------------------------------------------------------------
    def create_release(
        self,
        model_ref: str,
        evaluation_id: int | None = None,
        latency_budget_ms: Mapping[str, float] | None = None,
    ) -> ReleaseOut:
        """Package and sign a model version that passed its evaluation.

        `latency_budget_ms` maps hardware profiles (a device's `hardware-profile` label or
        its architecture, or `default`) to the single-row p95 latency in milliseconds the
        device's self-test allows before it switches to the release.
        """
        body = ReleaseCreate(
            model=model_ref,
            evaluation_id=evaluation_id,
            latency_budget_ms=dict(latency_budget_ms or {}),
        )
        return self._one(ReleaseOut, "POST", "releases", json=_body(body))

    def list_releases(self) -> list[ReleaseOut]:
        return self._all(ReleaseOut, "releases")

    def get_release(self, release_id: int) -> ReleaseOut:
        return self._one(ReleaseOut, "GET", f"releases/{segment(release_id)}")

    # -- fleets ---------------------------------------------------------------------------
    def create_fleet(self, name: str, selector: Mapping[str, str] | None = None) -> FleetOut:
        """A fleet: every device whose labels match `selector` (all devices when empty)."""
        body = FleetCreate(name=name, selector=dict(selector or {}))
        return self._one(FleetOut, "POST", "fleets", json=_body(body))

    def list_fleets(self) -> list[FleetOut]:
        return self._all(FleetOut, "fleets")

    def get_fleet(self, name: str) -> FleetOut:
        return self._one(FleetOut, "GET", f"fleets/{segment(name)}")
