"""Source verification: is the code at each manifest address the published source?

For every contract of the manifest: fetch `eth_getCode` at the audited block, compare it
with the recompiled runtime code (immutables masked by the build's
`immutableReferences`), classify exact / partial / mismatch (see `bytecode`), and decode
the constructor arguments from the deploy transaction's input (`eth_getTransactionByHash`)
after the recompiled creation code. The manifest itself is checked against the chain in
`deployment.manifest`: the deploy transactions created those addresses at those blocks
with those arguments, and the recorded post-deploy calls are the transactions sent.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from eth_abi.abi import decode as abi_decode
from eth_utils.crypto import keccak

from oracles.abi_codec import get_abi_type, to_json_value
from oracles.audit.bytecode import CodeComparison, CodeMatch, compare_runtime_code, read_immutables
from oracles.audit.chain_reader import ChainReader
from oracles.audit.checks import CheckResult, Evidence, JsonValue, make_check
from oracles.audit.recompile import Recompiled
from oracles.chain import RpcTransaction
from oracles.compiler import AbiEntry, ContractArtifact
from oracles.manifest import DeployedContract, Manifest


@dataclass(frozen=True)
class DecodedCall:
    """A function call or constructor decoded with the published ABI."""

    function: str
    args: dict[str, Any]
    types: dict[str, str]


@dataclass(frozen=True)
class ContractVerification:
    """What the audit found for one manifest contract."""

    name: str
    address: str
    match: CodeMatch
    deploy_block: int
    deploy_tx: str
    constructor: DecodedCall | None
    immutables: dict[str, str]
    chain_metadata_cid: str | None
    build_metadata_cid: str | None
    chain_compiler: str | None
    sources_differing: tuple[str, ...]
    problems: tuple[str, ...] = ()
    creation_code_match: bool = False


@dataclass
class DeploymentFacts:
    """The deployment as the chain shows it (inputs to the known-address checks)."""

    verifications: list[ContractVerification] = field(default_factory=list)
    post_deploy_calls: list[tuple[str, DecodedCall | None]] = field(default_factory=list)


def decode_args(abi_item: AbiEntry, data: bytes) -> DecodedCall:
    """ABI-decode a function's or constructor's arguments into named JSON values."""
    inputs = abi_item.get("inputs", [])
    types = [get_abi_type(argument) for argument in inputs]
    values = abi_decode(types, data)
    names = [argument.get("name") or f"arg{index}" for index, argument in enumerate(inputs)]
    return DecodedCall(
        function=str(abi_item.get("name", "constructor")),
        args={
            name: to_json_value(abi_type, value)
            for name, abi_type, value in zip(names, types, values, strict=True)
        },
        types=dict(zip(names, types, strict=True)),
    )


def decode_function_call(abi: Sequence[AbiEntry], calldata: bytes) -> DecodedCall | None:
    """The call in `calldata` by selector, or None when no function of `abi` matches."""
    for item in abi:
        if item.get("type") != "function":
            continue
        signature = f"{item['name']}({','.join(get_abi_type(i) for i in item['inputs'])})"
        if keccak(text=signature)[:4] == calldata[:4]:
            try:
                return decode_args(item, calldata[4:])
            except Exception:  # calldata the ABI cannot decode is reported as undecodable
                return None
    return None


def _constructor(
    artifact: ContractArtifact, tx_input: bytes, recorded: str
) -> tuple[DecodedCall | None, bool, str]:
    """(decoded constructor arguments, whether the creation code is the recompiled one,
    a problem text or "").

    The arguments follow the creation code. When the deployed creation code is not the
    recompiled one (a partial match differs in its metadata, a mismatch anywhere), they
    are taken at the recompiled length if the manifest's arguments fit there, else as the
    input's tail of the manifest's length; the runtime comparison gives the verdict.
    """
    creation = bytes.fromhex(artifact.bytecode[2:])
    matches = tx_input.startswith(creation)
    recorded_bytes = bytes.fromhex(recorded[2:])
    if matches or len(tx_input) == len(creation) + len(recorded_bytes):
        encoded = tx_input[len(creation) :]
    else:
        encoded = tx_input[len(tx_input) - len(recorded_bytes) :] if recorded_bytes else b""
    no_inputs: AbiEntry = {"type": "constructor", "inputs": []}
    item = next((i for i in artifact.abi if i["type"] == "constructor"), no_inputs)
    try:
        return decode_args({**item, "name": "constructor"}, encoded), matches, ""
    except Exception:  # undecodable arguments are evidence
        return None, matches, "constructor arguments do not decode with the published ABI"


def _differing_sources(
    artifact: ContractArtifact, recompiled: Recompiled, manifest: Manifest
) -> tuple[str, ...]:
    """Source units of this contract whose published hash differs from the manifest's."""
    units = json.loads(artifact.metadata).get("sources", {})
    return tuple(
        unit
        for unit in sorted(units)
        if manifest.source_hashes.get(unit) != recompiled.source_hashes.get(unit)
    )


def _undeclared(name: str, deployed: DeployedContract) -> ContractVerification:
    """The verification of a manifest contract the published sources do not declare."""
    return ContractVerification(
        name=name,
        address=deployed.address,
        match=CodeMatch.MISMATCH,
        deploy_block=deployed.deploy_block,
        deploy_tx=deployed.deploy_tx,
        constructor=None,
        immutables={},
        chain_metadata_cid=None,
        build_metadata_cid=None,
        chain_compiler=None,
        sources_differing=(),
        problems=(f"the published sources declare no contract {name}",),
    )


def _verify_one(
    reader: ChainReader,
    name: str,
    deployed: DeployedContract,
    recompiled: Recompiled,
    manifest: Manifest,
    deploy_tx: RpcTransaction | None,
) -> ContractVerification:
    artifact = recompiled.artifacts.get(name)
    if artifact is None:
        return _undeclared(name, deployed)
    code = reader.fetch_code(deployed.address)
    regions = [(r.start, r.length) for refs in artifact.immutable_references.values() for r in refs]
    comparison: CodeComparison = compare_runtime_code(
        code, bytes.fromhex(artifact.deployed_bytecode[2:]), regions
    )
    problems: list[str] = []
    constructor: DecodedCall | None = None
    creation_matches = False
    if deploy_tx is None:
        problems.append(f"deploy transaction {deployed.deploy_tx} not found")
    else:
        tx_input = bytes.fromhex(str(deploy_tx["input"])[2:])
        constructor, creation_matches, problem = _constructor(
            artifact, tx_input, deployed.constructor_args
        )
        if problem:
            problems.append(problem)
    names = recompiled.immutable_names.get(name, {})
    raw_refs = {
        names.get(key, key): [(r.start, r.length) for r in refs]
        for key, refs in artifact.immutable_references.items()
    }
    chain_tail, build_tail = comparison.chain_tail, comparison.build_tail
    return ContractVerification(
        name=name,
        address=deployed.address,
        match=comparison.match,
        deploy_block=deployed.deploy_block,
        deploy_tx=deployed.deploy_tx,
        constructor=constructor,
        immutables=read_immutables(code, raw_refs) if code else {},
        chain_metadata_cid=chain_tail.ipfs_cid if chain_tail else None,
        build_metadata_cid=build_tail.ipfs_cid if build_tail else None,
        chain_compiler=chain_tail.compiler_version if chain_tail else None,
        sources_differing=_differing_sources(artifact, recompiled, manifest),
        problems=tuple(problems),
        creation_code_match=creation_matches,
    )


def verify_sources(
    reader: ChainReader, manifest: Manifest, recompiled: Recompiled
) -> DeploymentFacts:
    """Verify every manifest contract and decode the recorded post-deploy calls."""
    tx_hashes = [d.deploy_tx for d in manifest.contracts.values()]
    transactions = reader.fetch_transactions(tx_hashes)
    facts = DeploymentFacts()
    for name, deployed in manifest.contracts.items():
        facts.verifications.append(
            _verify_one(
                reader, name, deployed, recompiled, manifest, transactions.get(deployed.deploy_tx)
            )
        )
    for call in manifest.post_deploy_calls:
        artifact = recompiled.artifacts.get(call.contract)
        decoded = (
            decode_function_call(artifact.abi, bytes.fromhex(call.calldata[2:]))
            if artifact is not None
            else None
        )
        facts.post_deploy_calls.append((call.contract, decoded))
    return facts


def build_source_checks(
    facts: DeploymentFacts, recompiled: Recompiled, manifest: Manifest, *, accept_partial: bool
) -> list[CheckResult]:
    """One `source.<Contract>` check per manifest contract."""
    checks = []
    accepted = {CodeMatch.EXACT, CodeMatch.PARTIAL} if accept_partial else {CodeMatch.EXACT}
    compiler_problem = (
        f"the manifest's compiler {manifest.compiler_version} is not the auditor's "
        f"{recompiled.compiler_version}"
        if manifest.compiler_version != recompiled.compiler_version
        else ""
    )
    for item in facts.verifications:
        problems = list(item.problems)
        if compiler_problem:
            problems.append(compiler_problem)
        values: dict[str, JsonValue] = {
            "match": item.match.value,
            "chain_metadata_ipfs": item.chain_metadata_cid,
            "build_metadata_ipfs": item.build_metadata_cid,
            "chain_compiler": item.chain_compiler,
            "build_compiler": recompiled.compiler_version,
            "creation_code_match": item.creation_code_match,
            "constructor_args": item.constructor.args if item.constructor else None,
            "immutables": item.immutables,
            "sources_differing_from_manifest": list(item.sources_differing),
        }
        passed = item.match in accepted and not item.problems and not compiler_problem
        if not passed:
            reasons = [] if item.match in accepted else [_describe_match(item)]
            detail = "; ".join(reasons + problems)
            values["problem"] = f"{item.name} at {item.address}: {detail}"
        evidence = Evidence(item.deploy_block, item.deploy_tx, item.address, values)
        checks.append(
            make_check(
                f"source.{item.name}",
                f"{item.name}: deployed code is the published source",
                [evidence] if not passed else [],
                ok_message=f"{item.match.value} match at {item.address}",
                fail_message="{first}",
                context=[evidence],
            )
        )
    return checks


def _describe_match(item: ContractVerification) -> str:
    if item.match == CodeMatch.NO_CODE:
        return "no code at the address"
    if item.match == CodeMatch.PARTIAL:
        return (
            "partial match: same executable code, different metadata "
            f"(chain {item.chain_metadata_cid}, published {item.build_metadata_cid})"
        )
    differing = ", ".join(item.sources_differing) or "none recorded"
    return (
        "bytecode mismatch: the deployed code was not built from the published source "
        f"(sources differing from the manifest: {differing})"
    )
