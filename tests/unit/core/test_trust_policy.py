"""The trust policy a device enforces: bound keys only, roles, people counted once, author."""

from __future__ import annotations

import base64
import json
from dataclasses import replace
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from farpoint.core import digest, dsse, intoto, keys
from farpoint.core.trust_policy import (
    PolicyError,
    ReleaseFacts,
    evaluate_policy,
    parse_bindings,
    parse_policy,
)

MANIFEST = json.dumps({"model_digest": "sha256:" + "ab" * 32, "author": "alex"}).encode()
FACTS = ReleaseFacts.from_manifest_bytes(MANIFEST)
KEYS = {name: keys.generate_private_key() for name in ("dana", "omar", "alex", "eve", "dan2")}
ROLES = {
    "dana": ["data-scientist"],
    "omar": ["mlops-engineer"],
    "alex": ["data-scientist", "mlops-engineer"],
    "dan2": ["data-scientist"],
}
USERS = {"dana": "dana", "omar": "omar", "alex": "alex", "dan2": "dana"}  # dana has two keys
DEFAULT_POLICY = {
    "schema": "farpoint.trust-policy/v1",
    "evaluation": "passed",
    "approvals": [{"role": "data-scientist", "min": 1}, {"role": "mlops-engineer", "min": 1}],
    "min_distinct_approvers": 2,
    "author_may_approve": False,
}


def _pem(name: str) -> str:
    return keys.public_key_pem(KEYS[name].public_key()).decode()


def _kid(name: str) -> str:
    return keys.key_id(KEYS[name].public_key())


BINDINGS_DOC = {
    "schema": "farpoint.bindings/v1",
    "keys": {
        _kid(n): {"user": USERS[n], "roles": roles, "public_key_pem": _pem(n)}
        for n, roles in ROLES.items()
    },
}
BINDINGS = parse_bindings(json.dumps(BINDINGS_DOC).encode())
POLICY = parse_policy(json.dumps(DEFAULT_POLICY))


def _env(signer: str, predicate_type: str, subject: str, predicate: dict[str, Any]) -> Any:
    statement = intoto.Statement.build([intoto.Subject("x", subject)], predicate_type, predicate)
    return dsse.sign_envelope(intoto.statement_bytes(statement), intoto.PAYLOAD_TYPE, KEYS[signer])


def approve(signer: str, role: str, subject: str = FACTS.manifest_digest) -> Any:
    return _env(signer, intoto.APPROVAL_V1, subject, {"role": role})


def passed(signer: str = "dana", subject: str = FACTS.model_digest, result: str = "PASSED") -> Any:
    return _env(signer, intoto.TEST_RESULT_V01, subject, {"result": result})


GOOD = [passed(), approve("dana", "data-scientist"), approve("omar", "mlops-engineer")]


def test_the_default_policy_is_met_by_a_passed_evaluation_and_two_people() -> None:
    verdict = evaluate_policy(POLICY, BINDINGS, FACTS, GOOD)
    assert verdict.ok and verdict.reasons == ()
    assert verdict.approvals == {"data-scientist": ("dana",), "mlops-engineer": ("omar",)}
    assert verdict.approvers == ("dana", "omar") and verdict.evaluation_passed


@pytest.mark.parametrize(
    ("envelopes", "reason"),
    [
        (GOOD[:2], "needs 1 approval by mlops-engineer, has 0"),
        (GOOD[1:], "needs a passed evaluation of " + FACTS.model_digest),
        ([passed(result="FAILED"), *GOOD[1:]], "needs a passed evaluation"),
        ([passed("omar"), *GOOD[1:]], "needs a passed evaluation"),  # omar is not a scientist
        ([passed(subject=FACTS.manifest_digest), *GOOD[1:]], "needs a passed evaluation"),
        # the author counts for nothing
        ([*GOOD[:2], approve("alex", "mlops-engineer")], "needs 1 approval by mlops-engineer"),
        # an unbound key counts for nothing
        ([*GOOD[:2], approve("eve", "mlops-engineer")], "needs 1 approval by mlops-engineer"),
        # a role the key is not bound to counts for nothing
        ([*GOOD[:2], approve("dana", "mlops-engineer")], "needs 1 approval by mlops-engineer"),
        # an approval of another manifest counts for nothing
        (
            [*GOOD[:2], approve("omar", "mlops-engineer", "sha256:" + "0" * 64)],
            "needs 1 approval by mlops-engineer",
        ),
    ],
)
def test_what_does_not_count(envelopes: list[Any], reason: str) -> None:
    verdict = evaluate_policy(POLICY, BINDINGS, FACTS, envelopes)
    assert not verdict.ok
    assert any(r.startswith(reason) for r in verdict.reasons), verdict.reasons


def test_one_person_with_two_keys_counts_once() -> None:
    policy = replace(POLICY, approvals=(replace(POLICY.approvals[0], min=2),))
    envelopes = [passed(), approve("dana", "data-scientist"), approve("dan2", "data-scientist")]
    verdict = evaluate_policy(policy, BINDINGS, FACTS, envelopes)
    assert verdict.approvals == {"data-scientist": ("dana",)}
    assert "needs 2 approvals by data-scientist, has 1" in verdict.reasons


def test_one_person_in_two_roles_is_one_distinct_approver() -> None:
    facts = replace(FACTS, author="someone-else")
    envelopes = [passed(), approve("alex", "data-scientist"), approve("alex", "mlops-engineer")]
    verdict = evaluate_policy(POLICY, BINDINGS, facts, envelopes)
    assert verdict.reasons == ("needs 2 distinct approvers, has 1",)
    allowed = replace(POLICY, min_distinct_approvers=1)
    assert evaluate_policy(allowed, BINDINGS, facts, envelopes).ok


def test_the_author_may_approve_when_the_policy_says_so() -> None:
    envelopes = [*GOOD[:2], approve("alex", "mlops-engineer")]
    assert evaluate_policy(replace(POLICY, author_may_approve=True), BINDINGS, FACTS, envelopes).ok


def test_a_forged_signature_claiming_a_bound_key_id_counts_for_nothing() -> None:
    forged = approve("eve", "mlops-engineer")
    forged["signatures"][0]["keyid"] = _kid("omar")
    verdict = evaluate_policy(POLICY, BINDINGS, FACTS, [*GOOD[:2], forged])
    assert not verdict.ok
    assert any("does not verify" in n for n in verdict.notes)


def test_a_payload_swapped_under_a_valid_signature_counts_for_nothing() -> None:
    env = dict(approve("omar", "mlops-engineer"))
    statement = json.loads(base64.b64decode(env["payload"]))
    statement["predicate"]["role"] = "data-scientist"
    env["payload"] = base64.b64encode(json.dumps(statement).encode()).decode()
    verdict = evaluate_policy(POLICY, BINDINGS, FACTS, [GOOD[0], env])
    assert verdict.approvals == {}


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.one_of(
            st.none(),
            st.integers(),
            st.text(max_size=20),
            st.dictionaries(st.text(max_size=10), st.text(max_size=10), max_size=4),
            st.builds(
                lambda t, p, s: {"payloadType": t, "payload": p, "signatures": s},
                st.sampled_from([intoto.PAYLOAD_TYPE, "x"]),
                st.text(max_size=40),
                st.lists(st.dictionaries(st.sampled_from(["keyid", "sig"]), st.text(max_size=20))),
            ),
        ),
        max_size=6,
    )
)
def test_junk_envelopes_never_count_and_never_raise(junk: list[Any]) -> None:
    verdict = evaluate_policy(POLICY, BINDINGS, FACTS, junk)
    assert not verdict.ok and verdict.approvals == {} and not verdict.evaluation_passed
    # junk next to good envelopes changes nothing
    assert evaluate_policy(POLICY, BINDINGS, FACTS, [*junk, *GOOD]).ok


@settings(max_examples=40, deadline=None)
@given(st.permutations([*GOOD, approve("eve", "mlops-engineer"), approve("alex", "x-role")]))
def test_the_verdict_does_not_depend_on_the_order(envelopes: list[Any]) -> None:
    verdict = evaluate_policy(POLICY, BINDINGS, FACTS, envelopes)
    assert verdict.ok and verdict.approvers == ("dana", "omar")


def test_bindings_must_bind_each_key_under_its_own_id() -> None:
    doc = json.loads(json.dumps(BINDINGS_DOC))
    doc["keys"][_kid("dana")]["public_key_pem"] = _pem("eve")
    with pytest.raises(PolicyError, match="hashes to"):
        parse_bindings(doc)
    for bad in (
        {**BINDINGS_DOC, "schema": "other"},
        {**BINDINGS_DOC, "keys": []},
        {**BINDINGS_DOC, "keys": {_kid("dana"): {"user": "", "roles": [], "public_key_pem": ""}}},
    ):
        with pytest.raises(PolicyError):
            parse_bindings(bad)


@pytest.mark.parametrize(
    "change",
    [
        {"schema": "farpoint.trust-policy/v9"},
        {"evaluation": "maybe"},
        {"approvals": {"role": "x"}},
        {"approvals": [{"role": "data-scientist", "min": -1}]},
        {"approvals": [{"role": "a", "min": 1}, {"role": "a", "min": 1}]},
        {"min_distinct_approvers": True},
        {"author_may_approve": "no"},
    ],
)
def test_policy_parser_refuses_malformed_policies(change: dict[str, Any]) -> None:
    with pytest.raises(PolicyError):
        parse_policy({**DEFAULT_POLICY, **change})


def test_release_facts_come_from_the_manifest_bytes() -> None:
    assert FACTS.manifest_digest == digest.digest_bytes(MANIFEST)
    assert FACTS.author == "alex"
    with pytest.raises(PolicyError):
        ReleaseFacts.from_manifest_bytes(b'{"model_digest": "md5:x"}')
