// Verification of a partner's entries in the browser, trusting neither the node nor its verifier:
// the cycle's root, status and the partner's position are read from the chain's JSON-RPC (at one
// block), and each downloaded entry's leaf and proof are recomputed with @openzeppelin/merkle-tree
// using the leaf encoding the node publishes (GET /v1/contracts). The node's own verification
// result is never used. Once the entries and the contracts' description are downloaded, this needs
// only the chain's RPC (the node may be stopped).
import { StandardMerkleTree } from "@openzeppelin/merkle-tree";
import { createPublicClient, http, type Abi, type Address, type Hex } from "viem";

export interface Entry {
  cycle_id: number;
  entry_id: number;
  partner_id: number;
  kind: number;
  kind_name: string;
  amount_fen: number;
  salt: Hex;
  proof: Hex[];
}

export interface StreamHeader {
  cycle_id: number;
  partner_id: number;
  entries_root: Hex;
  net_position_fen: number;
  entry_count: number;
}

export interface Download {
  header: StreamHeader;
  entries: Entry[];
  text: string;
}

/** The NDJSON stream of GET /v1/partner/cycles/{id}/entries.ndjson: a header, then one entry per line. */
export function parseNdjson(text: string): Download {
  const lines = text.split("\n").filter((line) => line.trim() !== "");
  if (lines.length === 0) throw new Error("empty download");
  const header = JSON.parse(lines[0]) as StreamHeader;
  const entries = lines.slice(1).map((line) => JSON.parse(line) as Entry);
  return { header, entries, text };
}

export interface Contracts {
  clearingHouse: Address;
  abi: Abi;
  leafTypes: string[];
  statusNames: Record<number, string>;
}

interface ContractsJson {
  contracts: { name: string; address: string | null; abi: Abi }[];
  leaves: { name: string; solidity_types: string[] }[];
  cycle_statuses: { code: number; name: string }[];
}

/** What verification needs of GET /v1/contracts: the ClearingHouse, its ABI, the leaf encoding. */
export function readContracts(published: ContractsJson): Contracts {
  const house = published.contracts.find((item) => item.name === "ClearingHouse");
  const leaf = published.leaves.find((item) => item.name === "settlement_entry");
  if (!house?.address || !leaf) throw new Error("the node publishes no deployed ClearingHouse");
  const statusNames: Record<number, string> = {};
  for (const status of published.cycle_statuses) statusNames[status.code] = status.name;
  return {
    clearingHouse: house.address as Address,
    abi: house.abi,
    leafTypes: leaf.solidity_types,
    statusNames,
  };
}

export interface ChainFacts {
  block: bigint;
  root: Hex;
  status: number;
  statusName: string;
  netPositionFen: bigint;
  listed: boolean;
  disputed: boolean;
  settled: boolean;
  refunded: boolean;
  fundedFen: bigint;
  claimedFen: bigint;
}

// A root can no longer change once the cycle is finalized (or funded after that).
const FINAL_STATUSES = new Set(["finalized", "funded"]);

/** The cycle and the partner's position as the ClearingHouse holds them, read at one block. */
export async function readChain(
  rpcUrl: string,
  contracts: Contracts,
  cycleId: number,
  partnerId: number,
): Promise<ChainFacts> {
  const client = createPublicClient({ transport: http(rpcUrl, { retryCount: 0, timeout: 10_000 }) });
  const block = await client.getBlockNumber();
  const cycle = (await client.readContract({
    address: contracts.clearingHouse,
    abi: contracts.abi,
    functionName: "getCycle",
    args: [BigInt(cycleId)],
    blockNumber: block,
  })) as { entriesRoot: Hex; status: number; fundedFen: bigint; claimedFen: bigint };
  const position = (await client.readContract({
    address: contracts.clearingHouse,
    abi: contracts.abi,
    functionName: "getPosition",
    args: [BigInt(cycleId), partnerId],
    blockNumber: block,
  })) as readonly [bigint, boolean, boolean, boolean, boolean];
  const status = Number(cycle.status);
  return {
    block,
    root: cycle.entriesRoot,
    status,
    statusName: contracts.statusNames[status] ?? String(status),
    netPositionFen: position[0],
    listed: position[1],
    disputed: position[2],
    settled: position[3],
    refunded: position[4],
    fundedFen: BigInt(cycle.fundedFen),
    claimedFen: BigInt(cycle.claimedFen),
  };
}

export type FailureReason = "proof" | "cycle" | "partner" | "duplicate";

export interface EntryResult {
  entry: Entry;
  verified: boolean;
  reason: FailureReason | null;
}

export interface Outcome {
  chain: ChainFacts;
  results: EntryResult[];
  verifiedCount: number;
  sumFen: bigint;
  sumMatches: boolean;
  rootFinal: boolean;
  statedRootMatches: boolean;
  ok: boolean;
}

function leafOf(entry: Entry): unknown[] {
  return [
    BigInt(entry.cycle_id),
    BigInt(entry.entry_id),
    BigInt(entry.partner_id),
    BigInt(entry.kind),
    BigInt(entry.amount_fen),
    entry.salt,
  ];
}

/** Each entry against the chain's root; the whole: every entry proves, the sum equals the chain's
 * position, the root is final, and the root the node stated is the chain's. */
export function verifyEntries(
  download: Download,
  chain: ChainFacts,
  leafTypes: string[],
  cycleId: number,
  partnerId: number,
): Outcome {
  const seen = new Set<number>();
  let sumFen = 0n;
  const results = download.entries.map((entry): EntryResult => {
    sumFen += BigInt(entry.amount_fen);
    let reason: FailureReason | null = null;
    if (entry.cycle_id !== cycleId) reason = "cycle";
    else if (entry.partner_id !== partnerId) reason = "partner";
    else if (seen.has(entry.entry_id)) reason = "duplicate";
    else {
      let proves = false;
      try {
        proves = StandardMerkleTree.verify(chain.root, leafTypes, leafOf(entry), entry.proof);
      } catch {
        proves = false;
      }
      if (!proves) reason = "proof";
    }
    seen.add(entry.entry_id);
    return { entry, verified: reason === null, reason };
  });
  const verifiedCount = results.filter((result) => result.verified).length;
  const sumMatches = sumFen === chain.netPositionFen;
  const rootFinal = FINAL_STATUSES.has(chain.statusName.toLowerCase());
  const statedRootMatches = download.header.entries_root.toLowerCase() === chain.root.toLowerCase();
  return {
    chain,
    results,
    verifiedCount,
    sumFen,
    sumMatches,
    rootFinal,
    statedRootMatches,
    ok: verifiedCount === results.length && results.length > 0 && sumMatches && rootFinal && statedRootMatches,
  };
}

/** The entries as CSV (what the partner's spreadsheet reads). */
export function toCsv(results: EntryResult[]): string {
  const rows = ["cycle_id,entry_id,partner_id,kind,kind_name,amount_fen,salt,verified"];
  for (const { entry, verified } of results) {
    rows.push(
      [entry.cycle_id, entry.entry_id, entry.partner_id, entry.kind, entry.kind_name, entry.amount_fen, entry.salt, verified].join(","),
    );
  }
  return rows.join("\n") + "\n";
}
