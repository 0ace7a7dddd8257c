// Real Groth16 proofs of simplenet (snarkjs, the committed proving key): a proof verifies only for
// this model version's commitment, this input and this output; every other case is refused with its
// reason, by the verifier library and by the oracle-facing ZkVerifier.
import { createHash } from "node:crypto";

import { expect } from "chai";

import {
  type InferenceProof,
  loadSetup,
  prove,
  proveInferenceBody,
  releaseZkResources,
  type SimplenetSetup,
  solidityCallData,
  verify,
  ZkProofFormatError,
  type ZkProofJson,
  ZkSetupError,
} from "../../circuits/prover.ts";
import { loadQuantisedSimplenet } from "../../circuits/simplenet/model.ts";
import { QuantisationError, quantiseInput } from "../../circuits/simplenet/quantised.ts";
import { encodeZkOutput } from "../../circuits/simplenet/wire.ts";
import {
  SimplenetGroth16Verifier,
  type ZkVerificationContext,
  ZkVerifierRegistry,
} from "../../circuits/zk-verifier.ts";
import { encodeInferInput } from "../../models/simplenet/contract.ts";
import { zkProofJsonSchema } from "../../sdk/receipt.ts";

const sha256Hex = (bytes: Uint8Array) => `0x${createHash("sha256").update(bytes).digest("hex")}`;
const INPUT_A = [0.5, -1, 2, 0.25, 1, 1, 1, 1, -3, 0, 0, 0, 1.5, 1, 1, 1];
const INPUT_B = INPUT_A.map((v, i) => (i === 0 ? v + 0.25 : v));

describe("zk prover and verifier", function () {
  this.timeout(120_000);
  let setup: SimplenetSetup;
  let weights: Int8Array;
  let otherWeights: Int8Array;
  let a: InferenceProof;
  let b: InferenceProof;
  let otherVersion: InferenceProof;

  before(async function () {
    setup = await loadSetup();
    weights = (await loadQuantisedSimplenet()).weights;
    otherWeights = Int8Array.from(weights);
    otherWeights[0] = (otherWeights[0] as number) + 1;
    a = await prove(setup, weights, quantiseInput(INPUT_A));
    b = await prove(setup, weights, quantiseInput(INPUT_B));
    otherVersion = await prove(setup, otherWeights, quantiseInput(INPUT_A));
  });

  after(releaseZkResources);

  it("proves and verifies an inference", async function () {
    expect(a.zkProof.system).to.equal("groth16");
    expect(a.zkProof.public_signals).to.deep.equal([
      a.expected.weightsCommitment.toString(),
      a.expected.inputHash.toString(),
      a.expected.outputHash.toString(),
    ]);
    expect(await verify(setup.vkey, a.zkProof, a.expected)).to.deep.equal({ ok: true });
  });

  it("makes a zk_proof that the receipt wire format accepts as is", function () {
    const parsed = zkProofJsonSchema.parse(JSON.parse(JSON.stringify(a.zkProof)));
    expect(parsed).to.deep.equal(a.zkProof);
  });

  const refusal = async (zkProof: ZkProofJson, expected = a.expected) => {
    const verdict = await verify(setup.vkey, zkProof, expected);
    if (verdict.ok) throw new Error("expected a refusal");
    return verdict;
  };

  it("refuses a valid proof for another model version", async function () {
    expect(await verify(setup.vkey, otherVersion.zkProof, otherVersion.expected)).to.deep.equal({ ok: true });
    const verdict = await refusal(otherVersion.zkProof);
    expect(verdict.reason).to.equal("wrong_model_version");
    expect(verdict.message).to.match(/weights commitment .* not this model version's/);
  });

  it("refuses a valid proof for another input", async function () {
    const verdict = await refusal(b.zkProof, { ...a.expected, outputHash: b.expected.outputHash });
    expect(verdict.reason).to.equal("wrong_input");
  });

  it("refuses a valid proof for another output", async function () {
    const verdict = await refusal(a.zkProof, { ...a.expected, outputHash: b.expected.outputHash });
    expect(verdict.reason).to.equal("wrong_output");
  });

  it("refuses swapped public signals", async function () {
    const [c, i, o] = a.zkProof.public_signals as [string, string, string];
    const verdict = await refusal({ ...a.zkProof, public_signals: [i, c, o] });
    expect(verdict.reason).to.equal("swapped_public_signals");
  });

  it("refuses a proof whose signals bind but whose points do not verify", async function () {
    const proof = a.zkProof.proof as { pi_a: string[]; pi_c: string[] };
    // b's A and C with a's B and a's signals: well-formed curve points, wrong proof.
    const mixed = { ...proof, pi_a: (b.zkProof.proof as { pi_a: string[] }).pi_a };
    const verdict = await refusal({ ...a.zkProof, proof: mixed });
    expect(verdict.reason).to.equal("invalid_proof");
  });

  it("refuses malformed proofs, saying what is malformed", async function () {
    const proof = a.zkProof.proof as { pi_a: string[] };
    const cases: [ZkProofJson, string, RegExp][] = [
      [{ ...a.zkProof, system: "plonk" }, "unsupported_system", /"plonk"/],
      [{ ...a.zkProof, proof: { ...proof, pi_a: undefined } }, "malformed_proof", /pi_a/],
      [{ ...a.zkProof, proof: { ...proof, pi_a: ["x", "1", "1"] } }, "malformed_proof", /pi_a\.0/],
      [
        { ...a.zkProof, proof: { ...proof, pi_a: ["1", "3", "1"] } },
        "malformed_proof",
        /pi_a: not a point on the BN254 curve/,
      ],
      [{ ...a.zkProof, public_signals: a.zkProof.public_signals.slice(0, 2) }, "wrong_public_signal_count", /got 2/],
      [
        { ...a.zkProof, public_signals: ["1".repeat(78), "0", "0"] },
        "malformed_proof",
        /public signal 0 is not a decimal element/,
      ],
    ];
    for (const [zkProof, reason, message] of cases) {
      const verdict = await refusal(zkProof);
      expect(verdict.reason, reason).to.equal(reason);
      expect(verdict.message).to.match(message);
    }
  });

  it("encodes a proof for the Solidity verifier and refuses to encode garbage", function () {
    const call = solidityCallData(a.zkProof);
    expect(call.publicSignals).to.deep.equal([
      a.expected.weightsCommitment,
      a.expected.inputHash,
      a.expected.outputHash,
    ]);
    expect(() => solidityCallData({ ...a.zkProof, proof: {} })).to.throw(
      ZkProofFormatError,
      /not a snarkjs Groth16 proof/,
    );
  });

  it("says what to run when the setup files are missing", async function () {
    let error: unknown;
    await loadSetup("/nonexistent").catch((e: unknown) => (error = e));
    expect(error).to.be.instanceOf(ZkSetupError);
    expect((error as Error).message).to.match(/npm run circuits:build/);
  });

  describe("the oracle's ZkVerifier", function () {
    let registry: ZkVerifierRegistry;
    let verifier: SimplenetGroth16Verifier;
    let context: ZkVerificationContext;

    before(async function () {
      verifier = await SimplenetGroth16Verifier.load();
      registry = new ZkVerifierRegistry().register(verifier);
      const input = encodeInferInput(INPUT_A);
      const output = encodeZkOutput(a.output);
      context = {
        weightsCommitment: a.expected.weightsCommitment,
        verifyingKeyHash: verifier.verifyingKeyHash,
        input,
        output,
        inputSha256: sha256Hex(input),
        outputSha256: sha256Hex(output),
      };
    });

    it("accepts the proof of the job's bytes", async function () {
      expect(await registry.check(a.zkProof, context)).to.deep.equal({ ok: true });
    });

    it("accepts what a node agent makes from a request body, and refuses a body that is not a zk job", async function () {
      const input = encodeInferInput(INPUT_B);
      const { outputBody, zkProof } = await proveInferenceBody(setup, weights, input);
      expect(Buffer.from(outputBody)).to.deep.equal(Buffer.from(encodeZkOutput(b.output)));
      const verdict = await registry.check(zkProof, {
        ...context,
        input,
        output: outputBody,
        inputSha256: sha256Hex(input),
        outputSha256: sha256Hex(outputBody),
      });
      expect(verdict).to.deep.equal({ ok: true });
      let error: unknown;
      await proveInferenceBody(setup, weights, encodeInferInput([1, 2, 3])).catch((e: unknown) => (error = e));
      expect(error).to.be.instanceOf(QuantisationError);
      expect((error as Error).message).to.match(/3 values, expected 16/);
    });

    it("refuses a missing proof, an unknown system and a second verifier for a system", async function () {
      expect(await registry.check(undefined, context)).to.include({ ok: false, reason: "missing_proof" });
      expect(await registry.check({ ...a.zkProof, system: "halo2" }, context)).to.include({
        ok: false,
        reason: "unsupported_system",
      });
      expect(() => registry.register(verifier)).to.throw(/already registered/);
    });

    it("refuses each kind of mismatch with its reason", async function () {
      const outputB = encodeZkOutput(b.output);
      const cases: [Partial<ZkVerificationContext>, ZkProofJson, string][] = [
        [{}, otherVersion.zkProof, "wrong_model_version"],
        [{}, b.zkProof, "wrong_input"],
        [{ output: outputB, outputSha256: sha256Hex(outputB) }, a.zkProof, "wrong_output"],
        [{ verifyingKeyHash: `0x${"11".repeat(32)}` }, a.zkProof, "wrong_verifying_key"],
        [{ inputSha256: `0x${"22".repeat(32)}` }, a.zkProof, "input_mismatch"],
        [{ outputSha256: `0x${"33".repeat(32)}` }, a.zkProof, "output_mismatch"],
        [{ output: Buffer.from("[]"), outputSha256: sha256Hex(Buffer.from("[]")) }, a.zkProof, "not_provable"],
      ];
      for (const [patch, zkProof, reason] of cases) {
        const verdict = await registry.check(zkProof, { ...context, ...patch });
        expect(verdict, reason).to.include({ ok: false, reason });
      }
    });
  });
});
