// Crash test: 5,000 receipts ingested by an oracle running as its own process (`node
// oracle/main.ts`, PGlite, a private Redis, a real hardhat node), kill -9'd at random points during
// ingestion and during settlement, right after each persisted settlement step, and with Redis
// restarted (all its data lost) mid-run. Clients resend until they get an answer, as a node agent's
// outbox does. At the end the chain has paid exactly what the receipts owe: one settlement posted,
// debits collected once, every client debited exactly its fees.
//
// Slow (~2–3 min): run alone with `npx hardhat test mocha test/oracle/crash.test.ts`.
import { writeFile } from "node:fs/promises";
import path from "node:path";

import { expect } from "chai";
import { type Address, parseAbiItem } from "viem";

import { freePort, spawnGroup, type ProcessGroup } from "../../scripts/lib/local-chain.ts";
import { epochSettlementAbi, paymentEscrowAbi, rewardClaimsAbi } from "../../oracle/chain.ts";
import type { ReceiptJson } from "../../sdk/receipt.ts";
import { DEPOSIT, PRICE, ROLES, type World, devAccount, makeReceipt, startWorld } from "./world.ts";

const RECEIPTS = Number(process.env.ORACLE_CRASH_RECEIPTS ?? 5_000);
const ADMIN = { authorization: "Bearer test-admin-token-0123456789" };
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe(`oracle crash test (${RECEIPTS} receipts, kill -9, Redis restart)`, function () {
  this.timeout(900_000);
  let world: World;
  let url: string;
  let env: NodeJS.ProcessEnv;
  let oracle: ProcessGroup | undefined;
  let kills = 0;
  let seed = 7;
  const rand = () => {
    seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31;
    return seed / 2 ** 31;
  };

  async function startProcess(extraEnv: NodeJS.ProcessEnv = {}): Promise<ProcessGroup> {
    const group = spawnGroup(process.execPath, ["oracle/main.ts"], { env: { ...env, ...extraEnv } });
    const deadline = Date.now() + 60_000;
    for (;;) {
      if (group.output().includes("oracle listening")) return group;
      if (Date.now() > deadline) throw new Error(`oracle did not start:\n${group.output()}`);
      await sleep(50);
    }
  }
  async function kill9(): Promise<void> {
    if (oracle === undefined) return;
    process.kill(-oracle.pid, "SIGKILL");
    await oracle.exited;
    oracle = undefined;
    kills += 1;
  }
  async function restart(extraEnv: NodeJS.ProcessEnv = {}): Promise<void> {
    await kill9();
    oracle = await startProcess(extraEnv);
  }

  /** Posts until the oracle answers (it may be dead or restarting): the node agent's outbox. */
  async function deliver(receipt: ReceiptJson): Promise<number> {
    for (;;) {
      try {
        const res = await fetch(`${url}/v1/receipts`, {
          method: "POST",
          headers: { "content-type": "application/json" },
          body: JSON.stringify(receipt),
          signal: AbortSignal.timeout(10_000),
        });
        await res.arrayBuffer();
        if (res.status < 500) return res.status;
      } catch {
        // connection refused or reset: the oracle is down
      }
      await sleep(100);
    }
  }

  before(async function () {
    world = await startWorld();
    const port = await freePort();
    url = `http://127.0.0.1:${port}`;
    const configFile = path.join(world.work, "oracle-crash.yaml");
    await writeFile(
      configFile,
      [
        "sweepIntervalMs: 500",
        "requeueAfterMs: 15000",
        "settlementTickMs: 600000",
        "workerConcurrency: 16",
        "feeSchedule:",
        `  treasury: "${devAccount(ROLES.treasury).address}"`,
        "  protocolFeeBps: 500",
        "  royaltyBps: 1000",
        "",
      ].join("\n"),
    );
    env = {
      ...world.oracleEnv("crash"),
      INFRAMESH_ORACLE_CONFIG: configFile,
      INFRAMESH_ORACLE_PORT: String(port),
    };
    oracle = await startProcess();
  });

  after(async function () {
    await oracle?.stop();
    await world?.stop();
  });

  const owed = new Map<Address, bigint>();

  it("ingests every receipt through kill -9s and a Redis restart, and verifies each once", async function () {
    const receipts: ReceiptJson[] = [];
    for (let i = 0; i < RECEIPTS; i++) {
      const client = ROLES.clients[i % 2]!;
      receipts.push(await makeReceipt(world.domain, world, { client, node: ROLES.nodes[(i >> 1) % 2]! }));
      const address = devAccount(client).address;
      owed.set(address, (owed.get(address) ?? 0n) + PRICE);
    }
    // Kill points (receipts delivered so far) and one Redis restart, chosen at random.
    const killAt = new Set([0.15, 0.4, 0.7, 0.9].map((f) => Math.floor(RECEIPTS * (f + (rand() - 0.5) * 0.1))));
    const redisAt = Math.floor(RECEIPTS * (0.55 + rand() * 0.1));
    let next = 0;
    let delivered = 0;
    const faults: Promise<void>[] = [];
    const statuses = new Map<number, number>();
    await Promise.all(
      Array.from({ length: 16 }, async () => {
        while (next < receipts.length) {
          const i = next++;
          if (killAt.has(i)) faults.push(restart());
          if (i === redisAt) faults.push(world.redis.restart());
          const status = await deliver(receipts[i]!);
          statuses.set(status, (statuses.get(status) ?? 0) + 1);
          delivered += 1;
        }
      }),
    );
    await Promise.all(faults);
    expect(delivered).to.equal(RECEIPTS);
    // 202 first time; 200 when a resend found it already recorded (the answer was lost in the kill).
    expect(
      [...statuses.keys()].every((s) => s === 202 || s === 200),
      JSON.stringify([...statuses]),
    ).to.equal(true);
    // One more kill while the workers are busy.
    await restart();

    const deadline = Date.now() + 300_000;
    for (;;) {
      const stats = (await (await fetch(`${url}/v1/stats`)).json()) as { receipts: Record<string, number> };
      if (stats.receipts.verified === RECEIPTS) {
        expect(stats.receipts).to.deep.equal({ queued: 0, verified: RECEIPTS, rejected: 0, settled: 0 });
        break;
      }
      if (Date.now() > deadline) expect.fail(`not all verified: ${JSON.stringify(stats)}`);
      await sleep(500);
    }
    expect(kills).to.be.at.least(5);
  });

  it("settles through kill -9 after every persisted step and at random points: paid once, exactly", async function () {
    const close = async () => {
      try {
        const res = await fetch(`${url}/v1/epochs/close`, { method: "POST", headers: ADMIN });
        return (await res.json()) as Record<string, unknown>;
      } catch {
        return { error: "down" };
      }
    };
    // Killed right after each step is persisted…
    for (const state of ["signed", "posted"]) {
      await restart({ INFRAMESH_ORACLE_KILL_AFTER_STATE: state });
      await close();
      await oracle!.exited;
      oracle = undefined;
      kills += 1;
    }
    // …and at random moments of a close in flight.
    for (let round = 0; round < 3; round++) {
      await restart();
      const inFlight = close();
      await sleep(Math.floor(rand() * 400));
      await kill9();
      await inFlight;
    }
    oracle = await startProcess();
    let epoch = await close();
    expect(epoch, JSON.stringify(epoch)).to.include({ epoch: "0", state: "posted" });

    await world.increaseTime(3_601);
    await restart({ INFRAMESH_ORACLE_KILL_AFTER_STATE: "final" });
    await close();
    await oracle!.exited;
    oracle = undefined;
    for (let round = 0; round < 2; round++) {
      await restart();
      const inFlight = close();
      await sleep(Math.floor(rand() * 300));
      await kill9();
      await inFlight;
    }
    oracle = await startProcess();
    // A close in flight above may already have driven epoch 0 to funded (then this one finds
    // nothing for epoch 1); either way epoch 0 must now be funded, once.
    await close();
    epoch = (await (await fetch(`${url}/v1/epochs/0`)).json()) as Record<string, unknown>;
    expect(epoch, JSON.stringify(epoch)).to.include({ epoch: "0", state: "funded" });

    const read = world.publicClient;
    const c = world.record.contracts;
    const [funded] = await read.readContract({
      address: c.rewardClaims.address,
      abi: rewardClaimsAbi,
      functionName: "totals",
    });
    expect(funded).to.equal(PRICE * BigInt(RECEIPTS));
    for (const [client, amount] of owed) {
      const balance = await read.readContract({
        address: c.paymentEscrow.address,
        abi: paymentEscrowAbi,
        functionName: "balanceOf",
        args: [client],
      });
      expect(balance, client).to.equal(DEPOSIT - amount);
    }
    expect(
      await read.readContract({
        address: c.epochSettlement.address,
        abi: epochSettlementAbi,
        functionName: "nextEpoch",
      }),
    ).to.equal(1n);
    const posted = await read.getLogs({
      address: c.epochSettlement.address,
      event: parseAbiItem("event SettlementFinalised(uint64 indexed epoch, bytes32 indexed settlementHash)"),
      fromBlock: 0n,
    });
    expect(posted).to.have.length(1);
    const postedEvents = await read.getLogs({
      address: c.epochSettlement.address,
      event: parseAbiItem(
        "event SettlementPosted(uint64 indexed epoch, bytes32 indexed settlementHash, (uint64 epoch, bytes32 earningsRoot, uint256 totalDebits, uint256 fees, uint256 royalties, uint256 redistributedSlash, uint64 receiptCount, bytes32 batchSha256) settlement, uint64 finalisableAt)",
      ),
      fromBlock: 0n,
    });
    expect(postedEvents).to.have.length(1);
    expect(postedEvents[0]!.args.settlement!.receiptCount).to.equal(BigInt(RECEIPTS));
    const stats = (await (await fetch(`${url}/v1/stats`)).json()) as { receipts: Record<string, number> };
    expect(stats.receipts.settled).to.equal(RECEIPTS);
    expect(kills).to.be.at.least(10);
  });
});
