// `npx hardhat deploy` as a user runs it: against its own `hardhat node` on a free port, twice
// (the second run must send nothing and rewrite the same file), with the roles checked on
// chain, and against sepolia without its configuration variables.
//
// Slow (child processes): run alone with `npx hardhat test mocha test/deploy/deploy.test.ts`.
import { mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";

import { expect } from "chai";
import { createPublicClient, encodeFunctionData, http, keccak256, toBytes, type Address } from "viem";

import { PROJECT_ROOT, rpc, runHardhat, startHardhatNode, type LocalChain } from "../../scripts/lib/local-chain.ts";
import { parseDeploymentRecord, type DeploymentRecord } from "../../sdk/deployment.ts";
import { SETTLEMENT_ROLE } from "../../sdk/earnings.ts";
import { DEFAULT_ADMIN_ROLE, PAUSER_ROLE, REWARDER_ROLE, SLASHER_ROLE } from "../../sdk/staking.ts";

const redistributionRecipientAbi = [
  {
    type: "function",
    name: "redistributionRecipient",
    stateMutability: "view",
    inputs: [],
    outputs: [{ type: "address" }],
  },
] as const;

const DEPLOYMENT_ID = "local-test-deploy";
const ZERO_ADDRESS = "0x0000000000000000000000000000000000000000";
const hasRoleAbi = [
  {
    type: "function",
    name: "hasRole",
    stateMutability: "view",
    inputs: [
      { name: "role", type: "bytes32" },
      { name: "account", type: "address" },
    ],
    outputs: [{ name: "", type: "bool" }],
  },
] as const;

/** eth_call of the registry's modelCount(), encoded from the recorded ABI. */
function modelCountCall(record: DeploymentRecord): { to: Address; data: `0x${string}` } {
  return {
    to: record.contracts.modelRegistry.address,
    data: encodeFunctionData({ abi: record.contracts.modelRegistry.abi, functionName: "modelCount" }),
  };
}

describe("npx hardhat deploy", function () {
  this.timeout(240_000);

  let chain: LocalChain;
  let outDir: string;
  let env: NodeJS.ProcessEnv;
  let firstRun: { code: number | null; output: string };
  let firstFile: string;

  const recordFile = () => path.join(outDir, "localhost.json");
  const blockNumber = async () => Number(await rpc(chain.rpcUrl, "eth_blockNumber"));

  before(async function () {
    chain = await startHardhatNode();
    outDir = await mkdtemp(path.join(tmpdir(), "inframesh-deploy-test-"));
    env = {
      ...process.env,
      INFRAMESH_RPC_URL: chain.rpcUrl,
      INFRAMESH_DEPLOYMENT_ID: DEPLOYMENT_ID,
      INFRAMESH_DEPLOYMENTS_DIR: outDir,
      // The profile `hardhat test` compiled with: no second compile of the same sources.
      HARDHAT_BUILD_PROFILE: "default",
    };
    delete env.HH_TEST; // set by `hardhat test`; the children are plain CLI runs
    firstRun = await runHardhat(["deploy", "--network", "localhost"], { env });
    firstFile = await readFile(recordFile(), "utf8").catch(() => "");
  });

  after(async function () {
    await chain?.stop();
    if (outDir !== undefined) await rm(outDir, { recursive: true, force: true });
    await rm(path.join(PROJECT_ROOT, "ignition", "deployments", DEPLOYMENT_ID), { recursive: true, force: true });
  });

  it("deploys to localhost and writes deployments/localhost.json", async function () {
    expect(firstRun.code, firstRun.output).to.equal(0);
    expect(firstRun.output).to.match(/Sent \d+ new transaction\(s\)\./);
    const record = parseDeploymentRecord(JSON.parse(firstFile));
    expect(record).to.deep.include({ network: "localhost", chainId: 31337, deploymentId: DEPLOYMENT_ID });
    for (const contract of Object.values(record.contracts)) {
      expect(await rpc(chain.rpcUrl, "eth_getCode", [contract.address, "latest"])).to.not.equal("0x");
      expect(contract.deployBlock).to.be.a("number").above(0);
      expect(contract.abi).to.not.be.empty;
      const receipt = (await rpc(chain.rpcUrl, "eth_getTransactionReceipt", [contract.deployTransaction])) as {
        blockNumber: string;
        contractAddress: string;
      };
      expect(Number(receipt.blockNumber)).to.equal(contract.deployBlock);
      expect(receipt.contractAddress.toLowerCase()).to.equal(contract.address.toLowerCase());
    }
    expect(record.parameters.proposers).to.deep.equal([record.deployer]);
    expect(record.contracts.modelRegistry.contractName).to.equal("ModelRegistry");
    expect(record.contracts.paymentEscrow.contractName).to.equal("PaymentEscrow");
    expect(record.contracts.epochSettlement.contractName).to.equal("EpochSettlement");
    expect(record.contracts.rewardClaims.contractName).to.equal("RewardClaims");
    expect(record.contracts.simplenetVerifier?.contractName).to.equal("SimplenetVerifier");
    expect(record.contracts.zkChallenge?.contractName).to.equal("ZkChallenge");
    expect(record.parameters.zkChallenger).to.equal(record.deployer);
    expect(record.parameters.zkResponseWindow).to.equal("86400");
    expect(record.parameters.oracles).to.deep.equal([record.deployer]);
    expect(record.parameters.oracleThreshold).to.equal("1");
    // The fee schedule as deployed: the default treasury is recorded as the timelock's address.
    expect(record.parameters.treasury).to.equal(record.contracts.timelock.address);
    expect([record.parameters.protocolFeeBps, record.parameters.royaltyBps]).to.deep.equal([500, 1_000]);
    expect(Number(await rpc(chain.rpcUrl, "eth_call", [modelCountCall(record), "latest"]))).to.equal(0);
  });

  it("deploys nothing new on a second run and rewrites the same bytes", async function () {
    const before = await blockNumber();
    const second = await runHardhat(["deploy", "--network", "localhost"], { env });
    expect(second.code, second.output).to.equal(0);
    expect(second.output).to.include("Nothing new to deploy.");
    expect(second.output).to.include("Unchanged:");
    expect(await blockNumber()).to.equal(before);
    expect(await readFile(recordFile(), "utf8")).to.equal(firstFile);
  });

  it("wires RewardClaims' roles, hands every admin role to the timelock and keeps none for the deployer", async function () {
    const record: DeploymentRecord = parseDeploymentRecord(JSON.parse(firstFile));
    const client = createPublicClient({ transport: http(chain.rpcUrl) });
    const hasRole = (contract: Address, role: `0x${string}`, account: Address) =>
      client.readContract({ address: contract, abi: hasRoleAbi, functionName: "hasRole", args: [role, account] });
    const { nodeStaking, timelock } = record.contracts;

    expect(await hasRole(nodeStaking.address, DEFAULT_ADMIN_ROLE, timelock.address)).to.equal(true);
    expect(await hasRole(nodeStaking.address, DEFAULT_ADMIN_ROLE, record.deployer)).to.equal(false);
    for (const role of [SLASHER_ROLE, PAUSER_ROLE, REWARDER_ROLE]) {
      expect(await hasRole(nodeStaking.address, role, record.deployer)).to.equal(true);
    }
    expect(await hasRole(timelock.address, DEFAULT_ADMIN_ROLE, timelock.address)).to.equal(true);
    expect(await hasRole(timelock.address, DEFAULT_ADMIN_ROLE, record.deployer)).to.equal(false);

    // Settlement: RewardClaims debits the escrow and pays earnings through staking (as its
    // redistribution recipient, with no role to spare: REWARDER_ROLE is not needed); the timelock
    // administers the escrow and the settlement, the deployer neither.
    const { paymentEscrow, epochSettlement, rewardClaims } = record.contracts;
    expect(await hasRole(nodeStaking.address, REWARDER_ROLE, rewardClaims.address)).to.equal(false);
    const recipient = await client.readContract({
      address: nodeStaking.address,
      abi: redistributionRecipientAbi,
      functionName: "redistributionRecipient",
    });
    expect(recipient).to.equal(rewardClaims.address);
    expect(await hasRole(paymentEscrow.address, SETTLEMENT_ROLE, rewardClaims.address)).to.equal(true);
    for (const contract of [paymentEscrow, epochSettlement]) {
      expect(await hasRole(contract.address, DEFAULT_ADMIN_ROLE, timelock.address)).to.equal(true);
      expect(await hasRole(contract.address, DEFAULT_ADMIN_ROLE, record.deployer)).to.equal(false);
    }
    expect(await hasRole(paymentEscrow.address, SETTLEMENT_ROLE, record.deployer)).to.equal(false);

    // zkML: ZkChallenge slashes through staking; the timelock administers it, the deployer (the
    // default challenger) only opens challenges.
    const zkChallenge = record.contracts.zkChallenge!;
    expect(await hasRole(nodeStaking.address, SLASHER_ROLE, zkChallenge.address)).to.equal(true);
    expect(await hasRole(zkChallenge.address, DEFAULT_ADMIN_ROLE, timelock.address)).to.equal(true);
    expect(await hasRole(zkChallenge.address, DEFAULT_ADMIN_ROLE, record.deployer)).to.equal(false);
    expect(await hasRole(zkChallenge.address, keccak256(toBytes("CHALLENGER_ROLE")), record.deployer)).to.equal(true);
    const executorRole = await client.readContract({
      address: timelock.address,
      abi: [
        {
          type: "function",
          name: "EXECUTOR_ROLE",
          stateMutability: "view",
          inputs: [],
          outputs: [{ type: "bytes32" }],
        },
      ] as const,
      functionName: "EXECUTOR_ROLE",
    });
    expect(await hasRole(timelock.address, executorRole, ZERO_ADDRESS)).to.equal(true);
  });

  it("rejects a bad parameters file before sending any transaction", async function () {
    const before = await blockNumber();
    const file = path.join(outDir, "bad-parameters.json");
    await writeFile(file, JSON.stringify({ Inframesh: { maxSlashBps: 20_000 } }));
    const run = await runHardhat(["deploy", "--network", "localhost", "--parameters", file], { env });
    expect(run.code).to.not.equal(0);
    expect(run.output).to.include("Invalid deploy parameters: maxSlashBps is out of range: 20000 (max 5000)");
    expect(run.output).to.not.include("An unexpected error occurred");
    expect(await blockNumber()).to.equal(before);
  });

  it("deploys in process without writing a deployments file", async function () {
    const scratch = await mkdtemp(path.join(tmpdir(), "inframesh-deploy-inprocess-"));
    try {
      const run = await runHardhat(["deploy"], { env: { ...env, INFRAMESH_DEPLOYMENTS_DIR: scratch } });
      expect(run.code, run.output).to.equal(0);
      expect(run.output).to.match(/nodeStaking +NodeStaking +0x[0-9a-fA-F]{40} +block \d+/);
      expect(run.output).to.include("In-process network: nothing written");
      expect(await readdir(scratch)).to.deep.equal([]);
    } finally {
      await rm(scratch, { recursive: true, force: true });
    }
  });

  it("refuses to record contracts that a reset chain no longer has", async function () {
    // Another chain id than 31337, where no node-instance check clears the journal first.
    const staleId = "local-test-stale";
    const journal = path.join(PROJECT_ROOT, "ignition", "deployments", staleId);
    const deployTo = (rpcUrl: string) =>
      runHardhat(["deploy", "--network", "localhost"], {
        env: { ...env, INFRAMESH_RPC_URL: rpcUrl, INFRAMESH_DEPLOYMENT_ID: staleId },
      });
    try {
      const first = await startHardhatNode({ chainId: 31338 });
      try {
        const run = await deployTo(first.rpcUrl);
        expect(run.code, run.output).to.equal(0);
      } finally {
        await first.stop();
      }
      const reset = await startHardhatNode({ chainId: 31338 });
      try {
        const run = await deployTo(reset.rpcUrl);
        expect(run.code).to.not.equal(0);
        expect(run.output).to.match(
          /puts \w+ at 0x[0-9a-fA-F]{40}, but the chain has no code there: the chain was reset/,
        );
        expect(run.output).to.include(`Delete ${path.join("ignition", "deployments", staleId)} and deploy again.`);
      } finally {
        await reset.stop();
      }
    } finally {
      await rm(journal, { recursive: true, force: true });
    }
  });

  describe("without the testnet configuration", function () {
    // No SEPOLIA_* in the environment and an empty config home, so no keystore either.
    let testnetEnv: NodeJS.ProcessEnv;
    let configHome: string;

    before(async function () {
      configHome = await mkdtemp(path.join(tmpdir(), "inframesh-config-home-"));
      testnetEnv = { ...env, XDG_CONFIG_HOME: configHome };
      delete testnetEnv.SEPOLIA_RPC_URL;
      delete testnetEnv.SEPOLIA_PRIVATE_KEY;
    });

    after(async function () {
      await rm(configHome, { recursive: true, force: true });
    });

    it("names both missing variables and how to set them", async function () {
      const run = await runHardhat(["deploy", "--network", "sepolia"], { env: testnetEnv });
      expect(run.code).to.not.equal(0);
      expect(run.output).to.include(
        'Network "sepolia" needs SEPOLIA_RPC_URL and SEPOLIA_PRIVATE_KEY, which are not set. ' +
          "Set them in the environment (SEPOLIA_RPC_URL=… SEPOLIA_PRIVATE_KEY=… npx hardhat deploy --network sepolia)",
      );
      expect(run.output).to.include("npx hardhat keystore set SEPOLIA_RPC_URL");
      expect(run.output).to.not.include("An unexpected error occurred");
    });

    it("names the one variable still missing", async function () {
      const run = await runHardhat(["deploy", "--network", "sepolia"], {
        env: { ...testnetEnv, SEPOLIA_RPC_URL: "http://127.0.0.1:9" },
      });
      expect(run.code).to.not.equal(0);
      expect(run.output).to.include('Network "sepolia" needs SEPOLIA_PRIVATE_KEY, which is not set.');
    });
  });
});
