// The staker's `infra` commands as a user runs them: a child process against its own `hardhat
// node` deployed with `npx hardhat deploy`; keys from INFRAMESH_PRIVATE_KEY or a JSON keystore.
//
// Slow (child processes): run alone with `npx hardhat test mocha test/cli/infra-stake.test.ts`.
import { mkdtemp, readFile, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";

import { expect } from "chai";
import { createPublicClient, createWalletClient, http, parseUnits, type Hex, type PublicClient } from "viem";
import { generatePrivateKey, privateKeyToAccount } from "viem/accounts";

import { PROJECT_ROOT, rpc, runHardhat, startHardhatNode, type LocalChain } from "../../scripts/lib/local-chain.ts";
import { parseDeploymentRecord } from "../../sdk/deployment.ts";
import { readStakerPosition, registerNode, transferStakeToken, type StakingContracts } from "../../sdk/staking.ts";
import { CLI, runInfra, type Run } from "./run-infra.ts";

const DEPLOYMENT_ID = "local-test-cli-stake";

// Hardhat node's dev accounts 0-3 (public, well-known test keys).
const DEPLOYER_KEY: Hex = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80";
const OPERATOR_KEY: Hex = "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d";
const DELEGATOR_KEY: Hex = "0x5de4111afa1a4b94908f83103eb1f1706367c2e68ca870fc3fb9a804cdab365a";
const KEYSTORE_KEY: Hex = "0x7c852118294e51e653712a81e05800f419141751be58f605c371e15141b007a6";
const OPERATOR = privateKeyToAccount(OPERATOR_KEY).address;
const DELEGATOR = privateKeyToAccount(DELEGATOR_KEY).address;
const UNREGISTERED = privateKeyToAccount(KEYSTORE_KEY).address;
const TOKEN = 10n ** 18n;

describe("infra stake | delegate | unbond | rebond | withdraw | deposit | status (CLI)", function () {
  this.timeout(240_000);

  let chain: LocalChain;
  let work: string;
  let env: NodeJS.ProcessEnv;
  let contracts: StakingContracts;
  let publicClient: PublicClient;

  const infra = (args: readonly string[], extraEnv: NodeJS.ProcessEnv = {}): Promise<Run> =>
    runInfra(env, args, extraEnv);
  const as = (key: Hex) => ({ INFRAMESH_PRIVATE_KEY: key });

  before(async function () {
    chain = await startHardhatNode();
    work = await mkdtemp(path.join(tmpdir(), "inframesh-cli-stake-"));
    env = {
      ...process.env,
      INFRAMESH_RPC_URL: chain.rpcUrl,
      INFRAMESH_DEPLOYMENT_ID: DEPLOYMENT_ID,
      INFRAMESH_DEPLOYMENTS_DIR: work,
      HARDHAT_BUILD_PROFILE: "default",
    };
    delete env.HH_TEST;
    delete env.INFRAMESH_PRIVATE_KEY;
    delete env.INFRAMESH_KEYSTORE;
    const deployed = await runHardhat(["deploy", "--network", "localhost"], {
      env: { ...env, INFRAMESH_PRIVATE_KEY: DEPLOYER_KEY },
    });
    expect(deployed.code, deployed.output).to.equal(0);
    const record = parseDeploymentRecord(JSON.parse(await readFile(path.join(work, "localhost.json"), "utf8")));
    publicClient = createPublicClient({ transport: http(chain.rpcUrl) }) as PublicClient;
    contracts = {
      publicClient,
      nodeStaking: record.contracts.nodeStaking.address,
      stakeToken: record.contracts.stakeToken.address,
    };
    const wallet = (key: Hex) => {
      const account = privateKeyToAccount(key);
      return createWalletClient({
        account,
        chain: { ...chainOf(record.chainId), id: record.chainId },
        transport: http(chain.rpcUrl),
      });
    };
    const deployer = wallet(DEPLOYER_KEY);
    await transferStakeToken(contracts, deployer, OPERATOR, 20_000n * TOKEN);
    await transferStakeToken(contracts, deployer, DELEGATOR, 1_000n * TOKEN);
    await transferStakeToken(contracts, deployer, UNREGISTERED, 100n * TOKEN);
    await registerNode(contracts, wallet(OPERATOR_KEY), {
      endpoint: "http://127.0.0.1:9000",
      hardwareSpecHash: `0x${"11".repeat(32)}`,
      commissionBps: 1_000,
    });
  });

  after(async function () {
    await chain?.stop();
    if (work !== undefined) await rm(work, { recursive: true, force: true });
    await rm(path.join(PROJECT_ROOT, "ignition", "deployments", DEPLOYMENT_ID), { recursive: true, force: true });
  });

  it("self-stakes with the seed design's form: infra stake --node … --amount 10000", async function () {
    const run = await infra(["stake", "--node", OPERATOR, "--amount", "10000"], as(OPERATOR_KEY));
    expect(run.code, run.stderr).to.equal(0);
    expect(run.stdout).to.match(/^staked 10000 INFRA on 0x[0-9a-fA-F]{40} \(\d+ shares\), tx 0x[0-9a-f]{64}\n$/);
    const position = await readStakerPosition(contracts, OPERATOR, OPERATOR);
    expect(position.activeStake).to.equal(10_000n * TOKEN);
  });

  it("delegates with --json and refuses delegation to one's own node", async function () {
    const run = await infra(["--json", "delegate", "--node", OPERATOR, "--amount", "500.5"], as(DELEGATOR_KEY));
    expect(run.code, run.stderr).to.equal(0);
    const result = JSON.parse(run.stdout) as { action: string; amount: string; staker: string };
    expect(result).to.include({ action: "delegate", amount: parseUnits("500.5", 18).toString(), staker: DELEGATOR });
    expect((await readStakerPosition(contracts, OPERATOR, DELEGATOR)).activeStake).to.equal(parseUnits("500.5", 18));

    const own = await infra(["delegate", "--node", OPERATOR, "--amount", "1"], as(OPERATOR_KEY));
    expect(own.code).to.equal(1);
    expect(own.stderr).to.include("you operate this node: self-stake with `infra stake`");
  });

  it("says what is wrong before sending: balance, unknown node, bad amount, bad address", async function () {
    const poor = await infra(["delegate", "--node", OPERATOR, "--amount", "1000"], as(DELEGATOR_KEY));
    expect(poor.code).to.equal(1);
    expect(poor.stderr).to.include(`insufficient balance: ${DELEGATOR} holds 499.5 INFRA, the stake needs 1000`);

    const unknown = await infra(["delegate", "--node", UNREGISTERED, "--amount", "1"], as(DELEGATOR_KEY));
    expect(unknown.code).to.equal(1);
    expect(unknown.stderr).to.include(`node ${UNREGISTERED} is not registered on this network`);

    const amount = await infra(["delegate", "--node", OPERATOR, "--amount", "-3"], as(DELEGATOR_KEY));
    expect(amount.code).not.to.equal(0);
    expect(amount.stderr).to.include('amount must be a number of tokens such as 500 or 0.25, got "-3"');

    const zero = await infra(["delegate", "--node", OPERATOR, "--amount", "0"], as(DELEGATOR_KEY));
    expect(zero.stderr).to.include("amount must be more than 0");

    const address = await infra(["stake", "--node", "0x1234", "--amount", "1"], as(DELEGATOR_KEY));
    expect(address.code).not.to.equal(0);
    expect(address.stderr).to.include('--node must be a node\'s address (0x + 40 hex), got "0x1234"');

    const nokey = await infra(["stake", "--node", OPERATOR, "--amount", "1"]);
    expect(nokey.code).to.equal(1);
    expect(nokey.stderr).to.include("no signing key: pass --keystore <file>");
    // Nothing moved.
    expect((await readStakerPosition(contracts, OPERATOR, DELEGATOR)).activeStake).to.equal(parseUnits("500.5", 18));
  });

  it("unbonds into a lock, refuses an early withdrawal with the date, withdraws after maturity", async function () {
    const over = await infra(["unbond", "--node", OPERATOR, "--amount", "600"], as(DELEGATOR_KEY));
    expect(over.code).to.equal(1);
    expect(over.stderr).to.include(`has 500.5 INFRA active on node ${OPERATOR}; cannot unbond 600`);

    const run = await infra(["--json", "unbond", "--node", OPERATOR, "--amount", "100"], as(DELEGATOR_KEY));
    expect(run.code, run.stderr).to.equal(0);
    const lock = JSON.parse(run.stdout) as { lockId: string; withdrawableAt: string };
    expect(lock.lockId).to.equal("0");

    const early = await infra(["withdraw", "--node", OPERATOR, "--lock", "0"], as(DELEGATOR_KEY));
    expect(early.code).to.equal(1);
    expect(early.stderr).to.match(/lock 0 is not withdrawable yet: it matures at \S+Z \(in 7d 0h\)/);
    const none = await infra(["withdraw", "--node", OPERATOR], as(DELEGATOR_KEY));
    expect(none.stderr).to.match(/nothing to withdraw yet: the next lock matures at \S+Z \(in 7d 0h\)/);

    const status = await infra(["status"], as(DELEGATOR_KEY));
    expect(status.code, status.stderr).to.equal(0);
    expect(status.stdout).to.include("400.5 INFRA");
    expect(status.stdout).to.match(/unbonding locks:[\s\S]*100 INFRA[\s\S]*7d 0h/);

    await rpc(chain.rpcUrl, "evm_increaseTime", [7 * 24 * 3600]);
    await rpc(chain.rpcUrl, "evm_mine", []);
    const done = await infra(["withdraw", "--node", OPERATOR], as(DELEGATOR_KEY));
    expect(done.code, done.stderr).to.equal(0);
    expect(done.stdout).to.include(`withdrew 100 INFRA from 1 lock(s) on ${OPERATOR}`);
    expect((await readStakerPosition(contracts, OPERATOR, DELEGATOR)).locks).to.deep.equal([]);
  });

  it("rebonds a lock and names a lock that does not exist", async function () {
    const unbonded = await infra(["unbond", "--node", OPERATOR, "--amount", "50"], as(DELEGATOR_KEY));
    expect(unbonded.code, unbonded.stderr).to.equal(0);
    const match =
      /^lock (\d+): 50 INFRA withdrawable in 7d 0h \(at \S+Z\); then infra withdraw --node 0x[0-9a-fA-F]{40} --lock \1\n$/.exec(
        unbonded.stdout,
      );
    expect(match, unbonded.stdout).to.not.equal(null);
    const lockId = match![1]!;
    const missing = await infra(["rebond", "--node", OPERATOR, "--lock", "99"], as(DELEGATOR_KEY));
    expect(missing.code).to.equal(1);
    expect(missing.stderr, missing.stderr).to.include(
      `no unbonding lock 99 of ${DELEGATOR} on node ${OPERATOR} (its locks: ${lockId})`,
    );
    const run = await infra(["rebond", "--node", OPERATOR, "--lock", lockId], as(DELEGATOR_KEY));
    expect(run.code, run.stderr).to.equal(0);
    expect(run.stdout).to.include(`rebonded lock ${lockId}: 50 INFRA active again`);
    expect((await readStakerPosition(contracts, OPERATOR, DELEGATOR)).activeStake).to.equal(parseUnits("400.5", 18));
  });

  it("deposits into the payment escrow and withdraws in two steps, saying when", async function () {
    const poor = await infra(["deposit", "--amount", "1000"], as(DELEGATOR_KEY));
    expect(poor.code).to.equal(1);
    expect(poor.stderr).to.include(`insufficient balance: ${DELEGATOR} holds 599.5 INFRA, the deposit needs 1000`);

    const run = await infra(["deposit", "--amount", "200"], as(DELEGATOR_KEY));
    expect(run.code, run.stderr).to.equal(0);
    expect(run.stdout).to.include("deposited 200 INFRA; escrow balance 200 INFRA");

    const which = await infra(["withdraw"], as(DELEGATOR_KEY));
    expect(which.code).to.equal(1);
    expect(which.stderr).to.include("say what to withdraw: --node <address> (stake) or --escrow (payment escrow)");
    const none = await infra(["withdraw", "--escrow"], as(DELEGATOR_KEY));
    expect(none.stderr).to.include("no withdrawal requested: first run infra withdraw --escrow --amount <tokens>");
    const over = await infra(["withdraw", "--escrow", "--amount", "300"], as(DELEGATOR_KEY));
    expect(over.stderr).to.include("your escrow balance is 200 INFRA: cannot request 300");

    const requested = await infra(["withdraw", "--escrow", "--amount", "150"], as(DELEGATOR_KEY));
    expect(requested.code, requested.stderr).to.equal(0);
    expect(requested.stdout).to.match(/withdrawal of 150 INFRA requested: withdrawable in 7d 0h \(at \S+Z\); then/);
    const early = await infra(["withdraw", "--escrow"], as(DELEGATOR_KEY));
    expect(early.code).to.equal(1);
    expect(early.stderr).to.match(/the withdrawal is not ready: it matures at \S+Z \(in 7d 0h\)/);
    const status = await infra(["status"], as(DELEGATOR_KEY));
    expect(status.stdout).to.match(/payment escrow: 200 INFRA, withdrawal of 150 INFRA matures at \S+Z \(in 7d 0h\)/);

    await rpc(chain.rpcUrl, "evm_increaseTime", [7 * 24 * 3600]);
    await rpc(chain.rpcUrl, "evm_mine", []);
    const done = await infra(["--json", "withdraw", "--escrow"], as(DELEGATOR_KEY));
    expect(done.code, done.stderr).to.equal(0);
    expect(JSON.parse(done.stdout)).to.deep.include({ step: "withdrawn", amount: (150n * TOKEN).toString() });
  });

  it("signs with an encrypted JSON keystore and refuses a wrong or missing password", async function () {
    const file = path.join(work, "keystore.json");
    const created = await infra(["--json", "wallet", "create", file], { INFRAMESH_KEYSTORE_PASSWORD: "correct horse" });
    expect(created.code, created.stderr).to.equal(0);
    const { address } = JSON.parse(created.stdout) as { address: string };
    expect((await stat(file)).mode & 0o777).to.equal(0o600);
    expect(await readFile(file, "utf8")).not.to.include("correct horse");
    const again = await infra(["wallet", "create", file], { INFRAMESH_KEYSTORE_PASSWORD: "x" });
    expect(again.stderr).to.include("exists: refusing to overwrite a keystore");

    const locked = await infra(["--keystore", file, "status"]);
    expect(locked.code).to.equal(1);
    expect(locked.stderr).to.include("the keystore is locked: set INFRAMESH_KEYSTORE_PASSWORD");
    const wrong = await infra(["--keystore", file, "status"], { INFRAMESH_KEYSTORE_PASSWORD: "battery staple" });
    expect(wrong.code).to.equal(1);
    expect(wrong.stderr).to.include(`wrong password for keystore ${file}`);
    expect(wrong.stderr).not.to.include("battery staple");

    const run = await infra(["--keystore", file, "status"], { INFRAMESH_KEYSTORE_PASSWORD: "correct horse" });
    expect(run.code, run.stderr).to.equal(0);
    expect(run.stdout).to.include(`account ${address}: 0 INFRA in the wallet`);
    expect(run.stdout).to.include("no stake on any node");
  });

  it("transfers tokens and ether to fund a new key, and refuses more than the sender holds", async function () {
    const fresh = privateKeyToAccount(generatePrivateKey()).address;
    const run = await infra(["transfer", "--to", fresh, "--amount", "12.5", "--eth", "0.5"], as(DEPLOYER_KEY));
    expect(run.code, run.stderr).to.equal(0);
    expect(run.stdout).to.match(
      new RegExp(`^sent 12\\.5 INFRA and 0\\.5 ETH to ${fresh}, tx 0x[0-9a-f]{64}, 0x[0-9a-f]{64}\n$`),
    );
    expect(await publicClient.getBalance({ address: fresh })).to.equal(parseUnits("0.5", 18));
    const poor = await infra(["transfer", "--to", OPERATOR, "--amount", "1000000"], as(KEYSTORE_KEY));
    expect(poor.code).to.equal(1);
    expect(poor.stderr).to.match(
      /^infra: insufficient balance: 0x[0-9a-fA-F]{40} holds [0-9.]+ INFRA, the transfer needs 1000000\n$/,
    );
    const nothing = await infra(["transfer", "--to", fresh], as(DEPLOYER_KEY));
    expect(nothing.code).to.equal(1);
    expect(nothing.stderr).to.include("infra: say what to send: --amount <tokens>, --eth <ether>, or both");
  });
});

function chainOf(id: number) {
  return {
    id,
    name: "localhost",
    nativeCurrency: { name: "Ether", symbol: "ETH", decimals: 18 },
    rpcUrls: { default: { http: [] as string[] } },
  };
}
