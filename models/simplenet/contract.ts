// The inference contract between a node agent and a model server (process or container), as pure
// functions so the server, the agent and the tests agree on every byte:
//
//   POST /infer   body (application/json): {"input":[x0, x1, …]} — exactly as many finite numbers as
//                 the model's input tensor holds (16 for simplenet), each |x| ≤ 1e6.
//                 200 (application/json): {"output":[y0, y1, …]} — the float32 outputs, each written
//                 as the shortest decimal that reads back as the same float32-widened double
//                 (JavaScript's number→string), no spaces. Same input bytes → same output bytes on every
//                 honest node, so the output hash is comparable across nodes.
//                 400 {"error","reason"} for malformed input; 422 when the model's output is not finite.
//   GET  /health  200 {"status":"ok","model_sha256":…} once the model is loaded.
//
// The agent hashes the request body bytes (input_hash) and the response body bytes (output_hash).

/** Largest request body a model server reads. */
export const MAX_INFER_BODY_BYTES = 64 * 1024;
/** Largest magnitude accepted per input value: keeps activations far from float32 overflow. */
export const MAX_INPUT_MAGNITUDE = 1e6;

export class InferInputError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "InferInputError";
  }
}

/** Parses an /infer body into `size` float32 values, or throws InferInputError saying what is wrong. */
export function parseInferInput(body: Uint8Array, size: number): Float32Array {
  if (body.length === 0) throw new InferInputError(`empty body: send {"input":[${size} numbers]}`);
  if (body.length > MAX_INFER_BODY_BYTES) {
    throw new InferInputError(`body is ${body.length} bytes, more than ${MAX_INFER_BODY_BYTES}`);
  }
  let value: unknown;
  try {
    value = JSON.parse(Buffer.from(body).toString("utf8"));
  } catch {
    throw new InferInputError(`body is not JSON: send {"input":[${size} numbers]}`);
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw new InferInputError(`body must be a JSON object {"input":[${size} numbers]}`);
  }
  const keys = Object.keys(value);
  const extra = keys.filter((k) => k !== "input");
  if (extra.length > 0) throw new InferInputError(`unknown field(s) ${extra.join(", ")}: only "input" is allowed`);
  const input = (value as { input?: unknown }).input;
  if (!Array.isArray(input)) throw new InferInputError(`"input" must be an array of ${size} numbers`);
  if (input.length !== size) throw new InferInputError(`"input" has ${input.length} values, expected ${size}`);
  const out = new Float32Array(size);
  input.forEach((x: unknown, i) => {
    if (typeof x !== "number" || !Number.isFinite(x)) throw new InferInputError(`input[${i}] is not a finite number`);
    if (Math.abs(x) > MAX_INPUT_MAGNITUDE) {
      throw new InferInputError(`input[${i}] = ${x} is outside ±${MAX_INPUT_MAGNITUDE}`);
    }
    out[i] = x;
  });
  return out;
}

/** The canonical /infer response bytes for the model's float32 outputs; null when one is not finite. */
export function encodeInferOutput(output: Float32Array): Uint8Array | null {
  const values = Array.from(output);
  if (!values.every(Number.isFinite)) return null;
  return Buffer.from(JSON.stringify({ output: values }), "utf8");
}

/** The /infer request body for `input` (what a client sends). */
export function encodeInferInput(input: readonly number[]): Uint8Array {
  return Buffer.from(JSON.stringify({ input }), "utf8");
}
