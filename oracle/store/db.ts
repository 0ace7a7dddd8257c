// One SQL interface over two engines: PostgreSQL through `pg` when DATABASE_URL is set, else
// PGlite (Postgres compiled to WASM) in-process with its files in a data directory. The same SQL
// runs on both; migrations run once at open.
import { mkdirSync } from "node:fs";

import { PGlite } from "@electric-sql/pglite";
import pg from "pg";

import { MIGRATIONS } from "./migrations.ts";

export interface Sql {
  query<Row extends Record<string, unknown>>(text: string, params?: unknown[]): Promise<{ rows: Row[] }>;
}

export interface Db extends Sql {
  readonly engine: "pg" | "pglite";
  /** Runs `fn` in one transaction: committed when it resolves, rolled back when it throws. */
  transaction<T>(fn: (tx: Sql) => Promise<T>): Promise<T>;
  close(): Promise<void>;
}

async function migrate(db: Db): Promise<void> {
  await db.query("CREATE TABLE IF NOT EXISTS schema_migrations (version integer PRIMARY KEY)");
  for (const [index, statements] of MIGRATIONS.entries()) {
    const version = index + 1;
    await db.transaction(async (tx) => {
      // Serialises concurrent starters on PostgreSQL; PGlite has one connection anyway.
      if (db.engine === "pg") await tx.query("SELECT pg_advisory_xact_lock(727301)");
      const done = await tx.query("SELECT 1 FROM schema_migrations WHERE version = $1", [version]);
      if (done.rows.length > 0) return;
      for (const statement of statements) await tx.query(statement);
      await tx.query("INSERT INTO schema_migrations (version) VALUES ($1)", [version]);
    });
  }
}

function pgliteDb(dataDir: string): Db {
  mkdirSync(dataDir, { recursive: true });
  const lite = new PGlite(dataDir);
  const db: Db = {
    engine: "pglite",
    async query<Row extends Record<string, unknown>>(text: string, params: unknown[] = []) {
      const result = await lite.query<Row>(text, params);
      return { rows: result.rows };
    },
    transaction<T>(fn: (tx: Sql) => Promise<T>): Promise<T> {
      return lite.transaction((tx) =>
        fn({
          async query<Row extends Record<string, unknown>>(text: string, params: unknown[] = []) {
            const result = await tx.query<Row>(text, params);
            return { rows: result.rows };
          },
        }),
      );
    },
    close: () => lite.close(),
  };
  return db;
}

function pgDb(connectionString: string): Db {
  const pool = new pg.Pool({ connectionString, max: 10 });
  // An idle client losing its connection must not crash the process; the next query reconnects.
  pool.on("error", () => {});
  return {
    engine: "pg",
    async query<Row extends Record<string, unknown>>(text: string, params: unknown[] = []) {
      const result = await pool.query(text, params);
      return { rows: result.rows as Row[] };
    },
    async transaction<T>(fn: (tx: Sql) => Promise<T>): Promise<T> {
      const client = await pool.connect();
      try {
        await client.query("BEGIN");
        const value = await fn({
          async query<Row extends Record<string, unknown>>(text: string, params: unknown[] = []) {
            const result = await client.query(text, params);
            return { rows: result.rows as Row[] };
          },
        });
        await client.query("COMMIT");
        return value;
      } catch (error) {
        await client.query("ROLLBACK").catch(() => {});
        throw error;
      } finally {
        client.release();
      }
    },
    close: () => pool.end(),
  };
}

/** Opens the database (PostgreSQL at `databaseUrl`, else PGlite at `dataDir`) and migrates it. */
export async function openDb(options: { databaseUrl?: string | undefined; dataDir: string }): Promise<Db> {
  const db = options.databaseUrl ? pgDb(options.databaseUrl) : pgliteDb(options.dataDir);
  await migrate(db);
  return db;
}
