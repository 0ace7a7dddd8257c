// The oracle's durable state on PGlite: group-committed inserts and verdicts, idempotent writes
// (a verdict or a funding recorded twice counts once), the escrow running total, epoch assignment.
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";

import { expect } from "chai";
import pg from "pg";
import type { Address } from "viem";

import { type Db, openDb } from "../../oracle/store/db.ts";
import { type NewReceipt, OracleStore } from "../../oracle/store/store.ts";

const client: Address = "0x0000000000000000000000000000000000000aAa";
const other: Address = "0x0000000000000000000000000000000000000bBb";
const node: Address = "0x0000000000000000000000000000000000000001";
const publisher: Address = "0x0000000000000000000000000000000000000002";
const job = (n: number) => `0x${n.toString(16).padStart(64, "0")}`;
const receipt = (n: number, who: Address = client, sha = "s"): NewReceipt => ({
  jobId: job(n),
  body: { n },
  bodySha256: sha,
  client: who,
  node,
  modelId: 1,
  modelVersion: 0,
  receivedAt: 1_000,
});
const ok = (n: number, fee: bigint, balance: bigint, who: Address = client) => ({
  jobId: job(n),
  ok: true as const,
  client: who,
  fee,
  publisher,
  escrowBalance: balance,
});

/** PostgreSQL for the `pg` variant: DATABASE_URL, else the project machines' local server. */
const PG_URL = process.env.DATABASE_URL ?? "postgres://postgres@127.0.0.1:5432/postgres";

async function freshPgDatabase(): Promise<{ url: string; drop(): Promise<void> } | undefined> {
  const admin = new pg.Client({ connectionString: PG_URL, connectionTimeoutMillis: 2_000 });
  try {
    await admin.connect();
  } catch {
    return undefined;
  }
  const name = `oracle_store_test_${process.pid}_${Date.now()}`;
  await admin.query(`CREATE DATABASE ${name}`);
  const url = new URL(PG_URL);
  url.pathname = `/${name}`;
  return {
    url: url.toString(),
    async drop() {
      await admin.query(`DROP DATABASE IF EXISTS ${name}`);
      await admin.end();
    },
  };
}

for (const engine of ["pglite", "pg"] as const)
  describe(`oracle store (${engine})`, function () {
    this.timeout(120_000);
    let dir: string;
    let db: Db;
    let store: OracleStore;
    let pgDatabase: Awaited<ReturnType<typeof freshPgDatabase>>;

    // One database for the suite (starting PGlite takes seconds); each test starts from empty tables.
    before(async function () {
      dir = await mkdtemp(path.join(tmpdir(), "oracle-store-"));
      if (engine === "pg") {
        pgDatabase = await freshPgDatabase();
        // Reason: the machine has no PostgreSQL server (PGlite, the embedded default, is tested above).
        if (pgDatabase === undefined) this.skip();
      }
      db = await openDb({ databaseUrl: pgDatabase?.url, dataDir: dir });
      store = new OracleStore(db);
    });
    beforeEach(async function () {
      await db.query("TRUNCATE receipts, client_pending, epochs, signed_jobs");
    });
    after(async function () {
      await db?.close();
      await pgDatabase?.drop();
      await rm(dir, { recursive: true, force: true });
    });

    const pending = async (who: Address) =>
      (await db.query<{ p: string }>("SELECT pending::text AS p FROM client_pending WHERE client = $1", [who])).rows[0]
        ?.p;

    it("inserts a batch once per job id and reports what was already there", async function () {
      const first = await store.insertReceipts([receipt(1), receipt(2), receipt(1, client, "other")]);
      expect(first[0]).to.deep.equal({ inserted: true });
      expect(first[1]).to.deep.equal({ inserted: true });
      expect(first[2]).to.deep.include({ inserted: false });
      const again = await store.insertReceipts([receipt(2)]);
      expect(again[0]).to.have.nested.property("existing.status", "queued");
      expect((await store.countByStatus()).queued).to.equal(2);
    });

    it("records a verdict once however often it is written, and counts the fee once", async function () {
      await store.insertReceipts([receipt(1)]);
      expect(await store.recordVerdicts([ok(1, 25n, 100n), ok(1, 25n, 100n)])).to.deep.equal(["verified", null]);
      expect(await store.recordVerdicts([ok(1, 25n, 100n)])).to.deep.equal([null]);
      expect(
        await store.recordVerdicts([{ jobId: job(1), ok: false, rejection: { code: "expired", message: "late" } }]),
      ).to.deep.equal([null]);
      expect(await pending(client)).to.equal("25");
      expect((await store.getReceipt(job(1)))?.status).to.equal("verified");
    });

    it("rejects what the escrow cannot cover, counting fees of the same batch in order", async function () {
      await store.insertReceipts([receipt(1), receipt(2), receipt(3), receipt(4, other)]);
      const out = await store.recordVerdicts([
        ok(1, 40n, 100n),
        ok(2, 40n, 100n),
        ok(3, 40n, 100n),
        ok(4, 40n, 40n, other),
      ]);
      expect(out).to.deep.equal(["verified", "verified", "rejected", "verified"]);
      const third = await store.getReceipt(job(3));
      expect(third).to.deep.include({ status: "rejected", reasonCode: "insufficient_escrow", fee: null });
      expect(await pending(client)).to.equal("80");
      expect(await pending(other)).to.equal("40");
    });

    it("assigns verified receipts to an epoch once, and a funding recorded twice debits once", async function () {
      await store.insertReceipts([receipt(1), receipt(2), receipt(3)]);
      await store.recordVerdicts([
        ok(1, 10n, 100n),
        ok(2, 10n, 100n),
        { jobId: job(3), ok: false, rejection: { code: "expired", message: "late" } },
      ]);
      expect(await store.openEpoch(0n)).to.equal(true);
      expect(await store.openEpoch(0n)).to.equal(true);
      expect((await store.epochReceipts(0n)).map((r) => r.jobId)).to.deep.equal([job(1), job(2)]);
      expect(await store.openEpoch(1n)).to.equal(false);
      await store.updateEpoch(0n, { state: "final" });
      await store.markFunded(0n, [{ client, amount: 20n }]);
      await store.markFunded(0n, [{ client, amount: 20n }]);
      expect(await pending(client)).to.equal("0");
      expect((await store.getEpoch(0n))?.state).to.equal("funded");
      expect(await store.countByStatus()).to.deep.equal({ queued: 0, verified: 0, rejected: 1, settled: 2 });
    });

    it("keeps what it wrote across a reopen of the data directory", async function () {
      await store.insertReceipts([receipt(7)]);
      await db.close();
      db = await openDb({ databaseUrl: pgDatabase?.url, dataDir: dir });
      store = new OracleStore(db);
      expect((await store.getReceipt(job(7)))?.status).to.equal("queued");
      expect((await store.staleQueued(Date.now() + 1, 10)).map((r) => r.jobId)).to.deep.equal([job(7)]);
    });
  });
