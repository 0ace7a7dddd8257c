// Weights file → shards → manifest, and shards → weights file, both streaming: memory stays at
// (data + parity) × stripeSize bytes whatever the model's size.
//
// Reed-Solomon layout: with k data shards of S bytes (S = ceil(total / k) rounded up to a
// multiple of 8), data shard i is the weights' bytes [i·S, (i+1)·S), zero-padded past the end;
// parity shards come from the data shards. The weights are data shards 0..k-1 concatenated and
// cut at total_size. Replica layout: every shard is the whole weights file.
import { createHash, randomBytes, type Hash } from "node:crypto";
import { mkdir, open, rename, rm, type FileHandle } from "node:fs/promises";
import { dirname, join } from "node:path";
import { codeStripe, createErasureCodec, encodeParity, RS_ALIGNMENT, type ErasureCodec } from "./erasure.ts";
import { ManifestError } from "./errors.ts";
import { hashFromHex, hashToHex } from "./hash.ts";
import {
  MANIFEST_FORMAT,
  manifestHash,
  rsShardSize,
  serializeManifest,
  validateManifest,
  type Manifest,
  type ShardEntry,
} from "./manifest.ts";
import { merkleRoot } from "./merkle.ts";

export const DEFAULT_DATA_SHARDS = 10;
export const DEFAULT_PARITY_SHARDS = 4;
export const DEFAULT_REPLICAS = 3;
/** Weights at or below this size default to the replica codec. */
export const TINY_MODEL_MAX_BYTES = 64 * 1024;
/** Bytes of each shard handled per stripe. */
export const DEFAULT_STRIPE_SIZE = 1024 * 1024;

export interface BuildOptions {
  weightsPath: string;
  /** Directory that receives the shards (named by their sha256) and the manifest (named by its hash). */
  outDir: string;
  /** The model version the manifest describes (the registry's version string). */
  version: string;
  /** What the weights are, e.g. "onnx". */
  modelKind: string;
  /** Default: "replica" up to TINY_MODEL_MAX_BYTES, "rs" above. */
  codec?: "rs" | "replica";
  dataShards?: number;
  parityShards?: number;
  /** Copies for the replica codec (data 1 + parity replicas-1). */
  replicas?: number;
  stripeSize?: number;
}

export interface BuildResult {
  manifest: Manifest;
  manifestBytes: Buffer;
  manifestHash: string;
  manifestPath: string;
  /** Path of each shard by index (replica shards share one file). */
  shardPaths: string[];
}

export interface RebuildOptions {
  manifest: Manifest;
  /** Path of each shard by index; null or missing where the shard is not available. */
  shardPaths: readonly (string | null | undefined)[];
  /** Where the weights go; written to a temporary name and renamed only once verified. */
  outPath: string;
  /**
   * The shard files were already hashed against the manifest by the caller (the loader hashes
   * each shard while downloading it): skip the second sha256 pass; sizes are still checked.
   */
  shardsVerified?: boolean;
}

function ioError(message: string, cause: unknown): ManifestError {
  return new ManifestError("IO", message, { cause });
}

async function openFile(path: string, flags: string): Promise<FileHandle> {
  try {
    return await open(path, flags);
  } catch (error) {
    throw ioError(`cannot open ${path}`, error);
  }
}

/** Reads up to `length` bytes at `position`, looping over short reads; returns the count read. */
async function readAt(file: FileHandle, target: Buffer, length: number, position: number): Promise<number> {
  let done = 0;
  while (done < length) {
    const { bytesRead } = await file.read(target, done, length - done, position + done);
    if (bytesRead === 0) break;
    done += bytesRead;
  }
  return done;
}

function checkStripeSize(stripeSize: number): number {
  if (!Number.isSafeInteger(stripeSize) || stripeSize <= 0 || stripeSize % RS_ALIGNMENT !== 0) {
    throw new ManifestError("INVALID_OPTIONS", `stripeSize must be a positive multiple of 8, got ${stripeSize}`);
  }
  return stripeSize;
}

function temporaryName(path: string): string {
  return join(dirname(path), `.${randomBytes(6).toString("hex")}.partial`);
}

/** Shards a weights file and writes the shards and the manifest into `outDir`. */
export async function buildManifest(options: BuildOptions): Promise<BuildResult> {
  const stripeSize = checkStripeSize(options.stripeSize ?? DEFAULT_STRIPE_SIZE);
  if (options.version.length === 0) throw new ManifestError("INVALID_OPTIONS", "version must not be empty");
  if (options.modelKind.length === 0) throw new ManifestError("INVALID_OPTIONS", "modelKind must not be empty");
  await mkdir(options.outDir, { recursive: true }).catch((error: unknown) => {
    throw ioError(`cannot create ${options.outDir}`, error);
  });
  const weights = await openFile(options.weightsPath, "r");
  const partials: string[] = [];
  try {
    const totalSize = (await weights.stat()).size;
    if (totalSize === 0) throw new ManifestError("EMPTY_WEIGHTS", `${options.weightsPath} is empty`);
    const codec = options.codec ?? (totalSize <= TINY_MODEL_MAX_BYTES ? "replica" : "rs");
    const layout =
      codec === "replica"
        ? replicaLayout(options.replicas ?? DEFAULT_REPLICAS, totalSize)
        : rsLayout(options.dataShards ?? DEFAULT_DATA_SHARDS, options.parityShards ?? DEFAULT_PARITY_SHARDS, totalSize);
    const shardCount = layout.data + layout.parity;
    for (let i = 0; i < shardCount; i++) partials.push(join(options.outDir, `.shard-${i}.partial`));
    const hashes =
      codec === "replica"
        ? await writeReplicas(weights, totalSize, partials, stripeSize)
        : await writeRsShards(
            weights,
            totalSize,
            layout.shardSize,
            createErasureCodec(layout.data, layout.parity),
            partials,
            stripeSize,
          );

    const shards: ShardEntry[] = hashes.map((hash, index) => ({
      index,
      hash,
      size: layout.shardSize,
      is_parity: index >= layout.data,
    }));
    const manifest: Manifest = {
      format: MANIFEST_FORMAT,
      version: options.version,
      model_kind: options.modelKind,
      total_size: totalSize,
      shard_size: layout.shardSize,
      shards,
      erasure:
        codec === "rs"
          ? { data: layout.data, parity: layout.parity, codec, stripe_size: Math.min(stripeSize, layout.shardSize) }
          : { data: layout.data, parity: layout.parity, codec },
      merkle_root: hashToHex(merkleRoot(hashes.map(hashFromHex))),
    };
    validateManifest(manifest);
    const shardPaths = hashes.map((hash) => join(options.outDir, hash));
    for (const [i, partial] of partials.entries()) {
      await rename(partial, shardPaths[i]!).catch((error: unknown) => {
        throw ioError(`cannot move shard ${i} into place`, error);
      });
    }
    const manifestBytes = serializeManifest(manifest);
    const hash = manifestHash(manifestBytes);
    const manifestPath = join(options.outDir, hash);
    const partialManifest = temporaryName(manifestPath);
    partials.push(partialManifest);
    await writeWhole(partialManifest, manifestBytes);
    await rename(partialManifest, manifestPath);
    return { manifest, manifestBytes, manifestHash: hash, manifestPath, shardPaths };
  } finally {
    await weights.close();
    await Promise.all(partials.map((p) => rm(p, { force: true })));
  }
}

function replicaLayout(replicas: number, totalSize: number) {
  if (!Number.isInteger(replicas) || replicas < 1) {
    throw new ManifestError("INVALID_OPTIONS", `replicas must be a positive integer, got ${replicas}`);
  }
  return { data: 1, parity: replicas - 1, shardSize: totalSize };
}

function rsLayout(data: number, parity: number, totalSize: number) {
  createErasureCodec(data, parity); // validates the counts
  return { data, parity, shardSize: rsShardSize(totalSize, data) };
}

async function writeWhole(path: string, bytes: Buffer): Promise<void> {
  const file = await openFile(path, "w");
  try {
    await file.writeFile(bytes);
    await file.sync();
  } finally {
    await file.close();
  }
}

async function withOutputs<T>(paths: readonly string[], body: (files: FileHandle[]) => Promise<T>): Promise<T> {
  const files: FileHandle[] = [];
  try {
    for (const path of paths) files.push(await openFile(path, "w"));
    const result = await body(files);
    await Promise.all(files.map((f) => f.sync()));
    return result;
  } finally {
    await Promise.all(files.map((f) => f.close()));
  }
}

async function writeReplicas(weights: FileHandle, totalSize: number, partials: string[], stripeSize: number) {
  const hash = createHash("sha256");
  const buffer = Buffer.alloc(stripeSize);
  await withOutputs(partials, async (files) => {
    for (let offset = 0; offset < totalSize; offset += stripeSize) {
      const length = await readAt(weights, buffer, Math.min(stripeSize, totalSize - offset), offset);
      const chunk = buffer.subarray(0, length);
      hash.update(chunk);
      for (const file of files) await file.write(chunk);
    }
  });
  const hex = hash.digest("hex");
  return partials.map(() => hex);
}

async function writeRsShards(
  weights: FileHandle,
  totalSize: number,
  shardSize: number,
  codec: ErasureCodec,
  partials: string[],
  stripeSize: number,
): Promise<string[]> {
  const { data, parity } = codec;
  const step = Math.min(stripeSize, shardSize);
  const dataBuffer = Buffer.alloc(data * step);
  const parityBuffer = Buffer.alloc(parity * step);
  const hashes: Hash[] = partials.map(() => createHash("sha256"));
  await withOutputs(partials, async (files) => {
    for (let offset = 0; offset < shardSize; offset += step) {
      const size = Math.min(step, shardSize - offset);
      for (let i = 0; i < data; i++) {
        const slice = dataBuffer.subarray(i * size, (i + 1) * size);
        const position = i * shardSize + offset;
        const wanted = Math.max(0, Math.min(size, totalSize - position));
        const got = wanted > 0 ? await readAt(weights, slice, wanted, position) : 0;
        if (got !== wanted) throw new ManifestError("IO", "the weights file shrank while it was being sharded");
        slice.fill(0, got);
      }
      await encodeParity(codec, dataBuffer, parityBuffer, size);
      for (let index = 0; index < data + parity; index++) {
        const source = index < data ? dataBuffer : parityBuffer;
        const at = (index < data ? index : index - data) * size;
        const slice = source.subarray(at, at + size);
        hashes[index]!.update(slice);
        await files[index]!.write(slice);
      }
    }
  });
  return hashes.map((h) => h.digest("hex"));
}

/**
 * Rebuilds the weights from any `data` of the manifest's shards: streams the chosen shards
 * (data shards first), checks each one's size and sha256 against the manifest, recomputes the
 * missing data shards, and renames the output into place only when everything matched.
 */
export async function rebuildWeights(options: RebuildOptions): Promise<void> {
  const manifest = validateManifest(options.manifest);
  const { data, parity } = manifest.erasure;
  const available = manifest.shards.map((s) => s.index).filter((i) => options.shardPaths[i] != null);
  if (available.length < data) {
    const missing = manifest.shards.map((s) => s.index).filter((i) => options.shardPaths[i] == null);
    throw new ManifestError(
      "TOO_FEW_SHARDS",
      `need ${data} of ${data + parity} shards to rebuild, have ${available.length} (missing ${missing.join(", ")})`,
    );
  }
  const chosen = available.slice(0, data);
  const temporary = temporaryName(options.outPath);
  try {
    const output = await openFile(temporary, "w");
    try {
      if (manifest.erasure.codec === "replica") {
        await copyReplica(manifest, options.shardPaths[chosen[0]!]!, output, DEFAULT_STRIPE_SIZE);
      } else {
        const verified = options.shardsVerified === true;
        await rebuildRs(manifest, chosen, options.shardPaths, output, manifest.erasure.stripe_size, verified);
      }
      await output.sync();
    } finally {
      await output.close();
    }
    await rename(temporary, options.outPath).catch((error: unknown) => {
      throw ioError(`cannot move the rebuilt weights to ${options.outPath}`, error);
    });
  } catch (error) {
    await rm(temporary, { force: true });
    throw error;
  }
}

function checkShard(manifest: Manifest, index: number, hash: Hash, size: number) {
  const expected = manifest.shards[index]!;
  if (size !== expected.size) {
    throw new ManifestError(
      "SHARD_HASH_MISMATCH",
      `shard ${index} has ${size} bytes, the manifest says ${expected.size}`,
    );
  }
  const actual = hash.digest("hex");
  if (actual !== expected.hash) {
    throw new ManifestError(
      "SHARD_HASH_MISMATCH",
      `shard ${index} hashes to ${actual}, the manifest says ${expected.hash}`,
    );
  }
}

async function shardLength(file: FileHandle, index: number, expected: number): Promise<void> {
  const { size } = await file.stat();
  if (size !== expected) {
    throw new ManifestError("SHARD_HASH_MISMATCH", `shard ${index} has ${size} bytes, the manifest says ${expected}`);
  }
}

async function copyReplica(manifest: Manifest, path: string, output: FileHandle, stripeSize: number) {
  const input = await openFile(path, "r");
  try {
    await shardLength(input, 0, manifest.shard_size);
    const hash = createHash("sha256");
    const buffer = Buffer.alloc(stripeSize);
    let total = 0;
    for (;;) {
      const length = await readAt(input, buffer, stripeSize, total);
      if (length === 0) break;
      const chunk = buffer.subarray(0, length);
      hash.update(chunk);
      await output.write(chunk);
      total += length;
    }
    checkShard(manifest, 0, hash, total);
  } finally {
    await input.close();
  }
}

async function rebuildRs(
  manifest: Manifest,
  chosen: readonly number[],
  shardPaths: readonly (string | null | undefined)[],
  output: FileHandle,
  stripeSize: number,
  verified: boolean,
) {
  const { data, parity } = manifest.erasure;
  const codec = createErasureCodec(data, parity);
  const shardSize = manifest.shard_size;
  const step = Math.min(stripeSize, shardSize);
  const dataBuffer = Buffer.alloc(data * step);
  const parityBuffer = Buffer.alloc(parity * step);
  let sources = 0;
  for (const index of chosen) sources |= 1 << index;
  let targets = 0;
  for (let index = 0; index < data; index++) if ((sources & (1 << index)) === 0) targets |= 1 << index;

  const inputs: FileHandle[] = [];
  try {
    for (const index of chosen) {
      const file = await openFile(shardPaths[index]!, "r");
      inputs.push(file);
      await shardLength(file, index, shardSize);
    }
    const hashes = verified ? null : chosen.map(() => createHash("sha256"));
    for (let offset = 0; offset < shardSize; offset += step) {
      const size = Math.min(step, shardSize - offset);
      // The shards' slices are read at once (the thread pool reads them in parallel).
      await Promise.all(
        chosen.map(async (index, n) => {
          const target = index < data ? dataBuffer : parityBuffer;
          const at = (index < data ? index : index - data) * size;
          const slice = target.subarray(at, at + size);
          const got = await readAt(inputs[n]!, slice, size, offset);
          if (got !== size)
            throw new ManifestError("SHARD_HASH_MISMATCH", `shard ${index} is shorter than ${shardSize} bytes`);
        }),
      );
      if (hashes !== null) {
        for (const [n, index] of chosen.entries()) {
          const at = (index < data ? index : index - data) * size;
          hashes[n]!.update((index < data ? dataBuffer : parityBuffer).subarray(at, at + size));
        }
      }
      if (targets !== 0) await codeStripe(codec, sources, targets, dataBuffer, parityBuffer, size);
      // The stripe's data slices are contiguous in the weights only when size is the whole shard;
      // otherwise each slice goes to its own place, all writes in flight at once.
      await Promise.all(
        Array.from({ length: data }, (_, i) => {
          const position = i * shardSize + offset;
          const length = Math.max(0, Math.min(size, manifest.total_size - position));
          return length > 0 ? output.write(dataBuffer, i * size, length, position) : undefined;
        }),
      );
    }
    if (hashes !== null) {
      for (const [n, index] of chosen.entries()) checkShard(manifest, index, hashes[n]!, shardSize);
    }
  } finally {
    await Promise.all(inputs.map((f) => f.close()));
  }
}
