// The committed ezkl artifacts (circuits/ezkl/, made by circuits/ezkl/pipeline.py with ezkl 23.0.5):
// the Halo2 proof of simplenet verifies on chain through the generated Halo2Verifier, and the same
// call with another output, another input hash or a tampered proof is refused.
import { readFile } from "node:fs/promises";
import path from "node:path";

import { expect } from "chai";
import { network } from "hardhat";

const EZKL = path.join(import.meta.dirname, "..", "..", "circuits", "ezkl");
const { ethers } = await network.getOrCreate();

interface EzklProof {
  hex_proof: string;
  instances: string[][];
  pretty_public_inputs: { rescaled_outputs: string[][]; processed_inputs: string[][] };
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
    expect(instances).to.have.length(9); // Poseidon hash of the input, then the 8 outputs
  });

  it("refuses another output, another input hash and a tampered proof", async function () {
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
    expect(settings.run_args.input_visibility).to.have.property("Hashed");
  });
});
