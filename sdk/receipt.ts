// The JSON wire format of a receipt: what a node agent submits to the oracle's
// `POST /v1/receipts` and what a published receipt batch holds. One zod schema validates it at
// every edge (oracle API, node-agent outbox, auditor), and the converters below turn it into the
// EIP-712 structs of sdk/eip712.ts, so the JSON and the signed messages cannot drift apart.
//
// Field names follow PROTOCOL.md (snake_case). Numbers that can exceed 2^53 (fees) are decimal
// strings; small ones (ids, versions, seconds, milliseconds) are JSON integers. Hashes and
// signatures are 0x-prefixed hex. The input itself travels between client, gateway and node; the
// oracle needs only its sha256 (`input_hash`), and checks it against `input` when both are sent.
import { type Address, type Hex, getAddress, isAddress } from "viem";
import { z } from "zod";

import type { ProofOfServing, WorkUnit } from "./eip712.ts";

const UINT64_MAX = 2n ** 64n - 1n;
const UINT256_MAX = 2n ** 256n - 1n;
const UINT32_MAX = 2 ** 32 - 1;

/** 0x + 64 hex digits: a job id, a sha256 or an EIP-712 digest. */
export const bytes32Schema = z
  .string()
  .regex(/^0x[0-9a-fA-F]{64}$/, "expected 0x followed by 64 hex digits (32 bytes)")
  .transform((value) => value.toLowerCase() as Hex);

/** An ECDSA signature: 0x + 130 hex digits (r ‖ s ‖ v). */
export const signatureSchema = z
  .string()
  .regex(/^0x[0-9a-fA-F]{130}$/, "expected a 65-byte signature: 0x followed by 130 hex digits")
  .transform((value) => value.toLowerCase() as Hex);

/** A 20-byte address, any checksum case accepted if valid; returned checksummed. */
export const addressSchema = z
  .string()
  .refine((value) => isAddress(value, { strict: false }), "expected a 20-byte address (0x + 40 hex digits)")
  .transform((value) => getAddress(value) as Address);

/** A non-negative integer that fits uint256, as a decimal string. */
export const uint256StringSchema = z
  .string()
  .regex(/^(0|[1-9][0-9]{0,77})$/, "expected a non-negative integer as a decimal string")
  // zod 4 runs every check even after the regex failed: guard the BigInt so bad input never throws.
  .refine((value) => !/^[0-9]+$/.test(value) || BigInt(value) <= UINT256_MAX, "larger than uint256")
  .transform((value) => BigInt(value));

const safeUint = (what: string) =>
  z
    .number()
    .int(`${what} must be an integer`)
    .nonnegative(`${what} must not be negative`)
    .max(Number.MAX_SAFE_INTEGER, `${what} is too large`);

/** `model_ref`: the model registry's id and version number of the model served. */
export const modelRefSchema = z.strictObject({
  model_id: safeUint("model_id"),
  version: safeUint("version"),
});

/** The client's work unit as JSON. */
export const workUnitJsonSchema = z.strictObject({
  job_id: bytes32Schema,
  model_ref: modelRefSchema,
  /** sha256 of the raw input bytes. */
  input_hash: bytes32Schema,
  /** The raw input, base64; optional at the oracle (only its hash is signed). */
  input: z
    .base64("input must be base64")
    .max(8 * 1024 * 1024, "input is larger than 6 MiB")
    .optional(),
  requested_by: addressSchema,
  /** Unix seconds after which the job may not be served. */
  expires_at: safeUint("expires_at").refine(
    (v) => !Number.isSafeInteger(v) || BigInt(v) <= UINT64_MAX,
    "expires_at exceeds uint64",
  ),
  /** Most the client pays for this job, token base units. */
  max_fee: uint256StringSchema,
});

/** The node's proof of serving as JSON. */
export const proofOfServingJsonSchema = z.strictObject({
  job_id: bytes32Schema,
  model_ref: modelRefSchema,
  /** The EIP-712 digest of the work unit, as the client signed it. */
  work_unit_hash: bytes32Schema,
  /** sha256 of the raw output bytes. */
  output_hash: bytes32Schema,
  latency_ms: safeUint("latency_ms").max(UINT32_MAX, "latency_ms exceeds uint32"),
  node_id: addressSchema,
  signature: signatureSchema,
});

/** An optional zero-knowledge proof of the inference (the zkML issue defines the verifiers). */
export const zkProofJsonSchema = z.strictObject({
  /** Proof system, e.g. "groth16". */
  system: z.string().min(1).max(32),
  /** The proof object of that system (snarkjs JSON for groth16). */
  proof: z.record(z.string(), z.unknown()),
  /** Public signals as decimal strings. */
  public_signals: z.array(z.string().regex(/^[0-9]{1,78}$/, "public signals are decimal strings")).max(64),
});

/** What a node agent submits to the oracle for one served job. */
export const receiptJsonSchema = z.strictObject({
  work_unit: workUnitJsonSchema,
  client_signature: signatureSchema,
  proof_of_serving: proofOfServingJsonSchema,
  zk_proof: zkProofJsonSchema.optional(),
  /**
   * The raw output, base64: sent with a zk proof, whose public signals bind the output's bytes
   * (the oracle checks sha256(output) == output_hash before it verifies the proof).
   */
  output: z
    .base64("output must be base64")
    .max(8 * 1024 * 1024, "output is larger than 6 MiB")
    .optional(),
});

export type WorkUnitJson = z.input<typeof workUnitJsonSchema>;
export type ProofOfServingJson = z.input<typeof proofOfServingJsonSchema>;
export type ReceiptJson = z.input<typeof receiptJsonSchema>;
/** A receipt after validation: addresses checksummed, hex lowercased, fees as bigint. */
export type Receipt = z.output<typeof receiptJsonSchema>;

/** The EIP-712 `WorkUnit` a validated receipt's client signed. */
export function workUnitOf(receipt: Pick<Receipt, "work_unit">): WorkUnit {
  const w = receipt.work_unit;
  return {
    jobId: w.job_id,
    modelId: BigInt(w.model_ref.model_id),
    modelVersion: BigInt(w.model_ref.version),
    inputHash: w.input_hash,
    maxFee: w.max_fee,
    client: w.requested_by,
    expiresAt: BigInt(w.expires_at),
  };
}

/** The EIP-712 `ProofOfServing` a validated receipt's node signed. */
export function proofOfServingOf(receipt: Pick<Receipt, "proof_of_serving">): ProofOfServing {
  const p = receipt.proof_of_serving;
  return {
    jobId: p.job_id,
    workUnitHash: p.work_unit_hash,
    outputHash: p.output_hash,
    latencyMs: p.latency_ms,
    node: p.node_id,
  };
}

/** The JSON of a work unit (the inverse of `workUnitOf`). */
export function workUnitJson(workUnit: WorkUnit, input?: Uint8Array): WorkUnitJson {
  return {
    job_id: workUnit.jobId,
    model_ref: { model_id: Number(workUnit.modelId), version: Number(workUnit.modelVersion) },
    input_hash: workUnit.inputHash,
    ...(input === undefined ? {} : { input: Buffer.from(input).toString("base64") }),
    requested_by: workUnit.client,
    expires_at: Number(workUnit.expiresAt),
    max_fee: workUnit.maxFee.toString(),
  };
}

/** The JSON of a signed proof of serving (the inverse of `proofOfServingOf`). */
export function proofOfServingJson(
  proof: ProofOfServing,
  modelRef: { model_id: number; version: number },
  signature: Hex,
): ProofOfServingJson {
  return {
    job_id: proof.jobId,
    model_ref: modelRef,
    work_unit_hash: proof.workUnitHash,
    output_hash: proof.outputHash,
    latency_ms: proof.latencyMs,
    node_id: proof.node,
    signature,
  };
}
