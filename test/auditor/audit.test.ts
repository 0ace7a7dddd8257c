// `infra audit` end to end against a real chain: the oracle (in this process, real Redis, PGlite and
// blob store) verifies really signed receipts and settles epoch 0 on chain, a node claims, a
// staker unbonds; the audit passes. Then, one at a time and undone with evm_revert, each tampering
// is caught with its own finding and exit code 1: a modified receipt batch served by a blob peer,
// a settlement posted by the committee key with a wrong value, a staker's shares changed in
// storage. Bad flags and an unreachable blob store get clear errors.
//
// Slow (starts a chain, deploys, child processes): run alone with
// `npx hardhat test mocha test/auditor/audit.test.ts`.
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";

import { expect } from "chai";
import { type Hex, createWalletClient, encodeAbiParameters, getAddress, http, keccak256, parseAbi, toHex } from "viem";

import { type AuditReport, balanceViewsAbi, runAudit } from "../../auditor/audit.ts";
import { epochSettlementAbi } from "../../oracle/chain.ts";
import { type RunningOracle, startOracle } from "../../oracle/service.ts";
import { buildSettlement } from "../../oracle/settlement/builder.ts";
import { freePort, rpc } from "../../scripts/lib/local-chain.ts";
import { type BlobServer, startBlobServer } from "../../sdk/blob/server.ts";
import { putBlob } from "../../sdk/blob/upload.ts";
import { signSettlement } from "../../sdk/eip712.ts";
import { receiptJsonSchema } from "../../sdk/receipt.ts";
import { unbond } from "../../sdk/staking.ts";
import { runInfra, type Run } from "../cli/run-infra.ts";
import { PRICE, ROLES, TOKEN, type World, devAccount, makeReceipt, startWorld } from "../oracle/world.ts";

const ADMIN = { authorization: "Bearer test-admin-token-0123456789" };
const claimAbi = parseAbi([
  "function claim(address account, uint256 cumulativeAmount, bytes32[] proof) returns (uint256)",
]);

async function waitFor<T>(what: string, fn: () => Promise<T | undefined>, timeoutMs = 120_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await fn();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

describe("infra audit (real chain, oracle, blob store)", function () {
  this.timeout(600_000);
  let world: World;
  let oracle: RunningOracle;
  let env: NodeJS.ProcessEnv;
  let scratch: string;
  const node = () => devAccount(ROLES.nodes[0]!).address;
  const wallet = (i: number) =>
    createWalletClient({
      account: devAccount(i),
      chain: world.publicClient.chain!,
      transport: http(world.chain.rpcUrl),
    });

  const infra = (args: readonly string[], extraEnv: NodeJS.ProcessEnv = {}): Promise<Run> =>
    runInfra(env, args, extraEnv);
  const audit = (overrides: Partial<Parameters<typeof runAudit>[0]> = {}): Promise<AuditReport> =>
    runAudit({
      record: world.record,
      rpcUrl: world.chain.rpcUrl,
      epochs: "all",
      blobPeers: [world.blob.url],
      ...overrides,
    });

  /** Runs `fn` on the chain and undoes it afterwards, so each tampering is audited alone. */
  async function tampered(fn: () => Promise<void>, check: () => Promise<void>): Promise<void> {
    const snapshot = (await rpc(world.chain.rpcUrl, "evm_snapshot")) as string;
    try {
      await fn();
      await check();
    } finally {
      expect(await rpc(world.chain.rpcUrl, "evm_revert", [snapshot])).to.equal(true);
    }
  }

  before(async function () {
    world = await startWorld();
    oracle = await startOracle(world.oracleConfig());
    scratch = await mkdtemp(path.join(tmpdir(), "inframesh-audit-test-"));
    env = {
      ...process.env,
      INFRAMESH_RPC_URL: world.chain.rpcUrl,
      INFRAMESH_DEPLOYMENTS_DIR: world.work,
      INFRAMESH_BLOB_PEERS: "",
      INFRAMESH_ORACLE_URL: "",
    };
    // Four receipts over two clients and two nodes, verified and settled as epoch 0.
    for (let i = 0; i < 4; i++) {
      const receipt = await makeReceipt(world.domain, world, {
        client: ROLES.clients[i % 2]!,
        node: ROLES.nodes[Math.floor(i / 2)]!,
      });
      const res = await fetch(`${oracle.url}/v1/receipts`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify(receipt),
      });
      expect(res.status).to.equal(202);
      await waitFor("a verdict", async () => {
        const s = (await (await fetch(`${oracle.url}/v1/receipts/${receipt.work_unit.job_id}`)).json()) as {
          status: string;
        };
        if (s.status === "queued") return undefined;
        expect(s.status).to.equal("verified");
        return s;
      });
    }
    const posted = await fetch(`${oracle.url}/v1/epochs/close`, { method: "POST", headers: ADMIN });
    expect(((await posted.json()) as { state: string }).state).to.equal("posted");
    await world.increaseTime(3_601);
    const funded = await fetch(`${oracle.url}/v1/epochs/close`, { method: "POST", headers: ADMIN });
    expect(((await funded.json()) as { state: string }).state).to.equal("funded");
    // A node claims (Claimed, RewardsAdded to its stakers) and unbonds part of its stake (a lock).
    const proof = (await (await fetch(`${oracle.url}/v1/epochs/0/claims/${node()}`)).json()) as {
      cumulative_amount: string;
      proof: Hex[];
    };
    const claim = await wallet(ROLES.nodes[0]!).writeContract({
      address: world.record.contracts.rewardClaims.address,
      abi: claimAbi,
      functionName: "claim",
      args: [node(), BigInt(proof.cumulative_amount), proof.proof],
    });
    expect((await world.publicClient.waitForTransactionReceipt({ hash: claim })).status).to.equal("success");
    const staking = {
      publicClient: world.publicClient,
      nodeStaking: world.record.contracts.nodeStaking.address,
      stakeToken: world.record.contracts.stakeToken.address,
    };
    await unbond(staking, wallet(ROLES.nodes[1]!), devAccount(ROLES.nodes[1]!).address, 100n * TOKEN);
  });

  after(async function () {
    await oracle?.close();
    await world?.stop();
    if (scratch !== undefined) await rm(scratch, { recursive: true, force: true });
  });

  it("passes on an honest network: the settlement recomputed, every balance rebuilt from events", async function () {
    const report = await audit();
    expect(report.findings).to.deep.equal([]);
    expect(report.ok).to.equal(true);
    expect(report.epochs).to.deep.equal([
      {
        epoch: "0",
        status: "funded",
        receipts: 4,
        batchSha256: report.epochs[0]!.batchSha256,
        batchSource: world.blob.url,
        tx: report.epochs[0]!.tx,
        findings: 0,
      },
    ]);
    expect(report.balances).to.deep.include({ nodes: 2, locks: 1, claimants: 1, clients: 2 });
  });

  it("infra audit --all exits 0 with a summary table, --json and an empty --csv export", async function () {
    const text = await infra(["audit", "--all", "--blob-peer", world.blob.url]);
    expect(text.code, text.stderr).to.equal(0);
    expect(text.stdout).to.match(/epoch +status +receipts +batch sha256 +batch from +result\n[- ]+\n +0 +funded +4 /);
    expect(text.stdout).to.include("audit passed: everything matches the chain at block");
    const csv = path.join(scratch, "ok.csv");
    const json = await infra(["--json", "audit", "--csv", csv], { INFRAMESH_BLOB_PEERS: world.blob.url });
    expect(json.code, json.stderr).to.equal(0);
    expect(JSON.parse(json.stdout)).to.include({ ok: true });
    expect(await readFile(csv, "utf8")).to.equal("code,epoch,account,tx,what,expected,actual\r\n");
  });

  it("falls back to the oracle's API for a batch no blob peer serves", async function () {
    const report = await audit({ blobPeers: [], oracleUrl: oracle.url });
    expect(report.ok, JSON.stringify(report.findings)).to.equal(true);
    expect(report.epochs[0]!.batchSource).to.equal("oracle");
    const unknown = await fetch(`${oracle.url}/v1/epochs/9/batch`);
    expect(unknown.status).to.equal(404);
    expect(await unknown.json()).to.include({ error: "unknown_epoch" });
  });

  it("catches up and reads a kept indexer database (--db), resuming it on the next run", async function () {
    const database = { dataDir: path.join(scratch, "indexer-db") };
    const first = await audit({ database });
    expect(first.findings).to.deep.equal([]);
    const second = await audit({ database });
    expect(second.findings).to.deep.equal([]);
    expect(second.block).to.be.at.least(first.block);
    expect(second.balances).to.deep.equal(first.balances);
  });

  it("catches a tampered receipt batch served by a blob peer (exit 1, batch_sha256_mismatch)", async function () {
    const report = await audit();
    const hash = report.epochs[0]!.batchSha256.slice(2);
    const original = await readFile(path.join(world.work, "blobs", hash));
    // A dishonest peer serves a copy in which the first receipt's fee is halved, under the same name.
    const dir = path.join(scratch, "tampered-blobs");
    const evil: BlobServer = await startBlobServer({ dir });
    try {
      const copy = original.toString("utf8").replace(`"fee":"${PRICE}"`, `"fee":"${PRICE / 2n}"`);
      expect(copy).to.not.equal(original.toString("utf8"));
      await writeFile(path.join(dir, hash), copy);
      const csv = path.join(scratch, "tampered.csv");
      const run = await infra(["audit", "--epoch", "0", "--blob-peer", evil.url, "--csv", csv]);
      expect(run.code, run.stderr).to.equal(1);
      expect(run.stdout).to.include(
        "✗ batch_sha256_mismatch: the receipt batch served is not the one the settlement commits to",
      );
      expect(run.stdout).to.include(`  - expected: 0x${hash}`);
      expect(run.stderr).to.include("the audit found 1 discrepancies");
      expect(await readFile(csv, "utf8")).to.match(/\r\nbatch_sha256_mismatch,0,,0x[0-9a-f]{64},/);
    } finally {
      await evil.close();
    }
  });

  it("catches a settlement the committee key posted with a wrong value (exit 1, settlement_mismatch)", async function () {
    await tampered(
      async () => {
        // Epoch 1 built honestly from two signed receipts, then its protocol fees inflated before signing.
        const receipts = [];
        for (let i = 0; i < 2; i++) {
          const json = await makeReceipt(world.domain, world, { client: ROLES.clients[0]!, node: ROLES.nodes[1]! });
          const r = receiptJsonSchema.parse(json);
          receipts.push({
            jobId: r.work_unit.job_id,
            body: JSON.parse(JSON.stringify(json)) as Record<string, unknown>,
            client: r.work_unit.requested_by,
            node: r.proof_of_serving.node_id,
            publisher: devAccount(ROLES.publisher).address,
            fee: PRICE,
            receivedAt: Math.floor(Date.now() / 1000),
          });
        }
        const previous = ((await oracle.store.getEpoch(0n))!.earnings ?? []).map((e) => ({
          account: getAddress(e.account),
          cumulativeAmount: BigInt(e.cumulativeAmount),
        }));
        const built = buildSettlement({
          epoch: 1n,
          receipts,
          previous,
          fees: { treasury: devAccount(ROLES.treasury).address, protocolFeeBps: 500, royaltyBps: 1_000 },
          slashToRedistribute: 0n,
          slashedNodes: [],
        });
        const file = path.join(scratch, "epoch-1.batch");
        await writeFile(file, built.batch);
        await putBlob(world.blob.url, built.batchSha256.slice(2), file);
        const wrong = { ...built.settlement, fees: built.settlement.fees + 1_000n };
        const signature = await signSettlement(devAccount(ROLES.deployer), world.domain, wrong);
        const hash = await wallet(ROLES.deployer).writeContract({
          address: world.record.contracts.epochSettlement.address,
          abi: epochSettlementAbi,
          functionName: "post",
          args: [wrong, [signature]],
        });
        expect((await world.publicClient.waitForTransactionReceipt({ hash })).status).to.equal("success");
      },
      async () => {
        const run = await infra(["--json", "audit", "--all", "--blob-peer", world.blob.url]);
        expect(run.code, run.stderr).to.equal(1);
        const report = JSON.parse(run.stdout) as AuditReport;
        expect(report.ok).to.equal(false);
        expect(report.epochs.map((e) => [e.epoch, e.status, e.findings])).to.deep.equal([
          ["0", "funded", 0],
          ["1", "posted", 1],
        ]);
        expect(report.findings).to.have.length(1);
        expect(report.findings[0]).to.include({
          code: "settlement_mismatch",
          what: "settlement field fees",
          epoch: "1",
        });
        expect(BigInt(report.findings[0]!.actual) - BigInt(report.findings[0]!.expected)).to.equal(1_000n);
      },
    );
  });

  it("catches a staker's shares changed in storage without an event (exit 1, stake_mismatch)", async function () {
    const staking = world.record.contracts.nodeStaking.address;
    const shares = await world.publicClient.readContract({
      address: staking,
      abi: balanceViewsAbi,
      functionName: "sharesOf",
      args: [node(), node()],
    });
    // _stakes[node][staker] = { uint128 shares; uint64 lockCount }: find the mapping's slot.
    const slotOf = (index: number) =>
      keccak256(
        encodeAbiParameters(
          [{ type: "address" }, { type: "bytes32" }],
          [node(), keccak256(encodeAbiParameters([{ type: "address" }, { type: "uint256" }], [node(), BigInt(index)]))],
        ),
      );
    const low128 = (1n << 128n) - 1n;
    let slot: Hex | undefined;
    let record = 0n;
    for (let i = 0; i < 64 && slot === undefined; i++) {
      const value = BigInt((await world.publicClient.getStorageAt({ address: staking, slot: slotOf(i) })) ?? "0x0");
      if (value !== 0n && (value & low128) === shares) [slot, record] = [slotOf(i), value];
    }
    expect(slot, "the _stakes slot").to.not.equal(undefined);
    await tampered(
      async () => {
        await rpc(world.chain.rpcUrl, "hardhat_setStorageAt", [
          staking,
          slot,
          toHex((record & ~low128) | (shares + 7n), { size: 32 }),
        ]);
        await rpc(world.chain.rpcUrl, "evm_mine", []);
      },
      async () => {
        const run = await infra(["audit", "--blob-peer", world.blob.url]);
        expect(run.code, run.stderr).to.equal(1);
        expect(run.stdout).to.include(
          `✗ stake_mismatch: NodeStaking sharesOf(node ${node()}, staker) rebuilt from events (account ${node()})`,
        );
        expect(run.stdout).to.include(`  - expected: ${shares}\n  + actual:   ${shares + 7n}`);
        expect(run.stdout).to.include("audit FAILED: 1 finding(s)");
      },
    );
  });

  it("says what is wrong with bad flags, an unknown epoch, no blob peer and an unreachable blob store", async function () {
    const badEpoch = await infra(["audit", "--epoch", "x", "--blob-peer", world.blob.url]);
    expect(badEpoch.code).to.equal(1);
    expect(badEpoch.stderr).to.include('--epoch must be an epoch number (a whole number ≥ 0), got "x"');
    const both = await infra(["audit", "--epoch", "0", "--all"]);
    expect(both.code).to.equal(1);
    expect(both.stderr).to.include("cannot be used with option '--all'");
    const badPeer = await infra(["audit", "--blob-peer", "ftp://peer"]);
    expect(badPeer.code).to.equal(1);
    expect(badPeer.stderr).to.include(
      '--blob-peer must be an http(s) URL such as http://127.0.0.1:8600, got "ftp://peer"',
    );
    const unknown = await infra(["audit", "--epoch", "7", "--blob-peer", world.blob.url]);
    expect(unknown.code).to.equal(1);
    expect(unknown.stderr).to.include("infra: epoch 7 has no settlement on chain (posted: 0..0)");
    const none = await infra(["audit"]);
    expect(none.code).to.equal(1);
    expect(none.stderr).to.include("no blob-store peer to fetch the receipt batches from: pass --blob-peer <url>");
    const closed = `http://127.0.0.1:${await freePort()}`;
    const unreachable = await infra(["audit", "--blob-peer", closed]);
    expect(unreachable.code).to.equal(2);
    expect(unreachable.stderr).to.include(
      `infra: cannot fetch the receipt batch of epoch 0: no blob peer or oracle answered (${closed}: `,
    );
  });
});
