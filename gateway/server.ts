// The inference gateway: one HTTP service, as many instances as wanted side by side (they agree
// through the chain and a shared Redis, with no scheduler of their own to lose).
//
//   POST /inference/v1/model/:name   a call: API key + { input } (the gateway signs the work unit
//                                    for the key's client account) or { work_unit, client_signature }
//   POST /v1/heartbeats              a node's signed heartbeat
//   GET  /v1/nodes                   the nodes this instance routes to, as it sees them
//   GET  /healthz, GET /metrics
//
// Errors are JSON `{ "error": code, "reason": message }`; malformed input is always a 4xx.
import { randomBytes, randomUUID } from "node:crypto";
import { readFile } from "node:fs/promises";
import {
  createServer,
  type IncomingHttpHeaders,
  type IncomingMessage,
  type Server,
  type ServerResponse,
} from "node:http";

import express, { type NextFunction, type Request, type Response } from "express";
import { Redis } from "ioredis";
import { pino, type Logger } from "pino";
import { Counter, Histogram, Registry } from "prom-client";
import { createPublicClient, http, type Address, type Hex, type PublicClient, type TypedDataDomain } from "viem";
import type { PrivateKeyAccount } from "viem/accounts";
import { z } from "zod";

import { parseDeploymentRecord, type DeploymentRecord } from "../sdk/deployment.ts";
import {
  inframeshDomain,
  payloadHash,
  recoverProofOfServingSigner,
  signWorkUnit,
  workUnitHasher,
  type WorkUnit,
} from "../sdk/eip712.ts";
import {
  proofOfServingOf,
  signatureSchema,
  workUnitJson,
  workUnitJsonSchema,
  type WorkUnitJson,
} from "../sdk/receipt.ts";
import { checkAccess } from "./access.ts";
import { apiKeyFromHeaders, verifyApiKey } from "./api-keys.ts";
import { LazyLog, type CallLog } from "./call-log.ts";
import { GatewayChain, type ServingModel } from "./chain.ts";
import { openClientAccount } from "./client-accounts.ts";
import type { GatewayConfig, ModelPolicy } from "./config.ts";
import { GatewayError } from "./errors.ts";
import { classifyAnswer, postJson, type Served } from "./forward.ts";
import { describeIssues, verifySignedHeartbeat } from "./heartbeat.ts";
import {
  NodeStateStore,
  attemptFailureOf,
  type AttemptFailure,
  type AttemptRecord,
  type SignedWorkUnitRecord,
} from "./node-state.ts";
import { decideQuorum, dissentEvidence, evidenceDigest, type QuorumAnswer } from "./quorum.ts";
import { RedisRateLimiter, type BucketLimit } from "./rate-limit.ts";
import { filterCandidates, rankCandidates, type JobRequirement, type NodeView } from "./scoring.ts";

/** Largest call body: the receipt schema's 8 MiB of base64 input plus the work unit. */
const MAX_BODY = "12mb";
const MAX_BODY_BYTES = 12 * 1024 * 1024;
const INFERENCE_PREFIX = "/inference/v1/model/";
/** A path segment the fast path takes as the model name as it is (nothing to decode, no query). */
const PLAIN_SEGMENT = /^[A-Za-z0-9._-]{1,64}$/;
const MAX_HEARTBEAT_BODY = "64kb";
const MODEL_NAME = /^[a-z0-9][a-z0-9._-]{0,63}$/;
const REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;

const redundancySchema = z.number().int("redundancy is a whole number").min(1, "redundancy is at least 1").optional();

/** Body of a call made with an API key: the raw input bytes, base64. */
const keyedCallSchema = z.strictObject({
  input: z.base64("input must be base64").max(8 * 1024 * 1024, "input is larger than 6 MiB"),
  redundancy: redundancySchema,
});

/** Body of a call the client signed itself. */
const signedCallSchema = z.strictObject({
  work_unit: workUnitJsonSchema,
  client_signature: signatureSchema,
  redundancy: redundancySchema,
});

export class GatewayStartError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "GatewayStartError";
  }
}

export interface GatewayOptions {
  env?: NodeJS.ProcessEnv;
  logger?: Logger;
}

export interface InferenceAnswer {
  output: string;
  job_id: string;
  node_id: string;
  output_hash: string;
  proof_of_serving: unknown;
  attempts: number;
  quorum?: { redundancy: number; nodes: string[]; dissenting: string[]; evidence: string[] };
}

export interface Gateway {
  readonly url: string;
  readonly domain: TypedDataDomain;
  readonly store: NodeStateStore;
  readonly chain: GatewayChain;
  /** Reloads the node view from Redis and chain now (the loop does it every node_refresh_ms). */
  refreshNodes(): Promise<NodeView[]>;
  stop(): Promise<void>;
}

/**
 * What each forward attempt of one call records about its job. The hash and the signed record are
 * only needed by the attempt records, which are written off the call's path: computed there, once.
 */
interface JobTrace {
  jobId: Hex;
  workUnitHash(): Hex;
  signed(): SignedWorkUnitRecord;
}

function parseBody<T>(schema: z.ZodType<T>, body: unknown): T {
  const parsed = schema.safeParse(body);
  if (!parsed.success)
    throw new GatewayError(400, "bad_request", describeIssues(parsed.error), { cause: parsed.error });
  return parsed.data;
}

/** Writes a JSON answer in one go (headers and body in one write). */
function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    ...headers,
    "content-type": "application/json; charset=utf-8",
    "content-length": Buffer.byteLength(text),
  });
  res.end(text);
}

function jsonOf(raw: unknown, what: string): unknown {
  if (!Buffer.isBuffer(raw) || raw.length === 0)
    throw new GatewayError(400, "bad_json", `the body must be JSON: ${what}`);
  try {
    return JSON.parse(raw.toString("utf8"));
  } catch {
    throw new GatewayError(400, "bad_json", `the body is not valid JSON; expected ${what}`);
  }
}

async function readDeployment(file: string): Promise<DeploymentRecord> {
  let text: string;
  try {
    text = await readFile(file, "utf8");
  } catch (error) {
    throw new GatewayStartError(`no deployment record at ${file} (deploy first: npx hardhat deploy)`, { cause: error });
  }
  try {
    return parseDeploymentRecord(JSON.parse(text));
  } catch (error) {
    throw new GatewayStartError(`${file}: ${(error as Error).message}`, { cause: error });
  }
}

function metricsOf(registry: Registry) {
  return {
    calls: new Counter({
      name: "inframesh_gateway_calls_total",
      help: "Inference calls by model and outcome (served, or the error code)",
      labelNames: ["model", "outcome"],
      registers: [registry],
    }),
    latency: new Histogram({
      name: "inframesh_gateway_call_duration_seconds",
      help: "Time to answer an inference call, failovers included",
      labelNames: ["model"],
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers: [registry],
    }),
    attempts: new Counter({
      name: "inframesh_gateway_node_attempts_total",
      help: "Forwarding attempts by outcome (served, client_error, node_fault)",
      labelNames: ["outcome"],
      registers: [registry],
    }),
    failovers: new Counter({
      name: "inframesh_gateway_failovers_total",
      help: "Calls that needed more than one node",
      registers: [registry],
    }),
    evidence: new Counter({
      name: "inframesh_gateway_dissent_evidence_total",
      help: "Dissenting proofs of serving recorded as slash evidence",
      registers: [registry],
    }),
    heartbeats: new Counter({
      name: "inframesh_gateway_heartbeats_total",
      help: "Heartbeats by outcome (stored, or the error code)",
      labelNames: ["outcome"],
      registers: [registry],
    }),
  };
}

/** Starts a gateway instance; resolves once it listens with chain, Redis and client keys ready. */
export async function startGateway(config: GatewayConfig, options: GatewayOptions = {}): Promise<Gateway> {
  const env = options.env ?? process.env;
  const log = options.logger ?? pino({ level: config.log_level, base: { part: "gateway" } });
  const record = await readDeployment(config.chain.deployment);
  const client = createPublicClient({
    transport: http(config.chain.rpc_url, { retryCount: 1, timeout: 15_000 }),
  }) as PublicClient;
  const chainId = await client.getChainId().catch((error: unknown) => {
    throw new GatewayStartError(`cannot reach the chain at ${config.chain.rpc_url}`, { cause: error });
  });
  if (chainId !== record.chainId) {
    throw new GatewayStartError(
      `${config.chain.rpc_url} is chain ${chainId}, but the deployment record is for chain ${record.chainId}`,
    );
  }
  const domain = inframeshDomain(record.chainId, record.contracts.epochSettlement.address);
  const hashWorkUnitFast = workUnitHasher(domain);

  // Client accounts first: a bad keystore stops the start before anything listens.
  const keys = new Map<string, GatewayConfig["api_keys"][number] & { account: PrivateKeyAccount }>();
  for (const k of config.api_keys) keys.set(k.id, { ...k, account: await openClientAccount(k.client, k.id, env) });

  const chain = new GatewayChain({
    client,
    modelRegistry: record.contracts.modelRegistry.address,
    nodeStaking: record.contracts.nodeStaking.address,
    blockPollMs: config.block_poll_ms,
  });
  await chain.start();

  const redis = new Redis(config.redis.url, { maxRetriesPerRequest: 2, enableOfflineQueue: true, lazyConnect: true });
  redis.on("error", (error: Error) => log.warn({ err: error.message }, "redis error"));
  try {
    await redis.connect();
  } catch (error) {
    chain.stop();
    throw new GatewayStartError(`cannot reach Redis at ${config.redis.url}`, { cause: error });
  }
  const store = new NodeStateStore(redis, config.redis.prefix, { delayMs: config.write_batch_ms });
  const limiter = new RedisRateLimiter(redis, config.redis.prefix, { leaseMs: config.rate_limit_lease_ms });

  const registry = new Registry();
  const metrics = metricsOf(registry);

  // ---------------------------------------------------------------- node view

  let nodes: NodeView[] = [];
  let nodesLoaded = false;
  const localDown = new Map<string, number>();
  const refreshNodes = async (): Promise<NodeView[]> => {
    const stored = await store.nodes();
    const views = await Promise.all(
      stored.map(async (s): Promise<NodeView | undefined> => {
        const standing = await chain.node(s.heartbeat.node).catch((error: unknown) => {
          log.warn({ node: s.heartbeat.node, err: (error as Error).message }, "cannot read node standing");
          return undefined;
        });
        if (standing === undefined) return undefined;
        const localUntil = localDown.get(s.heartbeat.node.toLowerCase()) ?? 0;
        return {
          node: s.heartbeat.node,
          endpoint: s.heartbeat.endpoint,
          ...standing,
          models: s.heartbeat.models.map(BigInt),
          load: s.heartbeat.load,
          hardware: s.heartbeat.hardware,
          heartbeatAt: s.heartbeat.timestamp,
          stats: s.stats,
          downUntil: Math.max(s.downUntil, localUntil),
        };
      }),
    );
    nodes = views.filter((v): v is NodeView => v !== undefined);
    nodesLoaded = true;
    return nodes;
  };
  let refreshTimer: NodeJS.Timeout | undefined;
  let stopping = false;
  const refreshLoop = () => {
    refreshTimer = setTimeout(() => {
      void refreshNodes()
        .catch((error: unknown) => log.warn({ err: (error as Error).message }, "node refresh failed"))
        .finally(() => {
          if (!stopping) refreshLoop();
        });
    }, config.routing.node_refresh_ms);
  };
  await refreshNodes().catch((error: unknown) => log.warn({ err: (error as Error).message }, "node refresh failed"));
  refreshLoop();

  const markDown = (node: Address) => {
    const until = Date.now() + config.routing.down_cooldown_ms;
    localDown.set(node.toLowerCase(), until);
    for (const n of nodes) if (n.node === node) n.downUntil = until;
    void store.markDown(node, config.routing.down_cooldown_ms).catch(() => undefined);
  };
  const recordOutcome = (node: Address, outcome: { ok: true; latencyMs: number } | { ok: false }) => {
    void store
      .recordOutcome(node, outcome)
      .catch((error: unknown) => log.warn({ err: (error as Error).message }, "cannot record node stats"));
  };

  // ---------------------------------------------------------------- routing

  // Calls this instance has in flight per node: added to the node's reported load, so a burst
  // spreads over similar nodes instead of queueing on the best one between heartbeats.
  const inFlight = new Map<string, number>();
  const withLocalLoad = (n: NodeView): NodeView => {
    const mine = inFlight.get(n.node) ?? 0;
    return mine === 0 ? n : { ...n, load: Math.min(1, n.load + mine / config.routing.node_capacity) };
  };

  const ranked = (model: ServingModel, policy: ModelPolicy, jobId: Hex): NodeView[] => {
    const req: JobRequirement = {
      modelId: model.modelId,
      minTier: policy.min_tier,
      memoryBytes: policy.memory_bytes,
      gpu: policy.gpu,
    };
    const now = Date.now();
    const { candidates, rejected } = filterCandidates(nodes, req, now, config.heartbeats.max_age_ms);
    if (candidates.length === 0) {
      const why = rejected.map((r) => `${r.node}: ${r.reason}`).join("; ");
      throw new GatewayError(
        503,
        "no_nodes",
        `no node can serve model ${model.name} now${why === "" ? " (no node has sent a heartbeat)" : ` (${why})`}; retry later`,
      );
    }
    return rankCandidates(candidates.map(withLocalLoad), req, now, jobId);
  };

  type Attempt =
    | { kind: "served"; served: Served; latencyMs: number }
    | { kind: "client_error"; error: GatewayError }
    | { kind: "node_fault"; reason: string };

  /** Writes an attempt record without holding the call up: a Redis hiccup costs a record, not the call. */
  const trace = (write: Promise<void>) => {
    write.catch((error: unknown) => log.warn({ err: (error as Error).message }, "cannot record the attempt"));
  };

  const attempt = async (n: NodeView, body: string, job: JobTrace, rlog: CallLog): Promise<Attempt> => {
    const jobId = job.jobId;
    const started = performance.now();
    const sentAt = Date.now();
    const base = { job_id: jobId, node: n.node, sent_at: sentAt, deadline: sentAt + config.routing.forward_timeout_ms };
    // Queued now, written with the next write batch (write_batch_ms), off the call's path; the
    // hash is computed then, not before the forward. An attempt that has ended by then is written
    // once, as it ended (queueAttemptEnded), instead of as sent and then again as ended.
    let ended = false;
    let sentWritten = false;
    trace(
      store.writeBehind((pipeline) => {
        if (ended) return;
        sentWritten = true;
        store.queueAttemptSent(
          pipeline,
          { ...base, work_unit_hash: job.workUnitHash(), status: "sent" } satisfies AttemptRecord,
          job.signed(),
        );
      }),
    );
    let outcome;
    let failure: AttemptFailure = "bad_answer";
    inFlight.set(n.node, (inFlight.get(n.node) ?? 0) + 1);
    try {
      const answer = await postJson(`${n.endpoint}/v1/jobs`, body, config.routing.forward_timeout_ms);
      outcome = classifyAnswer(answer, n.node, jobId);
    } catch (error) {
      failure = attemptFailureOf(error as Error);
      outcome = { kind: "node_fault" as const, reason: (error as Error).message };
    } finally {
      const left = (inFlight.get(n.node) ?? 1) - 1;
      if (left <= 0) inFlight.delete(n.node);
      else inFlight.set(n.node, left);
    }
    metrics.attempts.inc({ outcome: outcome.kind });
    const finishedAt = Date.now();
    const reason = outcome.kind === "node_fault" ? outcome.reason : undefined;
    ended = true;
    // Written after the answer (write batch): the call does not wait for the keeper's copy.
    trace(
      store.writeBehind((pipeline) => {
        const sent: AttemptRecord = { ...base, work_unit_hash: job.workUnitHash(), status: "sent" };
        const record: AttemptRecord =
          reason !== undefined
            ? { ...sent, status: "failed", failure, reason, finished_at: finishedAt }
            : { ...sent, status: "answered", finished_at: finishedAt };
        if (sentWritten) store.queueAttemptOutcome(pipeline, record);
        else store.queueAttemptEnded(pipeline, record, job.signed());
      }),
    );
    if (outcome.kind === "served") {
      const latencyMs = performance.now() - started;
      recordOutcome(n.node, { ok: true, latencyMs });
      return { kind: "served", served: outcome.served, latencyMs };
    }
    if (outcome.kind === "client_error") {
      return {
        kind: "client_error",
        error: new GatewayError(outcome.status, outcome.code, `node refused the work unit: ${outcome.reason}`),
      };
    }
    rlog.warn({ node: n.node, reason: outcome.reason }, "node failed; failing over");
    recordOutcome(n.node, { ok: false });
    markDown(n.node);
    return outcome;
  };

  const routeOne = async (
    candidates: NodeView[],
    body: string,
    job: JobTrace,
    rlog: CallLog,
  ): Promise<{ served: Served; attempts: number }> => {
    const faults: string[] = [];
    const tries = candidates.slice(0, config.routing.max_attempts);
    for (const [i, n] of tries.entries()) {
      const result = await attempt(n, body, job, rlog);
      if (result.kind === "served") {
        if (i > 0) metrics.failovers.inc();
        return { served: result.served, attempts: i + 1 };
      }
      if (result.kind === "client_error") throw result.error;
      faults.push(`${n.node}: ${result.reason}`);
    }
    throw new GatewayError(
      502,
      "nodes_failed",
      `every node tried failed (${faults.join("; ")}); the job was not served, retry later`,
    );
  };

  const routeQuorum = async (
    candidates: NodeView[],
    r: number,
    body: string,
    unit: WorkUnitJson,
    signature: Hex,
    job: JobTrace,
    rlog: CallLog,
  ): Promise<{
    answer: QuorumAnswer;
    majority: QuorumAnswer[];
    dissent: string[];
    evidence: string[];
    attempts: number;
  }> => {
    if (candidates.length < r) {
      throw new GatewayError(
        503,
        "quorum_unavailable",
        `redundancy ${r} needs ${r} distinct nodes; ${candidates.length} can serve this model now`,
      );
    }
    const jobId = unit.job_id as Hex;
    const answers: QuorumAnswer[] = [];
    let next = 0;
    let attempts = 0;
    const faults: string[] = [];
    const worker = async (): Promise<void> => {
      while (answers.length < r && next < candidates.length) {
        const n = candidates[next++]!;
        attempts++;
        const result = await attempt(n, body, job, rlog);
        if (result.kind === "served") {
          answers.push({
            node: n.node,
            stake: n.stake,
            outputHash: result.served.outputHash,
            output: result.served.output,
            proof: result.served.proof,
          });
          return;
        }
        if (result.kind === "client_error") throw result.error;
        faults.push(`${n.node}: ${result.reason}`);
      }
    };
    await Promise.all(Array.from({ length: r }, worker));
    if (answers.length < r) {
      throw new GatewayError(
        502,
        "quorum_unavailable",
        `redundancy ${r}: only ${answers.length} node(s) answered (${faults.join("; ")}); retry later`,
      );
    }
    const decision = decideQuorum(answers);
    if (decision.kind === "no_majority") {
      const groups = decision.groups.map((g) => `${g.outputHash} (stake ${g.stake}: ${g.nodes.join(", ")})`);
      throw new GatewayError(
        502,
        "no_majority",
        `the ${r} nodes disagree with no stake majority: ${groups.join("; ")}`,
      );
    }
    const records = dissentEvidence(decision, unit, signature, Date.now());
    const digests: string[] = [];
    for (const [i, evidence] of records.entries()) {
      const dissenter = decision.dissent[i]!;
      // Only a proof the dissenter really signed is evidence against it.
      const signer = await recoverProofOfServingSigner(
        domain,
        proofOfServingOf({ proof_of_serving: { ...dissenter.proof, node_id: dissenter.node } as never }),
        dissenter.proof.signature as Hex,
      ).catch(() => null);
      if (signer === null || signer.toLowerCase() !== dissenter.node.toLowerCase()) {
        rlog.warn({ node: dissenter.node }, "dissenting proof of serving is not signed by its node; not evidence");
        continue;
      }
      const digest = evidenceDigest(evidence);
      digests.push(digest);
      if (await store.recordEvidence(digest, evidence)) metrics.evidence.inc();
      rlog.warn(
        { node: dissenter.node, evidence: digest, job_id: jobId },
        "dissenting output recorded as slash evidence",
      );
    }
    return {
      answer: decision.winner,
      majority: decision.majority,
      dissent: decision.dissent.map((d) => d.node),
      evidence: digests,
      attempts,
    };
  };

  // ---------------------------------------------------------------- the call

  const serveCall = async (
    name: string,
    headers: IncomingHttpHeaders,
    raw: unknown,
    rlog: CallLog,
    timing: Record<string, number>,
  ) => {
    let mark = performance.now();
    const lap = (phase: string) => {
      const now = performance.now();
      timing[phase] = now - mark;
      mark = now;
    };
    if (!MODEL_NAME.test(name)) {
      throw new GatewayError(
        400,
        "bad_model_name",
        `"${name.slice(0, 80)}" is not a model name (lowercase, digits, . _ -)`,
      );
    }
    const key = apiKeyFromHeaders(headers);
    const body = jsonOf(raw, key === undefined ? "{ work_unit, client_signature }" : '{ "input": <base64> }');
    let subject: string;
    let limit: BucketLimit;
    let custodial: PrivateKeyAccount | undefined;
    let keyed: z.output<typeof keyedCallSchema> | undefined;
    let signed: z.output<typeof signedCallSchema> | undefined;
    if (key !== undefined) {
      const record = verifyApiKey(key, (id) => keys.get(id));
      keyed = parseBody(keyedCallSchema, body);
      custodial = record.account;
      subject = `key:${record.id}`;
      const bucket = record.rate_limit ?? config.rate_limit;
      limit = { capacity: bucket.capacity, refillPerSecond: bucket.refill_per_second };
      rlog = rlog.child({ key: record.id });
    } else {
      if (body === null || typeof body !== "object" || !("work_unit" in body)) {
        throw new GatewayError(
          401,
          "unauthenticated",
          "send an API key (Authorization: Bearer <key>) with { input }, or a client-signed { work_unit, client_signature }",
        );
      }
      signed = parseBody(signedCallSchema, body);
      subject = `account:${signed.work_unit.requested_by}`;
      limit = { capacity: config.rate_limit.capacity, refillPerSecond: config.rate_limit.refill_per_second };
    }
    lap("auth");
    await limiter.take(subject, limit);
    lap("ratelimit");

    const model = await chain.model(name);
    if (model === undefined) {
      throw new GatewayError(404, "unknown_model", `no model named ${name} serves a version on this network`);
    }
    const policy = config.models[name] ?? { min_tier: 0, redundancy: 1, memory_bytes: 0, gpu: false };
    const redundancy = keyed?.redundancy ?? signed?.redundancy ?? policy.redundancy;
    if (redundancy > config.routing.max_redundancy) {
      throw new GatewayError(
        400,
        "bad_request",
        `redundancy ${redundancy} is above this gateway's maximum of ${config.routing.max_redundancy}`,
      );
    }
    const nowS = Math.floor(Date.now() / 1000);

    let unit: WorkUnitJson;
    let signature: Hex;
    if (custodial !== undefined && keyed !== undefined) {
      const input = Buffer.from(keyed.input, "base64");
      const workUnit: WorkUnit = {
        jobId: `0x${randomBytes(32).toString("hex")}`,
        modelId: model.modelId,
        modelVersion: model.version,
        inputHash: payloadHash(input),
        maxFee: model.price,
        client: custodial.address,
        expiresAt: BigInt(nowS + config.work_unit_ttl_s),
      };
      const facts = await chain.accessFacts(model.modelId, model.access, custodial.address);
      checkAccess(model.access, custodial.address, facts, name);
      signature = await signWorkUnit(custodial, domain, workUnit);
      unit = workUnitJson(workUnit, input);
    } else {
      const s = signed!;
      const w = s.work_unit;
      if (BigInt(w.model_ref.model_id) !== model.modelId) {
        throw new GatewayError(
          400,
          "wrong_model",
          `work_unit.model_ref.model_id is ${w.model_ref.model_id}, but ${name} is model ${model.modelId}`,
        );
      }
      if (BigInt(w.model_ref.version) !== model.version) {
        throw new GatewayError(
          409,
          "wrong_version",
          `${name} serves version ${model.version}; the work unit asks for ${w.model_ref.version}`,
        );
      }
      if (w.max_fee < model.price) {
        throw new GatewayError(402, "fee_too_low", `max_fee ${w.max_fee} is below ${name}'s price ${model.price}`);
      }
      if (w.expires_at <= nowS) {
        throw new GatewayError(
          400,
          "expired",
          `the work unit expired at ${w.expires_at} (now ${nowS}); sign a new one`,
        );
      }
      if (w.input === undefined) {
        throw new GatewayError(400, "missing_input", "work_unit.input is required: the raw input bytes, base64");
      }
      if (payloadHash(Buffer.from(w.input, "base64")) !== w.input_hash) {
        throw new GatewayError(400, "input_hash_mismatch", "work_unit.input_hash is not the sha256 of the input bytes");
      }
      // The node checks the signature is requested_by's; a forged one is refused there, so the
      // access check on requested_by cannot be borrowed by someone else.
      const facts = await chain.accessFacts(model.modelId, model.access, w.requested_by);
      checkAccess(model.access, w.requested_by, facts, name);
      signature = s.client_signature;
      unit = { ...w, max_fee: w.max_fee.toString() };
    }

    lap("workunit");
    if (!nodesLoaded) await refreshNodes();
    const candidates = ranked(model, policy, unit.job_id as Hex);
    const forwardBody = JSON.stringify({ work_unit: unit, client_signature: signature });
    let workUnitHash: Hex | undefined;
    const job: JobTrace = {
      jobId: unit.job_id as Hex,
      workUnitHash: () =>
        (workUnitHash ??= hashWorkUnitFast({
          jobId: unit.job_id as Hex,
          modelId: BigInt(unit.model_ref.model_id),
          modelVersion: BigInt(unit.model_ref.version),
          inputHash: unit.input_hash as Hex,
          maxFee: BigInt(unit.max_fee),
          client: unit.requested_by as Address,
          expiresAt: BigInt(unit.expires_at),
        })),
      signed: () => {
        const { input: _input, ...unitWithoutInput } = unit;
        return { work_unit: unitWithoutInput, client_signature: signature };
      },
    };
    rlog = rlog.child({ model: name, job_id: unit.job_id });
    lap("schedule");
    if (redundancy === 1) {
      const { served, attempts } = await routeOne(candidates, forwardBody, job, rlog);
      lap("upstream");
      if (config.sampling.retain_ms > 0) {
        // Not awaited: the answer does not wait for the keeper's copy; a lost copy is a job not sampled.
        void store
          .recordServed(
            { work_unit: unit, client_signature: signature, proof_of_serving: served.proof, served_at: Date.now() },
            config.sampling.retain_ms,
            config.sampling.stream_max,
          )
          .catch((error: unknown) => rlog.warn({ err: (error as Error).message }, "cannot keep the job for sampling"));
      }
      rlog.debug({ node: served.node, attempts }, "call served");
      return {
        output: served.output,
        job_id: unit.job_id,
        node_id: served.node,
        output_hash: served.outputHash,
        proof_of_serving: served.proof,
        attempts,
      } satisfies InferenceAnswer;
    }
    const q = await routeQuorum(candidates, redundancy, forwardBody, unit, signature, job, rlog);
    rlog.debug(
      { nodes: q.majority.map((m) => m.node), dissenting: q.dissent, attempts: q.attempts },
      "quorum call served",
    );
    return {
      output: q.answer.output,
      job_id: unit.job_id,
      node_id: q.answer.node,
      output_hash: q.answer.outputHash,
      proof_of_serving: q.answer.proof,
      attempts: q.attempts,
      quorum: { redundancy, nodes: q.majority.map((m) => m.node), dissenting: q.dissent, evidence: q.evidence },
    } satisfies InferenceAnswer;
  };

  // ---------------------------------------------------------------- HTTP

  const app = express();
  app.disable("x-powered-by");
  app.disable("etag");
  app.use((req: Request, res: Response, next: NextFunction) => {
    res.locals.log = requestLog(req.headers, res);
    next();
  });
  const sendError = (res: ServerResponse, rlog: CallLog, error: unknown) => {
    const e =
      error instanceof GatewayError
        ? error
        : new GatewayError(500, "internal", "the gateway failed; nothing was served");
    if (!(error instanceof GatewayError)) rlog.error({ err: error }, "unexpected failure");
    sendJson(res, e.status, { error: e.code, reason: e.message }, e.headers);
    return e;
  };

  app.get("/healthz", (_req, res) => {
    const ready = redis.status === "ready" && chain.block >= 0n;
    res.status(ready ? 200 : 503).json({
      status: ready ? "ready" : "degraded",
      redis: redis.status,
      block: chain.block.toString(),
      nodes: nodes.length,
    });
  });
  app.get("/metrics", async (_req, res) => {
    res.type(registry.contentType).send(await registry.metrics());
  });
  app.get("/v1/nodes", (_req, res) => {
    res.json({
      nodes: nodes.map((n) => ({
        ...n,
        stake: n.stake.toString(),
        models: n.models.map(Number),
      })),
    });
  });
  app.post(
    "/v1/heartbeats",
    express.raw({ type: () => true, limit: MAX_HEARTBEAT_BODY }),
    async (req: Request, res: Response) => {
      try {
        const { heartbeat, signed } = await verifySignedHeartbeat(jsonOf(req.body, "{ heartbeat, signature }"), {
          chainId: record.chainId,
          nowMs: Date.now(),
          maxAgeMs: config.heartbeats.max_age_ms,
          maxFutureMs: config.heartbeats.max_future_ms,
        });
        const standing = await chain.node(heartbeat.node);
        if (!standing.registered) {
          throw new GatewayError(
            403,
            "unregistered_node",
            `node ${heartbeat.node} is not registered in NodeStaking (infra node register)`,
          );
        }
        if (!(await store.storeHeartbeat(heartbeat, config.heartbeats.max_age_ms, signed))) {
          throw new GatewayError(
            409,
            "replayed_heartbeat",
            "a heartbeat as new or newer is already stored for this node",
          );
        }
        metrics.heartbeats.inc({ outcome: "stored" });
        res.status(202).json({ accepted: true, node: heartbeat.node });
      } catch (error) {
        metrics.heartbeats.inc({ outcome: error instanceof GatewayError ? error.code : "internal" });
        sendError(res, res.locals.log as CallLog, error);
      }
    },
  );

  /** A call whose body is in hand: served, or answered with the error. */
  const inference = async (name: string, headers: IncomingHttpHeaders, body: unknown, res: ServerResponse) => {
    const started = performance.now();
    const label = MODEL_NAME.test(name) ? name : "invalid";
    const rlog = ((res as Partial<Response>).locals?.log as CallLog | undefined) ?? requestLog(headers, res);
    try {
      const timing: Record<string, number> = {};
      const answer = await serveCall(name, headers, body, rlog, timing);
      // Where the gateway's time went (auth, ratelimit, workunit, schedule, upstream), for
      // operators and the benchmark; no secrets, only durations.
      let serverTiming = "";
      for (const phase in timing) {
        serverTiming += `${serverTiming === "" ? "" : ", "}${phase};dur=${timing[phase]!.toFixed(3)}`;
      }
      metrics.calls.inc({ model: label, outcome: "served" });
      metrics.latency.observe({ model: label }, (performance.now() - started) / 1000);
      sendJson(res, 200, answer, { "server-timing": serverTiming });
    } catch (error) {
      const e = sendError(res, rlog, error);
      metrics.calls.inc({ model: label, outcome: e.code });
    }
  };
  app.post(
    "/inference/v1/model/:name",
    express.raw({ type: () => true, limit: MAX_BODY }),
    (req: Request<{ name: string }>, res: Response) => inference(req.params.name, req.headers, req.body, res),
  );
  app.use((_req: Request, res: Response) => {
    res.status(404).json({
      error: "not_found",
      reason: "routes: POST /inference/v1/model/:name, POST /v1/heartbeats, GET /v1/nodes, GET /healthz, GET /metrics",
    });
  });
  // Body-reading errors (too large, aborted, bad encoding) are the client's: 4xx with the reason.
  app.use((error: Error & { status?: number; type?: string }, _req: Request, res: Response, _next: NextFunction) => {
    const status = error.status !== undefined && error.status >= 400 && error.status < 500 ? error.status : 500;
    sendError(res, res.locals.log as CallLog, new GatewayError(status, error.type ?? "bad_request", error.message));
  });

  // The inference route's fast path, without express: a plain POST to /inference/v1/model/<name>
  // (no content encoding, a body within the limit) is read and served here; anything else, and
  // every other route, goes to the express app above, which serves the same route too.
  const fastPath = (req: IncomingMessage, res: ServerResponse): boolean => {
    const url = req.url ?? "";
    if (req.method !== "POST" || !url.startsWith(INFERENCE_PREFIX)) return false;
    const name = url.slice(INFERENCE_PREFIX.length);
    if (!PLAIN_SEGMENT.test(name)) return false;
    const encoding = req.headers["content-encoding"];
    if (encoding !== undefined && encoding !== "identity") return false;
    const declared = req.headers["content-length"];
    if (declared !== undefined && Number(declared) > MAX_BODY_BYTES) return false;
    const chunks: Buffer[] = [];
    let size = 0;
    let tooLarge = false;
    req.on("data", (chunk: Buffer) => {
      size += chunk.length;
      if (size > MAX_BODY_BYTES) tooLarge = true;
      else chunks.push(chunk);
    });
    req.on("end", () => {
      if (tooLarge) {
        const rlog = requestLog(req.headers, res);
        sendError(res, rlog, new GatewayError(413, "entity.too.large", `request entity too large (over ${MAX_BODY})`));
        return;
      }
      void inference(name, req.headers, chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, size), res);
    });
    req.on("error", () => res.destroy());
    return true;
  };
  const requestLog = (headers: IncomingHttpHeaders, res: ServerResponse): CallLog => {
    const given = headers["x-request-id"];
    const id = typeof given === "string" && REQUEST_ID.test(given) ? given : randomUUID();
    res.setHeader("x-request-id", id);
    return new LazyLog(log, [{ request_id: id }]);
  };

  const server: Server = await new Promise<Server>((resolve, reject) => {
    const s = createServer((req, res) => {
      if (!fastPath(req, res)) app(req, res);
    });
    s.once("error", reject);
    s.listen(config.listen.port, config.listen.host, () => {
      s.off("error", reject);
      resolve(s);
    });
  }).catch((error: unknown) => {
    chain.stop();
    redis.disconnect();
    throw new GatewayStartError(`cannot listen on ${config.listen.host}:${config.listen.port}`, { cause: error });
  });
  server.keepAliveTimeout = 65_000;
  const address = server.address();
  const url = typeof address === "object" && address !== null ? `http://${config.listen.host}:${address.port}` : "";
  log.info({ url, chain: record.chainId, keys: keys.size }, "gateway ready");

  return {
    url,
    domain,
    store,
    chain,
    refreshNodes,
    async stop() {
      stopping = true;
      if (refreshTimer !== undefined) clearTimeout(refreshTimer);
      chain.stop();
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
      await limiter.close().catch(() => undefined);
      await store.flushWrites();
      redis.disconnect();
    },
  };
}
