// The quantised simplenet: the exact integer computation that circuits/simplenet/simplenet.circom
// proves, as pure functions. A node agent serving a zk-required version runs this (not onnxruntime's
// float path) so that the output it returns is the output the proof commits to.
//
// Fixed point (docs/zkml.md has the reasoning):
//   weights, biases  q = round(w · 2^8), must lie in int8 [-128, 127]
//   input            x = round(v · 2^8) of the float32 value v, must lie in [-2^15, 2^15) (|v| < 128)
//   hidden           h = floor(max(0, Σ x·W1 + b1·2^8) / 2^8)                 (scale 2^8)
//   output           y = Σ h·W2 + b2·2^8                                        (scale 2^16, exact)
// `round` is Math.round (halves go up). Every intermediate stays below 2^32, so plain JS numbers are exact.
import onnxProto from "onnx-proto";
import { poseidon1 } from "poseidon-lite/poseidon1";
import { poseidon2 } from "poseidon-lite/poseidon2";
import { poseidon3 } from "poseidon-lite/poseidon3";
import { poseidon4 } from "poseidon-lite/poseidon4";
import { poseidon5 } from "poseidon-lite/poseidon5";
import { poseidon6 } from "poseidon-lite/poseidon6";
import { poseidon7 } from "poseidon-lite/poseidon7";
import { poseidon8 } from "poseidon-lite/poseidon8";
import { poseidon9 } from "poseidon-lite/poseidon9";
import { poseidon10 } from "poseidon-lite/poseidon10";
import { poseidon11 } from "poseidon-lite/poseidon11";
import { poseidon12 } from "poseidon-lite/poseidon12";
import { poseidon13 } from "poseidon-lite/poseidon13";
import { poseidon14 } from "poseidon-lite/poseidon14";
import { poseidon15 } from "poseidon-lite/poseidon15";
import { poseidon16 } from "poseidon-lite/poseidon16";

const { onnx } = onnxProto;

export const N_IN = 16;
export const N_HIDDEN = 32;
export const N_OUT = 8;
/** Fractional bits of weights, biases, input and hidden activations. */
export const SCALE_BITS = 8;
/** Fractional bits of the output (two scaled factors multiplied, never rounded). */
export const OUTPUT_SCALE_BITS = 2 * SCALE_BITS;
export const WEIGHT_MIN = -128;
export const WEIGHT_MAX = 127;
/** Quantised inputs lie in [INPUT_MIN, INPUT_MAX]: keeps the layer-1 accumulator inside the circuit's 28 bits. */
export const INPUT_MIN = -(2 ** 15);
export const INPUT_MAX = 2 ** 15 - 1;
/** Weights packed per field element for the commitment: 31 × 8 bits = 248 < 254. */
export const WEIGHTS_PER_PACK = 31;
const WEIGHT_BITS = 8;
const N_W1 = N_IN * N_HIDDEN;
const N_W2 = N_HIDDEN * N_OUT;
export const N_WEIGHTS = N_W1 + N_HIDDEN + N_W2 + N_OUT;
/** The BN254 scalar field order: circuit arithmetic is modulo this prime. */
export const FIELD_PRIME = 21888242871839275222246405745257275088548364400416034343698204186575808495617n;

export class QuantisationError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "QuantisationError";
  }
}

/** Float weights in the circuit's canonical order: W1 [in][hidden], b1, W2 [hidden][out], b2. */
export interface SimplenetFloatWeights {
  w1: Float32Array;
  b1: Float32Array;
  w2: Float32Array;
  b2: Float32Array;
}

/** Reads the four initializers of a simplenet ONNX file (float32, raw little-endian data). */
export function floatWeightsFromOnnx(bytes: Uint8Array): SimplenetFloatWeights {
  let model;
  try {
    model = onnx.ModelProto.decode(bytes);
  } catch (error) {
    throw new QuantisationError("not an ONNX model: the bytes do not decode as onnx.ModelProto", { cause: error });
  }
  const read = (name: string, count: number): Float32Array => {
    const tensor = model.graph?.initializer?.find((t) => t.name === name);
    if (!tensor) throw new QuantisationError(`ONNX model has no initializer "${name}": is this simplenet?`);
    const raw = tensor.rawData;
    if (!raw || raw.length !== count * 4) {
      throw new QuantisationError(`initializer "${name}" must hold ${count} float32 values as raw data`);
    }
    const view = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
    return Float32Array.from({ length: count }, (_, i) => view.getFloat32(i * 4, true));
  };
  return { w1: read("w1", N_W1), b1: read("b1", N_HIDDEN), w2: read("w2", N_W2), b2: read("b2", N_OUT) };
}

/** int8 weights in canonical order (length N_WEIGHTS). Throws if a weight does not fit int8 at scale 2^8. */
export function quantiseWeights(weights: SimplenetFloatWeights): Int8Array {
  const all = [...weights.w1, ...weights.b1, ...weights.w2, ...weights.b2];
  if (all.length !== N_WEIGHTS) throw new QuantisationError(`expected ${N_WEIGHTS} weights, got ${all.length}`);
  const out = new Int8Array(N_WEIGHTS);
  all.forEach((w, i) => {
    const q = Math.round(w * 2 ** SCALE_BITS);
    if (!Number.isFinite(q) || q < WEIGHT_MIN || q > WEIGHT_MAX) {
      throw new QuantisationError(
        `weight ${i} = ${w} does not fit int8 at scale 2^${SCALE_BITS} (|w| must be < 0.5): this circuit cannot prove this model`,
      );
    }
    out[i] = q;
  });
  return out;
}

/** The quantised input: float32 values at scale 2^8. Throws naming the first value out of range. */
export function quantiseInput(input: ArrayLike<number>): Int32Array {
  if (input.length !== N_IN) throw new QuantisationError(`input has ${input.length} values, expected ${N_IN}`);
  const out = new Int32Array(N_IN);
  for (let i = 0; i < N_IN; i++) {
    const v = Math.fround(input[i] ?? Number.NaN);
    const q = Math.round(v * 2 ** SCALE_BITS);
    if (!Number.isFinite(q) || q < INPUT_MIN || q > INPUT_MAX) {
      throw new QuantisationError(
        `input[${i}] = ${input[i]} is outside the zk range: quantised values must lie in [${INPUT_MIN}, ${INPUT_MAX}] (|value| < 128)`,
      );
    }
    out[i] = q;
  }
  return out;
}

function checkQuantisedInput(x: ArrayLike<number>): void {
  if (x.length !== N_IN) throw new QuantisationError(`quantised input has ${x.length} values, expected ${N_IN}`);
  for (let i = 0; i < N_IN; i++) {
    const v = x[i] ?? Number.NaN;
    if (!Number.isInteger(v) || v < INPUT_MIN || v > INPUT_MAX) {
      throw new QuantisationError(`quantised input[${i}] = ${v} must be an integer in [${INPUT_MIN}, ${INPUT_MAX}]`);
    }
  }
}

function checkWeights(q: ArrayLike<number>): void {
  if (q.length !== N_WEIGHTS) throw new QuantisationError(`expected ${N_WEIGHTS} quantised weights, got ${q.length}`);
}

export interface QuantisedForward {
  /** Hidden activations at scale 2^8 (what the circuit's `hidden` signals hold). */
  hidden: number[];
  /** Outputs at scale 2^16. */
  output: number[];
}

/** The integer forward pass, exactly as the circuit computes it. */
export function forward(weights: ArrayLike<number>, x: ArrayLike<number>): QuantisedForward {
  checkWeights(weights);
  checkQuantisedInput(x);
  const w = (i: number) => weights[i] as number;
  const hidden: number[] = [];
  for (let j = 0; j < N_HIDDEN; j++) {
    let acc = w(N_W1 + j) * 2 ** SCALE_BITS;
    for (let i = 0; i < N_IN; i++) acc += (x[i] as number) * w(i * N_HIDDEN + j);
    hidden.push(acc > 0 ? Math.floor(acc / 2 ** SCALE_BITS) : 0);
  }
  const output: number[] = [];
  for (let k = 0; k < N_OUT; k++) {
    let acc = w(N_W1 + N_HIDDEN + N_W2 + k) * 2 ** SCALE_BITS;
    for (let j = 0; j < N_HIDDEN; j++) acc += (hidden[j] as number) * w(N_W1 + N_HIDDEN + j * N_OUT + k);
    output.push(acc);
  }
  return { hidden, output };
}

/** A signed integer as the field element the circuit sees (negatives wrap modulo the prime). */
export function toField(value: number | bigint): bigint {
  const v = BigInt(value) % FIELD_PRIME;
  return v < 0n ? v + FIELD_PRIME : v;
}

const POSEIDON: ReadonlyArray<(inputs: bigint[]) => bigint> = [
  poseidon1,
  poseidon2,
  poseidon3,
  poseidon4,
  poseidon5,
  poseidon6,
  poseidon7,
  poseidon8,
  poseidon9,
  poseidon10,
  poseidon11,
  poseidon12,
  poseidon13,
  poseidon14,
  poseidon15,
  poseidon16,
];

function poseidon(inputs: bigint[]): bigint {
  const f = POSEIDON[inputs.length - 1];
  if (!f) throw new QuantisationError(`Poseidon takes 1 to 16 inputs, got ${inputs.length}`);
  return f(inputs);
}

/** Poseidon(16) of the first 16 elements, then each further chunk of ≤ 15 absorbed after the running hash (PoseidonChain in the circuit). */
export function poseidonChain(values: readonly bigint[]): bigint {
  if (values.length === 0) throw new QuantisationError("cannot hash an empty vector");
  let h = poseidon(values.slice(0, 16));
  for (let i = 16; i < values.length; i += 15) h = poseidon([h, ...values.slice(i, i + 15)]);
  return h;
}

/** The weights packed 31 to a field element, each as its unsigned offset (q + 128) in 8 bits, lowest first. */
export function packWeights(weights: ArrayLike<number>): bigint[] {
  checkWeights(weights);
  const packed: bigint[] = [];
  for (let p = 0; p * WEIGHTS_PER_PACK < N_WEIGHTS; p++) {
    let acc = 0n;
    const end = Math.min((p + 1) * WEIGHTS_PER_PACK, N_WEIGHTS);
    for (let i = end - 1; i >= p * WEIGHTS_PER_PACK; i--) {
      const q = weights[i] as number;
      if (!Number.isInteger(q) || q < WEIGHT_MIN || q > WEIGHT_MAX) {
        throw new QuantisationError(`quantised weight ${i} = ${q} is not an int8`);
      }
      acc = (acc << BigInt(WEIGHT_BITS)) | BigInt(q - WEIGHT_MIN);
    }
    packed.push(acc);
  }
  return packed;
}

/** The model version's weights commitment: the circuit's first public signal. */
export function weightsCommitment(weights: ArrayLike<number>): bigint {
  return poseidonChain(packWeights(weights));
}

/** Poseidon of the quantised input vector: the second public signal. */
export function inputHash(x: ArrayLike<number>): bigint {
  checkQuantisedInput(x);
  return poseidonChain(Array.from(x, toField));
}

/** Poseidon of the output vector (scale 2^16): the third public signal. */
export function outputHash(y: ArrayLike<number>): bigint {
  if (y.length !== N_OUT) throw new QuantisationError(`output has ${y.length} values, expected ${N_OUT}`);
  return poseidonChain(Array.from(y, toField));
}

/** The circuit's input signals (decimal field elements) for a witness. */
export function circuitInput(weights: ArrayLike<number>, x: ArrayLike<number>): Record<string, string | string[]> {
  const { output } = forward(weights, x);
  return {
    weightsCommitment: weightsCommitment(weights).toString(),
    inputHash: inputHash(x).toString(),
    outputHash: outputHash(output).toString(),
    x: Array.from(x, (v) => toField(v).toString()),
    w: Array.from(weights, (v) => toField(v).toString()),
  };
}

/** Output integers back to real values (exact: y / 2^16 is a dyadic rational well inside a double). */
export function dequantiseOutput(y: readonly number[]): number[] {
  return y.map((v) => v / 2 ** OUTPUT_SCALE_BITS);
}
