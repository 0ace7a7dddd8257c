// Groth16 proofs of simplenet inference: a node proves, an oracle (or anyone) verifies that a proof
// binds the expected weights commitment, input hash and output hash. Proving and verifying use the
// committed setup fixtures in circuits/simplenet/setup/ (see circuits/build.ts).
import { readFile } from "node:fs/promises";
import path from "node:path";

import { WitnessCalculatorBuilder, type WitnessCalculator } from "circom_runtime";
import * as snarkjs from "snarkjs";
import { z } from "zod";

import { circuitInput, FIELD_PRIME, forward, inputHash, outputHash, weightsCommitment } from "./simplenet/quantised.ts";
import { encodeZkOutput, quantisedInputOfBody } from "./simplenet/wire.ts";

export const SETUP_DIR = path.join(import.meta.dirname, "simplenet", "setup");
export const GROTH16 = "groth16";
/** The circuit's public signals, in the order of the proof's `public_signals`. */
export const PUBLIC_SIGNAL_NAMES = ["weightsCommitment", "inputHash", "outputHash"] as const;

/** The receipt's `zk_proof` (sdk/receipt.ts zkProofJsonSchema) for a Groth16 proof. */
export interface ZkProofJson {
  system: string;
  proof: Record<string, unknown>;
  public_signals: string[];
}

export interface ExpectedSignals {
  weightsCommitment: bigint;
  inputHash: bigint;
  outputHash: bigint;
}

/** Why a proof was refused: a machine-readable code and a sentence saying what was wrong. */
export type ZkRejectReason =
  | "unsupported_system"
  | "malformed_proof"
  | "wrong_public_signal_count"
  | "swapped_public_signals"
  | "wrong_model_version"
  | "wrong_input"
  | "wrong_output"
  | "invalid_proof";

export type ZkVerdict = { ok: true } | { ok: false; reason: ZkRejectReason; message: string };

export class ZkProofFormatError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "ZkProofFormatError";
  }
}

export class ZkSetupError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "ZkSetupError";
  }
}

/** The BN254 base field order: proof coordinates lie below it (public signals below FIELD_PRIME). */
const BASE_FIELD = 21888242871839275222246405745257275088696311157297823662689037894645226208583n;

const DECIMAL = /^[0-9]{1,78}$/;
/** Zod runs every check even after one failed, so the bounds must not assume the digits were valid. */
const below = (bound: bigint) => (v: string) => !DECIMAL.test(v) || BigInt(v) < bound;
const fieldElement = z
  .string()
  .regex(DECIMAL, "expected a decimal field element")
  .refine(below(FIELD_PRIME), "not below the BN254 scalar field order");
const coordinate = z
  .string()
  .regex(DECIMAL, "expected a decimal coordinate")
  .refine(below(BASE_FIELD), "not below the BN254 base field order");
/** Affine G1 point (x, y, 1) on y² = x³ + 3. */
const g1Point = z.tuple([coordinate, coordinate, z.literal("1")]).refine(([x, y]) => {
  if (!DECIMAL.test(x) || !DECIMAL.test(y)) return true;
  const [X, Y] = [BigInt(x), BigInt(y)];
  return (Y * Y) % BASE_FIELD === (X * X * X + 3n) % BASE_FIELD;
}, "not a point on the BN254 curve");
const groth16ProofSchema = z.object({
  pi_a: g1Point,
  pi_b: z.tuple([
    z.tuple([coordinate, coordinate]),
    z.tuple([coordinate, coordinate]),
    z.tuple([z.literal("1"), z.literal("0")]),
  ]),
  pi_c: g1Point,
  protocol: z.literal("groth16"),
  curve: z.literal("bn128"),
});
export type Groth16Proof = z.infer<typeof groth16ProofSchema>;

/** The setup a prover or verifier needs, loaded once. */
export interface SimplenetSetup {
  wasm: Uint8Array;
  zkey: Uint8Array;
  vkey: unknown;
}

/** Reads the verification key only (all a verifier needs). */
export async function loadVerificationKey(dir = SETUP_DIR): Promise<unknown> {
  const file = path.join(dir, "verification_key.json");
  try {
    return JSON.parse(await readFile(file, "utf8"));
  } catch (error) {
    throw new ZkSetupError(`cannot read the verification key ${file}: run \`npm run circuits:build\``, {
      cause: error,
    });
  }
}

/** Reads the wasm, proving key and verification key. */
export async function loadSetup(dir = SETUP_DIR): Promise<SimplenetSetup> {
  const read = async (name: string) => {
    try {
      return new Uint8Array(await readFile(path.join(dir, name)));
    } catch (error) {
      throw new ZkSetupError(`cannot read ${path.join(dir, name)}: run \`npm run circuits:build\``, { cause: error });
    }
  };
  const [wasm, zkey, vkey] = await Promise.all([
    read("simplenet.wasm"),
    read("simplenet_final.zkey"),
    loadVerificationKey(dir),
  ]);
  return { wasm, zkey, vkey };
}

export interface InferenceProof {
  zkProof: ZkProofJson;
  /** The quantised output (scale 2^16) the proof commits to. */
  output: number[];
  expected: ExpectedSignals;
}

/**
 * A warm prover: the circuit's witness calculator compiled once and the proving key held in memory,
 * so a proof costs the witness (tens of ms) and the Groth16 prover's multi-exponentiations, not a
 * wasm compile and a key read. snarkjs keeps its BN254 curve (and worker threads) as a process-wide
 * singleton after the first proof. Proofs run one at a time: they are CPU-bound, and the witness
 * calculator's wasm memory is not reentrant.
 */
export class SimplenetProver {
  readonly setup: SimplenetSetup;
  readonly #calculator: Promise<WitnessCalculator>;
  #queue: Promise<unknown> = Promise.resolve();

  constructor(setup: SimplenetSetup) {
    this.setup = setup;
    this.#calculator = WitnessCalculatorBuilder(setup.wasm);
    // Surfaced by the first prove(); never an unhandled rejection meanwhile.
    this.#calculator.catch(() => undefined);
  }

  static async load(dir = SETUP_DIR): Promise<SimplenetProver> {
    return new SimplenetProver(await loadSetup(dir));
  }

  /** Runs the quantised model on `x` and proves it. `weights` are the int8 weights, `x` the quantised input. */
  prove(weights: ArrayLike<number>, x: ArrayLike<number>): Promise<InferenceProof> {
    const run = this.#queue.then(() => this.#prove(weights, x));
    this.#queue = run.catch(() => undefined);
    return run;
  }

  async #prove(weights: ArrayLike<number>, x: ArrayLike<number>): Promise<InferenceProof> {
    const { output } = forward(weights, x);
    const calculator = await this.#calculator;
    const wtns = await calculator.calculateWTNSBin(circuitInput(weights, x), true);
    const { proof, publicSignals } = await snarkjs.groth16.prove(
      { type: "mem", data: this.setup.zkey },
      { type: "mem", data: wtns },
    );
    return {
      zkProof: { system: GROTH16, proof: { ...proof }, public_signals: publicSignals },
      output,
      expected: {
        weightsCommitment: weightsCommitment(weights),
        inputHash: inputHash(x),
        outputHash: outputHash(output),
      },
    };
  }
}

const provers = new WeakMap<SimplenetSetup, SimplenetProver>();

/** Runs the quantised model on `x` and proves it, with a warm prover kept per loaded setup. */
export function prove(
  setup: SimplenetSetup,
  weights: ArrayLike<number>,
  x: ArrayLike<number>,
): Promise<InferenceProof> {
  let prover = provers.get(setup);
  if (prover === undefined) {
    prover = new SimplenetProver(setup);
    provers.set(setup, prover);
  }
  return prover.prove(weights, x);
}

const reject = (reason: ZkRejectReason, message: string): ZkVerdict => ({ ok: false, reason, message });

/**
 * Checks that `zkProof` is a valid Groth16 proof of simplenet AND that its public signals are
 * exactly this version's weights commitment, this input's hash and this output's hash. The binding
 * is checked before the pairing, so a valid proof of another job is refused with the precise reason.
 */
export async function verify(vkey: unknown, zkProof: ZkProofJson, expected: ExpectedSignals): Promise<ZkVerdict> {
  if (zkProof.system !== GROTH16) {
    return reject("unsupported_system", `proof system "${zkProof.system}" is not "${GROTH16}"`);
  }
  const parsed = groth16ProofSchema.safeParse(zkProof.proof);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    return reject(
      "malformed_proof",
      `malformed Groth16 proof at ${issue?.path.join(".") || "proof"}: ${issue?.message ?? "invalid"}`,
    );
  }
  const signals = zkProof.public_signals;
  if (signals.length !== PUBLIC_SIGNAL_NAMES.length) {
    return reject(
      "wrong_public_signal_count",
      `expected ${PUBLIC_SIGNAL_NAMES.length} public signals (${PUBLIC_SIGNAL_NAMES.join(", ")}), got ${signals.length}`,
    );
  }
  const badSignal = signals.findIndex((s) => !fieldElement.safeParse(s).success);
  if (badSignal >= 0) {
    return reject("malformed_proof", `public signal ${badSignal} is not a decimal element of the BN254 scalar field`);
  }
  const got = signals.map((s) => BigInt(s));
  const want = [expected.weightsCommitment, expected.inputHash, expected.outputHash];
  const sameValues = [...got].sort().join() === [...want].sort().join();
  if (sameValues && got.some((v, i) => v !== want[i])) {
    return reject(
      "swapped_public_signals",
      `public signals hold the expected values in the wrong order: the order is ${PUBLIC_SIGNAL_NAMES.join(", ")}`,
    );
  }
  if (got[0] !== want[0]) {
    return reject(
      "wrong_model_version",
      `proof is for weights commitment ${got[0]}, not this model version's ${want[0]}`,
    );
  }
  if (got[1] !== want[1]) return reject("wrong_input", `proof is for input hash ${got[1]}, not this job's ${want[1]}`);
  if (got[2] !== want[2]) {
    return reject("wrong_output", `proof is for output hash ${got[2]}, not the receipt's ${want[2]}`);
  }
  let valid: boolean;
  try {
    valid = await snarkjs.groth16.verify(vkey, signals, parsed.data);
  } catch (error) {
    return reject("malformed_proof", `proof points are not valid curve points: ${(error as Error).message}`);
  }
  // snarkjs also answers false for a B point off the curve or outside its subgroup; that is a
  // malformed proof too, but indistinguishable here from a well-formed wrong one.
  return valid ? { ok: true } : reject("invalid_proof", "the Groth16 pairing check failed: the proof is not valid");
}

/** Ends snarkjs's curve worker threads so that a process can exit (call once, when done with zk). */
export async function releaseZkResources(): Promise<void> {
  const holder = globalThis as { curve_bn128?: { terminate(): Promise<void> } | null };
  const curve = holder.curve_bn128;
  holder.curve_bn128 = null;
  if (curve) await curve.terminate();
}

/** The proof as the arguments of the Solidity verifier's `verifyProof(a, b, c, publicSignals)`. */
export function solidityCallData(zkProof: ZkProofJson): {
  a: [bigint, bigint];
  b: [[bigint, bigint], [bigint, bigint]];
  c: [bigint, bigint];
  publicSignals: bigint[];
} {
  const parsed = groth16ProofSchema.safeParse(zkProof.proof);
  if (!parsed.success) {
    throw new ZkProofFormatError("not a snarkjs Groth16 proof: cannot encode it for the Solidity verifier", {
      cause: parsed.error,
    });
  }
  const p = parsed.data;
  const n = (s: string) => BigInt(s);
  // G2 coordinates are (c1, c0) in the precompile's order, the reverse of snarkjs's JSON.
  return {
    a: [n(p.pi_a[0]), n(p.pi_a[1])],
    b: [
      [n(p.pi_b[0][1]), n(p.pi_b[0][0])],
      [n(p.pi_b[1][1]), n(p.pi_b[1][0])],
    ],
    c: [n(p.pi_c[0]), n(p.pi_c[1])],
    publicSignals: zkProof.public_signals.map(n),
  };
}

/**
 * What a node agent serving a zk-required simplenet version calls per job: the /infer request body
 * in, the output body to return (and hash into the proof of serving) and the receipt's `zk_proof` out.
 * Throws QuantisationError (a 400 for the client) when the body is not a zk job.
 */
export async function proveInferenceBody(
  prover: SimplenetProver | SimplenetSetup,
  weights: ArrayLike<number>,
  inputBody: Uint8Array,
): Promise<{ outputBody: Uint8Array; zkProof: ZkProofJson }> {
  const x = quantisedInputOfBody(inputBody);
  const proof = prover instanceof SimplenetProver ? await prover.prove(weights, x) : await prove(prover, weights, x);
  return { outputBody: encodeZkOutput(proof.output), zkProof: proof.zkProof };
}
