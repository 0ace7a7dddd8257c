// zkML proofs: where the served version names a zk verifier, the receipt must carry a proof that a
// verifier registered for its system accepts (circuits/zk-verifier.ts: Groth16 for simplenet, Halo2
// for ezkl artifacts). The proof's public inputs must bind the version's weights commitment, the
// job's input bytes and the served output bytes, so the receipt carries both sets of bytes.
import type { Address, Hex } from "viem";

import { GROTH16 } from "../../circuits/prover.ts";
import { ZkVerifierRegistry, type ZkVerifier } from "../../circuits/zk-verifier.ts";
import type { Receipt } from "../../sdk/receipt.ts";
import { type Rejection, reject } from "./reasons.ts";

export { ZkVerifierRegistry, type ZkVerifier };
export type ZkProof = NonNullable<Receipt["zk_proof"]>;

/** What the chain says a zk-required version's proofs must bind. */
export interface ZkRequirement {
  /** The version's `zkVerifier` contract. */
  verifier: Address;
  /** The version's recorded `verifyingKeyHash`. */
  verifyingKeyHash: Hex;
  /** The verifier's `weightsCommitment()`; null when it has none (an ezkl verifier bakes the weights in). */
  weightsCommitment: bigint | null;
}

/**
 * Where the served version requires a proof, a registered verifier accepts it. The verifier's own
 * reason (wrong_input, invalid_proof, …) leads the message of a `zk_proof_invalid` rejection.
 */
export async function checkZkProof(
  receipt: Receipt,
  zk: ZkRequirement | null,
  registry: ZkVerifierRegistry,
): Promise<Rejection | null> {
  if (zk === null) return null;
  const proof = receipt.zk_proof;
  if (proof === undefined)
    return reject("zk_proof_missing", `the model version requires a zk proof (verifier ${zk.verifier}); none was sent`);
  if (!registry.systems().includes(proof.system))
    return reject(
      "no_zk_verifier",
      `no verifier for system ${proof.system} (this oracle verifies: ${registry.systems().join(", ") || "none"})`,
    );
  const input = receipt.work_unit.input;
  if (input === undefined)
    return reject("zk_proof_invalid", "input_missing: a zk receipt carries work_unit.input, the bytes the proof binds");
  if (receipt.output === undefined)
    return reject("zk_proof_invalid", "output_missing: a zk receipt carries output, the bytes the proof binds");
  if (proof.system === GROTH16 && zk.weightsCommitment === null)
    return reject(
      "zk_proof_invalid",
      `wrong_verifier: the version's verifier ${zk.verifier} has no weightsCommitment(), so no Groth16 proof binds it`,
    );
  let result;
  try {
    result = await registry.check(proof, {
      weightsCommitment: zk.weightsCommitment ?? 0n,
      verifyingKeyHash: zk.verifyingKeyHash,
      verifierContract: zk.verifier,
      input: Buffer.from(input, "base64"),
      output: Buffer.from(receipt.output, "base64"),
      inputSha256: receipt.work_unit.input_hash,
      outputSha256: receipt.proof_of_serving.output_hash,
    });
  } catch (error) {
    return reject("zk_proof_invalid", `verifier_error: ${error instanceof Error ? error.message : String(error)}`);
  }
  return result.ok ? null : reject("zk_proof_invalid", `${result.reason}: ${result.message}`);
}
