// The cumulative earnings tree the oracle committee commits to in each settlement's
// `earningsRoot`, and the proofs accounts pass to RewardClaims.claim. Leaves are
// `(account, cumulativeAmount)` for nodes, model publishers and the treasury, hashed as
// OpenZeppelin's StandardMerkleTree does (double keccak of the ABI encoding) with a domain tag:
//   leaf = keccak256(keccak256(abi.encode(EARNINGS_LEAF_TAG, account, cumulativeAmount)))
// Internal nodes hash their two children in ascending order (OpenZeppelin MerkleProof), so a
// 64-byte internal node can never be taken for a leaf and vice versa.
import { type Address, type Hex, concat, encodeAbiParameters, getAddress, keccak256, toHex } from "viem";

/** keccak256("Inframesh.EarningsLeaf.v1"), as RewardClaims.EARNINGS_LEAF_TAG. */
export const EARNINGS_LEAF_TAG: Hex = keccak256(toHex("Inframesh.EarningsLeaf.v1"));

/** keccak256("SETTLEMENT_ROLE"): PaymentEscrow's debit role, held by RewardClaims. */
export const SETTLEMENT_ROLE: Hex = keccak256(toHex("SETTLEMENT_ROLE"));

/** One account's cumulative earnings up to and including the settlement's epoch. */
export type EarningsEntry = { account: Address; cumulativeAmount: bigint };

/** The leaf hash of `(account, cumulativeAmount)`, equal to RewardClaims.leafHash. */
export function earningsLeaf(account: Address, cumulativeAmount: bigint): Hex {
  const encoded = encodeAbiParameters(
    [{ type: "bytes32" }, { type: "address" }, { type: "uint256" }],
    [EARNINGS_LEAF_TAG, account, cumulativeAmount],
  );
  return keccak256(keccak256(encoded));
}

function hashPair(a: Hex, b: Hex): Hex {
  return BigInt(a) < BigInt(b) ? keccak256(concat([a, b])) : keccak256(concat([b, a]));
}

/** A built earnings tree: its root and a proof for every account. */
export type EarningsTree = {
  root: Hex;
  entries: readonly EarningsEntry[];
  proof(account: Address): Hex[];
};

/**
 * Builds the tree of `entries` (one per account, any order). Leaves are sorted by hash, so the
 * root depends only on the set of entries. An odd node at the end of a layer moves up unchanged.
 */
export function buildEarningsTree(entries: readonly EarningsEntry[]): EarningsTree {
  if (entries.length === 0) throw new Error("an earnings tree needs at least one entry");
  const seen = new Set<string>();
  for (const { account, cumulativeAmount } of entries) {
    const key = getAddress(account);
    if (seen.has(key)) throw new Error(`account ${key} appears twice`);
    if (cumulativeAmount < 0n) throw new Error(`negative amount for ${key}`);
    seen.add(key);
  }
  const leaves = entries
    .map((entry) => ({ account: getAddress(entry.account), hash: earningsLeaf(entry.account, entry.cumulativeAmount) }))
    .sort((a, b) => (BigInt(a.hash) < BigInt(b.hash) ? -1 : 1));
  const layers: Hex[][] = [leaves.map((leaf) => leaf.hash)];
  for (let layer = layers[0]!; layer.length > 1;) {
    const next: Hex[] = [];
    for (let i = 0; i < layer.length; i += 2)
      next.push(i + 1 < layer.length ? hashPair(layer[i]!, layer[i + 1]!) : layer[i]!);
    layers.push(next);
    layer = next;
  }
  const root = layers[layers.length - 1]![0]!;
  const index = new Map(leaves.map((leaf, i) => [leaf.account, i]));
  return {
    root,
    entries,
    proof(account: Address): Hex[] {
      let i = index.get(getAddress(account));
      if (i === undefined) throw new Error(`account ${account} is not in the tree`);
      const proof: Hex[] = [];
      for (const layer of layers.slice(0, -1)) {
        const sibling = i % 2 === 0 ? i + 1 : i - 1;
        if (sibling < layer.length) proof.push(layer[sibling]!);
        i = Math.floor(i / 2);
      }
      return proof;
    },
  };
}

/** Bits of a packed debit that hold the amount (PaymentEscrow.DEBIT_AMOUNT_BITS). */
export const DEBIT_AMOUNT_BITS = 96n;
const MAX_DEBIT = (1n << DEBIT_AMOUNT_BITS) - 1n;

/** One client's debit of an epoch, as RewardClaims.collectDebits takes it. */
export type Debit = { client: Address; amount: bigint };

/**
 * Packs debits for RewardClaims.collectDebits / PaymentEscrow.debitPacked: one word per
 * client, the address in the high 160 bits and the amount (1 .. 2^96 - 1) in the low 96.
 *
 * @throws Error naming the first debit whose amount is zero or does not fit 96 bits.
 */
export function packDebits(debits: readonly Debit[]): Hex[] {
  return debits.map(({ client, amount }, i) => {
    if (amount <= 0n || amount > MAX_DEBIT) {
      throw new Error(
        `debit ${i} (${client}): amount ${amount} must be between 1 and 2^96 - 1; split a larger debit over epochs`,
      );
    }
    return toHex((BigInt(getAddress(client)) << DEBIT_AMOUNT_BITS) | amount, { size: 32 });
  });
}
