// Node state shared by every gateway instance through Redis: the latest signed heartbeat of each
// node (expiring on its own when the node goes quiet; its signed form is kept a day longer, for
// the keeper to show when a node holding jobs went silent), call statistics (latency EWMA, decayed
// success and failure counts), short "seen down" marks after a failure, dissent evidence, and a
// record of every forward attempt (the keeper's SLA watch reads them). Each write is one atomic
// script or one pipeline, so instances never overwrite each other's updates.
// Per-call writes (statistics, attempt records, served jobs) go through a write batch: one pipeline
// per turn of the event loop, sent after the socket writes of that turn, off the calls' path.
import type { ChainableCommander, Redis } from "ioredis";
import { getAddress, type Address, type Hex } from "viem";

import type { ProofOfServingJson, WorkUnitJson } from "../sdk/receipt.ts";
import type { Heartbeat, SignedHeartbeatRecord } from "./heartbeat.ts";
import { RedisWriteBatch, type PipelinedWrite, type WriteBatchOptions } from "./write-batch.ts";
import type { DissentEvidence } from "./quorum.ts";
import { LATENCY_ALPHA, STATS_DECAY, type NodeStats } from "./scoring.ts";

/**
 * Stores a heartbeat unless the stored one is as new or newer, and keeps the node's last signed
 * heartbeat (hb-last) past the heartbeat's own expiry: once a node goes silent, that is what
 * shows it was alive until then. KEYS hb, nodes, hb-last; ARGV json, timestamp, ttl, node,
 * signed json, how long hb-last is kept.
 */
const STORE_HEARTBEAT_LUA = `
local current = redis.call('GET', KEYS[1])
if current then
  local ts = tonumber(cjson.decode(current).timestamp)
  if ts ~= nil and ts >= tonumber(ARGV[2]) then return 0 end
end
local last = redis.call('GET', KEYS[3])
if last then
  local ts = tonumber(cjson.decode(last).heartbeat.timestamp)
  if ts ~= nil and ts >= tonumber(ARGV[2]) then return 0 end
end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[3])
redis.call('SADD', KEYS[2], ARGV[4])
redis.call('SET', KEYS[3], ARGV[5], 'PX', ARGV[6])
return 1
`;

/** `updateStats` of scoring.ts inside Redis. KEYS stats; ARGV ok (1/0), latency ms, decay, alpha. */
const UPDATE_STATS_LUA = `
local f = redis.call('HMGET', KEYS[1], 'ewma', 'ok', 'fail')
local ewma = tonumber(f[1])
local ok = (tonumber(f[2]) or 0) * tonumber(ARGV[3])
local fail = (tonumber(f[3]) or 0) * tonumber(ARGV[3])
if ARGV[1] == '1' then
  local x = tonumber(ARGV[2])
  if ewma == nil then ewma = x else ewma = ewma + tonumber(ARGV[4]) * (x - ewma) end
  ok = ok + 1
else
  fail = fail + 1
end
if ewma ~= nil then redis.call('HSET', KEYS[1], 'ewma', tostring(ewma)) end
redis.call('HSET', KEYS[1], 'ok', tostring(ok), 'fail', tostring(fail))
return 1
`;

/** How a forward attempt ended when the node did not serve it. */
export type AttemptFailure =
  /** The node took the job and gave no answer before the deadline. */
  | "timeout"
  /** The node took the job and the connection dropped before an answer (killed, crashed). */
  | "dropped"
  /** Nothing listened at the endpoint its live heartbeat advertised. */
  | "unreachable"
  /** It answered, but not with a served job (5xx, bad proof, a model it does not have). */
  | "bad_answer";

/** One forward of a job to a node, as the keeper reads it back. */
export interface AttemptRecord {
  job_id: Hex;
  /** EIP-712 hash of the work unit the client signed. */
  work_unit_hash: Hex;
  node: Address;
  /** Milliseconds since the epoch, gateway clock. */
  sent_at: number;
  deadline: number;
  status: "sent" | "answered" | "failed";
  failure?: AttemptFailure;
  reason?: string;
  finished_at?: number;
}

/** The work unit a job forwarded, without its input bytes (the client signed their hash), and its signature. */
export interface SignedWorkUnitRecord {
  work_unit: Omit<WorkUnitJson, "input">;
  client_signature: Hex;
}

/** Attempt records (and the signed work units) live this long: long enough for the keeper to act. */
export const ATTEMPT_TTL_MS = 24 * 60 * 60 * 1000;
/**
 * A node's last signed heartbeat is kept as long as the attempts it may have to explain: the
 * keeper's SLA watch shows it as the evidence of a node that went silent holding a job.
 */
export const LAST_HEARTBEAT_TTL_MS = ATTEMPT_TTL_MS;

/** How often an instance trims the attempt indexes of entries older than ATTEMPT_TTL_MS. */
export const TRIM_EVERY_MS = 10_000;

/** Sorts a failed forward's error into an AttemptFailure. Pure. */
export function attemptFailureOf(error: Error & { code?: string }): AttemptFailure {
  if (/^no answer within \d+ ms$/.test(error.message)) return "timeout";
  if (error.code === "ECONNREFUSED" || error.code === "EHOSTUNREACH" || error.code === "ENOTFOUND")
    return "unreachable";
  return "dropped";
}

/** The Redis id of an attempt: a job goes to a node at most once. */
export function attemptId(jobId: string, node: string): string {
  return `${jobId.toLowerCase()}:${node.toLowerCase()}`;
}

/**
 * A job one node served, kept for the keeper's validator sampling: the client's signed work unit
 * (with the input bytes, which the re-run needs) and the node's signed proof of serving.
 */
export interface ServedJob {
  work_unit: WorkUnitJson;
  client_signature: string;
  proof_of_serving: ProofOfServingJson;
  served_at: number;
}

export interface StoredNode {
  heartbeat: Heartbeat;
  stats: NodeStats;
  downUntil: number;
}

type Scripts = {
  inframeshStoreHeartbeat(
    hb: string,
    nodes: string,
    lastHb: string,
    json: string,
    ts: number,
    ttl: number,
    node: string,
    signed: string,
    keepMs: number,
  ): Promise<number>;
  inframeshUpdateStats(key: string, ok: string, latency: number, decay: number, alpha: number): Promise<number>;
};

export class NodeStateStore {
  readonly #redis: Redis & Scripts;
  readonly #prefix: string;
  readonly #batch: RedisWriteBatch;
  #trimmedAt = Number.NEGATIVE_INFINITY;

  constructor(redis: Redis, prefix: string, options: WriteBatchOptions = {}) {
    redis.defineCommand("inframeshStoreHeartbeat", { numberOfKeys: 3, lua: STORE_HEARTBEAT_LUA });
    redis.defineCommand("inframeshUpdateStats", { numberOfKeys: 1, lua: UPDATE_STATS_LUA });
    this.#redis = redis as Redis & Scripts;
    this.#prefix = prefix;
    this.#batch = new RedisWriteBatch(redis, options);
  }

  /**
   * Queues a per-call write that nothing waits for (one command) into the pipeline sent after
   * the current calls; resolves once Redis ran it. Keys should start with `prefix`.
   */
  writeBehind(write: PipelinedWrite): Promise<void> {
    return this.#batch.add(write);
  }

  /** Sends the queued per-call writes now; resolves once Redis answered them (a stopping gateway's last writes). */
  flushWrites(): Promise<void> {
    return this.#batch.flush();
  }

  get prefix(): string {
    return this.#prefix;
  }

  #key(kind: string, node: Address): string {
    return `${this.#prefix}${kind}:${node.toLowerCase()}`;
  }

  /**
   * Stores a verified heartbeat for `ttlMs`, and the node's signed form of it for
   * LAST_HEARTBEAT_TTL_MS (same script, same round trip); false when it is not newer than the
   * stored one (a replay).
   */
  async storeHeartbeat(heartbeat: Heartbeat, ttlMs: number, signed: SignedHeartbeatRecord): Promise<boolean> {
    const stored = await this.#redis.inframeshStoreHeartbeat(
      this.#key("hb", heartbeat.node),
      `${this.#prefix}nodes`,
      this.#key("hb-last", heartbeat.node),
      JSON.stringify(heartbeat),
      heartbeat.timestamp,
      ttlMs,
      heartbeat.node,
      JSON.stringify(signed),
      LAST_HEARTBEAT_TTL_MS,
    );
    return stored === 1;
  }

  /** Each node's last signed heartbeat still kept (by lowercase address), live or lost. */
  async lastHeartbeats(nodes: readonly string[]): Promise<Map<string, SignedHeartbeatRecord>> {
    const unique = [...new Set(nodes.map((n) => n.toLowerCase()))];
    const out = new Map<string, SignedHeartbeatRecord>();
    if (unique.length === 0) return out;
    const pipeline = this.#redis.pipeline();
    for (const node of unique) pipeline.get(this.#key("hb-last", node as Address));
    const results = (await pipeline.exec()) ?? [];
    unique.forEach((node, i) => {
      const text = results[i]?.[1];
      if (typeof text === "string") out.set(node, JSON.parse(text) as SignedHeartbeatRecord);
    });
    return out;
  }

  /** Every node with a live heartbeat, with its stats and down mark. Forgets nodes whose heartbeat expired. */
  async nodes(): Promise<StoredNode[]> {
    const members = await this.#redis.smembers(`${this.#prefix}nodes`);
    if (members.length === 0) return [];
    const pipeline = this.#redis.pipeline();
    for (const m of members) {
      const node = m as Address;
      pipeline.get(this.#key("hb", node));
      pipeline.hmget(this.#key("stats", node), "ewma", "ok", "fail");
      pipeline.pttl(this.#key("down", node));
    }
    const results = (await pipeline.exec()) ?? [];
    const now = Date.now();
    const out: StoredNode[] = [];
    const gone: string[] = [];
    members.forEach((member, i) => {
      const hb = results[i * 3]?.[1] as string | null;
      const stats = (results[i * 3 + 1]?.[1] ?? [null, null, null]) as (string | null)[];
      const downTtl = Number(results[i * 3 + 2]?.[1] ?? -2);
      if (hb === null) {
        gone.push(member);
        return;
      }
      const heartbeat = JSON.parse(hb) as Heartbeat;
      heartbeat.node = getAddress(heartbeat.node);
      out.push({
        heartbeat,
        stats: {
          latencyEwmaMs: stats[0] === null || stats[0] === undefined ? undefined : Number(stats[0]),
          successes: Number(stats[1] ?? 0),
          failures: Number(stats[2] ?? 0),
        },
        downUntil: downTtl > 0 ? now + downTtl : 0,
      });
    });
    if (gone.length > 0) await this.#redis.srem(`${this.#prefix}nodes`, ...gone);
    return out;
  }

  /** Records one call's outcome in the node's shared statistics. */
  recordOutcome(node: Address, outcome: { ok: true; latencyMs: number } | { ok: false }): Promise<void> {
    const key = this.#key("stats", node);
    return this.#batch.add((pipeline) =>
      (pipeline as unknown as Scripts).inframeshUpdateStats(
        key,
        outcome.ok ? "1" : "0",
        outcome.ok ? outcome.latencyMs : 0,
        STATS_DECAY,
        LATENCY_ALPHA,
      ),
    );
  }

  /** Marks a node as seen down for `ms`, for every instance. */
  async markDown(node: Address, ms: number): Promise<void> {
    await this.#redis.set(this.#key("down", node), "1", "PX", ms);
  }

  /**
   * Keeps a served job for `ttlMs` and appends its id to the `served` stream (trimmed to about
   * `streamMax` entries): one pipelined round trip, so the call path pays one write and no wait.
   */
  async recordServed(job: ServedJob, ttlMs: number, streamMax: number): Promise<void> {
    const jobId = job.work_unit.job_id.toLowerCase();
    await this.#batch.add((pipeline) =>
      pipeline
        .set(`${this.#prefix}served:${jobId}`, JSON.stringify(job), "PX", ttlMs)
        .xadd(`${this.#prefix}served`, "MAXLEN", "~", streamMax, "*", "job", jobId),
    );
  }

  /** A served job kept by `recordServed`, or undefined once its time to live has passed. */
  async servedJob(jobId: string): Promise<ServedJob | undefined> {
    const json = await this.#redis.get(`${this.#prefix}served:${jobId.toLowerCase()}`);
    return json === null ? undefined : (JSON.parse(json) as ServedJob);
  }

  /** Up to `count` served job ids after stream entry `cursor` ("0": from the start), with the last entry read. */
  async servedSince(cursor: string, count: number): Promise<{ jobIds: string[]; cursor: string }> {
    const entries = await this.#redis.xrange(`${this.#prefix}served`, `(${cursor}`, "+", "COUNT", count);
    const jobIds = entries.map(([, fields]) => fields[fields.indexOf("job") + 1] ?? "").filter((j) => j !== "");
    return { jobIds, cursor: entries.at(-1)?.[0] ?? cursor };
  }

  /** Stores dissent evidence under its digest (once, whichever instance saw it first); true when new. */
  async recordEvidence(digest: string, evidence: DissentEvidence): Promise<boolean> {
    return (await this.#redis.hsetnx(`${this.#prefix}evidence`, digest, JSON.stringify(evidence))) === 1;
  }

  /**
   * Records that `attempt` was sent (status "sent"): one pipeline, not awaited by the caller's
   * hot path. The attempt waits in the `attempts-open` index (by deadline) until its outcome is
   * recorded; a gateway that dies first leaves it there, past its deadline, for the keeper.
   */
  async recordAttemptSent(attempt: AttemptRecord, signed: SignedWorkUnitRecord): Promise<void> {
    await this.#batch.add((pipeline) => this.queueAttemptSent(pipeline, attempt, signed));
  }

  /** recordAttemptSent's commands, added to `pipeline` (for a caller that builds the record late). */
  queueAttemptSent(pipeline: ChainableCommander, attempt: AttemptRecord, signed: SignedWorkUnitRecord): void {
    const id = this.#queueRecord(pipeline, attempt, signed);
    pipeline.zadd(`${this.#prefix}attempts-open`, attempt.deadline, id);
    this.#trimIfDue(pipeline, attempt.sent_at);
  }

  /** The attempt's record and the signed work unit the keeper's evidence needs; returns the attempt id. */
  #queueRecord(pipeline: ChainableCommander, attempt: AttemptRecord, signed: SignedWorkUnitRecord): string {
    const id = attemptId(attempt.job_id, attempt.node);
    const key = `${this.#prefix}attempt:${id}`;
    pipeline
      .hset(key, "record", JSON.stringify(attempt))
      .pexpire(key, ATTEMPT_TTL_MS)
      .set(
        `${this.#prefix}workunit:${attempt.job_id.toLowerCase()}`,
        JSON.stringify(signed),
        "PX",
        ATTEMPT_TTL_MS,
        "NX",
      );
    return id;
  }

  /**
   * Drops index entries older than ATTEMPT_TTL_MS (their records have expired), at most once per
   * TRIM_EVERY_MS per instance rather than with every attempt.
   */
  #trimIfDue(pipeline: ChainableCommander, nowMs: number): void {
    if (nowMs - this.#trimmedAt < TRIM_EVERY_MS) return;
    this.#trimmedAt = nowMs;
    pipeline
      .zremrangebyscore(`${this.#prefix}attempts-open`, "-inf", nowMs - ATTEMPT_TTL_MS)
      .zremrangebyscore(`${this.#prefix}attempts-failed`, "-inf", nowMs - ATTEMPT_TTL_MS);
  }

  /**
   * An attempt that ended before its "sent" record was written, recorded in one go: the record
   * as it ended, the signed work unit, and for a failure the failed index. It never joins the
   * open index (there is nothing open left to watch), so it needs neither ZADD nor ZREM there.
   */
  queueAttemptEnded(pipeline: ChainableCommander, attempt: AttemptRecord, signed: SignedWorkUnitRecord): void {
    const id = this.#queueRecord(pipeline, attempt, signed);
    const now = attempt.finished_at ?? Date.now();
    if (attempt.status === "failed") pipeline.zadd(`${this.#prefix}attempts-failed`, now, id);
    this.#trimIfDue(pipeline, now);
  }

  /**
   * Records an attempt's outcome (one pipeline): it leaves the open index; a failure joins the
   * `attempts-failed` index (by time) that the keeper scans.
   */
  async recordAttemptOutcome(attempt: AttemptRecord): Promise<void> {
    await this.#batch.add((pipeline) => this.queueAttemptOutcome(pipeline, attempt));
  }

  /** recordAttemptOutcome's commands, added to `pipeline`. */
  queueAttemptOutcome(pipeline: ChainableCommander, attempt: AttemptRecord): void {
    const id = attemptId(attempt.job_id, attempt.node);
    const key = `${this.#prefix}attempt:${id}`;
    const now = attempt.finished_at ?? Date.now();
    pipeline
      .hset(key, "record", JSON.stringify(attempt))
      .pexpire(key, ATTEMPT_TTL_MS)
      .zrem(`${this.#prefix}attempts-open`, id);
    if (attempt.status === "failed") pipeline.zadd(`${this.#prefix}attempts-failed`, now, id);
    this.#trimIfDue(pipeline, now);
  }

  /** The nodes (lowercase) holding an open attempt: sent, not yet marked answered or failed. */
  async openAttemptHolders(): Promise<string[]> {
    const ids = await this.#redis.zrange(`${this.#prefix}attempts-open`, "0", "-1");
    return [...new Set(ids.map((id) => id.slice(id.indexOf(":") + 1)))];
  }

  /**
   * The attempts the keeper's SLA watch looks at: every failed one, every open one whose
   * deadline passed before `openBefore` (sent, never marked answered or failed), and every open
   * one held by a node in `openOf` (lowercase) whatever its deadline.
   */
  async attemptsToCheck(openBefore: number, openOf: ReadonlySet<string> = new Set()): Promise<AttemptRecord[]> {
    const [failed, open] = await Promise.all([
      this.#redis.zrange(`${this.#prefix}attempts-failed`, "0", "-1"),
      openOf.size === 0
        ? this.#redis.zrangebyscore(`${this.#prefix}attempts-open`, "-inf", String(openBefore))
        : this.#redis.zrange(`${this.#prefix}attempts-open`, "0", "-1", "WITHSCORES").then((flat) => {
            const ids: string[] = [];
            for (let i = 0; i < flat.length; i += 2) {
              const id = flat[i]!;
              if (Number(flat[i + 1]) <= openBefore || openOf.has(id.slice(id.indexOf(":") + 1))) ids.push(id);
            }
            return ids;
          }),
    ]);
    const ids = [...new Set([...failed, ...open])];
    if (ids.length === 0) return [];
    const pipeline = this.#redis.pipeline();
    for (const id of ids) pipeline.hget(`${this.#prefix}attempt:${id}`, "record");
    const results = (await pipeline.exec()) ?? [];
    return results
      .map(([, value]) => (typeof value === "string" ? (JSON.parse(value) as AttemptRecord) : undefined))
      .filter((r): r is AttemptRecord => r !== undefined);
  }

  /** The record of the attempt to serve `jobId` on `node`, whatever its status, if still kept. */
  async attempt(jobId: string, node: string): Promise<AttemptRecord | undefined> {
    const text = await this.#redis.hget(`${this.#prefix}attempt:${attemptId(jobId, node)}`, "record");
    return text === null ? undefined : (JSON.parse(text) as AttemptRecord);
  }

  /** The signed work unit of a job, if still kept. */
  async signedWorkUnit(jobId: string): Promise<SignedWorkUnitRecord | undefined> {
    const text = await this.#redis.get(`${this.#prefix}workunit:${jobId.toLowerCase()}`);
    return text === null ? undefined : (JSON.parse(text) as SignedWorkUnitRecord);
  }

  /** All recorded dissent evidence, by digest (what the keeper reads). */
  async evidence(): Promise<Map<string, DissentEvidence>> {
    const all = await this.#redis.hgetall(`${this.#prefix}evidence`);
    return new Map(Object.entries(all).map(([k, v]) => [k, JSON.parse(v) as DissentEvidence]));
  }
}
