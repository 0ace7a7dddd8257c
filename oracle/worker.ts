// Verification workers: take a receipt off the queue, apply the rules and record the verdict. The
// verdict write only changes a `queued` row, so a job run twice (a stalled job retried after its
// worker died, a duplicate enqueue) records one verdict. Verdicts of concurrent jobs are written
// together in one transaction (oracle/batcher.ts). A chain read that fails throws: BullMQ retries
// the job, and the receipt stays `queued`.
import { Worker } from "bullmq";
import type { Logger } from "pino";
import type { TypedDataDomain } from "viem";

import { receiptJsonSchema } from "../sdk/receipt.ts";
import { batcher } from "./batcher.ts";
import type { OracleChain } from "./chain.ts";
import type { OracleMetrics } from "./metrics.ts";
import { type ReceiptJobData, redisConnection } from "./queue.ts";
import { type ZkVerifierRegistry, verifyReceipt } from "./rules/index.ts";
import type { OracleStore, QueuedReceipt, Verdict } from "./store/store.ts";

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

/** Applies every rule to a queued receipt: the verdict, not yet recorded. */
export async function judge(deps: VerifierDeps, queued: QueuedReceipt): Promise<Verdict> {
  // The body passed this schema at the API; parsing again gives the typed, normalised form.
  const parsed = receiptJsonSchema.safeParse(queued.body);
  if (!parsed.success) throw new Error(`stored receipt ${queued.jobId} no longer parses`);
  const receipt = parsed.data;
  const block = await deps.chain.block();
  const verdict = await verifyReceipt(receipt, {
    domain: deps.domain,
    receivedAt: queued.receivedAt,
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
  if (!verdict.ok) return { jobId: queued.jobId, ok: false, rejection: verdict.rejection };
  const client = receipt.work_unit.requested_by;
  return {
    jobId: queued.jobId,
    ok: true,
    client,
    fee: verdict.fee,
    publisher: verdict.publisher,
    escrowBalance: await deps.chain.escrowBalance(client, block),
  };
}

/** Verifies receipts and records their verdicts in group-committed transactions. */
export function verifier(deps: VerifierDeps): (queued: QueuedReceipt) => Promise<"verified" | "rejected" | null> {
  const record = batcher((verdicts: Verdict[]) => deps.store.recordVerdicts(verdicts));
  return async (queued) => {
    const verdict = await judge(deps, queued);
    const status = await record(verdict);
    if (status !== null) {
      deps.metrics?.verdicts.inc({
        status,
        reason: verdict.ok ? (status === "rejected" ? "insufficient_escrow" : "") : verdict.rejection.code,
      });
      deps.onVerdict?.(queued.jobId, status);
    }
    return status;
  };
}

export function startWorkers(
  deps: VerifierDeps & { redisUrl: string; queueName: string; concurrency: number; logger: Logger },
): { worker: Worker<ReceiptJobData>; close(): Promise<void> } {
  const connection = redisConnection(deps.redisUrl, true);
  connection.on("error", () => {});
  const verify = verifier(deps);
  const worker = new Worker<ReceiptJobData>(
    deps.queueName,
    async (job) => {
      await verify(job.data);
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
