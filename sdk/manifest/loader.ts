// Model loader: chain pointer → manifest blob → shards from any peers → rebuilt, verified weights
// installed in a local cache. A model is installed only once everything matched: the manifest's
// hash (content address), its root and shard count against the chain, each shard's hash, the
// rebuild, the size. Installation is one directory rename, so the cache never shows half a model.
//
// Two ways to get the weights, both in bounded memory and hashing every shard as it arrives
// (nothing is hashed twice):
//  - direct (the default): data shards stream from the network (on worker threads, one per core)
//    straight to their place in the staged weights file, parity shards to scratch files beside
//    it; missing data shards are then decoded stripe by stripe and written to their place. No
//    shard is written twice or kept (the weights are the data shards).
//  - `keepShards`: every shard is downloaded to <cache>/blobs/<sha256> (resumable across
//    restarts, kept so a node can serve them), then the weights are rebuilt from those.
//
// Cache layout:  <cache>/models/<manifestHash>/{weights,manifest.json}   installed models
//                <cache>/blobs/<sha256>                                  fetched manifests (and the
//                                                                        shards, with keepShards)
//                <cache>/.staging-*/                                     work in progress
import { randomBytes } from "node:crypto";
import { mkdir, open, readFile, rename, rm, stat, writeFile, type FileHandle } from "node:fs/promises";
import { join } from "node:path";
import { BlobFetchError, BlobSinkError, clipChunks, fetchBlob, type FetchOptions } from "../blob/client.ts";
import { sharedFetchPool, type FileRegion } from "../blob/fetch-pool.ts";
import { rebuildWeights } from "./builder.ts";
import { codeStripe, createErasureCodec } from "./erasure.ts";
import { ManifestError } from "./errors.ts";
import { parseManifest, type Manifest } from "./manifest.ts";

/** What the loader needs from the registry's `servingVersion`; hashes as 64 lowercase hex characters. */
export interface ServingPointer {
  version: bigint;
  manifestHash: string;
  shardRoot: string;
  shardCount: number;
}

export type ReadServingPointer = (modelId: bigint) => Promise<ServingPointer | null>;

export type LoaderErrorCode = "NO_SERVING_VERSION" | "MANIFEST_UNAVAILABLE" | "CHAIN_MISMATCH" | "TOO_FEW_SHARDS";

export class LoaderError extends Error {
  readonly code: LoaderErrorCode;

  constructor(code: LoaderErrorCode, message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "LoaderError";
    this.code = code;
  }
}

export interface LoadOptions {
  modelId: bigint;
  readPointer: ReadServingPointer;
  peers: readonly string[];
  cacheDir: string;
  concurrency?: number;
  timeoutMs?: number;
  rounds?: number;
  retryDelayMs?: number;
  /**
   * Also keep every fetched shard in `<cache>/blobs/` (so the node can serve them to peers, and a
   * restarted load resumes partial downloads): shards then go through blob files and the weights
   * are rebuilt from those. Default false: data shards stream straight into the weights.
   */
  keepShards?: boolean;
}

/** Shard downloads in flight at once by default. */
export const DEFAULT_CONCURRENCY = 4;

export interface LoadedModel {
  modelId: bigint;
  version: bigint;
  manifestHash: string;
  manifest: Manifest;
  weightsPath: string;
  /** False when the cache already held this manifest's verified weights. */
  fetched: boolean;
}

/** A `ReadServingPointer` over an ethers ModelRegistry contract. */
export function registryPointerReader(registry: {
  servingVersion(modelId: bigint): Promise<{
    found: boolean;
    version: bigint;
    record: { manifestHash: string; shardRoot: string; shardCount: bigint };
  }>;
}): ReadServingPointer {
  return async (modelId) => {
    const serving = await registry.servingVersion(modelId);
    if (!serving.found) return null;
    return {
      version: serving.version,
      manifestHash: serving.record.manifestHash.slice(2).toLowerCase(),
      shardRoot: serving.record.shardRoot.slice(2).toLowerCase(),
      shardCount: Number(serving.record.shardCount),
    };
  };
}

async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch {
    return false;
  }
}

/**
 * Fetches shards until `data` of them are in hand: data shards first, parity for each one missing.
 * A first pass asks each peer once per shard (a withheld shard costs no retry rounds while other
 * shards can stand in for it); only when that leaves too few, the missing shards are tried again
 * with the configured rounds. `fetchOne` resolves once shard `index` is held and verified, or
 * rejects with a BlobFetchError. Returns which shards are held.
 */
export async function fetchEnoughShards(
  manifest: Manifest,
  concurrency: number,
  rounds: number,
  fetchOne: (index: number, rounds: number) => Promise<void>,
): Promise<boolean[]> {
  const { data } = manifest.erasure;
  const held: boolean[] = manifest.shards.map(() => false);
  const failures: unknown[] = [];
  // A failure that is not a peer's (a disk error) ends the load; fetches in flight are waited for
  // and none is started after it, so nothing writes into the staging directory once it is removed.
  let fatal: { error: unknown } | null = null;
  const tryFetch = async (index: number, attemptRounds: number) => {
    try {
      await fetchOne(index, attemptRounds);
      held[index] = true;
    } catch (error) {
      if (error instanceof BlobFetchError) failures.push(error);
      else fatal ??= { error };
    }
  };
  let inFlight = 0;
  let wake: (() => void)[] = [];
  const have = () => held.filter(Boolean).length;
  // Bounded parallelism over `indices` in order, never more fetches going than shards still needed:
  // a worker waits while the fetches in flight would be enough, and takes the next index (a parity
  // shard, once the data shards are all taken) as soon as one of them fails.
  const queue = async (indices: number[], attemptRounds: number) => {
    let next = 0;
    const worker = async () => {
      while (fatal === null && next < indices.length && have() < data) {
        if (have() + inFlight >= data) {
          await new Promise<void>((resolve) => wake.push(resolve));
          continue;
        }
        inFlight++;
        try {
          await tryFetch(indices[next++]!, attemptRounds);
        } finally {
          inFlight--;
          const waiting = wake;
          wake = [];
          for (const resolve of waiting) resolve();
        }
      }
    };
    await Promise.all(Array.from({ length: Math.max(1, Math.min(concurrency, indices.length)) }, worker));
    if (fatal !== null) throw fatal.error;
  };
  const missing = () => manifest.shards.filter((s) => !held[s.index]).map((s) => s.index);
  // Data shards come first in the manifest's order, so they are asked for before any parity one.
  await queue(missing(), 1);
  if (have() < data && rounds > 1) await queue(missing(), rounds);
  if (have() < data) {
    const absent = held.flatMap((h, i) => (h ? [] : [i]));
    throw new LoaderError(
      "TOO_FEW_SHARDS",
      `found ${have()} of the ${data} shards needed; no peer had a valid copy of shards ${absent.join(", ")}`,
      { cause: new AggregateError(failures, "shard fetch failures") },
    );
  }
  return held;
}

/** Stripes decoded at once (the codec runs on libuv's thread pool). */
const DECODE_PARALLELISM = 2;

/**
 * The direct load: every data shard streams from the network straight to its place in `output`
 * (data shard i is the weights' bytes [i × shard_size, …), clipped at total_size), every parity
 * shard to a scratch file in `stagingDir`, each shard hashed as it arrives, on the process's fetch
 * workers (one thread per core: hashing is the load's main cost); written shards are flushed to
 * disk while later ones still download, so the final sync has little left; missing data shards
 * are then decoded stripe by stripe (their sources read back from the page cache, just written)
 * and written to their place. Memory stays at a few stripes plus the writes in flight whatever
 * the model's size; shards are not held in the JS heap (which would only feed the garbage
 * collector). `output` ends up holding exactly the weights or the call rejects; before that it
 * may hold unverified bytes, like a `.partial` file. The scratch files are removed on return.
 */
async function loadDirect(
  manifest: Manifest,
  fetchOptions: Omit<FetchOptions, "dir">,
  concurrency: number,
  rounds: number,
  output: FileHandle,
  outputPath: string,
  stagingDir: string,
): Promise<void> {
  const { data } = manifest.erasure;
  const shardSize = manifest.shard_size;
  const total = manifest.total_size;
  /** Writes `chunks` at weights offset `position`, clipped at total_size (the last shard's padding). */
  const writeAt = async (chunks: readonly Buffer[], position: number) => {
    const kept = clipChunks(chunks, position, total);
    if (kept.length > 0) await output.writev(kept, position);
  };
  const parityPath = (index: number) => join(stagingDir, `.parity-${index}`);
  const parityFiles = new Set<number>();
  // Written shards go to disk while others still download, so the final flush has little left.
  let flushing: Promise<void> | null = null;
  let flushError: unknown = null;
  const flushWritten = () => {
    flushing ??= output.datasync().then(
      () => {
        flushing = null;
      },
      (error: unknown) => {
        flushError ??= error;
        flushing = null;
      },
    );
  };
  const pool = sharedFetchPool();
  try {
    const fetched = await fetchEnoughShards(manifest, concurrency, rounds, async (index, attemptRounds) => {
      let region: FileRegion;
      if (index < data) {
        region = { path: outputPath, offset: index * shardSize, limit: total };
      } else {
        if (!parityFiles.has(index)) {
          await writeFile(parityPath(index), "");
          parityFiles.add(index);
        }
        region = { path: parityPath(index), offset: 0, limit: shardSize };
      }
      const hash = manifest.shards[index]!.hash;
      try {
        await pool.fetchToFile(hash, shardSize, region, { ...fetchOptions, rounds: attemptRounds }, index);
      } catch (error) {
        if (error instanceof BlobSinkError) throw new ManifestError("IO", "cannot write the weights", { cause: error });
        throw error;
      }
      if (index < data) flushWritten();
    });
    const chosen = manifest.shards
      .map((s) => s.index)
      .filter((i) => fetched[i])
      .slice(0, data);
    const lost = Array.from({ length: data }, (_, i) => i).filter((i) => !fetched[i]);
    if (lost.length > 0) {
      const held = new Map<number, FileHandle>();
      try {
        for (const index of chosen) if (index >= data) held.set(index, await open(parityPath(index), "r"));
        await decodeMissing(manifest, output, held, chosen, lost, async (chunks, position) => {
          await writeAt(chunks, position);
          flushWritten();
        });
      } finally {
        for (const file of held.values()) await file.close();
      }
    }
  } finally {
    while (flushing !== null) await flushing;
    for (const index of parityFiles) await rm(parityPath(index), { force: true });
  }
  if (flushError !== null) throw new ManifestError("IO", "cannot write the weights", { cause: flushError });
}

/** Decodes the `lost` data shards of a direct load from the `chosen` ones and writes them to their place. */
async function decodeMissing(
  manifest: Manifest,
  output: FileHandle,
  held: ReadonlyMap<number, FileHandle>,
  chosen: readonly number[],
  lost: readonly number[],
  writeAt: (chunks: readonly Buffer[], position: number) => Promise<void>,
): Promise<void> {
  const { data } = manifest.erasure;
  const shardSize = manifest.shard_size;
  const total = manifest.total_size;
  if (manifest.erasure.codec === "replica") {
    const copy = Buffer.allocUnsafe(shardSize);
    await readFully(held.get(chosen[0]!)!, copy, 0, shardSize, 0);
    await writeAt([copy], 0);
    return;
  }
  const { parity, stripe_size } = manifest.erasure;
  const codec = createErasureCodec(data, parity);
  const step = Math.min(stripe_size, shardSize);
  let sources = 0;
  for (const index of chosen) sources |= 1 << index;
  let targets = 0;
  for (const index of lost) targets |= 1 << index;
  let nextOffset = 0;
  const decoder = async () => {
    const dataBuffer = Buffer.allocUnsafe(data * step);
    const parityBuffer = Buffer.allocUnsafe(parity * step);
    while (nextOffset < shardSize) {
      const offset = nextOffset;
      nextOffset += step;
      const size = Math.min(step, shardSize - offset);
      const reads: Promise<unknown>[] = [];
      for (const index of chosen) {
        if (index >= data) {
          reads.push(readFully(held.get(index)!, parityBuffer, (index - data) * size, size, offset));
          continue;
        }
        // A data shard's bytes past total_size are its zero padding (its hash covered them).
        const position = index * shardSize + offset;
        const length = Math.max(0, Math.min(size, total - position));
        dataBuffer.fill(0, index * size + length, (index + 1) * size);
        if (length > 0) reads.push(readFully(output, dataBuffer, index * size, length, position));
      }
      await Promise.all(reads);
      await codeStripe(codec, sources, targets, dataBuffer, parityBuffer, size);
      await Promise.all(
        lost.map((index) =>
          writeAt([dataBuffer.subarray(index * size, (index + 1) * size)], index * shardSize + offset),
        ),
      );
    }
  };
  await Promise.all(Array.from({ length: DECODE_PARALLELISM }, decoder));
}

/** Reads exactly `length` bytes at `position` into `target` at `at`. */
async function readFully(file: FileHandle, target: Buffer, at: number, length: number, position: number) {
  let done = 0;
  while (done < length) {
    const { bytesRead } = await file.read(target, at + done, length - done, position + done);
    if (bytesRead === 0) throw new ManifestError("IO", "the weights file is shorter than what was written to it");
    done += bytesRead;
  }
}

/** Loads the serving version of a model into the cache and returns where its weights are. */
export async function loadModel(options: LoadOptions): Promise<LoadedModel> {
  // The fetch workers start (once per process) while the pointer and the manifest are read.
  if (options.keepShards !== true) sharedFetchPool();
  const pointer = await options.readPointer(options.modelId);
  if (pointer === null) {
    throw new LoaderError(
      "NO_SERVING_VERSION",
      `model ${options.modelId} has no serving version (setMatureModel was never called)`,
    );
  }
  const installed = join(options.cacheDir, "models", pointer.manifestHash);
  const weightsPath = join(installed, "weights");
  const blobDir = join(options.cacheDir, "blobs");
  const fetchOptions: FetchOptions = {
    peers: options.peers,
    dir: blobDir,
    ...(options.timeoutMs === undefined ? {} : { timeoutMs: options.timeoutMs }),
    ...(options.rounds === undefined ? {} : { rounds: options.rounds }),
    ...(options.retryDelayMs === undefined ? {} : { retryDelayMs: options.retryDelayMs }),
  };
  if (await exists(weightsPath)) {
    const manifest = parseManifest(await readFile(join(installed, "manifest.json")));
    return {
      modelId: options.modelId,
      version: pointer.version,
      manifestHash: pointer.manifestHash,
      manifest,
      weightsPath,
      fetched: false,
    };
  }

  let manifestPath: string;
  try {
    manifestPath = await fetchBlob(pointer.manifestHash, fetchOptions);
  } catch (error) {
    throw new LoaderError("MANIFEST_UNAVAILABLE", `no peer served manifest ${pointer.manifestHash}`, { cause: error });
  }
  const manifestBytes = await readFile(manifestPath);
  const manifest = parseManifest(manifestBytes);
  if (manifest.merkle_root !== pointer.shardRoot || manifest.shards.length !== pointer.shardCount) {
    throw new LoaderError(
      "CHAIN_MISMATCH",
      `manifest root ${manifest.merkle_root} with ${manifest.shards.length} shards, but the chain says ${pointer.shardRoot} with ${pointer.shardCount}`,
    );
  }
  const concurrency = options.concurrency ?? DEFAULT_CONCURRENCY;
  const rounds = options.rounds ?? 3;

  const staging = join(options.cacheDir, `.staging-${randomBytes(6).toString("hex")}`);
  const stagedWeights = join(staging, "weights");
  try {
    if (options.keepShards !== true) {
      await mkdir(staging, { recursive: true });
      const output = await open(stagedWeights, "w+");
      try {
        await loadDirect(manifest, fetchOptions, concurrency, rounds, output, stagedWeights, staging);
        if ((await output.stat()).size !== manifest.total_size) {
          throw new ManifestError("INVALID_MANIFEST", "rebuilt weights do not have total_size bytes");
        }
        await output.sync();
      } finally {
        await output.close();
      }
    } else {
      // Shards kept: they stream to blob files, then the weights are rebuilt from those stripe by
      // stripe. Every shard was hashed against the manifest as it downloaded.
      const shardPaths: (string | null)[] = manifest.shards.map(() => null);
      await fetchEnoughShards(manifest, concurrency, rounds, async (index, attemptRounds) => {
        shardPaths[index] = await fetchBlob(
          manifest.shards[index]!.hash,
          { ...fetchOptions, rounds: attemptRounds },
          index,
        );
      });
      await mkdir(staging, { recursive: true });
      await rebuildWeights({ manifest, shardPaths, outPath: stagedWeights, shardsVerified: true });
      if ((await stat(stagedWeights)).size !== manifest.total_size) {
        throw new ManifestError("INVALID_MANIFEST", "rebuilt weights do not have total_size bytes");
      }
    }
    await writeFile(join(staging, "manifest.json"), manifestBytes);
    await mkdir(join(options.cacheDir, "models"), { recursive: true });
    try {
      await rename(staging, installed);
    } catch (error) {
      // A concurrent load installed the same manifest first: theirs is as verified as ours.
      if (!(await exists(weightsPath))) throw error;
    }
  } finally {
    await rm(staging, { recursive: true, force: true });
  }
  return {
    modelId: options.modelId,
    version: pointer.version,
    manifestHash: pointer.manifestHash,
    manifest,
    weightsPath,
    fetched: true,
  };
}
