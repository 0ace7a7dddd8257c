// Verification workers: take a receipt id off the queue, read the receipt from the database,
// apply the rules and record the verdict. The verdict write only changes a `queued` row, so a job
// run twice (a stalled job retried after its worker died, a duplicate enqueue) records one verdict.
// A chain read that fails throws: BullMQ retries the job, and the receipt stays `queued`.
import { Worker } from "bullmq";
import type { Logger } from "pino";
import type { TypedDataDomain } from "viem";

import { receiptJsonSchema } from "../sdk/receipt.ts";
import type { OracleChain } from "./chain.ts";
import type { OracleMetrics } from "./metrics.ts";
import { type ReceiptJobData, redisConnection } from "./queue.ts";
import { type ZkVerifierRegistry, checkEscrow, verifyReceipt } from "./rules/index.ts";
import type { OracleStore } from "./store/store.ts";

export interface VerifierDeps {
  store: OracleStore;
  chain: OracleChain;
  domain: TypedDataDomain;
  zk: ZkVerifierRegistry;
  expiryGraceSeconds: number;
  minTier: number;
  metrics?: OracleMetrics;
  /** Called after a verdict is durably recorded (benchmarks time it). */
  onVerdict?: (jobId: string, status: "verified" | "rejected") => void;
}

/** Verifies one stored receipt and records the verdict. Returns the status written (null: already decided). */
export async function verifyStoredReceipt(deps: VerifierDeps, jobId: string): Promise<string | null> {
  const stored = await deps.store.getReceipt(jobId);
  if (stored === undefined || stored.status !== "queued") return null;
  // The stored body passed this schema at the API; parsing again gives the typed, normalised form.
  const receipt = receiptJsonSchema.parse(stored.body);
  const block = await deps.chain.block();
  const verdict = await verifyReceipt(receipt, {
    domain: deps.domain,
    receivedAt: stored.receivedAt,
    expiryGraceSeconds: deps.expiryGraceSeconds,
    minTier: deps.minTier,
    zk: deps.zk,
    facts: async (r) => {
      const [node, model] = await Promise.all([
        deps.chain.nodeFacts(r.proof_of_serving.node_id, block),
        deps.chain.modelFacts(BigInt(r.work_unit.model_ref.model_id), BigInt(r.work_unit.model_ref.version), block),
      ]);
      return { node, model };
    },
  });
  if (!verdict.ok) {
    const written = await deps.store.markRejected(jobId, verdict.rejection);
    if (!written) return null;
    deps.metrics?.verdicts.inc({ status: "rejected", reason: verdict.rejection.code });
    deps.onVerdict?.(jobId, "rejected");
    return "rejected";
  }
  const client = receipt.work_unit.requested_by;
  const balance = await deps.chain.escrowBalance(client, block);
  const status = await deps.store.markVerified(
    jobId,
    { client, fee: verdict.fee, publisher: verdict.publisher, escrowBalance: balance },
    (pending) => checkEscrow(client, balance, pending, verdict.fee),
  );
  if (status !== null) {
    deps.metrics?.verdicts.inc({ status, reason: status === "rejected" ? "insufficient_escrow" : "" });
    deps.onVerdict?.(jobId, status);
  }
  return status;
}

export function startWorkers(
  deps: VerifierDeps & { redisUrl: string; queueName: string; concurrency: number; logger: Logger },
): { worker: Worker<ReceiptJobData>; close(): Promise<void> } {
  const connection = redisConnection(deps.redisUrl, true);
  connection.on("error", () => {});
  const worker = new Worker<ReceiptJobData>(
    deps.queueName,
    async (job) => {
      await verifyStoredReceipt(deps, job.data.jobId);
    },
    {
      connection,
      concurrency: deps.concurrency,
      // A worker killed mid-job: its lock lapses and another worker takes the job again.
      lockDuration: 10_000,
      stalledInterval: 5_000,
      maxStalledCount: 10,
    },
  );
  worker.on("failed", (job, error) =>
    deps.logger.warn({ jobId: job?.data.jobId, err: error.message }, "verification attempt failed; will retry"),
  );
  worker.on("error", (error) => deps.logger.warn({ err: error.message }, "worker connection error"));
  return {
    worker,
    async close() {
      await worker.close().catch(() => {});
      connection.disconnect();
    },
  };
}
