// The bytes a zk-required simplenet version serves, and their link to the circuit's public signals.
// The input is the ordinary /infer body (models/simplenet/contract.ts); the output carries the
// quantised output exactly: each value is y / 2^16, a dyadic rational that JSON writes and reads
// back without loss. So the oracle, holding the bytes whose sha256 the work unit and the proof of
// serving sign, recomputes the Poseidon hashes the proof must carry.
import { InferInputError, parseInferInput } from "../../models/simplenet/contract.ts";
import {
  inputHash,
  N_IN,
  N_OUT,
  OUTPUT_SCALE_BITS,
  outputHash,
  QuantisationError,
  quantiseInput,
} from "./quantised.ts";

/** Largest output magnitude the circuit can produce is below 2^32; anything beyond is not ours. */
const MAX_OUTPUT = 2 ** 40;

/** The quantised input of an /infer body. Throws QuantisationError saying what is wrong. */
export function quantisedInputOfBody(body: Uint8Array): Int32Array {
  try {
    return quantiseInput(parseInferInput(body, N_IN));
  } catch (error) {
    if (error instanceof InferInputError) throw new QuantisationError(`input body: ${error.message}`, { cause: error });
    throw error;
  }
}

/** The output body of a zk-required version: {"output":[y0/2^16, …]}. */
export function encodeZkOutput(y: readonly number[]): Uint8Array {
  if (y.length !== N_OUT || !y.every((v) => Number.isInteger(v) && Math.abs(v) < MAX_OUTPUT)) {
    throw new QuantisationError(`a zk output is ${N_OUT} integers below 2^40 in magnitude`);
  }
  return Buffer.from(JSON.stringify({ output: y.map((v) => v / 2 ** OUTPUT_SCALE_BITS) }), "utf8");
}

/** The quantised output (scale 2^16) of a zk output body; throws if the bytes are not one. */
export function decodeZkOutput(body: Uint8Array): number[] {
  let value: unknown;
  try {
    value = JSON.parse(Buffer.from(body).toString("utf8"));
  } catch (error) {
    throw new QuantisationError("output body is not JSON", { cause: error });
  }
  const output = (value as { output?: unknown } | null)?.output;
  if (!Array.isArray(output) || output.length !== N_OUT) {
    throw new QuantisationError(`output body must be {"output":[${N_OUT} numbers]}`);
  }
  const y = output.map((v: unknown, i) => {
    const scaled = typeof v === "number" ? v * 2 ** OUTPUT_SCALE_BITS : Number.NaN;
    if (!Number.isInteger(scaled) || Math.abs(scaled) >= MAX_OUTPUT) {
      throw new QuantisationError(`output[${i}] = ${String(v)} is not a multiple of 2^-${OUTPUT_SCALE_BITS}`);
    }
    return scaled;
  });
  // Only the canonical encoding links to the signed sha256: "0.50" and "0.5" are different bytes.
  if (Buffer.compare(Buffer.from(encodeZkOutput(y)), Buffer.from(body)) !== 0) {
    throw new QuantisationError("output body is not in canonical form (JSON.stringify of the values, no spaces)");
  }
  return y;
}

/** The circuit's input hash for an /infer body. */
export function inputHashOfBody(body: Uint8Array): bigint {
  return inputHash(quantisedInputOfBody(body));
}

/** The circuit's output hash for a zk output body. */
export function outputHashOfBody(body: Uint8Array): bigint {
  return outputHash(decodeZkOutput(body));
}
