// Event indexer throughput: a local `hardhat node` with the protocol deployed and BENCH_EVENTS
// (default 5,000) token transfers mined 500 per block, then one pass of the indexer from the
// deploy block into PGlite and, when PostgreSQL is reachable (DATABASE_URL, else
// postgres://postgres@127.0.0.1:5432/test, in a private database), into PostgreSQL. Prints a
// table and writes bench/results/indexer.json. No target: the figure sizes the block span and
// the poll period for a chain's event rate.
import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";

import pg from "pg";
import { createPublicClient, createWalletClient, defineChain, erc20Abi, http, type PublicClient } from "viem";
import { privateKeyToAccount } from "viem/accounts";

import { openDatabase, type DatabaseOptions } from "../keeper/indexer/db.ts";
import { Indexer } from "../keeper/indexer/indexer.ts";
import { followedContracts } from "../keeper/indexer/logic.ts";
import { PROJECT_ROOT, rpc, runHardhat, startHardhatNode } from "../scripts/lib/local-chain.ts";
import { formatTable } from "../scripts/lib/table.ts";
import { parseDeploymentRecord } from "../sdk/deployment.ts";

const EVENTS = Number(process.env.BENCH_EVENTS ?? 5_000);
const PER_BLOCK = 500;
const SPAN = 2_000;
const DEPLOYER_KEY = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80";
const DEPLOYMENT_ID = "local-bench-indexer";

const chain = await startHardhatNode();
const work = await mkdtemp(path.join(tmpdir(), "inframesh-bench-indexer-"));
try {
  const env = {
    ...process.env,
    INFRAMESH_RPC_URL: chain.rpcUrl,
    INFRAMESH_DEPLOYMENT_ID: DEPLOYMENT_ID,
    INFRAMESH_DEPLOYMENTS_DIR: work,
    HARDHAT_BUILD_PROFILE: "default",
  };
  const deployed = await runHardhat(["deploy", "--network", "localhost"], { env });
  if (deployed.code !== 0) throw new Error(deployed.output);
  const record = parseDeploymentRecord(JSON.parse(await readFile(path.join(work, "localhost.json"), "utf8")));
  const viemChain = defineChain({
    id: record.chainId,
    name: "localhost",
    nativeCurrency: { name: "Ether", symbol: "ETH", decimals: 18 },
    rpcUrls: { default: { http: [chain.rpcUrl] } },
  });
  const transport = http(chain.rpcUrl, { retryCount: 3 });
  const publicClient = createPublicClient({ chain: viemChain, transport }) as PublicClient;
  const account = privateKeyToAccount(DEPLOYER_KEY);
  const wallet = createWalletClient({ account, chain: viemChain, transport });

  await rpc(chain.rpcUrl, "evm_setAutomine", [false]);
  let nonce = await publicClient.getTransactionCount({ address: account.address, blockTag: "pending" });
  for (let i = 0; i < EVENTS; i++) {
    await wallet.writeContract({
      address: record.contracts.stakeToken.address,
      abi: erc20Abi,
      functionName: "transfer",
      args: [`0x${(i + 1).toString(16).padStart(40, "0")}`, 1n],
      gas: 60_000n,
      maxFeePerGas: 10n ** 11n,
      maxPriorityFeePerGas: 1n,
      nonce: nonce++,
    });
    if ((i + 1) % PER_BLOCK === 0) await rpc(chain.rpcUrl, "evm_mine");
  }
  await rpc(chain.rpcUrl, "evm_mine");
  await rpc(chain.rpcUrl, "evm_setAutomine", [true]);

  async function measure(label: string, options: DatabaseOptions): Promise<{ events: number; seconds: number }> {
    const db = await openDatabase(options);
    try {
      const indexer = new Indexer({
        db,
        publicClient,
        chainId: record.chainId,
        contracts: followedContracts(record),
        confirmations: 0,
        blockSpan: SPAN,
      });
      const started = process.hrtime.bigint();
      const result = await indexer.syncOnce();
      const seconds = Number(process.hrtime.bigint() - started) / 1e9;
      console.log(`${label}: ${result.inserted} events in ${seconds.toFixed(2)} s`);
      return { events: result.inserted, seconds };
    } finally {
      await db.close();
    }
  }

  const figures: Record<string, number> = { events: EVENTS };
  const rows: string[][] = [];
  const lite = await measure("pglite", { dataDir: path.join(work, "pglite") });
  figures.pglite_events_per_second = Math.round(lite.events / lite.seconds);
  rows.push([
    "PGlite (in process)",
    lite.events.toLocaleString("en"),
    lite.seconds.toFixed(2),
    figures.pglite_events_per_second.toLocaleString("en"),
  ]);

  const base = process.env.DATABASE_URL ?? "postgres://postgres@127.0.0.1:5432/test";
  const admin = new pg.Client({ connectionString: base });
  const reachable = await admin.connect().then(
    () => true,
    () => false,
  );
  if (reachable) {
    const name = `inframesh_bench_indexer_${process.pid}`;
    await admin.query(`create database ${name}`);
    try {
      const url = new URL(base);
      url.pathname = `/${name}`;
      const pgRun = await measure("postgres", { databaseUrl: url.toString() });
      figures.postgres_events_per_second = Math.round(pgRun.events / pgRun.seconds);
      rows.push([
        "PostgreSQL (pg)",
        pgRun.events.toLocaleString("en"),
        pgRun.seconds.toFixed(2),
        figures.postgres_events_per_second.toLocaleString("en"),
      ]);
    } finally {
      await admin.query(`drop database if exists ${name}`);
      await admin.end();
    }
  } else {
    console.log(`PostgreSQL not reachable at ${base}: PGlite only`);
  }

  console.log(`\nIndexer, one pass from the deploy block, block span ${SPAN}, ${PER_BLOCK} transfers per block`);
  console.log(
    formatTable(
      [
        { header: "database" },
        { header: "events", align: "right" },
        { header: "seconds", align: "right" },
        { header: "events/s", align: "right" },
      ],
      rows,
    ),
  );
  await mkdir(new URL("./results/", import.meta.url), { recursive: true });
  await writeFile(new URL("./results/indexer.json", import.meta.url), `${JSON.stringify(figures, null, 2)}\n`);
} finally {
  await chain.stop();
  await rm(work, { recursive: true, force: true });
  await rm(path.join(PROJECT_ROOT, "ignition", "deployments", DEPLOYMENT_ID), { recursive: true, force: true });
}
