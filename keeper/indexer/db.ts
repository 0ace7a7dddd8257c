// The indexer's database: PostgreSQL through `pg` when DATABASE_URL is set, else PGlite (Postgres
// compiled to WASM) in this process at a data directory. Both run the same SQL; this file is the
// only place that knows which one it talks to.
//
// PGlite is single-process: two processes opening one data directory would corrupt it, so the
// directory holds a lock file naming the process that has it open, and a second opener gets a
// clear error instead (read it with PostgreSQL, or stop the other process first).
import { mkdir, open, readFile, rm } from "node:fs/promises";
import path from "node:path";

import { PGlite } from "@electric-sql/pglite";
import pg from "pg";

/** Values passed to a query: what both drivers accept. */
export type SqlParam = string | number | boolean | null;

/** The part of a connection that queries and commits: the same in and out of a transaction. */
export interface SqlClient {
  query<Row extends Record<string, unknown>>(text: string, params?: readonly SqlParam[]): Promise<Row[]>;
}

export interface Database extends SqlClient {
  /** "postgres" (pg) or "pglite" (embedded); for logs and /healthz. */
  readonly kind: "postgres" | "pglite";
  /** Runs `work` in one transaction: all of it is committed, or none of it. */
  transaction<T>(work: (tx: SqlClient) => Promise<T>): Promise<T>;
  close(): Promise<void>;
}

/** The database could not be opened or migrated. */
export class DatabaseError extends Error {
  constructor(message: string, options: { cause?: unknown } = {}) {
    super(message, options);
    this.name = "DatabaseError";
  }
}

export interface DatabaseOptions {
  /** postgres://… : use PostgreSQL. */
  databaseUrl?: string | undefined;
  /** Else PGlite keeps its files here. */
  dataDir?: string | undefined;
}

/** Opens the database named by the options (URL first) and applies the migrations. */
export async function openDatabase(options: DatabaseOptions): Promise<Database> {
  const db =
    options.databaseUrl !== undefined && options.databaseUrl !== ""
      ? await openPostgres(options.databaseUrl)
      : options.dataDir !== undefined && options.dataDir !== ""
        ? await openPglite(options.dataDir)
        : undefined;
  if (db === undefined) throw new DatabaseError("no database: set DATABASE_URL or give a data directory");
  try {
    await migrate(db);
  } catch (error) {
    await db.close();
    throw new DatabaseError(`cannot migrate the ${db.kind} database: ${(error as Error).message}`, { cause: error });
  }
  return db;
}

async function openPostgres(url: string): Promise<Database> {
  const pool = new pg.Pool({ connectionString: url, max: 4 });
  // An idle client losing its server must not crash the process; the next query reports it.
  pool.on("error", () => {});
  try {
    await pool.query("select 1");
  } catch (error) {
    await pool.end();
    throw new DatabaseError(`cannot connect to PostgreSQL at ${redact(url)}: ${(error as Error).message}`, {
      cause: error,
    });
  }
  const client = (q: pg.Pool | pg.PoolClient): SqlClient => ({
    async query<Row extends Record<string, unknown>>(text: string, params: readonly SqlParam[] = []) {
      const result = await q.query(text, [...params]);
      return result.rows as Row[];
    },
  });
  return {
    kind: "postgres",
    ...client(pool),
    async transaction<T>(work: (tx: SqlClient) => Promise<T>): Promise<T> {
      const conn = await pool.connect();
      try {
        await conn.query("begin");
        const result = await work(client(conn));
        await conn.query("commit");
        return result;
      } catch (error) {
        await conn.query("rollback").catch(() => {});
        throw error;
      } finally {
        conn.release();
      }
    },
    close: () => pool.end(),
  };
}

function redact(url: string): string {
  return url.replace(/\/\/([^:@/]+):[^@/]*@/, "//$1:***@");
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === "EPERM";
  }
}

async function takeLock(dataDir: string): Promise<string> {
  const lockFile = path.join(dataDir, "inframesh.lock");
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const handle = await open(lockFile, "wx");
      await handle.writeFile(String(process.pid));
      await handle.close();
      return lockFile;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== "EEXIST") throw error;
      const holder = Number((await readFile(lockFile, "utf8").catch(() => "")).trim());
      if (Number.isSafeInteger(holder) && holder > 0 && holder !== process.pid && processAlive(holder)) {
        throw new DatabaseError(
          `the PGlite data directory ${dataDir} is open in process ${holder}: PGlite allows one process at a time ` +
            "(stop it, or run the indexer on PostgreSQL with DATABASE_URL to read while it indexes)",
        );
      }
      // Left by a process that died (kill -9): PGlite recovers its files; take the lock over.
      await rm(lockFile, { force: true });
    }
  }
  throw new DatabaseError(`cannot lock ${lockFile}`);
}

async function openPglite(dataDir: string): Promise<Database> {
  await mkdir(dataDir, { recursive: true });
  const lockFile = await takeLock(dataDir);
  let lite: PGlite;
  try {
    lite = await PGlite.create(dataDir);
  } catch (error) {
    await rm(lockFile, { force: true });
    throw new DatabaseError(`cannot open PGlite at ${dataDir}: ${(error as Error).message}`, { cause: error });
  }
  const client = (q: Pick<PGlite, "query">): SqlClient => ({
    async query<Row extends Record<string, unknown>>(text: string, params: readonly SqlParam[] = []) {
      const result = await q.query<Row>(text, [...params]);
      return result.rows;
    },
  });
  return {
    kind: "pglite",
    ...client(lite),
    transaction: <T>(work: (tx: SqlClient) => Promise<T>) => lite.transaction((tx) => work(client(tx))),
    async close() {
      await lite.close();
      await rm(lockFile, { force: true });
    },
  };
}

// ------------------------------------------------------------------ migrations

/**
 * Schema versions in order; each runs once, in its own transaction with its version row.
 * Never edit a released entry: add the next one.
 */
export const MIGRATIONS: readonly string[] = [
  `create table chain_events (
     chain_id      bigint  not null,
     contract_key  text    not null,
     address       text    not null,
     event_name    text,
     args          jsonb   not null,
     block_number  bigint  not null,
     block_hash    text    not null,
     tx_hash       text    not null,
     log_index     integer not null,
     topics        jsonb   not null,
     data          text    not null,
     confirmed     boolean not null default false,
     primary key (block_hash, log_index)
   );
   create index chain_events_by_contract on chain_events (chain_id, contract_key, event_name, block_number, log_index);
   create index chain_events_by_block on chain_events (chain_id, block_number);
   create table indexer_cursors (
     chain_id          bigint primary key,
     last_block        bigint not null,
     confirmed_block   bigint not null,
     head_block        bigint not null,
     updated_at        timestamptz not null default now()
   );
   create table indexer_tip_blocks (
     chain_id      bigint not null,
     block_number  bigint not null,
     block_hash    text   not null,
     primary key (chain_id, block_number)
   );`,
  `create table keeper_actions (
     action_key    text primary key,
     kind          text not null,
     tx_hash       text,
     detail        jsonb not null,
     recorded_at   timestamptz not null default now()
   );
   create table unbonding_notifications (
     chain_id      bigint not null,
     node          text   not null,
     staker        text   not null,
     lock_id       text   not null,
     amount        text   not null,
     withdrawable_at bigint not null,
     notified_at   timestamptz not null default now(),
     primary key (chain_id, node, staker, lock_id)
   );`,
  `create table sla_slashed_attempts (
     chain_id      bigint not null,
     attempt_id    text   not null,
     node          text   not null,
     sent_at       bigint not null,
     evidence_hash text   not null,
     primary key (chain_id, attempt_id)
   );
   create index sla_slashed_attempts_by_node on sla_slashed_attempts (chain_id, node, sent_at);`,
];

async function migrate(db: Database): Promise<void> {
  await db.query("create table if not exists schema_migrations (version integer primary key)");
  const done = await db.query<{ version: number }>("select version from schema_migrations");
  const applied = new Set(done.map((row) => Number(row.version)));
  for (const [index, sql] of MIGRATIONS.entries()) {
    const version = index + 1;
    if (applied.has(version)) continue;
    await db.transaction(async (tx) => {
      for (const statement of sql.split(/;\s*(?:\n|$)/).filter((s) => s.trim() !== "")) await tx.query(statement);
      await tx.query("insert into schema_migrations (version) values ($1) on conflict do nothing", [version]);
    });
  }
}
