// The oracle's HTTP API (express 5). Every malformed request gets a 4xx JSON {error, reason};
// a 5xx means only that the oracle itself cannot work right now (database down). POST
// /v1/receipts answers 202 only after the receipt is recorded in the database, so a crash after
// the answer loses nothing.
import { randomUUID } from "node:crypto";
import type { Server } from "node:http";

import express, { type NextFunction, type Request, type Response } from "express";
import type { Logger } from "pino";
import { getAddress, sha256, stringToHex } from "viem";

import { buildEarningsTree } from "../sdk/earnings.ts";
import { addressSchema, bytes32Schema, receiptJsonSchema, type Receipt } from "../sdk/receipt.ts";
import { describeIssues } from "./config.ts";
import { EpochError } from "./errors.ts";
import type { OracleMetrics } from "./metrics.ts";
import { closeRequestSchema, epochNumberSchema, openApiDocument, signRequestSchema } from "./openapi.ts";
import type { ReceiptQueue } from "./queue.ts";
import { checkInputHash } from "./rules/receipt.ts";
import { batcher } from "./batcher.ts";
import { canonicalJson } from "./settlement/builder.ts";
import type { EpochRow, NewReceipt, OracleStore, StoredReceipt } from "./store/store.ts";

export interface ApiDeps {
  store: OracleStore;
  queue: ReceiptQueue;
  logger: Logger;
  metrics: OracleMetrics;
  bodyLimitBytes: number;
  adminToken?: string | undefined;
  /** Closes (or drives) the epoch; absent when this process runs no settlement. */
  closeEpoch?: (epoch?: bigint) => Promise<EpochRow>;
  /** Committee follower: checks a proposed settlement and signs it. */
  signEpoch?: (epoch: bigint, request: unknown) => Promise<{ signer: string; signature: string }>;
  ready: () => Promise<boolean>;
  /** The receipt batch named by its sha256 (64 hex, no 0x), when this oracle holds it. */
  readBatch?: (sha256: string) => Promise<Uint8Array | undefined>;
  /** Unix seconds now (tests move the clock). */
  now?: () => number;
}

/** A request the API refuses: status, code, reason. */
export class ApiError extends Error {
  readonly status: number;
  readonly code: string;
  constructor(status: number, code: string, reason: string) {
    super(reason);
    this.status = status;
    this.code = code;
  }
}

function receiptStatus(r: StoredReceipt) {
  return {
    job_id: r.jobId,
    status: r.status,
    reason_code: r.reasonCode,
    reason: r.reason,
    fee: r.fee?.toString() ?? null,
    epoch: r.epoch?.toString() ?? null,
  };
}

function epochJson(e: EpochRow) {
  return {
    epoch: e.epoch.toString(),
    state: e.state,
    settlement: e.settlement,
    batch_sha256: e.batchSha256,
    debits: e.debits,
    tx_hash: e.txHash,
    signatures: e.signatures?.length ?? 0,
    last_error: e.lastError,
  };
}

/**
 * The stored form of a receipt: the validated wire JSON, normalised (checksummed addresses,
 * lowercase hex), without the raw input (its hash is what was signed) — except with a zk proof,
 * whose check needs the input and output bytes the proof binds.
 */
export function storedBody(receipt: Receipt): Record<string, unknown> {
  const { input, ...workUnit } = receipt.work_unit;
  const zk = receipt.zk_proof;
  return {
    work_unit: {
      ...workUnit,
      max_fee: workUnit.max_fee.toString(),
      ...(zk !== undefined && input !== undefined ? { input } : {}),
    },
    client_signature: receipt.client_signature,
    proof_of_serving: receipt.proof_of_serving,
    ...(zk === undefined ? {} : { zk_proof: zk }),
    ...(zk !== undefined && receipt.output !== undefined ? { output: receipt.output } : {}),
  };
}

export function createApi(deps: ApiDeps): express.Express {
  const app = express();
  app.disable("x-powered-by");
  app.set("query parser", "simple");
  const now = deps.now ?? (() => Math.floor(Date.now() / 1000));
  // Concurrent submissions are recorded by one INSERT (group commit): each still answers only
  // after its own row is durable.
  const insert = batcher((rs: NewReceipt[]) => deps.store.insertReceipts(rs));

  app.use((req: Request, res: Response, next: NextFunction) => {
    const header = req.get("x-request-id");
    const id = header !== undefined && /^[A-Za-z0-9._-]{1,64}$/.test(header) ? header : randomUUID();
    res.locals.requestId = id;
    res.setHeader("x-request-id", id);
    const started = process.hrtime.bigint();
    res.on("finish", () => {
      const seconds = Number(process.hrtime.bigint() - started) / 1e9;
      const route = (req.route?.path as string | undefined) ?? "unmatched";
      deps.metrics.http.observe({ method: req.method, route, status: String(res.statusCode) }, seconds);
      // Method, route and status only: no bodies, no headers, so no keys or tokens reach the logs.
      deps.logger.debug(
        { reqId: id, method: req.method, route, status: res.statusCode, ms: Math.round(seconds * 1000) },
        "request",
      );
    });
    next();
  });

  const jsonBody = express.json({ limit: deps.bodyLimitBytes, strict: true, type: () => true });
  const requireJson = (req: Request, _res: Response, next: NextFunction) => {
    if (!req.is("application/json"))
      return next(
        new ApiError(415, "unsupported_media_type", "send the body as JSON with content-type: application/json"),
      );
    next();
  };

  app.post("/v1/receipts", requireJson, jsonBody, async (req, res) => {
    const parsed = receiptJsonSchema.safeParse(req.body);
    if (!parsed.success) {
      deps.metrics.received.inc({ outcome: "invalid" });
      throw new ApiError(400, "invalid_receipt", describeIssues(parsed.error));
    }
    const receipt: Receipt = parsed.data;
    const body = storedBody(receipt);
    const bodySha256 = sha256(stringToHex(canonicalJson(body)));
    const rejection = checkInputHash(receipt);
    const receivedAt = now();
    const result = await insert({
      jobId: receipt.work_unit.job_id,
      body,
      bodySha256,
      client: receipt.work_unit.requested_by,
      node: receipt.proof_of_serving.node_id,
      modelId: receipt.work_unit.model_ref.model_id,
      modelVersion: receipt.work_unit.model_ref.version,
      receivedAt,
      ...(rejection ? { rejection } : {}),
    });
    if (!result.inserted) {
      if (result.existing.bodySha256 === bodySha256) {
        deps.metrics.received.inc({ outcome: "repeat" });
        res.status(200).json(receiptStatus(result.existing));
        return;
      }
      deps.metrics.received.inc({ outcome: "duplicate_job" });
      throw new ApiError(
        409,
        "duplicate_job",
        `job ${receipt.work_unit.job_id} was already submitted with a different receipt; a job id is paid at most once`,
      );
    }
    deps.metrics.received.inc({ outcome: rejection ? "rejected" : "queued" });
    if (!rejection) {
      // The receipt is durable already: if Redis is down, the sweeper enqueues it later.
      await deps.queue.enqueue({ jobId: receipt.work_unit.job_id, body, receivedAt }).catch((error: unknown) => {
        deps.logger.warn({ reqId: res.locals.requestId, err: String(error) }, "enqueue failed; the sweeper retries");
      });
    }
    res.status(rejection ? 200 : 202).json({
      job_id: receipt.work_unit.job_id,
      status: rejection ? "rejected" : "queued",
      reason_code: rejection?.code ?? null,
      reason: rejection?.message ?? null,
      fee: null,
      epoch: null,
    });
  });

  app.get("/v1/receipts/:jobId", async (req, res) => {
    const jobId = bytes32Schema.safeParse(req.params.jobId);
    if (!jobId.success) throw new ApiError(400, "invalid_job_id", "a job id is 0x followed by 64 hex digits");
    const stored = await deps.store.getReceipt(jobId.data);
    if (stored === undefined) throw new ApiError(404, "unknown_job", `no receipt for job ${jobId.data}`);
    res.json(receiptStatus(stored));
  });

  // The body is optional: none (or {}) closes the open epoch; { "epoch": "N" } closes N only if it
  // is still the open one, else reports N's state, so a keeper repeating the call is a no-op.
  const closeBody = express.json({ limit: 1024, strict: true, type: () => true });
  // The token is checked before the body is read: without it, nothing about the body is answered.
  const requireAdmin = async (req: Request, _res: Response, next: NextFunction) => {
    if (deps.adminToken === undefined || deps.closeEpoch === undefined)
      throw new ApiError(
        403,
        "disabled",
        "epoch close is disabled on this process (no adminToken or no settlement role)",
      );
    const auth = req.get("authorization");
    if (auth === undefined) throw new ApiError(401, "unauthorized", "send Authorization: Bearer <admin token>");
    const given = Buffer.from(auth);
    const expected = Buffer.from(`Bearer ${deps.adminToken}`);
    const { timingSafeEqual } = await import("node:crypto");
    if (given.length !== expected.length || !timingSafeEqual(given, expected))
      throw new ApiError(403, "forbidden", "wrong admin token");
    next();
  };
  app.post("/v1/epochs/close", requireAdmin, closeBody, async (req, res) => {
    const body = closeRequestSchema.safeParse(req.body ?? {});
    if (!body.success)
      throw new ApiError(400, "invalid_request", `${describeIssues(body.error)}: send {} or {"epoch": "<n>"}`);
    const epoch = body.data.epoch === undefined ? undefined : BigInt(body.data.epoch);
    res.json(epochJson(await deps.closeEpoch!(epoch)));
  });

  app.post("/v1/epochs/:n/sign", requireJson, jsonBody, async (req, res) => {
    const n = epochNumberSchema.safeParse(req.params.n);
    if (!n.success) throw new ApiError(400, "invalid_epoch", "an epoch is a non-negative integer");
    if (deps.signEpoch === undefined) throw new ApiError(403, "disabled", "this process does not sign settlements");
    const body = signRequestSchema.safeParse(req.body);
    if (!body.success) throw new ApiError(400, "invalid_sign_request", describeIssues(body.error));
    res.json(await deps.signEpoch(BigInt(n.data), body.data));
  });

  app.get("/v1/epochs/:n", async (req, res) => {
    const n = epochNumberSchema.safeParse(req.params.n);
    if (!n.success) throw new ApiError(400, "invalid_epoch", "an epoch is a non-negative integer");
    const epoch = await deps.store.getEpoch(BigInt(n.data));
    if (epoch === undefined) throw new ApiError(404, "unknown_epoch", `this oracle has no record of epoch ${n.data}`);
    res.json(epochJson(epoch));
  });

  // An auditor's fallback when no blob peer serves an epoch's batch; the auditor checks its sha256.
  app.get("/v1/epochs/:n/batch", async (req, res) => {
    const n = epochNumberSchema.safeParse(req.params.n);
    if (!n.success) throw new ApiError(400, "invalid_epoch", "an epoch is a non-negative integer");
    const epoch = await deps.store.getEpoch(BigInt(n.data));
    if (epoch === undefined) throw new ApiError(404, "unknown_epoch", `this oracle has no record of epoch ${n.data}`);
    const hash = epoch.batchSha256;
    const bytes = hash === null ? undefined : await deps.readBatch?.(hash.slice(2));
    if (bytes === undefined)
      throw new ApiError(404, "no_batch", `this oracle holds no receipt batch of epoch ${n.data}`);
    res.type("application/x-ndjson").send(Buffer.from(bytes));
  });

  // What an account passes to RewardClaims.claim: its cumulative amount up to epoch n and the proof.
  app.get("/v1/epochs/:n/claims/:account", async (req, res) => {
    const n = epochNumberSchema.safeParse(req.params.n);
    if (!n.success) throw new ApiError(400, "invalid_epoch", "an epoch is a non-negative integer");
    const account = addressSchema.safeParse(req.params.account);
    if (!account.success) throw new ApiError(400, "invalid_account", "an account is 0x followed by 40 hex digits");
    const epoch = await deps.store.getEpoch(BigInt(n.data));
    if (epoch === undefined) throw new ApiError(404, "unknown_epoch", `this oracle has no record of epoch ${n.data}`);
    const earnings = epoch.earnings ?? [];
    const entry = earnings.find((e) => getAddress(e.account) === account.data);
    if (entry === undefined) {
      throw new ApiError(404, "no_earnings", `${account.data} has no earnings up to epoch ${n.data}`);
    }
    const tree = buildEarningsTree(
      earnings.map((e) => ({ account: getAddress(e.account), cumulativeAmount: BigInt(e.cumulativeAmount) })),
    );
    res.json({
      epoch: n.data.toString(),
      state: epoch.state,
      account: account.data,
      cumulative_amount: entry.cumulativeAmount,
      earnings_root: tree.root,
      proof: tree.proof(account.data),
    });
  });

  app.get("/v1/stats", async (_req, res) => {
    res.json({ receipts: await deps.store.countByStatus() });
  });

  app.get("/healthz", (_req, res) => {
    res.json({ ok: true });
  });

  app.get("/readyz", async (_req, res) => {
    const ready = await deps.ready().catch(() => false);
    res
      .status(ready ? 200 : 503)
      .json(ready ? { ready: true } : { error: "not_ready", reason: "database or Redis unreachable" });
  });

  app.get("/metrics", async (_req, res) => {
    res.type(deps.metrics.registry.contentType).send(await deps.metrics.registry.metrics());
  });

  const openapi = openApiDocument();
  app.get("/openapi.json", (_req, res) => {
    res.json(openapi);
  });

  app.use((req: Request) => {
    throw new ApiError(404, "not_found", `no route ${req.method} ${req.path}; see /openapi.json`);
  });

  // express 5 forwards rejected promises here. Body-parser errors carry a 4xx status.
  app.use((error: unknown, _req: Request, res: Response, _next: NextFunction) => {
    if (res.headersSent) return;
    if (error instanceof ApiError) {
      res.status(error.status).json({ error: error.code, reason: error.message });
      return;
    }
    if (error instanceof EpochError) {
      res.status(409).json({ error: error.code, reason: error.message });
      return;
    }
    const e = error as { status?: number; type?: string; message?: string };
    if (typeof e.status === "number" && e.status >= 400 && e.status < 500) {
      const reason =
        e.type === "entity.too.large"
          ? `the body is larger than ${deps.bodyLimitBytes} bytes`
          : e.type === "entity.parse.failed"
            ? "the body is not valid JSON"
            : e.type === "encoding.unsupported" || e.type === "charset.unsupported"
              ? "send the body as UTF-8 JSON"
              : (e.message ?? "bad request");
      res.status(e.status).json({ error: e.type?.replace(/\./g, "_") ?? "bad_request", reason });
      return;
    }
    deps.logger.error({ reqId: res.locals.requestId, err: String(error) }, "request failed");
    res.status(503).json({ error: "unavailable", reason: "the oracle cannot serve this now; retry later" });
  });
  return app;
}

export function listen(app: express.Express, host: string, port: number): Promise<Server> {
  return new Promise((resolve, reject) => {
    const server = app.listen(port, host, (error?: Error) => (error ? reject(error) : resolve(server)));
    server.keepAliveTimeout = 65_000;
  });
}
