// The committed ezkl artifacts (circuits/ezkl/, made by circuits/ezkl/pipeline.py with ezkl 23.0.5):
// the Halo2 proof of simplenet verifies on chain through the generated Halo2Verifier, and the same
// call with another output, another input or a tampered proof is refused; the oracle's
// EzklHalo2Verifier binds the instances to the job's bytes and asks the deployed verifier.
import { readFile } from "node:fs/promises";
import path from "node:path";

import { createHash } from "node:crypto";

import { expect } from "chai";
import { network } from "hardhat";

import {
  EZKL_SYSTEM,
  EzklHalo2Verifier,
  EzklHalo2Verifiers,
  ezklInstancesOf,
  ezklQuantise,
} from "../../circuits/ezkl-verifier.ts";
import type { ZkProofJson } from "../../circuits/prover.ts";
import type { ZkVerificationContext } from "../../circuits/zk-verifier.ts";
import { encodeInferInput } from "../../models/simplenet/contract.ts";

const sha256Hex = (bytes: Uint8Array) => `0x${createHash("sha256").update(bytes).digest("hex")}`;
const EZKL = path.join(import.meta.dirname, "..", "..", "circuits", "ezkl");
const { ethers } = await network.getOrCreate();

interface EzklProof {
  hex_proof: string;
  instances: string[][];
  pretty_public_inputs: { rescaled_outputs: string[][] };
}

/** ezkl writes instances as 32-byte little-endian hex field elements. */
const fromLittleEndianHex = (hex: string) =>
  BigInt(`0x${Buffer.from(hex.replace(/^0x/, ""), "hex").reverse().toString("hex")}`);

describe("ezkl artifacts (Halo2, KZG)", function () {
  this.timeout(120_000);
  let proof: EzklProof;
  let calldata: string;

  before(async function () {
    proof = JSON.parse(await readFile(path.join(EZKL, "proof.json"), "utf8")) as EzklProof;
    calldata = ethers.hexlify(await readFile(path.join(EZKL, "calldata.bytes")));
  });

  async function deploy() {
    return ethers.deployContract("Halo2Verifier");
  }

  it("verifies the committed proof on chain", async function () {
    const verifier = await deploy();
    const result = await ethers.provider.call({ to: await verifier.getAddress(), data: calldata });
    expect(BigInt(result)).to.equal(1n);
    // The calldata is verifyProof(proof, instances) with the proof's own instances.
    const [proofBytes, instances] = verifier.interface.decodeFunctionData("verifyProof", calldata) as unknown as [
      string,
      bigint[],
    ];
    expect(proofBytes).to.equal(proof.hex_proof);
    expect(instances).to.deep.equal((proof.instances[0] ?? []).map(fromLittleEndianHex));
    expect(instances).to.have.length(24); // the 16 inputs, then the 8 outputs
  });

  it("refuses another output, another input and a tampered proof", async function () {
    const verifier = await deploy();
    const to = await verifier.getAddress();
    const [proofBytes, instances] = verifier.interface.decodeFunctionData("verifyProof", calldata) as unknown as [
      string,
      bigint[],
    ];
    const otherOutput = instances.map((v, i) => (i === 1 ? v + 1n : v));
    const otherInput = instances.map((v, i) => (i === 0 ? v + 1n : v));
    const bytes = ethers.getBytes(proofBytes);
    bytes[100] = (bytes[100] as number) ^ 1;
    const cases = [
      verifier.interface.encodeFunctionData("verifyProof", [proofBytes, otherOutput]),
      verifier.interface.encodeFunctionData("verifyProof", [proofBytes, otherInput]),
      verifier.interface.encodeFunctionData("verifyProof", [bytes, instances]),
    ];
    for (const data of cases) {
      let refused = false;
      await ethers.provider.call({ to, data }).then(
        (result) => (refused = BigInt(result) !== 1n),
        () => (refused = true),
      );
      expect(refused).to.equal(true);
    }
  });

  it("commits the settings the pipeline ran with", async function () {
    const settings = JSON.parse(await readFile(path.join(EZKL, "settings.json"), "utf8")) as {
      run_args: { input_visibility: unknown; output_visibility: string; param_visibility: string; logrows: number };
    };
    expect(settings.run_args.output_visibility).to.equal("Public");
    expect(settings.run_args.param_visibility).to.equal("Fixed");
    expect(settings.run_args.input_visibility).to.equal("Public");
  });

  describe("the oracle's EzklHalo2Verifier", function () {
    let verifier: EzklHalo2Verifier;
    let zkProof: ZkProofJson;
    let context: ZkVerificationContext;

    before(async function () {
      const deployed = await ethers.deployContract("Halo2Verifier");
      const vkHash = sha256Hex(await readFile(path.join(EZKL, "vk.key")));
      verifier = new EzklHalo2Verifier((request) => ethers.provider.call(request), await deployed.getAddress(), vkHash);
      const data = JSON.parse(await readFile(path.join(EZKL, "input.json"), "utf8")) as { input_data: number[][] };
      const input = encodeInferInput(data.input_data[0] ?? []);
      const output = Buffer.from(
        JSON.stringify({ output: (proof.pretty_public_inputs.rescaled_outputs[0] ?? []).map(Number) }),
      );
      zkProof = {
        system: EZKL_SYSTEM,
        proof: { hex_proof: proof.hex_proof },
        public_signals: (proof.instances[0] ?? []).map((v) => fromLittleEndianHex(v).toString()),
      };
      context = {
        weightsCommitment: 0n,
        verifyingKeyHash: vkHash,
        input,
        output,
        inputSha256: sha256Hex(input),
        outputSha256: sha256Hex(output),
      };
    });

    it("accepts the committed proof for its input and output bytes", async function () {
      expect(ezklInstancesOf(context.input, context.output).map(String)).to.deep.equal(zkProof.public_signals);
      expect(await verifier.verify(zkProof, context)).to.deep.equal({ ok: true });
    });

    it("as the oracle registers it, asks each job's own version verifier", async function () {
      const versions = await EzklHalo2Verifiers.load((request) => ethers.provider.call(request));
      expect(versions?.verifyingKeyHash).to.equal(context.verifyingKeyHash);
      const address = await (await ethers.deployContract("Halo2Verifier")).getAddress();
      expect(await versions!.verify(zkProof, { ...context, verifierContract: address })).to.deep.equal({ ok: true });
      expect(await versions!.verify(zkProof, context)).to.deep.include({ ok: false, reason: "wrong_verifier" });
      const notAVerifier = await (await ethers.deployContract("ModelRegistry")).getAddress();
      expect(await versions!.verify(zkProof, { ...context, verifierContract: notAVerifier })).to.deep.include({
        ok: false,
        reason: "invalid_proof",
      });
      expect(await EzklHalo2Verifiers.load(async () => "0x", path.join(EZKL, "missing"))).to.equal(undefined);
    });

    it("refuses another input, another output, a tampered proof and malformed ones, with reasons", async function () {
      const otherInput = encodeInferInput([0.25, -1, 2, 0.25, 1, 1, 1, 1, -3, 0, 0, 0, 1.5, 1, 1, 1]);
      const otherOutput = Buffer.from(JSON.stringify({ output: [1, 0, 0, 0, 0, 0, 0, 0] }));
      const flipped = `${zkProof.proof.hex_proof as string}`.replace(/.$/, (c) => (c === "0" ? "1" : "0"));
      const cases: [Partial<ZkVerificationContext>, ZkProofJson, string][] = [
        [{ input: otherInput, inputSha256: sha256Hex(otherInput) }, zkProof, "wrong_input"],
        [{ output: otherOutput, outputSha256: sha256Hex(otherOutput) }, zkProof, "wrong_output"],
        [{}, { ...zkProof, proof: { hex_proof: flipped } }, "invalid_proof"],
        [{}, { ...zkProof, proof: {} }, "malformed_proof"],
        [{}, { ...zkProof, public_signals: zkProof.public_signals.slice(1) }, "wrong_public_signal_count"],
        [{ verifyingKeyHash: `0x${"00".repeat(32)}` }, zkProof, "wrong_verifying_key"],
        [{ inputSha256: `0x${"00".repeat(32)}` }, zkProof, "input_mismatch"],
      ];
      for (const [patch, proofJson, reason] of cases) {
        expect(await verifier.verify(proofJson, { ...context, ...patch }), reason).to.include({ ok: false, reason });
      }
    });

    it("rounds like ezkl: halves away from zero at scale 2^13", function () {
      expect(ezklQuantise(0.5)).to.equal(4096n);
      expect(ezklQuantise(-1)).to.equal(-8192n);
      expect(ezklQuantise(1.5 / 8192)).to.equal(2n);
      expect(ezklQuantise(-1.5 / 8192)).to.equal(-2n);
    });
  });
});
