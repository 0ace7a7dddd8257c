// EIP-712 typed data shared by clients, the gateway, node-agent and the oracle: a client's
// WorkUnit, a node's ProofOfServing and the oracle committee's epoch Settlement, under the
// domain name "Inframesh", version "1", the chain id and the settlement contract. The same
// types are defined once in
// Solidity (contracts/settlement/InframeshTypes.sol); test/contracts/TypedData.test.ts checks
// that the digests below equal the ones computed on chain.
import {
  type Account,
  type Address,
  type Hex,
  type TypedDataDomain,
  hashTypedData,
  recoverTypedDataAddress,
  sha256,
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

/** sha256 of raw input or output bytes: what `inputHash` and `outputHash` hold. */
export function payloadHash(bytes: Uint8Array): Hex {
  return sha256(bytes);
}

// ------------------------------------------------------------------ digests

/** The EIP-712 digest a client signs for `workUnit`. */
export function hashWorkUnit(domain: TypedDataDomain, workUnit: WorkUnit): Hex {
  return hashTypedData({ domain, types: inframeshTypes, primaryType: "WorkUnit", message: workUnit });
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
