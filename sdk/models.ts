// ModelRegistry from TypeScript: the calls a model publisher makes (the `infra model` CLI, the
// demo) and the serving pointer a loader reads. Thin wrappers over viem in the style of
// sdk/staking.ts: each write is simulated first (a revert surfaces as the contract's own custom
// error, decoded), sent and awaited; each read returns plain values in the protocol's words.
import { parseAbi, type Address, type Hex, type PublicClient, type TransactionReceipt } from "viem";

import type { ServingPointer } from "./manifest/loader.ts";
import type { Manifest } from "./manifest/manifest.ts";
import { describeRevert, type StakingWallet } from "./staking.ts";
import { simulateAndSend } from "./tx.ts";

// ------------------------------------------------------------------ ABI

/**
 * The part of ModelRegistry's ABI this module calls. Human-readable so viem infers every type;
 * test/sdk/model-registry-abi.test.ts checks it against the compiled artifact.
 */
export const modelRegistryAbi = parseAbi([
  "struct AccessPolicy { uint8 kind; address token; uint256 threshold; }",
  "struct VersionInput { string version; bytes32 descriptorHash; string manifestHash; bytes32 shardRoot; uint32 shardCount; uint96 price; address zkVerifier; bytes32 verifyingKeyHash; AccessPolicy access; }",
  "struct Version { string version; bytes32 descriptorHash; bytes32 manifestHash; bytes32 shardRoot; uint32 shardCount; uint96 price; address zkVerifier; bytes32 verifyingKeyHash; AccessPolicy access; }",
  "struct ModelInfo { string name; address publisher; bool hasServingVersion; address pendingPublisher; uint256 versionCount; uint256 servingVersion; }",
  "function registerModel(string name) returns (uint256 modelId)",
  "function publishVersion(uint256 modelId, VersionInput input) returns (uint256 version)",
  "function setMatureModel(uint256 modelId, string manifestHash, uint256 price) returns (uint256 version)",
  "function modelCount() view returns (uint256)",
  "function modelIdOf(string name) view returns (uint256)",
  "function modelInfo(uint256 modelId) view returns (ModelInfo)",
  "function versionInfo(uint256 modelId, uint256 version) view returns (Version)",
  "function versionOfManifest(uint256 modelId, string manifestHash) view returns (uint256)",
  "function servingVersion(uint256 modelId) view returns (bool found, uint256 version, Version record)",
  "error EmptyName()",
  "error EmptyVersion()",
  "error InvalidAccessPolicy(uint8 kind, address token, uint256 threshold)",
  "error InvalidManifestHash(string manifestHash)",
  "error InvalidShardCount(uint256 shardCount, uint256 maxShardCount)",
  "error InvalidZkVerifier(address zkVerifier, bytes32 verifyingKeyHash)",
  "error ManifestTaken(uint256 modelId, string manifestHash, uint256 version)",
  "error NameTaken(string name, uint256 modelId)",
  "error NameTooLong(uint256 length, uint256 maxLength)",
  "error NotPublisher(uint256 modelId, address caller, address publisher)",
  "error PriceTooHigh(uint256 price, uint256 maxPrice)",
  "error UnknownManifest(uint256 modelId, string manifestHash)",
  "error UnknownModel(uint256 modelId)",
  "error UnknownVersion(uint256 modelId, uint256 version, uint256 versionCount)",
  "error VersionTaken(uint256 modelId, string versionString, uint256 version)",
  "error VersionTooLong(uint256 length, uint256 maxLength)",
  "error ZeroHash(string field)",
]);

// ------------------------------------------------------------------ types

/** Where the ModelRegistry lives, and the client that reads it. */
export interface ModelContracts {
  publicClient: PublicClient;
  modelRegistry: Address;
}

/** The access policy kinds, in the contract's enum order. */
export const ACCESS_KINDS = ["public", "allowlist", "erc20-holders", "erc721-holders"] as const;
export type AccessKindName = (typeof ACCESS_KINDS)[number];

/** What a publisher gives to publish a version (the contract's `VersionInput`). */
export interface VersionInput {
  version: string;
  descriptorHash: Hex;
  /** 64 lowercase hex characters, no "0x". */
  manifestHash: string;
  shardRoot: Hex;
  shardCount: number;
  price: bigint;
  zkVerifier: Address;
  verifyingKeyHash: Hex;
  access: { kind: number; token: Address; threshold: bigint };
}

/** A published version as the registry returns it. Hashes as 0x-prefixed bytes32. */
export interface VersionRecord {
  version: string;
  descriptorHash: Hex;
  manifestHash: Hex;
  shardRoot: Hex;
  shardCount: number;
  price: bigint;
  zkVerifier: Address;
  verifyingKeyHash: Hex;
  access: { kind: AccessKindName; token: Address; threshold: bigint };
}

/** A model as the network sees it now. */
export interface ModelStatus {
  modelId: bigint;
  name: string;
  publisher: Address;
  pendingPublisher: Address;
  versionCount: bigint;
  /** The version `setMatureModel` points at, or undefined when it was never called. */
  serving: { version: bigint; record: VersionRecord } | undefined;
}

/** A confirmed transaction. */
export interface ModelReceipt {
  hash: Hex;
  blockNumber: bigint;
  gasUsed: bigint;
}

/** A registry call that reverted or could not be sent. `reason` is the contract's error when known. */
export class ModelRegistryCallError extends Error {
  readonly action: string;
  readonly reason: string | undefined;
  constructor(action: string, reason: string | undefined, options: { cause: unknown }) {
    super(`${action} failed${reason === undefined ? "" : `: ${reason}`}`, options);
    this.name = "ModelRegistryCallError";
    this.action = action;
    this.reason = reason;
  }
}

const ZERO_ADDRESS: Address = "0x0000000000000000000000000000000000000000";
const ZERO_HASH: Hex = `0x${"00".repeat(32)}`;

// ------------------------------------------------------------------ pure helpers

/**
 * The `VersionInput` of a manifest: public access, no zk verifier. `descriptorHash` is the
 * sha256 of the exact `model.yaml` bytes (64 hex characters, as `descriptorHash()` returns it).
 */
export function versionInputOf(
  manifest: Manifest,
  manifestHash: string,
  descriptorHash: string,
  price: bigint,
): VersionInput {
  return {
    version: manifest.version,
    descriptorHash: `0x${descriptorHash}`,
    manifestHash,
    shardRoot: `0x${manifest.merkle_root}`,
    shardCount: manifest.shards.length,
    price,
    zkVerifier: ZERO_ADDRESS,
    verifyingKeyHash: ZERO_HASH,
    access: { kind: 0, token: ZERO_ADDRESS, threshold: 0n },
  };
}

/** Strips the "0x" of a bytes32 and lowercases it: the manifest hash as blob stores name it. */
export function hexOfBytes32(value: Hex): string {
  return value.slice(2).toLowerCase();
}

// ------------------------------------------------------------------ writes

function toReceipt(receipt: TransactionReceipt): ModelReceipt {
  return { hash: receipt.transactionHash, blockNumber: receipt.blockNumber, gasUsed: receipt.gasUsed };
}

/** Simulates `functionName` on the registry (so a revert is decoded before anything is sent), sends it, waits. */
async function send(
  contracts: ModelContracts,
  wallet: StakingWallet,
  functionName: "registerModel" | "publishVersion" | "setMatureModel",
  args: readonly unknown[],
): Promise<{ receipt: ModelReceipt; result: unknown }> {
  try {
    const { receipt, result } = await simulateAndSend(contracts.publicClient, wallet, {
      address: contracts.modelRegistry,
      abi: modelRegistryAbi,
      functionName,
      args,
    } as Parameters<PublicClient["simulateContract"]>[0]);
    return { receipt: toReceipt(receipt), result };
  } catch (error) {
    throw new ModelRegistryCallError(functionName, describeRevert(error), { cause: error });
  }
}

/** Registers a model under `name`; the wallet's account becomes its publisher. */
export async function registerModel(
  contracts: ModelContracts,
  publisher: StakingWallet,
  name: string,
): Promise<ModelReceipt & { modelId: bigint }> {
  const { receipt, result } = await send(contracts, publisher, "registerModel", [name]);
  return { ...receipt, modelId: result as bigint };
}

/** Publishes a version of `modelId` (publisher only); returns its version number. */
export async function publishVersion(
  contracts: ModelContracts,
  publisher: StakingWallet,
  modelId: bigint,
  input: VersionInput,
): Promise<ModelReceipt & { version: bigint }> {
  const { receipt, result } = await send(contracts, publisher, "publishVersion", [modelId, input]);
  return { ...receipt, version: result as bigint };
}

/** Points `modelId` at the published version whose manifest is `manifestHash`, at `price` per call. */
export async function setMatureModel(
  contracts: ModelContracts,
  publisher: StakingWallet,
  modelId: bigint,
  manifestHash: string,
  price: bigint,
): Promise<ModelReceipt & { version: bigint }> {
  const { receipt, result } = await send(contracts, publisher, "setMatureModel", [modelId, manifestHash, price]);
  return { ...receipt, version: result as bigint };
}

// ------------------------------------------------------------------ reads

async function read<T>(action: string, call: () => Promise<T>): Promise<T> {
  try {
    return await call();
  } catch (error) {
    throw new ModelRegistryCallError(action, describeRevert(error), { cause: error });
  }
}

/** The id of the model named `name`, or undefined when no model has that name. */
export async function findModelId(contracts: ModelContracts, name: string): Promise<bigint | undefined> {
  const id = await read("modelIdOf", () =>
    contracts.publicClient.readContract({
      address: contracts.modelRegistry,
      abi: modelRegistryAbi,
      functionName: "modelIdOf",
      args: [name],
    }),
  );
  return id === 0n ? undefined : id;
}

function toVersionRecord(v: {
  version: string;
  descriptorHash: Hex;
  manifestHash: Hex;
  shardRoot: Hex;
  shardCount: number;
  price: bigint;
  zkVerifier: Address;
  verifyingKeyHash: Hex;
  access: { kind: number; token: Address; threshold: bigint };
}): VersionRecord {
  return {
    version: v.version,
    descriptorHash: v.descriptorHash,
    manifestHash: v.manifestHash,
    shardRoot: v.shardRoot,
    shardCount: v.shardCount,
    price: v.price,
    zkVerifier: v.zkVerifier,
    verifyingKeyHash: v.verifyingKeyHash,
    access: { kind: ACCESS_KINDS[v.access.kind] ?? "public", token: v.access.token, threshold: v.access.threshold },
  };
}

/** A model's record and its serving version. Throws `UnknownModel(id)` for an id nobody registered. */
export async function readModel(contracts: ModelContracts, modelId: bigint): Promise<ModelStatus> {
  const at = { address: contracts.modelRegistry, abi: modelRegistryAbi } as const;
  const [info, serving] = await read("read model", () =>
    Promise.all([
      contracts.publicClient.readContract({ ...at, functionName: "modelInfo", args: [modelId] }),
      contracts.publicClient.readContract({ ...at, functionName: "servingVersion", args: [modelId] }),
    ]),
  );
  const [found, version, record] = serving;
  return {
    modelId,
    name: info.name,
    publisher: info.publisher,
    pendingPublisher: info.pendingPublisher,
    versionCount: info.versionCount,
    serving: found ? { version, record: toVersionRecord(record) } : undefined,
  };
}

/** Version `version` of `modelId`. */
export async function readVersion(contracts: ModelContracts, modelId: bigint, version: bigint): Promise<VersionRecord> {
  const record = await read("versionInfo", () =>
    contracts.publicClient.readContract({
      address: contracts.modelRegistry,
      abi: modelRegistryAbi,
      functionName: "versionInfo",
      args: [modelId, version],
    }),
  );
  return toVersionRecord(record);
}

/** The loader's view of the registry: the serving pointer of a model, or null when it has none. */
export function servingPointerReader(contracts: ModelContracts): (modelId: bigint) => Promise<ServingPointer | null> {
  return async (modelId) => {
    const [found, version, record] = await read("servingVersion", () =>
      contracts.publicClient.readContract({
        address: contracts.modelRegistry,
        abi: modelRegistryAbi,
        functionName: "servingVersion",
        args: [modelId],
      }),
    );
    if (!found) return null;
    return {
      version,
      manifestHash: hexOfBytes32(record.manifestHash),
      shardRoot: hexOfBytes32(record.shardRoot),
      shardCount: record.shardCount,
    };
  };
}

/** The version of `modelId` whose manifest is `manifestHash`; throws `UnknownManifest` when none. */
export async function findVersionOfManifest(
  contracts: ModelContracts,
  modelId: bigint,
  manifestHash: string,
): Promise<bigint> {
  return read("versionOfManifest", () =>
    contracts.publicClient.readContract({
      address: contracts.modelRegistry,
      abi: modelRegistryAbi,
      functionName: "versionOfManifest",
      args: [modelId, manifestHash],
    }),
  );
}
