// A real local world for the oracle's slow tests and its benchmark: `hardhat node` on a free port,
// the contracts deployed with `npx hardhat deploy`, two registered and staked nodes, a model with a
// serving version, clients with escrow deposits, a private Redis and a blob-store peer. Receipts
// are signed for real with Hardhat's well-known dev keys (mnemonic "test test … junk").
import { randomBytes } from "node:crypto";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";

import {
  type Address,
  type Chain,
  type Hex,
  type PublicClient,
  type TypedDataDomain,
  createPublicClient,
  createWalletClient,
  erc20Abi,
  http,
  sha256,
} from "viem";
import { type HDAccount, mnemonicToAccount } from "viem/accounts";

import { PROJECT_ROOT, runHardhat, startHardhatNode, type LocalChain } from "../../scripts/lib/local-chain.ts";
import { startRedis, type LocalRedis } from "../../scripts/lib/redis.ts";
import { startBlobServer, type BlobServer } from "../../sdk/blob/server.ts";
import { type DeploymentRecord, parseDeploymentRecord } from "../../sdk/deployment.ts";
import { type WorkUnit, hashWorkUnit, inframeshDomain, signProofOfServing, signWorkUnit } from "../../sdk/eip712.ts";
import { publishVersion, registerModel, setMatureModel } from "../../sdk/models.ts";
import { type ReceiptJson, proofOfServingJson, workUnitJson } from "../../sdk/receipt.ts";
import { registerNode, stake, transferStakeToken, type StakingWallet } from "../../sdk/staking.ts";
import { type OracleConfig, parseOracleConfig, type OracleConfigInput } from "../../oracle/config.ts";
import { paymentEscrowAbi } from "../../oracle/chain.ts";

const MNEMONIC = "test test test test test test test test test test test junk";
export const devAccount = (index: number): HDAccount => mnemonicToAccount(MNEMONIC, { addressIndex: index });
export const devKey = (index: number): Hex => {
  const key = devAccount(index).getHdKey().privateKey;
  if (!key) throw new Error("no key");
  return `0x${Buffer.from(key).toString("hex")}`;
};

export const TOKEN = 10n ** 18n;
export const PRICE = 25n * 10n ** 15n; // 0.025 INFRA per call
export const DEPOSIT = 10_000n * TOKEN;
export const FEE_SCHEDULE = { protocolFeeBps: 500, royaltyBps: 1_000 };

/** Account indexes: 0 deployer/oracle, 1–2 nodes, 3 publisher, 4–5 clients, 6 unregistered, 7–9 committee, 10 treasury. */
export const ROLES = {
  deployer: 0,
  nodes: [1, 2],
  publisher: 3,
  clients: [4, 5],
  stranger: 6,
  committee: [7, 8, 9],
  treasury: 10,
};

export interface World {
  chain: LocalChain;
  redis: LocalRedis;
  blob: BlobServer;
  work: string;
  record: DeploymentRecord;
  deploymentFile: string;
  publicClient: PublicClient;
  domain: TypedDataDomain;
  modelId: bigint;
  version: bigint;
  /** An oracle config for oracle `key` with its own data dir and queue. */
  oracleConfig(overrides?: Partial<OracleConfigInput>, key?: Hex): OracleConfig;
  /** The same as environment variables, for `node oracle/main.ts`. */
  oracleEnv(name: string, key?: Hex): NodeJS.ProcessEnv;
  /** Moves chain time forward (past a challenge window). */
  increaseTime(seconds: number): Promise<void>;
  stop(): Promise<void>;
}

const DEPLOY_ID = () => `oracle-test-${process.pid}-${Date.now()}`;

export async function startWorld(options: { committee?: Address[]; threshold?: number } = {}): Promise<World> {
  const chain = await startHardhatNode();
  try {
    return await setUpWorld(chain, options);
  } catch (error) {
    await chain.stop();
    throw error;
  }
}

async function setUpWorld(chain: LocalChain, options: { committee?: Address[]; threshold?: number }): Promise<World> {
  const work = await mkdtemp(path.join(tmpdir(), "inframesh-oracle-"));
  const deploymentId = DEPLOY_ID();
  const parametersFile = path.join(work, "parameters.json");
  await writeFile(
    parametersFile,
    JSON.stringify({
      Inframesh: {
        oracles: options.committee ?? [devAccount(ROLES.deployer).address],
        oracleThreshold: String(options.threshold ?? 1),
        challengeWindow: "3600",
        minSelfStake: String(1_000n * TOKEN),
        // The fee schedule the oracle reads from EpochSettlement.feeSchedule().
        treasury: devAccount(ROLES.treasury).address,
        protocolFeeBps: String(FEE_SCHEDULE.protocolFeeBps),
        royaltyBps: String(FEE_SCHEDULE.royaltyBps),
      },
    }),
  );
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    INFRAMESH_RPC_URL: chain.rpcUrl,
    INFRAMESH_DEPLOYMENT_ID: deploymentId,
    INFRAMESH_DEPLOYMENTS_DIR: work,
    HARDHAT_BUILD_PROFILE: "default",
  };
  delete env.HH_TEST;
  const deployed = await runHardhat(["deploy", "--network", "localhost", "--parameters", parametersFile], { env });
  if (deployed.code !== 0) throw new Error(`deploy failed:\n${deployed.output}`);
  await rm(path.join(PROJECT_ROOT, "ignition", "deployments", deploymentId), { recursive: true, force: true });
  const deploymentFile = path.join(work, "localhost.json");
  const record = parseDeploymentRecord(JSON.parse(await readFile(deploymentFile, "utf8")));

  const viemChain: Chain = {
    id: record.chainId,
    name: "hardhat",
    nativeCurrency: { name: "Ether", symbol: "ETH", decimals: 18 },
    rpcUrls: { default: { http: [chain.rpcUrl] } },
  };
  const transport = http(chain.rpcUrl);
  const publicClient = createPublicClient({ chain: viemChain, transport }) as PublicClient;
  const wallet = (i: number): StakingWallet =>
    createWalletClient({ account: devAccount(i), chain: viemChain, transport });
  const staking = {
    publicClient,
    nodeStaking: record.contracts.nodeStaking.address,
    stakeToken: record.contracts.stakeToken.address,
  };
  const deployer = wallet(ROLES.deployer);
  for (const n of ROLES.nodes) {
    await transferStakeToken(staking, deployer, devAccount(n).address, 2_000n * TOKEN);
    await registerNode(staking, wallet(n), {
      endpoint: `http://node-${n}`,
      hardwareSpecHash: sha256("0x01"),
      commissionBps: 1_000,
    });
    await stake(staking, wallet(n), devAccount(n).address, 1_500n * TOKEN);
  }
  const models = { publicClient, modelRegistry: record.contracts.modelRegistry.address };
  const publisher = wallet(ROLES.publisher);
  const { modelId } = await registerModel(models, publisher, "oracle-test-model");
  const manifestHash = "ab".repeat(32);
  const { version } = await publishVersion(models, publisher, modelId, {
    version: "1.0.0",
    descriptorHash: sha256("0x02"),
    manifestHash,
    shardRoot: sha256("0x03"),
    shardCount: 1,
    price: PRICE,
    zkVerifier: "0x0000000000000000000000000000000000000000",
    verifyingKeyHash: `0x${"00".repeat(32)}`,
    access: { kind: 0, token: "0x0000000000000000000000000000000000000000", threshold: 0n },
  });
  await setMatureModel(models, publisher, modelId, manifestHash, PRICE);
  for (const c of ROLES.clients) {
    await transferStakeToken(staking, deployer, devAccount(c).address, DEPOSIT);
    const client = wallet(c);
    const approve = await client.writeContract({
      address: record.contracts.stakeToken.address,
      abi: erc20Abi,
      functionName: "approve",
      args: [record.contracts.paymentEscrow.address, DEPOSIT],
    });
    await publicClient.waitForTransactionReceipt({ hash: approve });
    const deposit = await client.writeContract({
      address: record.contracts.paymentEscrow.address,
      abi: paymentEscrowAbi,
      functionName: "deposit",
      args: [DEPOSIT],
    });
    await publicClient.waitForTransactionReceipt({ hash: deposit });
  }

  const redis = await startRedis();
  const blob = await startBlobServer({ dir: path.join(work, "blobs") });
  const domain = inframeshDomain(record.chainId, record.contracts.epochSettlement.address);
  const treasury = devAccount(ROLES.treasury).address;

  const baseInput = (name: string): OracleConfigInput => ({
    rpcUrl: chain.rpcUrl,
    deployment: deploymentFile,
    dataDir: path.join(work, `oracle-${name}`),
    redisUrl: redis.url,
    queueName: `q-${name}`,
    port: 0,
    blobPeers: [blob.url],
    feeSchedule: { treasury, ...FEE_SCHEDULE },
    adminToken: "test-admin-token-0123456789",
    logLevel: "silent",
    sweepIntervalMs: 500,
    requeueAfterMs: 2_000,
    settlementTickMs: 60_000,
  });
  let counter = 0;
  return {
    chain,
    redis,
    blob,
    work,
    record,
    deploymentFile,
    publicClient,
    domain,
    modelId,
    version,
    oracleConfig(overrides = {}, key = devKey(ROLES.deployer)) {
      counter += 1;
      return parseOracleConfig({ ...baseInput(`o${counter}`), ...overrides }, { INFRAMESH_ORACLE_KEY: key });
    },
    oracleEnv(name, key = devKey(ROLES.deployer)) {
      return {
        ...process.env,
        INFRAMESH_RPC_URL: chain.rpcUrl,
        INFRAMESH_DEPLOYMENT: deploymentFile,
        INFRAMESH_ORACLE_DATA_DIR: path.join(work, `oracle-${name}`),
        REDIS_URL: redis.url,
        INFRAMESH_ORACLE_QUEUE: `q-${name}`,
        INFRAMESH_ORACLE_KEY: key,
        INFRAMESH_ORACLE_BLOB_PEERS: blob.url,
        INFRAMESH_ORACLE_ADMIN_TOKEN: "test-admin-token-0123456789",
        INFRAMESH_ORACLE_LOG_LEVEL: "warn",
      };
    },
    async increaseTime(seconds) {
      const { rpc } = await import("../../scripts/lib/local-chain.ts");
      await rpc(chain.rpcUrl, "evm_increaseTime", [seconds]);
      await rpc(chain.rpcUrl, "evm_mine", []);
    },
    async stop() {
      await blob.close().catch(() => {});
      await redis.stop().catch(() => {});
      await chain.stop();
      await rm(work, { recursive: true, force: true });
    },
  };
}

export interface ReceiptOptions {
  client?: number;
  node?: number;
  jobId?: Hex;
  modelId?: bigint;
  version?: bigint;
  maxFee?: bigint;
  expiresAt?: bigint;
  input?: Uint8Array;
  domain?: TypedDataDomain;
  /** Sign the proof with another key than the node's. */
  nodeSigner?: number;
  clientSigner?: number;
}

const accountCache = new Map<number, HDAccount>();
const cachedAccount = (i: number) => {
  let a = accountCache.get(i);
  if (!a) accountCache.set(i, (a = devAccount(i)));
  return a;
};

/** A receipt signed for real by a dev client and a dev node. */
export async function makeReceipt(
  domain: TypedDataDomain,
  defaults: { modelId: bigint; version: bigint },
  o: ReceiptOptions = {},
): Promise<ReceiptJson> {
  const client = cachedAccount(o.client ?? ROLES.clients[0]!);
  const node = cachedAccount(o.node ?? ROLES.nodes[0]!);
  const input = o.input ?? randomBytes(32);
  const workUnit: WorkUnit = {
    jobId: o.jobId ?? (`0x${randomBytes(32).toString("hex")}` as Hex),
    modelId: o.modelId ?? defaults.modelId,
    modelVersion: o.version ?? defaults.version,
    inputHash: sha256(input),
    maxFee: o.maxFee ?? PRICE * 2n,
    client: client.address,
    expiresAt: o.expiresAt ?? BigInt(Math.floor(Date.now() / 1000) + 3_600),
  };
  const signDomain = o.domain ?? domain;
  const clientSignature = await signWorkUnit(
    cachedAccount(o.clientSigner ?? o.client ?? ROLES.clients[0]!),
    signDomain,
    workUnit,
  );
  const proof = {
    jobId: workUnit.jobId,
    workUnitHash: hashWorkUnit(signDomain, workUnit),
    outputHash: sha256(randomBytes(16)),
    latencyMs: 12,
    node: node.address as Address,
  };
  const nodeSignature = await signProofOfServing(
    cachedAccount(o.nodeSigner ?? o.node ?? ROLES.nodes[0]!),
    signDomain,
    proof,
  );
  return {
    work_unit: workUnitJson(workUnit),
    client_signature: clientSignature,
    proof_of_serving: proofOfServingJson(
      proof,
      { model_id: Number(workUnit.modelId), version: Number(workUnit.modelVersion) },
      nodeSignature,
    ),
  };
}
