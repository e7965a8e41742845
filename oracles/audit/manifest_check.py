"""`deployment.manifest`: the manifest tells the truth about how the contracts were deployed.

The chain id is the RPC's; each deploy transaction was sent by the manifest's deployer,
succeeded and created the recorded address in the recorded block, with the recorded
constructor arguments at the end of its input; each recorded post-deploy call is a
successful transaction from the deployer to that contract with exactly that calldata.
"""

from __future__ import annotations

from typing import Any

from oracles.audit.chain_reader import ChainReader
from oracles.audit.checks import CheckResult, Evidence, make_check
from oracles.chain import RpcReceipt, RpcTransaction
from oracles.manifest import DeployedContract, Manifest, PostDeployRecord


def _same_address(left: Any, right: str) -> bool:
    return isinstance(left, str) and left.lower() == right.lower()


def _deploy_failures(
    name: str,
    deployed: DeployedContract,
    deployer: str,
    tx: RpcTransaction | None,
    receipt: RpcReceipt | None,
) -> list[str]:
    if tx is None or receipt is None:
        return [f"{name}: deploy transaction {deployed.deploy_tx} not found"]
    problems = []
    if int(receipt["status"], 16) != 1:
        problems.append(f"{name}: deploy transaction reverted")
    if not _same_address(receipt.get("contractAddress"), deployed.address):
        problems.append(
            f"{name}: deploy transaction created {receipt.get('contractAddress')}, "
            f"not {deployed.address}"
        )
    if int(receipt["blockNumber"], 16) != deployed.deploy_block:
        problems.append(f"{name}: deployed in block {int(receipt['blockNumber'], 16)}")
    if not _same_address(tx.get("from"), deployer):
        problems.append(f"{name}: deployed by {tx.get('from')}, not the manifest's deployer")
    if not str(tx["input"]).lower().endswith(deployed.constructor_args[2:].lower()):
        problems.append(f"{name}: constructor arguments differ from the manifest's")
    return problems


def _call_failures(
    call: PostDeployRecord,
    address: str,
    deployer: str,
    tx: RpcTransaction | None,
    receipt: RpcReceipt | None,
) -> list[str]:
    what = f"{call.contract}.{call.function} ({call.tx})"
    if tx is None or receipt is None:
        return [f"{what}: transaction not found"]
    problems = []
    if int(receipt["status"], 16) != 1:
        problems.append(f"{what}: reverted")
    if not _same_address(tx.get("to"), address):
        problems.append(f"{what}: sent to {tx.get('to')}")
    if not _same_address(tx.get("from"), deployer):
        problems.append(f"{what}: sent by {tx.get('from')}")
    if str(tx["input"]).lower() != call.calldata.lower():
        problems.append(f"{what}: calldata differs from the manifest's")
    if int(receipt["blockNumber"], 16) != call.block:
        problems.append(f"{what}: mined in block {int(receipt['blockNumber'], 16)}")
    return problems


def check_manifest(reader: ChainReader, manifest: Manifest, chain_id: int) -> CheckResult:
    """The `deployment.manifest` check."""
    failures: list[Evidence] = []
    if chain_id != manifest.chain_id:
        failures.append(
            Evidence(
                values={
                    "problem": f"manifest is for chain {manifest.chain_id}, "
                    f"the RPC serves chain {chain_id}"
                }
            )
        )
    hashes = [c.deploy_tx for c in manifest.contracts.values()]
    hashes += [call.tx for call in manifest.post_deploy_calls]
    txs, receipts = reader.fetch_transactions(hashes), reader.fetch_receipts(hashes)
    for name, deployed in manifest.contracts.items():
        tx_hash = deployed.deploy_tx
        for problem in _deploy_failures(
            name, deployed, manifest.deployer, txs.get(tx_hash), receipts.get(tx_hash)
        ):
            failures.append(
                Evidence(deployed.deploy_block, tx_hash, deployed.address, {"problem": problem})
            )
    for call in manifest.post_deploy_calls:
        contract = manifest.contracts.get(call.contract)
        address = contract.address if contract is not None else ""
        for problem in _call_failures(
            call, address, manifest.deployer, txs.get(call.tx), receipts.get(call.tx)
        ):
            failures.append(Evidence(call.block, call.tx, address, {"problem": problem}))
    context = [
        Evidence(d.deploy_block, d.deploy_tx, d.address, {"contract": name})
        for name, d in manifest.contracts.items()
    ]
    return make_check(
        "deployment.manifest",
        "The manifest matches the deployment transactions on-chain",
        failures,
        ok_message=(
            f"{len(manifest.contracts)} deployments and {len(manifest.post_deploy_calls)} "
            "post-deploy calls found as recorded"
        ),
        fail_message="{count} manifest discrepancies; first: {first}",
        context=context,
    )
