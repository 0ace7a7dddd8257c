// The committed trusted-setup fixtures are the ones the manifest names (sha256), and fit each other:
// the verifier contract, the verification key and the proving key come from one setup.
import { createHash } from "node:crypto";
import { readFile } from "node:fs/promises";
import path from "node:path";

import { expect } from "chai";

import { SETUP_DIR } from "../../circuits/prover.ts";

const ROOT = path.join(import.meta.dirname, "..", "..");
const sha256 = (bytes: Uint8Array) => createHash("sha256").update(bytes).digest("hex");

interface Manifest {
  circuit: string;
  constraints: number;
  ptau_power: number;
  public_signals: number;
  sha256: Record<string, string>;
}

describe("zk setup fixtures", function () {
  let manifest: Manifest;

  before(async function () {
    manifest = JSON.parse(await readFile(path.join(SETUP_DIR, "manifest.json"), "utf8")) as Manifest;
  });

  it("match the sha256 recorded in the manifest", async function () {
    const files: Record<string, string> = {
      "simplenet.wasm": path.join(SETUP_DIR, "simplenet.wasm"),
      [`pot${manifest.ptau_power}_final.ptau`]: path.join(SETUP_DIR, `pot${manifest.ptau_power}_final.ptau`),
      "simplenet_final.zkey": path.join(SETUP_DIR, "simplenet_final.zkey"),
      "verification_key.json": path.join(SETUP_DIR, "verification_key.json"),
      "SimplenetVerifier.sol": path.join(ROOT, "contracts", "zk", "SimplenetVerifier.sol"),
    };
    for (const [name, file] of Object.entries(files)) {
      expect(sha256(await readFile(file)), name).to.equal(manifest.sha256[name]);
    }
  });

  it("describe a circuit that fits its powers of tau and has three public signals", async function () {
    expect(manifest.constraints).to.be.greaterThan(2 ** (manifest.ptau_power - 1));
    expect(manifest.constraints).to.be.at.most(2 ** manifest.ptau_power);
    const vkey = JSON.parse(await readFile(path.join(SETUP_DIR, "verification_key.json"), "utf8")) as {
      nPublic: number;
      protocol: string;
      curve: string;
    };
    expect(vkey).to.include({ nPublic: 3, protocol: "groth16", curve: "bn128" });
    expect(manifest.public_signals).to.equal(3);
  });

  it("put the verification key's points in the Solidity verifier", async function () {
    const vkey = JSON.parse(await readFile(path.join(SETUP_DIR, "verification_key.json"), "utf8")) as {
      vk_alpha_1: string[];
      IC: string[][];
    };
    const source = await readFile(path.join(ROOT, "contracts", "zk", "SimplenetVerifier.sol"), "utf8");
    expect(source).to.include(vkey.vk_alpha_1[0]);
    for (const point of vkey.IC) expect(source).to.include(point[0]);
    expect(source).to.match(/contract SimplenetVerifier\b/);
  });
});
