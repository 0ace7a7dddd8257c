// zkML proofs: a pluggable verifier per proof system. The zkML work registers real verifiers; until
// then a model version that names a zk verifier cannot be paid (its receipts are rejected with a
// clear reason), never paid unchecked.
import type { Address } from "viem";

import type { Receipt } from "../../sdk/receipt.ts";
import { type Rejection, reject } from "./reasons.ts";

export type ZkProof = NonNullable<Receipt["zk_proof"]>;

/** Checks one proof system's proofs. `verify` resolves false (or throws) on a bad proof. */
export interface ZkVerifier {
  readonly system: string;
  verify(input: { proof: ZkProof; receipt: Receipt; verifierContract: Address }): Promise<boolean>;
}

/** Verifiers by proof-system name. */
export class ZkVerifierRegistry {
  readonly #verifiers = new Map<string, ZkVerifier>();

  register(verifier: ZkVerifier): this {
    this.#verifiers.set(verifier.system, verifier);
    return this;
  }

  get(system: string): ZkVerifier | undefined {
    return this.#verifiers.get(system);
  }
}

/** Where the served version requires a proof (`zkVerifier` set), a registered verifier accepts it. */
export async function checkZkProof(
  receipt: Receipt,
  zkVerifier: Address | null,
  registry: ZkVerifierRegistry,
): Promise<Rejection | null> {
  if (zkVerifier === null) return null;
  const proof = receipt.zk_proof;
  if (proof === undefined)
    return reject("zk_proof_missing", `the model version requires a zk proof (verifier ${zkVerifier}); none was sent`);
  const verifier = registry.get(proof.system);
  if (verifier === undefined) return reject("no_zk_verifier", `no verifier for system ${proof.system}`);
  let valid: boolean;
  try {
    valid = await verifier.verify({ proof, receipt, verifierContract: zkVerifier });
  } catch {
    valid = false;
  }
  return valid ? null : reject("zk_proof_invalid", `the ${proof.system} proof does not verify`);
}
