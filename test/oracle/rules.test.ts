// The verification rules as pure functions: each rule on receipts signed for real with dev keys,
// chain facts given as plain data.
import { expect } from "chai";
import type { Address, Hex } from "viem";

import { inframeshDomain } from "../../sdk/eip712.ts";
import { type Receipt, type ReceiptJson, receiptJsonSchema } from "../../sdk/receipt.ts";
import {
  type ModelFacts,
  type NodeFacts,
  REJECTION_CODES,
  ZkVerifierRegistry,
  checkConsistency,
  checkEscrow,
  checkExpiry,
  checkInputHash,
  checkModel,
  checkNode,
  checkZkProof,
  receiptDigests,
  verifyReceipt,
} from "../../oracle/rules/index.ts";
import { PRICE, ROLES, devAccount, makeReceipt } from "./world.ts";

const domain = inframeshDomain(31337, "0x5FbDB2315678afecb367f032d93F642f64180aa3");
const ids = { modelId: 1n, version: 0n };
const publisher = devAccount(ROLES.publisher).address;
const goodNode: NodeFacts = { registered: true, jailed: false, eligible: true, tier: 1 };
const goodModel: ModelFacts = {
  exists: true,
  publisher,
  hasServingVersion: true,
  servingVersion: 0n,
  versionCount: 1n,
  version: { price: PRICE, zkVerifier: "0x0000000000000000000000000000000000000000" },
};
const parse = (json: ReceiptJson): Receipt => receiptJsonSchema.parse(json);

async function verdict(json: ReceiptJson, over: { node?: Partial<NodeFacts>; model?: Partial<ModelFacts> } = {}) {
  return verifyReceipt(parse(json), {
    domain,
    receivedAt: Math.floor(Date.now() / 1000),
    expiryGraceSeconds: 30,
    minTier: 1,
    zk: new ZkVerifierRegistry(),
    facts: async () => ({ node: { ...goodNode, ...over.node }, model: { ...goodModel, ...over.model } }),
  });
}

describe("oracle rules", function () {
  it("accepts a well-formed receipt and prices it at the version's price for the model's publisher", async function () {
    const v = await verdict(await makeReceipt(domain, ids));
    expect(v).to.deep.equal({ ok: true, fee: PRICE, publisher });
  });

  it("has stable, distinct rejection codes", function () {
    expect(new Set(REJECTION_CODES).size).to.equal(REJECTION_CODES.length);
    for (const code of REJECTION_CODES) expect(code).to.match(/^[a-z_]+$/);
  });

  describe("consistency", function () {
    it("refuses proofs naming another job or model", async function () {
      const json = await makeReceipt(domain, ids);
      const other = { ...json, proof_of_serving: { ...json.proof_of_serving, job_id: `0x${"11".repeat(32)}` } };
      const r = parse(other);
      expect(checkConsistency(r, receiptDigests(domain, r))?.code).to.equal("job_id_mismatch");
      const model = { ...json, proof_of_serving: { ...json.proof_of_serving, model_ref: { model_id: 1, version: 1 } } };
      const m = parse(model);
      expect(checkConsistency(m, receiptDigests(domain, m))?.code).to.equal("model_ref_mismatch");
    });

    it("refuses a work unit changed after signing (the proof's work_unit_hash no longer matches)", async function () {
      const json = await makeReceipt(domain, ids);
      const changed = parse({ ...json, work_unit: { ...json.work_unit, max_fee: "999999999999999999999" } });
      const rejection = checkConsistency(changed, receiptDigests(domain, changed));
      expect(rejection?.code).to.equal("work_unit_hash_mismatch");
      expect(rejection?.message).to.match(/EIP-712 digest/);
    });

    it("refuses receipts signed for another chain or settlement contract", async function () {
      const other = await makeReceipt(inframeshDomain(1, "0x5FbDB2315678afecb367f032d93F642f64180aa3"), ids);
      expect(await verdict(other)).to.deep.include({ ok: false });
      const contract = await makeReceipt(inframeshDomain(31337, "0x0000000000000000000000000000000000000001"), ids);
      const v = await verdict(contract);
      expect(v.ok ? "" : v.rejection.code).to.equal("work_unit_hash_mismatch");
    });
  });

  describe("signatures", function () {
    it("names a forged client signature and a forged node signature", async function () {
      const forgedClient = await verdict(await makeReceipt(domain, ids, { clientSigner: ROLES.stranger }));
      expect(forgedClient.ok ? "" : forgedClient.rejection.code).to.equal("bad_client_signature");
      const forgedNode = await verdict(await makeReceipt(domain, ids, { nodeSigner: ROLES.stranger }));
      expect(forgedNode.ok ? "" : forgedNode.rejection.code).to.equal("bad_node_signature");
    });

    it("refuses swapped signatures and unrecoverable bytes", async function () {
      const json = await makeReceipt(domain, ids);
      const swapped = {
        ...json,
        client_signature: json.proof_of_serving.signature,
        proof_of_serving: { ...json.proof_of_serving, signature: json.client_signature },
      };
      const v = await verdict(swapped);
      expect(v.ok ? "" : v.rejection.code).to.equal("bad_client_signature");
      const zeros = await verdict({ ...json, client_signature: `0x${"00".repeat(65)}` });
      expect(zeros.ok ? "" : zeros.rejection.message).to.match(/recovered nothing/);
    });
  });

  describe("input and expiry", function () {
    it("checks the input against input_hash only when the input is sent", async function () {
      const input = new Uint8Array([1, 2, 3]);
      const json = await makeReceipt(domain, ids, { input });
      expect(checkInputHash(parse(json))).to.equal(null);
      const withInput = parse({
        ...json,
        work_unit: { ...json.work_unit, input: Buffer.from(input).toString("base64") },
      });
      expect(checkInputHash(withInput)).to.equal(null);
      const wrong = parse({ ...json, work_unit: { ...json.work_unit, input: Buffer.from([9]).toString("base64") } });
      expect(checkInputHash(wrong)?.code).to.equal("input_hash_mismatch");
    });

    it("allows the grace period after expires_at and not a second more", async function () {
      const r = parse(await makeReceipt(domain, ids, { expiresAt: 1_000n }));
      expect(checkExpiry(r, 1_000, 0)).to.equal(null);
      expect(checkExpiry(r, 1_030, 30)).to.equal(null);
      expect(checkExpiry(r, 1_031, 30)?.code).to.equal("expired");
    });
  });

  describe("chain facts", function () {
    const cases: [string, Partial<NodeFacts>, string][] = [
      ["unregistered", { registered: false }, "node_not_registered"],
      ["jailed", { jailed: true }, "node_jailed"],
      ["not eligible", { eligible: false }, "node_not_eligible"],
      ["below the tier", { tier: 0 }, "node_tier_too_low"],
    ];
    for (const [what, facts, code] of cases)
      it(`refuses a node ${what}`, async function () {
        const r = parse(await makeReceipt(domain, ids));
        expect(checkNode(r, { ...goodNode, ...facts }, 1)?.code).to.equal(code);
      });

    it("refuses unknown models and versions, versions not serving, and prices above max_fee", async function () {
      const r = parse(await makeReceipt(domain, ids));
      const code = (m: Partial<ModelFacts>) => {
        const c = checkModel(r, { ...goodModel, ...m });
        return "ok" in c ? "ok" : c.code;
      };
      expect(code({ exists: false })).to.equal("unknown_model");
      expect(code({ versionCount: 0n, version: undefined })).to.equal("unknown_version");
      expect(code({ servingVersion: 3n })).to.equal("not_serving_version");
      expect(code({ hasServingVersion: false })).to.equal("not_serving_version");
      expect(code({ version: { price: PRICE * 3n, zkVerifier: goodModel.version!.zkVerifier } })).to.equal(
        "price_above_max_fee",
      );
      expect(code({ version: { price: PRICE * 2n, zkVerifier: goodModel.version!.zkVerifier } })).to.equal("ok");
    });

    it("keeps a client's unsettled fees within its escrow balance", function () {
      const client = devAccount(ROLES.clients[0]!).address;
      expect(checkEscrow(client, 100n, 75n, 25n)).to.equal(null);
      expect(checkEscrow(client, 100n, 76n, 25n)?.code).to.equal("insufficient_escrow");
    });
  });

  describe("zk proofs", function () {
    const zk = {
      verifier: "0x00000000000000000000000000000000000000aa" as Address,
      verifyingKeyHash: `0x${"ab".repeat(32)}` as Hex,
      weightsCommitment: 7n,
    };
    const proof = { system: "groth16", proof: { pi_a: [] }, public_signals: ["1"] };
    const output = Buffer.from('{"output":[1]}');
    const zkReceipt = async () => {
      const input = Buffer.from('{"input":[1]}');
      const json = await makeReceipt(domain, ids, { input });
      return parse({
        ...json,
        work_unit: { ...json.work_unit, input: input.toString("base64") },
        zk_proof: proof,
        output: output.toString("base64"),
      });
    };

    it("requires a proof only where the version names a verifier", async function () {
      const r = parse(await makeReceipt(domain, ids));
      expect(await checkZkProof(r, null, new ZkVerifierRegistry())).to.equal(null);
      expect((await checkZkProof(r, zk, new ZkVerifierRegistry()))?.code).to.equal("zk_proof_missing");
    });

    it("rejects a proof of a system nobody registered, and a receipt without the bytes the proof binds", async function () {
      const r = await zkReceipt();
      const none = await checkZkProof(r, zk, new ZkVerifierRegistry());
      expect(none).to.deep.equal({
        code: "no_zk_verifier",
        message: "no verifier for system groth16 (this oracle verifies: none)",
      });
      const registry = new ZkVerifierRegistry().register({ system: "groth16", verify: async () => ({ ok: true }) });
      const noOutput = await checkZkProof({ ...r, output: undefined }, zk, registry);
      expect(noOutput?.code).to.equal("zk_proof_invalid");
      expect(noOutput?.message).to.match(/^output_missing: /);
      const noInput = await checkZkProof({ ...r, work_unit: { ...r.work_unit, input: undefined } }, zk, registry);
      expect(noInput?.message).to.match(/^input_missing: /);
      const noCommitment = await checkZkProof(r, { ...zk, weightsCommitment: null }, registry);
      expect(noCommitment?.message).to.match(/^wrong_verifier: .* has no weightsCommitment/);
    });

    it("hands the registered verifier the version's facts and the job's bytes, and reports its reason", async function () {
      const r = await zkReceipt();
      const seen: unknown[] = [];
      const registry = new ZkVerifierRegistry().register({
        system: "groth16",
        async verify(_proof, context) {
          seen.push(context);
          return { ok: false, reason: "wrong_input", message: "proof is for another input" };
        },
      });
      expect(await checkZkProof(r, zk, registry)).to.deep.equal({
        code: "zk_proof_invalid",
        message: "wrong_input: proof is for another input",
      });
      expect(seen).to.deep.equal([
        {
          weightsCommitment: 7n,
          verifyingKeyHash: zk.verifyingKeyHash,
          verifierContract: zk.verifier,
          input: Buffer.from(r.work_unit.input!, "base64"),
          output,
          inputSha256: r.work_unit.input_hash,
          outputSha256: r.proof_of_serving.output_hash,
        },
      ]);
      const throwing = new ZkVerifierRegistry().register({
        system: "groth16",
        verify: async () => {
          throw new Error("bad proof");
        },
      });
      expect((await checkZkProof(r, zk, throwing))?.message).to.equal("verifier_error: bad proof");
    });
  });
});

describe("receipt wire format on hostile values", function () {
  it("never throws from safeParse (zod runs refinements after a failed regex)", async function () {
    const json = await makeReceipt(domain, ids);
    const hostile: unknown[] = ["x", "__proto__", "💥", "", "-1", 1.5, -1, 2 ** 64, null, [], {}, "9".repeat(90)];
    for (const value of hostile) {
      for (const field of ["max_fee", "expires_at"] as const) {
        const result = receiptJsonSchema.safeParse({ ...json, work_unit: { ...json.work_unit, [field]: value } });
        expect(result.success, `${field} = ${JSON.stringify(value)}`).to.equal(false);
      }
    }
  });
});
