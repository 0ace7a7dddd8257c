// Validator sampling against real parts: a `hardhat node` deployed with the deploy task, real node
// agents serving simplenet (onnxruntime), one of them dishonest (its model server is the test
// double that answers a fixed, valid-looking wrong output, which the agent signs), a real gateway
// keeping served jobs in a real `redis-server`, a blob-store peer, and the keeper in this process.
//
// Slow (a chain and four agents): run alone with `npx hardhat test mocha test/keeper/sampling.test.ts`.
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { Writable } from "node:stream";

import { Queue } from "bullmq";
import { expect } from "chai";
import { Redis } from "ioredis";
import { pino } from "pino";
import { parseAbi, sha256, type Address, type Hex } from "viem";
import { generatePrivateKey, privateKeyToAccount } from "viem/accounts";

import type { Gateway } from "../../gateway/server.ts";
import { keeperConfig } from "../../keeper/config.ts";
import type { SamplingEvidence } from "../../keeper/sampling/logic.ts";
import { sampleJobId } from "../../keeper/sampling/logic.ts";
import { SAMPLING_QUEUE } from "../../keeper/sampling/worker.ts";
import { startKeeper, type RunningKeeper } from "../../keeper/service.ts";
import { encodeInferInput } from "../../models/simplenet/contract.ts";
import {
  DEPLOYER_KEY,
  startInferenceNetwork,
  type InferenceNetwork,
  type RunningAgent,
} from "../../scripts/lib/inference-network.ts";
import { recoverProofOfServingSigner, recoverWorkUnitSigner } from "../../sdk/eip712.ts";
import { proofOfServingOf, receiptJsonSchema, workUnitOf } from "../../sdk/receipt.ts";

const MISBEHAVING = path.join(import.meta.dirname, "..", "agent", "fixtures", "misbehaving-model-server.ts");
const stakingEvents = parseAbi([
  "event Slashed(address indexed node, bytes32 indexed evidenceHash, uint256 amount, uint256 fromActive, uint256 fromUnbonding, uint256 burned, uint256 redistributed, uint64 jailedUntil)",
  "function isJailed(address node) view returns (bool)",
]);

const inputOf = (first: number) => encodeInferInput([first, ...Array.from({ length: 15 }, (_, i) => i / 4 - 2)]);

async function until<T>(what: string, check: () => Promise<T | undefined | false>, timeoutMs = 120_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined && value !== false) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe("keeper validator sampling (real chain, agents, gateway, Redis)", function () {
  this.timeout(600_000);

  let net: InferenceNetwork;
  let honest: RunningAgent[];
  let dishonest: RunningAgent;
  let redis: Redis;
  let queue: Queue;
  let keeper: RunningKeeper | undefined;
  let dataRoot: string;
  const client = privateKeyToAccount(generatePrivateKey());
  const keeperClientKey = generatePrivateKey();
  const keeperClient = privateKeyToAccount(keeperClientKey);
  const logLines: string[] = [];
  const logger = pino(
    { level: "info" },
    new Writable({
      write(chunk: Buffer, _enc, done) {
        logLines.push(chunk.toString());
        done();
      },
    }),
  );

  before(async function () {
    net = await startInferenceNetwork("local-test-sampling");
    const operators = [];
    for (let i = 0; i < 4; i++) operators.push(await net.addOperator(10_000n));
    honest = [];
    for (const operator of operators.slice(0, 3)) honest.push(await net.startAgent(operator));
    dishonest = await net.startAgent(operators[3]!, { agentOptions: { modelServer: MISBEHAVING } });
    redis = new Redis(net.redis.url, { maxRetriesPerRequest: null });
    queue = new Queue(SAMPLING_QUEUE, { connection: redis });
    dataRoot = await mkdtemp(path.join(tmpdir(), "inframesh-sampling-test-"));
  });

  after(async function () {
    await keeper?.stop();
    await queue?.close();
    redis?.disconnect();
    await net?.stop();
    if (dataRoot !== undefined) await rm(dataRoot, { recursive: true, force: true });
  });

  afterEach(function () {
    if (this.currentTest?.state === "failed") console.log(logLines.slice(-60).join(""));
  });

  async function startSamplingKeeper(prefix: string, fraction: string): Promise<RunningKeeper> {
    const config = keeperConfig({
      INFRAMESH_NETWORK: "localhost",
      INFRAMESH_DEPLOYMENTS_DIR: net.work,
      INFRAMESH_RPC_URL: net.chain.rpcUrl,
      REDIS_URL: net.redis.url,
      // The deployer holds SLASHER_ROLE on the local deployment.
      INFRAMESH_KEEPER_KEY: DEPLOYER_KEY,
      INFRAMESH_KEEPER_PORT: "0",
      INFRAMESH_DATA_DIR: await mkdtemp(path.join(dataRoot, "keeper-")),
      INFRAMESH_CONFIRMATIONS: "0",
      INFRAMESH_INDEXER_POLL_MS: "500",
      INFRAMESH_KEEPER_BACKOFF_MS: "200",
      INFRAMESH_KEEPER_LOCK_MS: "5000",
      INFRAMESH_KEEPER_SAMPLE_FRACTION: fraction,
      INFRAMESH_KEEPER_SAMPLE_CLIENT_KEY: keeperClientKey,
      INFRAMESH_KEEPER_SAMPLE_GATEWAY_PREFIX: prefix,
      INFRAMESH_KEEPER_SAMPLE_BLOB_PEERS: net.blobPeerUrl,
      INFRAMESH_KEEPER_SAMPLE_EVERY_MS: "200",
      INFRAMESH_KEEPER_SAMPLE_TIMEOUT_MS: "20000",
    });
    keeper = await startKeeper(config, logger);
    return keeper;
  }

  async function startGateway(prefix: string): Promise<Gateway> {
    return net.startGateway({
      redis: { url: net.redis.url, prefix },
      heartbeats: { max_age_ms: 600_000, max_future_ms: 5_000 },
      routing: {
        forward_timeout_ms: 20_000,
        max_attempts: 3,
        down_cooldown_ms: 1_000,
        node_refresh_ms: 100,
        max_redundancy: 3,
        node_capacity: 8,
      },
      sampling: { retain_ms: 600_000, stream_max: 1_000 },
    });
  }

  async function serve(gateway: Gateway, first: number): Promise<{ jobId: Hex; node: Address; outputHash: Hex }> {
    const response = await fetch(`${gateway.url}/inference/v1/model/simplenet`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(await net.signedCall(client, inputOf(first))),
    });
    const json = (await response.json()) as Record<string, string>;
    expect(response.status, JSON.stringify(json)).to.equal(200);
    return { jobId: json.job_id as Hex, node: json.node_id as Address, outputHash: json.output_hash as Hex };
  }

  async function metric(name: string, labels = ""): Promise<number> {
    const text = await (await fetch(`${keeper!.url}/metrics`)).text();
    const line = text.split("\n").find((l) => l.startsWith(`${name}${labels} `));
    return line === undefined ? 0 : Number(line.split(" ")[1]);
  }

  const slashes = () =>
    net.publicClient.getContractEvents({
      address: net.record.contracts.nodeStaking.address,
      abi: stakingEvents,
      eventName: "Slashed",
      fromBlock: 0n,
    });

  async function pendingSampleJobs(): Promise<number> {
    const jobs = await queue.getJobs(["waiting", "active", "delayed", "prioritized", "waiting-children"]);
    return jobs.filter((j) => j.name === "sample").length;
  }

  it("fraction 0: the gateway keeps the job, the keeper starts no sampling and re-runs nothing", async function () {
    const gateway = await startGateway("off:");
    await net.heartbeatOnce(honest[0]!, [gateway.url]);
    await gateway.refreshNodes();
    const served = await serve(gateway, 0.5);
    const kept = await until("the gateway to keep the served job", async () => gateway.store.servedJob(served.jobId));
    expect(kept.proof_of_serving.node_id).to.equal(served.node);
    expect(kept.work_unit.input).to.be.a("string");

    await startSamplingKeeper("off:", "0");
    expect(await queue.getJobSchedulers()).to.deep.equal([]);
    expect(await pendingSampleJobs()).to.equal(0);
    expect(await redis.keys("inframesh-keeper:sampling:*")).to.deep.equal([]);
    expect(await (await fetch(`${keeper!.url}/metrics`)).text()).to.not.include("inframesh_keeper_sampled_jobs_total");
    await keeper!.stop();
    keeper = undefined;
    await gateway.stop();
  });

  describe("fraction 1", function () {
    let gateway: Gateway;
    let cheat: { jobId: Hex; node: Address; outputHash: Hex };

    before(async function () {
      gateway = await startGateway("gw:");
      // Only the dishonest node has a heartbeat: the gateway has to send it the job.
      await net.heartbeatOnce(dishonest, [gateway.url]);
      await gateway.refreshNodes();
      cheat = await serve(gateway, 0.25);
      expect(cheat.node).to.equal(dishonest.operator.account.address);
      await until("the gateway to keep the job", async () => gateway.store.servedJob(cheat.jobId));
      for (const agent of honest) await net.heartbeatOnce(agent, [gateway.url]);
      await startSamplingKeeper("gw:", "1");
      // The trigger fired several times while the scan queues the same check: under the check's
      // job id (collapsed) and under other ids (each runs, one after the other).
      for (let i = 0; i < 3; i++) {
        await queue.add("sample", { jobId: cheat.jobId }, { jobId: sampleJobId(net.record.chainId, cheat.jobId) });
        await queue.add("sample", { jobId: cheat.jobId });
      }
    });

    it("catches the dishonest node and slashes it once, citing published evidence of signed answers", async function () {
      const [event] = await until("the slash", async () => {
        const found = await slashes();
        return found.length > 0 ? found : undefined;
      });
      expect(event!.args.node).to.equal(dishonest.operator.account.address);
      await until(
        "the check to be recorded",
        async () => (await metric("inframesh_keeper_sampled_jobs_total", '{outcome="slashed"}')) === 1,
      );
      expect(
        await net.publicClient.readContract({
          address: net.record.contracts.nodeStaking.address,
          abi: stakingEvents,
          functionName: "isJailed",
          args: [dishonest.operator.account.address],
        }),
      ).to.equal(true);

      // The evidence is on the blob peer under the hash the chain cites.
      const evidenceHash = event!.args.evidenceHash!;
      const blob = Buffer.from(await (await fetch(`${net.blobPeerUrl}/blob/${evidenceHash.slice(2)}`)).arrayBuffer());
      expect(sha256(blob)).to.equal(evidenceHash);
      const evidence = JSON.parse(blob.toString("utf8")) as SamplingEvidence;
      expect(evidence.node).to.equal(dishonest.operator.account.address);
      expect(evidence.accused.proof_of_serving.job_id).to.equal(cheat.jobId);
      expect(evidence.accused.proof_of_serving.output_hash).to.equal(cheat.outputHash);
      const input = Buffer.from(
        await (await fetch(`${net.blobPeerUrl}/blob/${evidence.input_hash.slice(2)}`)).arrayBuffer(),
      );
      expect(input.equals(Buffer.from(inputOf(0.25)))).to.equal(true);

      // Every answer in it is signed: each work unit by its client, each proof by its node.
      const honestNodes = honest.map((h) => h.operator.account.address);
      for (const answer of [evidence.accused, ...evidence.witnesses]) {
        const r = receiptJsonSchema.parse(answer);
        expect(await recoverWorkUnitSigner(net.domain, workUnitOf(r), r.client_signature)).to.equal(
          r.work_unit.requested_by,
        );
        expect(
          await recoverProofOfServingSigner(net.domain, proofOfServingOf(r), r.proof_of_serving.signature),
        ).to.equal(r.proof_of_serving.node_id);
      }
      expect(evidence.witnesses).to.have.length(2);
      for (const w of evidence.witnesses) {
        expect(honestNodes).to.include(w.proof_of_serving.node_id);
        // The keeper re-ran the input as its own client.
        expect(w.work_unit.requested_by).to.equal(keeperClient.address);
        expect(w.work_unit.input_hash).to.equal(evidence.input_hash);
        expect(w.proof_of_serving.output_hash).to.equal(evidence.witnesses[0]!.proof_of_serving.output_hash);
        expect(w.proof_of_serving.output_hash).to.not.equal(cheat.outputHash);
      }
    });

    it("does not slash again when the trigger fires again and again", async function () {
      const before = await metric("inframesh_keeper_sampling_slash_transactions_total");
      // The same check queued five times (collapsed by its job id), three times under other ids
      // (each runs and finds the check recorded), and the stream read again from the start, as
      // after a Redis restart that lost the cursor.
      for (let i = 0; i < 5; i++) {
        await queue.add("sample", { jobId: cheat.jobId }, { jobId: sampleJobId(net.record.chainId, cheat.jobId) });
      }
      for (let i = 0; i < 3; i++) await queue.add("sample", { jobId: cheat.jobId });
      await redis.del(`inframesh-keeper:sampling:cursor:${net.record.chainId}`);
      await until("the re-queued checks to run", async () => {
        const cursor = await redis.get(`inframesh-keeper:sampling:cursor:${net.record.chainId}`);
        return cursor !== null && (await pendingSampleJobs()) === 0;
      });
      // The repeats ran: each found the check recorded and sent nothing.
      expect(logLines.filter((l) => l.includes("already checked: sample-slashed")).length).to.be.at.least(3);
      expect(await slashes()).to.have.length(1);
      expect(await metric("inframesh_keeper_sampling_slash_transactions_total")).to.equal(before);
      expect(await metric("inframesh_keeper_sampled_jobs_total", '{outcome="slashed"}')).to.equal(1);
    });

    it("re-runs honest nodes' jobs and never slashes them", async function () {
      const reruns = await metric("inframesh_keeper_sampling_reruns_total", '{outcome="served"}');
      const honestNodes = honest.map((h) => h.operator.account.address);
      // The dishonest node is jailed now: not eligible, the gateway routes around it.
      await gateway.refreshNodes();
      for (const first of [0.75, 1.25, 1.5]) expect(honestNodes).to.include((await serve(gateway, first)).node);
      await until(
        "the honest jobs to be checked",
        async () => (await metric("inframesh_keeper_sampled_jobs_total", '{outcome="agree"}')) >= 3,
      );
      expect(await metric("inframesh_keeper_sampling_reruns_total", '{outcome="served"}')).to.be.at.least(reruns + 3);
      const slashed = (await slashes()).map((e) => e.args.node);
      expect(slashed).to.deep.equal([dishonest.operator.account.address]);
      await gateway.stop();
    });
  });
});
