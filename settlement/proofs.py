"""A partner's entries of a cycle with their Merkle proofs, served from the stored tree.

The tree of a cycle is stored once, as one blob (`settlement_cycle_tree`); a proof is cut
from it on demand in microseconds, so nothing stores one proof per entry. Entry ids are
1..n in the order the tree was built, so entry `i` is leaf position `i - 1`. Before an
entry is served its leaf is checked against the tree: a stored entry that no longer
matches the tree it was frozen with is refused rather than served with a proof that
cannot verify.

Leaves are salted (`settlement.salts`) and the salts are not stored: each entry read back
is salted again from its partner's secret, which the caller passes as that partner's
`PartnerSalts` (so serving one partner never touches another partner's secret).

The JSON form of a proven entry (`to_json` / `from_json`) is what the partner API sends
and what `creditnet verify --file` reads: `cycle_id`, `entry_id`, `partner_id`, `kind`,
`amount_fen`, `salt` (0x-hex, 32 bytes: the entry's private leaf salt) and `proof` (0x-hex
siblings, leaf to root).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Iterator
from typing import NotRequired, TypedDict

from sqlalchemy import and_, select
from sqlalchemy.engine import Connection

from node_api.kernel.chain import EntryKind
from node_api.kernel.errors import ConflictError, CreditNetValueError, NotFoundError
from node_api.kernel.money import Fen
from settlement.entries import SettlementEntry
from settlement.merkle import MerkleTree
from settlement.salts import PartnerSalts
from settlement.tables import entry_table, tree_table
from settlement.verify_core import ProvenEntry

PAGE_LIMIT_MAX = 5_000
TREE_CACHE_SIZE = 2


class _TreeCache:
    """The last few trees loaded, by (cycle id, root): a stored tree never changes."""

    def __init__(self, size: int) -> None:
        self._size = size
        self._trees: OrderedDict[tuple[int, bytes], MerkleTree] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: tuple[int, bytes]) -> MerkleTree | None:
        with self._lock:
            tree = self._trees.get(key)
            if tree is not None:
                self._trees.move_to_end(key)
            return tree

    def put(self, key: tuple[int, bytes], tree: MerkleTree) -> None:
        with self._lock:
            self._trees[key] = tree
            while len(self._trees) > self._size:
                self._trees.popitem(last=False)


_TREES = _TreeCache(TREE_CACHE_SIZE)


def fetch_tree(conn: Connection, cycle_id: int, root: bytes) -> MerkleTree:
    """The stored tree of a cycle (cached); ConflictError when its root is not `root`."""
    key = (cycle_id, root)
    tree = _TREES.get(key)
    if tree is not None:
        return tree
    blob = conn.execute(
        select(tree_table.c.tree_blob).where(tree_table.c.cycle_id == cycle_id)
    ).scalar_one_or_none()
    if blob is None:
        raise NotFoundError(f"cycle {cycle_id} has no stored tree", field="cycle_id")
    tree = MerkleTree.from_bytes(bytes(blob))
    if tree.root != root:
        raise ConflictError(
            f"the stored tree of cycle {cycle_id} does not have the cycle's root",
            field="cycle_id",
            code="tree_mismatch",
        )
    _TREES.put(key, tree)
    return tree


def fetch_partner_entries(
    conn: Connection,
    cycle_id: int,
    partner_id: int,
    salts: PartnerSalts,
    *,
    after_entry_id: int,
    limit: int,
) -> list[SettlementEntry]:
    """A page of one partner's entries of a cycle, by entry id, after `after_entry_id`,
    salted with `salts` (that partner's: `LeafSalts.for_partner(partner_id)`)."""
    if not 0 < limit <= PAGE_LIMIT_MAX:
        raise CreditNetValueError(f"limit must be in 1..{PAGE_LIMIT_MAX}", field="limit")
    table = entry_table
    rows = conn.execute(
        select(table.c.entry_id, table.c.kind, table.c.amount_fen, table.c.source_event_id)
        .where(
            and_(
                table.c.cycle_id == cycle_id,
                table.c.partner_id == partner_id,
                table.c.entry_id > after_entry_id,
            )
        )
        .order_by(table.c.entry_id)
        .limit(limit)
    )
    salt = salts.salt
    return [
        SettlementEntry(
            cycle_id,
            int(entry_id),
            partner_id,
            EntryKind(int(kind)),
            Fen(int(amount_fen)),
            salt(cycle_id, int(entry_id)),
            "" if source is None else str(source),
        )
        for entry_id, kind, amount_fen, source in rows
    ]


def prove(tree: MerkleTree, entry: SettlementEntry) -> ProvenEntry:
    """The entry with its proof, after checking its leaf is the tree's leaf at its place."""
    position = entry.entry_id - 1
    if not 0 <= position < tree.leaf_count or tree.leaf(position) != entry.leaf_hash():
        raise ConflictError(
            f"stored entry {entry.entry_id} of cycle {entry.cycle_id} does not match its tree",
            field="entry_id",
            code="entry_tree_mismatch",
        )
    return ProvenEntry(entry, tuple(tree.proof(position)))


def iterate_proven_entries(
    conn: Connection,
    cycle_id: int,
    root: bytes,
    partner_id: int,
    salts: PartnerSalts,
    *,
    page_size: int = 2_000,
) -> Iterator[ProvenEntry]:
    """Every entry of a partner in a cycle with its proof, page by page (for streaming);
    `salts` are that partner's."""
    tree = fetch_tree(conn, cycle_id, root)
    after = 0
    while True:
        page = fetch_partner_entries(
            conn, cycle_id, partner_id, salts, after_entry_id=after, limit=page_size
        )
        for entry in page:
            yield prove(tree, entry)
        if len(page) < page_size:
            return
        after = page[-1].entry_id


class ProvenEntryJson(TypedDict):
    """The exchange form of a proven entry (see module doc); `kind_name` is informative and
    not read back."""

    cycle_id: int
    entry_id: int
    partner_id: int
    kind: int
    kind_name: NotRequired[str]
    amount_fen: Fen
    salt: str
    proof: list[str]


def to_json(proven: ProvenEntry) -> ProvenEntryJson:
    """The exchange form of a proven entry (see module doc)."""
    entry = proven.entry
    return {
        "cycle_id": entry.cycle_id,
        "entry_id": entry.entry_id,
        "partner_id": entry.partner_id,
        "kind": int(entry.kind),
        "kind_name": entry.kind.name,
        "amount_fen": entry.amount_fen,
        "salt": "0x" + entry.salt.hex(),
        "proof": ["0x" + sibling.hex() for sibling in proven.proof],
    }


def _hex_bytes(value: object, field: str) -> bytes:
    if not isinstance(value, str) or not value.startswith("0x"):
        raise CreditNetValueError(f"{field} must be 0x-hex", field=field)
    try:
        return bytes.fromhex(value[2:])
    except ValueError:
        raise CreditNetValueError(f"{field} must be 0x-hex", field=field) from None


def from_json(item: ProvenEntryJson) -> ProvenEntry:
    """Parse the exchange form as received (checked: CreditNetValueError naming the bad
    field)."""
    try:
        entry = SettlementEntry(
            int(item["cycle_id"]),
            int(item["entry_id"]),
            int(item["partner_id"]),
            EntryKind(int(item["kind"])),
            Fen(int(item["amount_fen"])),
            _hex_bytes(item["salt"], "salt"),
        )
        proof = tuple(_hex_bytes(sibling, "proof") for sibling in item["proof"])
    except KeyError as missing:
        raise CreditNetValueError(f"entry lacks {missing}", field=str(missing)) from None
    except (TypeError, ValueError) as error:
        if isinstance(error, CreditNetValueError):
            raise
        raise CreditNetValueError(f"malformed entry: {error}", field="entries") from None
    return ProvenEntry(entry, proof)
