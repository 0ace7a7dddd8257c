// EIP-712 typed data shared by clients, the gateway, node-agent and the oracle: a client's
// WorkUnit, a node's ProofOfServing and the oracle committee's epoch Settlement, under the
// domain name "Inframesh", version "1", the chain id and the settlement contract. The same
// types are defined once in
// Solidity (contracts/settlement/InframeshTypes.sol); test/contracts/TypedData.test.ts checks
// that the digests below equal the ones computed on chain.
import { createHash } from "node:crypto";

import {
  type Account,
  type Address,
  type Hex,
  type TypedDataDomain,
  hashDomain,
  hashTypedData,
  keccak256,
  recoverTypedDataAddress,
} from "viem";

// ------------------------------------------------------------------ domain

/** EIP-712 domain name. */
export const EIP712_NAME = "Inframesh";
/** EIP-712 domain version. */
export const EIP712_VERSION = "1";

/** The Inframesh domain on `chainId` with the settlement contract `verifyingContract`. */
export function inframeshDomain(chainId: number | bigint, verifyingContract: Address): TypedDataDomain {
  return { name: EIP712_NAME, version: EIP712_VERSION, chainId: Number(chainId), verifyingContract };
}

// ------------------------------------------------------------------ types

/** EIP-712 field lists, in the order of the Solidity structs (the order is part of the type hash). */
export const inframeshTypes = {
  WorkUnit: [
    { name: "jobId", type: "bytes32" },
    { name: "modelId", type: "uint256" },
    { name: "modelVersion", type: "uint256" },
    { name: "inputHash", type: "bytes32" },
    { name: "maxFee", type: "uint256" },
    { name: "client", type: "address" },
    { name: "expiresAt", type: "uint64" },
  ],
  ProofOfServing: [
    { name: "jobId", type: "bytes32" },
    { name: "workUnitHash", type: "bytes32" },
    { name: "outputHash", type: "bytes32" },
    { name: "latencyMs", type: "uint32" },
    { name: "node", type: "address" },
  ],
  Settlement: [
    { name: "epoch", type: "uint64" },
    { name: "earningsRoot", type: "bytes32" },
    { name: "totalDebits", type: "uint256" },
    { name: "fees", type: "uint256" },
    { name: "royalties", type: "uint256" },
    { name: "redistributedSlash", type: "uint256" },
    { name: "receiptCount", type: "uint64" },
    { name: "batchSha256", type: "bytes32" },
  ],
} as const;

/** What a client signs to ask for one inference. */
export interface WorkUnit {
  /** Unique job id chosen by the client; a job id is paid at most once. */
  jobId: Hex;
  /** The model's id in the model registry. */
  modelId: bigint;
  /** The model's version number in the registry. */
  modelVersion: bigint;
  /** sha256 of the raw input bytes (see `payloadHash`). */
  inputHash: Hex;
  /** Most the client agrees to pay for this job, in payment-token base units. */
  maxFee: bigint;
  /** The signer, whose escrow account is debited. */
  client: Address;
  /** Unix time (seconds) after which the job may not be served. */
  expiresAt: bigint;
}

/** What a node signs after serving a work unit. */
export interface ProofOfServing {
  jobId: Hex;
  /** The work unit's EIP-712 digest (`hashWorkUnit`), exactly as the client signed it. */
  workUnitHash: Hex;
  /** sha256 of the raw output bytes (see `payloadHash`). */
  outputHash: Hex;
  latencyMs: number;
  /** The serving node's id (its operator address): the signer. */
  node: Address;
}

/** What each member of the oracle committee signs to close an epoch. */
export interface Settlement {
  epoch: bigint;
  /** Merkle root of every node's cumulative earnings up to and including this epoch. */
  earningsRoot: Hex;
  /** Tokens debited from clients' escrow balances for this epoch's receipts. */
  totalDebits: bigint;
  fees: bigint;
  royalties: bigint;
  /** Slashed stake redistributed to the other nodes in this epoch. */
  redistributedSlash: bigint;
  receiptCount: bigint;
  /** sha256 of the published receipt batch. */
  batchSha256: Hex;
}

/**
 * sha256 of raw input or output bytes: what `inputHash` and `outputHash` hold. On node:crypto
 * (native), which the gateway's and agent's hot paths hash every call with.
 */
export function payloadHash(bytes: Uint8Array): Hex {
  return `0x${createHash("sha256").update(bytes).digest("hex")}`;
}

// ------------------------------------------------------------------ digests

/** The EIP-712 digest a client signs for `workUnit`. */
export function hashWorkUnit(domain: TypedDataDomain, workUnit: WorkUnit): Hex {
  return hashTypedData({ domain, types: inframeshTypes, primaryType: "WorkUnit", message: workUnit });
}

/** Thrown by `workUnitHasher`'s function for a field its EIP-712 type cannot hold. */
export class WorkUnitEncodingError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "WorkUnitEncodingError";
  }
}

/** keccak256("WorkUnit(bytes32 jobId,uint256 modelId,...)"): the struct's type hash. */
const WORK_UNIT_TYPE_HASH = keccak256(
  new TextEncoder().encode(`WorkUnit(${inframeshTypes.WorkUnit.map((f) => `${f.type} ${f.name}`).join(",")})`),
  "bytes",
);
const HEX_32 = /^0x[0-9a-fA-F]{64}$/;
const HEX_ADDRESS = /^0x[0-9a-fA-F]{40}$/;
const UINT256_MAX = (1n << 256n) - 1n;
const UINT64_MAX = (1n << 64n) - 1n;

/** Writes `hex` (0x + 2n digits) into `out` so that it ends at byte `end`. */
function putHex(out: Uint8Array, end: number, hex: string): void {
  const bytes = (hex.length - 2) / 2;
  out.set(Buffer.from(hex.slice(2), "hex"), end - bytes);
}

function putUint(out: Uint8Array, end: number, value: bigint, max: bigint, field: string): void {
  if (value < 0n || value > max) throw new WorkUnitEncodingError(`${field} ${value} is out of range`);
  let v = value;
  for (let i = end - 1; v > 0n; i--) {
    out[i] = Number(v & 0xffn);
    v >>= 8n;
  }
}

/**
 * `hashWorkUnit` for one domain, with the domain separator and the type hash computed once: the
 * digest is keccak256(0x1901 ‖ domainSeparator ‖ keccak256(typeHash ‖ 7 words)), as EIP-712 has
 * it, without the generic typed-data encoder (tests hold it to `hashWorkUnit`'s answers). For hot
 * paths that hash a work unit per call; throws WorkUnitEncodingError for a value a field's type
 * cannot hold.
 */
export function workUnitHasher(domain: TypedDataDomain): (workUnit: WorkUnit) => Hex {
  if (
    domain.salt !== undefined ||
    domain.name === undefined ||
    domain.version === undefined ||
    domain.chainId === undefined ||
    domain.verifyingContract === undefined
  ) {
    throw new WorkUnitEncodingError("workUnitHasher takes a domain of name, version, chainId and verifyingContract");
  }
  const separator = hashDomain({
    domain: {
      name: domain.name,
      version: domain.version,
      chainId: BigInt(domain.chainId),
      verifyingContract: domain.verifyingContract,
    },
    types: {
      EIP712Domain: [
        { name: "name", type: "string" },
        { name: "version", type: "string" },
        { name: "chainId", type: "uint256" },
        { name: "verifyingContract", type: "address" },
      ],
    },
  });
  return (w) => {
    if (!HEX_32.test(w.jobId)) throw new WorkUnitEncodingError(`jobId ${w.jobId} is not bytes32`);
    if (!HEX_32.test(w.inputHash)) throw new WorkUnitEncodingError(`inputHash ${w.inputHash} is not bytes32`);
    if (!HEX_ADDRESS.test(w.client)) throw new WorkUnitEncodingError(`client ${w.client} is not an address`);
    const struct = new Uint8Array(32 * 8);
    struct.set(WORK_UNIT_TYPE_HASH, 0);
    putHex(struct, 64, w.jobId);
    putUint(struct, 96, w.modelId, UINT256_MAX, "modelId");
    putUint(struct, 128, w.modelVersion, UINT256_MAX, "modelVersion");
    putHex(struct, 160, w.inputHash);
    putUint(struct, 192, w.maxFee, UINT256_MAX, "maxFee");
    putHex(struct, 224, w.client);
    putUint(struct, 256, w.expiresAt, UINT64_MAX, "expiresAt");
    const digest = new Uint8Array(66);
    digest[0] = 0x19;
    digest[1] = 0x01;
    putHex(digest, 34, separator);
    digest.set(keccak256(struct, "bytes"), 34);
    return keccak256(digest);
  };
}

/** The EIP-712 digest a node signs for `proof`. */
export function hashProofOfServing(domain: TypedDataDomain, proof: ProofOfServing): Hex {
  return hashTypedData({ domain, types: inframeshTypes, primaryType: "ProofOfServing", message: proof });
}

/** The EIP-712 digest each oracle signs for `settlement`. */
export function hashSettlement(domain: TypedDataDomain, settlement: Settlement): Hex {
  return hashTypedData({ domain, types: inframeshTypes, primaryType: "Settlement", message: settlement });
}

// ------------------------------------------------------------------ signatures

/** An account that signs typed data locally (a viem local account, e.g. `privateKeyToAccount`). */
export type TypedDataSigner = Pick<Account, "address"> & {
  signTypedData: NonNullable<Account["signTypedData"]>;
};

/** The client's signature of `workUnit` (65 bytes, r ‖ s ‖ v). */
export function signWorkUnit(signer: TypedDataSigner, domain: TypedDataDomain, workUnit: WorkUnit): Promise<Hex> {
  return signer.signTypedData({ domain, types: inframeshTypes, primaryType: "WorkUnit", message: workUnit });
}

/** The node's signature of `proof`. */
export function signProofOfServing(
  signer: TypedDataSigner,
  domain: TypedDataDomain,
  proof: ProofOfServing,
): Promise<Hex> {
  return signer.signTypedData({ domain, types: inframeshTypes, primaryType: "ProofOfServing", message: proof });
}

/** An oracle's signature of `settlement`. */
export function signSettlement(signer: TypedDataSigner, domain: TypedDataDomain, settlement: Settlement): Promise<Hex> {
  return signer.signTypedData({ domain, types: inframeshTypes, primaryType: "Settlement", message: settlement });
}

/** The address that signed `workUnit` under `domain` (compare it with `workUnit.client`). */
export function recoverWorkUnitSigner(domain: TypedDataDomain, workUnit: WorkUnit, signature: Hex): Promise<Address> {
  return recoverTypedDataAddress({
    domain,
    types: inframeshTypes,
    primaryType: "WorkUnit",
    message: workUnit,
    signature,
  });
}

/** The address that signed `proof` under `domain` (compare it with `proof.node`). */
export function recoverProofOfServingSigner(
  domain: TypedDataDomain,
  proof: ProofOfServing,
  signature: Hex,
): Promise<Address> {
  return recoverTypedDataAddress({
    domain,
    types: inframeshTypes,
    primaryType: "ProofOfServing",
    message: proof,
    signature,
  });
}
