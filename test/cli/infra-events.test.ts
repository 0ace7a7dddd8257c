// `infra events` as a user runs it: a child process against its own deployed `hardhat node`,
// reading the chain directly and the indexer's PGlite database, with its errors.
//
// Slow (child processes): run alone with `npx hardhat test mocha test/cli/infra-events.test.ts`.
import { mkdir, readFile, writeFile } from "node:fs/promises";
import path from "node:path";

import { expect } from "chai";

import { PROJECT_ROOT, spawnGroup } from "../../scripts/lib/local-chain.ts";
import { protocolActivity, startDeployedChain, type DeployedChain } from "../keeper/chain-fixture.ts";
import { CLI, runInfra, type Run } from "./run-infra.ts";

const INDEXER = path.join(PROJECT_ROOT, "keeper", "indexer", "main.ts");

interface EventsJson {
  source: string;
  events: Array<{ blockNumber: number; logIndex: number; event: string; args: Record<string, unknown> }>;
}

describe("infra events (CLI)", function () {
  this.timeout(240_000);

  let deployed: DeployedChain;
  let env: NodeJS.ProcessEnv;
  let dataDir: string;

  const infra = (args: readonly string[], extraEnv: NodeJS.ProcessEnv = {}): Promise<Run> =>
    runInfra(env, args, extraEnv);

  before(async function () {
    deployed = await startDeployedChain("local-test-events");
    dataDir = path.join(deployed.dir, "indexer");
    // No default data directory: without --db or INFRAMESH_DATA_DIR the CLI reads the chain.
    env = { ...deployed.env, INFRAMESH_DATA_DIR: path.join(deployed.dir, "no-indexer-here") };
    await protocolActivity(deployed, 0);
    const indexer = spawnGroup(process.execPath, [INDEXER, "--once"], {
      // Two confirmations: the last two blocks (the slash, the model registration) stay unconfirmed.
      env: { ...deployed.env, INFRAMESH_DATA_DIR: dataDir, INFRAMESH_CONFIRMATIONS: "2" },
    });
    expect((await indexer.exited).code, indexer.output()).to.equal(0);
  });

  after(async function () {
    await deployed?.stop();
  });

  it("reads a contract's events from the chain, as JSON", async function () {
    const run = await infra(["--json", "events", "--contract", "nodeStaking", "--event", "Staked"]);
    expect(run.code, run.stderr).to.equal(0);
    const json = JSON.parse(run.stdout) as EventsJson;
    expect(json.source).to.equal("chain");
    expect(json.events.map((e) => e.event)).to.deep.equal(["Staked", "Staked"]);
    expect(json.events[1]!.args).to.deep.include({
      node: deployed.wallet(1).account.address,
      staker: deployed.wallet(2).account.address,
      amount: "5000000000000000000000",
    });
  });

  it("prints a table for people", async function () {
    const run = await infra(["events", "--contract", "nodeStaking", "--event", "Unbonded"]);
    expect(run.code, run.stderr).to.equal(0);
    expect(run.stdout).to.include(
      `nodeStaking ${deployed.record.contracts.nodeStaking.address} on localhost, from the chain`,
    );
    expect(run.stdout).to.match(/block +log +event +args\n[- ]+\n +\d+ +\d+ +Unbonded +node=0x70997970/);
    expect(run.stdout).to.include("lockId=0 amount=1000000000000000000000");
  });

  it("gives the same events from the indexer's database (--db and INFRAMESH_DATA_DIR)", async function () {
    const fromChain = JSON.parse((await infra(["--json", "events", "--contract", "nodeStaking"])).stdout) as EventsJson;
    const viaFlag = await infra(["--json", "events", "--contract", "nodeStaking", "--db", dataDir]);
    expect(viaFlag.code, viaFlag.stderr).to.equal(0);
    const fromDb = JSON.parse(viaFlag.stdout) as EventsJson;
    expect(fromDb.source).to.equal("indexer (pglite)");
    // Same content and same key order (JSONB reorders keys; the CLI restores the ABI's order).
    expect(JSON.stringify(fromDb.events.map((e) => e.args))).to.equal(
      JSON.stringify(fromChain.events.map((e) => e.args)),
    );
    const strip = (json: EventsJson) =>
      json.events.map(({ blockNumber, logIndex, event, args }) => ({ blockNumber, logIndex, event, args }));
    expect(strip(fromDb)).to.deep.equal(strip(fromChain));
    expect(fromDb.events.length).to.be.greaterThan(5);

    const viaEnv = await infra(["--json", "events", "--contract", "nodeStaking"], { INFRAMESH_DATA_DIR: dataDir });
    expect((JSON.parse(viaEnv.stdout) as EventsJson).source).to.equal("indexer (pglite)");
    const forced = await infra(["--json", "events", "--contract", "nodeStaking", "--chain"], {
      INFRAMESH_DATA_DIR: dataDir,
    });
    expect((JSON.parse(forced.stdout) as EventsJson).source).to.equal("chain");
  });

  it("marks the events the indexer has not confirmed yet", async function () {
    const text = await infra(["events", "--contract", "modelRegistry", "--db", dataDir]);
    expect(text.code, text.stderr).to.equal(0);
    expect(text.stdout, text.stdout).to.match(
      /ModelRegistered \* +modelId=1 publisher=0x90F79bf6EB2c4f870365E785982E1f101E93b906 name=indexed-model-0/,
    );
    expect(text.stdout).to.match(/\* not confirmed yet\n$/);
    const json = JSON.parse(
      (await infra(["--json", "events", "--contract", "modelRegistry", "--db", dataDir])).stdout,
    ) as {
      events: Array<{ confirmed: boolean | null }>;
    };
    expect(json.events.map((e) => e.confirmed)).to.deep.equal([false]);
    const staked = JSON.parse(
      (await infra(["--json", "events", "--contract", "nodeStaking", "--event", "Staked", "--db", dataDir])).stdout,
    ) as { events: Array<{ confirmed: boolean | null }> };
    expect(staked.events.map((e) => e.confirmed)).to.deep.equal([true, true]);
  });

  it("keeps to --from-block and --to-block in both sources", async function () {
    const all = (JSON.parse((await infra(["--json", "events", "--contract", "stakeToken"])).stdout) as EventsJson)
      .events;
    const blocks = [...new Set(all.map((e) => e.blockNumber))];
    expect(blocks.length).to.be.greaterThan(2);
    const [from, to] = [blocks[1]!, blocks[blocks.length - 2]!];
    const expected = all.filter((e) => e.blockNumber >= from && e.blockNumber <= to);
    for (const source of [[], ["--db", dataDir]]) {
      const run = await infra([
        "--json",
        "events",
        "--contract",
        "stakeToken",
        "--from-block",
        String(from),
        "--to-block",
        String(to),
        ...source,
      ]);
      expect(run.code, run.stderr).to.equal(0);
      const got = (JSON.parse(run.stdout) as EventsJson).events;
      expect(got.map((e) => `${e.blockNumber}:${e.logIndex}`)).to.deep.equal(
        expected.map((e) => `${e.blockNumber}:${e.logIndex}`),
      );
    }
  });

  describe("bad input", function () {
    it("lists the valid contract keys for an unknown one", async function () {
      const run = await infra(["events", "--contract", "staking"]);
      expect(run.code).to.equal(1);
      expect(run.stderr).to.include(
        'infra: unknown contract "staking": use one of stakeToken, timelock, nodeStaking, modelRegistry, paymentEscrow, epochSettlement, rewardClaims',
      );
    });

    it("lists the contract's events for an unknown event name", async function () {
      const run = await infra(["events", "--contract", "nodeStaking", "--event", "Stake"]);
      expect(run.code).to.equal(1);
      expect(run.stderr).to.match(
        /infra: nodeStaking has no event "Stake": use one of .*Slashed, .*Staked, .*Unbonded/,
      );
    });

    it("refuses a bad block range", async function () {
      const reversed = await infra(["events", "--contract", "nodeStaking", "--from-block", "9", "--to-block", "3"]);
      expect(reversed.code).to.equal(1);
      expect(reversed.stderr).to.include("infra: bad block range: --from-block 9 is after --to-block 3");
      const text = await infra(["events", "--contract", "nodeStaking", "--from-block", "ten"]);
      expect(text.code).to.equal(1);
      expect(text.stderr).to.include('infra: --from-block must be a block number (a whole number ≥ 0), got "ten"');
      const future = await infra(["events", "--contract", "nodeStaking", "--to-block", "99999999"]);
      expect(future.code).to.equal(1);
      expect(future.stderr).to.match(/infra: bad block range: --to-block 99999999 is after the chain's head \d+/);
    });

    it("names a missing database directory", async function () {
      const missing = path.join(deployed.dir, "nope");
      const run = await infra(["events", "--contract", "nodeStaking", "--db", missing]);
      expect(run.code).to.equal(1);
      expect(run.stderr).to.include(`infra: no indexer database at ${missing} (run the indexer first, or omit --db)`);
    });

    it("refuses the wrong network, from the chain and from the database", async function () {
      const dir = path.join(deployed.dir, "other");
      await mkdir(dir, { recursive: true });
      const record = JSON.parse(await readFile(path.join(deployed.dir, "localhost.json"), "utf8"));
      await writeFile(path.join(dir, "localhost.json"), JSON.stringify({ ...record, chainId: 11155111 }));
      const chain = await infra(["events", "--contract", "nodeStaking"], { INFRAMESH_DEPLOYMENTS_DIR: dir });
      expect(chain.code).to.equal(1);
      expect(chain.stderr).to.match(
        /infra: wrong network: http:\/\/127\.0\.0\.1:\d+ is chain 31337, but .* records chain 11155111/,
      );
      const db = await infra(["events", "--contract", "nodeStaking", "--db", dataDir], {
        INFRAMESH_DEPLOYMENTS_DIR: dir,
      });
      expect(db.code).to.equal(1);
      expect(db.stderr).to.include('infra: the indexer database has not indexed chain 11155111 (network "localhost")');
    });

    it("names a missing deployment file", async function () {
      const run = await infra(["--network", "nowhere", "events", "--contract", "nodeStaking"]);
      expect(run.code).to.equal(1);
      expect(run.stderr).to.include('infra: no deployment for network "nowhere"');
    });
  });
});
