// A deployed local chain for the keeper and indexer tests: `hardhat node` on a free port, the
// `npx hardhat deploy` task, wallets for Hardhat's well-known dev accounts, and helpers that make
// protocol events (stake, delegate, unbond, slash, models) and post settlements as the deploy's
// one-member oracle committee (the deployer).
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { request } from "node:http";
import { tmpdir } from "node:os";
import path from "node:path";

import { expect } from "chai";
import {
  createPublicClient,
  createWalletClient,
  defineChain,
  http,
  parseAbi,
  parseEventLogs,
  type Address,
  type Chain,
  type Hex,
  type PublicClient,
} from "viem";
import { privateKeyToAccount } from "viem/accounts";

import { PROJECT_ROOT, runHardhat, startHardhatNode, type LocalChain } from "../../scripts/lib/local-chain.ts";
import { parseDeploymentRecord, type DeploymentRecord } from "../../sdk/deployment.ts";
import { inframeshDomain, signSettlement, type Settlement } from "../../sdk/eip712.ts";
import { registerModel } from "../../sdk/models.ts";
import {
  evidenceHash,
  registerNode,
  slash,
  stake,
  transferStakeToken,
  unbond,
  type StakingContracts,
  type StakingWallet,
} from "../../sdk/staking.ts";

/** Hardhat node's dev accounts (public, well-known test keys). */
export const DEV_KEYS = [
  "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80",
  "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d",
  "0x5de4111afa1a4b94908f83103eb1f1706367c2e68ca870fc3fb9a804cdab365a",
  "0x7c852118294e51e653712a81e05800f419141751be58f605c371e15141b007a6",
  "0x47e179ec197488593b187f80a00eb0da91f1b9d0b13f8733639f19c30a34926a",
] as const;

const TOKEN = 10n ** 18n;

export const epochSettlementAbi = parseAbi([
  "struct Settlement { uint64 epoch; bytes32 earningsRoot; uint256 totalDebits; uint256 fees; uint256 royalties; uint256 redistributedSlash; uint64 receiptCount; bytes32 batchSha256; }",
  "function post(Settlement settlement, bytes[] signatures) returns (bytes32)",
  "function nextEpoch() view returns (uint64)",
  "function challengeWindow() view returns (uint32)",
]);

export interface DeployedChain {
  chain: LocalChain;
  /** INFRAMESH_DEPLOYMENTS_DIR: holds localhost.json. */
  dir: string;
  record: DeploymentRecord;
  viemChain: Chain;
  publicClient: PublicClient;
  wallet(index: number): StakingWallet;
  staking: StakingContracts;
  /** Environment for child processes (CLI, indexer, keeper) pointed at this chain. */
  env: NodeJS.ProcessEnv;
  stop(): Promise<void>;
}

/** Starts a chain and deploys the protocol with `npx hardhat deploy --network localhost`. */
export async function startDeployedChain(deploymentId: string): Promise<DeployedChain> {
  const chain = await startHardhatNode();
  const dir = await mkdtemp(path.join(tmpdir(), `inframesh-${deploymentId}-`));
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    INFRAMESH_RPC_URL: chain.rpcUrl,
    INFRAMESH_DEPLOYMENT_ID: deploymentId,
    INFRAMESH_DEPLOYMENTS_DIR: dir,
    INFRAMESH_NETWORK: "localhost",
    HARDHAT_BUILD_PROFILE: "default",
  };
  delete env.HH_TEST;
  delete env.DATABASE_URL;
  delete env.REDIS_URL;
  const stop = async () => {
    await chain.stop();
    await rm(dir, { recursive: true, force: true });
    await rm(path.join(PROJECT_ROOT, "ignition", "deployments", deploymentId), { recursive: true, force: true });
  };
  try {
    const deployed = await runHardhat(["deploy", "--network", "localhost"], { env });
    expect(deployed.code, deployed.output).to.equal(0);
  } catch (error) {
    await stop();
    throw error;
  }
  const record = parseDeploymentRecord(JSON.parse(await readFile(path.join(dir, "localhost.json"), "utf8")));
  const viemChain = defineChain({
    id: record.chainId,
    name: "localhost",
    nativeCurrency: { name: "Ether", symbol: "ETH", decimals: 18 },
    rpcUrls: { default: { http: [chain.rpcUrl] } },
  });
  // A few retries: hardhat node closes idle keep-alive sockets, which fetch reports as "other side closed".
  const transport = http(chain.rpcUrl, { retryCount: 3 });
  const publicClient = createPublicClient({ chain: viemChain, transport }) as PublicClient;
  return {
    chain,
    dir,
    record,
    viemChain,
    publicClient,
    wallet: (index) =>
      createWalletClient({ account: privateKeyToAccount(DEV_KEYS[index]!), chain: viemChain, transport }),
    staking: {
      publicClient,
      nodeStaking: record.contracts.nodeStaking.address,
      stakeToken: record.contracts.stakeToken.address,
    },
    env,
    stop,
  };
}

/**
 * A run of protocol activity: operator (account 1) registers and self-stakes, a delegator
 * (account 2) delegates and unbonds, the slasher (the deployer) slashes, a publisher registers
 * models. `round` varies names and amounts so two runs emit different events.
 */
export async function protocolActivity(deployed: DeployedChain, round = 0): Promise<{ unbondLock: bigint }> {
  const { staking } = deployed;
  const deployer = deployed.wallet(0);
  const operator = deployed.wallet(1);
  const delegator = deployed.wallet(2);
  const selfStake = (10_000n + BigInt(round)) * TOKEN;
  await transferStakeToken(staking, deployer, operator.account.address, selfStake);
  await transferStakeToken(staking, deployer, delegator.account.address, 5_000n * TOKEN);
  if (round === 0) {
    await registerNode(staking, operator, {
      endpoint: "http://node-a.test",
      hardwareSpecHash: `0x${"01".repeat(32)}`,
      commissionBps: 500,
    });
  }
  await stake(staking, operator, operator.account.address, selfStake);
  await stake(staking, delegator, operator.account.address, 5_000n * TOKEN);
  const { lockId } = await unbond(staking, delegator, operator.account.address, (1_000n + BigInt(round)) * TOKEN);
  await slash(
    staking,
    deployer,
    operator.account.address,
    100n * TOKEN,
    evidenceHash(new TextEncoder().encode(`missed SLA, round ${round}`)),
  );
  await registerModel(
    { publicClient: deployed.publicClient, modelRegistry: deployed.record.contracts.modelRegistry.address },
    deployed.wallet(3),
    `indexed-model-${round}`,
  );
  return { unbondLock: lockId };
}

/** Signs and posts the settlement of the next epoch as the one-member committee (the deployer). */
export async function postSettlement(deployed: DeployedChain): Promise<{ epoch: bigint; finalisableAt: bigint }> {
  const address = deployed.record.contracts.epochSettlement.address;
  const epoch = await deployed.publicClient.readContract({
    address,
    abi: epochSettlementAbi,
    functionName: "nextEpoch",
  });
  const settlement: Settlement = {
    epoch,
    earningsRoot: `0x${"00".repeat(32)}` as Hex,
    totalDebits: 0n,
    fees: 0n,
    royalties: 0n,
    redistributedSlash: 0n,
    receiptCount: 0n,
    batchSha256: `0x${"00".repeat(32)}` as Hex,
  };
  const oracle = privateKeyToAccount(DEV_KEYS[0]);
  const signature = await signSettlement(oracle, inframeshDomain(deployed.record.chainId, address), settlement);
  const hash = await deployed.wallet(0).writeContract({
    address,
    abi: epochSettlementAbi,
    functionName: "post",
    args: [settlement, [signature]],
  });
  const receipt = await deployed.publicClient.waitForTransactionReceipt({ hash });
  expect(receipt.status).to.equal("success");
  const [posted] = parseEventLogs({
    abi: deployed.record.contracts.epochSettlement.abi,
    logs: receipt.logs,
    eventName: "SettlementPosted",
  }) as unknown as Array<{ args: { finalisableAt: bigint } }>;
  return { epoch, finalisableAt: posted!.args.finalisableAt };
}

/**
 * One JSON-RPC call on a connection of its own. hardhat node closes idle keep-alive sockets, and
 * fetch's pooled connection then fails with "other side closed" before the request was read; a
 * fresh connection per call (agent: false) does not meet that.
 */
export function chainRpc(url: string, method: string, params: unknown[] = []): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const body = JSON.stringify({ jsonrpc: "2.0", id: 1, method, params });
    const req = request(
      url,
      {
        method: "POST",
        agent: false,
        headers: { "content-type": "application/json", "content-length": Buffer.byteLength(body) },
      },
      (res) => {
        let text = "";
        res.on("data", (chunk: Buffer) => (text += chunk.toString()));
        res.on("end", () => {
          try {
            const answer = JSON.parse(text) as { result?: unknown; error?: { message: string } };
            if (answer.error !== undefined) reject(new Error(`${method}: ${answer.error.message}`));
            else resolve(answer.result);
          } catch (error) {
            reject(error);
          }
        });
      },
    );
    req.on("error", reject);
    req.end(body);
  });
}

/** Moves the chain's clock forward and mines a block. */
export async function timeTravel(deployed: DeployedChain, seconds: number): Promise<void> {
  await chainRpc(deployed.chain.rpcUrl, "evm_increaseTime", [seconds]);
  await chainRpc(deployed.chain.rpcUrl, "evm_mine");
}

/** Every log every deployed contract emitted, in chain order (what the indexer must hold). */
export async function chainLogs(
  deployed: DeployedChain,
): Promise<Array<{ address: Address; blockHash: Hex; logIndex: number; blockNumber: number }>> {
  const addresses = Object.values(deployed.record.contracts)
    .filter((c) => c.deployBlock !== null)
    .map((c) => c.address);
  const logs = await deployed.publicClient.getLogs({ address: addresses, fromBlock: 0n, toBlock: "latest" });
  return logs.map((l) => ({
    address: l.address,
    blockHash: l.blockHash,
    logIndex: l.logIndex,
    blockNumber: Number(l.blockNumber),
  }));
}
