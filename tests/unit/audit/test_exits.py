"""What public functions can run (from the AST), and the check that no pause gate stands
in front of a member's exits."""

from __future__ import annotations

from typing import Any

from oracles.audit.bytecode import CodeMatch
from oracles.audit.exits import EXITS, check_exits
from oracles.audit.reach import compute_function_reach
from oracles.audit.recompile import Recompiled
from oracles.audit.source_verify import ContractVerification, DeploymentFacts

HOUSE = "0x" + "22" * 20


def _calls(*references: int) -> dict[str, Any]:
    return {
        "nodeType": "Block",
        "statements": [
            {
                "nodeType": "ExpressionStatement",
                "expression": {
                    "nodeType": "FunctionCall",
                    "expression": {"nodeType": "Identifier", "referencedDeclaration": ref},
                },
            }
            for ref in references
        ],
    }


def _function(
    node_id: int,
    name: str,
    *,
    calls: tuple[int, ...] = (),
    modifiers: tuple[int, ...] = (),
    visibility: str = "external",
) -> dict[str, Any]:
    return {
        "nodeType": "FunctionDefinition",
        "id": node_id,
        "name": name,
        "kind": "function",
        "visibility": visibility,
        "modifiers": [
            {
                "nodeType": "ModifierInvocation",
                "modifierName": {"nodeType": "IdentifierPath", "referencedDeclaration": m},
            }
            for m in modifiers
        ],
        "body": _calls(*calls),
    }


def _contract(node_id: int, name: str, bases: list[int], nodes: list[Any]) -> dict[str, Any]:
    return {
        "nodeType": "ContractDefinition",
        "id": node_id,
        "name": name,
        "linearizedBaseContracts": [node_id, *bases],
        "nodes": nodes,
    }


def _ast() -> dict[str, Any]:
    """Pausable (1) <- House (2) <- Child (3): Child overrides House's internal `_pay`
    with a paused one, so Child's `claim` can be paused though House's cannot."""
    pausable = _contract(
        1,
        "Pausable",
        [],
        [
            {
                "nodeType": "ModifierDefinition",
                "id": 10,
                "name": "whenNotPaused",
                "body": _calls(11),
            },
            _function(11, "_requireNotPaused", calls=(12,), visibility="internal"),
            _function(12, "paused", visibility="public"),
        ],
    )
    house = _contract(
        2,
        "House",
        [1],
        [
            _function(20, "claim", calls=(21,)),
            _function(21, "_pay", visibility="internal"),
            _function(22, "fund", modifiers=(10,)),
            _function(23, "settle", calls=(24,)),
            _function(24, "_guarded", modifiers=(10,), visibility="internal"),
        ],
    )
    child = _contract(
        3, "Child", [2, 1], [_function(31, "_pay", modifiers=(10,), visibility="internal")]
    )
    return {"nodeType": "SourceUnit", "nodes": [pausable, house, child]}


def test_reach_follows_modifiers_internal_calls_and_overrides() -> None:
    reach = compute_function_reach([_ast()], ["House", "Child"])
    gates = ["_requireNotPaused", "paused", "whenNotPaused"]
    assert reach["House"]["claim"] == ["_pay"]
    assert reach["House"]["fund"] == gates
    assert reach["House"]["settle"] == sorted(["_guarded", *gates])
    assert "_pay" not in reach["House"] and reach["House"]["paused"] == []
    assert set(gates) <= set(reach["Child"]["claim"])


def _recompiled(reach: dict[str, list[str]]) -> Recompiled:
    return Recompiled(
        compiler_version="0.8.28",
        source_hashes={},
        artifacts={},
        immutable_names={},
        function_reach={"ClearingHouse": reach},
    )


def _facts(match: CodeMatch = CodeMatch.EXACT) -> DeploymentFacts:
    verification = ContractVerification(
        name="ClearingHouse",
        address=HOUSE,
        match=match,
        deploy_block=3,
        deploy_tx="0x" + "ab" * 32,
        constructor=None,
        immutables={},
        chain_metadata_cid=None,
        build_metadata_cid=None,
        chain_compiler=None,
        sources_differing=(),
    )
    return DeploymentFacts([verification])


UNGUARDED = {name: ["nonReentrant", "safeTransfer"] for name in EXITS}


def test_exits_that_reach_no_pause_gate_pass() -> None:
    check = check_exits(_recompiled(UNGUARDED), _facts(), accept_partial=False)
    assert check.passed
    assert [e.values["function"] for e in check.evidence] == list(EXITS)


def test_a_claim_behind_whenNotPaused_fails() -> None:
    reach = {**UNGUARDED, "claim": ["_requireNotPaused", "paused", "whenNotPaused"]}
    check = check_exits(_recompiled(reach), _facts(), accept_partial=False)
    assert not check.passed
    assert check.message == (
        "1 exits a pause could stop; first: ClearingHouse.claim reaches _requireNotPaused, "
        "paused, whenNotPaused: a pause would stop it"
    )
    assert (check.evidence[0].block, check.evidence[0].address) == (3, HOUSE)


def test_a_missing_refund_fails_and_an_unverified_deployment_is_said_so() -> None:
    without_refund = {k: v for k, v in UNGUARDED.items() if k != "refund"}
    check = check_exits(_recompiled(without_refund), _facts(), accept_partial=False)
    assert "ClearingHouse has no public refund" in check.message
    # a deployment that is not the published source fails source.ClearingHouse; this check
    # judges the published source and says so
    mismatch = check_exits(_recompiled(UNGUARDED), _facts(CodeMatch.MISMATCH), accept_partial=True)
    assert (
        mismatch.passed and "not the deployed code (see source.ClearingHouse)" in mismatch.message
    )
    partial = check_exits(_recompiled(UNGUARDED), _facts(CodeMatch.PARTIAL), accept_partial=True)
    assert partial.message.endswith("in the verified source")
