// Validator sampling's pure parts: the choice, the verdict, the evidence bytes, the slash amount
// and the configuration.
import { randomBytes } from "node:crypto";

import { expect } from "chai";

import { ConfigError, keeperConfig } from "../../keeper/config.ts";
import {
  evidenceBytes,
  isSampled,
  judge,
  sampleJobId,
  sampleScore,
  samplingEvidence,
  slashAmount,
  type SignedAnswer,
} from "../../keeper/sampling/logic.ts";

const KEY = `0x${"11".repeat(32)}`;
const jobId = () => `0x${randomBytes(32).toString("hex")}`;

function answer(node: string, outputHash: string, input = "aGk="): SignedAnswer {
  return {
    work_unit: {
      job_id: jobId(),
      model_ref: { model_id: 1, version: 0 },
      input_hash: `0x${"ab".repeat(32)}`,
      input,
      requested_by: `0x${"22".repeat(20)}`,
      expires_at: 1_000,
      max_fee: "1000",
    },
    client_signature: `0x${"33".repeat(65)}`,
    proof_of_serving: {
      job_id: jobId(),
      model_ref: { model_id: 1, version: 0 },
      work_unit_hash: `0x${"44".repeat(32)}`,
      output_hash: outputHash,
      latency_ms: 3,
      node_id: node,
      signature: `0x${"55".repeat(65)}`,
    },
  };
}

const A = `0x${"aa".repeat(20)}`;
const B = `0x${"bb".repeat(20)}`;
const C = `0x${"cc".repeat(20)}`;
const X = `0x${"01".repeat(32)}`;
const Y = `0x${"02".repeat(32)}`;
const Z = `0x${"03".repeat(32)}`;

describe("keeper validator sampling (logic)", function () {
  describe("the choice", function () {
    const secret = randomBytes(32);

    it("is deterministic per secret and job, and differs between secrets", function () {
      const ids = Array.from({ length: 200 }, jobId);
      const picks = ids.map((id) => isSampled(secret, id, 0.3));
      expect(ids.map((id) => isSampled(secret, id, 0.3))).to.deep.equal(picks);
      expect(ids.map((id) => isSampled(secret, id.toUpperCase().replace("0X", "0x"), 0.3))).to.deep.equal(picks);
      const other = randomBytes(32);
      expect(ids.map((id) => isSampled(other, id, 0.3))).to.not.deep.equal(picks);
    });

    it("picks nothing at 0, everything at 1, and about the fraction in between", function () {
      const ids = Array.from({ length: 4_000 }, jobId);
      expect(ids.filter((id) => isSampled(secret, id, 0))).to.have.length(0);
      expect(ids.filter((id) => isSampled(secret, id, 1))).to.have.length(ids.length);
      const share = ids.filter((id) => isSampled(secret, id, 0.25)).length / ids.length;
      // 4,000 draws: the standard deviation is under 0.007, so 0.05 is over 7 sigma.
      expect(share).to.be.within(0.2, 0.3);
      for (const id of ids.slice(0, 100)) expect(sampleScore(secret, id)).to.be.within(0, 1 - Number.EPSILON);
    });

    it("names the check after the chain and the job (no colon, lowercase)", function () {
      expect(sampleJobId(31337, `0x${"AB".repeat(32)}`)).to.equal(`sample-31337-0x${"ab".repeat(32)}`);
    });
  });

  describe("the verdict", function () {
    it("agrees when every output hash is the same", function () {
      expect(judge([answer(A, X), answer(B, X)]).kind).to.equal("agree");
    });

    it("cannot tell who is wrong from two answers", function () {
      expect(judge([answer(A, X), answer(B, Y)]).kind).to.equal("undecided");
    });

    it("accuses the one that disagrees with two others, original or re-run", function () {
      const original = answer(A, X);
      const v1 = judge([original, answer(B, Y), answer(C, Y)]);
      expect(v1.kind).to.equal("mismatch");
      if (v1.kind === "mismatch") {
        expect(v1.accused.proof_of_serving.node_id).to.equal(A);
        expect(v1.witnesses.map((w) => w.proof_of_serving.node_id)).to.deep.equal([B, C]);
      }
      const v2 = judge([original, answer(B, Y), answer(C, X)]);
      expect(v2.kind === "mismatch" && v2.accused.proof_of_serving.node_id).to.equal(B);
    });

    it("finds no majority when three answers all differ", function () {
      expect(judge([answer(A, X), answer(B, Y), answer(C, Z)]).kind).to.equal("no_majority");
    });
  });

  describe("the evidence", function () {
    it("names the accused, cites the input by hash only, and has the same bytes however keys are ordered", function () {
      const verdict = judge([answer(A, X, "c2VjcmV0"), answer(B, Y), answer(C, Y)]);
      if (verdict.kind !== "mismatch") throw new Error("expected a mismatch");
      const evidence = samplingEvidence(31337, verdict);
      expect(evidence.node).to.equal(A);
      expect(evidence.type).to.equal("inframesh.sampling.output_mismatch");
      const bytes = evidenceBytes(evidence);
      expect(bytes.toString()).to.not.include("c2VjcmV0");
      // The keeper reads recorded answers back from JSONB, which reorders keys: same bytes.
      const reordered = JSON.parse(JSON.stringify(evidence), (_k, v: unknown) =>
        v !== null && typeof v === "object" && !Array.isArray(v)
          ? Object.fromEntries(Object.entries(v as Record<string, unknown>).reverse())
          : v,
      ) as typeof evidence;
      expect(evidenceBytes(reordered).equals(bytes)).to.equal(true);
    });

    it("slashes the configured share of the cap", function () {
      expect(slashAmount(1_000n, 10_000)).to.equal(1_000n);
      expect(slashAmount(1_000n, 2_500)).to.equal(250n);
      expect(slashAmount(3n, 1)).to.equal(0n);
    });
  });

  describe("configuration", function () {
    it("is off by default, with a secret derived from the keeper key", function () {
      const { sampling } = keeperConfig({ INFRAMESH_KEEPER_KEY: KEY });
      expect(sampling.fraction).to.equal(0);
      expect(sampling.secret).to.have.length(32);
      expect(sampling.clientKey).to.equal(KEY);
      expect(sampling.gatewayPrefix).to.equal("inframesh:gw:");
      expect(sampling.slashBps).to.equal(10_000);
    });

    it("takes every INFRAMESH_KEEPER_SAMPLE_* variable", function () {
      const client = `0x${"22".repeat(32)}`;
      const { sampling } = keeperConfig({
        INFRAMESH_KEEPER_KEY: KEY,
        INFRAMESH_KEEPER_SAMPLE_FRACTION: "0.05",
        INFRAMESH_KEEPER_SAMPLE_SECRET: "0x" + "ab".repeat(16),
        INFRAMESH_KEEPER_SAMPLE_CLIENT_KEY: client,
        INFRAMESH_KEEPER_SAMPLE_GATEWAY_REDIS_URL: "redis://10.0.0.1:6379",
        INFRAMESH_KEEPER_SAMPLE_GATEWAY_PREFIX: "gw:",
        INFRAMESH_KEEPER_SAMPLE_BLOB_PEERS: "http://a:1, http://b:2",
        INFRAMESH_KEEPER_SAMPLE_SLASH_BPS: "500",
        INFRAMESH_KEEPER_SAMPLE_EVERY_MS: "1000",
        INFRAMESH_KEEPER_SAMPLE_TIMEOUT_MS: "2000",
      });
      expect(sampling).to.deep.include({
        fraction: 0.05,
        clientKey: client,
        gatewayRedisUrl: "redis://10.0.0.1:6379",
        gatewayPrefix: "gw:",
        blobPeers: ["http://a:1", "http://b:2"],
        slashBps: 500,
        everyMs: 1_000,
        rerunTimeoutMs: 2_000,
      });
      expect(sampling.secret.toString("hex")).to.equal("ab".repeat(16));
    });

    it("names every bad sampling variable in the keeper's one error", function () {
      const bad = {
        INFRAMESH_KEEPER_KEY: KEY,
        INFRAMESH_KEEPER_SAMPLE_FRACTION: "1.5",
        INFRAMESH_KEEPER_SAMPLE_SECRET: "abc",
        INFRAMESH_KEEPER_SAMPLE_CLIENT_KEY: "0x12",
        INFRAMESH_KEEPER_SAMPLE_BLOB_PEERS: "ftp://x",
        INFRAMESH_KEEPER_SAMPLE_SLASH_BPS: "0",
        INFRAMESH_CONFIRMATIONS: "two",
      };
      expect(() => keeperConfig(bad))
        .to.throw(ConfigError)
        .with.property("message")
        .that.matches(/INFRAMESH_KEEPER_SAMPLE_FRACTION must be a number from 0 to 1/)
        .and.matches(/INFRAMESH_KEEPER_SAMPLE_SECRET must be an even number of hex digits, at least 32/)
        .and.matches(/INFRAMESH_KEEPER_SAMPLE_CLIENT_KEY must be 0x followed by 64 hex/)
        .and.matches(/INFRAMESH_KEEPER_SAMPLE_BLOB_PEERS must be comma-separated http\(s\) URLs/)
        .and.matches(/INFRAMESH_KEEPER_SAMPLE_SLASH_BPS must be a whole number from 1 to 10000/)
        .and.matches(/INFRAMESH_CONFIRMATIONS must be a whole number/);
      for (const fraction of ["-0.1", "abc", "0.5.1", "2"]) {
        expect(() => keeperConfig({ INFRAMESH_KEEPER_KEY: KEY, INFRAMESH_KEEPER_SAMPLE_FRACTION: fraction })).to.throw(
          ConfigError,
          /INFRAMESH_KEEPER_SAMPLE_FRACTION must be a number from 0 to 1/,
        );
      }
    });

    it("refuses sampling without a blob-store peer for its evidence", function () {
      expect(() => keeperConfig({ INFRAMESH_KEEPER_KEY: KEY, INFRAMESH_KEEPER_SAMPLE_FRACTION: "0.1" })).to.throw(
        ConfigError,
        /INFRAMESH_KEEPER_SAMPLE_BLOB_PEERS is not set/,
      );
    });
  });
});
