// The oracle end to end in one process against a real chain, Redis, PGlite and blob store:
// receipts in, verdicts recorded, an epoch built, signed, posted, finalised and funded on chain.
//
// Slow (starts a chain and deploys): run alone with `npx hardhat test mocha test/oracle/pipeline.test.ts`.
import { expect } from "chai";
import { type Address, createWalletClient, getAddress, http, parseAbi } from "viem";

import { buildEarningsTree } from "../../sdk/earnings.ts";
import { rewardClaimsAbi, paymentEscrowAbi } from "../../oracle/chain.ts";
import { type RunningOracle, startOracle } from "../../oracle/service.ts";
import { DEPOSIT, FEE_SCHEDULE, PRICE, ROLES, type World, devAccount, makeReceipt, startWorld } from "./world.ts";

const ADMIN = { authorization: "Bearer test-admin-token-0123456789" };

async function post(url: string, body: unknown, headers: Record<string, string> = {}) {
  const res = await fetch(`${url}/v1/receipts`, {
    method: "POST",
    headers: { "content-type": "application/json", ...headers },
    body: typeof body === "string" ? body : JSON.stringify(body),
  });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

async function waitFor<T>(what: string, fn: () => Promise<T | undefined>, timeoutMs = 60_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await fn();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe("oracle pipeline (real chain, Redis, PGlite)", function () {
  this.timeout(300_000);
  let world: World;
  let oracle: RunningOracle;

  before(async function () {
    world = await startWorld();
    oracle = await startOracle(world.oracleConfig());
  });

  after(async function () {
    await oracle?.close();
    await world?.stop();
  });

  const statusOf = async (jobId: string) => {
    const res = await fetch(`${oracle.url}/v1/receipts/${jobId}`);
    return (await res.json()) as {
      status: string;
      reason_code: string | null;
      fee: string | null;
      epoch: string | null;
    };
  };
  const settledStatus = (jobId: string) =>
    waitFor(`a verdict on ${jobId}`, async () => {
      const s = await statusOf(jobId);
      return s.status === "queued" ? undefined : s;
    });

  const paid: { client: Address; node: Address }[] = [];

  it("answers 202 once recorded, verifies a good receipt and reports the fee", async function () {
    const receipt = await makeReceipt(world.domain, world);
    const res = await post(oracle.url, receipt);
    expect(res.status).to.equal(202);
    expect(res.body).to.include({ job_id: receipt.work_unit.job_id, status: "queued" });
    const s = await settledStatus(receipt.work_unit.job_id);
    expect(s).to.include({ status: "verified", fee: PRICE.toString(), reason_code: null });
    paid.push({ client: devAccount(ROLES.clients[0]!).address, node: devAccount(ROLES.nodes[0]!).address });
  });

  it("answers a repeated identical receipt with its status, a different one under the same job id with 409", async function () {
    const receipt = await makeReceipt(world.domain, world);
    expect((await post(oracle.url, receipt)).status).to.equal(202);
    const again = await post(oracle.url, receipt);
    expect(again.status).to.equal(200);
    expect(again.body.job_id).to.equal(receipt.work_unit.job_id);
    const other = await makeReceipt(world.domain, world, { jobId: receipt.work_unit.job_id as `0x${string}` });
    const conflict = await post(oracle.url, other);
    expect(conflict.status).to.equal(409);
    expect(conflict.body).to.include({ error: "duplicate_job" });
    expect(conflict.body.reason).to.match(/already submitted/);
    await settledStatus(receipt.work_unit.job_id);
    paid.push({ client: devAccount(ROLES.clients[0]!).address, node: devAccount(ROLES.nodes[0]!).address });
  });

  const rejections: [string, () => Promise<unknown>, string][] = [
    ["an unregistered node", () => makeReceipt(world.domain, world, { node: ROLES.stranger }), "node_not_registered"],
    [
      "a client without escrow balance",
      () => makeReceipt(world.domain, world, { client: ROLES.stranger }),
      "insufficient_escrow",
    ],
    ["a fee above max_fee", () => makeReceipt(world.domain, world, { maxFee: PRICE - 1n }), "price_above_max_fee"],
    ["an unknown model", () => makeReceipt(world.domain, world, { modelId: 99n }), "unknown_model"],
    ["an unknown version", () => makeReceipt(world.domain, world, { version: 7n }), "unknown_version"],
    ["an expired work unit", () => makeReceipt(world.domain, world, { expiresAt: 1_000n }), "expired"],
    ["another chain id", () => makeReceipt({ ...world.domain, chainId: 1 }, world), "work_unit_hash_mismatch"],
    [
      "a client signature by someone else",
      () => makeReceipt(world.domain, world, { clientSigner: ROLES.clients[1]! }),
      "bad_client_signature",
    ],
    [
      "a proof signed by the other node",
      () => makeReceipt(world.domain, world, { nodeSigner: ROLES.nodes[1]! }),
      "bad_node_signature",
    ],
  ];
  for (const [what, make, code] of rejections) {
    it(`records ${what} as rejected (${code})`, async function () {
      const receipt = (await make()) as Awaited<ReturnType<typeof makeReceipt>>;
      expect((await post(oracle.url, receipt)).status).to.equal(202);
      const s = await settledStatus(receipt.work_unit.job_id);
      expect(s.status).to.equal("rejected");
      expect(s.reason_code).to.equal(code);
    });
  }

  it("rejects an input whose sha256 is not the signed input_hash at once", async function () {
    const receipt = await makeReceipt(world.domain, world);
    receipt.work_unit.input = Buffer.from("not the input").toString("base64");
    const res = await post(oracle.url, receipt);
    expect(res.status).to.equal(200);
    expect(res.body).to.include({ status: "rejected", reason_code: "input_hash_mismatch" });
  });

  it("settles the epoch on chain: post, finalise after the window, collect debits", async function () {
    const second = await makeReceipt(world.domain, world, { client: ROLES.clients[1]!, node: ROLES.nodes[1]! });
    expect((await post(oracle.url, second)).status).to.equal(202);
    await settledStatus(second.work_unit.job_id);
    paid.push({ client: devAccount(ROLES.clients[1]!).address, node: devAccount(ROLES.nodes[1]!).address });

    const closeRes = await fetch(`${oracle.url}/v1/epochs/close`, { method: "POST", headers: ADMIN });
    const closed = (await closeRes.json()) as Record<string, unknown>;
    expect(closeRes.status, JSON.stringify(closed)).to.equal(200);
    expect(closed).to.include({ epoch: "0", state: "posted" });
    expect(closed.tx_hash).to.match(/^0x[0-9a-f]{64}$/);

    await world.increaseTime(3_601);
    const funded = (await (
      await fetch(`${oracle.url}/v1/epochs/close`, { method: "POST", headers: ADMIN })
    ).json()) as Record<string, unknown>;
    expect(funded).to.include({ epoch: "0", state: "funded" });

    const [fundedTotal] = await world.publicClient.readContract({
      address: world.record.contracts.rewardClaims.address,
      abi: rewardClaimsAbi,
      functionName: "totals",
    });
    expect(fundedTotal).to.equal(PRICE * BigInt(paid.length));
    const balance = await world.publicClient.readContract({
      address: world.record.contracts.paymentEscrow.address,
      abi: paymentEscrowAbi,
      functionName: "balanceOf",
      args: [devAccount(ROLES.clients[0]!).address],
    });
    expect(balance).to.equal(DEPOSIT - PRICE * 2n);

    const epoch = (await (await fetch(`${oracle.url}/v1/epochs/0`)).json()) as { settlement: Record<string, string> };
    const protocol = (PRICE * BigInt(FEE_SCHEDULE.protocolFeeBps)) / 10_000n;
    const royalty = (PRICE * BigInt(FEE_SCHEDULE.royaltyBps)) / 10_000n;
    expect(epoch.settlement).to.include({
      receiptCount: "3",
      totalDebits: (PRICE * 3n).toString(),
      fees: (protocol * 3n).toString(),
      royalties: (royalty * 3n).toString(),
    });
    const node0 = getAddress(devAccount(ROLES.nodes[0]!).address);
    const tree = buildEarningsTree([
      { account: node0, cumulativeAmount: (PRICE - protocol - royalty) * 2n },
      { account: getAddress(devAccount(ROLES.nodes[1]!).address), cumulativeAmount: PRICE - protocol - royalty },
      { account: getAddress(devAccount(ROLES.publisher).address), cumulativeAmount: royalty * 3n },
      { account: getAddress(devAccount(ROLES.treasury).address), cumulativeAmount: protocol * 3n },
    ]);
    expect(epoch.settlement.earningsRoot).to.equal(tree.root);

    // What a node passes to RewardClaims.claim, served by the oracle.
    const claim = (await (await fetch(`${oracle.url}/v1/epochs/0/claims/${node0}`)).json()) as Record<string, unknown>;
    expect(claim).to.deep.include({
      account: node0,
      cumulative_amount: ((PRICE - protocol - royalty) * 2n).toString(),
      earnings_root: tree.root,
      proof: tree.proof(node0),
    });
    const stranger = await fetch(`${oracle.url}/v1/epochs/0/claims/${devAccount(ROLES.stranger).address}`);
    expect(stranger.status).to.equal(404);
    expect(await stranger.json()).to.include({ error: "no_earnings" });
    const malformed = await fetch(`${oracle.url}/v1/epochs/0/claims/0x1234`);
    expect(malformed.status).to.equal(400);
    expect(await malformed.json()).to.include({ error: "invalid_account" });
    for (const r of await oracle.store.epochReceipts(0n)) expect((await statusOf(r.jobId)).status).to.equal("settled");
  });

  it("closes a named epoch only while it is the open one: a repeated close reports its state", async function () {
    const close = (body: string) =>
      fetch(`${oracle.url}/v1/epochs/close`, {
        method: "POST",
        headers: { ...ADMIN, "content-type": "application/json" },
        body,
      });
    const repeats = await Promise.all(Array.from({ length: 10 }, () => close(JSON.stringify({ epoch: "0" }))));
    for (const res of repeats) {
      expect(res.status).to.equal(200);
      expect(await res.json()).to.include({ epoch: "0", state: "funded" });
    }
    expect(await (await close(JSON.stringify({ epoch: 0 }))).json()).to.include({ epoch: "0", state: "funded" });
    const ahead = await close(JSON.stringify({ epoch: "5" }));
    expect(ahead.status).to.equal(409);
    expect(await ahead.json()).to.deep.equal({
      error: "epoch_not_open",
      reason: "epoch 5 is not the open epoch: the chain's next epoch is 1",
    });
    const empty = await close(JSON.stringify({ epoch: "1" }));
    expect(empty.status).to.equal(409);
    expect(await empty.json()).to.include({ error: "nothing_to_settle" });
    for (const bad of ['{"epoch": "-1"}', '{"epoch": 1.5}', '{"epoch": "1", "extra": 1}', "[1]"]) {
      const res = await close(bad);
      expect(res.status, bad).to.equal(400);
      const json = (await res.json()) as { error: string; reason: string };
      expect(json.error, bad).to.equal("invalid_request");
      expect(json.reason, bad).to.include('send {} or {"epoch": "<n>"}');
    }
    expect((await oracle.store.getEpoch(1n))?.state).to.equal(undefined);
  });

  it("refuses to close an epoch with nothing to settle, and without the admin token", async function () {
    const res = await fetch(`${oracle.url}/v1/epochs/close`, { method: "POST", headers: ADMIN });
    expect(res.status).to.equal(409);
    expect(await res.json()).to.include({ error: "nothing_to_settle" });
    const anon = await fetch(`${oracle.url}/v1/epochs/close`, { method: "POST" });
    expect(anon.status).to.equal(401);
    // Without the token nothing about the body is answered, not even that it is malformed.
    const anonBad = await fetch(`${oracle.url}/v1/epochs/close`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: "{not json",
    });
    expect(anonBad.status).to.equal(401);
    const wrong = await fetch(`${oracle.url}/v1/epochs/close`, {
      method: "POST",
      headers: { authorization: "Bearer nope" },
    });
    expect(wrong.status).to.equal(403);
  });

  it("does not count escrow a client asked to withdraw", async function () {
    const client = devAccount(ROLES.clients[1]!);
    const balance = await world.publicClient.readContract({
      address: world.record.contracts.paymentEscrow.address,
      abi: paymentEscrowAbi,
      functionName: "balanceOf",
      args: [client.address],
    });
    const wallet = createWalletClient({ account: client, transport: http(world.chain.rpcUrl) });
    const hash = await wallet.writeContract({
      chain: null,
      address: world.record.contracts.paymentEscrow.address,
      abi: parseAbi(["function requestWithdrawal(uint256 amount) returns (uint64)"]),
      functionName: "requestWithdrawal",
      args: [balance - PRICE / 2n],
    });
    await world.publicClient.waitForTransactionReceipt({ hash });
    await new Promise((r) => setTimeout(r, 2_500)); // past the oracle's block cache
    const receipt = await makeReceipt(world.domain, world, { client: ROLES.clients[1]! });
    expect((await post(oracle.url, receipt)).status).to.equal(202);
    const s = await settledStatus(receipt.work_unit.job_id);
    expect(s).to.include({ status: "rejected", reason_code: "insufficient_escrow" });
  });

  it("records receipts while Redis is down (202, not ready) and verifies them once it is back", async function () {
    await world.redis.stop();
    const receipt = await makeReceipt(world.domain, world);
    const res = await post(oracle.url, receipt);
    expect(res.status).to.equal(202);
    expect((await fetch(`${oracle.url}/readyz`)).status).to.equal(503);
    expect((await statusOf(receipt.work_unit.job_id)).status).to.equal("queued");
    await world.redis.restart();
    const s = await settledStatus(receipt.work_unit.job_id);
    expect(s.status).to.equal("verified");
    expect((await fetch(`${oracle.url}/readyz`)).status).to.equal(200);
  });

  it("serves /healthz, /readyz, /metrics and an OpenAPI 3.1 document", async function () {
    expect((await fetch(`${oracle.url}/healthz`)).status).to.equal(200);
    expect((await fetch(`${oracle.url}/readyz`)).status).to.equal(200);
    const metrics = await (await fetch(`${oracle.url}/metrics`)).text();
    expect(metrics).to.match(/oracle_receipts_received_total\{outcome="queued"\} \d+/);
    expect(metrics).to.match(/oracle_receipt_verdicts_total\{status="rejected",reason="node_not_registered"\} 1/);
    const doc = (await (await fetch(`${oracle.url}/openapi.json`)).json()) as Record<string, any>;
    expect(doc.openapi).to.equal("3.1.0");
    const schema = doc.paths["/v1/receipts"].post.requestBody.content["application/json"].schema;
    expect(schema.required).to.deep.equal(["work_unit", "client_signature", "proof_of_serving"]);
    expect(schema.properties.work_unit.properties.job_id.pattern).to.equal("^0x[0-9a-fA-F]{64}$");
  });
});
