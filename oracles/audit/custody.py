"""`invariant.custody`: every token the clearing house holds has a way out.

A Funded cycle's tokens leave by `claim`, a Defaulted cycle's by `refund`, and a
Finalized cycle's deposits wait for one or the other; no other status ever holds any.
So the clearing house's settlement-token balance (`balanceOf`, read at the audited
block from the token the clearing house names) must equal

    Σ Funded (funded − claimed) + Σ Defaulted (funded − refunded) + Σ Finalized funded

over the replayed cycles. A larger balance is money no cycle accounts for (a transfer
straight to the contract: stuck for good); a smaller one is money some cycle is owed.

On a partial replay the cycles proposed before the window are not all known, so the
check compares flows instead: the balance now minus the balance just before the window
equals the window's fundings less its claims and refunds.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

from eth_abi.abi import decode as abi_decode
from eth_abi.abi import encode as abi_encode
from eth_utils.address import to_checksum_address
from eth_utils.crypto import keccak

from node_api.kernel.chain import ContractName, CycleStatus
from node_api.kernel.money import FEN_ZERO, Fen
from oracles.audit.audited import AuditedContracts
from oracles.audit.chain_reader import ChainReader
from oracles.audit.checks import CheckResult, Evidence, JsonValue, make_check
from oracles.audit.replay_state import CycleReplay, ReplayedState
from oracles.audit.view_calls import run_views
from oracles.tx_sender import RpcFailure

CHECK_ID: Final = "invariant.custody"
TITLE: Final = "Every token the clearing house holds belongs to a cycle it can leave by"
BALANCE_OF: Final = keccak(text="balanceOf(address)")[:4]


def held_fen(cycle: CycleReplay) -> Fen:
    """What the clearing house holds for `cycle` by its status's rule (see the module)."""
    if cycle.status == CycleStatus.FUNDED:
        return Fen(cycle.funded_fen - cycle.claimed_fen)
    if cycle.status == CycleStatus.DEFAULTED:
        return Fen(cycle.funded_fen - cycle.refunded_fen)
    if cycle.status == CycleStatus.FINALIZED:
        return cycle.funded_fen
    return FEN_ZERO


def _status_label(status: int) -> str:
    try:
        return CycleStatus(status).label
    except ValueError:
        return str(status)


def _balances(
    reader: ChainReader, contracts: AuditedContracts, blocks: Sequence[int | None]
) -> tuple[str, list[int | None]]:
    """(the settlement token's address, the clearing house's balance at each block)."""
    house = contracts.addresses[ContractName.CLEARING_HOUSE]
    (token_out,) = run_views(
        reader, contracts, [(ContractName.CLEARING_HOUSE, "settlementToken", [])]
    )
    if token_out is None:
        return "", [None for _ in blocks]
    token = to_checksum_address(str(token_out[0]))
    data = BALANCE_OF + abi_encode(["address"], [house])
    balances: list[int | None] = []
    for block in blocks:
        (result,) = reader.call_many([(token, data)], block)
        balances.append(
            None if isinstance(result, RpcFailure) else int(abi_decode(["uint256"], result)[0])
        )
    return token, balances


def _by_status(state: ReplayedState) -> dict[str, int]:
    totals: dict[str, int] = {}
    for cycle in state.cycles.values():
        label = _status_label(cycle.status)
        totals[label] = totals.get(label, 0) + held_fen(cycle)
    return totals


def _stray_holdings(state: ReplayedState) -> list[str]:
    """Cycles that hold tokens in a status with no way out (or pay out more than funded)."""
    problems = []
    for cycle in state.cycles.values():
        paid_out = cycle.claimed_fen + cycle.refunded_fen
        if cycle.status not in (CycleStatus.FUNDED, CycleStatus.DEFAULTED, CycleStatus.FINALIZED):
            if cycle.funded_fen or paid_out:
                problems.append(
                    f"cycle {cycle.cycle_id} ({_status_label(cycle.status)}) funded "
                    f"{cycle.funded_fen} fen and paid out {paid_out} fen"
                )
        elif held_fen(cycle) < 0:
            problems.append(
                f"cycle {cycle.cycle_id} ({_status_label(cycle.status)}) paid out more than "
                f"funded: funded {cycle.funded_fen} fen, claimed {cycle.claimed_fen}, "
                f"refunded {cycle.refunded_fen}"
            )
    return problems


def _window_flows(state: ReplayedState) -> int:
    """The replayed window's fundings less its claims and refunds, in fen."""
    funded = sum(amount for c in state.cycles.values() for amount, _ in c.fundings.values())
    claimed = sum(amount for c in state.cycles.values() for amount, _p, _r in c.claims.values())
    refunded = sum(amount for c in state.cycles.values() for amount, _p, _r in c.refunds.values())
    return funded - claimed - refunded


def check_custody(
    reader: ChainReader, contracts: AuditedContracts, state: ReplayedState, from_block: int
) -> CheckResult:
    """The `invariant.custody` check (see the module): reads the balances, then judges."""
    if not contracts.has(ContractName.CLEARING_HOUSE):
        return make_check(
            CHECK_ID, TITLE, [], ok_message="no clearing house in the deployment", fail_message=""
        )
    blocks: list[int | None] = [None, from_block - 1] if state.partial else [None]
    token, balances = _balances(reader, contracts, blocks)
    house = contracts.addresses[ContractName.CLEARING_HOUSE]
    before = balances[1] if state.partial else None
    return judge_custody(state, house, token, balances[0], before, from_block)


def judge_custody(
    state: ReplayedState,
    house: str,
    token: str,
    balance: int | None,
    balance_before: int | None,
    from_block: int,
) -> CheckResult:
    """`invariant.custody` from the clearing house's token balance now (and, on a partial
    replay, just before the window at `from_block`); None: the balance could not be read."""
    by_status = _by_status(state)
    values: dict[str, JsonValue] = {"token": token, "balance_fen": balance}
    expected: int | None
    if state.partial:
        flows = _window_flows(state)
        expected = None if balance_before is None else balance_before + flows
        values |= {"balance_before_window_fen": balance_before, "window_flows_fen": flows}
        accounted = f"its balance before block {from_block} plus the window's flows make"
    else:
        expected = sum(by_status.values())
        values |= {"held_by_status_fen": dict(by_status)}
        accounted = "its cycles account for"
    values["expected_fen"] = expected
    problems = _stray_holdings(state)
    if balance is None or expected is None:
        problems.insert(0, f"the balance of {house} in token {token or '?'} could not be read")
    elif balance != expected:
        difference = balance - expected
        problems.insert(
            0,
            f"the clearing house holds {balance} fen, but {accounted} {expected} fen "
            f"({'+' if difference > 0 else ''}{difference} fen "
            f"{'with no way out' if difference > 0 else 'missing'})",
        )
    failures = [Evidence(address=house, values={**values, "problem": p}) for p in problems]
    return make_check(
        CHECK_ID,
        TITLE,
        failures,
        ok_message=f"the clearing house holds {balance} fen, all of it owed to claims, "
        "refunds or the deposits of finalized cycles",
        fail_message="{first}",
        context=[Evidence(address=house, values=values)],
    )
