// The keeper as a process against a real `hardhat node` and a real `redis-server`, with a TCP
// proxy in front of the RPC endpoint that the test can stop. Settlements are signed and posted
// by the deploy's one-member oracle committee (the deployer), then the chain's clock is moved
// past the challenge window. Each scenario must end with exactly one finalise transaction.
//
// Slow (child processes): run alone with `npx hardhat test mocha test/keeper/keeper.test.ts`.
import { createServer, type IncomingHttpHeaders, type Server } from "node:http";
import path from "node:path";

import { Queue } from "bullmq";
import { expect } from "chai";
import { Redis } from "ioredis";
import { parseAbi, sha256, toFunctionSelector, type Address, type Hex } from "viem";
import { privateKeyToAccount } from "viem/accounts";

import { heartbeatSigner, signHeartbeat, type SignedHeartbeatRecord } from "../../gateway/heartbeat.ts";
import { NodeStateStore, type AttemptRecord } from "../../gateway/node-state.ts";
import { evidenceDigest, type DissentEvidence } from "../../gateway/quorum.ts";
import { epochSettlementAbi as keeperSettlementAbi } from "../../keeper/jobs.ts";
import { openDatabase } from "../../keeper/indexer/db.ts";
import { QUEUE_NAME } from "../../keeper/service.ts";
import { PROJECT_ROOT, freePort, spawnGroup, type ProcessGroup } from "../../scripts/lib/local-chain.ts";
import { startRedis, type LocalRedis } from "../../scripts/lib/redis.ts";
import { startBlobServer, type BlobServer } from "../../sdk/blob/server.ts";
import {
  DEV_KEYS,
  postSettlement,
  protocolActivity,
  startDeployedChain,
  timeTravel,
  type DeployedChain,
} from "./chain-fixture.ts";
import { startTcpProxy, type TcpProxy } from "./tcp-proxy.ts";

const KEEPER = path.join(PROJECT_ROOT, "keeper", "main.ts");
const KEEPER_KEY = DEV_KEYS[4];
const KEEPER_ADDRESS = "0x15d34AAf54267DB7D7c367839AAf71A00a2C6A65";
const DAY = 86_400;
const FINALISE_SELECTOR = toFunctionSelector("finalise(uint64)");
const GATEWAY_PREFIX = "gw-keeper-test:";
const slashedEventAbi = parseAbi([
  "event Slashed(address indexed node, bytes32 indexed evidenceHash, uint256 amount, uint256 fromActive, uint256 fromUnbonding, uint256 burned, uint256 redistributed, uint64 jailedUntil)",
]);

interface Hook {
  body: Record<string, unknown>;
  headers: IncomingHttpHeaders;
  status: number;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function until<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 45_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe().catch(() => undefined);
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(200);
  }
}

describe("keeper (hardhat node, redis-server)", function () {
  this.timeout(300_000);

  let deployed: DeployedChain;
  let redis: LocalRedis;
  let proxy: TcpProxy;
  let webhook: Server;
  let webhookUrl: string;
  const hooks: Hook[] = [];
  let failNextHook = true;
  let keeper: ProcessGroup | undefined;
  let keeperUrl: string;
  let dataDir: string;
  let settlementAddress: Address;

  function keeperEnv(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
    return {
      ...deployed.env,
      INFRAMESH_RPC_URL: proxy.url,
      REDIS_URL: redis.url,
      INFRAMESH_KEEPER_KEY: KEEPER_KEY,
      INFRAMESH_KEEPER_PORT: "0",
      INFRAMESH_DATA_DIR: dataDir,
      INFRAMESH_CONFIRMATIONS: "0",
      INFRAMESH_INDEXER_POLL_MS: "200",
      INFRAMESH_KEEPER_FINALISE_EVERY_MS: "300",
      INFRAMESH_KEEPER_UNBONDING_EVERY_MS: "300",
      INFRAMESH_KEEPER_BACKOFF_MS: "200",
      INFRAMESH_KEEPER_ATTEMPTS: "12",
      INFRAMESH_KEEPER_LOCK_MS: "2000",
      INFRAMESH_UNBONDING_WEBHOOK_URL: webhookUrl,
      ...extra,
    };
  }

  async function startKeeperProcess(extra: NodeJS.ProcessEnv = {}): Promise<ProcessGroup> {
    const child = spawnGroup(process.execPath, [KEEPER], { env: keeperEnv(extra) });
    keeperUrl = await until("the keeper to listen", async () => {
      const match = /"msg":"listening","url":"([^"]+)"/.exec(child.output());
      if (match === null && child.output().includes('"level":50')) throw new Error(child.output());
      return match?.[1];
    });
    return child;
  }

  async function stopKeeper(): Promise<void> {
    await keeper?.stop();
    keeper = undefined;
  }

  const status = async (epoch: bigint) =>
    (
      await deployed.publicClient.readContract({
        address: settlementAddress,
        abi: keeperSettlementAbi,
        functionName: "settlementOf",
        args: [epoch],
      })
    ).status;

  /** finalise(epoch) transactions the keeper's account sent, found by scanning every block. */
  async function finaliseTransactions(epoch: bigint): Promise<number> {
    const head = await deployed.publicClient.getBlockNumber({ cacheTime: 0 });
    let count = 0;
    for (let n = 0n; n <= head; n++) {
      const block = await deployed.publicClient.getBlock({ blockNumber: n, includeTransactions: true });
      for (const tx of block.transactions) {
        if (
          tx.from.toLowerCase() === KEEPER_ADDRESS.toLowerCase() &&
          tx.to?.toLowerCase() === settlementAddress.toLowerCase() &&
          tx.input.startsWith(FINALISE_SELECTOR) &&
          BigInt(`0x${tx.input.slice(10)}`) === epoch
        ) {
          count++;
        }
      }
    }
    return count;
  }

  async function postAndMature(): Promise<bigint> {
    const { epoch } = await postSettlement(deployed);
    await timeTravel(deployed, DAY + 1);
    return epoch;
  }

  const waitFinalised = (epoch: bigint) =>
    until(`epoch ${epoch} final`, async () => ((await status(epoch)) === 3 ? true : undefined));

  const trigger = (body: string) =>
    fetch(`${keeperUrl}/jobs/finalise`, { method: "POST", headers: { "content-type": "application/json" }, body });

  before(async function () {
    deployed = await startDeployedChain("local-test-keeper");
    settlementAddress = deployed.record.contracts.epochSettlement.address;
    dataDir = path.join(deployed.dir, "keeper-db");
    redis = await startRedis();
    proxy = await startTcpProxy({ host: "127.0.0.1", port: deployed.chain.port });
    webhook = createServer((req, res) => {
      let text = "";
      req.on("data", (chunk: Buffer) => (text += chunk.toString()));
      req.on("end", () => {
        const answer = failNextHook ? 500 : 204;
        failNextHook = false;
        hooks.push({ body: JSON.parse(text) as Record<string, unknown>, headers: req.headers, status: answer });
        res.statusCode = answer;
        res.end();
      });
    });
    await new Promise<void>((resolve) => webhook.listen(0, "127.0.0.1", resolve));
    const address = webhook.address();
    webhookUrl = `http://127.0.0.1:${typeof address === "object" && address !== null ? address.port : 0}/hook`;
    await protocolActivity(deployed, 0); // the delegator's unbonding lock 0 matures in 7 days
    keeper = await startKeeperProcess();
  });

  after(async function () {
    await stopKeeper();
    await proxy?.close();
    await new Promise<void>((resolve) => (webhook ? webhook.close(() => resolve()) : resolve()));
    await redis?.stop();
    await deployed?.stop();
  });

  it("answers /healthz and refuses bad trigger bodies with a 400", async function () {
    const health = await fetch(`${keeperUrl}/healthz`);
    expect(health.status).to.equal(200);
    expect(await health.json()).to.deep.include({ ok: true, chainId: 31337, redis: "ok", database: "pglite" });
    const bad = await trigger(JSON.stringify({ epoch: "-1" }));
    expect(bad.status).to.equal(400);
    expect(((await bad.json()) as { error: string }).error).to.equal(
      'epoch must be a whole number below 2^64, got "-1": send {"epoch": "<n>"}',
    );
    for (const [route, what] of [
      ["close-epoch", "epoch close is off: set INFRAMESH_KEEPER_EPOCH_MS and the oracle settings"],
      ["sla-scan", "the SLA watch is off: set INFRAMESH_KEEPER_SLA_EVERY_MS and the blob peer"],
    ] as const) {
      const off = await fetch(`${keeperUrl}/jobs/${route}`, { method: "POST" });
      expect(off.status, route).to.equal(409);
      expect(await off.json()).to.deep.equal({ error: what });
    }
    const malformed = await trigger("{not json");
    expect(malformed.status).to.equal(400);
    expect(((await malformed.json()) as { error: string }).error).to.match(/^bad request: /);
  });

  it("finalises a posted settlement once its challenge window has passed, and not before", async function () {
    const { epoch } = await postSettlement(deployed);
    await sleep(1_500); // several scans while the window is open
    expect(await status(epoch)).to.equal(1);
    expect(await finaliseTransactions(epoch)).to.equal(0);
    await timeTravel(deployed, DAY + 1);
    await waitFinalised(epoch);
    expect(await finaliseTransactions(epoch)).to.equal(1);
    const metrics = await until("the gauge", async () => {
      const text = await (await fetch(`${keeperUrl}/metrics`)).text();
      return text.includes(`inframesh_keeper_last_finalised_epoch ${epoch}`) ? text : undefined;
    });
    expect(metrics).to.match(/inframesh_keeper_queue_jobs\{state="waiting"\} \d+/);
    expect(metrics).to.match(/inframesh_keeper_finalise_transactions_total 1/);
  });

  it("sends one finalise transaction when the same trigger fires 10 times", async function () {
    const epoch = await postAndMature();
    const answers = await Promise.all(
      Array.from({ length: 10 }, () => trigger(JSON.stringify({ epoch: String(epoch) }))),
    );
    for (const answer of answers) expect(answer.status).to.equal(202);
    await waitFinalised(epoch);
    // And ten more once it is final: each runs, reads the chain, sends nothing.
    for (let i = 0; i < 10; i++) expect((await trigger(JSON.stringify({ epoch: Number(epoch) }))).status).to.equal(202);
    await sleep(1_500);
    expect(await finaliseTransactions(epoch)).to.equal(1);
  });

  it("sends one finalise transaction across a Redis restart (and recreates its schedulers)", async function () {
    const { epoch } = await postSettlement(deployed);
    await timeTravel(deployed, DAY + 1);
    await redis.restart(); // everything queued is gone, the schedulers too
    await waitFinalised(epoch);
    await sleep(1_000);
    expect(await finaliseTransactions(epoch)).to.equal(1);
    const queue = new Queue(QUEUE_NAME, { connection: { url: redis.url } });
    try {
      const schedulers = (await queue.getJobSchedulers()).map((s) => s.key).sort();
      expect(schedulers).to.deep.equal(["finalise-scan", "unbonding-scan"]);
    } finally {
      await queue.close();
    }
  });

  it("retries through an RPC outage and sends one finalise transaction", async function () {
    const { epoch } = await postSettlement(deployed);
    await proxy.stop();
    await timeTravel(deployed, DAY + 1); // straight to the node: the keeper cannot see it
    expect((await trigger(JSON.stringify({ epoch: String(epoch) }))).status).to.equal(202);
    await sleep(6_000);
    expect(await status(epoch)).to.equal(1);
    const health = await fetch(`${keeperUrl}/healthz`);
    expect(health.status, "unhealthy while the RPC is down").to.equal(503);
    expect(await health.json()).to.deep.include({ ok: false, redis: "ok", chainHead: null });
    await proxy.start();
    await waitFinalised(epoch);
    await sleep(1_000);
    expect(await finaliseTransactions(epoch)).to.equal(1);
    const metrics = await (await fetch(`${keeperUrl}/metrics`)).text();
    const failures = /inframesh_keeper_job_failures_total\{job="finalise"\} (\d+)/.exec(metrics);
    expect(Number(failures?.[1] ?? 0), "the finalise job failed while the RPC was down").to.be.greaterThan(0);
  });

  it("notifies a matured unbonding lock once: a log line and the webhook, retried until it answers", async function () {
    await timeTravel(deployed, 7 * DAY);
    const delivered = await until("the webhook to accept", async () =>
      hooks.some((h) => h.status === 204) ? true : undefined,
    );
    expect(delivered).to.equal(true);
    await sleep(1_500); // more scans: nothing new
    expect(hooks.map((h) => h.status)).to.deep.equal([500, 204]);
    const [, ok] = hooks;
    expect(ok!.body).to.deep.include({
      type: "unbonding.matured",
      chainId: 31337,
      node: deployed.wallet(1).account.address,
      staker: deployed.wallet(2).account.address,
      lockId: "0",
      amount: "1000000000000000000000",
    });
    expect(ok!.headers["idempotency-key"]).to.equal(hooks[0]!.headers["idempotency-key"]);
    expect(keeper!.output()).to.match(/unbonding lock 0 of 0x3C44[0-9a-fA-F]+ on 0x7099[0-9a-fA-F]+ has matured/);
  });

  it("does not send again after being killed between sending and recording", async function () {
    await stopKeeper();
    keeper = await startKeeperProcess({ INFRAMESH_KEEPER_TEST_CRASH_AFTER_SEND: "1" });
    const epoch = await postAndMature();
    const crashed = await keeper.exited;
    expect(crashed.signal, keeper.output()).to.equal("SIGKILL");
    keeper = undefined;
    expect(await status(epoch)).to.equal(3);
    expect(await finaliseTransactions(epoch)).to.equal(1);

    const key = `finalise-31337-${epoch}`;
    const actions = async () => {
      const db = await openDatabase({ dataDir });
      try {
        return await db.query<{ action_key: string; detail: { observed: string } }>(
          "select action_key, detail from keeper_actions where action_key = $1",
          [key],
        );
      } finally {
        await db.close();
      }
    };
    expect(await actions(), "the crash came before the record").to.deep.equal([]);

    keeper = await startKeeperProcess();
    await until("the stalled job to run again", async () =>
      keeper!.output().includes(`"id":"${key}","result":"already final"`) ? true : undefined,
    );
    await stopKeeper();
    expect((await actions()).map((a) => a.detail.observed)).to.deep.equal(["final on chain"]);
    expect(await finaliseTransactions(epoch)).to.equal(1);
    expect(
      hooks.filter((h) => h.status === 204),
      "the unbonding notice is not repeated",
    ).to.have.length(1);
  });

  it("says so when Redis cannot be reached at start, and exits", async function () {
    const port = await freePort();
    const child = spawnGroup(process.execPath, [KEEPER], {
      env: keeperEnv({
        REDIS_URL: `redis://127.0.0.1:${port}`,
        INFRAMESH_DATA_DIR: path.join(deployed.dir, "no-redis"),
      }),
    });
    expect((await child.exited).code).to.equal(1);
    expect(child.output()).to.include(`cannot reach Redis at redis://127.0.0.1:${port} within 5000 ms`);
    expect(child.output()).to.include("start it or fix REDIS_URL");
  });

  it("names a missing keeper key and bad settings", async function () {
    const child = spawnGroup(process.execPath, [KEEPER], {
      env: keeperEnv({ INFRAMESH_KEEPER_KEY: "", REDIS_URL: "http://x", INFRAMESH_KEEPER_ATTEMPTS: "0" }),
    });
    expect((await child.exited).code).to.equal(1);
    const output = child.output();
    expect(output).to.include("INFRAMESH_KEEPER_KEY is not set: the keeper account's key (0x + 64 hex)");
    expect(output).to.include("REDIS_URL must be a redis: or rediss: URL");
    expect(output).to.include('INFRAMESH_KEEPER_ATTEMPTS must be a whole number ≥ 1, got \\"0\\"');
  });
  // ------------------------------------------------------------------ SLA watch and slashes
  //
  // A keeper with the deployer's key (it holds SLASHER_ROLE) reads attempt records written by the
  // gateway's own store (NodeStateStore) into the test's Redis, as a gateway whose node was killed
  // mid-run would: several calls dropped at once, one incident, one slash.

  describe("SLA watch", function () {
    let blob: BlobServer;
    let gatewayRedis: Redis;
    let gatewayStore: NodeStateStore;
    let node: Address;
    let fromBlock: bigint;
    let nextJob = 1;

    const slaEnv = (extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv => ({
      INFRAMESH_KEEPER_KEY: DEV_KEYS[0],
      INFRAMESH_KEEPER_SLA_EVERY_MS: "300",
      INFRAMESH_KEEPER_GATEWAY_PREFIX: GATEWAY_PREFIX,
      INFRAMESH_KEEPER_BLOB_PEER_URL: blob.url,
      INFRAMESH_KEEPER_INCIDENT_WINDOW_MS: "2000",
      INFRAMESH_KEEPER_SLA_GRACE_MS: "500",
      INFRAMESH_KEEPER_SLASH_BPS: "100",
      INFRAMESH_KEEPER_HEARTBEAT_LOSS_MS: "1000",
      INFRAMESH_DATA_DIR: path.join(deployed.dir, "keeper-sla-db"),
      ...extra,
    });

    /** `count` calls to `node` that it took and dropped, `agoMs` ago, as the gateway records them. */
    async function droppedCalls(count: number, agoMs: number): Promise<AttemptRecord[]> {
      const records: AttemptRecord[] = [];
      const sentAt = Date.now() - agoMs;
      for (let i = 0; i < count; i++) {
        const jobId = `0x${(nextJob++).toString(16).padStart(64, "0")}` as Hex;
        const record: AttemptRecord = {
          job_id: jobId,
          work_unit_hash: sha256(jobId),
          node,
          sent_at: sentAt + i * 30,
          deadline: sentAt + i * 30 + 2_000,
          status: "sent",
        };
        await gatewayStore.recordAttemptSent(record, {
          work_unit: {
            job_id: jobId,
            model_ref: { model_id: 1, version: 0 },
            input_hash: sha256(`0x${"00".repeat(16)}`),
            requested_by: deployed.wallet(2).account.address,
            expires_at: Math.floor(sentAt / 1000) + 300,
            max_fee: "25",
          },
          client_signature: `0x${"11".repeat(65)}`,
        });
        const failed: AttemptRecord = {
          ...record,
          status: "failed",
          failure: "dropped",
          reason: "socket hang up",
          finished_at: record.sent_at + 5,
        };
        await gatewayStore.recordAttemptOutcome(failed);
        records.push(failed);
      }
      return records;
    }

    async function slashesOfNode(): Promise<Array<{ evidenceHash: Hex; amount: bigint }>> {
      const logs = await deployed.publicClient.getContractEvents({
        address: deployed.record.contracts.nodeStaking.address,
        abi: slashedEventAbi,
        eventName: "Slashed",
        args: { node },
        fromBlock,
      });
      return logs.map((l) => l.args as { evidenceHash: Hex; amount: bigint });
    }

    const waitSlashes = (n: number) =>
      until(`${n} slash(es) of the node`, async () => {
        const slashes = await slashesOfNode();
        return slashes.length >= n ? slashes : undefined;
      });

    const scan = () => fetch(`${keeperUrl}/jobs/sla-scan`, { method: "POST" });

    before(async function () {
      await stopKeeper();
      blob = await startBlobServer({ dir: path.join(deployed.dir, "blobs") });
      gatewayRedis = new Redis(redis.url);
      gatewayRedis.on("error", () => {}); // the Redis restart below: it reconnects
      gatewayStore = new NodeStateStore(gatewayRedis, GATEWAY_PREFIX);
      node = deployed.wallet(1).account.address;
      fromBlock = (await deployed.publicClient.getBlockNumber({ cacheTime: 0 })) + 1n;
    });

    after(async function () {
      await stopKeeper();
      gatewayRedis?.disconnect();
      await blob?.close();
    });

    it("slashes once for calls dropped together, with the evidence published, however often the scan fires", async function () {
      const records = await droppedCalls(4, 60_000);
      keeper = await startKeeperProcess(slaEnv());
      const answers = await Promise.all(Array.from({ length: 10 }, () => scan()));
      for (const answer of answers) expect(answer.status).to.equal(202);
      const [slashed] = await waitSlashes(1);
      await sleep(2_000); // more scans, scheduled and triggered
      for (let i = 0; i < 10; i++) expect((await scan()).status).to.equal(202);
      await sleep(1_500);
      expect(await slashesOfNode()).to.have.length(1);

      const published = await fetch(`${blob.url}/blob/${slashed!.evidenceHash.slice(2)}`);
      expect(published.status).to.equal(200);
      const bytes = new Uint8Array(await published.arrayBuffer());
      expect(sha256(bytes)).to.equal(slashed!.evidenceHash);
      const evidence = JSON.parse(new TextDecoder().decode(bytes)) as {
        kind: string;
        node: string;
        attempts: Array<{ violation: string; attempt: AttemptRecord; client_signature?: string }>;
      };
      expect(evidence).to.deep.include({ kind: "sla-violation", node });
      expect(evidence.attempts.map((a) => a.attempt.job_id)).to.deep.equal(records.map((r) => r.job_id));
      expect(evidence.attempts.every((a) => a.violation === "dropped" && a.client_signature !== undefined)).to.equal(
        true,
      );
      const metrics = await (await fetch(`${keeperUrl}/metrics`)).text();
      expect(metrics).to.match(/inframesh_keeper_slashes_total\{kind="sla-violation"\} 1/);
    });

    it("does not slash again for the same attempts after a Redis restart", async function () {
      const before = await slashesOfNode();
      const records = await gatewayStore.attemptsToCheck(Date.now());
      await redis.restart(); // the queue, its schedulers and the gateway's records are gone
      for (const record of records) await gatewayStore.recordAttemptOutcome(record); // a gateway writes them back
      await until("the schedulers to be back", async () => {
        const queue = new Queue(QUEUE_NAME, { connection: { url: redis.url } });
        try {
          const ids = (await queue.getJobSchedulers()).map((j) => j.key);
          return ids.includes("sla-scan") ? true : undefined;
        } finally {
          await queue.close();
        }
      });
      for (let i = 0; i < 3; i++) expect((await scan()).status).to.equal(202);
      await sleep(2_000);
      expect(await slashesOfNode()).to.deep.equal(before);
    });

    it("retries through a 30 s RPC outage and slashes once", async function () {
      this.timeout(180_000);
      await droppedCalls(3, 40_000);
      await proxy.stop();
      expect((await scan()).status).to.equal(202);
      await sleep(30_000);
      expect(await slashesOfNode()).to.have.length(1);
      await proxy.start();
      await waitSlashes(2);
      await sleep(1_500);
      expect(await slashesOfNode()).to.have.length(2);
      const metrics = await (await fetch(`${keeperUrl}/metrics`)).text();
      const failures = /inframesh_keeper_job_failures_total\{job="slash"\} (\d+)/.exec(metrics);
      expect(Number(failures?.[1] ?? 0), "the slash job failed while the RPC was down").to.be.greaterThan(0);
    });

    it("slashes a quorum dissenter once for the evidence the gateway recorded", async function () {
      const before = (await slashesOfNode()).length;
      const jobId = `0x${(nextJob++).toString(16).padStart(64, "0")}` as Hex;
      const dissent: DissentEvidence = {
        kind: "quorum-dissent",
        job_id: jobId,
        node,
        output_hash: sha256("0x01"),
        majority_output_hash: sha256("0x02"),
        majority_nodes: [deployed.wallet(3).account.address],
        majority_stake: "20000000000000000000000",
        dissent_stake: "10000000000000000000000",
        work_unit: {
          job_id: jobId,
          model_ref: { model_id: 1, version: 0 },
          input_hash: sha256("0x00"),
          requested_by: deployed.wallet(2).account.address,
          expires_at: Math.floor(Date.now() / 1000) + 300,
          max_fee: "25",
        },
        client_signature: `0x${"11".repeat(65)}`,
        proof_of_serving: { job_id: jobId, node_id: node, output_hash: sha256("0x01") } as never,
        recorded_at: Date.now(),
      };
      expect(await gatewayStore.recordEvidence(evidenceDigest(dissent), dissent)).to.equal(true);
      for (let i = 0; i < 5; i++) expect((await scan()).status).to.equal(202);
      const slashes = await waitSlashes(before + 1);
      await sleep(1_500);
      expect(await slashesOfNode()).to.have.length(before + 1);
      const published = await fetch(`${blob.url}/blob/${slashes[before]!.evidenceHash.slice(2)}`);
      const document = JSON.parse(await published.text()) as Record<string, unknown>;
      expect(document).to.deep.include({ kind: "quorum-dissent", node, job_id: jobId, chain_id: 31337 });
      expect(document).to.not.have.property("recorded_at");
    });

    it("does not slash again after being killed between sending and recording", async function () {
      await stopKeeper();
      await droppedCalls(2, 20_000);
      keeper = await startKeeperProcess(slaEnv({ INFRAMESH_KEEPER_TEST_CRASH_AFTER_SEND: "1" }));
      const crashed = await keeper.exited;
      expect(crashed.signal, keeper.output()).to.equal("SIGKILL");
      keeper = undefined;
      expect(await slashesOfNode()).to.have.length(4);
      keeper = await startKeeperProcess(slaEnv());
      await until("the slash job to run again", async () =>
        keeper!.output().includes('"result":"already slashed"') ? true : undefined,
      );
      await sleep(1_500);
      expect(await slashesOfNode()).to.have.length(4);
    });

    /** The node's heartbeat, signed with its operator key, stored as a gateway does (1 s TTL). */
    async function heartbeatNow(): Promise<SignedHeartbeatRecord> {
      const operator = privateKeyToAccount(DEV_KEYS[1]);
      expect(operator.address).to.equal(node);
      const signed = await signHeartbeat(operator, {
        chain_id: 31337,
        node,
        endpoint: "http://127.0.0.1:9",
        models: [1],
        load: 0.5,
        hardware: { cpus: 2, memory_bytes: 2 ** 30, gpus: [] },
        timestamp: Date.now(),
      });
      expect(await gatewayStore.storeHeartbeat({ ...signed.heartbeat, node }, 1_000, signed)).to.equal(true);
      return signed;
    }

    /** A job sent to the node now and never answered (the gateway's "sent" record), due in `dueInMs`. */
    async function heldJob(dueInMs: number): Promise<AttemptRecord> {
      const jobId = `0x${(nextJob++).toString(16).padStart(64, "0")}` as Hex;
      const held: AttemptRecord = {
        job_id: jobId,
        work_unit_hash: sha256(jobId),
        node,
        sent_at: Date.now(),
        deadline: Date.now() + dueInMs,
        status: "sent",
      };
      await gatewayStore.recordAttemptSent(held, {
        work_unit: {
          job_id: jobId,
          model_ref: { model_id: 1, version: 0 },
          input_hash: sha256(`0x${"00".repeat(16)}`),
          requested_by: deployed.wallet(2).account.address,
          expires_at: Math.floor(Date.now() / 1000) + 900,
          max_fee: "25",
        },
        client_signature: `0x${"11".repeat(65)}`,
      });
      return held;
    }

    it("slashes once, before the deadline, a node whose heartbeat stopped while it held a job", async function () {
      const before = (await slashesOfNode()).length;
      // The node heartbeats, takes a job with a ten-minute deadline, and goes silent.
      const signed = await heartbeatNow();
      const held = await heldJob(600_000);

      const slashes = await waitSlashes(before + 1);
      expect(Date.now(), "long before the job's deadline").to.be.lessThan(held.deadline);
      expect(await gatewayStore.nodes(), "the heartbeat itself has expired").to.deep.equal([]);
      for (let i = 0; i < 5; i++) expect((await scan()).status).to.equal(202);
      await sleep(2_000);
      expect(await slashesOfNode()).to.have.length(before + 1);

      const published = await fetch(`${blob.url}/blob/${slashes[before]!.evidenceHash.slice(2)}`);
      const bytes = new Uint8Array(await published.arrayBuffer());
      expect(sha256(bytes)).to.equal(slashes[before]!.evidenceHash);
      const evidence = JSON.parse(new TextDecoder().decode(bytes)) as {
        node: string;
        attempts: Array<{ violation: string; attempt: AttemptRecord }>;
        last_heartbeat: SignedHeartbeatRecord;
        heartbeat_loss_ms: number;
      };
      expect(evidence.node).to.equal(node);
      expect(evidence.attempts.map((a) => [a.violation, a.attempt])).to.deep.equal([["heartbeat_lost", held]]);
      expect(evidence.last_heartbeat).to.deep.equal(signed);
      expect(evidence.heartbeat_loss_ms).to.equal(1_000);
      expect(await heartbeatSigner(evidence.last_heartbeat), "the node's own signature").to.equal(node);
    });

    it("slashes an attempt once when it is seen as heartbeat_lost, then as no_answer after the node came back", async function () {
      this.timeout(180_000);
      const before = (await slashesOfNode()).length;
      /** Ids of slash jobs that failed so far (the RPC is down), from the keeper's log. */
      const failedSlashJobs = () =>
        new Set(
          keeper!
            .output()
            .split("\n")
            .filter((line) => line.includes('"msg":"job failed"') && line.includes('"job":"slash"'))
            .map((line) => (JSON.parse(line) as { id: string }).id),
        );
      const known = failedSlashJobs();
      const newFailures = () => [...failedSlashJobs()].filter((id) => !known.has(id));
      await heartbeatNow();
      await heldJob(6_000);
      await proxy.stop();
      // The heartbeat is lost after 1 s and the incident settles 2 s later: its slash job cannot
      // reach the chain. Then the node heartbeats again, the deadline passes, and the same attempt
      // is a no_answer incident, another document.
      await until("the heartbeat_lost slash job", async () => (newFailures().length >= 1 ? true : undefined));
      await heartbeatNow();
      await until("the no_answer slash job", async () => (newFailures().length >= 2 ? true : undefined));
      await proxy.start();
      await waitSlashes(before + 1);
      await until("the other document's slash job to run", async () =>
        keeper!.output().includes("already slashed for 0x") ? true : undefined,
      );
      await sleep(1_500);
      expect(await slashesOfNode()).to.have.length(before + 1);
    });
  });
});
