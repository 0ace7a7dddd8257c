// The oracle's verifier for ezkl (Halo2, KZG) proofs of simplenet: it checks that the proof's public
// instances are exactly the job's input and output (ezkl's fixed point, scale 2^13), then asks the
// version's deployed Halo2Verifier (an eth_call, no gas) whether the proof holds. The weights are
// fixed in ezkl's verifying key, so the verifier contract itself is the version's commitment.
import { createHash } from "node:crypto";
import { readFile } from "node:fs/promises";
import path from "node:path";

import { Interface } from "ethers";

import { InferInputError, parseInferInput } from "../models/simplenet/contract.ts";
import type { ZkProofJson } from "./prover.ts";
import { FIELD_PRIME, N_IN, N_OUT, toField } from "./simplenet/quantised.ts";
import type { ZkVerificationContext, ZkVerificationResult, ZkVerifier } from "./zk-verifier.ts";

export const EZKL_SYSTEM = "ezkl-halo2";
/** ezkl's input and output scale (settings.json run_args.input_scale, model_output_scales). */
export const EZKL_SCALE_BITS = 13;

const halo2 = new Interface(["function verifyProof(bytes proof, uint256[] instances) returns (bool)"]);

/** Runs an eth_call and returns its result data (the oracle's chain client provides it). */
export type EthCall = (request: { to: string; data: string }) => Promise<string>;

/** ezkl's quantisation of a real value: round(v · 2^13), halves away from zero (Rust's f64::round). */
export function ezklQuantise(value: number): bigint {
  const scaled = value * 2 ** EZKL_SCALE_BITS;
  return BigInt(Math.sign(scaled) * Math.round(Math.abs(scaled)));
}

const reject = (reason: string, message: string): ZkVerificationResult => ({ ok: false, reason, message });
const sha256Hex = (bytes: Uint8Array) => `0x${createHash("sha256").update(bytes).digest("hex")}`;

/** The instances a proof of this job must carry: the 16 inputs then the 8 outputs, as field elements. */
export function ezklInstancesOf(input: Uint8Array, output: Uint8Array): bigint[] {
  parseInferInput(input, N_IN); // validates shape and range; ezkl itself reads the JSON doubles
  const inputs = (JSON.parse(Buffer.from(input).toString("utf8")) as { input: number[] }).input;
  let outputs: unknown;
  try {
    outputs = (JSON.parse(Buffer.from(output).toString("utf8")) as { output?: unknown }).output;
  } catch (error) {
    throw new InferInputError(`output body is not JSON: ${(error as Error).message}`);
  }
  if (!Array.isArray(outputs) || outputs.length !== N_OUT) {
    throw new InferInputError(`output body must be {"output":[${N_OUT} numbers]}`);
  }
  const outputInstances = outputs.map((v: unknown, i) => {
    const scaled = typeof v === "number" ? v * 2 ** EZKL_SCALE_BITS : Number.NaN;
    if (!Number.isSafeInteger(scaled)) throw new InferInputError(`output[${i}] is not a multiple of 2^-13`);
    return toField(scaled);
  });
  return [...inputs.map((v) => toField(ezklQuantise(v))), ...outputInstances];
}

export class EzklHalo2Verifier implements ZkVerifier {
  readonly system = EZKL_SYSTEM;
  readonly #ethCall: EthCall;
  readonly #verifier: string;
  readonly #verifyingKeyHash: string;

  /**
   * @param ethCall the oracle's eth_call
   * @param verifier the version's Halo2Verifier address (its `zkVerifier`)
   * @param verifyingKeyHash sha256 of ezkl's vk.key, as the version records it
   */
  constructor(ethCall: EthCall, verifier: string, verifyingKeyHash: string) {
    this.#ethCall = ethCall;
    this.#verifier = verifier;
    this.#verifyingKeyHash = verifyingKeyHash.toLowerCase();
  }

  async verify(zkProof: ZkProofJson, context: ZkVerificationContext): Promise<ZkVerificationResult> {
    if (context.verifyingKeyHash.toLowerCase() !== this.#verifyingKeyHash) {
      return reject(
        "wrong_verifying_key",
        `the version records verifying key ${context.verifyingKeyHash}; this verifier holds ${this.#verifyingKeyHash}`,
      );
    }
    if (sha256Hex(context.input) !== context.inputSha256.toLowerCase()) {
      return reject("input_mismatch", "the input bytes do not hash to the work unit's input_hash");
    }
    if (sha256Hex(context.output) !== context.outputSha256.toLowerCase()) {
      return reject("output_mismatch", "the output bytes do not hash to the proof of serving's output_hash");
    }
    const hexProof = zkProof.proof.hex_proof;
    if (typeof hexProof !== "string" || !/^0x([0-9a-fA-F]{2})+$/.test(hexProof)) {
      return reject("malformed_proof", "proof.hex_proof must be the 0x-prefixed hex proof ezkl writes");
    }
    const signals = zkProof.public_signals;
    if (signals.length !== N_IN + N_OUT) {
      return reject(
        "wrong_public_signal_count",
        `expected ${N_IN + N_OUT} instances (inputs, outputs), got ${signals.length}`,
      );
    }
    if (!signals.every((s) => /^[0-9]{1,78}$/.test(s) && BigInt(s) < FIELD_PRIME)) {
      return reject("malformed_proof", "instances must be decimal elements of the BN254 scalar field");
    }
    let expected: bigint[];
    try {
      expected = ezklInstancesOf(context.input, context.output);
    } catch (error) {
      if (!(error instanceof InferInputError)) throw error;
      return reject("not_provable", `the job's bytes are not a zk job: ${error.message}`);
    }
    const got = signals.map((s) => BigInt(s));
    const wrongInput = got.slice(0, N_IN).findIndex((v, i) => v !== expected[i]);
    if (wrongInput >= 0) return reject("wrong_input", `instance ${wrongInput} is not the job's input[${wrongInput}]`);
    const wrongOutput = got.slice(N_IN).findIndex((v, i) => v !== expected[N_IN + i]);
    if (wrongOutput >= 0) {
      return reject("wrong_output", `instance ${N_IN + wrongOutput} is not the receipt's output[${wrongOutput}]`);
    }
    const data = halo2.encodeFunctionData("verifyProof", [hexProof, got]);
    let valid = false;
    try {
      const result = await this.#ethCall({ to: this.#verifier, data });
      valid = BigInt(result) === 1n;
    } catch {
      // The generated Halo2 verifier reverts on a failed check instead of returning false.
      valid = false;
    }
    return valid ? { ok: true } : reject("invalid_proof", "the version's Halo2 verifier refused the proof");
  }
}

/** The committed ezkl artifacts: circuits/ezkl/ (vk.key is what a version's verifyingKeyHash names). */
export const EZKL_DIR = path.join(import.meta.dirname, "ezkl");

/**
 * The oracle's ezkl verifier for every version at once: each check asks the job's own version's
 * Halo2Verifier (the context's `verifierContract`), holding ezkl's verifying key hash.
 */
export class EzklHalo2Verifiers implements ZkVerifier {
  readonly system = EZKL_SYSTEM;
  readonly #ethCall: EthCall;
  readonly verifyingKeyHash: string;

  constructor(ethCall: EthCall, verifyingKeyHash: string) {
    this.#ethCall = ethCall;
    this.verifyingKeyHash = verifyingKeyHash.toLowerCase();
  }

  /** Loads the key hash from `dir`; undefined where the ezkl artifacts are not present. */
  static async load(ethCall: EthCall, dir = EZKL_DIR): Promise<EzklHalo2Verifiers | undefined> {
    let vk: Buffer;
    try {
      vk = await readFile(path.join(dir, "vk.key"));
    } catch {
      return undefined;
    }
    return new EzklHalo2Verifiers(ethCall, sha256Hex(vk));
  }

  verify(zkProof: ZkProofJson, context: ZkVerificationContext): Promise<ZkVerificationResult> {
    if (context.verifierContract === undefined) {
      return Promise.resolve(reject("wrong_verifier", "the version's verifier contract is not known"));
    }
    return new EzklHalo2Verifier(this.#ethCall, context.verifierContract, this.verifyingKeyHash).verify(
      zkProof,
      context,
    );
  }
}
