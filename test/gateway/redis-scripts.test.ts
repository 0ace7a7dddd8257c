// The gateway's Redis scripts against a real `redis-server`: the token bucket and the node
// statistics computed inside Redis give the same answers as the pure TypeScript math, heartbeats
// are stored newest-only and expire, and dissent evidence is kept once per digest.
import { expect } from "chai";
import { Redis } from "ioredis";
import { getAddress, type Address, type Hex } from "viem";

import { GatewayError } from "../../gateway/errors.ts";
import type { Heartbeat, SignedHeartbeatRecord } from "../../gateway/heartbeat.ts";
import { NodeStateStore, type AttemptRecord, type ServedJob } from "../../gateway/node-state.ts";
import type { DissentEvidence } from "../../gateway/quorum.ts";
import { RedisWriteBatch } from "../../gateway/write-batch.ts";
import { leaseSize, MAX_LEASE, RedisRateLimiter, takeToken, type BucketState } from "../../gateway/rate-limit.ts";
import { EMPTY_STATS, updateStats, type NodeStats } from "../../gateway/scoring.ts";
import { startRedis, type LocalRedis } from "../../scripts/lib/redis.ts";

const NODE = getAddress("0x00000000000000000000000000000000000000c1") as Address;

describe("gateway Redis scripts (real redis-server)", function () {
  this.timeout(30_000);
  let server: LocalRedis;
  let redis: Redis;

  before(async function () {
    server = await startRedis();
    redis = new Redis(server.url);
  });

  after(async function () {
    redis?.disconnect();
    await server?.stop();
  });

  it("the token bucket in Redis allows and refuses exactly as takeToken does", async function () {
    const limiter = new RedisRateLimiter(redis, "t1:");
    const limit = { capacity: 3, refillPerSecond: 4 };
    const times = [1_000, 1_000, 1_000, 1_000, 1_100, 1_250, 1_250, 1_500, 3_000, 3_000, 3_000, 3_000, 2_000];
    let state: BucketState | undefined;
    for (const t of times) {
      const pure = takeToken(state, t, limit);
      state = pure.state;
      let allowed = true;
      let retryAfter = "";
      try {
        await limiter.take("k", limit, t);
      } catch (error) {
        expect(error).to.be.instanceOf(GatewayError);
        expect((error as GatewayError).status).to.equal(429);
        allowed = false;
        retryAfter = (error as GatewayError).headers["retry-after"] ?? "";
      }
      expect(allowed, `at ${t} ms`).to.equal(pure.allowed);
      if (!allowed) expect(Number(retryAfter)).to.equal(Math.max(1, Math.ceil(pure.retryAfterMs / 1000)));
    }
  });

  it("keeps one bucket per subject", async function () {
    const limiter = new RedisRateLimiter(redis, "t2:");
    const limit = { capacity: 1, refillPerSecond: 0.001 };
    await limiter.take("a", limit, 1);
    await limiter.take("b", limit, 1);
    let refused = 0;
    for (const s of ["a", "b"]) await limiter.take(s, limit, 2).catch(() => refused++);
    expect(refused).to.equal(2);
  });

  it("leases at most a tenth of a bucket and what refills in the lease, and none from small buckets", function () {
    expect(leaseSize({ capacity: 3, refillPerSecond: 0.01 }, 100)).to.equal(1);
    expect(leaseSize({ capacity: 100, refillPerSecond: 50 }, 100)).to.equal(5);
    expect(leaseSize({ capacity: 1_000, refillPerSecond: 500 }, 100)).to.equal(50);
    expect(leaseSize({ capacity: 1_000_000, refillPerSecond: 1_000_000 }, 100)).to.equal(MAX_LEASE);
    expect(leaseSize({ capacity: 1_000, refillPerSecond: 10 }, 100)).to.equal(1);
  });

  it("leased tokens are debited from the shared bucket before use and the unspent ones given back", async function () {
    const key = "t4:rl:k";
    // Leases of 10 (a tenth of 100); every take at the same instant, so nothing refills meanwhile.
    const limit = { capacity: 100, refillPerSecond: 1 };
    const t = 1_000;
    const leasing = new RedisRateLimiter(redis, "t4:", { leaseMs: 60_000 });
    const exact = new RedisRateLimiter(redis, "t4:");
    const tokens = async () => Number(await redis.hget(key, "tokens"));
    await leasing.take("k", limit, t); // leases 10 (a tenth of 100), spends 1
    expectNear(await tokens(), 90);
    for (let i = 0; i < 4; i++) await leasing.take("k", limit, t); // from the lease: no Redis debit
    expectNear(await tokens(), 90);
    // Another instance (no lease) sees only what is not leased: 90 left, takes them all.
    for (let i = 0; i < 90; i++) await exact.take("k", limit, t);
    const refused = await exact.take("k", limit, t).then(
      () => undefined,
      (error: unknown) => error,
    );
    expect((refused as GatewayError).status).to.equal(429);
    // The leasing instance still spends its 5 leased tokens, then is refused too.
    let served = 0;
    for (let i = 0; i < 10; i++) {
      try {
        await leasing.take("k", limit, t);
        served++;
      } catch (error) {
        expect((error as GatewayError).status).to.equal(429);
      }
    }
    expect(served).to.equal(5);
    // Given back on close: nothing unspent now, so the bucket stays empty.
    await leasing.close();
    expect(await tokens()).to.be.lessThan(1);

    // Unspent leased tokens go back to the bucket when the lease ends.
    const fresh = new RedisRateLimiter(redis, "t5:", { leaseMs: 60_000 });
    await fresh.take("k", limit, t);
    expectNear(Number(await redis.hget("t5:rl:k", "tokens")), 90);
    await fresh.close();
    expectNear(Number(await redis.hget("t5:rl:k", "tokens")), 99);
  });

  it("node statistics in Redis follow updateStats", async function () {
    const store = new NodeStateStore(redis, "t3:");
    const outcomes = [
      { ok: true as const, latencyMs: 12 },
      { ok: true as const, latencyMs: 30 },
      { ok: false as const },
      { ok: true as const, latencyMs: 7.5 },
      { ok: false as const },
    ];
    let expected: NodeStats = EMPTY_STATS;
    for (const o of outcomes) {
      await store.recordOutcome(NODE, o);
      expected = updateStats(expected, o);
    }
    await store.storeHeartbeat(heartbeat(Date.now()), 10_000, signed(heartbeat(Date.now())));
    const [stored] = await store.nodes();
    expectNear(stored!.stats.latencyEwmaMs, expected.latencyEwmaMs!);
    expectNear(stored!.stats.successes, expected.successes);
    expectNear(stored!.stats.failures, expected.failures);
  });

  it("stores a heartbeat only when newer, and forgets the node when it expires", async function () {
    const store = new NodeStateStore(redis, "t4:");
    const now = Date.now();
    const put = (ts: number) => store.storeHeartbeat(heartbeat(ts), 300, signed(heartbeat(ts)));
    expect(await put(now)).to.equal(true);
    expect(await put(now)).to.equal(false);
    expect(await put(now - 1)).to.equal(false);
    expect(await put(now + 1)).to.equal(true);
    expect((await store.nodes()).map((n) => n.heartbeat.timestamp)).to.deep.equal([now + 1]);
    await store.markDown(NODE, 5_000);
    expect((await store.nodes())[0]!.downUntil).to.be.greaterThan(Date.now());
    await new Promise((r) => setTimeout(r, 400));
    expect(await store.nodes()).to.deep.equal([]);
    expect(await redis.smembers("t4:nodes")).to.deep.equal([]);
    // The signed form outlives it (the keeper's evidence of a node gone silent), and still
    // refuses a replay of an older heartbeat.
    const last = await store.lastHeartbeats([NODE, "0x00000000000000000000000000000000000000c2"]);
    expect([...last]).to.deep.equal([[NODE.toLowerCase(), signed(heartbeat(now + 1))]]);
    expect(await redis.pttl(`t4:hb-last:${NODE.toLowerCase()}`)).to.be.greaterThan(23 * 3_600_000);
    expect(await put(now)).to.equal(false);
    expect(await put(now + 2)).to.equal(true);
    expect((await store.lastHeartbeats([NODE])).get(NODE.toLowerCase())!.heartbeat.timestamp).to.equal(now + 2);
  });

  it("reads the open attempts of the nodes it is asked about whatever their deadline, the others once it passed", async function () {
    const store = new NodeStateStore(redis, "t6:");
    const other = getAddress("0x00000000000000000000000000000000000000c2") as Address;
    const now = Date.now();
    const sent = (n: number, node: Address, deadline: number): AttemptRecord => ({
      job_id: `0x${n.toString(16).padStart(64, "0")}` as Hex,
      work_unit_hash: `0x${"00".repeat(32)}`,
      node,
      sent_at: now,
      deadline,
      status: "sent",
    });
    const unit = { work_unit: {} as never, client_signature: `0x${"11".repeat(65)}` as Hex };
    const held = sent(1, NODE, now + 600_000);
    await store.recordAttemptSent(held, unit);
    await store.recordAttemptSent(sent(2, other, now + 600_000), unit);
    const late = sent(3, other, now - 1);
    await store.recordAttemptSent(late, unit);
    expect((await store.openAttemptHolders()).sort()).to.deep.equal([NODE.toLowerCase(), other.toLowerCase()].sort());
    expect(await store.attemptsToCheck(now)).to.deep.equal([late]);
    const both = await store.attemptsToCheck(now, new Set([NODE.toLowerCase()]));
    expect(both.map((a) => a.job_id).sort()).to.deep.equal([held.job_id, late.job_id].sort());
  });

  it("a write batch sends the writes of one turn in one pipeline, each write's commands together, its own errors its own", async function () {
    const batch = new RedisWriteBatch(redis);
    const sent: Promise<void>[] = [
      batch.add((p) => p.set("wb:a", "1").set("wb:b", "2")),
      batch.add((p) => p.incr("wb:a").set("wb:text", "x").incr("wb:text")), // the INCR of text fails
      batch.add((p) => p.incr("wb:a")),
      batch.add(() => {
        throw new Error("refused to build");
      }),
      batch.add((p) => p.rpush("wb:list", "last")),
    ];
    const settled = await Promise.allSettled(sent);
    expect(settled.map((r) => r.status)).to.deep.equal(["fulfilled", "rejected", "fulfilled", "rejected", "fulfilled"]);
    expect(String((settled[1] as PromiseRejectedResult).reason)).to.match(/not an integer/);
    expect(String((settled[3] as PromiseRejectedResult).reason)).to.match(/refused to build/);
    expect(await redis.mget("wb:a", "wb:b", "wb:text")).to.deep.equal(["3", "2", "x"]);
    expect(await redis.lrange("wb:list", 0, -1)).to.deep.equal(["last"]);
  });

  it("a delayed write batch gathers writes for its delay, and flush() sends them at once", async function () {
    const batch = new RedisWriteBatch(redis, { delayMs: 60_000 });
    const first = batch.add((p) => p.set("wbd:a", "1"));
    const second = batch.add((p) => p.set("wbd:b", "2"));
    await new Promise((r) => setTimeout(r, 50));
    expect(await redis.exists("wbd:a", "wbd:b"), "still queued").to.equal(0);
    await batch.flush();
    await Promise.all([first, second]);
    expect(await redis.mget("wbd:a", "wbd:b")).to.deep.equal(["1", "2"]);
    const timed = new RedisWriteBatch(redis, { delayMs: 20 });
    const started = Date.now();
    await timed.add((p) => p.set("wbd:c", "3"));
    expect(Date.now() - started).to.be.at.least(15);
    expect(await redis.get("wbd:c")).to.equal("3");
  });

  it("attempt records written through the write batch read back as written", async function () {
    const store = new NodeStateStore(redis, "wb-att:");
    const jobId = `0x${"ab".repeat(32)}` as Hex;
    const record: AttemptRecord = {
      job_id: jobId,
      work_unit_hash: `0x${"cd".repeat(32)}`,
      node: NODE,
      sent_at: 1_000,
      deadline: 31_000,
      status: "sent",
    };
    const unit = { work_unit: { job_id: jobId } as never, client_signature: `0x${"11".repeat(65)}` as Hex };
    const sent = store.writeBehind((p) => store.queueAttemptSent(p, record, unit));
    const done = store.recordAttemptOutcome({ ...record, status: "answered", finished_at: 2_000 });
    await Promise.all([sent, done]);
    expect(await store.attempt(jobId, NODE)).to.deep.equal({ ...record, status: "answered", finished_at: 2_000 });
    expect(await store.openAttemptHolders(), "answered: no longer open").to.deep.equal([]);
    expect((await store.signedWorkUnit(jobId))?.client_signature).to.equal(unit.client_signature);
    // An attempt that ended before its "sent" record was written is written once, as it ended:
    // a failure lands in the failed index the keeper scans, never in the open one.
    const other = getAddress("0x00000000000000000000000000000000000000c2") as Address;
    const failed: AttemptRecord = {
      ...record,
      node: other,
      status: "failed",
      failure: "dropped",
      reason: "socket hang up",
      finished_at: Date.now(),
    };
    await store.writeBehind((p) => store.queueAttemptEnded(p, failed, unit));
    expect(await store.attempt(jobId, other)).to.deep.equal(failed);
    expect(await store.openAttemptHolders()).to.deep.equal([]);
    expect((await store.attemptsToCheck(0)).map((r) => r.node)).to.deep.equal([other]);
  });

  it("records dissent evidence once per digest", async function () {
    const store = new NodeStateStore(redis, "t5:");
    const record = { kind: "quorum-dissent", node: NODE } as unknown as DissentEvidence;
    expect(await store.recordEvidence("0xd1", record)).to.equal(true);
    expect(await store.recordEvidence("0xd1", record)).to.equal(false);
    expect([...(await store.evidence()).keys()]).to.deep.equal(["0xd1"]);
  });

  it("keeps served jobs for sampling until their time to live, and pages their ids from a cursor", async function () {
    const store = new NodeStateStore(redis, "t6:");
    const job = (n: number): ServedJob => ({
      work_unit: {
        job_id: `0x${n.toString(16).padStart(64, "0")}`,
        model_ref: { model_id: 1, version: 0 },
        input_hash: `0x${"ab".repeat(32)}`,
        input: "aGk=",
        requested_by: NODE,
        expires_at: 1,
        max_fee: "1",
      },
      client_signature: `0x${"11".repeat(65)}`,
      proof_of_serving: {} as ServedJob["proof_of_serving"],
      served_at: n,
    });
    for (let n = 1; n <= 5; n++) await store.recordServed(job(n), n === 5 ? 200 : 60_000, 1_000);
    const first = await store.servedSince("0", 3);
    expect(first.jobIds).to.deep.equal([1, 2, 3].map((n) => job(n).work_unit.job_id));
    const rest = await store.servedSince(first.cursor, 3);
    expect(rest.jobIds).to.deep.equal([4, 5].map((n) => job(n).work_unit.job_id));
    expect(await store.servedSince(rest.cursor, 3)).to.deep.equal({ jobIds: [], cursor: rest.cursor });
    expect(await store.servedJob(job(2).work_unit.job_id.toUpperCase().replace("0X", "0x"))).to.deep.equal(job(2));
    const deadline = Date.now() + 10_000;
    while ((await store.servedJob(job(5).work_unit.job_id)) !== undefined) {
      if (Date.now() > deadline) throw new Error("the served job did not expire");
      await new Promise((r) => setTimeout(r, 50));
    }
    expect(await store.servedJob(job(4).work_unit.job_id)).to.deep.equal(job(4));
  });
});

function heartbeat(timestamp: number): Heartbeat {
  return {
    chain_id: 31337,
    node: NODE,
    endpoint: "http://127.0.0.1:9",
    models: [1],
    load: 0,
    hardware: { cpus: 1, memory_bytes: 1, gpus: [] },
    timestamp,
  };
}

/** A heartbeat as a node sends it; the store keeps the signature, it does not check it (the server does). */
function signed(hb: Heartbeat): SignedHeartbeatRecord {
  return { heartbeat: hb, signature: `0x${"ab".repeat(65)}` };
}

/** |actual − expected| < 1e-9 (chai's closeTo is replaced by a bigint matcher when hardhat-ethers loads). */
function expectNear(actual: number | undefined, expected: number): void {
  expect(actual !== undefined && Math.abs(actual - expected) < 1e-9, `${actual} ≈ ${expected}`).to.equal(true);
}
