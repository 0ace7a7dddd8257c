// `infra model register | publish <dir> | mature | show`: a model publisher's commands.
// Each action returns what it did; infra.ts prints it as text or JSON.
import { readFile } from "node:fs/promises";
import path from "node:path";

import type { Address, Hex } from "viem";

import { placeBlobs, uploadPlaced } from "../../sdk/blob/upload.ts";
import { parseModelYaml } from "../../sdk/manifest/model-yaml.ts";
import { buildRelease } from "../../sdk/manifest/release.ts";
import {
  findModelId,
  findVersionOfManifest,
  ModelRegistryCallError,
  publishVersion,
  readModel,
  readVersion,
  registerModel,
  setMatureModel,
  versionInputOf,
  type ModelContracts,
  type ModelStatus,
} from "../../sdk/models.ts";
import type { StakingWallet } from "../../sdk/staking.ts";
import { CliError, describeModelRef, type ModelRef } from "./format.ts";

/** Reads a model by id or name; an unknown one is a CliError naming it. */
export async function resolveModel(contracts: ModelContracts, ref: ModelRef): Promise<ModelStatus> {
  const id = "id" in ref ? ref.id : await findModelId(contracts, ref.name);
  if (id === undefined) throw new CliError(`unknown ${describeModelRef(ref)}: register it with infra model register`);
  try {
    return await readModel(contracts, id);
  } catch (error) {
    if (error instanceof ModelRegistryCallError && error.reason?.startsWith("UnknownModel(") === true) {
      throw new CliError(`unknown ${describeModelRef(ref)}`, { cause: error });
    }
    throw error;
  }
}

/** Refuses, before any upload or transaction, a key that is not the model's publisher. */
function checkPublisher(model: ModelStatus, wallet: StakingWallet): void {
  if (model.publisher.toLowerCase() !== wallet.account.address.toLowerCase()) {
    throw new CliError(
      `wrong publisher: model ${model.modelId} ("${model.name}") is published by ${model.publisher}, ` +
        `not by ${wallet.account.address} (INFRAMESH_PRIVATE_KEY)`,
    );
  }
}

/** A library failure (missing file, bad model.yaml, manifest error) as a CliError with the same message. */
async function asCliError<T>(call: () => Promise<T>): Promise<T> {
  try {
    return await call();
  } catch (error) {
    const message =
      error instanceof Error && "code" in error && error.code === "ENOENT"
        ? `not found: ${(error as NodeJS.ErrnoException).path ?? "a file"}`
        : error instanceof Error
          ? error.message
          : String(error);
    throw new CliError(message, { cause: error });
  }
}

/** A registry revert as a CliError with the contract's own error. */
async function onChain<T>(call: () => Promise<T>): Promise<T> {
  try {
    return await call();
  } catch (error) {
    if (error instanceof ModelRegistryCallError) throw new CliError(error.message, { cause: error });
    throw error;
  }
}

export async function registerAction(contracts: ModelContracts, wallet: StakingWallet, name: string) {
  const existing = await findModelId(contracts, name);
  if (existing !== undefined) throw new CliError(`model name "${name}" is taken by model ${existing}`);
  const done = await onChain(() => registerModel(contracts, wallet, name));
  return { modelId: done.modelId, name, publisher: wallet.account.address, transaction: done.hash };
}

export interface PublishOptions {
  peers: string[];
  copies: number;
  price: bigint;
  mature: boolean;
  out: string | undefined;
  onProgress?: (sent: number, total: number) => void;
  onStep?: (text: string) => void;
  /** A zk-required version: its ZkInferenceVerifier and the circuit's verifying key hash. */
  zk?: { verifier: Address; verifyingKeyHash: Hex };
}

export async function publishAction(
  contracts: ModelContracts,
  wallet: StakingWallet,
  dir: string,
  options: PublishOptions,
) {
  const step = options.onStep ?? (() => undefined);
  if (options.peers.length === 0) throw new CliError("no blob-store peer: give at least one --peer <url>");
  for (const peer of options.peers) {
    if (!/^https?:\/\/[^/]+\/?$/.test(peer))
      throw new CliError(`--peer must be a base URL such as http://127.0.0.1:8600, got "${peer}"`);
  }
  const releaseDir = path.resolve(dir);
  const outDir = path.resolve(options.out ?? path.join(releaseDir, "blobs"));

  // Who publishes is checked first: a wrong key writes nothing, uploads nothing.
  const yamlPath = path.join(releaseDir, "model.yaml");
  const descriptor = await asCliError(async () => parseModelYaml(await readFile(yamlPath)));
  const model = await resolveModel(contracts, { name: descriptor.name });
  checkPublisher(model, wallet);

  step(`Sharding the weights of ${yamlPath} into ${outDir}`);
  const release = await asCliError(() => buildRelease(releaseDir, outDir));
  const { manifest, manifestHash } = release.built;

  step(`Uploading the manifest and ${manifest.shards.length} shards to ${options.peers.length} peer(s)`);
  const manifestFile = { hash: manifestHash, path: release.built.manifestPath };
  const shardFiles = manifest.shards.map((s) => ({ hash: s.hash, path: release.built.shardPaths[s.index]! }));
  const uploaded = await uploadPlaced(
    placeBlobs(options.peers, manifestFile, shardFiles, options.copies),
    [manifestFile, ...shardFiles],
    options.onProgress,
  );

  step(`Publishing version "${manifest.version}" of model ${model.modelId}`);
  const published = await onChain(() =>
    publishVersion(contracts, wallet, model.modelId, {
      ...versionInputOf(manifest, manifestHash, release.descriptorHash, options.price),
      ...(options.zk === undefined
        ? {}
        : { zkVerifier: options.zk.verifier, verifyingKeyHash: options.zk.verifyingKeyHash }),
    }),
  );
  let matured: { transaction: string } | null = null;
  if (options.mature) {
    step(`Pointing model ${model.modelId} at it (setMatureModel)`);
    const done = await onChain(() => setMatureModel(contracts, wallet, model.modelId, manifestHash, options.price));
    matured = { transaction: done.hash };
  }
  return {
    modelId: model.modelId,
    name: model.name,
    version: manifest.version,
    versionNumber: published.version,
    manifestHash,
    manifestPath: release.built.manifestPath,
    shardRoot: manifest.merkle_root,
    shards: manifest.shards.length,
    bytes: manifest.total_size,
    uploads: uploaded.uploads,
    uploadedBytes: uploaded.bytes,
    price: options.price,
    publishTransaction: published.hash,
    mature: matured,
  };
}

export async function matureAction(
  contracts: ModelContracts,
  wallet: StakingWallet,
  ref: ModelRef,
  manifestHash: string,
  price: bigint | undefined,
) {
  const model = await resolveModel(contracts, ref);
  checkPublisher(model, wallet);
  let version: bigint;
  try {
    version = await findVersionOfManifest(contracts, model.modelId, manifestHash);
  } catch (error) {
    if (error instanceof ModelRegistryCallError && error.reason?.startsWith("UnknownManifest(") === true) {
      throw new CliError(`model ${model.modelId} has no published version with manifest ${manifestHash}`, {
        cause: error,
      });
    }
    throw error;
  }
  const newPrice = price ?? (await readVersion(contracts, model.modelId, version)).price;
  const done = await onChain(() => setMatureModel(contracts, wallet, model.modelId, manifestHash, newPrice));
  return {
    modelId: model.modelId,
    name: model.name,
    versionNumber: done.version,
    manifestHash,
    price: newPrice,
    transaction: done.hash,
  };
}
