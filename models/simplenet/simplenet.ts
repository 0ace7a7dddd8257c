// simplenet: the project's own small ONNX model, a 16 → 32 (ReLU) → 8 MLP whose float32 weights come
// from a fixed-seed PRNG. Pure: the same code writes the same bytes on every machine, so the
// committed simplenet.onnx can be checked by regenerating it.
import onnxProto from "onnx-proto";

const { onnx } = onnxProto;

export const SIMPLENET_INPUT_SIZE = 16;
export const SIMPLENET_HIDDEN_SIZE = 32;
export const SIMPLENET_OUTPUT_SIZE = 8;
/** The PRNG seed: changing it changes every weight, hence the file, its hash and every output hash. */
export const SIMPLENET_SEED = 0x1f2e3d4c;
/** ONNX IR version 8 and opset 13: what onnx-proto 8 describes and onnxruntime 1.x runs. */
const IR_VERSION = 8;
const OPSET_VERSION = 13;

/** mulberry32: a tiny PRNG whose output is fully specified by 32-bit integer arithmetic. */
export function mulberry32(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** `count` weights uniform in ±1/sqrt(fanIn) (the usual init scale), as float32. */
function weights(next: () => number, count: number, fanIn: number): Float32Array {
  const scale = 1 / Math.sqrt(fanIn);
  const out = new Float32Array(count);
  for (let i = 0; i < count; i++) out[i] = (next() * 2 - 1) * scale;
  return out;
}

function tensor(name: string, dims: number[], values: Float32Array) {
  // rawData is little-endian float32: fixed bytes, unlike float_data's varint packing choices.
  const raw = new Uint8Array(values.length * 4);
  const view = new DataView(raw.buffer);
  values.forEach((v, i) => view.setFloat32(i * 4, v, true));
  return onnx.TensorProto.create({ name, dims, dataType: onnx.TensorProto.DataType.FLOAT, rawData: raw });
}

function valueInfo(name: string, dims: number[]) {
  return onnx.ValueInfoProto.create({
    name,
    type: {
      tensorType: {
        elemType: onnx.TensorProto.DataType.FLOAT,
        shape: { dim: dims.map((dimValue) => ({ dimValue })) },
      },
    },
  });
}

/** The bytes of simplenet.onnx. Input "input" float32 [1,16], output "output" float32 [1,8]. */
export function buildSimplenet(): Uint8Array {
  const next = mulberry32(SIMPLENET_SEED);
  const w1 = weights(next, SIMPLENET_INPUT_SIZE * SIMPLENET_HIDDEN_SIZE, SIMPLENET_INPUT_SIZE);
  const b1 = weights(next, SIMPLENET_HIDDEN_SIZE, SIMPLENET_INPUT_SIZE);
  const w2 = weights(next, SIMPLENET_HIDDEN_SIZE * SIMPLENET_OUTPUT_SIZE, SIMPLENET_HIDDEN_SIZE);
  const b2 = weights(next, SIMPLENET_OUTPUT_SIZE, SIMPLENET_HIDDEN_SIZE);
  const node = (opType: string, input: string[], output: string[]) =>
    onnx.NodeProto.create({ opType, input, output, name: output[0] });
  const graph = onnx.GraphProto.create({
    name: "simplenet",
    node: [
      node("MatMul", ["input", "w1"], ["h1"]),
      node("Add", ["h1", "b1"], ["h1b"]),
      node("Relu", ["h1b"], ["h1r"]),
      node("MatMul", ["h1r", "w2"], ["h2"]),
      node("Add", ["h2", "b2"], ["output"]),
    ],
    initializer: [
      tensor("w1", [SIMPLENET_INPUT_SIZE, SIMPLENET_HIDDEN_SIZE], w1),
      tensor("b1", [SIMPLENET_HIDDEN_SIZE], b1),
      tensor("w2", [SIMPLENET_HIDDEN_SIZE, SIMPLENET_OUTPUT_SIZE], w2),
      tensor("b2", [SIMPLENET_OUTPUT_SIZE], b2),
    ],
    input: [valueInfo("input", [1, SIMPLENET_INPUT_SIZE])],
    output: [valueInfo("output", [1, SIMPLENET_OUTPUT_SIZE])],
  });
  const model = onnx.ModelProto.create({
    irVersion: IR_VERSION,
    producerName: "inframesh",
    producerVersion: "1",
    opsetImport: [{ domain: "", version: OPSET_VERSION }],
    graph,
  });
  return onnx.ModelProto.encode(model).finish();
}
