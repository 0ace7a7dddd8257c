// The shard manifest: its type, its validation and its bytes. The manifest is the blob the
// registry's `setMatureModel` names (by the sha256 of its exact bytes); a loader hashes the
// fetched bytes, never a re-serialisation, so `serializeManifest` only has to be stable for
// the builder.
import { z } from "zod";
import { ManifestError } from "./errors.ts";
import { hashFromHex, hashToHex, isHexHash, sha256 } from "./hash.ts";
import { merkleRoot } from "./merkle.ts";
import { RS_ALIGNMENT } from "./erasure.ts";

export const MANIFEST_FORMAT = "inframesh-manifest/1";

export interface ShardEntry {
  index: number;
  hash: string;
  size: number;
  is_parity: boolean;
}

/**
 * `stripe_size` (rs only): bytes of each shard coded per call of the codec. The addon's Cauchy
 * coding splits every slice it is given into 8 packets, so parity depends on the slice size: a
 * loader must rebuild with the stripe size the builder used, which is why the manifest carries it.
 */
export type Erasure =
  | { data: number; parity: number; codec: "rs"; stripe_size: number }
  | { data: number; parity: number; codec: "replica" };

export interface Manifest {
  format: typeof MANIFEST_FORMAT;
  version: string;
  model_kind: string;
  total_size: number;
  shard_size: number;
  shards: ShardEntry[];
  erasure: Erasure;
  merkle_root: string;
}

const hexHash = z.string().refine(isHexHash, "must be a sha256 in 64 lowercase hex characters");
const count = z.number().int().nonnegative();

const manifestSchema = z
  .object({
    format: z.literal(MANIFEST_FORMAT),
    version: z.string().min(1),
    model_kind: z.string().min(1),
    total_size: count.positive(),
    shard_size: count.positive(),
    shards: z.array(z.object({ index: count, hash: hexHash, size: count, is_parity: z.boolean() }).strict()),
    erasure: z.discriminatedUnion("codec", [
      z
        .object({
          data: count.positive(),
          parity: count,
          codec: z.literal("rs"),
          stripe_size: count.positive().multipleOf(RS_ALIGNMENT),
        })
        .strict(),
      z.object({ data: count.positive(), parity: count, codec: z.literal("replica") }).strict(),
    ]),
    merkle_root: hexHash,
  })
  .strict();

/** Shard size of a Reed-Solomon layout: ceil(total / data) rounded up to a multiple of 8. */
export function rsShardSize(totalSize: number, data: number): number {
  const raw = Math.ceil(totalSize / data);
  return Math.ceil(raw / RS_ALIGNMENT) * RS_ALIGNMENT;
}

function invalid(message: string, cause?: unknown): ManifestError {
  return new ManifestError("INVALID_MANIFEST", message, cause === undefined ? undefined : { cause });
}

/** Checks a manifest's shape and its internal consistency (layout, indices, sizes, root). */
export function validateManifest(value: unknown): Manifest {
  const parsed = manifestSchema.safeParse(value);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    const path = issue.path.length > 0 ? issue.path.join(".") : "(manifest)";
    throw invalid(`manifest field ${path}: ${issue.message}`, parsed.error);
  }
  const m = parsed.data as Manifest;
  const { data, parity, codec } = m.erasure;
  if (m.shards.length !== data + parity) {
    throw invalid(`manifest lists ${m.shards.length} shards, erasure says ${data}+${parity}`);
  }
  const expectedShardSize = codec === "replica" ? m.total_size : rsShardSize(m.total_size, data);
  if (codec === "replica" && data !== 1) throw invalid(`replica codec needs erasure.data = 1, got ${data}`);
  if (codec === "rs" && parity === 0) throw invalid("rs codec needs at least one parity shard");
  if (m.erasure.codec === "rs" && m.erasure.stripe_size > m.shard_size) {
    throw invalid(`erasure.stripe_size ${m.erasure.stripe_size} exceeds shard_size ${m.shard_size}`);
  }
  if (m.shard_size !== expectedShardSize) {
    throw invalid(
      `shard_size is ${m.shard_size}, the ${codec} layout of ${m.total_size} bytes needs ${expectedShardSize}`,
    );
  }
  m.shards.forEach((shard, i) => {
    if (shard.index !== i) throw invalid(`shards[${i}].index is ${shard.index}, expected ${i}`);
    if (shard.size !== m.shard_size) throw invalid(`shards[${i}].size is ${shard.size}, expected ${m.shard_size}`);
    if (shard.is_parity !== i >= data) throw invalid(`shards[${i}].is_parity must be ${i >= data}`);
  });
  if (codec === "replica" && m.shards.some((s) => s.hash !== m.shards[0]!.hash)) {
    throw invalid("replica shards must all have the same hash");
  }
  const root = hashToHex(merkleRoot(m.shards.map((s) => hashFromHex(s.hash))));
  if (root !== m.merkle_root) {
    throw new ManifestError(
      "ROOT_MISMATCH",
      `merkle_root ${m.merkle_root} is not the root of the shard hashes (${root})`,
    );
  }
  return m;
}

/** Parses and validates manifest bytes. */
export function parseManifest(bytes: Uint8Array | string): Manifest {
  let value: unknown;
  try {
    value = JSON.parse(typeof bytes === "string" ? bytes : Buffer.from(bytes).toString("utf8"));
  } catch (error) {
    throw invalid("manifest is not valid JSON", error);
  }
  return validateManifest(value);
}

/** The manifest's bytes as the builder writes them (fixed key order, two-space indent, final newline). */
export function serializeManifest(m: Manifest): Buffer {
  const ordered: Manifest = {
    format: m.format,
    version: m.version,
    model_kind: m.model_kind,
    total_size: m.total_size,
    shard_size: m.shard_size,
    shards: m.shards.map((s) => ({ index: s.index, hash: s.hash, size: s.size, is_parity: s.is_parity })),
    erasure:
      m.erasure.codec === "rs"
        ? { data: m.erasure.data, parity: m.erasure.parity, codec: "rs", stripe_size: m.erasure.stripe_size }
        : { data: m.erasure.data, parity: m.erasure.parity, codec: "replica" },
    merkle_root: m.merkle_root,
  };
  return Buffer.from(JSON.stringify(ordered, null, 2) + "\n");
}

/** The manifest hash the registry stores: sha256 of the manifest bytes, 64 lowercase hex characters. */
export function manifestHash(bytes: Uint8Array): string {
  return hashToHex(sha256(bytes));
}
