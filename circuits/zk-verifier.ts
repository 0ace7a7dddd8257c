// The oracle's pluggable zk verification: a `ZkVerifier` per proof system, looked up by the
// receipt's `zk_proof.system`. The oracle registers `SimplenetGroth16Verifier` (and the ezkl one
// where its artifacts are present) at start-up: oracle/zk.ts.
import { createHash } from "node:crypto";
import { readFile } from "node:fs/promises";
import path from "node:path";

import { type ExpectedSignals, loadVerificationKey, SETUP_DIR, verify, type ZkProofJson } from "./prover.ts";
import { QuantisationError } from "./simplenet/quantised.ts";
import { inputHashOfBody, outputHashOfBody } from "./simplenet/wire.ts";

/** What the oracle knows about the job when it checks a zk proof. */
export interface ZkVerificationContext {
  /** The model version's weights commitment (its verifier contract's `weightsCommitment()`). */
  weightsCommitment: bigint;
  /** The version's `verifyingKeyHash` from the model registry (0x + 64 hex). */
  verifyingKeyHash: string;
  /** The version's `zkVerifier` contract (verifiers that ask the chain need it). */
  verifierContract?: string;
  /** The raw input bytes; their sha256 is the work unit's `input_hash`. */
  input: Uint8Array;
  /** The raw output bytes; their sha256 is the proof of serving's `output_hash`. */
  output: Uint8Array;
  /** The signed hashes, checked against the bytes so that the proof binds what was signed. */
  inputSha256: string;
  outputSha256: string;
}

export type ZkVerificationResult = { ok: true } | { ok: false; reason: string; message: string };

export interface ZkVerifier {
  /** The `zk_proof.system` this verifier handles, e.g. "groth16". */
  readonly system: string;
  verify(zkProof: ZkProofJson, context: ZkVerificationContext): Promise<ZkVerificationResult>;
}

/** Verifiers by system name, and the oracle's one call: is this receipt's proof acceptable? */
export class ZkVerifierRegistry {
  readonly #verifiers = new Map<string, ZkVerifier>();

  register(verifier: ZkVerifier): this {
    if (this.#verifiers.has(verifier.system)) {
      throw new Error(`a zk verifier for "${verifier.system}" is already registered`);
    }
    this.#verifiers.set(verifier.system, verifier);
    return this;
  }

  systems(): string[] {
    return [...this.#verifiers.keys()];
  }

  /** Refuses a missing proof when the version requires one; otherwise dispatches on `system`. */
  async check(zkProof: ZkProofJson | undefined, context: ZkVerificationContext): Promise<ZkVerificationResult> {
    if (zkProof === undefined) {
      return { ok: false, reason: "missing_proof", message: "this model version requires a zk proof; none was sent" };
    }
    const verifier = this.#verifiers.get(zkProof.system);
    if (!verifier) {
      return {
        ok: false,
        reason: "unsupported_system",
        message: `no verifier for proof system "${zkProof.system}" (supported: ${this.systems().join(", ") || "none"})`,
      };
    }
    return verifier.verify(zkProof, context);
  }
}

const sha256Hex = (bytes: Uint8Array) => `0x${createHash("sha256").update(bytes).digest("hex")}`;

/** sha256 of the verification key file as committed: the `verifyingKeyHash` a version records. */
export async function verifyingKeyHashOf(dir = SETUP_DIR): Promise<string> {
  return sha256Hex(await readFile(path.join(dir, "verification_key.json")));
}

/** Groth16 proofs of the simplenet circuit (snarkjs). */
export class SimplenetGroth16Verifier implements ZkVerifier {
  readonly system = "groth16";
  readonly #vkey: unknown;
  readonly #verifyingKeyHash: string;

  private constructor(vkey: unknown, verifyingKeyHash: string) {
    this.#vkey = vkey;
    this.#verifyingKeyHash = verifyingKeyHash;
  }

  static async load(dir = SETUP_DIR): Promise<SimplenetGroth16Verifier> {
    return new SimplenetGroth16Verifier(await loadVerificationKey(dir), await verifyingKeyHashOf(dir));
  }

  get verifyingKeyHash(): string {
    return this.#verifyingKeyHash;
  }

  async verify(zkProof: ZkProofJson, context: ZkVerificationContext): Promise<ZkVerificationResult> {
    if (context.verifyingKeyHash.toLowerCase() !== this.#verifyingKeyHash) {
      return {
        ok: false,
        reason: "wrong_verifying_key",
        message: `the version records verifying key ${context.verifyingKeyHash}; this verifier holds ${this.#verifyingKeyHash}`,
      };
    }
    if (sha256Hex(context.input) !== context.inputSha256.toLowerCase()) {
      return {
        ok: false,
        reason: "input_mismatch",
        message: "the input bytes do not hash to the work unit's input_hash",
      };
    }
    if (sha256Hex(context.output) !== context.outputSha256.toLowerCase()) {
      return {
        ok: false,
        reason: "output_mismatch",
        message: "the output bytes do not hash to the proof of serving's output_hash",
      };
    }
    let expected: ExpectedSignals;
    try {
      expected = {
        weightsCommitment: context.weightsCommitment,
        inputHash: inputHashOfBody(context.input),
        outputHash: outputHashOfBody(context.output),
      };
    } catch (error) {
      if (!(error instanceof QuantisationError)) throw error;
      return { ok: false, reason: "not_provable", message: `the job's bytes are not a zk job: ${error.message}` };
    }
    return verify(this.#vkey, zkProof, expected);
  }
}
