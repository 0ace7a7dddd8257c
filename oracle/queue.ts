// The verification queue: BullMQ on Redis, one job per receipt with the receipt's job id as the
// BullMQ job id, so a receipt enqueued twice (a retry, the sweeper) is one job. The database is
// the source of truth: Redis may lose everything (a restart without persistence) without losing a
// receipt, since the sweeper puts every receipt still `queued` in the database back on the queue.
import { Queue } from "bullmq";
import { Redis } from "ioredis";

/** The receipt travels with the job so the worker need not read it back; the database still decides. */
export interface ReceiptJobData {
  jobId: string;
  body: Record<string, unknown>;
  receivedAt: number;
}

export interface ReceiptQueue {
  readonly queue: Queue<ReceiptJobData>;
  /** True when Redis answers PING. */
  ping(): Promise<boolean>;
  /** Adds jobs; adds made in the same tick go to Redis as one addBulk. */
  enqueue(job: ReceiptJobData): Promise<void>;
  enqueueMany(jobs: readonly ReceiptJobData[]): Promise<void>;
  close(): Promise<void>;
}

/** Attempts before a job gives up (it stays `queued` in the database and the sweeper retries later). */
export const JOB_ATTEMPTS = 5;

export function redisConnection(url: string, forWorker: boolean): Redis {
  return new Redis(url, {
    // Workers must wait through outages (BullMQ requires null); producers fail fast instead, so an
    // API request never hangs on a dead Redis: the receipt is already durable, the sweeper enqueues it.
    maxRetriesPerRequest: forWorker ? null : 1,
    enableOfflineQueue: forWorker,
    connectTimeout: 2_000,
    retryStrategy: (times) => Math.min(times * 100, 1_000),
  });
}

export function createReceiptQueue(redisUrl: string, name: string): ReceiptQueue {
  const connection = redisConnection(redisUrl, false);
  connection.on("error", () => {}); // reported through failed adds and /readyz
  const queue = new Queue<ReceiptJobData>(name, { connection });
  queue.on("error", () => {});
  let pending: { job: ReceiptJobData; resolve: () => void; reject: (e: unknown) => void }[] = [];
  let scheduled = false;

  const flush = async () => {
    scheduled = false;
    const batch = pending;
    pending = [];
    const unique = [...new Map(batch.map((p) => [p.job.jobId, p.job])).values()];
    try {
      await queue.addBulk(
        unique.map((job) => ({
          name: "verify",
          data: job,
          opts: {
            jobId: job.jobId,
            attempts: JOB_ATTEMPTS,
            backoff: { type: "exponential", delay: 200 },
            removeOnComplete: true,
            removeOnFail: true,
          },
        })),
      );
      for (const p of batch) p.resolve();
    } catch (error) {
      for (const p of batch) p.reject(error);
    }
  };

  const enqueue = (job: ReceiptJobData) =>
    new Promise<void>((resolve, reject) => {
      pending.push({ job, resolve, reject });
      if (!scheduled) {
        scheduled = true;
        setImmediate(() => void flush());
      }
    });

  return {
    queue,
    ping: () =>
      connection
        .ping()
        .then((r) => r === "PONG")
        .catch(() => false),
    enqueue,
    async enqueueMany(jobs) {
      await Promise.all(jobs.map(enqueue));
    },
    async close() {
      await queue.close().catch(() => {});
      connection.disconnect();
    },
  };
}
