"""Funding and claiming a finalized cycle, and disputing a wrong one (DESIGN.md, flow 7).

After the dispute window a cycle is finalized; every net debtor then funds its position
(the ClearingHouse pulls the settlement token from whoever calls `fund`), and once all
have funded every net creditor's position can be claimed to its payout address.

- A partner acts for itself with its payout key: `SettlementWallet.fund`, `.claim`,
  `.dispute`, against nothing but the chain RPC and the ClearingHouse address.
- The node acts for the lender (`settle_lender_positions`): when the mirror shows the
  lender's cycle funded it queues the lender's claim in the outbox; when the lender is a
  net debtor of a finalized cycle it queues the treasury's funding in the outbox (an
  ERC-20 approval of exactly the debt, then `fund`), which the treasury's own relayer
  sends: retried, exactly once per business key, and visible on `/v1/oracles/status`.
- Member default (`watch_defaults`): when a finalized cycle is still unfunded at its
  funding deadline, the node declares it defaulted on-chain, naming the debtors that did
  not fund, and triggers the refund of every debtor that did (the tokens go only to each
  debtor's payout address). The books then settle the date again
  (`settlement.resettle`). Any partner can do the same with `SettlementWallet`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from eth_account.signers.local import LocalAccount
from sqlalchemy import and_, select
from web3 import Web3
from web3.types import TxParams

from node_api.kernel.chain import CycleStatus, PartnerRole
from node_api.kernel.db import Database
from node_api.kernel.money import Fen
from node_api.kernel.outbox import (
    CycleClaim,
    CycleDefaultDeclaration,
    CycleFundApproval,
    CycleFunding,
    CycleRefund,
    enqueue,
    fetch_item,
)
from oracles.chain import send_transaction
from oracles.tables import CHAIN_CYCLE_TABLE, CHAIN_POSITION_TABLE
from settlement.clearing_calls import (
    APPROVE,
    BALANCE_OF,
    CLAIM,
    DECLARE_DEFAULT,
    DISPUTE,
    DISPUTE_GAS,
    FUND,
    GET_CYCLE,
    GET_PARTNER,
    GET_POSITION,
    MINT,
    REFUND,
    SETTLEMENT_TOKEN,
    CycleView,
    PositionView,
)
from settlement.tables import partner_table

logger = logging.getLogger(__name__)

FUND_GAS = 200_000
CLAIM_GAS = 200_000
APPROVE_GAS = 100_000


class SettlementWallet:
    """One account acting on the ClearingHouse: a partner's payout key, or the lender's
    treasury. Reads go through `eth_call`; writes are signed locally."""

    def __init__(self, w3: Web3, account: LocalAccount, clearing_house: str) -> None:
        self.w3 = w3
        self.account = account
        self.clearing_house = Web3.to_checksum_address(clearing_house)
        self._token: str | None = None

    @property
    def address(self) -> str:
        return str(self.account.address)

    def _call(self, to: str, data: bytes) -> bytes:
        params: TxParams = {"to": Web3.to_checksum_address(to), "data": data}
        return bytes(self.w3.eth.call(params))

    def _send(self, to: str, data: bytes, gas: int) -> str:
        params: TxParams = {"to": Web3.to_checksum_address(to), "data": data, "gas": gas}
        receipt = send_transaction(self.w3, self.account, params)
        return str(receipt["transactionHash"].to_0x_hex())

    @property
    def token(self) -> str:
        """The settlement token the ClearingHouse pays in."""
        if self._token is None:
            (address,) = SETTLEMENT_TOKEN.decode(
                self._call(self.clearing_house, SETTLEMENT_TOKEN.encode())
            )
            self._token = str(Web3.to_checksum_address(address))
        return self._token

    def get_cycle(self, cycle_id: int) -> CycleView:
        return CycleView.decode(self._call(self.clearing_house, GET_CYCLE.encode(cycle_id)))

    def get_position(self, cycle_id: int, partner_id: int) -> PositionView:
        output = self._call(self.clearing_house, GET_POSITION.encode(cycle_id, partner_id))
        return PositionView.decode(output)

    def get_partner_payout(self, partner_id: int) -> str | None:
        """The partner's registered payout address (checksummed), or None if unregistered."""
        output = self._call(self.clearing_house, GET_PARTNER.encode(partner_id))
        payout, _role, _active, registered = GET_PARTNER.decode(output)
        return str(Web3.to_checksum_address(payout)) if registered else None

    def fetch_balance_fen(self, address: str | None = None) -> int:
        """Settlement-token balance in fen (of this wallet unless `address` is given)."""
        owner = Web3.to_checksum_address(address or self.address)
        (balance,) = BALANCE_OF.decode(self._call(self.token, BALANCE_OF.encode(owner)))
        return int(balance)

    def fund(self, cycle_id: int, partner_id: int) -> str:
        """Pay a net debtor's position: approve exactly |position| and call `fund`."""
        position = self.get_position(cycle_id, partner_id)
        amount_fen = -position.net_position_fen
        self._send(self.token, APPROVE.encode(self.clearing_house, amount_fen), APPROVE_GAS)
        return self._send(self.clearing_house, FUND.encode(cycle_id, partner_id), FUND_GAS)

    def claim(self, cycle_id: int, partner_id: int) -> str:
        """Pay a net creditor's position to its payout address (anyone may trigger it)."""
        return self._send(self.clearing_house, CLAIM.encode(cycle_id, partner_id), CLAIM_GAS)

    def dispute(self, cycle_id: int, partner_id: int, reason: bytes) -> str:
        """Dispute a proposed cycle as the partner's payout address (32-byte reason)."""
        return self._send(
            self.clearing_house, DISPUTE.encode(cycle_id, partner_id, reason), DISPUTE_GAS
        )

    def declare_default(self, cycle_id: int, defaulters: list[int]) -> str:
        """Declare a finalized cycle defaulted after its funding deadline (anyone may)."""
        gas = 100_000 + 10_000 * len(defaulters)
        return self._send(
            self.clearing_house, DECLARE_DEFAULT.encode(cycle_id, sorted(defaulters)), gas
        )

    def refund(self, cycle_id: int, partner_id: int) -> str:
        """Return a funded debtor's deposit from a defaulted cycle to its payout address."""
        return self._send(self.clearing_house, REFUND.encode(cycle_id, partner_id), CLAIM_GAS)

    def fetch_chain_time(self) -> int:
        """The latest block's timestamp, unix seconds (the contracts' clock)."""
        return int(self.w3.eth.get_block("latest")["timestamp"])

    def mint(self, to: str, amount_fen: int) -> str:
        """Mint settlement tokens (only the token's minter; local networks)."""
        return self._send(
            self.token, MINT.encode(Web3.to_checksum_address(to), amount_fen), 100_000
        )


@dataclass
class LenderActions:
    """What one pass of `settle_lender_positions` did, by cycle id."""

    claims_queued: list[int] = field(default_factory=list)
    fundings_queued: list[int] = field(default_factory=list)


def _lender_id(database: Database) -> int | None:
    with database.engine.connect() as conn:
        value = conn.execute(
            select(partner_table.c.id).where(partner_table.c.role == int(PartnerRole.LENDER))
        ).scalar_one_or_none()
    return None if value is None else int(value)


def _open_lender_positions(database: Database, lender_id: int) -> list[tuple[int, int, Fen]]:
    """(cycle id, on-chain status, net position fen) of the lender's unsettled positions
    in cycles the mirror shows finalized or funded."""
    cycles, positions = CHAIN_CYCLE_TABLE, CHAIN_POSITION_TABLE
    statement = (
        select(cycles.c.cycle_id, cycles.c.status, positions.c.net_position_fen)
        .join(positions, positions.c.cycle_id == cycles.c.cycle_id)
        .where(
            and_(
                positions.c.partner_id == lender_id,
                positions.c.settled_fen == 0,
                positions.c.net_position_fen != 0,
                cycles.c.status.in_([int(CycleStatus.FINALIZED), int(CycleStatus.FUNDED)]),
            )
        )
        .order_by(cycles.c.cycle_id)
    )
    with database.engine.connect() as conn:
        return [(int(c), int(s), Fen(int(n))) for c, s, n in conn.execute(statement)]


def settle_lender_positions(
    database: Database, treasury: SettlementWallet | None = None
) -> LenderActions:
    """Queue the lender's claims of funded cycles and its fundings of finalized ones.

    Reads the indexer's mirror, so it acts only on what the chain has confirmed. Each
    claim and funding is queued once (the outbox's business key); a funding is queued
    only when the treasury is configured and the chain does not show the debt settled
    already, and its relayer checks the chain again before it sends.
    """
    actions = LenderActions()
    lender_id = _lender_id(database)
    if lender_id is None:
        return actions
    for cycle_id, status, net_fen in _open_lender_positions(database, lender_id):
        if net_fen > 0 and status == CycleStatus.FUNDED:
            claim = CycleClaim(cycle_id, lender_id)
            with database.session() as session:
                if fetch_item(session, claim.business_key) is None:
                    enqueue(session, claim)
                    actions.claims_queued.append(cycle_id)
        elif net_fen < 0 and status == CycleStatus.FINALIZED and treasury is not None:
            debt_fen = Fen(-net_fen)
            funding = CycleFunding(cycle_id, lender_id, debt_fen)
            with database.session() as session:
                if fetch_item(session, funding.business_key) is not None:
                    continue
            if treasury.get_position(cycle_id, lender_id).settled:
                continue
            approval = CycleFundApproval(cycle_id, lender_id, debt_fen, treasury.clearing_house)
            with database.session() as session:
                enqueue(session, approval)
                enqueue(session, funding)
            actions.fundings_queued.append(cycle_id)
            logger.info("lender funding queued", extra={"cycle_id": cycle_id})
    return actions


@dataclass
class DefaultActions:
    """What one pass of `watch_defaults` queued, by cycle id."""

    defaults_queued: list[int] = field(default_factory=list)
    refunds_queued: list[tuple[int, int]] = field(default_factory=list)


def _debtor_positions(database: Database, status: CycleStatus) -> dict[int, list[tuple[int, int]]]:
    """(partner id, settled fen) of every net debtor, by cycle, in mirror cycles of `status`."""
    cycles, positions = CHAIN_CYCLE_TABLE, CHAIN_POSITION_TABLE
    statement = (
        select(positions.c.cycle_id, positions.c.partner_id, positions.c.settled_fen)
        .join(cycles, cycles.c.cycle_id == positions.c.cycle_id)
        .where(and_(cycles.c.status == int(status), positions.c.net_position_fen < 0))
        .order_by(positions.c.cycle_id, positions.c.partner_id)
    )
    found: dict[int, list[tuple[int, int]]] = {}
    with database.engine.connect() as conn:
        for cycle_id, partner_id, settled_fen in conn.execute(statement):
            found.setdefault(int(cycle_id), []).append((int(partner_id), int(settled_fen)))
    return found


def _enqueue_once(database: Database, message: CycleDefaultDeclaration | CycleRefund) -> bool:
    with database.session() as session:
        if fetch_item(session, message.business_key) is not None:
            return False
        enqueue(session, message)
    return True


def watch_defaults(database: Database, wallet: SettlementWallet) -> DefaultActions:
    """Declare every finalized cycle past its funding deadline defaulted, and queue the
    refund of every debtor that funded a defaulted cycle (module doc). Reads the indexer's
    mirror and, for a cycle still unfunded, the chain's deadline and clock; each action is
    queued once (the outbox's business key) and checked on-chain again by the relayer."""
    actions = DefaultActions()
    unfunded_cycles = _debtor_positions(database, CycleStatus.FINALIZED)
    now_s = wallet.fetch_chain_time() if unfunded_cycles else 0
    for cycle_id, debtors in unfunded_cycles.items():
        defaulters = [partner for partner, settled_fen in debtors if settled_fen == 0]
        if not defaulters or now_s < wallet.get_cycle(cycle_id).funding_deadline:
            continue
        if _enqueue_once(database, CycleDefaultDeclaration(cycle_id, defaulters)):
            actions.defaults_queued.append(cycle_id)
            logger.warning(
                "settlement cycle unfunded at its deadline; default queued",
                extra={"cycle_id": cycle_id, "defaulters": defaulters},
            )
    for cycle_id, debtors in _debtor_positions(database, CycleStatus.DEFAULTED).items():
        for partner_id, settled_fen in debtors:
            if settled_fen > 0 and _enqueue_once(database, CycleRefund(cycle_id, partner_id)):
                actions.refunds_queued.append((cycle_id, partner_id))
    return actions
