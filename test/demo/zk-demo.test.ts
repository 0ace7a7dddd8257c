// The demo's zkML scenario (scripts/lib/zk-demo.ts) on its own fresh network: proven calls
// verified and paid, a bad proof refused with its reason, a challenge answered with a proof and
// one slashed.
//
// Slow (a hardhat node, a deploy, real proofs, a settlement): run alone with
// `npx hardhat test mocha test/demo/zk-demo.test.ts`.
import { expect } from "chai";

import { runZkScenario, type ZkDemoSummary } from "../../scripts/lib/zk-demo.ts";

describe("demo: zkML scenario", function () {
  this.timeout(900_000);

  const cleanups: (() => Promise<unknown>)[] = [];
  let summary: ZkDemoSummary;
  const said: string[] = [];

  before(async function () {
    summary = await runZkScenario((text) => said.push(text), cleanups);
  });

  after(async function () {
    for (const cleanup of cleanups.reverse()) await cleanup().catch(() => undefined);
  });

  it("publishes a zk-required version whose proven calls are verified and paid", function () {
    expect(said[0]).to.match(/^zkML: /);
    expect(summary.version).to.equal("1");
    expect(summary.verifier).to.match(/^0x[0-9a-fA-F]{40}$/);
    expect(summary.verified).to.equal(summary.calls);
    expect(BigInt(summary.claimed)).to.be.above(0n);
  });

  it("refuses the node whose proof is for another input, with the reason", function () {
    expect(summary.refused.code).to.equal("zk_proof_invalid");
    expect(summary.refused.reason).to.match(/^wrong_input: /);
  });

  it("fails a challenge the node answers with a valid proof, and slashes the node that cannot", function () {
    expect(summary.answeredChallenge.status).to.equal("answered");
    expect(summary.slashedChallenge.badAnswer).to.match(/^InvalidProof\(0x[0-9a-f]{64}\)$/);
    expect(BigInt(summary.slashedChallenge.slashed)).to.be.above(0n);
  });
});
