// Verification rules that need nothing but the receipt, the EIP-712 domain and the clock: pure
// functions, each returning null (passes) or a Rejection.
import { type Hex, type TypedDataDomain, recoverAddress, sha256 } from "viem";

import { hashProofOfServing, hashWorkUnit } from "../../sdk/eip712.ts";
import { type Receipt, proofOfServingOf, workUnitOf } from "../../sdk/receipt.ts";
import { type Rejection, reject } from "./reasons.ts";

/** The two EIP-712 digests a receipt's signatures cover. */
export interface ReceiptDigests {
  workUnit: Hex;
  proofOfServing: Hex;
}

export function receiptDigests(domain: TypedDataDomain, receipt: Receipt): ReceiptDigests {
  return {
    workUnit: hashWorkUnit(domain, workUnitOf(receipt)),
    proofOfServing: hashProofOfServing(domain, proofOfServingOf(receipt)),
  };
}

/** The work unit and the proof of serving name the same job and model, and the proof covers this work unit. */
export function checkConsistency(receipt: Receipt, digests: ReceiptDigests): Rejection | null {
  const w = receipt.work_unit;
  const p = receipt.proof_of_serving;
  if (w.job_id !== p.job_id)
    return reject("job_id_mismatch", `the work unit's job_id ${w.job_id} differs from the proof's ${p.job_id}`);
  if (w.model_ref.model_id !== p.model_ref.model_id || w.model_ref.version !== p.model_ref.version)
    return reject(
      "model_ref_mismatch",
      `the work unit asks for model ${w.model_ref.model_id} v${w.model_ref.version}, the proof serves model ${p.model_ref.model_id} v${p.model_ref.version}`,
    );
  if (p.work_unit_hash !== digests.workUnit)
    return reject(
      "work_unit_hash_mismatch",
      `the proof's work_unit_hash ${p.work_unit_hash} is not the EIP-712 digest of this work unit (${digests.workUnit}) under this chain and settlement contract`,
    );
  return null;
}

/** When the raw input travels with the receipt, its sha256 is the signed input_hash. */
export function checkInputHash(receipt: Receipt): Rejection | null {
  const input = receipt.work_unit.input;
  if (input === undefined) return null;
  const actual = sha256(Buffer.from(input, "base64"));
  if (actual !== receipt.work_unit.input_hash)
    return reject(
      "input_hash_mismatch",
      `sha256 of the input is ${actual}, the work unit signs ${receipt.work_unit.input_hash}`,
    );
  return null;
}

/** The receipt reached the oracle no later than expires_at (+ grace seconds). */
export function checkExpiry(receipt: Receipt, receivedAt: number, graceSeconds: number): Rejection | null {
  const expiresAt = receipt.work_unit.expires_at;
  if (receivedAt > expiresAt + graceSeconds)
    return reject(
      "expired",
      `the work unit expired at ${expiresAt} (unix seconds); the receipt arrived at ${receivedAt} (grace ${graceSeconds} s)`,
    );
  return null;
}

/** Who signed what: recovered addresses of the two signatures (null when unrecoverable). */
export interface Signers {
  client: string | null;
  node: string | null;
}

async function recoverOrNull(hash: Hex, signature: Hex): Promise<string | null> {
  try {
    return await recoverAddress({ hash, signature });
  } catch {
    return null;
  }
}

export async function recoverSigners(receipt: Receipt, digests: ReceiptDigests): Promise<Signers> {
  const [client, node] = await Promise.all([
    recoverOrNull(digests.workUnit, receipt.client_signature),
    recoverOrNull(digests.proofOfServing, receipt.proof_of_serving.signature),
  ]);
  return { client, node };
}

/** The client signed the work unit and the node signed the proof, both under this domain. */
export function checkSigners(receipt: Receipt, signers: Signers): Rejection | null {
  if (signers.client !== receipt.work_unit.requested_by)
    return reject(
      "bad_client_signature",
      `client_signature was not made by requested_by ${receipt.work_unit.requested_by} over this work unit on this chain and settlement contract (recovered ${signers.client ?? "nothing"})`,
    );
  if (signers.node !== receipt.proof_of_serving.node_id)
    return reject(
      "bad_node_signature",
      `the proof's signature was not made by node_id ${receipt.proof_of_serving.node_id} over this proof on this chain and settlement contract (recovered ${signers.node ?? "nothing"})`,
    );
  return null;
}
