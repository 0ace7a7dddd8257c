// Stable, machine-readable reasons a receipt is rejected. The codes are part of the API: add new
// ones, never rename.
export const REJECTION_CODES = [
  "job_id_mismatch",
  "model_ref_mismatch",
  "work_unit_hash_mismatch",
  "input_hash_mismatch",
  "expired",
  "bad_client_signature",
  "bad_node_signature",
  "node_not_registered",
  "node_jailed",
  "node_not_eligible",
  "node_tier_too_low",
  "unknown_model",
  "unknown_version",
  "not_serving_version",
  "price_above_max_fee",
  "duplicate_job",
  "insufficient_escrow",
  "zk_proof_missing",
  "no_zk_verifier",
  "zk_proof_invalid",
] as const;

export type RejectionCode = (typeof REJECTION_CODES)[number];

/** Why a receipt is not paid: a stable code and a sentence for people. */
export interface Rejection {
  code: RejectionCode;
  message: string;
}

export const reject = (code: RejectionCode, message: string): Rejection => ({ code, message });
