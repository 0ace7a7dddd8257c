// The gateway's pure pieces: candidate filter, scoring and ranking, statistics, quorum decision and
// dissent evidence, forwarding outcome classification.
import { createHash } from "node:crypto";

import { expect } from "chai";
import type { Address, Hex } from "viem";

import { classifyAnswer } from "../../gateway/forward.ts";
import { decideQuorum, dissentEvidence, evidenceDigest, type QuorumAnswer } from "../../gateway/quorum.ts";
import {
  EMPTY_STATS,
  filterCandidates,
  hardwareFit,
  rankCandidates,
  scoreNode,
  tieBreakKey,
  updateStats,
  type NodeView,
} from "../../gateway/scoring.ts";
import type { ProofOfServingJson, WorkUnitJson } from "../../sdk/receipt.ts";

const addr = (n: number) => `0x${n.toString(16).padStart(40, "0")}` as Address;
const NOW = 1_700_000_000_000;
const CPU = { cpus: 4, memory_bytes: 8 * 2 ** 30, gpus: [] };
const GPU = { cpus: 8, memory_bytes: 32 * 2 ** 30, gpus: [{ name: "L4", memory_bytes: 24 * 2 ** 30 }] };
const REQ = { modelId: 1n, minTier: 1, memoryBytes: 2 ** 30, gpu: false };

function view(n: number, over: Partial<NodeView> = {}): NodeView {
  return {
    node: addr(n),
    endpoint: `http://127.0.0.1:${9000 + n}`,
    registered: true,
    jailed: false,
    eligible: true,
    tier: 1,
    stake: 10_000n,
    models: [1n],
    load: 0,
    hardware: CPU,
    heartbeatAt: NOW - 1_000,
    stats: EMPTY_STATS,
    downUntil: 0,
    ...over,
  };
}

describe("gateway scheduling (pure)", function () {
  describe("filterCandidates", function () {
    it("keeps only registered, unjailed, eligible nodes at the tier, with the model and a fresh heartbeat", function () {
      const nodes = [
        view(1),
        view(2, { registered: false }),
        view(3, { jailed: true }),
        view(4, { eligible: false }),
        view(5, { tier: 0 }),
        view(6, { models: [2n] }),
        view(7, { heartbeatAt: NOW - 10_001 }),
        view(8, { tier: 3 }),
      ];
      const { candidates, rejected } = filterCandidates(nodes, REQ, NOW, 10_000);
      expect(candidates.map((c) => c.node)).to.deep.equal([addr(1), addr(8)]);
      expect(rejected).to.deep.equal([
        { node: addr(2), reason: "unregistered" },
        { node: addr(3), reason: "jailed" },
        { node: addr(4), reason: "ineligible" },
        { node: addr(5), reason: "tier_too_low" },
        { node: addr(6), reason: "model_not_loaded" },
        { node: addr(7), reason: "stale" },
      ]);
    });

    it("accepts a heartbeat exactly at the age limit", function () {
      expect(filterCandidates([view(1, { heartbeatAt: NOW - 10_000 })], REQ, NOW, 10_000).candidates).to.have.length(1);
    });
  });

  describe("scoreNode", function () {
    it("prefers lower latency, higher success, higher tier, lower load, each on its own", function () {
      const base = scoreNode(view(1), REQ, NOW);
      const fast = { ...EMPTY_STATS, latencyEwmaMs: 5 };
      const slow = { ...EMPTY_STATS, latencyEwmaMs: 500 };
      expect(scoreNode(view(1, { stats: fast }), REQ, NOW)).to.be.greaterThan(
        scoreNode(view(1, { stats: slow }), REQ, NOW),
      );
      expect(scoreNode(view(1, { stats: { ...EMPTY_STATS, successes: 50 } }), REQ, NOW)).to.be.greaterThan(base);
      expect(scoreNode(view(1, { stats: { ...EMPTY_STATS, failures: 5 } }), REQ, NOW)).to.be.lessThan(base);
      expect(scoreNode(view(1, { tier: 3 }), REQ, NOW)).to.be.greaterThan(base);
      expect(scoreNode(view(1, { load: 0.9 }), REQ, NOW)).to.be.lessThan(base);
    });

    it("puts a node seen down behind every healthy one, until the mark expires", function () {
      const down = view(1, { downUntil: NOW + 1, stats: { latencyEwmaMs: 1, successes: 1000, failures: 0 }, tier: 4 });
      const worst = view(2, { stats: { latencyEwmaMs: 10_000, successes: 0, failures: 100 }, tier: 0, load: 1 });
      expect(scoreNode(down, REQ, NOW)).to.be.lessThan(scoreNode(worst, REQ, NOW));
      expect(scoreNode(down, REQ, NOW + 1)).to.be.greaterThan(scoreNode(worst, REQ, NOW + 1));
    });

    it("treats a load outside 0..1 or NaN as the worst load rather than a bonus", function () {
      expect(scoreNode(view(1, { load: Number.NaN }), REQ, NOW)).to.equal(scoreNode(view(1, { load: 1 }), REQ, NOW));
      expect(scoreNode(view(1, { load: -5 }), REQ, NOW)).to.equal(scoreNode(view(1, { load: 0 }), REQ, NOW));
    });
  });

  describe("hardwareFit", function () {
    it("is 0 without enough memory or a wanted GPU, 0.5 for a GPU machine on a CPU model, else 1", function () {
      expect(hardwareFit(CPU, { memoryBytes: 64 * 2 ** 30, gpu: false })).to.equal(0);
      expect(hardwareFit(CPU, { memoryBytes: 0, gpu: true })).to.equal(0);
      expect(hardwareFit(GPU, { memoryBytes: 0, gpu: true })).to.equal(1);
      expect(hardwareFit(GPU, { memoryBytes: 0, gpu: false })).to.equal(0.5);
      expect(hardwareFit(CPU, { memoryBytes: 2 ** 30, gpu: false })).to.equal(1);
    });
  });

  describe("rankCandidates", function () {
    it("orders by score, then by sha256(job id ‖ node) for equal scores, the same on every call", function () {
      const nodes = [view(1), view(2), view(3), view(4, { stats: { ...EMPTY_STATS, latencyEwmaMs: 1 } })];
      const seed = `0x${"ab".repeat(32)}`;
      const ranked = rankCandidates(nodes, REQ, NOW, seed).map((n) => n.node);
      expect(ranked[0]).to.equal(addr(4));
      const ties = [addr(1), addr(2), addr(3)].sort((a, b) => (tieBreakKey(seed, a) < tieBreakKey(seed, b) ? -1 : 1));
      expect(ranked.slice(1)).to.deep.equal(ties);
      expect(rankCandidates([...nodes].reverse(), REQ, NOW, seed).map((n) => n.node)).to.deep.equal(ranked);
    });

    it("spreads equal nodes across job ids (every node comes first for some job)", function () {
      const nodes = [view(1), view(2), view(3)];
      const firsts = new Set<string>();
      for (let i = 0; i < 60; i++) firsts.add(rankCandidates(nodes, REQ, NOW, `job-${i}`)[0]!.node);
      expect(firsts.size).to.equal(3);
    });
  });

  describe("updateStats", function () {
    it("starts the EWMA at the first latency and moves it by alpha after", function () {
      const one = updateStats(EMPTY_STATS, { ok: true, latencyMs: 100 });
      expect(one).to.deep.equal({ latencyEwmaMs: 100, successes: 1, failures: 0 });
      const two = updateStats(one, { ok: true, latencyMs: 200 });
      expectNear(two.latencyEwmaMs, 120);
      expectNear(two.successes, 1.98);
    });

    it("counts a failure without touching the latency, and decays old outcomes", function () {
      const s = updateStats({ latencyEwmaMs: 10, successes: 100, failures: 0 }, { ok: false });
      expect(s).to.deep.equal({ latencyEwmaMs: 10, successes: 98, failures: 1 });
    });
  });
});

const JOB = `0x${"11".repeat(32)}` as Hex;
const hashOf = (s: string) => `0x${createHash("sha256").update(s).digest("hex")}` as Hex;

function answer(node: number, stake: bigint, out: string): QuorumAnswer {
  const outputHash = hashOf(out);
  return {
    node: addr(node),
    stake,
    outputHash,
    output: Buffer.from(out).toString("base64"),
    proof: {
      job_id: JOB,
      model_ref: { model_id: 1, version: 0 },
      work_unit_hash: `0x${"22".repeat(32)}`,
      output_hash: outputHash,
      latency_ms: 3,
      node_id: addr(node),
      signature: `0x${"33".repeat(65)}`,
    } satisfies ProofOfServingJson,
  };
}

const UNIT: WorkUnitJson = {
  job_id: JOB,
  model_ref: { model_id: 1, version: 0 },
  input_hash: `0x${"44".repeat(32)}`,
  input: "AAAA",
  requested_by: addr(99),
  expires_at: 2_000_000_000,
  max_fee: "1000",
};

describe("gateway quorum (pure)", function () {
  it("answers with the output holding a strict stake majority and lists the dissenters", function () {
    const d = decideQuorum([answer(1, 10n, "a"), answer(2, 10n, "a"), answer(3, 15n, "b")]);
    expect(d.kind).to.equal("agreed");
    if (d.kind !== "agreed") return;
    expect(d.winner.outputHash).to.equal(hashOf("a"));
    expect(d.majority.map((m) => m.node)).to.deep.equal([addr(1), addr(2)]);
    expect(d.dissent.map((m) => m.node)).to.deep.equal([addr(3)]);
  });

  it("weighs by stake, not by head count", function () {
    const d = decideQuorum([answer(1, 1n, "a"), answer(2, 1n, "a"), answer(3, 5n, "b")]);
    expect(d.kind === "agreed" && d.winner.outputHash).to.equal(hashOf("b"));
  });

  it("finds no majority on a stake tie or with zero stake", function () {
    expect(decideQuorum([answer(1, 5n, "a"), answer(2, 5n, "b")]).kind).to.equal("no_majority");
    expect(decideQuorum([answer(1, 0n, "a"), answer(2, 0n, "a")]).kind).to.equal("no_majority");
    expect(decideQuorum([]).kind).to.equal("no_majority");
  });

  it("counts a node once even if it answers twice", function () {
    const d = decideQuorum([answer(1, 10n, "a"), answer(1, 10n, "a"), answer(2, 15n, "b")]);
    expect(d.kind === "agreed" && d.winner.outputHash).to.equal(hashOf("b"));
  });

  it("records each dissenter's signed proof as evidence, without the input, with a clock-free digest", function () {
    const d = decideQuorum([answer(1, 10n, "a"), answer(2, 10n, "a"), answer(3, 5n, "b")]);
    if (d.kind !== "agreed") throw new Error("expected agreement");
    const [record] = dissentEvidence(d, UNIT, `0x${"55".repeat(65)}`, NOW);
    expect(record).to.deep.include({
      kind: "quorum-dissent",
      node: addr(3),
      output_hash: hashOf("b"),
      majority_output_hash: hashOf("a"),
      majority_stake: "20",
      dissent_stake: "5",
    });
    expect(record!.majority_nodes).to.deep.equal([addr(1), addr(2)]);
    expect(record!.work_unit).to.not.have.property("input");
    expect(record!.proof_of_serving.signature).to.equal(`0x${"33".repeat(65)}`);
    const later = dissentEvidence(d, UNIT, `0x${"55".repeat(65)}`, NOW + 5_000)[0]!;
    expect(evidenceDigest(later)).to.equal(evidenceDigest(record!));
  });
});

describe("gateway forwarding outcome (pure)", function () {
  const node = addr(1);
  const ok = answer(1, 1n, '{"output":[1]}');
  const body = (status: number, json: unknown) => ({ status, body: Buffer.from(JSON.stringify(json)) });
  const served = {
    job_id: JOB,
    node_id: node,
    output: ok.output,
    output_hash: ok.outputHash,
    proof_of_serving: ok.proof,
  };

  it("accepts a 200 whose output hashes to the signed output hash, for this job and node", function () {
    const o = classifyAnswer(body(200, served), node, JOB);
    expect(o.kind).to.equal("served");
  });

  it("treats a wrong hash, another node's proof, another job or a non-JSON body as the node's fault", function () {
    const cases = [
      body(200, { ...served, output: Buffer.from("other").toString("base64") }),
      body(200, { ...served, proof_of_serving: { ...ok.proof, node_id: addr(2) } }),
      body(200, { ...served, proof_of_serving: { ...ok.proof, job_id: `0x${"99".repeat(32)}` } }),
      body(200, { output: "AA==" }),
      { status: 502, body: Buffer.from("<html>bad gateway</html>") },
    ];
    for (const c of cases) expect(classifyAnswer(c, node, JOB).kind).to.equal("node_fault");
  });

  it("passes a client's 4xx back, but fails over on 5xx, 429 and node-side 4xx codes", function () {
    expect(classifyAnswer(body(401, { error: "bad_signature", reason: "x" }), node, JOB)).to.deep.equal({
      kind: "client_error",
      status: 401,
      code: "bad_signature",
      reason: "x",
    });
    for (const [status, code] of [
      [504, "model_timeout"],
      [502, "model_failed"],
      [429, "busy"],
      [404, "model_not_served"],
      [409, "wrong_version"],
      [409, "duplicate_job"],
    ] as const) {
      expect(classifyAnswer(body(status, { error: code, reason: "r" }), node, JOB).kind).to.equal("node_fault");
    }
  });
});

/** |actual − expected| < 1e-9 (chai's closeTo is replaced by a bigint matcher when hardhat-ethers loads). */
function expectNear(actual: number | undefined, expected: number): void {
  expect(actual !== undefined && Math.abs(actual - expected) < 1e-9, `${actual} ≈ ${expected}`).to.equal(true);
}
