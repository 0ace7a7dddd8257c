// The Merkle tree over a manifest's shard hashes: the twin of contracts/models/ShardMerkle.sol.
//
//   leaf = sha256(0x00 || shardHash)          node = sha256(0x01 || left || right)
//
// Shard hashes are the leaves' data in index order. Built bottom-up, a level with an odd number
// of nodes promotes its last node unchanged (never duplicated), which makes the tree RFC 6962's
// Merkle Tree Hash. A proof lists the sibling of each level from the leaf upwards, skipping the
// levels where the node was promoted; verifying needs the shard count. The shared vectors in
// test/vectors/shard-merkle.json hold this file and the Solidity library to the same roots.
import { ManifestError } from "./errors.ts";
import { HASH_BYTES, sha256 } from "./hash.ts";

const LEAF_PREFIX = Uint8Array.of(0x00);
const NODE_PREFIX = Uint8Array.of(0x01);

export function leafHash(shardHash: Uint8Array): Buffer {
  return sha256(LEAF_PREFIX, checkHash(shardHash, "shard hash"));
}

export function nodeHash(left: Uint8Array, right: Uint8Array): Buffer {
  return sha256(NODE_PREFIX, left, right);
}

function checkHash(hash: Uint8Array, what: string): Uint8Array {
  if (hash.length !== HASH_BYTES) {
    throw new ManifestError("INVALID_MERKLE_INPUT", `${what} must be 32 bytes, got ${hash.length}`);
  }
  return hash;
}

/** Every level of the tree, leaves first, root last. */
function levels(shardHashes: readonly Uint8Array[]): Buffer[][] {
  if (shardHashes.length === 0)
    throw new ManifestError("INVALID_MERKLE_INPUT", "a Merkle tree needs at least one shard");
  const all: Buffer[][] = [shardHashes.map(leafHash)];
  let level = all[0]!;
  while (level.length > 1) {
    const next: Buffer[] = [];
    for (let i = 0; i < level.length; i += 2) {
      const right = level[i + 1];
      next.push(right === undefined ? level[i]! : nodeHash(level[i]!, right));
    }
    all.push(next);
    level = next;
  }
  return all;
}

export function merkleRoot(shardHashes: readonly Uint8Array[]): Buffer {
  const all = levels(shardHashes);
  return all[all.length - 1]![0]!;
}

/** The inclusion proof of shard `index`: sibling hashes from the leaf level upwards. */
export function merkleProof(shardHashes: readonly Uint8Array[], index: number): Buffer[] {
  if (!Number.isSafeInteger(index) || index < 0 || index >= shardHashes.length) {
    throw new ManifestError("INVALID_MERKLE_INPUT", `shard index ${index} is outside 0..${shardHashes.length - 1}`);
  }
  const proof: Buffer[] = [];
  let position = index;
  for (const level of levels(shardHashes).slice(0, -1)) {
    const sibling = level[position ^ 1];
    if (sibling !== undefined) proof.push(sibling);
    position >>= 1;
  }
  return proof;
}

/** The root implied by a proof, or null when the proof's length does not fit the position. */
export function rootFromProof(
  count: number,
  index: number,
  shardHash: Uint8Array,
  proof: readonly Uint8Array[],
): Buffer | null {
  if (!Number.isSafeInteger(index) || index < 0 || index >= count) return null;
  let hash = leafHash(shardHash);
  let used = 0;
  let position = index;
  for (let width = count; width > 1; width = (width + 1) >> 1) {
    const isRight = (position & 1) === 1;
    if (isRight || position + 1 < width) {
      const sibling = proof[used];
      if (sibling === undefined) return null;
      checkHash(sibling, "proof element");
      used += 1;
      hash = isRight ? nodeHash(sibling, hash) : nodeHash(hash, sibling);
    }
    position >>= 1;
  }
  return used === proof.length ? hash : null;
}

export function verifyProof(
  root: Uint8Array,
  count: number,
  index: number,
  shardHash: Uint8Array,
  proof: readonly Uint8Array[],
): boolean {
  const computed = rootFromProof(count, index, shardHash, proof);
  return computed !== null && computed.equals(root);
}
