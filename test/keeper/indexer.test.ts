// The event indexer against a real `hardhat node` with the protocol deployed: it holds exactly
// what the chain emitted, counts confirmations, rolls back a re-orged tip (evm_snapshot /
// evm_revert, then different transactions) and resumes after SIGKILL with nothing lost or doubled.
//
// Slow (starts a chain and deploys): run alone with `npx hardhat test mocha test/keeper/indexer.test.ts`.
import { writeFile, mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";

import { expect } from "chai";
import pg from "pg";

import { PROJECT_ROOT, spawnGroup } from "../../scripts/lib/local-chain.ts";
import { openDatabase, type Database } from "../../keeper/indexer/db.ts";
import { Indexer, readCursor } from "../../keeper/indexer/indexer.ts";
import { followedContracts } from "../../keeper/indexer/logic.ts";
import { chainLogs, chainRpc, protocolActivity, startDeployedChain, type DeployedChain } from "./chain-fixture.ts";

const INDEXER = path.join(PROJECT_ROOT, "keeper", "indexer", "main.ts");

interface Row extends Record<string, unknown> {
  contract_key: string;
  address: string;
  event_name: string | null;
  args: Record<string, unknown>;
  block_number: unknown;
  block_hash: string;
  log_index: number;
  confirmed: boolean;
}

async function rows(db: Database): Promise<Row[]> {
  return db.query<Row>("select * from chain_events order by block_number, log_index");
}

/** The table's identity of each event, comparable with chainLogs(). */
const keyOf = (r: {
  address: string;
  blockHash?: string;
  block_hash?: string;
  logIndex?: number;
  log_index?: number;
}) => `${(r.blockHash ?? r.block_hash)!.toLowerCase()}#${r.logIndex ?? r.log_index}#${r.address.toLowerCase()}`;

describe("event indexer (hardhat node)", function () {
  this.timeout(300_000);

  let deployed: DeployedChain;
  let work: string;

  before(async function () {
    deployed = await startDeployedChain("local-test-indexer");
    work = await mkdtemp(path.join(tmpdir(), "inframesh-indexer-test-"));
  });

  after(async function () {
    await deployed?.stop();
    if (work !== undefined) await rm(work, { recursive: true, force: true });
  });

  function indexerOn(db: Database, confirmations: number, blockSpan = 3): Indexer {
    return new Indexer({
      db,
      publicClient: deployed.publicClient,
      chainId: deployed.record.chainId,
      contracts: followedContracts(deployed.record),
      confirmations,
      blockSpan,
    });
  }

  it("indexes stake, delegate, unbond, slash and model events: the table equals what the chain emitted", async function () {
    await protocolActivity(deployed, 0);
    const db = await openDatabase({ dataDir: path.join(work, "equal") });
    try {
      const indexer = indexerOn(db, 2);
      const first = await indexer.syncOnce();
      const table = await rows(db);
      const logs = await chainLogs(deployed);
      expect(table.map(keyOf)).to.deep.equal(logs.map(keyOf));
      expect(first.inserted).to.equal(logs.length);

      const names = table.map((r) => `${r.contract_key}.${r.event_name}`);
      for (const name of [
        "nodeStaking.NodeRegistered",
        "nodeStaking.Staked",
        "nodeStaking.Unbonded",
        "nodeStaking.Slashed",
        "modelRegistry.ModelRegistered",
        "stakeToken.Transfer",
        "epochSettlement.CommitteeSet",
      ]) {
        expect(names, name).to.include(name);
      }
      const unbonded = table.find((r) => r.event_name === "Unbonded")!;
      expect(unbonded.args).to.include({
        node: deployed.wallet(1).account.address,
        staker: deployed.wallet(2).account.address,
        lockId: "0",
        amount: "1000000000000000000000",
      });
      expect(unbonded.args.withdrawableAt).to.match(/^[0-9]+$/);

      // The last two blocks are not confirmed yet; two more blocks confirm them.
      const head = first.head;
      for (const r of table)
        expect(r.confirmed, `block ${r.block_number}`).to.equal(Number(r.block_number) <= head - 2);
      expect(table.some((r) => !r.confirmed)).to.equal(true);
      await chainRpc(deployed.chain.rpcUrl, "evm_mine");
      await chainRpc(deployed.chain.rpcUrl, "evm_mine");
      const second = await indexer.syncOnce();
      expect(second.inserted).to.equal(0);
      expect((await rows(db)).every((r) => r.confirmed)).to.equal(true);
      expect(await readCursor(db, deployed.record.chainId)).to.deep.equal({
        lastBlock: head + 2,
        confirmedBlock: head,
        headBlock: head + 2,
      });
    } finally {
      await db.close();
    }
  });

  it("rolls back a re-orged unconfirmed tip and reads the blocks that replaced it", async function () {
    const db = await openDatabase({ dataDir: path.join(work, "reorg") });
    try {
      const indexer = indexerOn(db, 64);
      await indexer.syncOnce();
      const snapshot = await chainRpc(deployed.chain.rpcUrl, "evm_snapshot");
      await protocolActivity(deployed, 1);
      await indexer.syncOnce();
      const models = async () =>
        (await rows(db)).filter((r) => r.event_name === "ModelRegistered").map((r) => r.args.name);
      expect(await models()).to.deep.equal(["indexed-model-0", "indexed-model-1"]);

      expect(await chainRpc(deployed.chain.rpcUrl, "evm_revert", [snapshot])).to.equal(true);
      await protocolActivity(deployed, 2);
      await chainRpc(deployed.chain.rpcUrl, "evm_mine"); // the new branch is longer than the old one
      const result = await indexer.syncOnce();
      expect(result.reorgFrom).to.be.a("number");

      expect((await rows(db)).map(keyOf)).to.deep.equal((await chainLogs(deployed)).map(keyOf));
      expect(await models()).to.deep.equal(["indexed-model-0", "indexed-model-2"]);
    } finally {
      await db.close();
    }
  });

  it("notices a re-org that shortens the chain below its cursor", async function () {
    const db = await openDatabase({ dataDir: path.join(work, "shorter") });
    try {
      const indexer = indexerOn(db, 64);
      const snapshot = await chainRpc(deployed.chain.rpcUrl, "evm_snapshot");
      await protocolActivity(deployed, 3);
      const before = await indexer.syncOnce();
      await chainRpc(deployed.chain.rpcUrl, "evm_revert", [snapshot]);
      const after = await indexer.syncOnce();
      expect(after.reorgFrom).to.be.a("number");
      expect(after.lastBlock).to.be.lessThan(before.lastBlock);
      expect((await rows(db)).map(keyOf)).to.deep.equal((await chainLogs(deployed)).map(keyOf));
    } finally {
      await db.close();
    }
  });

  it("runs the same on PostgreSQL (a private database on DATABASE_URL or 127.0.0.1:5432)", async function () {
    const base = process.env.DATABASE_URL ?? "postgres://postgres@127.0.0.1:5432/test";
    const admin = new pg.Client({ connectionString: base });
    try {
      await admin.connect();
    } catch {
      // A machine without PostgreSQL (a user's fresh checkout): PGlite above covers the same SQL.
      this.skip();
    }
    const name = `inframesh_indexer_test_${process.pid}_${Date.now()}`;
    await admin.query(`create database ${name}`);
    const url = new URL(base);
    url.pathname = `/${name}`;
    try {
      const db = await openDatabase({ databaseUrl: url.toString() });
      try {
        expect(db.kind).to.equal("postgres");
        const snapshot = await chainRpc(deployed.chain.rpcUrl, "evm_snapshot");
        await protocolActivity(deployed, 8);
        const indexer = indexerOn(db, 64, 5);
        await indexer.syncOnce();
        expect((await rows(db)).map(keyOf)).to.deep.equal((await chainLogs(deployed)).map(keyOf));
        await chainRpc(deployed.chain.rpcUrl, "evm_revert", [snapshot]);
        await protocolActivity(deployed, 9);
        await chainRpc(deployed.chain.rpcUrl, "evm_mine");
        expect((await indexer.syncOnce()).reorgFrom).to.be.a("number");
        const table = await rows(db);
        expect(table.map(keyOf)).to.deep.equal((await chainLogs(deployed)).map(keyOf));
        const models = table.filter((r) => r.event_name === "ModelRegistered").map((r) => r.args.name);
        expect(models).to.include("indexed-model-9").and.not.include("indexed-model-8");
      } finally {
        await db.close();
      }
    } finally {
      await admin.query(`drop database if exists ${name}`);
      await admin.end();
    }
  });

  describe("as a process", function () {
    const run = (args: string[], env: NodeJS.ProcessEnv) => spawnGroup(process.execPath, [INDEXER, ...args], { env });

    it("resumes after SIGKILL mid-run: nothing lost, nothing doubled", async function () {
      for (let round = 4; round < 7; round++) await protocolActivity(deployed, round);
      const dataDir = path.join(work, "resume");
      const env = {
        ...deployed.env,
        INFRAMESH_DATA_DIR: dataDir,
        INFRAMESH_INDEXER_BLOCK_SPAN: "1",
        INFRAMESH_CONFIRMATIONS: "0",
        INFRAMESH_LOG_LEVEL: "debug",
      };
      const first = run([], env);
      const deadline = Date.now() + 60_000;
      const ranges = () => (first.output().match(/"msg":"range"/g) ?? []).length;
      while (ranges() < 15 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
      process.kill(-first.pid, "SIGKILL");
      const status = await first.exited;
      expect(status.signal, first.output()).to.equal("SIGKILL");

      // cacheTime 0: viem reuses a block number read in the last 4 s, which would be stale here.
      const head = Number(await deployed.publicClient.getBlockNumber({ cacheTime: 0 }));
      const db = await openDatabase({ dataDir });
      const cursor = await readCursor(db, deployed.record.chainId);
      await db.close();
      expect(cursor, "killed before its first range").to.not.equal(null);
      expect(cursor!.lastBlock, "killed after catching up: nothing to resume").to.be.lessThan(head);

      const second = run(["--once"], env);
      expect((await second.exited).code, second.output()).to.equal(0);
      const again = await openDatabase({ dataDir });
      try {
        expect((await rows(again)).map(keyOf)).to.deep.equal((await chainLogs(deployed)).map(keyOf));
        expect((await readCursor(again, deployed.record.chainId))!.lastBlock).to.equal(head);
      } finally {
        await again.close();
      }
    });

    it("refuses a PGlite data directory another process has open", async function () {
      const dataDir = path.join(work, "locked");
      const db = await openDatabase({ dataDir });
      try {
        const child = run(["--once"], { ...deployed.env, INFRAMESH_DATA_DIR: dataDir });
        expect((await child.exited).code).to.equal(1);
        expect(child.output()).to.include(`the PGlite data directory ${dataDir} is open in process ${process.pid}`);
      } finally {
        await db.close();
      }
    });

    it("names each bad setting", async function () {
      const child = run(["--once"], {
        ...deployed.env,
        INFRAMESH_CONFIRMATIONS: "-1",
        INFRAMESH_INDEXER_BLOCK_SPAN: "0",
        DATABASE_URL: "mysql://x",
      });
      expect((await child.exited).code).to.equal(1);
      const output = child.output();
      expect(output).to.include('INFRAMESH_CONFIRMATIONS must be a whole number ≥ 0, got \\"-1\\"');
      expect(output).to.include('INFRAMESH_INDEXER_BLOCK_SPAN must be a whole number ≥ 1, got \\"0\\"');
      expect(output).to.include("DATABASE_URL must be a postgres: or postgresql: URL");
    });

    it("refuses a deployment file of another chain", async function () {
      const dir = path.join(work, "other-chain");
      const { mkdir } = await import("node:fs/promises");
      await mkdir(dir, { recursive: true });
      const record = JSON.parse(await readFile(path.join(deployed.dir, "localhost.json"), "utf8"));
      await writeFile(path.join(dir, "localhost.json"), JSON.stringify({ ...record, chainId: 11155111 }));
      const child = run(["--once"], { ...deployed.env, INFRAMESH_DEPLOYMENTS_DIR: dir, INFRAMESH_DATA_DIR: dir });
      expect((await child.exited).code).to.equal(1);
      expect(child.output()).to.include("records chain 11155111 (wrong network?)");
    });
  });
});
