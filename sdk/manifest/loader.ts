// Model loader: chain pointer → manifest blob → shards from any peers → rebuilt, verified weights
// installed in a local cache. A model is installed only once everything matched: the manifest's
// hash (content address), its root and shard count against the chain, each shard's hash, the
// rebuild, the size. Installation is one directory rename, so the cache never shows half a model.
//
// Cache layout:  <cache>/models/<manifestHash>/{weights,manifest.json}   installed models
//                <cache>/blobs/<sha256>                                  fetched manifests and shards (kept:
//                                                                        a node can serve them to peers)
//                <cache>/.staging-*/                                     work in progress
import { randomBytes } from "node:crypto";
import { mkdir, readFile, rename, rm, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { BlobFetchError, fetchBlob, type FetchOptions } from "../blob/client.ts";
import { rebuildWeights } from "./builder.ts";
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
}

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
 * with the configured rounds.
 */
async function fetchEnoughShards(manifest: Manifest, fetch: FetchOptions, concurrency: number) {
  const { data } = manifest.erasure;
  const paths: (string | null)[] = manifest.shards.map(() => null);
  const failures: unknown[] = [];
  const tryFetch = async (index: number, options: FetchOptions) => {
    try {
      paths[index] = await fetchBlob(manifest.shards[index]!.hash, options, index);
    } catch (error) {
      if (!(error instanceof BlobFetchError)) throw error;
      failures.push(error);
    }
  };
  // Bounded parallelism over `indices`, stopping once `wanted` says enough.
  const queue = async (indices: number[], wanted: () => boolean, options: FetchOptions) => {
    let next = 0;
    const worker = async () => {
      while (next < indices.length && wanted()) await tryFetch(indices[next++]!, options);
    };
    await Promise.all(Array.from({ length: Math.max(1, Math.min(concurrency, indices.length)) }, worker));
  };
  const have = () => paths.filter((p) => p !== null).length;
  const missing = (parity: boolean) =>
    manifest.shards.filter((s) => s.is_parity === parity && paths[s.index] === null).map((s) => s.index);
  const firstPass = { ...fetch, rounds: 1 };
  await queue(missing(false), () => true, firstPass);
  await queue(missing(true), () => have() < data, firstPass);
  if (have() < data && (fetch.rounds ?? 3) > 1) {
    await queue([...missing(false), ...missing(true)], () => have() < data, fetch);
  }
  if (have() < data) {
    const absent = paths.flatMap((p, i) => (p === null ? [i] : []));
    throw new LoaderError(
      "TOO_FEW_SHARDS",
      `found ${have()} of the ${data} shards needed; no peer had a valid copy of shards ${absent.join(", ")}`,
      { cause: new AggregateError(failures, "shard fetch failures") },
    );
  }
  return paths;
}

/** Loads the serving version of a model into the cache and returns where its weights are. */
export async function loadModel(options: LoadOptions): Promise<LoadedModel> {
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
  const shardPaths = await fetchEnoughShards(manifest, fetchOptions, options.concurrency ?? 4);

  const staging = join(options.cacheDir, `.staging-${randomBytes(6).toString("hex")}`);
  try {
    await mkdir(staging, { recursive: true });
    // Every shard was hashed against the manifest as it downloaded: no second pass over them.
    await rebuildWeights({ manifest, shardPaths, outPath: join(staging, "weights"), shardsVerified: true });
    if ((await stat(join(staging, "weights"))).size !== manifest.total_size) {
      throw new ManifestError("INVALID_MANIFEST", "rebuilt weights do not have total_size bytes");
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
