// `infra node claim`, `infra claim` and `infra status --oracle` as earning accounts run them: child
// processes against the oracle's real world (hardhat node, contracts deployed, two staked nodes,
// a model with a publisher, client deposits, Redis, PGlite) with a real reward oracle that
// verifies receipts and settles the epoch on chain. Also the wrong-network error and a delegator.
//
// Slow (child processes): run alone with `npx hardhat test mocha test/cli/infra-claim.test.ts`.
import { mkdir, readFile, writeFile } from "node:fs/promises";
import path from "node:path";

import { expect } from "chai";
import {
  createPublicClient,
  createWalletClient,
  custom,
  erc20Abi,
  http,
  sha256,
  toHex,
  type Address,
  type Hex,
  type PublicClient,
} from "viem";

import { parseOracleClaim } from "../../scripts/cli/claim.ts";
import { createKeystore } from "../../scripts/cli/wallet.ts";
import { stringify } from "yaml";
import { createProgress, SILENT, withTransactionProgress } from "../../scripts/cli/progress.ts";
import { freePort } from "../../scripts/lib/local-chain.ts";
import { type RunningOracle, startOracle } from "../../oracle/service.ts";
import { rewardClaimsAbi } from "../../sdk/claims.ts";
import { readNodeStatus, readStakerPosition, slash, stake, transferStakeToken } from "../../sdk/staking.ts";
import {
  devAccount,
  devKey,
  makeReceipt,
  PRICE,
  FEE_SCHEDULE,
  ROLES,
  startWorld,
  type World,
} from "../oracle/world.ts";
import { runInfra, type Run } from "./run-infra.ts";

const ADMIN = { authorization: "Bearer test-admin-token-0123456789" };

describe("infra claim (pure parts)", function () {
  const account = devAccount(1).address;
  const good = {
    epoch: "3",
    account,
    cumulative_amount: "125",
    earnings_root: `0x${"ab".repeat(32)}`,
    proof: [`0x${"cd".repeat(32)}`],
  };

  it("reads the oracle's claim and refuses a malformed or foreign one", function () {
    expect(parseOracleClaim(good, account)).to.deep.equal({
      epoch: 3n,
      cumulativeAmount: 125n,
      earningsRoot: good.earnings_root,
      proof: good.proof,
    });
    expect(() => parseOracleClaim({ ...good, account: devAccount(2).address }, account)).to.throw(/it is for account/);
    expect(() => parseOracleClaim({ ...good, cumulative_amount: "-1" }, account)).to.throw(/cumulative_amount/);
    expect(() => parseOracleClaim({ ...good, proof: ["0x12"] }, account)).to.throw(/proof/);
    expect(() => parseOracleClaim(null, account)).to.throw(/not a JSON object/);
  });

  it("draws a spinner only on a terminal and never with --json", function () {
    const written: string[] = [];
    const tty = { isTTY: true, write: (s: string) => written.push(s) > 0 } as unknown as NodeJS.WriteStream;
    const pipe = { isTTY: false, write: (s: string) => written.push(s) > 0 } as unknown as NodeJS.WriteStream;
    expect(createProgress(true, tty)).to.equal(SILENT);
    expect(createProgress(false, pipe)).to.equal(SILENT);
    const done = createProgress(false, tty).wait("waiting for transaction 0x12ab…cdef to be mined");
    done();
    expect(written[0]).to.match(/^\r\x1b\[2K⠋ waiting for transaction 0x12ab…cdef to be mined \(0s\)$/);
    expect(written.at(-1)).to.equal("\r\x1b[2K");
  });
});

describe("transaction progress", function () {
  it("wraps every wait for a receipt in a spinner naming the transaction, and stops it however the wait ends", async function () {
    const shown: string[] = [];
    let stopped = 0;
    const progress = {
      wait(text: string) {
        shown.push(text);
        return () => {
          stopped += 1;
        };
      },
    };
    // A client whose wait for a receipt fails at once: viem's own wait would leave its block
    // poller running after the rejection and keep the test process alive.
    const failing = createPublicClient({
      transport: custom({
        request: () => {
          throw new Error("no chain here");
        },
      }),
    }).extend(() => ({
      waitForTransactionReceipt: async (): Promise<never> => {
        throw new Error("no chain here");
      },
    })) as unknown as PublicClient;
    const client = withTransactionProgress(failing, progress);
    expect(withTransactionProgress(failing, SILENT)).to.equal(failing);
    const hash = `0x${"ab".repeat(32)}` as Hex;
    let failed = false;
    await client.waitForTransactionReceipt({ hash, timeout: 1_000, retryCount: 0 }).catch(() => {
      failed = true;
    });
    expect(failed).to.equal(true);
    expect(shown).to.deep.equal(["waiting for transaction 0xababab…abab to be mined"]);
    expect(stopped).to.equal(1);
  });
});

describe("infra node claim | claim | status --oracle (CLI, real oracle)", function () {
  this.timeout(300_000);

  let world: World;
  let oracle: RunningOracle;
  let env: NodeJS.ProcessEnv;
  const node = devAccount(ROLES.nodes[0]!).address;
  const publisher = devAccount(ROLES.publisher).address;
  const treasury = devAccount(ROLES.treasury).address;
  const stranger = devAccount(ROLES.stranger).address;
  const delegatorIndex = 11;
  const delegator = devAccount(delegatorIndex).address;
  const protocol = (PRICE * BigInt(FEE_SCHEDULE.protocolFeeBps)) / 10_000n;
  const royalty = (PRICE * BigInt(FEE_SCHEDULE.royaltyBps)) / 10_000n;
  const nodeEarned = (PRICE - protocol - royalty) * 2n;

  const infra = (args: readonly string[], key: Hex, extraEnv: NodeJS.ProcessEnv = {}): Promise<Run> =>
    runInfra(env, args, { INFRAMESH_PRIVATE_KEY: key, ...extraEnv });
  const balanceOf = (account: Address) =>
    world.publicClient.readContract({
      address: world.record.contracts.stakeToken.address,
      abi: erc20Abi,
      functionName: "balanceOf",
      args: [account],
    });
  const claimed = (account: Address) =>
    world.publicClient.readContract({
      address: world.record.contracts.rewardClaims.address,
      abi: rewardClaimsAbi,
      functionName: "claimed",
      args: [account],
    });
  const staking = () => ({
    publicClient: world.publicClient,
    nodeStaking: world.record.contracts.nodeStaking.address,
    stakeToken: world.record.contracts.stakeToken.address,
  });

  before(async function () {
    world = await startWorld();
    oracle = await startOracle(world.oracleConfig());
    env = {
      ...process.env,
      INFRAMESH_RPC_URL: world.chain.rpcUrl,
      INFRAMESH_DEPLOYMENTS_DIR: world.work,
      INFRAMESH_ORACLE_URL: oracle.url,
    };
    delete env.INFRAMESH_KEYSTORE;
    // A delegator on node 0: its share of the node's rewards arrives in the pool, not by a claim.
    const chain = {
      id: world.record.chainId,
      name: "hardhat",
      nativeCurrency: { name: "Ether", symbol: "ETH", decimals: 18 },
      rpcUrls: { default: { http: [world.chain.rpcUrl] } },
    };
    const wallet = (i: number) =>
      createWalletClient({ account: devAccount(i), chain, transport: http(world.chain.rpcUrl) });
    await transferStakeToken(staking(), wallet(ROLES.deployer), delegator, 501n * 10n ** 18n);
    await stake(staking(), wallet(delegatorIndex), node, 500n * 10n ** 18n);
  });

  after(async function () {
    await oracle?.close();
    await world?.stop();
  });

  it("has nothing to claim before any epoch is funded: a clear message, exit 0, no transaction", async function () {
    const block = await world.publicClient.getBlockNumber({ cacheTime: 0 });
    const run = await infra(["node", "claim"], devKey(ROLES.nodes[0]!));
    expect(run.code, run.stderr).to.equal(0);
    expect(run.stdout).to.equal("nothing to claim: no epoch has been settled and funded yet\n");
    const status = await infra(["status"], devKey(ROLES.nodes[0]!));
    expect(status.stdout).to.include("rewards to claim: none (no epoch settled and funded yet)");
    expect(await world.publicClient.getBlockNumber({ cacheTime: 0 })).to.equal(block);
  });

  it("after the oracle settles an epoch: status shows what is pending, node claim pays commission and pool", async function () {
    for (let i = 0; i < 2; i++) {
      const receipt = await makeReceipt(world.domain, world);
      const res = await fetch(`${oracle.url}/v1/receipts`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify(receipt),
      });
      expect(res.status).to.equal(202);
      const deadline = Date.now() + 60_000;
      for (;;) {
        const s = (await (await fetch(`${oracle.url}/v1/receipts/${receipt.work_unit.job_id}`)).json()) as {
          status: string;
        };
        if (s.status === "verified") break;
        expect(s.status).to.equal("queued");
        if (Date.now() > deadline) throw new Error("the oracle never verified the receipt");
        await new Promise((r) => setTimeout(r, 100));
      }
    }
    const posted = await fetch(`${oracle.url}/v1/epochs/close`, { method: "POST", headers: ADMIN });
    expect(posted.status, await posted.clone().text()).to.equal(200);
    await world.increaseTime(3_601);
    const funded = (await (
      await fetch(`${oracle.url}/v1/epochs/close`, { method: "POST", headers: ADMIN })
    ).json()) as {
      state: string;
    };
    expect(funded.state).to.equal("funded");

    const status = await infra(["status"], devKey(ROLES.nodes[0]!));
    expect(status.code, status.stderr).to.equal(0);
    expect(status.stdout).to.match(
      /rewards to claim: [0-9.]+ INFRA up to epoch 0 \(earned [0-9.]+ INFRA, claimed 0 INFRA;/,
    );
    const json = JSON.parse((await infra(["--json", "status"], devKey(ROLES.nodes[0]!))).stdout) as {
      rewards: { pending: string; epoch: string };
    };
    expect(json.rewards).to.include({ pending: nodeEarned.toString(), epoch: "0" });

    const poolBefore = (await readStakerPosition(staking(), node, delegator)).activeStake;
    const before = await balanceOf(node);
    const run = await infra(["--json", "node", "claim", "--oracle", oracle.url], devKey(ROLES.nodes[0]!));
    expect(run.code, run.stderr).to.equal(0);
    const paid = JSON.parse(run.stdout) as Record<string, string | boolean | Record<string, string>>;
    expect(paid).to.include({
      status: "claimed",
      account: node,
      node: true,
      epoch: "0",
      amount: nodeEarned.toString(),
    });
    const commission = BigInt(paid.commission as string);
    const toStakers = BigInt(paid.toStakers as string);
    expect(commission + toStakers).to.equal(nodeEarned);
    expect(toStakers > 0n).to.equal(true);
    expect(await claimed(node)).to.equal(nodeEarned);
    // The claim accrued the commission in staking and the command then withdrew it: the operator's
    // wallet got the commission (minus nothing: gas is ETH), the pool the rest.
    expect(paid.withdrawn).to.deep.include({ amount: commission.toString() });
    expect((await readNodeStatus(staking(), node)).commissionOwed).to.equal(0n);
    expect((await balanceOf(node)) - before).to.equal(commission);
    expect((await readStakerPosition(staking(), node, delegator)).activeStake > poolBefore).to.equal(true);
  });

  it("already claimed: says so, exit 0, and sends no transaction", async function () {
    const block = await world.publicClient.getBlockNumber({ cacheTime: 0 });
    const run = await infra(["node", "claim"], devKey(ROLES.nodes[0]!));
    expect(run.code, run.stderr).to.equal(0);
    expect(run.stdout).to.match(
      new RegExp(
        `^nothing to claim: ${node} already claimed [0-9.]+ INFRA, all it earned up to epoch 0 \\(no transaction sent\\)\n$`,
      ),
    );
    expect(await world.publicClient.getBlockNumber({ cacheTime: 0 })).to.equal(block);
    const status = await infra(["status"], devKey(ROLES.nodes[0]!));
    expect(status.stdout).to.match(/rewards to claim: none up to epoch 0 \(claimed [0-9.]+ INFRA in all\)/);
  });

  it("infra claim pays a publisher, and the treasury when anyone sends it for it", async function () {
    const refused = await infra(["node", "claim"], devKey(ROLES.publisher));
    expect(refused.code).to.equal(1);
    expect(refused.stderr).to.include(
      `infra: ${publisher} is not a registered node: a publisher or treasury account claims with infra claim`,
    );

    const before = await balanceOf(publisher);
    const run = await infra(["claim"], devKey(ROLES.publisher));
    expect(run.code, run.stderr).to.equal(0);
    expect(run.stdout).to.match(
      new RegExp(
        `^claimed [0-9.]+ INFRA for ${publisher} \\(epoch 0, [0-9.]+ INFRA in all\\)\n  [0-9.]+ INFRA paid to ${publisher}\n  transaction 0x[0-9a-f]{64}\n$`,
      ),
    );
    expect((await balanceOf(publisher)) - before).to.equal(royalty * 2n);

    const treasuryBefore = await balanceOf(treasury);
    const forTreasury = await infra(["--json", "claim", "--account", treasury], devKey(ROLES.stranger));
    expect(forTreasury.code, forTreasury.stderr).to.equal(0);
    expect(JSON.parse(forTreasury.stdout)).to.include({ status: "claimed", account: treasury, node: false });
    expect((await balanceOf(treasury)) - treasuryBefore).to.equal(protocol * 2n);
  });

  it("an account that earned nothing, a wrong epoch, an unreachable oracle, no oracle", async function () {
    const none = await infra(["claim"], devKey(ROLES.stranger));
    expect(none.code, none.stderr).to.equal(0);
    expect(none.stdout).to.equal(`nothing to claim: ${stranger} has no earnings up to epoch 0\n`);
    const delegated = await infra(["status"], devKey(delegatorIndex));
    expect(delegated.stdout).to.include("rewards to claim: none up to epoch 0");

    const epoch = await infra(["node", "claim", "--epoch", "5"], devKey(ROLES.nodes[1]!));
    expect(epoch.code).to.equal(1);
    expect(epoch.stderr).to.include(
      "infra: claims are proven against the latest funded epoch, 0: epoch 5's proof would not verify",
    );
    const bad = await infra(["node", "claim", "--epoch", "x"], devKey(ROLES.nodes[1]!));
    expect(bad.code).to.equal(1);
    expect(bad.stderr).to.include('--epoch must be an epoch number (0, 1, …), got "x"');

    const port = await freePort();
    const down = await infra(["node", "claim", "--oracle", `http://127.0.0.1:${port}`], devKey(ROLES.nodes[1]!));
    expect(down.code).to.equal(1);
    expect(down.stderr).to.include(
      `infra: cannot reach the oracle at http://127.0.0.1:${port} (is it running? pass --oracle <url>)`,
    );
    const noOracle = await infra(["node", "claim"], devKey(ROLES.nodes[1]!), { INFRAMESH_ORACLE_URL: "" });
    expect(noOracle.code).to.equal(1);
    expect(noOracle.stderr).to.include("infra: no oracle: pass --oracle <url> or set INFRAMESH_ORACLE_URL");
    // Node 1 has still not claimed: nothing was sent for it.
    expect(await claimed(devAccount(ROLES.nodes[1]!).address)).to.equal(0n);
  });

  it("refuses the wrong network: the RPC's chain id is not the deployment record's", async function () {
    const dir = path.join(world.work, "other-network");
    await mkdir(dir, { recursive: true });
    const record = JSON.parse(await readFile(path.join(world.work, "localhost.json"), "utf8")) as object;
    await writeFile(path.join(dir, "localhost.json"), JSON.stringify({ ...record, chainId: 11155111 }));
    const run = await infra(["node", "claim"], devKey(ROLES.nodes[1]!), { INFRAMESH_DEPLOYMENTS_DIR: dir });
    expect(run.code).to.equal(1);
    expect(run.stderr).to.match(
      /^infra: wrong network: http:\/\/127\.0\.0\.1:\d+ is chain 31337, but .*localhost\.json records chain 11155111 \(point INFRAMESH_RPC_URL at the chain of "localhost"/,
    );
  });

  it("says a node is jailed and until when: staking on it warns, status shows the date", async function () {
    const node1 = devAccount(ROLES.nodes[1]!).address;
    const chain = {
      id: world.record.chainId,
      name: "hardhat",
      nativeCurrency: { name: "Ether", symbol: "ETH", decimals: 18 },
      rpcUrls: { default: { http: [world.chain.rpcUrl] } },
    };
    const slasher = createWalletClient({
      account: devAccount(ROLES.deployer),
      chain,
      transport: http(world.chain.rpcUrl),
    });
    await slash(staking(), slasher, node1, 10n ** 18n, sha256(toHex("cli jailed test evidence")));
    const run = await infra(["delegate", "--node", node1, "--amount", "1"], devKey(delegatorIndex));
    expect(run.code, run.stderr).to.equal(0);
    expect(run.stderr).to.match(
      new RegExp(
        `warning: node ${node1} is jailed until \\S+Z \\(in \\d+d \\d+h\\): your stake is accepted but the node is routed no jobs`,
      ),
    );
    const status = await infra(["status", "--node", node1], devKey(delegatorIndex));
    expect(status.code, status.stderr).to.equal(0);
    expect(status.stdout).to.match(/jailed until \S+Z \(in \d+d \d+h\)/);
  });

  it("node claim --config signs with the node agent's keystore and its password file", async function () {
    const node1 = devAccount(ROLES.nodes[1]!).address;
    const dir = path.join(world.work, "node-1");
    await mkdir(dir, { recursive: true });
    const passwordFile = path.join(dir, "password");
    await writeFile(passwordFile, "node one password\n");
    await createKeystore(
      path.join(dir, "operator-key.json"),
      { INFRAMESH_KEYSTORE_PASSWORD_FILE: passwordFile },
      devKey(ROLES.nodes[1]!),
    );
    const config = path.join(dir, "node-agent.yaml");
    await writeFile(
      config,
      stringify({
        chain: { rpc_url: world.chain.rpcUrl, deployment: world.deploymentFile },
        listen: { host: "127.0.0.1", port: 8700 },
        models: [{ model: "oracle-test-model", bundle: dir }],
        oracles: [oracle.url],
        data_dir: path.join(dir, "data"),
        keystore: "operator-key.json",
        keystore_password_file: "password",
      }),
    );
    const run = await runInfra(env, ["node", "claim", "--config", config], {
      INFRAMESH_PRIVATE_KEY: "",
      INFRAMESH_KEYSTORE_PASSWORD: "",
      INFRAMESH_KEYSTORE_PASSWORD_FILE: "",
    });
    expect(run.code, run.stderr).to.equal(0);
    // Node 1 served nothing in epoch 0; the answer names it, so the config's key signed.
    expect(run.stdout).to.equal(`nothing to claim: ${node1} has no earnings up to epoch 0\n`);
    const missing = await runInfra(env, ["node", "claim", "--config", path.join(dir, "nope.yaml")], {});
    expect(missing.code).to.equal(1);
    expect(missing.stderr).to.match(/^infra: cannot use --config .*nope\.yaml: /);
  });
});
