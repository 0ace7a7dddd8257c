// The quantised simplenet in TypeScript against the circuit (its committed wasm witness calculator):
// for every input the circuit accepts exactly the output TypeScript computes, and refuses any other.
import { expect } from "chai";

import { mulberry32 } from "../../models/simplenet/simplenet.ts";
import { buildSimplenet } from "../../models/simplenet/simplenet.ts";
import { loadQuantisedSimplenet } from "../../circuits/simplenet/model.ts";
import {
  circuitInput,
  dequantiseOutput,
  FIELD_PRIME,
  floatWeightsFromOnnx,
  forward,
  INPUT_MAX,
  INPUT_MIN,
  N_IN,
  N_WEIGHTS,
  outputHash,
  packWeights,
  poseidonChain,
  QuantisationError,
  quantiseInput,
  quantiseWeights,
  toField,
  weightsCommitment,
} from "../../circuits/simplenet/quantised.ts";
import {
  decodeZkOutput,
  encodeZkOutput,
  inputHashOfBody,
  quantisedInputOfBody,
} from "../../circuits/simplenet/wire.ts";
import { loadWitnessCalculator, type CircuitWitness } from "../../circuits/witness.ts";
import { encodeInferInput } from "../../models/simplenet/contract.ts";

const RANDOM_INPUTS = 300;

/** Float inputs of every kind the circuit must agree on: small, large, extremes, rounding halves. */
function randomInputs(count: number): number[][] {
  const next = mulberry32(0x5eed);
  const kinds = [
    () => next() * 2 - 1,
    () => (next() * 2 - 1) * 127.99,
    () => (Math.floor(next() * 512) - 256 + 0.5) / 256,
    () => (next() < 0.5 ? INPUT_MIN : INPUT_MAX) / 256,
    () => 0,
  ];
  return Array.from({ length: count }, (_, n) =>
    Array.from({ length: N_IN }, () => (kinds[n % kinds.length] as () => number)()),
  );
}

describe("quantised simplenet", function () {
  let weights: Int8Array;
  let circuit: CircuitWitness;

  before(async function () {
    weights = (await loadQuantisedSimplenet()).weights;
    circuit = await loadWitnessCalculator();
  });

  it("uses the circuit's field", function () {
    expect(circuit.prime).to.equal(FIELD_PRIME);
  });

  it("quantises the committed ONNX weights to int8, the same as regenerating the model", function () {
    expect(weights.length).to.equal(N_WEIGHTS);
    expect(Array.from(quantiseWeights(floatWeightsFromOnnx(buildSimplenet())))).to.deep.equal(Array.from(weights));
    expect(Math.max(...weights)).to.be.at.most(127);
    expect(Math.min(...weights)).to.be.at.least(-128);
  });

  it(`computes the circuit's output bit for bit on ${RANDOM_INPUTS} inputs`, async function () {
    this.timeout(120_000);
    for (const floats of randomInputs(RANDOM_INPUTS)) {
      const x = quantiseInput(floats);
      // The circuit asserts Poseidon(its output) == outputHash: a witness exists only for TypeScript's exact output.
      await circuit.calculate(circuitInput(weights, x));
    }
  });

  it("refuses an output off by one in any position", async function () {
    const x = quantiseInput(randomInputs(1)[0] as number[]);
    const { output } = forward(weights, x);
    for (let k = 0; k < output.length; k++) {
      const wrong = output.map((v, i) => (i === k ? v + 1 : v));
      const input = { ...circuitInput(weights, x), outputHash: outputHash(wrong).toString() };
      expect(await circuit.satisfies(input), `output[${k}] + 1 must violate a constraint`).to.equal(false);
    }
  });

  it("refuses weights that do not match the commitment, and an input that does not match its hash", async function () {
    const x = quantiseInput(randomInputs(1)[0] as number[]);
    const other = Int8Array.from(weights);
    other[5] = (other[5] as number) + 1;
    const wrongCommitment = { ...circuitInput(other, x), weightsCommitment: weightsCommitment(weights).toString() };
    const x2 = Int32Array.from(x);
    x2[0] = (x2[0] as number) + 1;
    const wrongInput = { ...circuitInput(weights, x2), inputHash: circuitInput(weights, x).inputHash };
    expect(await circuit.satisfies(wrongCommitment)).to.equal(false);
    expect(await circuit.satisfies(wrongInput)).to.equal(false);
  });

  it("refuses a weight outside int8 even when the packed commitment matches", async function () {
    // Offsets (w0 + 128) + 256·(w1 + 128): w0 - 256 and w1 + 1 pack to the same element. Only the
    // int8 range check stops a prover from swapping in such weights.
    const x = quantiseInput(randomInputs(1)[0] as number[]);
    const honest = circuitInput(weights, x);
    const forged = Array.from(weights);
    forged[0] = (forged[0] as number) - 256;
    forged[1] = (forged[1] as number) + 1;
    const forgedInput = {
      ...honest,
      w: forged.map((v) => toField(v).toString()),
      outputHash: outputHash(forward(forged, x).output).toString(),
    };
    expect(await circuit.satisfies(forgedInput)).to.equal(false);
    expect(await circuit.satisfies(honest)).to.equal(true);
  });

  it("stays within 0.05 of the float model on inputs in [-2, 2]", function () {
    // The float path as onnxruntime computes it (up to float32 rounding, far below this bound).
    const f = floatWeightsFromOnnx(buildSimplenet());
    const next = mulberry32(7);
    let worst = 0;
    for (let n = 0; n < 200; n++) {
      const v = Array.from({ length: N_IN }, () => next() * 4 - 2);
      const h = Array.from({ length: 32 }, (_, j) =>
        Math.max(0, (f.b1[j] as number) + v.reduce((sum, x, i) => sum + x * (f.w1[i * 32 + j] as number), 0)),
      );
      const y = Array.from(
        { length: 8 },
        (_, k) => (f.b2[k] as number) + h.reduce((sum, x, j) => sum + x * (f.w2[j * 8 + k] as number), 0),
      );
      const q = dequantiseOutput(forward(weights, quantiseInput(v)).output);
      q.forEach((value, k) => (worst = Math.max(worst, Math.abs(value - (y[k] as number)))));
    }
    expect(worst).to.be.below(0.05);
  });

  it("rounds inputs with Math.round at scale 2^8 and floors the hidden layer", function () {
    expect(Array.from(quantiseInput([0.5 / 256, -0.5 / 256, 1, -1, ...Array(12).fill(0)])).slice(0, 4)).to.deep.equal([
      1, 0, 256, -256,
    ]);
    // One hidden unit fed 1·w: floor((x·w) / 256) for a positive accumulator, 0 for a negative one.
    const w = new Int8Array(N_WEIGHTS);
    w[0] = 3; // W1[0][0]
    const x = new Int32Array(N_IN);
    x[0] = 100;
    expect(forward(w, x).hidden[0]).to.equal(1); // floor(300 / 256)
    x[0] = -100;
    expect(forward(w, x).hidden[0]).to.equal(0);
  });

  it("packs weights injectively and chains Poseidon over more than 16 elements", function () {
    expect(packWeights(weights)).to.have.length(Math.ceil(N_WEIGHTS / 31));
    const a = Int8Array.from(weights);
    a[30] = (a[30] as number) === 127 ? 126 : (a[30] as number) + 1;
    expect(weightsCommitment(a)).to.not.equal(weightsCommitment(weights));
    expect(poseidonChain([1n, 2n])).to.not.equal(poseidonChain([2n, 1n]));
    expect(weightsCommitment(weights)).to.be.below(FIELD_PRIME);
  });

  describe("bad input", function () {
    it("names the value outside the zk range", function () {
      const floats = Array(N_IN).fill(0);
      floats[3] = 128;
      expect(() => quantiseInput(floats)).to.throw(QuantisationError, /input\[3\] = 128 is outside the zk range/);
      floats[3] = Number.NaN;
      expect(() => quantiseInput(floats)).to.throw(QuantisationError, /input\[3\]/);
      expect(() => quantiseInput([1, 2])).to.throw(QuantisationError, /2 values, expected 16/);
    });

    it("refuses weights that do not fit int8 and bytes that are not simplenet", function () {
      const floats = floatWeightsFromOnnx(buildSimplenet());
      floats.b2[0] = 0.6;
      expect(() => quantiseWeights(floats)).to.throw(QuantisationError, /weight 800 = 0\.6.* does not fit int8/);
      expect(() => floatWeightsFromOnnx(new Uint8Array([1, 2, 3]))).to.throw(
        QuantisationError,
        /not an ONNX model|initializer/,
      );
    });

    it("refuses quantised vectors of the wrong shape or range", function () {
      expect(() => forward(weights.slice(1), new Int32Array(N_IN))).to.throw(QuantisationError, /expected 808/);
      const x = new Int32Array(N_IN);
      x[0] = INPUT_MAX + 1;
      expect(() => forward(weights, x)).to.throw(QuantisationError, /quantised input\[0\]/);
      expect(() => outputHash([1, 2])).to.throw(QuantisationError, /expected 8/);
    });
  });

  describe("wire format of a zk-required version", function () {
    it("reads the /infer body and writes an output that reads back exactly", function () {
      const floats = randomInputs(1)[0] as number[];
      const body = encodeInferInput(floats);
      expect(Array.from(quantisedInputOfBody(body))).to.deep.equal(Array.from(quantiseInput(floats)));
      const { output } = forward(weights, quantiseInput(floats));
      expect(decodeZkOutput(encodeZkOutput(output))).to.deep.equal(output);
      expect(inputHashOfBody(body)).to.be.a("bigint");
    });

    it("refuses bodies that are not a zk job, saying why", function () {
      expect(() => quantisedInputOfBody(Buffer.from("{}"))).to.throw(QuantisationError, /input body/);
      expect(() => quantisedInputOfBody(encodeInferInput(Array(N_IN).fill(1000)))).to.throw(
        QuantisationError,
        /zk range/,
      );
      expect(() => decodeZkOutput(Buffer.from("nope"))).to.throw(QuantisationError, /not JSON/);
      expect(() => decodeZkOutput(Buffer.from('{"output":[1]}'))).to.throw(QuantisationError, /8 numbers/);
      expect(() => decodeZkOutput(Buffer.from(`{"output":[${Array(8).fill("0.1").join(",")}]}`))).to.throw(
        QuantisationError,
        /multiple of 2\^-16/,
      );
      expect(() => decodeZkOutput(Buffer.from(`{"output": [${Array(8).fill("0.5").join(",")}]}`))).to.throw(
        QuantisationError,
        /canonical/,
      );
    });
  });
});
