// The oracle's durable state: receipts and their status, the clients' unsettled fees and the
// epochs' settlement state machine. Every write is idempotent: a worker or a settlement step that
// runs twice (after a crash, a stalled job, a duplicate delivery) changes nothing the second time.
import type { Address } from "viem";

import { checkEscrow } from "../rules/chain-facts.ts";
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

/** A receipt waiting for verification, as the queue carries it. */
export interface QueuedReceipt {
  jobId: string;
  body: Record<string, unknown>;
  receivedAt: number;
}

/** A worker's verdict on one receipt. */
export type Verdict =
  | { jobId: string; ok: false; rejection: Rejection }
  | { jobId: string; ok: true; client: Address; fee: bigint; publisher: Address; escrowBalance: bigint };

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
   * Records many receipts in one statement (group commit of concurrent API requests). For each,
   * in order: inserted, or the row already stored under its job id (including an earlier item of
   * the same batch).
   */
  async insertReceipts(
    rs: readonly NewReceipt[],
  ): Promise<({ inserted: true } | { inserted: false; existing: StoredReceipt })[]> {
    const now = Date.now();
    const first = new Map<string, NewReceipt>();
    for (const r of rs) if (!first.has(r.jobId)) first.set(r.jobId, r);
    const rows = [...first.values()];
    const params: unknown[] = [];
    const values = rows.map((r) => {
      const base = params.length;
      params.push(
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
      );
      return `(${Array.from({ length: 12 }, (_, i) => `$${base + i + 1}`).join(", ")})`;
    });
    const inserted = new Set<string>();
    if (rows.length > 0) {
      const result = await this.db.query<{ job_id: string }>(
        `INSERT INTO receipts (job_id, body, body_sha256, client, node, model_id, model_version, status, reason_code, reason, received_at, updated_at_ms)
         VALUES ${values.join(", ")} ON CONFLICT (job_id) DO NOTHING RETURNING job_id`,
        params,
      );
      for (const row of result.rows) inserted.add(row.job_id);
    }
    const claimed = new Set<NewReceipt>(rows.filter((r) => inserted.has(r.jobId)));
    const others = [...new Set(rs.filter((r) => !claimed.has(r)).map((r) => r.jobId))];
    const existing = new Map<string, StoredReceipt>();
    if (others.length > 0) {
      const { rows: found } = await this.db.query<ReceiptRow>(
        `SELECT ${RECEIPT_COLUMNS} FROM receipts WHERE job_id = ANY($1)`,
        [others],
      );
      for (const row of found) existing.set(row.job_id, toReceipt(row));
    }
    return rs.map((r) => {
      if (claimed.has(r)) return { inserted: true as const };
      const e = existing.get(r.jobId);
      if (e === undefined) throw new Error(`receipt ${r.jobId} neither inserted nor found`);
      return { inserted: false as const, existing: e };
    });
  }

  /**
   * Records many verdicts in one transaction (group commit of the workers). Only `queued` rows
   * change, so a verdict written twice counts once. A verified receipt's fee joins its client's
   * unsettled fees only while they stay within the client's escrow balance; otherwise it is
   * rejected (insufficient_escrow). Returns the status written per item, or null when the receipt
   * was no longer queued.
   */
  async recordVerdicts(verdicts: readonly Verdict[]): Promise<("verified" | "rejected" | null)[]> {
    return this.db.transaction(async (tx) => {
      const now = Date.now();
      const written = new Map<string, "verified" | "rejected">();
      const seen = new Set<string>();
      const unique = verdicts.filter((v) => !seen.has(v.jobId) && seen.add(v.jobId));

      const rejectRows = async (rows: { jobId: string; rejection: Rejection }[]) => {
        if (rows.length === 0) return [] as string[];
        const params: unknown[] = [now];
        const values = rows.map((r) => {
          params.push(r.jobId, r.rejection.code, r.rejection.message);
          const n = params.length;
          return `($${n - 2}::text, $${n - 1}::text, $${n}::text)`;
        });
        const { rows: out } = await tx.query<{ job_id: string }>(
          `UPDATE receipts SET status = 'rejected', fee = NULL, publisher = NULL, reason_code = v.code, reason = v.reason, updated_at_ms = $1
           FROM (VALUES ${values.join(", ")}) AS v(job_id, code, reason)
           WHERE receipts.job_id = v.job_id AND receipts.status IN ('queued', 'verified') AND receipts.epoch IS NULL
           RETURNING receipts.job_id`,
          params,
        );
        return out.map((r) => r.job_id);
      };

      const rejected = unique.filter((v): v is Extract<Verdict, { ok: false }> => !v.ok);
      const queuedRejections = rejected.map((v) => ({ jobId: v.jobId, rejection: v.rejection }));
      if (queuedRejections.length > 0) {
        const params: unknown[] = [now];
        const values = queuedRejections.map((r) => {
          params.push(r.jobId, r.rejection.code, r.rejection.message);
          const n = params.length;
          return `($${n - 2}::text, $${n - 1}::text, $${n}::text)`;
        });
        const { rows } = await tx.query<{ job_id: string }>(
          `UPDATE receipts SET status = 'rejected', reason_code = v.code, reason = v.reason, updated_at_ms = $1
           FROM (VALUES ${values.join(", ")}) AS v(job_id, code, reason)
           WHERE receipts.job_id = v.job_id AND receipts.status = 'queued'
           RETURNING receipts.job_id`,
          params,
        );
        for (const r of rows) written.set(r.job_id, "rejected");
      }

      const verified = unique.filter((v): v is Extract<Verdict, { ok: true }> => v.ok);
      if (verified.length > 0) {
        const params: unknown[] = [now];
        const values = verified.map((v) => {
          params.push(v.jobId, v.fee.toString(), v.publisher);
          const n = params.length;
          return `($${n - 2}::text, $${n - 1}::numeric, $${n}::text)`;
        });
        const { rows: claimedRows } = await tx.query<{ job_id: string }>(
          `UPDATE receipts SET status = 'verified', fee = v.fee, publisher = v.publisher, updated_at_ms = $1
           FROM (VALUES ${values.join(", ")}) AS v(job_id, fee, publisher)
           WHERE receipts.job_id = v.job_id AND receipts.status = 'queued'
           RETURNING receipts.job_id`,
          params,
        );
        const claimed = new Set(claimedRows.map((r) => r.job_id));
        const mine = verified.filter((v) => claimed.has(v.jobId));
        if (mine.length > 0) {
          const clients = [...new Set(mine.map((v) => v.client))];
          await tx.query(
            "INSERT INTO client_pending (client, pending) SELECT unnest($1::text[]), 0 ON CONFLICT (client) DO NOTHING",
            [clients],
          );
          // Row locks per client (PostgreSQL): concurrent writers cannot both spend one balance.
          const { rows: pendingRows } = await tx.query<{ client: string; pending: string }>(
            "SELECT client, pending::text AS pending FROM client_pending WHERE client = ANY($1) ORDER BY client FOR UPDATE",
            [clients],
          );
          const pending = new Map(pendingRows.map((r) => [r.client, BigInt(r.pending)]));
          const added = new Map<string, bigint>();
          const over: { jobId: string; rejection: Rejection }[] = [];
          for (const v of mine) {
            const current = pending.get(v.client) ?? 0n;
            const rejection = checkEscrow(v.client, v.escrowBalance, current, v.fee);
            if (rejection) over.push({ jobId: v.jobId, rejection });
            else {
              pending.set(v.client, current + v.fee);
              added.set(v.client, (added.get(v.client) ?? 0n) + v.fee);
              written.set(v.jobId, "verified");
            }
          }
          for (const jobId of await rejectRows(over)) written.set(jobId, "rejected");
          if (added.size > 0) {
            const p: unknown[] = [];
            const vals = [...added].map(([client, amount]) => {
              p.push(client, amount.toString());
              return `($${p.length - 1}::text, $${p.length}::numeric)`;
            });
            await tx.query(
              `UPDATE client_pending SET pending = client_pending.pending + v.amount
               FROM (VALUES ${vals.join(", ")}) AS v(client, amount) WHERE client_pending.client = v.client`,
              p,
            );
          }
        }
      }
      return verdicts.map((v) => (seen.has(v.jobId) && unique.includes(v) ? (written.get(v.jobId) ?? null) : null));
    });
  }

  async getReceipt(jobId: string, sql: Sql = this.db): Promise<StoredReceipt | undefined> {
    const { rows } = await sql.query<ReceiptRow>(`SELECT ${RECEIPT_COLUMNS} FROM receipts WHERE job_id = $1`, [jobId]);
    return rows[0] === undefined ? undefined : toReceipt(rows[0]);
  }

  /** Receipts still queued since before `olderThanMs` (the queue may have lost them). */
  async staleQueued(olderThanMs: number, limit: number): Promise<QueuedReceipt[]> {
    const { rows } = await this.db.query<{ job_id: string; body: Record<string, unknown>; received_at: string }>(
      "SELECT job_id, body, received_at::text AS received_at FROM receipts WHERE status = 'queued' AND updated_at_ms < $1 ORDER BY updated_at_ms LIMIT $2",
      [olderThanMs, limit],
    );
    return rows.map((r) => ({ jobId: r.job_id, body: r.body, receivedAt: Number(r.received_at) }));
  }

  async touchQueued(jobIds: readonly string[]): Promise<void> {
    if (jobIds.length === 0) return;
    await this.db.query("UPDATE receipts SET updated_at_ms = $1 WHERE status = 'queued' AND job_id = ANY($2)", [
      Date.now(),
      jobIds,
    ]);
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
