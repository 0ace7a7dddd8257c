// The oracle's durable state: receipts and their status, the clients' unsettled fees and the
// epochs' settlement state machine. Every write is idempotent: a worker or a settlement step that
// runs twice (after a crash, a stalled job, a duplicate delivery) changes nothing the second time.
import type { Address } from "viem";

import type { Rejection } from "../rules/reasons.ts";
import type { Db, Sql } from "./db.ts";

export type ReceiptStatus = "queued" | "verified" | "rejected" | "settled";

export interface StoredReceipt {
  jobId: string;
  body: Record<string, unknown>;
  bodySha256: string;
  client: Address;
  node: Address;
  status: ReceiptStatus;
  reasonCode: string | null;
  reason: string | null;
  fee: bigint | null;
  publisher: Address | null;
  epoch: bigint | null;
  receivedAt: number;
}

type ReceiptRow = {
  job_id: string;
  body: Record<string, unknown>;
  body_sha256: string;
  client: string;
  node: string;
  status: ReceiptStatus;
  reason_code: string | null;
  reason: string | null;
  fee: string | null;
  publisher: string | null;
  epoch: string | number | null;
  received_at: string | number;
};

const RECEIPT_COLUMNS =
  "job_id, body, body_sha256, client, node, status, reason_code, reason, fee::text AS fee, publisher, epoch::text AS epoch, received_at::text AS received_at";

function toReceipt(row: ReceiptRow): StoredReceipt {
  return {
    jobId: row.job_id,
    body: row.body,
    bodySha256: row.body_sha256,
    client: row.client as Address,
    node: row.node as Address,
    status: row.status,
    reasonCode: row.reason_code,
    reason: row.reason,
    fee: row.fee === null ? null : BigInt(row.fee),
    publisher: row.publisher as Address | null,
    epoch: row.epoch === null ? null : BigInt(row.epoch),
    receivedAt: Number(row.received_at),
  };
}

export interface NewReceipt {
  jobId: string;
  body: Record<string, unknown>;
  bodySha256: string;
  client: Address;
  node: Address;
  modelId: number;
  modelVersion: number;
  receivedAt: number;
  /** Set when a rule already failed at the API (the receipt is recorded as rejected). */
  rejection?: Rejection;
}

/** A verified receipt as the settlement builder needs it. */
export interface SettlementReceipt {
  jobId: string;
  body: Record<string, unknown>;
  client: Address;
  node: Address;
  publisher: Address;
  fee: bigint;
  receivedAt: number;
}

export type EpochState = "building" | "signed" | "posted" | "final" | "funded" | "voided";

export interface EpochRow {
  epoch: bigint;
  state: EpochState;
  settlement: Record<string, string> | null;
  batchSha256: string | null;
  debits: { client: Address; amount: string }[] | null;
  earnings: { account: Address; cumulativeAmount: string }[] | null;
  carriedSlash: bigint;
  signatures: string[] | null;
  txHash: string | null;
  lastError: string | null;
}

type EpochDbRow = {
  epoch: string;
  state: EpochState;
  settlement: Record<string, string> | null;
  batch_sha256: string | null;
  debits: EpochRow["debits"];
  earnings: EpochRow["earnings"];
  carried_slash: string;
  signatures: string[] | null;
  tx_hash: string | null;
  last_error: string | null;
};

const toEpoch = (r: EpochDbRow): EpochRow => ({
  epoch: BigInt(r.epoch),
  state: r.state,
  settlement: r.settlement,
  batchSha256: r.batch_sha256,
  debits: r.debits,
  earnings: r.earnings,
  carriedSlash: BigInt(r.carried_slash),
  signatures: r.signatures,
  txHash: r.tx_hash,
  lastError: r.last_error,
});

const EPOCH_COLUMNS =
  "epoch::text AS epoch, state, settlement, batch_sha256, debits, earnings, carried_slash::text AS carried_slash, signatures, tx_hash, last_error";

export class OracleStore {
  readonly db: Db;
  constructor(db: Db) {
    this.db = db;
  }

  /**
   * Records a receipt as queued (or already rejected). Returns the stored row when the job id was
   * already known (nothing is written then).
   */
  async insertReceipt(r: NewReceipt): Promise<{ inserted: true } | { inserted: false; existing: StoredReceipt }> {
    const now = Date.now();
    const inserted = await this.db.query(
      `INSERT INTO receipts (job_id, body, body_sha256, client, node, model_id, model_version, status, reason_code, reason, received_at, updated_at_ms)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) ON CONFLICT (job_id) DO NOTHING RETURNING job_id`,
      [
        r.jobId,
        JSON.stringify(r.body),
        r.bodySha256,
        r.client,
        r.node,
        r.modelId,
        r.modelVersion,
        r.rejection ? "rejected" : "queued",
        r.rejection?.code ?? null,
        r.rejection?.message ?? null,
        r.receivedAt,
        now,
      ],
    );
    if (inserted.rows.length > 0) return { inserted: true };
    const existing = await this.getReceipt(r.jobId);
    if (existing === undefined) throw new Error(`receipt ${r.jobId} neither inserted nor found`);
    return { inserted: false, existing };
  }

  async getReceipt(jobId: string, sql: Sql = this.db): Promise<StoredReceipt | undefined> {
    const { rows } = await sql.query<ReceiptRow>(`SELECT ${RECEIPT_COLUMNS} FROM receipts WHERE job_id = $1`, [jobId]);
    return rows[0] === undefined ? undefined : toReceipt(rows[0]);
  }

  /** Receipts still queued since before `olderThanMs` (the queue may have lost them). */
  async staleQueued(olderThanMs: number, limit: number): Promise<string[]> {
    const { rows } = await this.db.query<{ job_id: string }>(
      "SELECT job_id FROM receipts WHERE status = 'queued' AND updated_at_ms < $1 ORDER BY updated_at_ms LIMIT $2",
      [olderThanMs, limit],
    );
    return rows.map((r) => r.job_id);
  }

  async touchQueued(jobIds: readonly string[]): Promise<void> {
    if (jobIds.length === 0) return;
    await this.db.query("UPDATE receipts SET updated_at_ms = $1 WHERE status = 'queued' AND job_id = ANY($2)", [
      Date.now(),
      jobIds,
    ]);
  }

  async markRejected(jobId: string, rejection: Rejection): Promise<boolean> {
    const { rows } = await this.db.query(
      "UPDATE receipts SET status = 'rejected', reason_code = $2, reason = $3, updated_at_ms = $4 WHERE job_id = $1 AND status = 'queued' RETURNING job_id",
      [jobId, rejection.code, rejection.message, Date.now()],
    );
    return rows.length > 0;
  }

  /**
   * Marks a queued receipt verified and adds its fee to the client's unsettled fees, if they stay
   * within `escrowBalance`; otherwise marks it rejected (insufficient_escrow). One transaction, so
   * the running total and the statuses always agree. Returns the status written (or null when the
   * receipt was no longer queued: another worker got there first).
   */
  async markVerified(
    jobId: string,
    v: { client: Address; fee: bigint; publisher: Address; escrowBalance: bigint },
    insufficient: (pending: bigint) => Rejection | null,
  ): Promise<"verified" | "rejected" | null> {
    return this.db.transaction(async (tx) => {
      const claimed = await tx.query(
        "UPDATE receipts SET status = 'verified', fee = $2, publisher = $3, updated_at_ms = $4 WHERE job_id = $1 AND status = 'queued' RETURNING job_id",
        [jobId, v.fee.toString(), v.publisher, Date.now()],
      );
      if (claimed.rows.length === 0) return null;
      // Row lock per client (PostgreSQL): concurrent workers cannot both spend the same balance.
      await tx.query("INSERT INTO client_pending (client, pending) VALUES ($1, 0) ON CONFLICT (client) DO NOTHING", [
        v.client,
      ]);
      const { rows } = await tx.query<{ pending: string }>(
        "SELECT pending::text AS pending FROM client_pending WHERE client = $1 FOR UPDATE",
        [v.client],
      );
      const pending = BigInt(rows[0]?.pending ?? "0");
      const rejection = insufficient(pending);
      if (rejection) {
        await tx.query(
          "UPDATE receipts SET status = 'rejected', fee = NULL, publisher = NULL, reason_code = $2, reason = $3 WHERE job_id = $1",
          [jobId, rejection.code, rejection.message],
        );
        return "rejected";
      }
      await tx.query("UPDATE client_pending SET pending = pending + $2::numeric WHERE client = $1", [
        v.client,
        v.fee.toString(),
      ]);
      return "verified";
    });
  }

  async countByStatus(): Promise<Record<ReceiptStatus, number>> {
    const { rows } = await this.db.query<{ status: ReceiptStatus; n: string }>(
      "SELECT status, count(*)::text AS n FROM receipts GROUP BY status",
    );
    const out: Record<ReceiptStatus, number> = { queued: 0, verified: 0, rejected: 0, settled: 0 };
    for (const r of rows) out[r.status] = Number(r.n);
    return out;
  }

  /**
   * Committee follower: remembers the job ids of a settlement it signs. Refuses (returns the first
   * offender) when a job id was already signed in another epoch: no job is paid twice.
   */
  async recordSignedJobs(epoch: bigint, jobIds: readonly string[]): Promise<string | null> {
    return this.db.transaction(async (tx) => {
      const { rows } = await tx.query<{ job_id: string }>(
        "SELECT job_id FROM signed_jobs WHERE job_id = ANY($1) AND epoch <> $2 LIMIT 1",
        [jobIds, epoch.toString()],
      );
      if (rows[0] !== undefined) return rows[0].job_id;
      await tx.query(
        "INSERT INTO signed_jobs (job_id, epoch) SELECT unnest($1::text[]), $2 ON CONFLICT (job_id) DO NOTHING",
        [jobIds, epoch.toString()],
      );
      return null;
    });
  }

  /** Records (or replaces) an epoch row as this oracle computed it. */
  async putEpoch(epoch: bigint, state: EpochState): Promise<void> {
    await this.db.query(
      "INSERT INTO epochs (epoch, state, updated_at_ms) VALUES ($1, $2, $3) ON CONFLICT (epoch) DO NOTHING",
      [epoch.toString(), state, Date.now()],
    );
  }

  // ------------------------------------------------------------------ epochs

  async getEpoch(epoch: bigint, sql: Sql = this.db): Promise<EpochRow | undefined> {
    const { rows } = await sql.query<EpochDbRow>(`SELECT ${EPOCH_COLUMNS} FROM epochs WHERE epoch = $1`, [
      epoch.toString(),
    ]);
    return rows[0] === undefined ? undefined : toEpoch(rows[0]);
  }

  /** The latest epoch this oracle has a record of. */
  async latestEpoch(): Promise<EpochRow | undefined> {
    const { rows } = await this.db.query<EpochDbRow>(`SELECT ${EPOCH_COLUMNS} FROM epochs ORDER BY epoch DESC LIMIT 1`);
    return rows[0] === undefined ? undefined : toEpoch(rows[0]);
  }

  /** The latest funded epoch before `epoch` (its cumulative earnings start the next). */
  async previousFunded(epoch: bigint): Promise<EpochRow | undefined> {
    const { rows } = await this.db.query<EpochDbRow>(
      `SELECT ${EPOCH_COLUMNS} FROM epochs WHERE epoch < $1 AND state = 'funded' ORDER BY epoch DESC LIMIT 1`,
      [epoch.toString()],
    );
    return rows[0] === undefined ? undefined : toEpoch(rows[0]);
  }

  /**
   * Opens `epoch` (state building) and assigns to it every verified receipt not yet in an epoch,
   * in one transaction. Returns false when nothing was there to settle (no row is written then).
   */
  async openEpoch(epoch: bigint): Promise<boolean> {
    return this.db.transaction(async (tx) => {
      const existing = await this.getEpoch(epoch, tx);
      if (existing) return true;
      const assigned = await tx.query(
        "UPDATE receipts SET epoch = $1 WHERE status = 'verified' AND epoch IS NULL RETURNING job_id",
        [epoch.toString()],
      );
      if (assigned.rows.length === 0) return false;
      await tx.query("INSERT INTO epochs (epoch, state, updated_at_ms) VALUES ($1, 'building', $2)", [
        epoch.toString(),
        Date.now(),
      ]);
      return true;
    });
  }

  /** Verified receipts assigned to `epoch`, by job id. */
  async epochReceipts(epoch: bigint): Promise<SettlementReceipt[]> {
    const { rows } = await this.db.query<ReceiptRow>(
      `SELECT ${RECEIPT_COLUMNS} FROM receipts WHERE epoch = $1 ORDER BY job_id`,
      [epoch.toString()],
    );
    return rows.map((row) => {
      const r = toReceipt(row);
      return {
        jobId: r.jobId,
        body: r.body,
        client: r.client,
        node: r.node,
        publisher: r.publisher!,
        fee: r.fee!,
        receivedAt: r.receivedAt,
      };
    });
  }

  async updateEpoch(
    epoch: bigint,
    fields: Partial<{
      state: EpochState;
      settlement: Record<string, string>;
      batchSha256: string;
      debits: EpochRow["debits"];
      earnings: EpochRow["earnings"];
      carriedSlash: bigint;
      signatures: string[];
      txHash: string;
      lastError: string | null;
    }>,
  ): Promise<void> {
    const columns: Record<string, unknown> = {
      state: fields.state,
      settlement: fields.settlement === undefined ? undefined : JSON.stringify(fields.settlement),
      batch_sha256: fields.batchSha256,
      debits: fields.debits === undefined ? undefined : JSON.stringify(fields.debits),
      earnings: fields.earnings === undefined ? undefined : JSON.stringify(fields.earnings),
      carried_slash: fields.carriedSlash?.toString(),
      signatures: fields.signatures === undefined ? undefined : JSON.stringify(fields.signatures),
      tx_hash: fields.txHash,
      last_error: fields.lastError,
    };
    const sets: string[] = [];
    const params: unknown[] = [epoch.toString()];
    for (const [column, value] of Object.entries(columns)) {
      if (value === undefined) continue;
      params.push(value);
      sets.push(`${column} = $${params.length}`);
    }
    params.push(Date.now());
    sets.push(`updated_at_ms = $${params.length}`);
    await this.db.query(`UPDATE epochs SET ${sets.join(", ")} WHERE epoch = $1`, params);
  }

  /**
   * The epoch is funded on chain: its receipts become settled and its debits leave the clients'
   * unsettled fees. Idempotent (a second call finds the epoch already funded and does nothing).
   */
  async markFunded(epoch: bigint, debits: readonly { client: Address; amount: bigint }[]): Promise<void> {
    await this.db.transaction(async (tx) => {
      const row = await this.getEpoch(epoch, tx);
      if (row === undefined || row.state === "funded") return;
      for (const d of debits)
        await tx.query("UPDATE client_pending SET pending = pending - $2::numeric WHERE client = $1", [
          d.client,
          d.amount.toString(),
        ]);
      await tx.query("UPDATE receipts SET status = 'settled', updated_at_ms = $2 WHERE epoch = $1", [
        epoch.toString(),
        Date.now(),
      ]);
      await tx.query("UPDATE epochs SET state = 'funded', updated_at_ms = $2 WHERE epoch = $1", [
        epoch.toString(),
        Date.now(),
      ]);
    });
  }
}
