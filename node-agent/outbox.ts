// The receipt outbox: every receipt the agent signs is written here, in the same statement that
// claims its job id, before the client sees an answer; a sender then delivers it to every
// configured oracle and records the outcome per oracle. PGlite in the data dir by default (one
// process, files on disk, survives kill -9), PostgreSQL when DATABASE_URL is set — the same SQL.
//
// Delivery is at least once: a crash between the oracle's 202 and our "delivered" mark resends
// the receipt, which the oracle answers 409 (a job id is accepted once) and we count as delivered.
// A job id is signed at most once: the primary key refuses a second receipt for it.
import { mkdir } from "node:fs/promises";
import path from "node:path";

import type { Logger } from "pino";

/** The slice of a SQL client both PGlite and `pg.Pool` offer. */
export interface SqlClient {
  query<T>(text: string, params?: unknown[]): Promise<{ rows: T[] }>;
  close(): Promise<void>;
}

export type DeliveryState = "pending" | "delivered" | "rejected";

export interface Delivery {
  jobId: string;
  oracle: string;
  state: DeliveryState;
  attempts: number;
  nextAttemptAt: number;
  lastError: string | null;
}

/** What one POST to an oracle led to. Pure. */
export type DeliveryOutcome =
  { kind: "delivered" } | { kind: "rejected"; reason: string } | { kind: "retry"; reason: string };

/**
 * Classifies an oracle's answer: 2xx and 409 (already has this job id) are delivered; any other
 * 4xx is a permanent rejection; 5xx and anything else is retried. Pure.
 */
export function classifyOracleAnswer(status: number, body: string): DeliveryOutcome {
  if ((status >= 200 && status < 300) || status === 409) return { kind: "delivered" };
  const reason = `${status} ${body.slice(0, 500)}`.trim();
  if (status >= 400 && status < 500 && status !== 408 && status !== 429) return { kind: "rejected", reason };
  return { kind: "retry", reason };
}

/** Wait before retry number `attempts` (1-based): 0.5 s doubling, at most 60 s. Pure. */
export function retryDelayMs(attempts: number): number {
  return Math.min(60_000, 500 * 2 ** Math.max(0, attempts - 1));
}

const SCHEMA = `
CREATE TABLE IF NOT EXISTS outbox_receipts (
  job_id TEXT PRIMARY KEY,
  receipt TEXT NOT NULL,
  created_at BIGINT NOT NULL
);
CREATE TABLE IF NOT EXISTS outbox_deliveries (
  job_id TEXT NOT NULL REFERENCES outbox_receipts (job_id),
  oracle TEXT NOT NULL,
  state TEXT NOT NULL CHECK (state IN ('pending', 'delivered', 'rejected')),
  attempts INTEGER NOT NULL DEFAULT 0,
  next_attempt_at BIGINT NOT NULL,
  last_error TEXT,
  PRIMARY KEY (job_id, oracle)
);
CREATE INDEX IF NOT EXISTS outbox_deliveries_due ON outbox_deliveries (state, next_attempt_at);
`;

/** Opens the outbox database: PostgreSQL at `databaseUrl`, else PGlite under `dataDir/outbox`. */
export async function openOutboxDatabase(dataDir: string, databaseUrl?: string): Promise<SqlClient> {
  let client: SqlClient;
  if (databaseUrl !== undefined && databaseUrl !== "") {
    const { default: pg } = await import("pg");
    const pool = new pg.Pool({ connectionString: databaseUrl, max: 4 });
    client = {
      query: async <T>(text: string, params?: unknown[]) => ({ rows: (await pool.query(text, params)).rows as T[] }),
      close: () => pool.end(),
    };
  } else {
    const { PGlite } = await import("@electric-sql/pglite");
    const dir = path.join(dataDir, "outbox");
    await mkdir(dir, { recursive: true });
    const db = await PGlite.create(dir);
    client = {
      query: async <T>(text: string, params?: unknown[]) => ({ rows: (await db.query<T>(text, params)).rows }),
      close: () => db.close(),
    };
  }
  for (const statement of SCHEMA.split(";").map((s) => s.trim())) {
    if (statement !== "") await client.query(statement);
  }
  return client;
}

interface DeliveryRow {
  job_id: string;
  oracle: string;
  state: DeliveryState;
  attempts: number;
  next_attempt_at: string | number;
  last_error: string | null;
}

const toDelivery = (row: DeliveryRow): Delivery => ({
  jobId: row.job_id,
  oracle: row.oracle,
  state: row.state,
  attempts: Number(row.attempts),
  nextAttemptAt: Number(row.next_attempt_at),
  lastError: row.last_error,
});

export class Outbox {
  readonly db: SqlClient;
  readonly oracles: readonly string[];

  constructor(db: SqlClient, oracles: readonly string[]) {
    if (oracles.length === 0) throw new Error("the outbox needs at least one oracle");
    this.db = db;
    this.oracles = oracles;
  }

  /**
   * Records a signed receipt and a pending delivery to each oracle, in one statement (atomic in
   * PostgreSQL and PGlite alike). Returns false when the job id already has a receipt.
   */
  async add(jobId: string, receiptJson: string, now: number): Promise<boolean> {
    const { rows } = await this.db.query<{ job_id: string }>(
      `WITH r AS (
         INSERT INTO outbox_receipts (job_id, receipt, created_at) VALUES ($1, $2, $3)
         ON CONFLICT (job_id) DO NOTHING RETURNING job_id
       )
       INSERT INTO outbox_deliveries (job_id, oracle, state, attempts, next_attempt_at)
       SELECT r.job_id, o, 'pending', 0, $3 FROM r, unnest($4::text[]) AS o
       RETURNING job_id`,
      [jobId, receiptJson, now, this.oracles],
    );
    return rows.length > 0;
  }

  async has(jobId: string): Promise<boolean> {
    const { rows } = await this.db.query(`SELECT 1 FROM outbox_receipts WHERE job_id = $1`, [jobId]);
    return rows.length > 0;
  }

  async receipt(jobId: string): Promise<string | undefined> {
    const { rows } = await this.db.query<{ receipt: string }>(`SELECT receipt FROM outbox_receipts WHERE job_id = $1`, [
      jobId,
    ]);
    return rows[0]?.receipt;
  }

  /** Pending deliveries due at `now`, oldest first. Only to oracles still configured. */
  async due(now: number, limit: number): Promise<(Delivery & { receipt: string })[]> {
    const { rows } = await this.db.query<DeliveryRow & { receipt: string }>(
      `SELECT d.job_id, d.oracle, d.state, d.attempts, d.next_attempt_at, d.last_error, r.receipt
         FROM outbox_deliveries d JOIN outbox_receipts r USING (job_id)
        WHERE d.state = 'pending' AND d.next_attempt_at <= $1 AND d.oracle = ANY($2::text[])
        ORDER BY d.next_attempt_at, d.job_id LIMIT $3`,
      [now, this.oracles, limit],
    );
    return rows.map((row) => ({ ...toDelivery(row), receipt: row.receipt }));
  }

  /** Records what a delivery attempt led to. */
  async record(delivery: Delivery, outcome: DeliveryOutcome, now: number): Promise<void> {
    const attempts = delivery.attempts + 1;
    if (outcome.kind === "retry") {
      await this.db.query(
        `UPDATE outbox_deliveries SET attempts = $3, next_attempt_at = $4, last_error = $5
          WHERE job_id = $1 AND oracle = $2`,
        [delivery.jobId, delivery.oracle, attempts, now + retryDelayMs(attempts), outcome.reason],
      );
      return;
    }
    await this.db.query(
      `UPDATE outbox_deliveries SET state = $3, attempts = $4, last_error = $5 WHERE job_id = $1 AND oracle = $2`,
      [delivery.jobId, delivery.oracle, outcome.kind, attempts, outcome.kind === "rejected" ? outcome.reason : null],
    );
  }

  /** Every delivery of `jobId`. */
  async deliveries(jobId: string): Promise<Delivery[]> {
    const { rows } = await this.db.query<DeliveryRow>(
      `SELECT job_id, oracle, state, attempts, next_attempt_at, last_error FROM outbox_deliveries
        WHERE job_id = $1 ORDER BY oracle`,
      [jobId],
    );
    return rows.map(toDelivery);
  }

  /** Counts of deliveries by state. */
  async counts(): Promise<Record<DeliveryState, number>> {
    const { rows } = await this.db.query<{ state: DeliveryState; n: string | number }>(
      `SELECT state, count(*) AS n FROM outbox_deliveries GROUP BY state`,
    );
    const counts: Record<DeliveryState, number> = { pending: 0, delivered: 0, rejected: 0 };
    for (const row of rows) counts[row.state] = Number(row.n);
    return counts;
  }
}

/** Posts due receipts to the oracles until stopped; `wake()` after adding one to send it at once. */
export class OutboxSender {
  #outbox: Outbox;
  #log: Logger;
  #timer: NodeJS.Timeout | null = null;
  #running: Promise<void> | null = null;
  #again = false;
  #stopped = false;
  #soon: NodeJS.Timeout | null = null;
  readonly pollMs: number;
  readonly requestTimeoutMs: number;
  onDelivered: ((delivery: Delivery, outcome: DeliveryOutcome) => void) | undefined;

  constructor(outbox: Outbox, log: Logger, options: { pollMs?: number; requestTimeoutMs?: number } = {}) {
    this.#outbox = outbox;
    this.#log = log.child({ part: "outbox" });
    this.pollMs = options.pollMs ?? 500;
    this.requestTimeoutMs = options.requestTimeoutMs ?? 10_000;
  }

  start(): void {
    this.#stopped = false;
    this.wake();
  }

  /**
   * Runs a pass soon: wakes within `batchMs` coalesce into one pass, so a busy node sends receipts
   * in batches instead of querying the outbox once per job.
   */
  wakeSoon(batchMs = 25): void {
    if (this.#stopped || this.#running !== null || this.#soon !== null) {
      if (this.#running !== null) this.#again = true;
      return;
    }
    this.#soon = setTimeout(() => {
      this.#soon = null;
      this.wake();
    }, batchMs);
  }

  /** Runs a pass now (or right after the current one). */
  wake(): void {
    if (this.#stopped) return;
    if (this.#running !== null) {
      this.#again = true;
      return;
    }
    if (this.#timer !== null) clearTimeout(this.#timer);
    this.#timer = null;
    this.#running = this.#pass()
      .catch((error: unknown) => this.#log.error({ err: error }, "outbox pass failed"))
      .finally(() => {
        this.#running = null;
        if (this.#stopped) return;
        if (this.#again) {
          this.#again = false;
          this.wake();
        } else {
          this.#timer = setTimeout(() => this.wake(), this.pollMs);
        }
      });
  }

  async #pass(): Promise<void> {
    for (;;) {
      const due = await this.#outbox.due(Date.now(), 64);
      if (due.length === 0 || this.#stopped) return;
      await Promise.all(due.map((delivery) => this.#deliver(delivery)));
    }
  }

  async #deliver(delivery: Delivery & { receipt: string }): Promise<void> {
    let outcome: DeliveryOutcome;
    try {
      const response = await fetch(`${delivery.oracle}/v1/receipts`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: delivery.receipt,
        signal: AbortSignal.timeout(this.requestTimeoutMs),
      });
      outcome = classifyOracleAnswer(response.status, await response.text());
    } catch (error) {
      outcome = { kind: "retry", reason: `unreachable: ${(error as Error).message}` };
    }
    await this.#outbox.record(delivery, outcome, Date.now());
    const fields = { job_id: delivery.jobId, oracle: delivery.oracle, attempts: delivery.attempts + 1 };
    if (outcome.kind === "delivered") this.#log.info(fields, "receipt delivered");
    else if (outcome.kind === "rejected") this.#log.warn({ ...fields, reason: outcome.reason }, "receipt rejected");
    else this.#log.warn({ ...fields, reason: outcome.reason }, "receipt delivery failed; will retry");
    this.onDelivered?.(delivery, outcome);
  }

  /** Stops sending; resolves after the pass in flight. */
  async stop(): Promise<void> {
    this.#stopped = true;
    if (this.#soon !== null) clearTimeout(this.#soon);
    if (this.#timer !== null) clearTimeout(this.#timer);
    this.#timer = null;
    await this.#running;
  }
}
