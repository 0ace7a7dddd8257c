// The epoch settlement as a pure function of the epoch's verified receipts, the previous
// cumulative earnings, the fee schedule and the slashed stake to redistribute. Every oracle of a
// committee runs it on the same inputs and gets the same bytes, the same root and the same
// Settlement, so their signatures agree.
//
// Per receipt: fee = the version's price; protocol fee = fee·protocolFeeBps/10000 (floor) to the
// treasury; royalty = fee·royaltyBps/10000 (floor) to the model's publisher; the node gets the rest.
// Slashed stake is redistributed pro rata to this epoch's earnings of the nodes not slashed; the
// rounding dust goes to the largest such earner (ties: lowest address); with no such node it is
// carried over to the next epoch.
import { type Address, type Hex, getAddress, sha256 } from "viem";

import { type EarningsEntry, buildEarningsTree } from "../../sdk/earnings.ts";
import type { Settlement } from "../../sdk/eip712.ts";
import type { FeeSchedule } from "../chain.ts";
import { canonicalJson } from "../../sdk/canonical-json.ts";
import { splitFee } from "../../sdk/fees.ts";

export { canonicalJson, splitFee };

export interface BuilderReceipt {
  jobId: string;
  /** The receipt's JSON as stored (validated wire format, without the raw input). */
  body: Record<string, unknown>;
  client: Address;
  node: Address;
  publisher: Address;
  fee: bigint;
  /** Unix seconds the oracle received it (the expiry rule's clock; followers re-check with it). */
  receivedAt: number;
}

export interface BuildInput {
  epoch: bigint;
  receipts: readonly BuilderReceipt[];
  /** Cumulative earnings up to the previous settled epoch. */
  previous: readonly EarningsEntry[];
  fees: FeeSchedule;
  /** Slashed stake available to redistribute in this epoch (RewardClaims.unallocatedSlash + carry). */
  slashToRedistribute: bigint;
  /** Nodes slashed in this epoch: they get no share of the redistribution. */
  slashedNodes: readonly Address[];
}

export interface BuiltSettlement {
  settlement: Settlement;
  /** Cumulative earnings of every account, sorted by address. */
  earnings: EarningsEntry[];
  /** What each client is debited, sorted by address (RewardClaims.collectDebits arguments). */
  debits: { client: Address; amount: bigint }[];
  /** The receipt batch: canonical JSON lines sorted by job id. */
  batch: Uint8Array;
  batchSha256: Hex;
  /** Slashed stake not redistributed (no eligible node), carried to the next epoch. */
  carriedSlash: bigint;
}

export class SettlementBuildError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "SettlementBuildError";
  }
}

/** One line of the receipt batch: the receipt and what it paid to whom. */
export function batchLine(r: BuilderReceipt, fees: FeeSchedule): string {
  const split = splitFee(r.fee, fees);
  return canonicalJson({
    receipt: r.body,
    fee: r.fee.toString(),
    node_amount: split.node.toString(),
    royalty: split.royalty.toString(),
    protocol_fee: split.protocolFee.toString(),
    publisher: r.publisher,
    received_at: r.receivedAt,
  });
}

const byAddress = (a: { account: Address } | { client: Address }, b: typeof a) => {
  const x = "account" in a ? a.account : a.client;
  const y = "account" in b ? b.account : b.client;
  return BigInt(x) < BigInt(y) ? -1 : BigInt(x) > BigInt(y) ? 1 : 0;
};

/** Shares `amount` pro rata to `weights`; the dust goes to the largest weight (lowest address on ties). */
export function proRata(amount: bigint, weights: ReadonlyMap<Address, bigint>): Map<Address, bigint> {
  const out = new Map<Address, bigint>();
  let total = 0n;
  for (const w of weights.values()) total += w;
  if (amount === 0n || total === 0n) return out;
  let given = 0n;
  let largest: Address | undefined;
  for (const [account, w] of [...weights.entries()].sort(([a], [b]) => (BigInt(a) < BigInt(b) ? -1 : 1))) {
    const share = (amount * w) / total;
    out.set(account, share);
    given += share;
    if (largest === undefined || w > weights.get(largest)!) largest = account;
  }
  out.set(largest!, out.get(largest!)! + (amount - given));
  return out;
}

export function buildSettlement(input: BuildInput): BuiltSettlement {
  const { fees } = input;
  if (fees.protocolFeeBps + fees.royaltyBps > 10_000)
    throw new SettlementBuildError("protocolFeeBps + royaltyBps exceeds 10000");
  if (input.receipts.length === 0) throw new SettlementBuildError(`epoch ${input.epoch} has no receipts to settle`);
  const seen = new Set<string>();
  const receipts = [...input.receipts].sort((a, b) => (a.jobId < b.jobId ? -1 : a.jobId > b.jobId ? 1 : 0));
  const earned = new Map<Address, bigint>();
  const nodeEarned = new Map<Address, bigint>();
  const debits = new Map<Address, bigint>();
  const add = (m: Map<Address, bigint>, k: Address, v: bigint) => m.set(k, (m.get(k) ?? 0n) + v);
  let totalDebits = 0n;
  let protocolFees = 0n;
  let royalties = 0n;
  const lines: string[] = [];
  for (const r of receipts) {
    if (seen.has(r.jobId)) throw new SettlementBuildError(`job ${r.jobId} appears twice in epoch ${input.epoch}`);
    seen.add(r.jobId);
    if (r.fee < 0n) throw new SettlementBuildError(`job ${r.jobId} has a negative fee`);
    const split = splitFee(r.fee, fees);
    const node = getAddress(r.node);
    add(nodeEarned, node, split.node);
    add(earned, node, split.node);
    add(earned, getAddress(r.publisher), split.royalty);
    add(earned, getAddress(fees.treasury), split.protocolFee);
    add(debits, getAddress(r.client), r.fee);
    totalDebits += r.fee;
    protocolFees += split.protocolFee;
    royalties += split.royalty;
    lines.push(batchLine(r, fees));
  }

  const slashed = new Set(input.slashedNodes.map((a) => getAddress(a)));
  const eligible = new Map([...nodeEarned].filter(([node, amount]) => !slashed.has(node) && amount > 0n));
  let redistributed = 0n;
  let carriedSlash = input.slashToRedistribute;
  if (eligible.size > 0 && input.slashToRedistribute > 0n) {
    for (const [node, share] of proRata(input.slashToRedistribute, eligible)) add(earned, node, share);
    redistributed = input.slashToRedistribute;
    carriedSlash = 0n;
  }

  const cumulative = new Map<Address, bigint>();
  for (const e of input.previous) add(cumulative, getAddress(e.account), e.cumulativeAmount);
  for (const [account, amount] of earned) add(cumulative, account, amount);
  const earnings = [...cumulative]
    .map(([account, cumulativeAmount]) => ({ account, cumulativeAmount }))
    .sort(byAddress);
  const tree = buildEarningsTree(earnings);

  const batch = new TextEncoder().encode(lines.map((l) => `${l}\n`).join(""));
  const batchSha256 = sha256(batch);
  const settlement: Settlement = {
    epoch: input.epoch,
    earningsRoot: tree.root,
    totalDebits,
    fees: protocolFees,
    royalties,
    redistributedSlash: redistributed,
    receiptCount: BigInt(receipts.length),
    batchSha256,
  };
  return {
    settlement,
    earnings,
    debits: [...debits].map(([client, amount]) => ({ client, amount })).sort(byAddress),
    batch,
    batchSha256,
    carriedSlash,
  };
}

/** The Settlement as JSON-safe strings (for the database and the committee API), and back. */
export function settlementToJson(s: Settlement): Record<string, string> {
  return {
    epoch: s.epoch.toString(),
    earningsRoot: s.earningsRoot,
    totalDebits: s.totalDebits.toString(),
    fees: s.fees.toString(),
    royalties: s.royalties.toString(),
    redistributedSlash: s.redistributedSlash.toString(),
    receiptCount: s.receiptCount.toString(),
    batchSha256: s.batchSha256,
  };
}

export function settlementFromJson(j: Record<string, string>): Settlement {
  return {
    epoch: BigInt(j.epoch!),
    earningsRoot: j.earningsRoot as Hex,
    totalDebits: BigInt(j.totalDebits!),
    fees: BigInt(j.fees!),
    royalties: BigInt(j.royalties!),
    redistributedSlash: BigInt(j.redistributedSlash!),
    receiptCount: BigInt(j.receiptCount!),
    batchSha256: j.batchSha256 as Hex,
  };
}

/** Parses a published receipt batch back into its lines (for followers and auditors). */
export function parseBatch(bytes: Uint8Array): Record<string, unknown>[] {
  const text = new TextDecoder().decode(bytes);
  if (text === "") return [];
  if (!text.endsWith("\n")) throw new SettlementBuildError("a receipt batch ends with a newline");
  return text
    .slice(0, -1)
    .split("\n")
    .map((line, i) => {
      try {
        return JSON.parse(line) as Record<string, unknown>;
      } catch {
        throw new SettlementBuildError(`line ${i + 1} of the receipt batch is not JSON`);
      }
    });
}
